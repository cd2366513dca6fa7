#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod chain;
mod context;
mod error;
mod step;

pub use chain::Workflow;
pub use context::{
    ContextBuilder, MetadataError, StepOutcome, StepRecord, WorkflowContext, WorkflowOptions,
    WorkflowSummary,
};
pub use error::{StepError, StepFailure, WorkflowError};
pub use step::{StepInfo, StepKind, Title};

/// Everything a workflow author usually needs, in one import.
///
/// ```
/// use workflow_runtime::prelude::*;
/// let _ctx = WorkflowContext::new("W");
/// ```
pub mod prelude {
    pub use crate::chain::{Failed, StepFn, StepResult};
    pub use crate::{
        StepKind, StepOutcome, StepRecord, Workflow, WorkflowContext, WorkflowError,
        WorkflowOptions,
    };
}
