//! The fluent, typed Given/When/Then chain.
//!
//! Each verb comes in four flavors, paired the way `futures` pairs `map`
//! with `then`: `when` (sync), `try_when` (sync, returns `Result`),
//! `when_async` and `try_when_async`. One generic verb cannot take both a
//! sync and an async closure, or both a plain and a `Result` output, without
//! making every call site spell out types; four plain names keep every
//! closure annotation-free.
//!
//! `when`, `and` and `but` take `Fn` closures, so a step can run again
//! under [`retry`](Workflow::retry): the compiler decides a closure's kind
//! from the verb's bound, and an `FnOnce` bound would make every inline
//! closure single-use. `given` (which often moves a captured value out) and
//! `then` / `finally` take `FnOnce`.

mod around;
mod compensate;
mod declared;
mod overridable;
mod plain;
mod stage;
mod step_fn;
mod straight;
mod valued;

/// The chain's traits are implemented by its own types only: the verbs
/// build every stage and adapter, so outside impls could never be used.
pub(crate) mod sealed {
    pub trait Sealed {}
}

use std::future::{Future, IntoFuture};
use std::sync::Arc;

pub use around::{Around, BehaviorExt};
pub use compensate::{Compensated, CompensatedFuture, Compensation, Undo, UndoStep};
#[doc(hidden)]
pub use declared::{Declared, ForRetries, NoReplay};
pub use overridable::{Overridable, Overridden};
#[doc(hidden)]
pub use plain::{Handoff, InFlight, StraightStage, StraightStep};
#[doc(hidden)]
pub use stage::OwnRun;
pub(crate) use stage::Place;
pub use stage::{
    Carry, ChainFuture, Finally, FinallyFuture, Flow, KindOfLast, Stage, Start, StartFuture, Step,
    StepFuture, Unwind,
};
#[doc(hidden)]
pub use step_fn::StepAt;
pub use step_fn::{
    Assert, Async, Call, CallAgain, CallRef, ErrFuture, Failed, Fallible, Handle, Holding, Nullary,
    OkFuture, Plain, Replay, ReplayInput, StepFn, StepResult, TryAsync, Unary,
};
#[doc(hidden)]
pub use straight::{After, Handed, Straight};
pub use valued::Valued;

use crate::behavior::{
    Bare, Builtins, CircuitBreaker, ForType, IntoBehavior, IntoBehaviorFor, Layer, Layers,
    ValueBehavior,
};
use crate::context::WorkflowContext;
use crate::error::{StepError, WorkflowError};
use crate::step::{StepKind, Title};
use step_fn::Keep;

/// A chain of steps under a [`WorkflowContext`]. Nothing runs until it is
/// awaited; awaiting runs the steps in order and yields the last value.
///
/// The type parameter records every step, so a step taking the wrong type
/// does not compile, and the whole chain runs as one future with no heap
/// allocation of its own.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[derive(Debug)]
/// struct Declined;
/// impl std::fmt::Display for Declined {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("card declined")
///     }
/// }
/// impl std::error::Error for Declined {}
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("Checkout");
/// let err = Workflow::given(&ctx, "a cart", || 40)
///     .when_async("add shipping", |total| async move { total + 5 })
///     .try_when("charge", |_total| -> Result<u32, _> { Err(Declined) })
///     .then("paid", |_| true)
///     .await
///     .unwrap_err();
/// assert_eq!(err.to_string(), r#"workflow "Checkout", step When "charge" failed: card declined"#);
/// assert_eq!(ctx.first_failure().unwrap().title, "charge");
/// # }
/// ```
#[must_use = "a workflow does nothing until it is awaited"]
pub struct Workflow<'c, S> {
    ctx: &'c WorkflowContext,
    stage: S,
}

macro_rules! given_verb {
    ($(#[$doc:meta])* $name:ident, $adapter:ident, <$($g:ident),*> $ret:ty, [$($wh:tt)*]) => {
        $(#[$doc])*
        #[inline]
        pub fn $name<F, O $(, $g)*>(
            ctx: &'c WorkflowContext,
            title: impl Into<Title>,
            init: F,
        ) -> Workflow<'c, Step<Start, $adapter<Nullary<F>>>>
        where
            F: FnOnce() -> $ret,
            $($wh)*
        {
            Workflow::first(ctx, title.into(), $adapter(Nullary(init)))
        }
    };
}

macro_rules! given_with_verb {
    ($name:ident, $adapter:ident, <$($g:ident),*> $ret:ty, [$($wh:tt)*]) => {
        /// The first step of a `#[workflow]`, holding the run's input.
        #[doc(hidden)]
        #[inline]
        pub fn $name<T, F, O $(, $g)*>(
            ctx: &'c WorkflowContext,
            title: impl Into<Title>,
            input: T,
            init: F,
        ) -> Workflow<'c, Step<Start, $adapter<Holding<T, F>>>>
        where
            // `Fn`, so a type-wide retry can call it again (the closure's
            // kind follows this bound).
            F: Fn(T) -> $ret,
            $($wh)*
        {
            Workflow::first(ctx, title.into(), $adapter(Holding { input, f: init }))
        }
    };
}

impl<'c> Workflow<'c, Start> {
    /// A chain of one `given` step, `body`.
    #[inline]
    fn first<B>(ctx: &'c WorkflowContext, title: Title, body: B) -> Workflow<'c, Step<Start, B>> {
        Workflow {
            ctx,
            stage: Step {
                prev: Start,
                kind: StepKind::Given,
                title,
                body,
                layers: Vec::new(),
                own: Bare,
                place: Place::Chain,
            },
        }
    }

    given_with_verb!(__given_with, Plain, <> O, []);
    given_with_verb!(__try_given_with, Fallible, <E> Result<O, E>, [E: Into<StepError>]);
    given_with_verb!(__given_with_async, Async, <Fut> Fut, [Fut: Future<Output = O>]);
    given_with_verb!(
        __try_given_with_async, TryAsync, <Fut, E> Fut,
        [Fut: Future<Output = Result<O, E>>, E: Into<StepError>]
    );

    /// A chain with no steps yet; its value is `()`. Most chains start with
    /// [`given`](Self::given) instead.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let n = Workflow::new(&ctx).when("load", |()| 5).await;
    /// assert_eq!(n.unwrap(), 5);
    /// # }
    /// ```
    pub fn new(ctx: &'c WorkflowContext) -> Self {
        Workflow { ctx, stage: Start }
    }

    given_verb!(
        /// Starts a chain with a value made by `init`.
        ///
        /// ```
        /// # use workflow_runtime::prelude::*;
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// let ctx = WorkflowContext::new("W");
        /// assert_eq!(Workflow::given(&ctx, "two", || 2).await.unwrap(), 2);
        /// # }
        /// ```
        given, Plain, <> O, []
    );
    given_verb!(
        /// Starts a chain with a value that `init` may fail to make.
        ///
        /// ```
        /// # use workflow_runtime::prelude::*;
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// let ctx = WorkflowContext::new("W");
        /// let n = Workflow::try_given(&ctx, "a number", || "42".parse::<u32>()).await;
        /// assert_eq!(n.unwrap(), 42);
        /// # }
        /// ```
        try_given, Fallible, <E> Result<O, E>, [E: Into<StepError>]
    );
    given_verb!(
        /// Starts a chain with a value made by an async `init`.
        ///
        /// ```
        /// # use workflow_runtime::prelude::*;
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// let ctx = WorkflowContext::new("W");
        /// let n = Workflow::given_async(&ctx, "loaded", || async { 7 }).await;
        /// assert_eq!(n.unwrap(), 7);
        /// # }
        /// ```
        given_async, Async, <Fut> Fut, [Fut: Future<Output = O>]
    );
    given_verb!(
        /// Starts a chain with a value an async `init` may fail to make.
        ///
        /// ```
        /// # use workflow_runtime::prelude::*;
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// let ctx = WorkflowContext::new("W");
        /// let n = Workflow::try_given_async(&ctx, "parsed", || async { "9".parse::<u8>() }).await;
        /// assert_eq!(n.unwrap(), 9);
        /// # }
        /// ```
        try_given_async, TryAsync, <Fut, E> Fut, [Fut: Future<Output = Result<O, E>>, E: Into<StepError>]
    );
}

macro_rules! verb {
    ($kind:ident, $(#[$doc:meta])* $name:ident, $adapter:ident, <$($g:ident),*> $ret:ty, [$($wh:tt)*]) => {
        $(#[$doc])*
        #[inline]
        pub fn $name<F, O $(, $g)*>(
            self,
            title: impl Into<Title>,
            step: F,
        ) -> Workflow<'c, Step<S, $adapter<Unary<F>>>>
        where
            F: Fn(S::Output) -> $ret,
            $($wh)*
        {
            self.step(StepKind::$kind, title, $adapter(Unary(step)))
        }
    };
}

macro_rules! verbs {
    ($kind:ident, $plain:ident, $try:ident, $async:ident, $try_async:ident, $word:literal) => {
        verb!(
            $kind,
            #[doc = concat!("Adds a sync `", $word, "` step.")]
            ///
            /// ```
            /// # use workflow_runtime::prelude::*;
            /// # #[tokio::main(flavor = "current_thread")] async fn main() {
            /// # let ctx = WorkflowContext::new("W");
            /// let n = Workflow::given(&ctx, "one", || 1)
            #[doc = concat!("    .", stringify!($plain), "(\"doubled\", |n| n * 2)")]
            ///     .await;
            /// assert_eq!(n.unwrap(), 2);
            /// # }
            /// ```
            $plain, Plain, <> O, []
        );
        verb!(
            $kind,
            #[doc = concat!("Adds a sync `", $word, "` step returning `Result`.")]
            ///
            /// ```
            /// # use workflow_runtime::prelude::*;
            /// # #[tokio::main(flavor = "current_thread")] async fn main() {
            /// # let ctx = WorkflowContext::new("W");
            /// let n = Workflow::given(&ctx, "text", || "12")
            #[doc = concat!("    .", stringify!($try), "(\"parsed\", |s| s.parse::<u8>())")]
            ///     .await;
            /// assert_eq!(n.unwrap(), 12);
            /// # }
            /// ```
            $try, Fallible, <E> Result<O, E>, [E: Into<StepError>]
        );
        verb!(
            $kind,
            #[doc = concat!("Adds an async `", $word, "` step.")]
            ///
            /// ```
            /// # use workflow_runtime::prelude::*;
            /// # #[tokio::main(flavor = "current_thread")] async fn main() {
            /// # let ctx = WorkflowContext::new("W");
            /// let n = Workflow::given(&ctx, "one", || 1)
            #[doc = concat!("    .", stringify!($async), "(\"doubled later\", |n| async move { n * 2 })")]
            ///     .await;
            /// assert_eq!(n.unwrap(), 2);
            /// # }
            /// ```
            $async, Async, <Fut> Fut, [Fut: Future<Output = O>]
        );
        verb!(
            $kind,
            #[doc = concat!("Adds an async `", $word, "` step returning `Result`.")]
            ///
            /// ```
            /// # use workflow_runtime::prelude::*;
            /// # #[tokio::main(flavor = "current_thread")] async fn main() {
            /// # let ctx = WorkflowContext::new("W");
            /// let n = Workflow::given(&ctx, "text", || "12")
            #[doc = concat!("    .", stringify!($try_async), "(\"parsed later\", |s| async move { s.parse::<u8>() })")]
            ///     .await;
            /// assert_eq!(n.unwrap(), 12);
            /// # }
            /// ```
            $try_async, TryAsync, <Fut, E> Fut, [Fut: Future<Output = Result<O, E>>, E: Into<StepError>]
        );
    };
}

impl<'c, S: Stage<'c>> Workflow<'c, S> {
    verbs!(When, when, try_when, when_async, try_when_async, "When");
    verbs!(And, and, try_and, and_async, try_and_async, "And");
    verbs!(But, but, try_but, but_async, try_but_async, "But");

    /// Adds an assertion: `predicate` sees the value, which passes on
    /// unchanged. `false` fails the step (see
    /// [`WorkflowOptions::halt_on_failed_assertion`](crate::WorkflowOptions)).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let err = Workflow::given(&ctx, "three", || 3)
    ///     .then("is even", |n| n % 2 == 0)
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), r#"workflow "W", step Then "is even" failed: assertion did not hold"#);
    /// # }
    /// ```
    #[inline]
    pub fn then<F>(self, title: impl Into<Title>, predicate: F) -> Workflow<'c, Step<S, Assert<F>>>
    where
        F: FnOnce(&S::Output) -> bool,
    {
        self.step(StepKind::Then, title, Assert(predicate))
    }

    /// Adds a `When` step that runs the registered handler for the request
    /// `make` builds from the value; a missing handler fails the step with
    /// an error naming the request and response types.
    ///
    /// ```
    /// use workflow_runtime::handlers::Handlers;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let handlers = Handlers::builder().build();
    /// let ctx = WorkflowContext::new("W");
    /// let err = Workflow::given(&ctx, "n", || 1u32)
    ///     .handle("doubled", &handlers, |n| n)
    ///     .result()
    ///     .await
    ///     .map(|out: u64| out)
    ///     .unwrap_err();
    /// assert!(err.to_string().ends_with("no handler registered for request `u32` and response `u64`"));
    /// # }
    /// ```
    pub fn handle<Req, Resp, F>(
        self,
        title: impl Into<Title>,
        handlers: &crate::handlers::Handlers,
        make: F,
    ) -> Workflow<'c, Step<S, Handle<F, Req, Resp>>>
    where
        F: Fn(S::Output) -> Req,
        Req: 'static,
        Resp: Send + 'static,
    {
        let handler = handlers.get::<Req, Resp>();
        self.step(StepKind::When, title, Handle { make, handler })
    }

    /// Adds a step that always runs, after a failure too: `body` sees the
    /// value so far or the error that stopped the chain. The value (or the
    /// error) passes on.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let mut saw_error = false;
    /// let result = Workflow::given(&ctx, "text", || "x")
    ///     .try_when("parsed", |s| s.parse::<u8>())
    ///     .finally("release", |outcome| saw_error = outcome.is_err())
    ///     .await;
    /// assert!(result.is_err() && saw_error);
    /// # }
    /// ```
    #[inline]
    pub fn finally<F>(self, title: impl Into<Title>, body: F) -> Workflow<'c, Finally<S, F>>
    where
        F: FnOnce(Result<&S::Output, &WorkflowError>),
    {
        Workflow {
            ctx: self.ctx,
            stage: Finally {
                prev: self.stage,
                title: title.into(),
                body,
            },
        }
    }

    /// Adds a step of any kind from a [`StepFn`]: what the verbs use, and
    /// the way in for step functions made elsewhere.
    ///
    /// ```
    /// use std::future::{Ready, ready};
    /// use workflow_runtime::chain::{StepFn, StepResult};
    /// # use workflow_runtime::prelude::*;
    ///
    /// struct Increment;
    /// impl StepFn<i32> for Increment {
    ///     type Output = i32;
    ///     type Future = Ready<StepResult<i32>>;
    ///     fn call(self, n: i32) -> Self::Future {
    ///         ready(Ok(n + 1))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let n = Workflow::given(&ctx, "one", || 1)
    ///     .step(StepKind::And, "incremented", Increment)
    ///     .await;
    /// assert_eq!(n.unwrap(), 2);
    /// # }
    /// ```
    #[inline]
    pub fn step<F>(
        self,
        kind: StepKind,
        title: impl Into<Title>,
        body: F,
    ) -> Workflow<'c, Step<S, F>>
    where
        F: StepFn<S::Output>,
    {
        Workflow {
            ctx: self.ctx,
            stage: Step {
                prev: self.stage,
                kind,
                title: title.into(),
                body,
                layers: Vec::new(),
                own: Bare,
                place: Place::Chain,
            },
        }
    }

    /// Changes the last step's kind: `Workflow::given(..).kind(StepKind::When)`
    /// starts a chain with a `When` step.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// Workflow::given(&ctx, "load", || 1).kind(StepKind::When).await.unwrap();
    /// assert_eq!(ctx.steps()[0].kind, StepKind::When);
    /// # }
    /// ```
    #[inline]
    pub fn kind(mut self, kind: StepKind) -> Self
    where
        S: KindOfLast,
    {
        self.stage.set_kind(kind);
        self
    }

    /// The context the chain records into.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// let ctx = WorkflowContext::new("W");
    /// let chain = Workflow::given(&ctx, "one", || 1);
    /// assert_eq!(chain.context().name(), "W");
    /// ```
    pub fn context(&self) -> &'c WorkflowContext {
        self.ctx
    }

    /// Runs the chain: the same as awaiting it, spelled out.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let n = Workflow::given(&ctx, "one", || 1).result().await;
    /// assert_eq!(n.unwrap(), 1);
    /// # }
    /// ```
    pub fn result(self) -> ChainFuture<S::Future> {
        self.into_future()
    }
}

/// Per-step behaviors: each applies to the step just added, outermost
/// first in the order written.
impl<'c, P, F, B> Workflow<'c, Step<P, F, B>>
where
    P: Stage<'c>,
    F: StepFn<P::Output>,
    B: Builtins,
{
    /// Wraps the last step in `behavior`, inside the behaviors given to it
    /// before. The built-in ones among those (`.retry(..)`, `.timeout(..)`,
    /// `.circuit_breaker(..)`), kept in the step's type until now, move to
    /// its list to keep that order.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::Timeout;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let n = Workflow::given(&ctx, "one", || 1)
    ///     .when_async("slow", |n| async move { n })
    ///     .with(Timeout::new(Duration::from_secs(1)))
    ///     .await;
    /// assert_eq!(n.unwrap(), 1);
    /// # }
    /// ```
    pub fn with(self, behavior: impl IntoBehavior) -> Workflow<'c, Step<P, F>> {
        let mut stage = self.stage.listed();
        stage.layers.push(Layer::shared(behavior.into_behavior()));
        Workflow {
            ctx: self.ctx,
            stage,
        }
    }

    /// A behavior or a value behavior from `#[step(behaviors(..))]`, on a
    /// step the macro made [`value_behaviors`](Self::value_behaviors).
    #[doc(hidden)]
    #[inline]
    pub fn __with(self, behavior: impl IntoBehaviorFor<F::Output>) -> Workflow<'c, Step<P, F>> {
        let mut stage = self.stage.listed();
        stage
            .layers
            .push(Layer::for_type(&behavior.into_behavior_for()));
        Workflow {
            ctx: self.ctx,
            stage,
        }
    }

    /// Lets value behaviors ([`ValueBehavior`], such as
    /// [`Fallback`](crate::behavior::Fallback) and
    /// [`Cache`](crate::behavior::Cache)) see and replace the last step's
    /// value: the context's for its type (`behavior_for::<T>`) and its own
    /// ([`with_value`](Self::with_value), which does this itself).
    /// `#[workflow]` does this for every value step that is not durable. A
    /// value step not made so fails, saying why, when a value behavior
    /// registered for its type wraps it.
    ///
    /// ```
    /// use workflow_runtime::behavior::Fallback;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::builder("Quote")
    ///     .behavior_for::<u32>(Fallback::to(|_| Some(999)))
    ///     .build();
    /// let price = Workflow::given(&ctx, "a sku", || "sku-1")
    ///     .try_when("priced", |_sku| Err::<u32, _>(std::fmt::Error))
    ///     .value_behaviors()
    ///     .await;
    /// assert_eq!(price.unwrap(), 999);
    /// # }
    /// ```
    #[inline]
    pub fn value_behaviors(self) -> Workflow<'c, Step<P, Valued<F>, B>>
    where
        F::Output: Send + 'static,
    {
        Workflow {
            ctx: self.ctx,
            stage: self.stage.map_body(Valued),
        }
    }

    /// Wraps the last step in a value behavior, which sees and may
    /// replace its value (see [`value_behaviors`](Self::value_behaviors)).
    ///
    /// ```
    /// use workflow_runtime::behavior::Fallback;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("Quote");
    /// let price = Workflow::given(&ctx, "a sku", || "sku-1")
    ///     .try_when("priced", |_sku| Err::<u32, _>(std::fmt::Error))
    ///     .with_value(Fallback::to(|_| Some(999)))
    ///     .await;
    /// assert_eq!(price.unwrap(), 999);
    /// # }
    /// ```
    pub fn with_value<V>(self, behavior: V) -> Workflow<'c, Step<P, Valued<F>>>
    where
        F::Output: Send + 'static,
        V: ValueBehavior<F::Output>,
    {
        let mut stage = self.stage.map_body(Valued).listed();
        stage
            .layers
            .push(Layer::for_type(&ForType::value(behavior)));
        Workflow {
            ctx: self.ctx,
            stage,
        }
    }

    /// Limits the last step to `limit`; see [`Timeout`](crate::behavior::Timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(start_paused = true, flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let err = Workflow::given(&ctx, "one", || 1)
    ///     .when_async("hangs", |n| async move { std::future::pending::<()>().await; n })
    ///     .timeout(Duration::from_secs(30))
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(err, WorkflowError::TimedOut { .. }));
    /// # }
    /// ```
    #[inline]
    pub fn timeout(
        self,
        limit: std::time::Duration,
    ) -> Workflow<'c, Step<P, F, B::Then<crate::behavior::Timeout>>> {
        Workflow {
            ctx: self.ctx,
            stage: self
                .stage
                .then_builtin(crate::behavior::Timeout::new(limit)),
        }
    }

    /// Guards the last step with `breaker`; see
    /// [`CircuitBreaker`].
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker};
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let breaker = CircuitBreaker::new("notify", BreakerConfig::default());
    /// let ctx = WorkflowContext::new("W");
    /// let sent = Workflow::given(&ctx, "message", || "hi")
    ///     .when("send", |m| m.len())
    ///     .circuit_breaker(breaker.clone())
    ///     .await;
    /// assert_eq!(sent.unwrap(), 2);
    /// # }
    /// ```
    #[inline]
    pub fn circuit_breaker(
        self,
        breaker: Arc<CircuitBreaker>,
    ) -> Workflow<'c, Step<P, F, B::Then<Arc<CircuitBreaker>>>> {
        Workflow {
            ctx: self.ctx,
            stage: self.stage.then_builtin(breaker),
        }
    }

    /// Makes the last step replayable: its closure runs again on a clone of
    /// its input whenever a behavior (here or on the context) retries it.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::builder("W")
    ///     .behavior(workflow_runtime::behavior::Retry::max_attempts(3))
    ///     .build();
    /// let tries = std::sync::atomic::AtomicU32::new(0);
    /// let n = Workflow::given(&ctx, "text", || "7")
    ///     .try_when("flaky parse", |s| {
    ///         let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    ///         if n == 0 { "x".parse::<u8>() } else { s.parse::<u8>() }
    ///     })
    ///     .replayable()
    ///     .await;
    /// assert_eq!(n.unwrap(), 7);
    /// # }
    /// ```
    #[inline]
    pub fn replayable(self) -> Workflow<'c, Step<P, Replay<F>, B>>
    where
        F: CallAgain<P::Output>,
        P::Output: ReplayInput,
    {
        Workflow {
            ctx: self.ctx,
            stage: self.stage.map_body(|body| Replay(body, Keep::Always)),
        }
    }

    /// [`replayable`](Self::replayable), keeping the input only for a
    /// behavior that runs steps again: how `#[workflow]` lets a type-wide
    /// retry run a step whose input is `Clone`.
    #[inline]
    pub(crate) fn replayable_for_retries(self) -> Workflow<'c, Step<P, Replay<F>, B>>
    where
        F: CallAgain<P::Output>,
        P::Output: ReplayInput,
    {
        Workflow {
            ctx: self.ctx,
            stage: self.stage.map_body(|body| Replay(body, Keep::ForRetries)),
        }
    }

    /// Lets a test's override stand in for the last step (see
    /// [`ContextBuilder::override_step`](crate::ContextBuilder::override_step));
    /// `#[workflow]` marks every step that makes a value this way. Without
    /// an override for its title, the step runs as it would. Call it after
    /// the step's behaviors (`.retry(..)` first).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::builder("W")
    ///     .override_step("rate", |_: &u32| Ok::<u32, std::io::Error>(7))
    ///     .build();
    /// let n = Workflow::given(&ctx, "amount", || 100u32)
    ///     .when("rate", |n| n / 10)
    ///     .overridable()
    ///     .await;
    /// assert_eq!(n.unwrap(), 7);
    /// # }
    /// ```
    #[inline]
    pub fn overridable(self) -> Workflow<'c, Step<P, Overridable<F>, B>>
    where
        P::Output: 'static,
        F::Output: 'static,
    {
        Workflow {
            ctx: self.ctx,
            stage: self.stage.map_body(Overridable),
        }
    }

    /// The last step's body as `#[workflow]` declares a step with no
    /// behaviors of its own ([`Declared`]): what `value_behaviors`, a
    /// replay for type-wide retries (`K` = [`ForRetries`]) or none
    /// ([`NoReplay`]), and `overridable` make of it, in one wrapper. The
    /// macro's probe picks `K` by whether the input is `Clone`.
    #[inline]
    pub(crate) fn declared<K>(self) -> Workflow<'c, Step<P, Declared<F, K>, B>> {
        Workflow {
            ctx: self.ctx,
            stage: self.stage.map_body(Declared::new),
        }
    }

    /// Places the last step inside another step's body, with `layers` as
    /// its only behaviors: how [`Around`](super::Around) runs one
    /// wrapped call.
    pub(crate) fn placed(self, place: Place, layers: Layers) -> Workflow<'c, Step<P, F>> {
        let mut stage = self.stage.listed();
        stage.place = place;
        stage.layers.extend(layers);
        Workflow {
            ctx: self.ctx,
            stage,
        }
    }

    /// Retries the last step on failure; see [`Retry`](crate::behavior::Retry).
    /// Its input is cloned for each attempt, so it must be `Clone`, and its
    /// closure `Fn`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::Retry;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(start_paused = true, flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let calls = AtomicU32::new(0);
    /// let n = Workflow::given(&ctx, "text", || "7")
    ///     .try_when("flaky parse", |s| match calls.fetch_add(1, Ordering::SeqCst) {
    ///         0 | 1 => "oops".parse::<u8>(),
    ///         _ => s.parse::<u8>(),
    ///     })
    ///     .retry(Retry::max_attempts(3).backoff(Duration::from_millis(10)))
    ///     .await;
    /// assert_eq!(n.unwrap(), 7);
    /// assert_eq!(ctx.steps()[1].attempts, 3);
    /// # }
    /// ```
    #[inline]
    pub fn retry(
        self,
        retry: crate::behavior::Retry,
    ) -> Workflow<'c, Step<P, Replay<F>, B::Then<crate::behavior::Retry>>>
    where
        F: CallAgain<P::Output>,
        P::Output: ReplayInput,
    {
        let chain = self.replayable();
        Workflow {
            ctx: chain.ctx,
            stage: chain.stage.then_builtin(retry),
        }
    }

    /// Gives the last step a compensation: if a later step fails for good,
    /// `undo` runs on a copy of this step's output, after the
    /// compensations of the steps since (latest first), as a step of kind
    /// `Compensate` with this step's title. The run's error stays the
    /// failure that started it, or becomes
    /// [`WorkflowError::CompensationFailed`] when a compensation fails too.
    /// A cancelled run is not compensated.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use workflow_runtime::StepKind;
    /// # use workflow_runtime::prelude::*;
    /// # #[derive(Debug)] struct NoCarrier;
    /// # impl std::fmt::Display for NoCarrier { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("no carrier") } }
    /// # impl std::error::Error for NoCarrier {}
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let refunded = Mutex::new(Vec::new());
    /// let ctx = WorkflowContext::new("PlaceOrder");
    /// let err = Workflow::given(&ctx, "an order", || 250u32)
    ///     .when_async("charge card", |cents| async move { format!("receipt for {cents}") })
    ///     .compensate(|receipt: String| {
    ///         refunded.lock().unwrap().push(receipt);
    ///         async { Ok::<_, std::io::Error>(()) }
    ///     })
    ///     .try_when("ship", |_| Err::<(), _>(NoCarrier))
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), r#"workflow "PlaceOrder", step When "ship" failed: no carrier"#);
    /// assert_eq!(*refunded.lock().unwrap(), ["receipt for 250"]);
    /// let last = ctx.steps().pop().unwrap();
    /// assert_eq!((last.kind, &*last.title), (StepKind::Compensate, "charge card"));
    /// # }
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn compensate<C, Fut, E>(
        self,
        undo: C,
    ) -> Workflow<'c, Compensated<Step<P, F, B>, Undo<C>, F::Output>>
    where
        C: Fn(F::Output) -> Fut,
        F::Output: Clone,
        Fut: Future<Output = Result<(), E>>,
        E: Into<StepError>,
    {
        let title = self.stage.title.clone();
        self.compensate_by(title, Undo(undo), Clone::clone)
    }

    /// [`compensate`](Self::compensate) with any [`Compensation`], and how
    /// to copy the output for it: what `#[workflow]` generates (a durable
    /// one journals its compensations).
    #[doc(hidden)]
    #[inline]
    #[allow(clippy::type_complexity)]
    pub fn compensate_by<U>(
        self,
        title: impl Into<Title>,
        undo: U,
        keep: fn(&F::Output) -> F::Output,
    ) -> Workflow<'c, Compensated<Step<P, F, B>, U, F::Output>>
    where
        U: Compensation<'c, F::Output>,
    {
        Workflow {
            ctx: self.ctx,
            stage: Compensated {
                step: self.stage,
                undo,
                keep,
                title: title.into(),
                layers: Vec::new(),
            },
        }
    }
}

/// A compensation's own title and behaviors.
impl<'c, S, U, O> Workflow<'c, Compensated<S, U, O>> {
    /// Titles the compensation's record (the step's title by default).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let _ = Workflow::given(&ctx, "stock", || 3u32)
    ///     .compensate(|_| async { Ok::<_, std::io::Error>(()) })
    ///     .compensation_title("release stock")
    ///     .then("never", |_| false)
    ///     .await;
    /// assert_eq!(ctx.steps().last().unwrap().title, "release stock");
    /// # }
    /// ```
    pub fn compensation_title(mut self, title: impl Into<Title>) -> Self {
        self.stage.title = title.into();
        self
    }

    /// Wraps the compensation in `behavior` (inside those added before),
    /// as [`with`](Workflow::with) wraps a step. Its body is `Fn` and its
    /// value is copied for each attempt, so a retry can run it again.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use workflow_runtime::behavior::Retry;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let tries = AtomicU32::new(0);
    /// let _ = Workflow::given(&ctx, "stock", || 3u32)
    ///     .compensate(|_| {
    ///         let n = tries.fetch_add(1, Ordering::SeqCst);
    ///         async move { if n == 0 { Err(std::io::Error::other("busy")) } else { Ok(()) } }
    ///     })
    ///     .compensation_with(Retry::max_attempts(3))
    ///     .then("never", |_| false)
    ///     .await;
    /// assert_eq!(ctx.steps().last().unwrap().attempts, 2);
    /// # }
    /// ```
    pub fn compensation_with(mut self, behavior: impl IntoBehavior) -> Self {
        self.stage
            .layers
            .push(Layer::shared(behavior.into_behavior()));
        self
    }
}

impl<'c, S: Stage<'c>> IntoFuture for Workflow<'c, S> {
    type Output = Result<S::Output, WorkflowError>;
    type IntoFuture = ChainFuture<S::Future>;

    fn into_future(self) -> Self::IntoFuture {
        ChainFuture::new(self.stage.start(self.ctx), self.ctx)
    }
}
