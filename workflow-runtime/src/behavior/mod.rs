//! Behaviors: code that wraps a step's execution, like tower middleware
//! wraps a service.
//!
//! A behavior sees the step ([`StepScope`]: context, kind, title, attempts)
//! and the rest of the stack as [`Next`], which it may run zero or more
//! times. Stacks compose in one documented order, outermost first:
//!
//! 1. behaviors on the context, in the order added (a host adds its own
//!    before the workflow's, so host-wide sits outside workflow-wide);
//! 2. behaviors on the context for the step's output type
//!    ([`ContextBuilder::behavior_for`](crate::ContextBuilder::behavior_for));
//! 3. the step's own, in the order declared
//!    (`#[step(retry(..), timeout = "..")]` or `.retry(..).timeout(..)`).
//!
//! The options' `step_timeout` and the context's cancellation sit outside
//! all of them. A step with no behaviors at any level runs on the plain
//! path and pays nothing for this module.

mod breakers;
mod cache;
pub mod circuit_breaker;
mod fallback;
mod inline;
mod layer;
pub mod logging;
pub mod metrics;
mod next;
mod own;
pub mod retry;
pub mod timeout;
#[cfg(feature = "tower")]
pub mod tower;
pub mod tracing;
mod value;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::context::WorkflowContext;
use crate::error::StepFailure;
use crate::step::{StepInfo, StepKind, Title};

pub use breakers::Breakers;
pub use cache::Cache;
pub use circuit_breaker::{
    BreakerConfig, BreakerSnapshot, CircuitBreaker, CircuitOpen, CircuitState, Transition,
};
pub use fallback::Fallback;
pub(crate) use inline::{Attempts, Inline, poll_inline, runs_inline, step_over};
pub(crate) use layer::{Layer, Layers, discard as discard_layers};
pub use logging::Logging;
pub use metrics::Metrics;
pub use next::Next;
pub(crate) use next::{Handoff, run_stack};
pub(crate) use own::Pass;
pub use own::{Bare, Builtin, Builtins, Guarded, Retrying, TimeLimited};
pub use retry::Retry;
pub use timeout::Timeout;
#[cfg(feature = "tower")]
pub use tower::{StepGate, TowerLayer, Turn};
pub use tracing::{Tracing, workflow_span};
#[doc(hidden)]
pub use value::Port;
pub(crate) use value::ValueNotHanded;
pub use value::{ForType, IntoBehaviorFor, NextValue, OnValue, ValueBehavior};

/// A boxed, sendable future: what behaviors return, so they can be stored
/// as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How one run of the rest of the stack ended: the step's value stays with
/// the step; behaviors only see success or the failure.
pub type Attempted = Result<(), StepFailure>;

/// Wraps a step's execution.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use workflow_runtime::behavior::{Attempted, Behavior, BoxFuture, Next, StepScope};
/// use workflow_runtime::prelude::*;
///
/// /// Counts the steps that fail.
/// #[derive(Default)]
/// struct CountFailures(AtomicUsize);
///
/// impl Behavior for CountFailures {
///     fn around<'a>(&'a self, _step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
///         Box::pin(async move {
///             let result = next.run().await;
///             if result.is_err() {
///                 self.0.fetch_add(1, Ordering::Relaxed);
///             }
///             result
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let counter = std::sync::Arc::new(CountFailures::default());
/// let ctx = WorkflowContext::builder("Counted").behavior(counter.clone()).build();
/// let _ = Workflow::given(&ctx, "text", || "x")
///     .try_when("parsed", |s| s.parse::<u8>())
///     .await;
/// assert_eq!(counter.0.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub trait Behavior: std::any::Any + Send + Sync {
    /// Runs around the rest of the stack: call `next.run().await` to run it.
    fn around<'a>(&'a self, step: &'a StepScope, next: Next<'a>) -> BoxFuture<'a, Attempted>;

    /// Whether this behavior may run the rest of the stack again after an
    /// attempt failed, as a retry does (false by default). A `#[workflow]`
    /// step that is not declared `replayable` keeps a copy of its input
    /// for another attempt only when a behavior around it says so. A durable run
    /// resumed after a step's journaled failed attempt hands that failure
    /// on as final unless a behavior around the step says so; one that
    /// does reads the journaled attempts from [`StepScope::resumed`].
    ///
    /// ```
    /// use workflow_runtime::behavior::{Attempted, Behavior, BoxFuture, Next, StepScope};
    ///
    /// /// Tries a step twice, going on from a resumed run's attempts.
    /// struct Twice;
    ///
    /// impl Behavior for Twice {
    ///     fn around<'a>(&'a self, step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
    ///         Box::pin(async move {
    ///             let before = step.resumed().map_or(0, |earlier| earlier.attempts);
    ///             let mut outcome = next.run().await;
    ///             for _ in before + 1..2 {
    ///                 if outcome.is_ok() {
    ///                     break;
    ///                 }
    ///                 outcome = next.run().await;
    ///             }
    ///             outcome
    ///         })
    ///     }
    ///     fn runs_again(&self) -> bool {
    ///         true
    ///     }
    /// }
    /// assert!(Twice.runs_again());
    /// ```
    fn runs_again(&self) -> bool {
        false
    }
}

/// What a durable run's journal says of a step's earlier attempts, when
/// the run resumes a step that failed before its process stopped: a retry
/// goes on from there (its count, its backoff) rather than from scratch.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use workflow_runtime::behavior::Resumed;
/// let earlier = Resumed::new(2, SystemTime::UNIX_EPOCH + Duration::from_secs(60), "declined");
/// assert_eq!(earlier.attempts, 2);
/// assert_eq!(earlier.error(), "declined");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resumed {
    /// Attempts made before, all failed.
    pub attempts: u32,
    /// When the last of them failed.
    pub last_failed: std::time::SystemTime,
    error: Arc<str>,
}

impl Resumed {
    /// `attempts` failed attempts, the last at `last_failed` with `error`.
    pub fn new(
        attempts: u32,
        last_failed: std::time::SystemTime,
        error: impl Into<Arc<str>>,
    ) -> Self {
        Resumed {
            attempts,
            last_failed,
            error: error.into(),
        }
    }

    /// The last attempt's error, as journaled.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The earlier attempt's error, read back.
    pub(crate) fn step_error(&self) -> crate::error::StepError {
        crate::error::StepError::new(EarlierFailure(self.error.clone()))
    }

    /// The last attempt's failure, to end the step with when no attempt
    /// is left.
    pub fn failure(&self) -> StepFailure {
        StepFailure::Error(crate::error::StepError::new(EarlierFailure(
            self.error.clone(),
        )))
    }
}

/// An error read back from a journal (a failed attempt's, a run's failure
/// for good): its message is all that survives a process.
#[derive(Debug)]
pub(crate) struct EarlierFailure(pub(crate) Arc<str>);

impl std::fmt::Display for EarlierFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EarlierFailure {}

/// What a behavior knows about the step it wraps.
pub struct StepScope {
    ctx: WorkflowContext,
    kind: StepKind,
    title: Title,
    replayable: bool,
    /// A call inside a step's body ([`Around`](crate::chain::Around))
    /// rather than a step.
    call: bool,
    resumed: Option<Resumed>,
    attempts: AtomicU32,
    attempt_elapsed: Mutex<Vec<Duration>>,
    handoff: Handoff,
    /// The behaviors around this step, outermost first: owned here so the
    /// stack's future borrows them from the scope it already holds.
    stack: Layers,
}

impl StepScope {
    pub(crate) fn new(
        ctx: WorkflowContext,
        kind: StepKind,
        title: Title,
        replayable: bool,
        resumed: Option<Resumed>,
        stack: Layers,
    ) -> Self {
        StepScope {
            ctx,
            kind,
            title,
            replayable,
            call: false,
            resumed,
            attempts: AtomicU32::new(0),
            attempt_elapsed: Mutex::new(Vec::new()),
            handoff: Handoff::default(),
            stack,
        }
    }

    /// Marks the scope as a call's inside a step's body.
    pub(crate) fn for_call(mut self) -> Self {
        self.call = true;
        self
    }

    /// Whether it wraps a call inside a step's body
    /// ([`Around`](crate::chain::Around)).
    pub(crate) fn is_call(&self) -> bool {
        self.call
    }

    pub(crate) fn stack(&self) -> &[Layer] {
        &self.stack
    }

    /// The attempts' times, taken out once the step has ended.
    pub(crate) fn take_attempt_times(&self) -> Vec<Duration> {
        std::mem::take(
            &mut *self
                .attempt_elapsed
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The workflow context.
    pub fn ctx(&self) -> &WorkflowContext {
        &self.ctx
    }

    /// The step's kind.
    pub fn kind(&self) -> StepKind {
        self.kind
    }

    /// The step's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Workflow, kind and title, for errors.
    pub fn info(&self) -> StepInfo {
        StepInfo {
            workflow: self.ctx.shared_name(),
            kind: self.kind,
            title: self.title.clone(),
        }
    }

    /// How many times the step's body has started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Whether [`Next::run`] can run the step's body more than once: true
    /// for steps declared with `retry` or made `.replayable()`, whose input
    /// is cloned for each attempt, and for a `#[workflow]` step whose input
    /// is `Clone` when a behavior around it says it runs steps again
    /// ([`Behavior::runs_again`]). Running a one-shot step again ends that
    /// run with an error that says so.
    pub fn replayable(&self) -> bool {
        self.replayable
    }

    /// The step's earlier attempts, when a resumed durable run failed it
    /// before its process stopped.
    pub fn resumed(&self) -> Option<&Resumed> {
        self.resumed.as_ref()
    }

    pub(crate) fn handoff(&self) -> &Handoff {
        &self.handoff
    }

    pub(crate) fn attempt_started(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn attempt_ended(&self, elapsed: Duration) {
        self.attempt_elapsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(elapsed);
    }

    /// Each finished attempt's elapsed time, in order; an attempt that a
    /// behavior abandoned (a timeout) ended when it was abandoned.
    pub fn attempt_times(&self) -> Vec<Duration> {
        self.attempt_elapsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A list of behaviors, outermost first.
pub type Behaviors = Vec<Arc<dyn Behavior>>;

/// Anything that can sit in a stack: a behavior by value, or shared in an
/// `Arc` (to keep a handle on it, as for a circuit breaker).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Behavior`",
    label = "not a `Behavior`",
    note = "a value behavior (`Fallback`, `Cache`, `OnValue`) goes to `behavior_for::<T>`, to `#[step(behaviors(..))]` on a step that is not durable (a durable step's journal keeps what its body returned), or to a chain step's `.with_value(..)`"
)]
pub trait IntoBehavior {
    /// The shared behavior.
    fn into_behavior(self) -> Arc<dyn Behavior>;
}

impl<B: Behavior> IntoBehavior for B {
    fn into_behavior(self) -> Arc<dyn Behavior> {
        Arc::new(self)
    }
}

impl<B: Behavior> IntoBehavior for Arc<B> {
    fn into_behavior(self) -> Arc<dyn Behavior> {
        self
    }
}

impl IntoBehavior for Arc<dyn Behavior> {
    fn into_behavior(self) -> Arc<dyn Behavior> {
        self
    }
}
