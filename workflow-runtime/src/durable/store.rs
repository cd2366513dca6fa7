//! The journal's storage: what a run and a completed step look like as
//! rows, the backend trait every store implements, and [`Store`], the
//! handle a runner holds.

use std::fmt;
use std::sync::Arc;

use super::codec::{Codec, Json};
use super::query::{RunFilter, RunPage};
use super::retention::{Purge, Retention};
use crate::behavior::BoxFuture;

/// Where a durable run is.
///
/// ```
/// use workflow_runtime::durable::RunStatus;
/// assert_eq!(RunStatus::parse("completed"), Some(RunStatus::Completed));
/// assert!(!RunStatus::Running.is_finished());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum RunStatus {
    /// Started and not finished: resumed by a runner that opens the store.
    Running,
    /// Every step completed; the output is journaled.
    Completed,
    /// A step failed for good; the error is journaled. Its compensations,
    /// if it has any, ran.
    Failed,
    /// A step failed for good, and then a compensation did too: what it
    /// should have undone may still stand, for someone to look at.
    CompensationFailed,
    /// Its definition's fingerprint no longer matches the code: parked,
    /// never replayed silently.
    Incompatible,
    /// Parked because nobody could make progress on it: its journal failed
    /// it again and again past the runner's bound, or one of its rows does
    /// not read back. The error says why; a person resumes it
    /// ([`Runner::resume_parked`](crate::host::Runner::resume_parked)).
    Stuck,
    /// Cancelled by id ([`Runner::cancel`](crate::host::Runner::cancel)):
    /// it stopped at its next await, and the steps it had completed were
    /// undone. The error says who or why, as the canceller gave it.
    Cancelled,
}

impl RunStatus {
    /// The status as stored (`"running"`, `"completed"`, ..).
    ///
    /// ```
    /// # use workflow_runtime::durable::RunStatus;
    /// assert_eq!(RunStatus::Incompatible.as_str(), "incompatible");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::CompensationFailed => "compensation_failed",
            RunStatus::Incompatible => "incompatible",
            RunStatus::Stuck => "stuck",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// The status a stored string names, if any.
    ///
    /// ```
    /// # use workflow_runtime::durable::RunStatus;
    /// assert_eq!(RunStatus::parse("nope"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "compensation_failed" => RunStatus::CompensationFailed,
            "incompatible" => RunStatus::Incompatible,
            "stuck" => RunStatus::Stuck,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether a runner will never touch the run again (parked runs wait
    /// for a person to resume them).
    ///
    /// ```
    /// # use workflow_runtime::durable::RunStatus;
    /// assert!(RunStatus::Failed.is_finished());
    /// ```
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Running)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A run as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunRow {
    /// The caller's run id: unique in the store.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The definition's fingerprint when the run started.
    pub fingerprint: String,
    /// Where it is.
    pub status: RunStatus,
    /// The encoded input.
    pub input: Vec<u8>,
    /// The encoded output, once completed.
    pub output: Option<Vec<u8>>,
    /// Why it failed, once failed (or why it is incompatible).
    pub error: Option<String>,
    /// The title of the step it failed at, when a step failed it.
    pub failed_step: Option<String>,
    /// When it was started, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When its row last changed, in milliseconds since the Unix epoch.
    pub updated_ms: i64,
    /// The name of the codec its payloads are written with: the store's
    /// when it started, kept for its whole life, so a store given another
    /// codec still reads the runs it had.
    pub codec: String,
    /// What a suspended run waits for (`"sleep"`, `"event:approval"`):
    /// it holds no task and no worker until [`wake_ms`](Self::wake_ms),
    /// or until an event it waits for arrives. `None` when it is not
    /// suspended.
    pub waiting: Option<String>,
    /// When a suspended run wakes, in ms since the Unix epoch; `None` for
    /// a wait without a deadline.
    pub wake_ms: Option<i64>,
    /// Why it was asked to stop ([`Runner::cancel`](crate::host::Runner::cancel)),
    /// once it was: whichever instance drives it next undoes it.
    pub cancel: Option<String>,
    /// How many events were sent to it.
    pub events: u32,
    /// The run that started this one as a child
    /// ([`StepCtx::child`](super::StepCtx::child)), if one did: it is
    /// woken when this one ends.
    pub parent: Option<String>,
    /// The W3C trace context (`traceparent`) of the code that started the
    /// run, when it ran in a trace (feature `opentelemetry`): whichever
    /// process drives the run parents its spans on it, so one trace shows
    /// the whole run.
    pub trace: Option<String>,
}

impl RunRow {
    /// Whether a worker may take the run up at `now_ms`: running, and not
    /// suspended past `now_ms`.
    ///
    /// ```
    /// use workflow_runtime::durable::RunRow;
    /// let mut run = RunRow::new("r", "W", "f", b"1".to_vec());
    /// assert!(run.due(0));
    /// run.waiting = Some("sleep".into());
    /// run.wake_ms = Some(10);
    /// assert!(!run.due(9));
    /// assert!(run.due(10));
    /// ```
    pub fn due(&self, now_ms: i64) -> bool {
        self.status == RunStatus::Running
            && (self.waiting.is_none() || self.wake_ms.is_some_and(|wake| wake <= now_ms))
    }
}

impl RunRow {
    /// A new running run.
    ///
    /// ```
    /// use workflow_runtime::durable::{RunRow, RunStatus};
    /// let run = RunRow::new("order-42", "Pay", "f1", b"42".to_vec());
    /// assert_eq!(run.status, RunStatus::Running);
    /// assert_eq!(run.created_ms, run.updated_ms);
    /// ```
    pub fn new(
        id: impl Into<String>,
        workflow: impl Into<String>,
        fingerprint: impl Into<String>,
        input: Vec<u8>,
    ) -> Self {
        let now = now_ms();
        RunRow {
            id: id.into(),
            workflow: workflow.into(),
            fingerprint: fingerprint.into(),
            status: RunStatus::Running,
            input,
            output: None,
            error: None,
            failed_step: None,
            created_ms: now,
            updated_ms: now,
            codec: "json".to_owned(),
            waiting: None,
            wake_ms: None,
            cancel: None,
            events: 0,
            parent: None,
            trace: None,
        }
    }
}

/// A completed step as the journal holds it: its output is what a resumed
/// run hands on instead of running the step again. The journal keeps its
/// own marks in rows of this shape too, past the steps' indices (a
/// compensation done, the step the run failed at): [`mark`](Self::mark)
/// tells them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRow {
    /// Its place in the workflow, from 0.
    pub index: u32,
    /// Its title.
    pub title: String,
    /// The encoded output.
    pub output: Vec<u8>,
    /// How many attempts it took.
    pub attempts: u32,
    /// When it started and ended, in milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// See `started_ms`.
    pub ended_ms: i64,
}

/// What a journal row past the steps' own says about its run.
///
/// ```
/// use workflow_runtime::durable::{JournalMark, StepRow};
/// let failed = StepRow::new(2_000_003, "When ship", b"no carrier".to_vec(), 1, 0, 0);
/// assert_eq!(failed.mark(), Some(JournalMark::FailedAt(3)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalMark {
    /// Step `n`'s compensation completed.
    Compensated(u32),
    /// The run failed for good at step `n`; the row's output is why.
    FailedAt(u32),
    /// The run's undoing ended with a compensation failed for good.
    UndoFailed,
    /// The `n`th redrive ([`Runner::redrive`](crate::host::Runner::redrive))
    /// put the run back to work; the row keeps the failure it had then.
    Redriven(u32),
    /// Event number `n` was consumed by a wait a redrive dropped: it stays
    /// consumed.
    Consumed(u32),
    /// Step `step` reached its `wait`th sleep or event wait (from 0, in
    /// the attempt's order); the row holds when it wakes.
    WaitStarted {
        /// The step's index.
        step: u32,
        /// The wait's number in the step.
        wait: u32,
    },
    /// That wait ended: the row holds the event it consumed, or says it
    /// timed out.
    WaitEnded {
        /// The step's index.
        step: u32,
        /// The wait's number in the step.
        wait: u32,
    },
}

impl StepRow {
    /// What the row marks, if it is one of the journal's own rows rather
    /// than a completed step's.
    ///
    /// ```
    /// use workflow_runtime::durable::{JournalMark, StepRow};
    /// assert_eq!(StepRow::new(1, "charge", vec![], 1, 0, 0).mark(), None);
    /// assert_eq!(
    ///     StepRow::new(1_000_001, "charge", vec![], 1, 0, 0).mark(),
    ///     Some(JournalMark::Compensated(1))
    /// );
    /// ```
    pub fn mark(&self) -> Option<JournalMark> {
        use super::journal::{COMPENSATIONS, CONSUMED, FAILED_AT, REDRIVEN, UNDO_FAILED, WAITS};
        match self.index {
            i if i < COMPENSATIONS => None,
            i if i < FAILED_AT => Some(JournalMark::Compensated(i - COMPENSATIONS)),
            i if i < UNDO_FAILED => Some(JournalMark::FailedAt(i - FAILED_AT)),
            i if i < REDRIVEN => Some(JournalMark::UndoFailed),
            i if i < CONSUMED => Some(JournalMark::Redriven(i - REDRIVEN)),
            i if i < WAITS => Some(JournalMark::Consumed(i - CONSUMED)),
            i => {
                let (step, wait) = super::journal::wait_place(i);
                Some(if (i - WAITS).is_multiple_of(2) {
                    JournalMark::WaitStarted { step, wait }
                } else {
                    JournalMark::WaitEnded { step, wait }
                })
            }
        }
    }

    /// A completed step's row.
    ///
    /// ```
    /// use workflow_runtime::durable::StepRow;
    /// let row = StepRow::new(1, "charge", b"{}".to_vec(), 2, 10, 20);
    /// assert_eq!(row.attempts, 2);
    /// ```
    pub fn new(
        index: u32,
        title: impl Into<String>,
        output: Vec<u8>,
        attempts: u32,
        started_ms: i64,
        ended_ms: i64,
    ) -> Self {
        StepRow {
            index,
            title: title.into(),
            output,
            attempts,
            started_ms,
            ended_ms,
        }
    }
}

/// A step's failed attempts so far, as the journal holds them: what a
/// resumed run's retry goes on from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureRow {
    /// The step's place in the workflow, from 0.
    pub index: u32,
    /// How many attempts failed.
    pub attempts: u32,
    /// When the last one failed, in milliseconds since the Unix epoch.
    pub failed_ms: i64,
    /// The last one's error.
    pub error: String,
}

impl FailureRow {
    /// `attempts` failed attempts of step `index`, the last just now.
    ///
    /// ```
    /// use workflow_runtime::durable::FailureRow;
    /// let row = FailureRow::new(1, 2, "declined");
    /// assert_eq!((row.index, row.attempts), (1, 2));
    /// ```
    pub fn new(index: u32, attempts: u32, error: impl Into<String>) -> Self {
        FailureRow {
            index,
            attempts,
            failed_ms: now_ms(),
            error: error.into(),
        }
    }
}

/// How a run ended, as [`Backend::finish_run`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunEnd {
    /// Completed with this encoded output.
    Completed(Vec<u8>),
    /// Failed with this error, at this step (when a step failed it).
    Failed {
        /// Why.
        error: String,
        /// The step's title.
        step: Option<String>,
    },
    /// A step failed, then a compensation failed too: this error (both
    /// failures), at the step that failed first.
    CompensationFailed {
        /// Why.
        error: String,
        /// The step's title.
        step: Option<String>,
    },
    /// Parked: the code no longer matches the journal.
    Incompatible(String),
    /// Parked: nobody could make progress on it, for this reason.
    Stuck(String),
    /// Cancelled by id, for this reason, at this step (the first it had
    /// not completed); what it completed was undone.
    Cancelled {
        /// Who or why, as the canceller said.
        reason: String,
        /// The step it stopped at.
        step: Option<String>,
    },
}

/// What a suspended run waits for: what a step's sleep or event wait
/// hands [`Backend::suspend`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Suspension {
    /// What it waits for: `"sleep"`, `"event:{name}"`.
    pub waiting: String,
    /// When it wakes (ms since the Unix epoch); `None` waits for an event
    /// without a deadline.
    pub wake_ms: Option<i64>,
    /// How many events the run had when the step last looked: one sent
    /// since (the run's count is higher) keeps it from suspending.
    pub events_seen: u32,
    /// Now, by the clock `wake_ms` was reckoned by: a store with a clock
    /// of its own (a database's) wakes the run `wake_ms - now_ms` from
    /// its own now.
    pub now_ms: i64,
    /// The run is being undone because it was asked to stop (a
    /// compensation sleeps): it suspends though a cancel is recorded.
    pub undoing: bool,
}

impl Suspension {
    /// A suspension: waiting for `waiting` until `wake_ms`, having seen
    /// `events_seen` events.
    ///
    /// ```
    /// use workflow_runtime::durable::Suspension;
    /// let sleep = Suspension::new("sleep", Some(1_000), 0);
    /// assert_eq!(sleep.wake_ms, Some(1_000));
    /// ```
    pub fn new(waiting: impl Into<String>, wake_ms: Option<i64>, events_seen: u32) -> Self {
        Suspension {
            waiting: waiting.into(),
            wake_ms,
            events_seen,
            now_ms: now_ms(),
            undoing: false,
        }
    }

    /// The same, `wake_ms` reckoned by a clock that reads `now_ms` now
    /// (a runner's).
    ///
    /// ```
    /// use workflow_runtime::durable::Suspension;
    /// let sleep = Suspension::new("sleep", Some(1_000), 0).at(400);
    /// assert_eq!(sleep.now_ms, 400);
    /// ```
    #[must_use]
    pub fn at(mut self, now_ms: i64) -> Self {
        self.now_ms = now_ms;
        self
    }

    /// The same, for a run being undone for a cancel: suspended though
    /// the cancel is recorded.
    ///
    /// ```
    /// use workflow_runtime::durable::Suspension;
    /// assert!(Suspension::new("sleep", Some(1_000), 0).undoing(true).undoing);
    /// ```
    #[must_use]
    pub fn undoing(mut self, undoing: bool) -> Self {
        self.undoing = undoing;
        self
    }
}

/// An event sent to a run, as the store keeps it until (and after) the
/// run consumes it.
///
/// ```
/// # use workflow_runtime::durable::{Backend, MemoryStore, RunRow};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new();
/// store.insert_run(&RunRow::new("r", "W", "f", b"1".to_vec())).await.unwrap();
/// store.send_event("r", "approval", b"true", Some("req-1"), 5).await.unwrap();
/// let events = store.events("r").await.unwrap();
/// assert_eq!((events[0].seq, events[0].key.as_deref()), (1, Some("req-1")));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventRow {
    /// Its number among the run's events, from 1, in the order they
    /// arrived.
    pub seq: u32,
    /// Its name: what a step waits for.
    pub name: String,
    /// The encoded value.
    pub payload: Vec<u8>,
    /// The sender's deduplication key, if it gave one: a second event
    /// with the same key to the same run is not added.
    pub key: Option<String>,
    /// When it arrived (ms since the Unix epoch).
    pub sent_ms: i64,
}

/// What [`Backend::send_event`] did.
///
/// ```
/// # use workflow_runtime::durable::{Backend, MemoryStore, RunRow, Sent};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new();
/// store.insert_run(&RunRow::new("r", "W", "f", b"1".to_vec())).await.unwrap();
/// let first = store.send_event("r", "paid", b"1", Some("m-1"), 0).await.unwrap();
/// let again = store.send_event("r", "paid", b"1", Some("m-1"), 0).await.unwrap();
/// assert_eq!((first, again), (Sent::Delivered(1), Sent::Duplicate(1)));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sent {
    /// Added as the run's event number `seq`.
    Delivered(u32),
    /// An event with the same deduplication key was there: nothing was
    /// added; it is number `seq`.
    Duplicate(u32),
    /// The run has ended (in this status): nothing was added.
    Finished(RunStatus),
}

impl Redrive {
    /// From step `from`, without the rows in `drop`, with `notes` added.
    ///
    /// ```
    /// use workflow_runtime::durable::{Redrive, StepRow};
    /// let note = StepRow::new(4_000_000, "charge", vec![], 1, 0, 0);
    /// let redrive = Redrive::new(2, vec![2_000_002], vec![note]);
    /// assert_eq!(redrive.from, 2);
    /// ```
    pub fn new(from: u32, drop: Vec<u32>, notes: Vec<StepRow>) -> Self {
        Redrive { from, drop, notes }
    }
}

/// What [`Backend::redrive`] changes in one transaction: a failed run is
/// put back to running, its journal cut back to before step `from` (the
/// rows in `drop` go: later steps', compensations', the failure marks),
/// its failed attempts from step `from` on forgotten, and `notes` added
/// (the failure it had; the events its dropped waits had consumed, which
/// stay consumed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redrive {
    /// The first step that runs again.
    pub from: u32,
    /// The journal rows removed.
    pub drop: Vec<u32>,
    /// The rows added.
    pub notes: Vec<StepRow>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// A row that does not read back as a journal row: the run, and why.
pub(crate) fn corrupt(run: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        run: run.to_owned(),
        detail: detail.to_string(),
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// A SQL store's running rows, read: the runs that read back, and each
/// that does not (and has an id) with why, for the store to park: one bad
/// row must not keep every other run from resuming.
pub(crate) fn readable<R>(
    rows: &[R],
    read: impl Fn(&R) -> Result<RunRow, StoreError>,
    id: impl Fn(&R) -> Option<String>,
) -> (Vec<RunRow>, Vec<(String, StoreError)>) {
    let mut running = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in rows {
        match (read(row), id(row)) {
            (Ok(run), _) => running.push(run),
            (Err(error), Some(id)) => {
                tracing::error!(run = %id, %error, "parking a run whose row does not read back");
                unreadable.push((id, error));
            }
            (Err(error), None) => {
                tracing::error!(%error, "a running run's row does not read back, not even its id");
            }
        }
    }
    (running, unreadable)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Counts one `(workflow, status)` group of a SQL store's
/// `SELECT workflow, status, COUNT(*), MIN(created_ms) .. GROUP BY
/// workflow, status` into `counts`.
pub(crate) fn count_group(
    counts: &mut WorkflowCounts,
    (workflow, status, n, oldest): (String, String, i64, Option<i64>),
) -> Result<(), StoreError> {
    let status = RunStatus::parse(&status)
        .ok_or_else(|| corrupt("?", format!("unknown status \"{status}\"")))?;
    counts
        .entry(workflow)
        .or_default()
        .add(status, u64::try_from(n).unwrap_or(0), oldest);
    Ok(())
}

/// The earlier of two optional times.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Runs per status for each workflow, by the workflow's name.
pub type WorkflowCounts = std::collections::BTreeMap<String, RunCounts>;

/// Runs per status, and the oldest unfinished run: what health shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RunCounts {
    /// Runs started and not finished.
    pub running: u64,
    /// Runs that completed.
    pub completed: u64,
    /// Runs that failed.
    pub failed: u64,
    /// Runs that failed and whose compensation failed too: each wants a
    /// person.
    pub compensation_failed: u64,
    /// Runs parked because their definition changed.
    pub incompatible: u64,
    /// Runs parked because nobody could make progress on them.
    pub stuck: u64,
    /// Runs cancelled by id.
    pub cancelled: u64,
    /// When the oldest unfinished run started (ms since the Unix epoch).
    pub oldest_running_ms: Option<i64>,
    /// On a store with leases: running runs no live lease holds, waiting
    /// for a worker (enqueued, or left by an instance that died).
    pub waiting: u64,
    /// When the oldest of those was started.
    pub oldest_waiting_ms: Option<i64>,
}

/// A recurring workflow's schedule as a shared store keeps it
/// ([`Runner::schedules`](crate::host::Runner::schedules)).
///
/// ```
/// use workflow_runtime::durable::ScheduleRow;
/// fn line(s: &ScheduleRow) -> String {
///     let state = if s.paused { "paused" } else { "active" };
///     format!("{} {state}, next tick {:?}", s.workflow, s.next_tick_ms)
/// }
/// # let _ = line;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleRow {
    /// The workflow.
    pub workflow: String,
    /// Its next tick (ms since the Unix epoch); `None` once it fires no
    /// more.
    pub next_tick_ms: Option<i64>,
    /// The last tick that fired a run, if any has.
    pub last_tick_ms: Option<i64>,
    /// Whether it is paused: its ticks pass and fire nothing.
    pub paused: bool,
}

/// Who holds a run, and since which claim: a write carrying a fence
/// lands only while the run's owner and epoch are still these, so an
/// instance that lost its lease (paused, partitioned) cannot record over
/// the instance that took the run over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The instance that claimed the run.
    pub owner: String,
    /// The claim's number: every claim of a run counts one up.
    pub epoch: i64,
}

/// A run claimed by [`Backend::claim`], with the fence its writes carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The run.
    pub run: RunRow,
    /// Its fence.
    pub fence: Fence,
}

impl RunCounts {
    /// Counts `n` more runs in `status`, the oldest started at
    /// `oldest_ms`: what each store folds its rows (or groups) into.
    pub(crate) fn add(&mut self, status: RunStatus, n: u64, oldest_ms: Option<i64>) {
        match status {
            RunStatus::Running => {
                self.running += n;
                self.oldest_running_ms = earliest(self.oldest_running_ms, oldest_ms);
            }
            RunStatus::Completed => self.completed += n,
            RunStatus::Failed => self.failed += n,
            RunStatus::CompensationFailed => self.compensation_failed += n,
            RunStatus::Incompatible => self.incompatible += n,
            RunStatus::Stuck => self.stuck += n,
            RunStatus::Cancelled => self.cancelled += n,
        }
    }

    /// Adds `other`'s runs to these (a total over workflows).
    pub(crate) fn merge(&mut self, other: &RunCounts) {
        self.running += other.running;
        self.completed += other.completed;
        self.failed += other.failed;
        self.compensation_failed += other.compensation_failed;
        self.incompatible += other.incompatible;
        self.stuck += other.stuck;
        self.cancelled += other.cancelled;
        self.waiting += other.waiting;
        self.oldest_running_ms = earliest(self.oldest_running_ms, other.oldest_running_ms);
        self.oldest_waiting_ms = earliest(self.oldest_waiting_ms, other.oldest_waiting_ms);
    }
}

impl RunRow {
    /// How the run ended, as its row says ([`RunEnd::columns`] read
    /// back); `None` while it runs.
    pub(crate) fn end(&self) -> Option<RunEnd> {
        let error = || self.error.clone().unwrap_or_default();
        let step = || self.failed_step.clone();
        Some(match self.status {
            RunStatus::Running => return None,
            RunStatus::Completed => RunEnd::Completed(self.output.clone().unwrap_or_default()),
            RunStatus::Failed => RunEnd::Failed {
                error: error(),
                step: step(),
            },
            RunStatus::CompensationFailed => RunEnd::CompensationFailed {
                error: error(),
                step: step(),
            },
            RunStatus::Incompatible => RunEnd::Incompatible(error()),
            RunStatus::Stuck => RunEnd::Stuck(error()),
            RunStatus::Cancelled => RunEnd::Cancelled {
                reason: error(),
                step: step(),
            },
        })
    }
}

impl RunEnd {
    /// The status the run ends in and the columns it sets: the output,
    /// the error, the step it failed at.
    pub(crate) fn columns(&self) -> (RunStatus, Option<&[u8]>, Option<&str>, Option<&str>) {
        match self {
            RunEnd::Completed(output) => (RunStatus::Completed, Some(output), None, None),
            RunEnd::Failed { error, step } => {
                (RunStatus::Failed, None, Some(error), step.as_deref())
            }
            RunEnd::CompensationFailed { error, step } => (
                RunStatus::CompensationFailed,
                None,
                Some(error),
                step.as_deref(),
            ),
            RunEnd::Incompatible(why) => (RunStatus::Incompatible, None, Some(why), None),
            RunEnd::Stuck(why) => (RunStatus::Stuck, None, Some(why), None),
            RunEnd::Cancelled { reason, step } => {
                (RunStatus::Cancelled, None, Some(reason), step.as_deref())
            }
        }
    }
}

/// What [`Backend::insert_run`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
// Returned once per insert, never kept: boxing the row would cost an
// allocation and save nothing.
#[allow(clippy::large_enum_variant)]
pub enum Inserted {
    /// The run is new: its row was written.
    New,
    /// A run with that id exists: here it is, unchanged.
    Existing(RunRow),
}

/// Why the store could not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database said no: opening, reading or writing.
    Database {
        /// Which store (a file path, `memory`).
        store: String,
        /// What was being done.
        doing: String,
        /// The database's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A journal row could not be read back as what the code expects.
    Corrupt {
        /// The run it belongs to.
        run: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A value could not be encoded for the journal (a map with non-string
    /// keys, say): the run fails; nothing is written.
    Encode {
        /// The run.
        run: String,
        /// What could not be encoded, and why.
        detail: String,
    },
    /// A step of a run was journaled twice: a second writer.
    Conflict {
        /// The run.
        run: String,
        /// The step.
        index: u32,
    },
    /// The run is not in the store.
    NoSuchRun(String),
    /// This instance's lease on the run is gone: another instance claimed
    /// it (this one was paused, or cut off, past its lease). Nothing was
    /// written.
    LeaseLost {
        /// The run.
        run: String,
        /// The instance whose write was refused.
        owner: String,
    },
    /// The store cannot do what a step asked: a transaction of a kind it
    /// does not have.
    Unsupported {
        /// Which store.
        store: String,
        /// What was asked.
        what: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database {
                store,
                doing,
                source,
            } => write!(f, "store {store}: {doing}: {source}"),
            StoreError::Corrupt { run, detail } => {
                write!(f, "run \"{run}\": corrupt journal: {detail}")
            }
            StoreError::Encode { run, detail } => write!(f, "run \"{run}\": {detail}"),
            StoreError::Conflict { run, index } => write!(
                f,
                "run \"{run}\": step {index} is already journaled (another writer?)"
            ),
            StoreError::NoSuchRun(run) => write!(f, "no run \"{run}\" in the store"),
            StoreError::LeaseLost { run, owner } => write!(
                f,
                "run \"{run}\": instance {owner} lost its lease; another instance owns the run"
            ),
            StoreError::Unsupported { store, what } => write!(f, "store {store}: {what}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Database { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

/// What a store does. Every method is one atomic change or one read;
/// the shared conformance suite (`tests/store_conformance.rs`) says what
/// each must guarantee.
///
/// Implemented by the in-memory and SQLite stores; open for others.
pub trait Backend: Send + Sync + 'static {
    /// A short description for errors: a file path, `memory`.
    fn describe(&self) -> String;

    /// Writes `run` unless a run with its id exists, in which case it
    /// returns that one and writes nothing.
    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>>;

    /// The run with this id.
    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>>;

    /// The run's completed steps, by index.
    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>>;

    /// Journals a completed step. A second row for the same step is a
    /// [`StoreError::Conflict`] and changes nothing.
    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records a step's failed attempts so far, replacing what was there
    /// for that step.
    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The run's failed attempts, per step.
    fn failures<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<FailureRow>, StoreError>>;

    /// Ends a running run. Ending one that is not running changes nothing
    /// and says so (`Ok(false)`).
    fn finish_run<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Every running run, oldest first. A row that does not read back is
    /// parked [`RunStatus::Stuck`] with why, not returned: one bad row
    /// must not keep every other run from resuming.
    fn running(&self) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>>;

    /// Up to `limit` running runs due at `now_ms` ([`RunRow::due`]: not
    /// suspended, or suspended until then), oldest first: what the one
    /// process of a store without leases takes up.
    fn due(&self, now_ms: i64, limit: usize) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        Box::pin(async move {
            let mut due = self.running().await?;
            due.retain(|run| run.due(now_ms));
            due.truncate(limit);
            Ok(due)
        })
    }

    /// Of the runs [`due`](Self::due) at `now_ms`, the suspended ones
    /// (woken by their time, an event, a child's end or a cancel), up to
    /// `limit`: what the waker of a store without leases drives.
    fn woken(&self, now_ms: i64, limit: usize) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        Box::pin(async move {
            let mut due = self.due(now_ms, usize::MAX).await?;
            due.retain(|run| run.waiting.is_some());
            due.truncate(limit);
            Ok(due)
        })
    }

    /// When the next suspended run wakes, if one waits with a deadline.
    fn next_wake(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let running = self.running().await?;
            Ok(running
                .iter()
                .filter(|run| run.waiting.is_some())
                .filter_map(|run| run.wake_ms)
                .min())
        })
    }

    /// Of `runs`, the ones no longer running: what a runner's watcher of
    /// runs driven elsewhere asks, once for all its waiters.
    fn finished<'a>(
        &'a self,
        runs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let mut finished = Vec::new();
            for id in runs {
                if let Some(run) = self.run(id).await?
                    && run.status != RunStatus::Running
                {
                    finished.push(id.clone());
                }
            }
            Ok(finished)
        })
    }

    /// Puts a parked run ([`RunStatus::Stuck`] or
    /// [`RunStatus::Incompatible`]) back to running, unclaimed, its error
    /// cleared and its journal kept; whether it was parked.
    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = run;
        Box::pin(std::future::ready(Err(StoreError::Unsupported {
            store: self.describe(),
            what: "this store cannot resume parked runs".to_owned(),
        })))
    }

    /// Suspends running run `run`: a step sleeps, or waits for an event.
    /// Until it wakes it is not due ([`RunRow::due`]): no worker takes it
    /// up, and on a store with leases its lease is let go (a suspended
    /// run's lease runs until it wakes, held by nobody). Refused
    /// (`Ok(false)`, nothing changed) when the run has had more events
    /// than `events_seen` (the step looks at them again), was asked to
    /// stop (it is undone instead; unless it is being undone), or is not
    /// running; with a `fence`, refused with [`StoreError::LeaseLost`]
    /// unless it holds. `None` marks the run awake, driven again. On a
    /// store that does not implement it, a run that sleeps longer than a
    /// second or waits for an event is driven again until it is parked
    /// `stuck`.
    fn suspend<'a>(
        &'a self,
        run: &'a str,
        suspension: Option<&'a Suspension>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (run, suspension, fence);
        Box::pin(std::future::ready(Err(unsupported(
            self.describe(),
            "suspend runs",
        ))))
    }

    /// Adds an event named `name` to run `run`'s, unless one with the
    /// same deduplication `key` is there; wakes the run (due at `now_ms`)
    /// if it is suspended waiting for an event of that name. One
    /// transaction: two sends with one key add one event.
    fn send_event<'a>(
        &'a self,
        run: &'a str,
        name: &'a str,
        payload: &'a [u8],
        key: Option<&'a str>,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Sent, StoreError>> {
        let _ = (run, name, payload, key, now_ms);
        Box::pin(std::future::ready(Err(unsupported(
            self.describe(),
            "take events",
        ))))
    }

    /// The events sent to run `run`, by number.
    fn events<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<EventRow>, StoreError>> {
        let _ = run;
        Box::pin(std::future::ready(Err(unsupported(
            self.describe(),
            "take events",
        ))))
    }

    /// Asks running run `run` to stop: records `reason` (a second request
    /// keeps the first) and wakes it at `now_ms` if it is suspended, so
    /// whichever instance drives it next undoes it. The run's status as
    /// found: a run that is not running is left as it is.
    fn request_cancel<'a>(
        &'a self,
        run: &'a str,
        reason: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        let _ = (run, reason, now_ms);
        Box::pin(std::future::ready(Err(unsupported(
            self.describe(),
            "cancel runs",
        ))))
    }

    /// Of `runs`, the running ones asked to stop: what a runner driving
    /// them asks now and then, so a cancel sent from another process
    /// reaches them.
    fn cancelling<'a>(
        &'a self,
        runs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let mut cancelling = Vec::new();
            for id in runs {
                if let Some(run) = self.run(id).await?
                    && run.status == RunStatus::Running
                    && run.cancel.is_some()
                {
                    cancelling.push(id.clone());
                }
            }
            Ok(cancelling)
        })
    }

    /// Puts failed run `run` back to running, as [`Redrive`] says, in one
    /// transaction; whether it was failed.
    fn redrive<'a>(
        &'a self,
        run: &'a str,
        redrive: &'a Redrive,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (run, redrive);
        Box::pin(std::future::ready(Err(unsupported(
            self.describe(),
            "redrive runs",
        ))))
    }

    /// Runs per status, for each workflow with runs in the store; a
    /// running run whose lease ran out before `now_ms` counts as waiting
    /// (a store with a clock of its own judges leases by it instead).
    fn counts_by_workflow(&self, now_ms: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>>;

    /// The runs `filter` admits, newest first (by start time, then id),
    /// at most one more than its [`page_size`](RunFilter::page_size): the
    /// extra one tells the caller there is a next page.
    fn runs<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<Vec<RunRow>, StoreError>> {
        let _ = filter;
        Box::pin(std::future::ready(Err(unsupported(
            self.describe(),
            "listing runs",
        ))))
    }

    /// Removes at most [`purge.batch`](Purge::batch) runs the purge names,
    /// with their steps, failures and events, in one transaction, and
    /// says how many went. Running and parked runs are never removed, nor
    /// a child whose parent still runs. A store many instances share lets
    /// one of them purge at a time (the others remove nothing and say 0).
    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, StoreError>> {
        let _ = purge;
        Box::pin(std::future::ready(Err(unsupported(
            self.describe(),
            "purging finished runs",
        ))))
    }

    /// The concrete store, for what only it offers (a SQL transaction).
    fn as_any(&self) -> &dyn std::any::Any;

    /// Whether runs are claimed with leases ([`claim`](Self::claim)), so
    /// that many instances can share the store. Stores without leases
    /// belong to one process, which drives every running run.
    fn leases(&self) -> bool {
        false
    }

    /// Claims up to `limit` running runs of `workflows` (each a name and
    /// the fingerprint of the definition `owner` runs: a run journaled by
    /// another version of the workflow is left to an instance that runs
    /// it) that no live lease holds (never claimed, released, or whose
    /// lease ran out before `now_ms`), oldest first, for `owner` until
    /// `until_ms`; each claim counts the run's epoch up. Runs other
    /// instances are claiming at the same moment are skipped, not waited
    /// for. A store with a clock of its own (a database's) judges and
    /// gives leases by it, for `until_ms - now_ms`. A run of one of the
    /// names journaled by another definition is claimed too once no lease
    /// or start has touched it for `orphans_ms` (no instance runs its
    /// version any more): its driver parks it.
    fn claim<'a>(
        &'a self,
        owner: &'a str,
        workflows: &'a [(String, String)],
        limit: u32,
        (now_ms, until_ms): (i64, i64),
        orphans_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, StoreError>> {
        let _ = (owner, workflows, limit, now_ms, until_ms, orphans_ms);
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// Claims run `id` for `owner` until `until_ms` if no lease live at
    /// `now_ms` holds it, `owner`'s own included (its driver is running
    /// the run).
    fn claim_run<'a>(
        &'a self,
        owner: &'a str,
        id: &'a str,
        (now_ms, until_ms): (i64, i64),
    ) -> BoxFuture<'a, Result<Option<Claimed>, StoreError>> {
        let _ = (owner, id, now_ms, until_ms);
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// The instances that hold leases live at `now_ms` (or by the store's
    /// own clock, if it has one), with how many runs each holds: who is
    /// working on a shared store. Empty without leases.
    fn holders(
        &self,
        now_ms: i64,
    ) -> BoxFuture<'_, Result<std::collections::BTreeMap<String, u64>, StoreError>> {
        let _ = now_ms;
        Box::pin(std::future::ready(Ok(Default::default())))
    }

    /// Extends `owner`'s leases on `runs` (the ones it drives) to
    /// `until_ms` (judged as for [`claim`](Self::claim)); the runs it
    /// still holds. A run left out was taken over: its driver stops. Runs
    /// `owner` holds but no longer drives (a predecessor's, under the same
    /// name) are left to run out.
    fn renew<'a>(
        &'a self,
        owner: &'a str,
        runs: &'a [String],
        (now_ms, until_ms): (i64, i64),
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let _ = (owner, runs, now_ms, until_ms);
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// Lets go of `owner`'s leases, so other instances take its runs up at
    /// once; how many it held.
    fn release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        let _ = owner;
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// [`record_step`](Self::record_step), refused with
    /// [`StoreError::LeaseLost`] unless `fence` still holds the run. Stores
    /// without leases write unfenced; a store with leases must implement
    /// this (and the other fenced writes), or its fenced writes fail.
    fn record_step_fenced<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = fence;
        if self.leases() {
            return Box::pin(std::future::ready(Err(unfenced(self.describe()))));
        }
        self.record_step(run, step)
    }

    /// [`record_failure`](Self::record_failure), refused with
    /// [`StoreError::LeaseLost`] unless `fence` still holds the run.
    fn record_failure_fenced<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = fence;
        if self.leases() {
            return Box::pin(std::future::ready(Err(unfenced(self.describe()))));
        }
        self.record_failure(run, failure)
    }

    /// [`finish_run`](Self::finish_run), refused with
    /// [`StoreError::LeaseLost`] unless `fence` still holds the run.
    fn finish_run_fenced<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = fence;
        if self.leases() {
            return Box::pin(std::future::ready(Err(unfenced(self.describe()))));
        }
        self.finish_run(run, end)
    }

    /// Ends a running run (as [`finish_run`](Self::finish_run) does)
    /// together with the row of its last journaled step, `last`, when the
    /// run left that row for its end to write; fenced by `fence` when
    /// there is one. A row for that step already there is as good as this
    /// one.
    ///
    /// The default writes the row, then the end: two writes, as a store
    /// that cannot make them one transaction makes them. SQLite and
    /// PostgreSQL make them one, and save the run a commit.
    ///
    /// ```
    /// # use workflow_runtime::durable::{Backend, RunEnd, RunRow, StepRow, Store};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Store::memory();
    /// let run = RunRow::new("r1", "Order", "fp", b"1".to_vec());
    /// store.backend().insert_run(&run).await.unwrap();
    /// let last = StepRow::new(0, "paid", b"2".to_vec(), 1, 0, 0);
    /// let end = RunEnd::Completed(b"2".to_vec());
    /// let ended = store.backend().finish_run_with("r1", &end, Some(&last), None);
    /// assert!(ended.await.unwrap());
    /// assert_eq!(store.backend().steps("r1").await.unwrap().len(), 1);
    /// # }
    /// ```
    fn finish_run_with<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
        last: Option<&'a StepRow>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if let Some(row) = last {
                let written = match fence {
                    Some(fence) => self.record_step_fenced(run, row, fence).await,
                    None => self.record_step(run, row).await,
                };
                match written {
                    Ok(()) | Err(StoreError::Conflict { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            match fence {
                Some(fence) => self.finish_run_fenced(run, end, fence).await,
                None => self.finish_run(run, end).await,
            }
        })
    }

    /// The next tick of recurring workflow `workflow`, in ms since the Unix
    /// epoch: `first` if the store has none yet.
    fn next_tick<'a>(
        &'a self,
        workflow: &'a str,
        first: i64,
    ) -> BoxFuture<'a, Result<i64, StoreError>> {
        let _ = (workflow, first);
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// Moves `workflow`'s next tick from `from` to `to` if it is still
    /// `from` (one instance wins each tick), and in the same transaction
    /// adds `run` (the tick's run) unless a run of `workflow` is still
    /// going: runs of a recurring workflow never overlap. Whether this
    /// call won the tick.
    fn advance_tick<'a>(
        &'a self,
        workflow: &'a str,
        from: i64,
        to: i64,
        run: Option<&'a RunRow>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (workflow, from, to, run);
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// Every recurring workflow's schedule on a shared store: its next
    /// tick, the last one that fired a run, whether it is paused.
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleRow>, StoreError>> {
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// Pauses (or resumes) recurring workflow `workflow` for every
    /// instance: while paused its ticks pass and fire nothing. False when
    /// the store has no schedule of that name yet.
    fn pause_schedule<'a>(
        &'a self,
        workflow: &'a str,
        paused: bool,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (workflow, paused);
        Box::pin(std::future::ready(Err(self.no_leases())))
    }

    /// The error of a lease method on a store without leases.
    fn no_leases(&self) -> StoreError {
        StoreError::Unsupported {
            store: self.describe(),
            what: "this store has no leases: one process drives its runs".to_owned(),
        }
    }
}

/// The error of a method a store does not implement.
fn unsupported(store: String, what: &str) -> StoreError {
    StoreError::Unsupported {
        store,
        what: format!("this store cannot {what}"),
    }
}

/// The error of a fenced write on a store with leases that did not
/// implement it: an unfenced write there would let an instance that lost
/// its lease record over the one that took the run over.
fn unfenced(store: String) -> StoreError {
    StoreError::Unsupported {
        store,
        what: "a store with leases must implement its fenced writes".to_owned(),
    }
}

/// A journal store and the codec its payloads use: what
/// [`RunnerBuilder::store`](crate::host::RunnerBuilder::store) takes.
/// Cheap to clone.
///
/// ```
/// use workflow_runtime::durable::Store;
/// let store = Store::memory();
/// assert_eq!(store.describe(), "memory");
/// ```
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    codec: Arc<dyn Codec>,
}

impl Store {
    /// A store that lives in this process only: for tests.
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// let store = Store::memory();
    /// # drop(store);
    /// ```
    pub fn memory() -> Self {
        Store::new(super::memory::MemoryStore::new())
    }

    /// A store over any backend, with the JSON codec.
    ///
    /// ```
    /// use workflow_runtime::durable::{MemoryStore, Store};
    /// let store = Store::new(MemoryStore::new());
    /// # drop(store);
    /// ```
    pub fn new(backend: impl Backend) -> Self {
        Store {
            backend: Arc::new(backend),
            codec: Arc::new(Json),
        }
    }

    /// The same store with another codec for inputs and outputs.
    ///
    /// ```
    /// use workflow_runtime::durable::{Json, Store};
    /// let store = Store::memory().with_codec(Json);
    /// assert_eq!(store.codec().name(), "json");
    /// ```
    #[must_use]
    pub fn with_codec(mut self, codec: impl Codec) -> Self {
        self.codec = Arc::new(codec);
        self
    }

    /// The codec `run`'s payloads are written with: this store's, or JSON
    /// for a run started before the store was given another codec. A run
    /// journaled with a codec this store does not have is
    /// [`StoreError::Unsupported`], named, rather than rows that do not
    /// decode.
    ///
    /// ```
    /// use workflow_runtime::durable::{RunRow, Store};
    /// let store = Store::memory();
    /// let run = RunRow::new("r", "W", "f", b"1".to_vec());
    /// assert_eq!(store.codec_of(&run).unwrap().name(), "json");
    /// ```
    pub fn codec_of(&self, run: &RunRow) -> Result<&dyn Codec, StoreError> {
        if run.codec == self.codec.name() {
            Ok(&*self.codec)
        } else if run.codec == Json.name() {
            Ok(&Json)
        } else {
            Err(StoreError::Unsupported {
                store: self.describe(),
                what: format!(
                    "run \"{}\" is journaled with codec {}, this store has {} (and json)",
                    run.id,
                    run.codec,
                    self.codec.name()
                ),
            })
        }
    }

    /// [`codec_of`](Self::codec_of), shared: for a run's journal.
    pub(crate) fn shared_codec_of(&self, run: &RunRow) -> Result<Arc<dyn Codec>, StoreError> {
        self.codec_of(run)?;
        Ok(if run.codec == self.codec.name() {
            self.codec.clone()
        } else {
            Arc::new(Json)
        })
    }

    /// The backend.
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// assert_eq!(Store::memory().backend().describe(), "memory");
    /// ```
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The codec.
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// assert_eq!(Store::memory().codec().name(), "json");
    /// ```
    pub fn codec(&self) -> &dyn Codec {
        &*self.codec
    }

    /// What the store is, for messages.
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// assert_eq!(Store::memory().describe(), "memory");
    /// ```
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Runs per status, all workflows together.
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(Store::memory().counts().await.unwrap().running, 0);
    /// # }
    /// ```
    pub async fn counts(&self) -> Result<RunCounts, StoreError> {
        let mut total = RunCounts::default();
        for counts in self.backend.counts_by_workflow(now_ms()).await?.values() {
            total.merge(counts);
        }
        Ok(total)
    }

    /// Runs per status, for each workflow with runs in the store.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Store::memory();
    /// let runner = Runner::builder().store(store.clone()).durable(Ping).build().unwrap();
    /// runner.start(&Ping::ID, "p-1", ()).await.unwrap().result().await.unwrap();
    /// let counts = store.counts_by_workflow().await.unwrap();
    /// assert_eq!(counts["Ping"].completed, 1);
    /// # }
    /// ```
    pub async fn counts_by_workflow(&self) -> Result<WorkflowCounts, StoreError> {
        self.backend.counts_by_workflow(now_ms()).await
    }

    /// The run with this id, if the store has it.
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert!(Store::memory().run("nope").await.unwrap().is_none());
    /// # }
    /// ```
    pub async fn run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        self.backend.run(id).await
    }

    /// A page of the runs `filter` admits, newest first; the page's
    /// [`next`](RunPage::next) asks for the one after it. Pages are cut by
    /// key, not offset: runs started meanwhile never shift a later page.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{RunFilter, RunStatus, Store};
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Store::memory();
    /// let runner = Runner::builder().store(store.clone()).durable(Ping).build().unwrap();
    /// for id in ["p-1", "p-2", "p-3"] {
    ///     runner.start(&Ping::ID, id, ()).await.unwrap().result().await.unwrap();
    /// }
    /// let filter = RunFilter::new().status(RunStatus::Completed).limit(2);
    /// let first = store.runs(&filter).await.unwrap();
    /// assert_eq!(first.runs.len(), 2);
    /// let rest = store.runs(&filter.after(first.next.unwrap())).await.unwrap();
    /// assert_eq!(rest.runs.len(), 1);
    /// assert!(rest.next.is_none());
    /// # }
    /// ```
    pub async fn runs(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        let rows = self.backend.runs(filter).await?;
        Ok(RunPage::of(rows, filter.page_size()))
    }

    /// Removes the finished runs `policy` no longer keeps, a batch per
    /// transaction until none is left, and says how many went.
    ///
    /// ```
    /// # use workflow_runtime::durable::{Retention, Store};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let removed = Store::memory().purge(&Retention::new().keep_at_most(100)).await.unwrap();
    /// assert_eq!(removed, 0);
    /// # }
    /// ```
    pub async fn purge(&self, policy: &Retention) -> Result<u64, StoreError> {
        self.purge_at(policy, now_ms()).await
    }

    /// [`purge`](Self::purge) as of `now_ms` (the runner's clock).
    pub(crate) async fn purge_at(
        &self,
        policy: &Retention,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let purge = policy.purge_at(now_ms);
        let mut removed = 0;
        loop {
            let batch = self.backend.purge(&purge).await?;
            removed += batch;
            if batch < purge.batch as u64 {
                return Ok(removed);
            }
        }
    }

    /// Where run `id` is, what it waits for, what each step did, as its
    /// journal tells it ([`Runner::status`](crate::host::Runner::status)
    /// adds the steps the definition has and the run has not reached).
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert!(Store::memory().status("nope").await.is_err());
    /// # }
    /// ```
    pub async fn status(&self, id: &str) -> Result<super::RunReport, StoreError> {
        self.status_with(id, |_| Vec::new()).await
    }

    /// [`status`](Self::status), with the step titles of the definition
    /// `titles` finds for the run (when the asker registers it).
    pub(crate) async fn status_with(
        &self,
        id: &str,
        titles: impl FnOnce(&RunRow) -> Vec<&'static str>,
    ) -> Result<super::RunReport, StoreError> {
        let run = self
            .backend
            .run(id)
            .await?
            .ok_or_else(|| StoreError::NoSuchRun(id.to_owned()))?;
        let titles = titles(&run);
        let steps = self.backend.steps(id).await?;
        let failures = self.backend.failures(id).await?;
        let events = match self.backend.events(id).await {
            Err(StoreError::Unsupported { .. }) => Vec::new(),
            events => events?,
        };
        super::RunReport::new(run, (steps, failures, events), &titles)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.describe())
            .field("codec", &self.codec.name())
            .finish()
    }
}

pub(crate) use crate::schedule::now_ms;
