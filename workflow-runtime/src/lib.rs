//! Typed, observable, resilient Given/When/Then workflows on tokio.
//!
//! A [`Workflow`] chain runs typed steps under a [`WorkflowContext`], which
//! records each step's kind, title, elapsed time and outcome. Steps may be
//! sync or async, plain or fallible; panics are caught, timeouts drop the
//! step's future, cancellation is recorded.
//!
//! ```
//! use workflow_runtime::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), WorkflowError> {
//! let ctx = WorkflowContext::new("CalculatorTest");
//! let sum = Workflow::given(&ctx, "two numbers", || (10, 5))
//!     .when("they are added", |(a, b)| a + b)
//!     .then("the sum is correct", |sum| *sum == 15)
//!     .await?;
//! assert_eq!(sum, 15);
//! assert!(ctx.all_passed());
//! # Ok(()) }
//! ```
//!
//! | module | holds |
//! |---|---|
//! | [`chain`] | the fluent chain, its stages and step adapters |
//! | [`behavior`] | the behavior trait and retry, timeout, circuit breaker, tracing, metrics, tower |
//! | [`handlers`] | the typed handler registry |
//! | [`host`] | the runner, the tokio host, recurring schedules, health |
//! | `durable` | journaled runs that resume after a crash: stores (memory, SQLite, PostgreSQL with leases), codecs (features `durable`, `sqlite`, `postgres`) |
//! | `testing` | the test kit: `assert_steps!`, a crash-injecting memory store, a throwaway PostgreSQL server |
//!
//! `#[step]` and `#[workflow]` (re-exported from `workflow-macros`) turn
//! annotated functions into steps and typed pipelines implementing
//! [`WorkflowDefinition`].
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod behavior;
pub mod chain;
mod clock;
#[cfg(feature = "serde")]
pub mod config;
#[cfg(feature = "console")]
pub mod console;
mod context;
mod definition;
#[cfg(feature = "durable")]
pub mod durable;
#[cfg(feature = "serde")]
mod durations;
mod error;
mod free_step;
pub mod handlers;
pub mod host;
mod mix;
mod schedule;
mod step;
#[cfg(feature = "testing")]
pub mod testing;

pub use chain::Workflow;
pub use clock::Clock;
pub use context::{
    ContextBuilder, MetadataError, OverrideMismatch, Scoped, StepId, StepOutcome, StepRecord,
    StepRef, UnknownStep, WorkflowContext, WorkflowOptions, WorkflowSummary,
};
pub use definition::{WorkflowDefinition, mermaid};
pub use error::{StepError, StepFailure, WorkflowError};
pub use workflow_macros::{step, workflow};

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub use step::{StepInfo, StepKind, StepMeta, Title};

/// Everything a workflow author usually needs, in one import.
///
/// ```
/// use workflow_runtime::prelude::*;
/// let _ctx = WorkflowContext::new("W");
/// ```
pub mod prelude {
    pub use crate::WorkflowDefinition;
    pub use crate::{
        StepKind, StepOutcome, StepRecord, Workflow, WorkflowContext, WorkflowError,
        WorkflowOptions,
    };
    pub use workflow_macros::{step, workflow};

    #[cfg(feature = "durable")]
    pub use crate::durable::Durable as _;
}

/// The package README's example, compiled and run as a doctest so it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
