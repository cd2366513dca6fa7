//! What the context remembers of each step.

use std::fmt;
use std::time::Duration;

use crate::error::StepFailure;
use crate::step::{StepKind, Title};

/// How a step ended.
///
/// ```
/// use workflow_runtime::StepOutcome;
/// assert!(StepOutcome::Passed.is_passed());
/// assert!(StepOutcome::Cancelled.is_failure());
/// assert!(!StepOutcome::Skipped.is_failure());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum StepOutcome {
    /// The step produced its value (or its assertion held).
    Passed,
    /// The step failed: an error, a false assertion, a panic, or a timeout
    /// that dropped it ([`StepFailure::TimedOut`]): one type for why a step
    /// failed, whether a record or a behavior asks.
    Failed(StepFailure),
    /// The run was cancelled while the step was in flight.
    Cancelled,
    /// The step did not run because an earlier one failed.
    Skipped,
    /// A resumed durable run took the step's output from its journal: the
    /// step had completed before the run stopped, and did not run again.
    Replayed,
}

impl StepOutcome {
    /// True for [`StepOutcome::Passed`] and [`StepOutcome::Replayed`].
    ///
    /// ```
    /// # use workflow_runtime::StepOutcome;
    /// assert!(!StepOutcome::Skipped.is_passed());
    /// ```
    pub fn is_passed(&self) -> bool {
        matches!(self, StepOutcome::Passed | StepOutcome::Replayed)
    }

    /// True when the step ran and did not pass: failed, timed out or cancelled.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::{StepFailure, StepOutcome};
    /// let timed_out = StepOutcome::Failed(StepFailure::TimedOut(Duration::from_secs(1)));
    /// assert!(timed_out.is_failure());
    /// assert_eq!(timed_out.to_string(), "timed out after 1s");
    /// ```
    pub fn is_failure(&self) -> bool {
        matches!(self, StepOutcome::Failed(_) | StepOutcome::Cancelled)
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepOutcome::Passed => f.pad("passed"),
            StepOutcome::Failed(timeout @ StepFailure::TimedOut(_)) => write!(f, "{timeout}"),
            StepOutcome::Failed(why) => write!(f, "failed: {why}"),
            StepOutcome::Cancelled => f.pad("cancelled"),
            StepOutcome::Skipped => f.pad("skipped"),
            StepOutcome::Replayed => f.pad("replayed"),
        }
    }
}

/// One step as it ran: the rows of a workflow's report.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("Doc");
/// Workflow::given(&ctx, "a number", || 2).await.unwrap();
/// let step = &ctx.steps()[0];
/// assert_eq!(step.kind, StepKind::Given);
/// assert_eq!(step.title, "a number");
/// assert!(step.outcome.is_passed());
/// assert_eq!(step.attempts, 1);
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StepRecord {
    /// The step's kind.
    pub kind: StepKind,
    /// The step's title.
    pub title: Title,
    /// Wall time from the step's start to its end, all attempts included.
    pub elapsed: Duration,
    /// How the step ended.
    pub outcome: StepOutcome,
    /// How many times the step's body ran (more than one under retry).
    pub attempts: u32,
    /// Each attempt's elapsed time, when a behavior ran the step more than
    /// once (empty otherwise: its one attempt took `elapsed`).
    pub attempt_elapsed: Vec<Duration>,
    /// The step's input in `Debug` form, when capture is on.
    pub input: Option<String>,
    /// The step's output in `Debug` form, when capture is on.
    pub output: Option<String>,
    /// The step's id in its context: unique per run, in the order steps
    /// started.
    pub id: StepId,
    /// The step whose body called this one, for a `#[step]` function
    /// called inside another step.
    pub parent: Option<StepId>,
}

/// A step's id in its context, in the order steps started: what a child's
/// [`StepRecord::parent`] names.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[step(when = "audited")]
/// fn audit(n: &u32) -> bool { *n > 0 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("Ids");
/// Workflow::given(&ctx, "a number", || 7u32)
///     .when("checked", |n| { audit(&n); n })
///     .await
///     .unwrap();
/// // Records are in the order steps ended: a child before its parent.
/// let steps = ctx.steps();
/// let (child, parent) = (&steps[1], &steps[2]);
/// assert_eq!(child.title, "audited");
/// assert_eq!(parent.title, "checked");
/// assert_eq!(child.parent, Some(parent.id));
/// assert!(parent.parent.is_none());
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId(u32);

impl StepId {
    /// Not yet given an id: [`WorkflowContext::record`](crate::WorkflowContext::record)
    /// gives one.
    pub(crate) const UNSET: StepId = StepId(0);

    pub(crate) fn new(n: u32) -> Self {
        StepId(n)
    }

    /// The id as a number, from 1.
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepOutcome, StepRecord, WorkflowContext};
    /// # use std::time::Duration;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.record(StepRecord::new(StepKind::When, "by hand", Duration::ZERO, StepOutcome::Passed));
    /// assert_eq!(ctx.steps()[0].id.get(), 1);
    /// ```
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StepRecord {
    /// A record with one attempt and nothing captured.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::{StepKind, StepOutcome, StepRecord};
    /// let r = StepRecord::new(StepKind::When, "load", Duration::ZERO, StepOutcome::Passed);
    /// assert_eq!(r.attempts, 1);
    /// ```
    pub fn new(
        kind: StepKind,
        title: impl Into<Title>,
        elapsed: Duration,
        outcome: StepOutcome,
    ) -> Self {
        StepRecord {
            kind,
            title: title.into(),
            elapsed,
            outcome,
            attempts: 1,
            attempt_elapsed: Vec::new(),
            input: None,
            output: None,
            id: StepId::UNSET,
            parent: None,
        }
    }
}
