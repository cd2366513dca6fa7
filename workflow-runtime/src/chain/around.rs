//! Behaviors around one call inside a step, the guide's `WrapAsync`: a
//! breaker, retry or timeout around the bank call alone rather than the
//! whole step, recorded as a sub-step (a child of the step that made it).

use std::future::Future;

use super::{Place, Workflow};
use crate::behavior::{IntoBehavior, Layer, Layers};
use crate::context::WorkflowContext;
use crate::context::active::current;
use crate::error::{StepError, WorkflowError};
use crate::step::{StepKind, Title};

/// One call inside a step, wrapped in behaviors and recorded in the
/// context as a child of the step whose body made it (a top-level step
/// when made outside any step of that context). Made by
/// [`WorkflowContext::around`]; [`BehaviorExt::call`] is the one-behavior
/// shorthand.
///
/// Inside a step, only the behaviors given here wrap the call: the step
/// around it already runs under the context's (tracing, metrics, a
/// service-wide retry), which would otherwise count the call twice. Made
/// outside any step, the call is a step of its own and the context's wrap
/// it first, as they wrap any step. The options' `step_timeout` and the
/// context's cancellation apply as to any step.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::{Retry, Timeout};
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("Pay");
/// let cents = Workflow::given(&ctx, "an order", || 250u32)
///     .try_when_async("charge", |cents| {
///         let ctx = ctx.clone();
///         async move {
///             ctx.around("call bank")
///                 .with(Retry::max_attempts(3))
///                 .with(Timeout::new(Duration::from_secs(2)))
///                 .run_again(|| async move { Ok::<_, std::io::Error>(cents) })
///                 .await
///         }
///     })
///     .await
///     .unwrap();
/// assert_eq!(cents, 250);
/// let steps = ctx.steps();
/// // A child ends, and is recorded, before its parent.
/// assert_eq!(steps[1].title, "call bank");
/// assert_eq!(steps[1].parent, Some(steps[2].id));
/// # }
/// ```
#[must_use = "the call runs when `run` or `run_again` is awaited"]
pub struct Around<'c> {
    ctx: &'c WorkflowContext,
    kind: StepKind,
    title: Title,
    layers: Layers,
}

impl WorkflowContext {
    /// Starts wrapping one call, titled `title`, in behaviors: see
    /// [`Around`].
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let n = ctx.around("read").run(async { "7".parse::<u8>() }).await.unwrap();
    /// assert_eq!(n, 7);
    /// assert_eq!(ctx.steps()[0].title, "read");
    /// # }
    /// ```
    pub fn around(&self, title: impl Into<Title>) -> Around<'_> {
        Around {
            ctx: self,
            kind: StepKind::When,
            title: title.into(),
            layers: Vec::new(),
        }
    }
}

impl<'c> Around<'c> {
    /// Adds a behavior inside those added before (outermost first, as on
    /// a step).
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::Timeout;
    /// use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let err = ctx
    ///     .around("slow call")
    ///     .with(Timeout::new(Duration::from_millis(1)))
    ///     .run(async {
    ///         tokio::time::sleep(Duration::from_secs(5)).await;
    ///         Ok::<_, std::io::Error>(())
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("timed out"), "{err}");
    /// # }
    /// ```
    pub fn with(mut self, behavior: impl IntoBehavior) -> Self {
        self.layers.push(Layer::shared(behavior.into_behavior()));
        self
    }

    /// Records the call with `kind` rather than `When`.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let _ = ctx.around("fetch").kind(StepKind::Given).run(async { Ok::<_, std::io::Error>(()) }).await;
    /// assert_eq!(ctx.steps()[0].kind, StepKind::Given);
    /// # }
    /// ```
    pub fn kind(mut self, kind: StepKind) -> Self {
        self.kind = kind;
        self
    }

    /// Runs `call` once under the behaviors. A behavior that would run it
    /// again cannot, as a future runs once: a [`Retry`](crate::behavior::Retry)
    /// hands on the first failure and logs a warning that says so. Use
    /// [`run_again`](Self::run_again) to retry a call.
    ///
    /// The error is the call's own (in a [`StepError`], so
    /// `downcast_ref` finds it), or the behavior's: a breaker's
    /// [`CircuitOpen`](crate::behavior::CircuitOpen), or the [`WorkflowError`] of a
    /// timeout, panic or cancellation, naming the workflow and the call.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let err = ctx.around("parse").run(async { "x".parse::<u8>() }).await.unwrap_err();
    /// assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
    /// # }
    /// ```
    pub async fn run<T, E, Fut>(self, call: Fut) -> Result<T, StepError>
    where
        Fut: Future<Output = Result<T, E>>,
        E: Into<StepError>,
    {
        let place = self.place();
        let chain = Workflow::try_given_async(self.ctx, self.title, move || call)
            .kind(self.kind)
            .placed(place, self.layers);
        unwrap(chain.await)
    }

    /// Runs the call `make` starts under the behaviors, starting it again
    /// for each attempt a behavior (a retry) asks for.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use workflow_runtime::behavior::Retry;
    /// use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let tries = AtomicU32::new(0);
    /// let n = ctx
    ///     .around("flaky")
    ///     .with(Retry::max_attempts(3))
    ///     .run_again(|| async {
    ///         match tries.fetch_add(1, Ordering::SeqCst) {
    ///             0 => "x".parse::<u8>(),
    ///             _ => "5".parse::<u8>(),
    ///         }
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!((n, ctx.steps()[0].attempts), (5, 2));
    /// # }
    /// ```
    pub async fn run_again<T, E, F, Fut>(self, make: F) -> Result<T, StepError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<StepError>,
    {
        let place = self.place();
        let chain = Workflow::new(self.ctx)
            .try_when_async(self.title, move |()| make())
            .kind(self.kind)
            .replayable()
            .placed(place, self.layers);
        unwrap(chain.await)
    }

    /// Under the step whose body is running, when it is this context's.
    fn place(&self) -> Place {
        let parent = current()
            .filter(|active| active.ctx.execution_id() == self.ctx.execution_id())
            .and_then(|active| active.step);
        Place::Inside { parent }
    }
}

/// The call's own error back, or the behaviors' as an error value.
fn unwrap<T>(result: Result<T, WorkflowError>) -> Result<T, StepError> {
    result.map_err(|error| match error {
        WorkflowError::Failed { error, .. } => error,
        other => StepError::new(other),
    })
}

/// One behavior around one call: `breaker.call(&ctx, "call bank", fut)`,
/// shorthand for `ctx.around(title).with(behavior).run(fut)`. See
/// [`Around`].
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker, CircuitOpen};
/// use workflow_runtime::chain::BehaviorExt;
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let bank = CircuitBreaker::new("bank", BreakerConfig::new(1, Duration::from_secs(60)));
/// let ctx = WorkflowContext::new("Pay");
/// let down = || async { Err::<u32, _>(std::io::Error::other("bank down")) };
/// assert!(bank.call(&ctx, "call bank", down()).await.is_err());
/// // Open now: the next call is refused without reaching the bank.
/// let refused = bank.call(&ctx, "call bank", down()).await.unwrap_err();
/// assert!(refused.downcast_ref::<CircuitOpen>().is_some());
/// # }
/// ```
pub trait BehaviorExt: IntoBehavior + Clone {
    /// Runs `call` once under this behavior; see [`Around::run`].
    fn call<T, E, Fut>(
        &self,
        ctx: &WorkflowContext,
        title: impl Into<Title>,
        call: Fut,
    ) -> impl Future<Output = Result<T, StepError>>
    where
        Fut: Future<Output = Result<T, E>>,
        E: Into<StepError>,
    {
        ctx.around(title).with(self.clone()).run(call)
    }

    /// Runs the call `make` starts under this behavior, again for each
    /// attempt it asks for; see [`Around::run_again`].
    ///
    /// ```
    /// use workflow_runtime::behavior::Retry;
    /// use workflow_runtime::chain::BehaviorExt;
    /// use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let err = Retry::max_attempts(2)
    ///     .call_again(&ctx, "parse", || async { "x".parse::<u8>() })
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
    /// assert_eq!(ctx.steps()[0].attempts, 2);
    /// # }
    /// ```
    fn call_again<T, E, F, Fut>(
        &self,
        ctx: &WorkflowContext,
        title: impl Into<Title>,
        make: F,
    ) -> impl Future<Output = Result<T, StepError>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<StepError>,
    {
        ctx.around(title).with(self.clone()).run_again(make)
    }
}

impl<B: IntoBehavior + Clone> BehaviorExt for B {}
