//! What the engine asks of a durable run's journal. The durable module's
//! journal is the one implementation; the context holds it as this trait,
//! so the context, the behaviors and the chain do not depend on the
//! durable module built on them.

use std::any::Any;
use std::sync::Arc;

use crate::behavior::BoxFuture;
use crate::error::{StepError, WorkflowError};
use crate::step::StepKind;

/// A durable run's journal, as the engine sees it.
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(crate) trait RunJournal: Any + Send + Sync {
    /// The run's id: the same in every process that drives the run.
    fn run_id(&self) -> &str;

    /// Resumed: the failure the step `kind` `title` failed the run with
    /// for good before, if it did. The step fails with it again rather
    /// than run.
    fn failed_before(&self, kind: StepKind, title: &str) -> Option<StepError>;

    /// Whether `error` is the journal's own failure to record a step, not
    /// the step's.
    fn fault(&self, error: &StepError) -> Option<JournalFault>;

    /// Journals that the run failed for good with `error`, before any
    /// compensation runs (or, for a failed compensation, after the
    /// undoing): a run resumed after a crash does not run the failed step
    /// again. `Some` is the journal's own failure to say so.
    fn failed_for_good(
        self: Arc<Self>,
        error: &WorkflowError,
    ) -> BoxFuture<'static, Option<StepError>>;
}

/// How the journal failed a step.
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JournalFault {
    /// Another instance owns the run now: nothing of this one's may run.
    LeaseLost,
    /// The store refused or failed the write.
    Store,
}
