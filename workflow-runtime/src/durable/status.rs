//! One run as a person asks about it: where it is, what it waits for, what
//! each step did. Read from the journal's rows alone, so any process that
//! opens the store can answer, whether or not it runs the workflow.

use super::journal::{COMPENSATIONS, awaiting, children, consumed_event};
use super::store::{EventRow, FailureRow, JournalMark, RunRow, RunStatus, StepRow, StoreError};

/// What a suspended run waits for.
///
/// ```
/// use workflow_runtime::durable::Waiting;
/// let wait = Waiting::Event { name: "approval".into(), deadline_ms: None };
/// assert!(matches!(wait, Waiting::Event { deadline_ms: None, .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Waiting {
    /// A durable sleep, until this time (ms since the Unix epoch).
    Sleep {
        /// When it wakes.
        until_ms: i64,
    },
    /// An event of this name, until the deadline if it has one.
    Event {
        /// The event's name.
        name: String,
        /// When the wait gives up (ms since the Unix epoch).
        deadline_ms: Option<i64>,
    },
    /// A child run's end.
    Child {
        /// The child's run id.
        run: String,
    },
}

impl Waiting {
    /// What a run row's suspension columns say.
    fn of(run: &RunRow) -> Option<Self> {
        let waiting = run.waiting.as_deref()?;
        if let Some(name) = waiting.strip_prefix("event:") {
            return Some(Waiting::Event {
                name: name.to_owned(),
                deadline_ms: run.wake_ms,
            });
        }
        if let Some(child) = waiting.strip_prefix("child:") {
            return Some(Waiting::Child {
                run: child.to_owned(),
            });
        }
        match waiting {
            // Started as a child, not yet taken up: due, not waiting.
            "start" => None,
            _ => Some(Waiting::Sleep {
                until_ms: run.wake_ms.unwrap_or(i64::MAX),
            }),
        }
    }
}

/// How far a step got.
///
/// ```
/// use workflow_runtime::durable::StepState;
/// assert_ne!(StepState::Completed, StepState::Compensated);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum StepState {
    /// Not reached yet.
    Pending,
    /// Reached: attempts failed and it goes on (a retry), or it waits.
    Running,
    /// Completed: its output is journaled.
    Completed,
    /// Failed the run for good.
    Failed,
    /// Completed, and then undone by its compensation.
    Compensated,
}

/// One step of a run, as [`RunReport::steps`] lists it.
///
/// ```
/// # use workflow_runtime::durable::{RunReport, StepState};
/// fn failed_steps(report: &RunReport) -> Vec<&str> {
///     report.steps.iter().filter(|s| s.state == StepState::Failed).map(|s| s.title.as_str()).collect()
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StepReport {
    /// Its place in the workflow, from 0.
    pub index: u32,
    /// Its title (`"charge card"`), when the journal or the definition
    /// names it.
    pub title: String,
    /// How far it got.
    pub state: StepState,
    /// The attempts it took (or has failed so far).
    pub attempts: u32,
    /// When it started and ended (ms since the Unix epoch), when known.
    pub started_ms: Option<i64>,
    /// See `started_ms`.
    pub ended_ms: Option<i64>,
    /// Its error: the failure it failed the run with, or its last failed
    /// attempt's.
    pub error: Option<String>,
}

impl StepReport {
    fn pending(index: u32, title: &str) -> Self {
        StepReport {
            index,
            title: title.to_owned(),
            state: StepState::Pending,
            attempts: 0,
            started_ms: None,
            ended_ms: None,
            error: None,
        }
    }
}

/// Step `index`'s report in `steps` (added if the journal is the first to
/// name it), titled `title` if it had no title yet.
fn step(steps: &mut Vec<StepReport>, index: u32, title: Option<&str>) -> usize {
    let at = match steps.iter().position(|s| s.index == index) {
        Some(at) => at,
        None => {
            steps.push(StepReport::pending(index, ""));
            steps.len() - 1
        }
    };
    if let Some(title) = title
        && steps[at].title.is_empty()
    {
        steps[at].title = title.to_owned();
    }
    at
}

/// An event sent to a run, as [`RunReport::events`] lists it.
///
/// ```
/// # use workflow_runtime::durable::RunReport;
/// fn unconsumed(report: &RunReport) -> usize {
///     report.events.iter().filter(|e| !e.consumed).count()
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EventReport {
    /// Its number among the run's events.
    pub seq: u32,
    /// Its name.
    pub name: String,
    /// When it arrived (ms since the Unix epoch).
    pub sent_ms: i64,
    /// Whether a wait of the run consumed it.
    pub consumed: bool,
}

/// A durable run as [`Runner::status`](crate::host::Runner::status) and
/// [`Store::status`](super::Store::status) tell it.
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::durable::{RunStatus, StepState, Store};
/// # use workflow_runtime::host::Runner;
/// # struct Ping;
/// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
/// runner.start(&Ping::ID, "p-1", ()).await.unwrap().result().await.unwrap();
/// let status = runner.status("p-1").await.unwrap();
/// assert_eq!(status.status, RunStatus::Completed);
/// assert_eq!(status.steps[0].title, "ping");
/// assert_eq!(status.steps[0].state, StepState::Completed);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RunReport {
    /// The run's id.
    pub id: String,
    /// Its workflow's name.
    pub workflow: String,
    /// Where it is.
    pub status: RunStatus,
    /// Why it failed, was parked or was cancelled.
    pub error: Option<String>,
    /// The title of the step it is at: the first it has not completed,
    /// while it runs; the one it failed or stopped at, once it has.
    pub current_step: Option<String>,
    /// What it waits for, while suspended.
    pub waiting: Option<Waiting>,
    /// Why it was asked to stop, once it was.
    pub cancel: Option<String>,
    /// When it was started and last changed (ms since the Unix epoch).
    pub created_ms: i64,
    /// See `created_ms`.
    pub updated_ms: i64,
    /// Its steps, by index: the ones the journal knows of, and the
    /// definition's others when the asker registers it.
    pub steps: Vec<StepReport>,
    /// The events sent to it.
    pub events: Vec<EventReport>,
    /// The failures redrives put behind it, oldest first.
    pub earlier_failures: Vec<String>,
    /// The run that started this one as its child, if one did.
    pub parent: Option<String>,
    /// The child runs this one started, in the order it started them.
    pub children: Vec<String>,
}

impl RunReport {
    /// The report on `run` from its rows; `titles` are the definition's
    /// step titles when the asker registers it.
    pub(crate) fn new(
        run: RunRow,
        (rows, failures, events): (Vec<StepRow>, Vec<FailureRow>, Vec<EventRow>),
        titles: &[&str],
    ) -> Result<Self, StoreError> {
        let mut steps: Vec<StepReport> = titles
            .iter()
            .enumerate()
            .map(|(index, title)| {
                StepReport::pending(u32::try_from(index).unwrap_or(u32::MAX), title)
            })
            .collect();
        let mut earlier_failures = Vec::new();
        let mut consumed = std::collections::HashSet::new();
        let mut stepped = Vec::new();
        for row in &rows {
            match row.mark() {
                None => stepped.push((step(&mut steps, row.index, Some(&row.title)), row)),
                Some(JournalMark::FailedAt(k)) => {
                    // Titled "{kind} {title}".
                    let title = row.title.split_once(' ').map(|(_, t)| t);
                    let at = step(&mut steps, k, title);
                    stepped.push((at, row));
                }
                Some(JournalMark::Compensated(k)) => stepped.push((step(&mut steps, k, None), row)),
                Some(JournalMark::Redriven(_)) => {
                    earlier_failures.push(String::from_utf8_lossy(&row.output).into_owned());
                }
                Some(JournalMark::Consumed(_) | JournalMark::WaitEnded { .. }) => {
                    consumed.extend(consumed_event(row));
                }
                Some(JournalMark::WaitStarted { step: k, .. }) => {
                    // A compensation's wait is not a step's.
                    if k >= COMPENSATIONS {
                        continue;
                    }
                    let at = step(&mut steps, k, None);
                    if steps[at].state == StepState::Pending {
                        steps[at].state = StepState::Running;
                        steps[at].started_ms.get_or_insert(row.started_ms);
                    }
                }
                Some(_) => {}
            }
        }
        // Steps first, then the marks that change what they say.
        stepped.sort_by_key(|(_, row)| row.index);
        for (at, row) in stepped {
            let report = &mut steps[at];
            match row.mark() {
                None => {
                    report.state = StepState::Completed;
                    report.attempts = row.attempts;
                    report.started_ms = Some(row.started_ms);
                    report.ended_ms = Some(row.ended_ms);
                }
                Some(JournalMark::FailedAt(_)) => {
                    report.state = StepState::Failed;
                    report.error = Some(String::from_utf8_lossy(&row.output).into_owned());
                    report.ended_ms = Some(row.ended_ms);
                }
                Some(JournalMark::Compensated(_)) => report.state = StepState::Compensated,
                Some(_) => {}
            }
        }
        for failure in failures.iter().filter(|f| f.index < COMPENSATIONS) {
            let at = step(&mut steps, failure.index, None);
            let report = &mut steps[at];
            report.error.get_or_insert_with(|| failure.error.clone());
            if report.state == StepState::Pending {
                report.state = StepState::Running;
                report.attempts = failure.attempts;
                report.ended_ms = Some(failure.failed_ms);
            }
        }
        steps.sort_by_key(|s| s.index);
        let current_step = match run.status {
            RunStatus::Running => steps
                .iter()
                .find(|s| !matches!(s.state, StepState::Completed | StepState::Compensated)),
            _ => steps.iter().find(|s| s.state == StepState::Failed),
        }
        .map(|s| s.title.clone())
        .or_else(|| run.failed_step.clone());
        let events = events
            .iter()
            .map(|event| EventReport {
                seq: event.seq,
                name: event.name.clone(),
                sent_ms: event.sent_ms,
                consumed: consumed.contains(&event.seq),
            })
            .collect();
        Ok(RunReport {
            waiting: Waiting::of(&run),
            id: run.id,
            workflow: run.workflow,
            status: run.status,
            error: run.error,
            current_step,
            cancel: run.cancel,
            created_ms: run.created_ms,
            updated_ms: run.updated_ms,
            steps,
            events,
            earlier_failures,
            parent: run.parent,
            children: children(&rows),
        })
    }

    /// Whether the run waits for an event named `name`.
    ///
    /// ```
    /// # use workflow_runtime::durable::RunReport;
    /// fn approval_pending(status: &RunReport) -> bool {
    ///     status.waits_for("approval")
    /// }
    /// ```
    pub fn waits_for(&self, name: &str) -> bool {
        matches!(&self.waiting, Some(Waiting::Event { name: n, .. }) if awaiting(n) == awaiting(name))
    }
}
