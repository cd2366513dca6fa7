//! One durable run's journal as its steps see it: what completed before
//! (loaded once when the run starts or resumes) and where to write what
//! completes now.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::codec::{Codec, ValueCodec};
use super::store::{FailureRow, Fence, RunRow, StepRow, Store, StoreError};
use crate::behavior::BoxFuture;
use crate::behavior::{EarlierFailure, Resumed};
use crate::context::{JournalFault, RunJournal, WorkflowContext};
use crate::error::{StepError, WorkflowError};
use crate::step::StepMeta;

// A run's journal is a state machine keyed by step index, never by
// title: rows below `COMPENSATIONS` are the steps' outputs, and the rows
// past it are the journal's own marks, each written once.

/// `COMPENSATIONS + k`: step `k`'s compensation completed.
pub(crate) const COMPENSATIONS: u32 = 1_000_000;
/// `FAILED_AT + k`: the run failed for good at step `k` (its output is the
/// reason). Written before any compensation runs: resumed, step `k` fails
/// again as journaled instead of running, and undoing goes on.
pub(crate) const FAILED_AT: u32 = 2_000_000;
/// The run's compensations ended with one failed for good (its output is
/// the failure): resumed, the run ends `compensation_failed` at once.
pub(crate) const UNDO_FAILED: u32 = 3_000_000;
/// `REDRIVEN + n`: the `n`th redrive put the failed run back to work (its
/// output is the failure it had then): the run's record keeps it.
pub(crate) const REDRIVEN: u32 = 4_000_000;
/// `CONSUMED + n`: event `n` was consumed by a wait a redrive dropped.
pub(crate) const CONSUMED: u32 = 5_000_000;
/// `WAITS + k * WAITS_PER_STEP + 2j`: step `k` reached its `j`th wait
/// (output: when it wakes); `+ 1`: that wait ended (output: the event it
/// consumed, or nothing at a deadline).
pub(crate) const WAITS: u32 = 100_000_000;
/// The index of the note the `n`th redrive leaves.
pub(crate) fn redriven_index(n: u32) -> u32 {
    REDRIVEN + n.min(CONSUMED - REDRIVEN - 1)
}

/// The index of the note that event `seq` stays consumed.
pub(crate) fn consumed_index(seq: u32) -> u32 {
    CONSUMED + seq.min(WAITS - CONSUMED - 1)
}

/// Room for each step's waits: 5,000 of them.
const WAITS_PER_STEP: u32 = 10_000;

/// The journal index of step `step`'s `wait`th wait's start (or end), if
/// the step has room for it.
pub(crate) fn wait_index(step: u32, wait: u32, ended: bool) -> Option<u32> {
    // A compensation (`COMPENSATIONS + k`) waits in a room of its own.
    let room = match step.checked_sub(COMPENSATIONS) {
        Some(k) => k.checked_add(COMPENSATION_WAITS)?,
        None if step >= COMPENSATION_WAITS => return None,
        None => step,
    };
    if wait >= WAITS_PER_STEP / 2 || room >= (u32::MAX - WAITS) / WAITS_PER_STEP {
        return None;
    }
    Some(WAITS + room * WAITS_PER_STEP + 2 * wait + u32::from(ended))
}

/// Where compensations' waits begin, in rooms of `WAITS_PER_STEP`: a
/// workflow has fewer steps than this.
const COMPENSATION_WAITS: u32 = 200_000;

/// The step and wait a wait row's index names.
pub(crate) fn wait_place(index: u32) -> (u32, u32) {
    let i = index - WAITS;
    let room = i / WAITS_PER_STEP;
    let step = match room.checked_sub(COMPENSATION_WAITS) {
        Some(k) => COMPENSATIONS + k,
        None => room,
    };
    (step, (i % WAITS_PER_STEP) / 2)
}

/// The event a wait-end row says its wait consumed, if it took one.
pub(crate) fn consumed_event(row: &StepRow) -> Option<u32> {
    match row.mark()? {
        super::store::JournalMark::WaitEnded { .. } => row
            .title
            .strip_prefix("event ")?
            .split(' ')
            .next()?
            .parse()
            .ok(),
        super::store::JournalMark::Consumed(seq) => Some(seq),
        _ => None,
    }
}

/// The child runs a run's journal says it started, in order.
pub(crate) fn children(rows: &[StepRow]) -> Vec<String> {
    rows.iter()
        .filter(|row| {
            matches!(
                row.mark(),
                Some(super::store::JournalMark::WaitStarted { .. })
            )
        })
        .filter_map(|row| row.title.strip_prefix("child:").map(str::to_owned))
        .collect()
}

/// What a run waiting for its child run `child` is suspended on.
pub(crate) fn awaiting_child(child: &str) -> String {
    format!("child:{child}")
}

/// What a run waiting for events named `name` is suspended on.
pub(crate) fn awaiting(name: &str) -> String {
    format!("event:{name}")
}

/// How often a run waiting for its child looks at it, whatever wakes it.
const CHILD_BACKSTOP_MS: i64 = 60_000;

/// A wait this short is slept here rather than suspended: a store round
/// trip and a worker's wake-up would cost more than it saves.
const SLEEP_HERE: Duration = Duration::from_secs(1);

/// Whether an event's value is what a wait takes (why not, if not).
pub(crate) type Accept<'a> = dyn Fn(&dyn Codec, &[u8]) -> Result<(), String> + Sync + 'a;

/// How a child run ended, as its parent's journal keeps it.
pub(crate) enum ChildEnd {
    /// Completed with this encoded output.
    Completed(Vec<u8>),
    /// Ended otherwise: its status, the step it failed at, why.
    Ended {
        status: super::RunStatus,
        step: Option<String>,
        error: String,
    },
}

impl ChildEnd {
    /// What a child's wait-end row says.
    fn of(row: &StepRow) -> Self {
        let rest = row.title.strip_prefix("child ").unwrap_or_default();
        let (status, step) = match rest.split_once(' ') {
            Some((status, step)) => (status, Some(step.to_owned())),
            None => (rest, None),
        };
        match super::RunStatus::parse(status) {
            Some(super::RunStatus::Completed) => ChildEnd::Completed(row.output.clone()),
            status => ChildEnd::Ended {
                status: status.unwrap_or(super::RunStatus::Failed),
                step,
                error: String::from_utf8_lossy(&row.output).into_owned(),
            },
        }
    }
}

/// Why a run stopped being driven here though it has not ended.
#[derive(Debug)]
pub(crate) enum Halt {
    /// A step suspended it (a sleep, an event wait), in the store: a worker
    /// takes it up when it is due.
    Suspended(Option<i64>),
    /// A wait could not read or write the journal: driven again (or, its
    /// lease lost, left to the instance that has it).
    Fault(StoreError),
    /// The run was asked to stop while a step ran: driven again, undone.
    Cancelled,
}

/// The journal's own failure to read or record a step, as the step fails
/// with it: marked where the journal raises it, so a step body that
/// returns a [`StoreError`] of its own (one that orchestrates another run)
/// is an ordinary step failure, retried and compensated like any other.
#[derive(Debug)]
pub(crate) struct JournalFailure(pub(crate) StoreError);

impl std::fmt::Display for JournalFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for JournalFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// What a step of a run asked to stop fails with: its compensations run,
/// and the run ends cancelled.
#[derive(Debug)]
pub(crate) struct Cancelled(pub(crate) String);

impl Cancelled {
    /// The failure a run cancelled for `reason` fails with, as journaled.
    pub(crate) fn reason_of(reason: &str) -> String {
        Cancelled(reason.to_owned()).to_string()
    }
}

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cancelled: {}", self.0)
    }
}

impl std::error::Error for Cancelled {}

/// A journal error as the step fails with it.
pub(crate) fn fault<O>(error: StoreError) -> crate::chain::Failed<O> {
    crate::chain::Failed::error(JournalFailure(error))
}

/// How long a journal write that failed (a locked file, a dropped
/// connection) is tried again with the row in hand, before the step is
/// given up and its run driven again from the journal.
const WRITE_PATIENCE: Duration = Duration::from_secs(5);

/// A running durable run's journal, carried by its context.
pub(crate) struct Journal {
    store: Store,
    /// The codec the run's payloads are written with.
    codec: Arc<dyn Codec>,
    run: Arc<str>,
    /// The workflow's steps, whose positions are the journal's indices.
    steps: &'static [StepMeta],
    done: HashMap<u32, StepRow>,
    failed: HashMap<u32, FailureRow>,
    /// The claim this process holds the run by, on a store with leases.
    fence: Option<Fence>,
    /// Cancelled when a write finds the claim gone: the run stops here.
    lost: CancellationToken,
    /// The runner's clock, for the rows' times.
    clock: crate::Clock,
    /// Why the run was asked to stop, if it was when it was loaded: every
    /// step it has not completed fails with it, and what it completed is
    /// undone.
    cancel: Option<String>,
    /// Wait rows written in this process, by index.
    waits: std::sync::Mutex<HashMap<u32, StepRow>>,
    /// Why a wait stopped the run here, once one did; `halted` says so.
    halt: std::sync::Mutex<Option<Halt>>,
    halted: CancellationToken,
    /// The step whose row may wait for the run's end (see [`deferrable`]).
    defers: Option<u32>,
    /// That step's row, once it completed, until a write takes it.
    deferred: std::sync::Mutex<Option<StepRow>>,
}

/// The step of `steps` whose row may be written with the run's end rather
/// than on its own: the last one, or the last before only `then` steps
/// and `finally` steps that take nothing. Those are never journaled (a
/// resumed run runs them again), take no step context, are plain `fn`s
/// (the macro refuses an `async` one), and are not handed the step's
/// value to act on (a `then` only judges it), so between that step's
/// return and the run's end nothing happens that the journal would keep,
/// that a crash could leave half done, or that would have acted on a
/// value a crash replaces: its row and the end can be one write, and the
/// run saves a commit. A crash before that write runs the step again, as
/// a crash before its own commit would.
fn deferrable(steps: &[StepMeta]) -> Option<u32> {
    let tail = steps
        .iter()
        .rev()
        .take_while(|step| match step.kind {
            crate::StepKind::Then => true,
            crate::StepKind::Finally => step.input.is_empty(),
            _ => false,
        })
        .count();
    let last = steps.len().checked_sub(tail + 1)?;
    // A `finally` handed the outcome stops the tail, and is no journaled
    // step itself: nothing waits.
    if matches!(
        steps[last].kind,
        crate::StepKind::Then | crate::StepKind::Finally
    ) {
        return None;
    }
    u32::try_from(last).ok()
}

impl Journal {
    pub(crate) fn new(
        (store, codec): (Store, Arc<dyn Codec>),
        run: Arc<str>,
        steps: &'static [StepMeta],
        (done, failed): (Vec<StepRow>, Vec<FailureRow>),
        fence: Option<Fence>,
        lost: CancellationToken,
        clock: crate::Clock,
    ) -> Self {
        Journal {
            store,
            codec,
            run,
            steps,
            done: done.into_iter().map(|row| (row.index, row)).collect(),
            failed: failed.into_iter().map(|row| (row.index, row)).collect(),
            fence,
            lost,
            clock,
            cancel: None,
            waits: Default::default(),
            halt: Default::default(),
            halted: CancellationToken::new(),
            defers: deferrable(steps),
            deferred: Default::default(),
        }
    }

    /// Whether step `index` leaves its row for the run's end to write
    /// (see [`deferrable`]).
    pub(crate) fn defers(&self, index: u32) -> bool {
        self.defers == Some(index)
    }

    /// Keeps `row`, the completed step's, for the run's next write: its
    /// end, or whatever the journal writes first.
    pub(crate) fn defer(&self, row: StepRow) {
        *self.deferred.lock().unwrap_or_else(|e| e.into_inner()) = Some(row);
    }

    /// The deferred row, for the run's end to write with it.
    pub(crate) fn take_deferred(&self) -> Option<StepRow> {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Step `index`'s deferred row, if it is the one waiting: an attempt
    /// after one that completed (a behavior around it turned its value
    /// into a failure) hands on that value, as it would a committed row.
    pub(crate) fn deferred(&self, index: u32) -> Option<StepRow> {
        let deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        deferred.as_ref().filter(|row| row.index == index).cloned()
    }

    /// Writes the deferred row, if there is one, ahead of any other write
    /// of the run's: a failure marked, a compensation done, or a driver
    /// leaving the run for another drive (which reads the journal). One
    /// that could not be written is kept for the next try.
    pub(crate) async fn settle(&self) -> Result<(), StoreError> {
        // Taken only once written: a settle dropped midway leaves it.
        let Some(row) = self
            .deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return Ok(());
        };
        match self.write_row(&row).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {
                self.take_deferred();
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// This journal for a run asked to stop (`reason`): the steps it has
    /// not completed fail with it.
    pub(crate) fn cancelling(mut self, reason: Option<String>) -> Self {
        self.cancel = reason;
        self
    }

    /// Cancelled when a wait stopped the run here (suspended it, or could
    /// not reach the journal): its driver lets the run go.
    pub(crate) fn halted(&self) -> &CancellationToken {
        &self.halted
    }

    /// Why a wait stopped the run here.
    pub(crate) fn halt(&self) -> Option<Halt> {
        self.halt.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Stops the run here for `why`; the wait that calls this never ends
    /// (its driver drops the run).
    async fn stop(&self, why: Halt) -> std::convert::Infallible {
        *self.halt.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        self.halted.cancel();
        std::future::pending().await
    }

    /// Wait row `index`: loaded with the journal, or written here since.
    fn wait_row(&self, index: u32) -> Option<StepRow> {
        if let Some(row) = self.done.get(&index) {
            return Some(row.clone());
        }
        let waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        waits.get(&index).cloned()
    }

    /// Writes wait row `row` unless one is there; the row as journaled
    /// (an earlier attempt's, if it wrote one first).
    async fn write_wait(&self, row: StepRow) -> Result<StepRow, StoreError> {
        let index = row.index;
        let row = match self.record(&row).await {
            Ok(()) => row,
            Err(StoreError::Conflict { .. }) => self
                .stored(index)
                .await?
                .ok_or_else(|| StoreError::NoSuchRun(self.run.to_string()))?,
            Err(e) => return Err(e),
        };
        let mut waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        waits.insert(index, row.clone());
        Ok(row)
    }

    /// The event seqs consumed by this run's waits so far.
    fn consumed(&self) -> std::collections::HashSet<u32> {
        let waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        self.done
            .values()
            .chain(waits.values())
            .filter_map(consumed_event)
            .collect()
    }

    /// The start of step `step`'s `wait`th wait: when it wakes, journaled
    /// the first time the step reaches it (`wake_ms` then), so a run
    /// resumed after a crash wakes at the original time.
    async fn wait_start(
        &self,
        (step, wait): (u32, u32),
        what: &str,
        wake_ms: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        let index = wait_index(step, wait, false).ok_or_else(|| StoreError::Encode {
            run: self.run.to_string(),
            detail: format!("step {step} waits more than {} times", WAITS_PER_STEP / 2),
        })?;
        let row = match self.wait_row(index) {
            Some(row) => row,
            None => {
                let now = self.now_ms();
                let wake = wake_ms.map(|ms| ms.to_string()).unwrap_or_default();
                self.write_wait(StepRow::new(index, what, wake.into_bytes(), 1, now, now))
                    .await?
            }
        };
        let wake = String::from_utf8_lossy(&row.output);
        match wake.as_ref() {
            "" => Ok(None),
            wake => wake.parse().map(Some).map_err(|_| StoreError::Corrupt {
                run: self.run.to_string(),
                detail: format!("wait row {index} holds \"{wake}\", not a time"),
            }),
        }
    }

    /// Sleeps step `step`'s `wait`th wait until `wake_ms` (or the time
    /// journaled the first time it was reached): here if that is soon,
    /// otherwise by suspending the run until then.
    pub(crate) async fn sleep(&self, place: (u32, u32), wake_ms: i64) {
        if let Err(fault) = self.sleep_or_suspend(place, wake_ms).await {
            self.stop(Halt::Fault(fault)).await;
        }
    }

    async fn sleep_or_suspend(&self, place: (u32, u32), wake_ms: i64) -> Result<(), StoreError> {
        let wake = self.wait_start(place, "sleep", Some(wake_ms)).await?;
        let wake = wake.unwrap_or(wake_ms);
        let left = wake.saturating_sub(self.now_ms());
        if left <= 0 {
            return Ok(());
        }
        let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
        if left <= SLEEP_HERE {
            tokio::time::sleep(left).await;
            return Ok(());
        }
        // A sleep wakes for no event: however many arrive, it suspends.
        let suspension =
            super::store::Suspension::new("sleep", Some(wake), u32::MAX).at(self.now_ms());
        if !self.suspend(&suspension).await? {
            self.stop(self.refused().await?).await;
        }
        self.stop(Halt::Suspended(Some(wake))).await;
        Ok(())
    }

    /// Why the store refused to suspend the run, as the driver is to take
    /// it: asked to stop (undone), or no longer running (let go). `None`
    /// for neither: an event came in, and the step looks again.
    async fn refused_for(&self) -> Result<Option<Halt>, StoreError> {
        let run = self.store.backend().run(&self.run).await?;
        Ok(match run {
            Some(run) if run.status == super::RunStatus::Running && run.cancel.is_some() => {
                Some(Halt::Cancelled)
            }
            Some(run) if run.status == super::RunStatus::Running => None,
            _ => Some(Halt::Suspended(None)),
        })
    }

    /// [`refused_for`](Self::refused_for), for a wait that no event
    /// changes: the run stops here either way.
    async fn refused(&self) -> Result<Halt, StoreError> {
        Ok(self.refused_for().await?.unwrap_or(Halt::Suspended(None)))
    }

    /// Waits for the next event named `name` this run has not consumed and
    /// `accept` takes (a value that is not the waiter's type is logged and
    /// passed over), until the deadline `within` sets the first time the
    /// step reaches the wait: the event's number and value, journaled as
    /// consumed by this wait, or `None` at the deadline (journaled too).
    /// The run is suspended while nothing is there.
    pub(crate) async fn event(
        &self,
        place: (u32, u32),
        name: &str,
        within: Option<Duration>,
        accept: &Accept<'_>,
    ) -> Option<Vec<u8>> {
        match self.event_or_suspend(place, name, within, accept).await {
            Ok(event) => event,
            Err(fault) => match self.stop(Halt::Fault(fault)).await {},
        }
    }

    async fn event_or_suspend(
        &self,
        (step, wait): (u32, u32),
        name: &str,
        within: Option<Duration>,
        accept: &Accept<'_>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let what = awaiting(name);
        let deadline = within.map(|within| {
            self.now_ms()
                .saturating_add(i64::try_from(within.as_millis()).unwrap_or(i64::MAX))
        });
        let deadline = self.wait_start((step, wait), &what, deadline).await?;
        let index = wait_index(step, wait, true).unwrap_or(u32::MAX);
        loop {
            if let Some(row) = self.wait_row(index) {
                return Ok(row.title.starts_with("event ").then_some(row.output));
            }
            let events = self.store.backend().events(&self.run).await?;
            let seen = events.last().map_or(0, |event| event.seq);
            let consumed = self.consumed();
            let next = events.into_iter().find(|event| {
                if event.name != name || consumed.contains(&event.seq) {
                    return false;
                }
                match accept(&*self.codec, &event.payload) {
                    Ok(()) => true,
                    Err(why) => {
                        tracing::error!(run = %self.run, event = name, seq = event.seq, %why, "passing over an event whose value is not what the step waits for");
                        false
                    }
                }
            });
            let now = self.now_ms();
            let ended = match next {
                Some(event) => StepRow::new(
                    index,
                    format!("event {} {name}", event.seq),
                    event.payload,
                    1,
                    now,
                    now,
                ),
                None if deadline.is_some_and(|deadline| deadline <= now) => {
                    StepRow::new(index, format!("timeout {name}"), Vec::new(), 1, now, now)
                }
                None => {
                    let suspension = super::store::Suspension::new(&what, deadline, seen).at(now);
                    if self.suspend(&suspension).await? {
                        self.stop(Halt::Suspended(deadline)).await;
                    }
                    if let Some(halt) = self.refused_for().await? {
                        self.stop(halt).await;
                    }
                    // An event came in since the look: look again.
                    continue;
                }
            };
            let row = self.write_wait(ended).await?;
            return Ok(row.title.starts_with("event ").then_some(row.output));
        }
    }

    /// Runs `child` (a new run's row, started once: its id is derived
    /// from this step's place) as step `step`'s `wait`th wait, and waits,
    /// suspended, until it ends: how it ended, journaled in this run the
    /// first time it is seen.
    pub(crate) async fn child(&self, place: (u32, u32), child: RunRow) -> ChildEnd {
        match self.child_or_suspend(place, child).await {
            Ok(end) => end,
            Err(fault) => match self.stop(Halt::Fault(fault)).await {},
        }
    }

    async fn child_or_suspend(
        &self,
        (step, wait): (u32, u32),
        child: RunRow,
    ) -> Result<ChildEnd, StoreError> {
        let id = child.id.clone();
        let what = awaiting_child(&id);
        let start = wait_index(step, wait, false).ok_or_else(|| StoreError::Encode {
            run: self.run.to_string(),
            detail: format!("step {step} waits more than {} times", WAITS_PER_STEP / 2),
        })?;
        let end = start + 1;
        if self.wait_row(start).is_none() {
            if let super::store::Inserted::Existing(other) =
                self.store.backend().insert_run(&child).await?
                && (other.workflow != child.workflow || other.parent != child.parent)
            {
                return Err(StoreError::Corrupt {
                    run: self.run.to_string(),
                    detail: format!(
                        "child run \"{id}\" is a run of {} not started by this run",
                        other.workflow
                    ),
                });
            }
            let now = self.now_ms();
            self.write_wait(StepRow::new(start, &what, Vec::new(), 1, now, now))
                .await?;
        }
        loop {
            if let Some(row) = self.wait_row(end) {
                return Ok(ChildEnd::of(&row));
            }
            let row = self
                .store
                .backend()
                .run(&id)
                .await?
                .ok_or_else(|| StoreError::NoSuchRun(id.clone()))?;
            if row.status.is_finished() {
                let now = self.now_ms();
                let (title, output) = match (row.status, row.output) {
                    (super::RunStatus::Completed, Some(output)) => {
                        ("child completed".to_owned(), output)
                    }
                    (status, _) => (
                        match &row.failed_step {
                            Some(step) => format!("child {status} {step}"),
                            None => format!("child {status}"),
                        },
                        row.error.unwrap_or_default().into_bytes(),
                    ),
                };
                let row = self
                    .write_wait(StepRow::new(end, title, output, 1, now, now))
                    .await?;
                return Ok(ChildEnd::of(&row));
            }
            // The child's end wakes this run; a look every minute is the
            // backstop for an end that looked for a waiting parent just
            // before this one suspended (or a process that died between
            // the two).
            let now = self.now_ms();
            let backstop = now.saturating_add(CHILD_BACKSTOP_MS);
            let suspension = super::store::Suspension::new(&what, Some(backstop), u32::MAX).at(now);
            if !self.suspend(&suspension).await? {
                self.stop(self.refused().await?).await;
            }
            let ended = self
                .store
                .backend()
                .run(&id)
                .await?
                .is_some_and(|row| row.status.is_finished());
            if ended {
                // Ended meanwhile: due at once, for whoever takes it up.
                let now = self.now_ms();
                let due = super::store::Suspension::new(&what, Some(now), u32::MAX).at(now);
                self.store
                    .backend()
                    .suspend(&self.run, Some(&due), None)
                    .await?;
            }
            self.stop(Halt::Suspended(None)).await;
        }
    }

    /// How many times the run was redriven: a redriven step's children
    /// are new runs.
    pub(crate) fn redrives(&self) -> usize {
        self.done
            .values()
            .filter(|row| matches!(row.mark(), Some(super::store::JournalMark::Redriven(_))))
            .count()
    }

    /// The codec the run's payloads are written with.
    pub(crate) fn codec(&self) -> &dyn Codec {
        &*self.codec
    }

    /// Suspends the run in the store; false when an event came in since
    /// the step looked.
    async fn suspend(&self, suspension: &super::store::Suspension) -> Result<bool, StoreError> {
        // Being undone for a cancel, a compensation's wait suspends.
        let suspension = suspension.clone().undoing(self.cancel.is_some());
        let suspended = self
            .store
            .backend()
            .suspend(&self.run, Some(&suspension), self.fence.as_ref())
            .await;
        if let Err(StoreError::LeaseLost { .. }) = suspended {
            self.lost.cancel();
        }
        suspended
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
        if let Err(e) = self.settle().await {
            tracing::warn!(run = %self.run, error = %e, "could not journal a completed step");
        }
        let mut row = FailureRow::new(index, attempts, error);
        row.failed_ms = self.now_ms();
        let written = self
            .patiently(|| async {
                match &self.fence {
                    Some(fence) => {
                        self.store
                            .backend()
                            .record_failure_fenced(&self.run, &row, fence)
                            .await
                    }
                    None => self.store.backend().record_failure(&self.run, &row).await,
                }
            })
            .await;
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

    /// A value journaled with the run's codec, as a `T`.
    pub(crate) fn decode_value<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
    ) -> Result<T, super::codec::CodecError> {
        super::codec::decode(&*self.codec, bytes)
    }

    pub(crate) fn decode<T>(&self, row: &StepRow, codec: ValueCodec<T>) -> Result<T, StoreError> {
        codec
            .decode(&*self.codec, &row.output)
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

    /// The row that journals step `index`'s output. A value that does not
    /// read back as what it was (NaN in JSON becomes `null`) is the step's
    /// failure, found before anything is written, not a run that completes
    /// and then cannot be resumed or read.
    pub(crate) fn row<T>(
        &self,
        index: u32,
        title: &str,
        value: &T,
        codec: ValueCodec<T>,
        attempts: u32,
        started_ms: i64,
    ) -> Result<StepRow, StoreError> {
        let unfit = |detail: String| StoreError::Encode {
            run: self.run.to_string(),
            detail: format!(
                "step {index} (\"{title}\") output of type `{}` {detail}",
                std::any::type_name::<T>()
            ),
        };
        let output = codec
            .encode(&*self.codec, value)
            .map_err(|e| unfit(format!("does not encode: {e}")))?;
        if let Err(e) = codec.decode(&*self.codec, &output) {
            return Err(unfit(format!(
                "does not read back from the journal ({}): {e}",
                self.codec.name()
            )));
        }
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

    /// The index of the step of `kind` titled `title`: titles are unique
    /// in a workflow (the macro refuses two alike), so this is the one
    /// place a title is read as a key.
    fn index_of(&self, kind: crate::StepKind, title: &str) -> Option<u32> {
        let at = self
            .steps
            .iter()
            .position(|meta| meta.kind == kind && meta.title == title)?;
        u32::try_from(at).ok()
    }

    /// The failure step `kind` `title` failed with for good before this
    /// process took the run up, if it did.
    pub(crate) fn failed_at(&self, kind: crate::StepKind, title: &str) -> Option<EarlierFailure> {
        let row = self.done.get(&(FAILED_AT + self.index_of(kind, title)?))?;
        Some(EarlierFailure(String::from_utf8_lossy(&row.output).into()))
    }

    /// How the run's undoing ended, before this process took it up, if a
    /// compensation failed for good: the title of the step whose failure
    /// started it, and both failures.
    pub(crate) fn undo_failed(&self) -> Option<(String, String)> {
        let row = self.done.get(&UNDO_FAILED)?;
        let title = row.title.split_once(' ').map_or(&*row.title, |(_, t)| t);
        Some((
            title.to_owned(),
            String::from_utf8_lossy(&row.output).into_owned(),
        ))
    }

    /// Journals that the run failed for good at step `kind` `title`, for
    /// `reason`. A value step whose row is in the journal after all (a
    /// timeout that fired as its commit went through) did not fail: that
    /// is the journal's fault to report, and the run is driven again.
    async fn mark_failed(
        &self,
        kind: crate::StepKind,
        title: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        // A step the workflow does not list (one called inside another
        // step) has no index: the step that called it fails with it.
        let Some(index) = self.index_of(kind, title) else {
            return Ok(());
        };
        if self.done.contains_key(&(FAILED_AT + index)) {
            return Ok(());
        }
        // A deferred row is as good as a committed one: the step completed.
        if !matches!(kind, crate::StepKind::Then | crate::StepKind::Finally)
            && (self.deferred(index).is_some() || self.stored(index).await?.is_some())
        {
            return Err(StoreError::Database {
                store: self.store.describe(),
                doing: format!("failing run \"{}\" at step {index}", self.run),
                source: format!("step {index} (\"{title}\") has its row: it did not fail").into(),
            });
        }
        let now = self.now_ms();
        // Titled like no step, so it is never mistaken for a step's row.
        let row = StepRow::new(
            FAILED_AT + index,
            format!("{kind} {title}"),
            reason.as_bytes().to_vec(),
            1,
            now,
            now,
        );
        self.write_once(&row).await
    }

    /// Journals that the run's undoing, started by the failure of step
    /// `kind` `title`, ended with a compensation failed for good; `story`
    /// tells both failures, as the run's end reads.
    async fn mark_undo_failed(
        &self,
        kind: crate::StepKind,
        title: &str,
        story: &str,
    ) -> Result<(), StoreError> {
        if self.done.contains_key(&UNDO_FAILED) {
            return Ok(());
        }
        let now = self.now_ms();
        let row = StepRow::new(
            UNDO_FAILED,
            format!("{kind} {title}"),
            story.as_bytes().to_vec(),
            1,
            now,
            now,
        );
        self.write_once(&row).await
    }

    /// Whether step `index`'s compensation completed before.
    pub(crate) fn compensated(&self, index: u32) -> bool {
        self.done.contains_key(&(COMPENSATIONS + index))
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

    /// Writes `row`, fenced when this process holds the run by a lease;
    /// a deferred row goes first.
    async fn record(&self, row: &StepRow) -> Result<(), StoreError> {
        self.settle().await?;
        self.write_row(row).await
    }

    /// Writes `row` alone.
    async fn write_row(&self, row: &StepRow) -> Result<(), StoreError> {
        self.patiently(|| async {
            match &self.fence {
                Some(fence) => {
                    self.store
                        .backend()
                        .record_step_fenced(&self.run, row, fence)
                        .await
                }
                None => self.store.backend().record_step(&self.run, row).await,
            }
        })
        .await
    }

    /// Runs `write` until it succeeds or fails for a reason other than the
    /// database's (a conflict, a lost lease), trying a database failure
    /// again for up to [`WRITE_PATIENCE`]: a step's value is in hand, and
    /// giving it up would run a plain step's body again.
    async fn patiently<F, Fut>(&self, mut write: F) -> Result<(), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        // The clock is read once a write has failed, not for every write.
        let mut deadline = None;
        let mut pause = Duration::from_millis(10);
        loop {
            match write().await {
                Err(error @ StoreError::Database { .. }) => {
                    let now = tokio::time::Instant::now();
                    if now + pause > *deadline.get_or_insert(now + WRITE_PATIENCE) {
                        return Err(error);
                    }
                    tracing::debug!(run = %self.run, %error, "journal write failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(lost @ StoreError::LeaseLost { .. }) => {
                    // Even a write whose failure the step shrugs off (a
                    // failed attempt's) stops the run: another instance
                    // owns it, so no more of its effects may happen here.
                    self.lost.cancel();
                    return Err(lost);
                }
                other => return other,
            }
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

    fn failed_before(&self, kind: crate::StepKind, title: &str) -> Option<StepError> {
        if let Some(earlier) = self.failed_at(kind, title) {
            return Some(StepError::new(earlier));
        }
        // Asked to stop: a step it has not completed fails with that (a
        // step outside the workflow's list, called inside another, too);
        // the compensations that undo the ones it completed run.
        let reason = self.cancel.as_ref()?;
        if matches!(kind, crate::StepKind::Compensate | crate::StepKind::Finally) {
            return None;
        }
        Some(StepError::new(Cancelled(reason.clone())))
    }

    fn fault(&self, error: &StepError) -> Option<JournalFault> {
        Some(match error.downcast_ref::<JournalFailure>()? {
            JournalFailure(StoreError::LeaseLost { .. }) => JournalFault::LeaseLost,
            JournalFailure(_) => JournalFault::Store,
        })
    }

    fn failed_for_good(
        self: Arc<Self>,
        error: &WorkflowError,
    ) -> BoxFuture<'static, Option<StepError>> {
        let faulted = |error: &WorkflowError| match error {
            WorkflowError::Failed { error, .. } => self.fault(error).is_some(),
            _ => false,
        };
        let mark = match error {
            // Left as it is for whoever cancelled it, or driven again.
            WorkflowError::Cancelled { .. } => None,
            error if faulted(error) => None,
            // Kept as the run's end reads: the step whose failure started
            // the undoing, and the whole story.
            WorkflowError::CompensationFailed { failure, .. } => {
                if faulted(failure) || matches!(**failure, WorkflowError::Cancelled { .. }) {
                    None
                } else {
                    Some((
                        error.step().kind,
                        None,
                        error.step().title.to_string(),
                        error.to_string(),
                    ))
                }
            }
            // The reason alone: resumed, the step fails with it again, and
            // its error reads as it did.
            error => Some((
                error.step().kind,
                Some(()),
                error.step().title.to_string(),
                error.reason(),
            )),
        };
        Box::pin(async move {
            let (kind, step, title, reason) = mark?;
            let marked = match step {
                Some(()) => self.mark_failed(kind, &title, &reason).await,
                None => self.mark_undo_failed(kind, &title, &reason).await,
            };
            marked.err().map(|e| StepError::new(JournalFailure(e)))
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

#[cfg(test)]
mod tests {
    use super::deferrable;
    use crate::{StepKind, StepMeta};

    fn step(kind: StepKind, input: &'static str) -> StepMeta {
        StepMeta::new(kind, "a step", "a_step").input(input)
    }

    #[test]
    fn the_last_journaled_step_waits_for_the_end_past_then_steps_and_a_bare_finally() {
        let given = step(StepKind::Given, "u32");
        let when = step(StepKind::When, "u32");
        let then = step(StepKind::Then, "u32");
        let bare_finally = step(StepKind::Finally, "");
        let told_finally = step(StepKind::Finally, "u32");
        assert_eq!(deferrable(&[given, when]), Some(1));
        assert_eq!(deferrable(&[given, when, then, bare_finally]), Some(1));
        // A `finally` handed the outcome acts on the value: nothing waits.
        assert_eq!(deferrable(&[given, when, told_finally, then]), None);
        assert_eq!(deferrable(&[then, bare_finally]), None);
        assert_eq!(deferrable(&[]), None);
        assert_eq!(deferrable(&[given]), Some(0));
    }
}
