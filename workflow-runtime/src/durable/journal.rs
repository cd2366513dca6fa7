//! One durable run's journal as its steps see it: what completed before
//! (loaded once when the run starts or resumes) and where to write what
//! completes now.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::{Duration, UNIX_EPOCH};

use super::codec::ValueCodec;
use super::store::{FailureRow, Fence, StepRow, Store, StoreError};
use crate::behavior::Resumed;
use crate::context::{JournalFault, RunJournal, WorkflowContext};
use crate::error::StepError;

/// Where a compensation's row goes: its step's index past this.
pub(crate) const COMPENSATIONS: u32 = 1_000_000;
/// The row that says the run is compensating, and for what.
pub(crate) const COMPENSATING: u32 = 2_000_000;

/// The failure a resumed run that was compensating fails its step with
/// again, as journaled, rather than running the step again.
#[derive(Debug)]
pub(crate) struct Compensating(pub(crate) String);

impl std::fmt::Display for Compensating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Compensating {}

/// A running durable run's journal, carried by its context.
pub(crate) struct Journal {
    store: Store,
    run: Arc<str>,
    done: HashMap<u32, StepRow>,
    failed: HashMap<u32, FailureRow>,
    /// The claim this process holds the run by, on a store with leases.
    fence: Option<Fence>,
    /// The runner's clock, for the rows' times.
    clock: crate::Clock,
    /// Set once this process has journaled that the run is compensating
    /// (or found it so when it loaded the run): later compensations
    /// neither look for the failed step's row nor write the mark again.
    marked: AtomicBool,
}

impl Journal {
    pub(crate) fn new(
        store: Store,
        run: Arc<str>,
        done: Vec<StepRow>,
        failed: Vec<FailureRow>,
        fence: Option<Fence>,
        clock: crate::Clock,
    ) -> Self {
        Journal {
            store,
            run,
            done: done.into_iter().map(|row| (row.index, row)).collect(),
            failed: failed.into_iter().map(|row| (row.index, row)).collect(),
            marked: AtomicBool::new(false),
            fence,
            clock,
        }
    }

    /// Now, by the runner's clock.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The claim this process holds the run by, if the store has leases.
    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// Step `index`'s failed attempts before this process took the run up.
    pub(crate) fn resumed(&self, index: u32) -> Option<Resumed> {
        let row = self.failed.get(&index)?;
        let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(row.failed_ms).unwrap_or(0));
        Some(Resumed::new(row.attempts, at, row.error.as_str()))
    }

    /// Records step `index`'s failed attempts so far. A journal that
    /// cannot take it costs the resumed run its retry count, not the
    /// step's error: it is logged, and the step's own error stands.
    pub(crate) async fn failed(&self, index: u32, attempts: u32, error: String) {
        let mut row = FailureRow::new(index, attempts, error);
        row.failed_ms = self.now_ms();
        let written = match &self.fence {
            Some(fence) => {
                self.store
                    .backend()
                    .record_failure_fenced(&self.run, &row, fence)
                    .await
            }
            None => self.store.backend().record_failure(&self.run, &row).await,
        };
        if let Err(e) = written {
            tracing::warn!(run = %self.run, step = index, error = %e, "could not journal a failed attempt");
        }
    }

    pub(crate) fn run_id(&self) -> &Arc<str> {
        &self.run
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The output of step `index`, if it completed before.
    pub(crate) fn replayed<T>(
        &self,
        index: u32,
        codec: ValueCodec<T>,
    ) -> Option<Result<T, StoreError>> {
        let row = self.done.get(&index)?;
        Some(self.decode(row, codec))
    }

    pub(crate) fn decode<T>(&self, row: &StepRow, codec: ValueCodec<T>) -> Result<T, StoreError> {
        codec
            .decode(self.store.codec(), &row.output)
            .map_err(|e| StoreError::Corrupt {
                run: self.run.to_string(),
                detail: format!(
                    "step {} (\"{}\") output does not decode as `{}`: {e}",
                    row.index,
                    row.title,
                    std::any::type_name::<T>()
                ),
            })
    }

    /// The row that journals step `index`'s output.
    pub(crate) fn row<T>(
        &self,
        index: u32,
        title: &str,
        value: &T,
        codec: ValueCodec<T>,
        attempts: u32,
        started_ms: i64,
    ) -> Result<StepRow, StoreError> {
        let output = codec
            .encode(self.store.codec(), value)
            .map_err(|e| StoreError::Encode {
                run: self.run.to_string(),
                detail: format!("step {index} (\"{title}\") output does not encode: {e}"),
            })?;
        Ok(StepRow::new(
            index,
            title,
            output,
            attempts,
            started_ms,
            self.now_ms(),
        ))
    }

    /// Journals a completed step. When an earlier attempt's row is there
    /// already (it committed, then was cut short: a timeout mid-commit),
    /// that row is the step's result: it is read back and handed on.
    pub(crate) async fn commit<T>(
        &self,
        row: &StepRow,
        value: T,
        codec: ValueCodec<T>,
    ) -> Result<T, StoreError> {
        match self.record(row).await {
            Ok(()) => Ok(value),
            Err(StoreError::Conflict { .. }) => match self.stored(row.index).await? {
                Some(earlier) => self.decode(&earlier, codec),
                None => Err(StoreError::NoSuchRun(self.run.to_string())),
            },
            Err(e) => Err(e),
        }
    }

    /// Why the run was compensating when its process stopped, if it was
    /// and the step of `kind` titled `title` is the one whose failure
    /// started it.
    pub(crate) fn compensating(&self, kind: crate::StepKind, title: &str) -> Option<Compensating> {
        let row = self.done.get(&COMPENSATING)?;
        (row.title.split_once(' ') == Some((kind.as_str(), title)))
            .then(|| Compensating(String::from_utf8_lossy(&row.output).into_owned()))
    }

    /// Whether step `index`'s compensation completed before.
    pub(crate) fn compensated(&self, index: u32) -> bool {
        self.done.contains_key(&(COMPENSATIONS + index))
    }

    /// Journals that the run is compensating for `reason`, the failure of
    /// `step` (`"{kind} {title}"`), before the first compensation runs:
    /// resumed after a crash, the run fails that step the same way instead
    /// of running it again, and goes on undoing. A step whose row is in the
    /// journal after all (a timeout that fired as its commit went through)
    /// did not fail: the run is not undone, it is driven again.
    pub(crate) async fn mark_compensating(
        &self,
        step: &str,
        title: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        if self.done.contains_key(&COMPENSATING) || self.marked.load(Ordering::Acquire) {
            return Ok(());
        }
        let rows = self.store.backend().steps(&self.run).await?;
        if rows
            .iter()
            .any(|row| row.index < COMPENSATIONS && row.title == title)
        {
            return Err(StoreError::Database {
                store: self.store.describe(),
                doing: format!("undoing run \"{}\"", self.run),
                source: format!("step \"{title}\" has its row: it did not fail").into(),
            });
        }
        let now = self.now_ms();
        let row = StepRow::new(COMPENSATING, step, reason.as_bytes().to_vec(), 1, now, now);
        self.write_once(&row).await?;
        self.marked.store(true, Ordering::Release);
        Ok(())
    }

    /// Journals step `index`'s compensation as done.
    pub(crate) async fn compensation_done(
        &self,
        index: u32,
        title: &str,
        attempts: u32,
        started_ms: i64,
    ) -> Result<(), StoreError> {
        let row = StepRow::new(
            COMPENSATIONS + index,
            title,
            Vec::new(),
            attempts,
            started_ms,
            self.now_ms(),
        );
        self.write_once(&row).await
    }

    /// Writes `row`; one there already (written by an earlier attempt or
    /// compensation in this process) is as good.
    async fn write_once(&self, row: &StepRow) -> Result<(), StoreError> {
        match self.record(row).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes `row`, fenced when this process holds the run by a lease.
    async fn record(&self, row: &StepRow) -> Result<(), StoreError> {
        match &self.fence {
            Some(fence) => {
                self.store
                    .backend()
                    .record_step_fenced(&self.run, row, fence)
                    .await
            }
            None => self.store.backend().record_step(&self.run, row).await,
        }
    }

    /// Step `index`'s row as the store has it now (not as it was when the
    /// run was loaded): for an attempt after one that may have committed.
    pub(crate) async fn stored(&self, index: u32) -> Result<Option<StepRow>, StoreError> {
        let steps = self.store.backend().steps(&self.run).await?;
        Ok(steps.into_iter().find(|row| row.index == index))
    }
}

impl RunJournal for Journal {
    fn run_id(&self) -> &str {
        &self.run
    }

    fn compensating_for(&self, kind: crate::StepKind, title: &str) -> Option<StepError> {
        self.compensating(kind, title).map(StepError::new)
    }

    fn fault(&self, error: &StepError) -> Option<JournalFault> {
        Some(match error.downcast_ref::<StoreError>()? {
            StoreError::LeaseLost { .. } => JournalFault::LeaseLost,
            _ => JournalFault::Store,
        })
    }
}

impl WorkflowContext {
    /// The durable run's journal, if this context is a durable run's.
    pub(crate) fn journal(&self) -> Option<&Journal> {
        let journal: &dyn std::any::Any = &**self.run_journal()?;
        journal.downcast_ref()
    }

    /// [`journal`](Self::journal), shared: for a future that outlives the
    /// borrow.
    pub(crate) fn shared_journal(&self) -> Option<Arc<Journal>> {
        let journal: Arc<dyn std::any::Any + Send + Sync> = self.run_journal()?.clone();
        journal.downcast().ok()
    }
}
