//! What the engine asks of a durable run's journal. The durable module's
//! journal is the one implementation; the context holds it as this trait,
//! so the context, the behaviors and the chain do not depend on the
//! durable module built on them.

use std::any::Any;

use crate::error::StepError;
use crate::step::StepKind;

/// A durable run's journal, as the engine sees it.
#[cfg_attr(not(feature = "durable"), allow(dead_code))]
pub(crate) trait RunJournal: Any + Send + Sync {
    /// The run's id: the same in every process that drives the run.
    fn run_id(&self) -> &str;

    /// Resumed while undoing: the failure of the step `kind` `title`, when
    /// it is the one whose failure started the undoing.
    fn compensating_for(&self, kind: StepKind, title: &str) -> Option<StepError>;

    /// Whether `error` is the journal's own failure to record a step, not
    /// the step's.
    fn fault(&self, error: &StepError) -> Option<JournalFault>;
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
