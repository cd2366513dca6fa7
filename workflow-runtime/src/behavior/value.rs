//! Behaviors that see a step's value: they read what the step returned
//! and may hand on another (a fallback, a cache, a transform), as the
//! guide's `IBehavior<T>.WrapAsync` does.
//!
//! The step keeps its value in its own state while untyped behaviors run
//! around it (they see only success or the failure). A value behavior
//! sits in the same stack, at the same place an untyped one would; the
//! step hands its value over through the stack's [`Handoff`] when the
//! stack holds one, and takes back whatever the behavior handed on. A
//! step with no value behavior around it hands nothing and pays nothing.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use super::{Attempted, Behavior, BoxFuture, IntoBehavior, Next, StepScope};
use crate::error::{StepError, StepFailure};

/// Wraps a step's execution and sees its value: what the step returned,
/// or the failure, and what to hand on instead.
///
/// Register one for every step making a `T`
/// ([`ContextBuilder::behavior_for`](crate::ContextBuilder::behavior_for),
/// [`RunnerBuilder::behavior_for`](crate::host::RunnerBuilder::behavior_for))
/// wrapped in [`OnValue`], on one `#[workflow]` step
/// (`#[step(behaviors(OnValue(..)))]`), or on one step of a chain
/// ([`with_value`](crate::Workflow::with_value)). [`Fallback`](super::Fallback)
/// and [`Cache`](super::Cache) are value behaviors.
///
/// A value behavior applies to steps that hand their value on to
/// behaviors: every value step of a `#[workflow]` that is not durable (a
/// durable step's journal keeps what its body returned), and chain steps
/// made [`value_behaviors`](crate::Workflow::value_behaviors).
///
/// ```
/// use workflow_runtime::behavior::{BoxFuture, NextValue, OnValue, StepScope, ValueBehavior};
/// use workflow_runtime::prelude::*;
/// use workflow_runtime::StepFailure;
///
/// /// Rounds every price up to whole cents of ten.
/// struct RoundUp;
///
/// impl ValueBehavior<u32> for RoundUp {
///     fn around<'a>(
///         &'a self,
///         _step: &'a StepScope,
///         mut next: NextValue<'a, u32>,
///     ) -> BoxFuture<'a, Result<u32, StepFailure>> {
///         Box::pin(async move { Ok(next.run().await?.div_ceil(10) * 10) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::builder("Quote").behavior_for::<u32>(OnValue(RoundUp)).build();
/// let price = Workflow::given(&ctx, "a list price", || 1_234u32)
///     .value_behaviors()
///     .await
///     .unwrap();
/// assert_eq!(price, 1_240);
/// # }
/// ```
pub trait ValueBehavior<T>: Send + Sync + 'static {
    /// Runs around the rest of the stack: `next.run().await` runs it and
    /// gives the step's value. What this returns is the step's outcome.
    fn around<'a>(
        &'a self,
        step: &'a StepScope,
        next: NextValue<'a, T>,
    ) -> BoxFuture<'a, Result<T, StepFailure>>;

    /// Whether it may run the rest of the stack again after a failed
    /// attempt (see [`Behavior::runs_again`]).
    fn runs_again(&self) -> bool {
        false
    }
}

/// The rest of the stack, for a value behavior: each run gives the
/// step's value, or why there is none.
///
/// ```
/// use workflow_runtime::behavior::{BoxFuture, NextValue, StepScope, ValueBehavior};
/// use workflow_runtime::StepFailure;
///
/// /// Runs the step a second time when its first value is zero.
/// struct NotZero;
///
/// impl ValueBehavior<u32> for NotZero {
///     fn around<'a>(&'a self, _: &'a StepScope, mut next: NextValue<'a, u32>) -> BoxFuture<'a, Result<u32, StepFailure>> {
///         Box::pin(async move {
///             match next.run().await? {
///                 0 if next.can_replay() => next.run().await,
///                 n => Ok(n),
///             }
///         })
///     }
/// }
/// # let _ = NotZero;
/// ```
pub struct NextValue<'a, T> {
    next: Next<'a>,
    value: PhantomData<fn() -> T>,
}

impl<'a, T: Send + 'static> NextValue<'a, T> {
    fn new(next: Next<'a>) -> Self {
        NextValue {
            next,
            value: PhantomData,
        }
    }

    /// Runs the remaining behaviors, then the step's body once, and gives
    /// the value they handed on.
    pub fn run(&mut self) -> BoxFuture<'_, Result<T, StepFailure>> {
        Box::pin(async move {
            let handoff = self.next.scope().handoff();
            // A value left by a run whose outcome nobody kept is not this one's.
            drop(handoff.take_value());
            self.next.run().await?;
            let value = handoff
                .take_value()
                .ok_or_else(|| StepFailure::Error(StepError::new(NoValueHanded)))?;
            value
                .downcast::<T>()
                .map(|value| *value)
                .map_err(|_| StepFailure::Error(StepError::new(NoValueHanded)))
        })
    }

    /// Whether the step's body can run again (see [`StepScope::replayable`]).
    pub fn can_replay(&self) -> bool {
        self.next.can_replay()
    }
}

impl<T, V: ValueBehavior<T>> ValueBehavior<T> for Arc<V> {
    fn around<'a>(
        &'a self,
        step: &'a StepScope,
        next: NextValue<'a, T>,
    ) -> BoxFuture<'a, Result<T, StepFailure>> {
        (**self).around(step, next)
    }

    fn runs_again(&self) -> bool {
        (**self).runs_again()
    }
}

/// A [`ValueBehavior`] made a behavior for a type's steps: what
/// `behavior_for::<T>` and `#[step(behaviors(..))]` take.
///
/// ```
/// # use workflow_runtime::behavior::{BoxFuture, NextValue, OnValue, StepScope, ValueBehavior};
/// # use workflow_runtime::StepFailure;
/// # struct Keep;
/// # impl ValueBehavior<u8> for Keep {
/// #     fn around<'a>(&'a self, _: &'a StepScope, mut next: NextValue<'a, u8>) -> BoxFuture<'a, Result<u8, StepFailure>> {
/// #         Box::pin(async move { next.run().await })
/// #     }
/// # }
/// let ctx = workflow_runtime::WorkflowContext::builder("W").behavior_for::<u8>(OnValue(Keep)).build();
/// # drop(ctx);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OnValue<V>(pub V);

/// Anything `behavior_for::<T>` takes: a [`Behavior`] (which sees only
/// whether the step failed), or a value behavior for `T`
/// ([`OnValue`], [`Fallback`](super::Fallback), [`Cache`](super::Cache)).
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::{Cache, IntoBehaviorFor, Logging};
///
/// /// Takes what `behavior_for::<u32>` takes.
/// fn for_numbers(_: impl IntoBehaviorFor<u32>) {}
/// for_numbers(Logging);
/// for_numbers(Cache::<u32>::fresh_for(Duration::from_secs(1)));
/// ```
pub trait IntoBehaviorFor<T: ?Sized> {
    /// The behavior, for `T`'s steps.
    fn into_behavior_for(self) -> ForType;
}

impl<T: ?Sized, B: IntoBehavior> IntoBehaviorFor<T> for B {
    fn into_behavior_for(self) -> ForType {
        ForType {
            behavior: self.into_behavior(),
            value: None,
        }
    }
}

impl<T, V: ValueBehavior<T>> ValueBehavior<T> for OnValue<V> {
    fn around<'a>(
        &'a self,
        step: &'a StepScope,
        next: NextValue<'a, T>,
    ) -> BoxFuture<'a, Result<T, StepFailure>> {
        self.0.around(step, next)
    }

    fn runs_again(&self) -> bool {
        self.0.runs_again()
    }
}

impl<T: Send + 'static, V: ValueBehavior<T>> IntoBehaviorFor<T> for OnValue<V> {
    fn into_behavior_for(self) -> ForType {
        ForType::value::<T, V>(self.0)
    }
}

/// A behavior kept for one type's steps, with whether it sees their value:
/// made only by [`IntoBehaviorFor`].
#[derive(Clone)]
pub struct ForType {
    pub(crate) behavior: Arc<dyn Behavior>,
    /// The type whose value it sees, by name, when it is a value behavior.
    pub(crate) value: Option<&'static str>,
}

impl ForType {
    /// A value behavior for `T`.
    pub(crate) fn value<T: Send + 'static, V: ValueBehavior<T>>(behavior: V) -> Self {
        ForType {
            behavior: Arc::new(ValueLayer {
                behavior,
                value: PhantomData::<fn() -> T>,
            }),
            value: Some(std::any::type_name::<T>()),
        }
    }

    /// Whether it may run a step again (a retry).
    pub(crate) fn runs_again(&self) -> bool {
        self.behavior.runs_again()
    }

    /// The type whose value it replaces, by name, for a value behavior.
    pub(crate) fn value_type(&self) -> Option<&'static str> {
        self.value
    }
}

impl std::fmt::Debug for ForType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForType")
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

/// A value behavior as the stack runs it: its outcome's value goes back to
/// the step through the handoff.
struct ValueLayer<T, V> {
    behavior: V,
    value: PhantomData<fn() -> T>,
}

impl<T: Send + 'static, V: ValueBehavior<T>> Behavior for ValueLayer<T, V> {
    fn around<'a>(&'a self, step: &'a StepScope, next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            let value = self.behavior.around(step, NextValue::new(next)).await?;
            step.handoff().put_value(Box::new(value));
            Ok(())
        })
    }

    fn runs_again(&self) -> bool {
        self.behavior.runs_again()
    }
}

/// A failed step's outcome when a value behavior has `value` to serve in
/// its place: the value, logged at `warn` with the failure it hides
/// (`served` says what it is), or the failure.
pub(super) fn serve_instead<T>(
    step: &StepScope,
    failure: StepFailure,
    value: Option<T>,
    served: &str,
) -> Result<T, StepFailure> {
    let Some(value) = value else {
        return Err(failure);
    };
    tracing::warn!(
        workflow = %step.ctx().name(),
        step = %step.title(),
        error = %failure,
        "step failed: serving {served}"
    );
    Ok(value)
}

/// How a step hands its value to the value behaviors around it and takes
/// back theirs: made where the value's type is known to be `Send +
/// 'static`, so the step itself needs no such bound.
#[doc(hidden)]
pub struct Port<O> {
    erase: fn(O) -> Box<dyn Any + Send>,
    restore: fn(Box<dyn Any + Send>) -> Option<O>,
}

impl<O> Clone for Port<O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O> Copy for Port<O> {}

impl<O: Send + 'static> Port<O> {
    /// The port for `O`.
    pub(crate) fn new() -> Self {
        Port {
            erase: |value| Box::new(value),
            restore: |value| value.downcast().ok().map(|value| *value),
        }
    }
}

impl<O> Port<O> {
    pub(crate) fn erase(self, value: O) -> Box<dyn Any + Send> {
        (self.erase)(value)
    }

    pub(crate) fn restore(self, value: Box<dyn Any + Send>) -> Option<O> {
        (self.restore)(value)
    }
}

/// The rest of the stack ended well, but no value came back from it.
#[derive(Debug)]
struct NoValueHanded;

impl std::fmt::Display for NoValueHanded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a behavior inside a value behavior reported success without running the step, \
             so there is no value to hand on",
        )
    }
}

impl std::error::Error for NoValueHanded {}

/// A value behavior sits around a step that does not hand its value on.
#[derive(Debug)]
pub(crate) struct ValueNotHanded {
    /// The value's type, as named by the compiler.
    pub(crate) ty: &'static str,
}

impl std::fmt::Display for ValueNotHanded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a value behavior for `{}` wraps this step, but the step does not hand its value to \
             behaviors: call `.value_behaviors()` on it in a chain (a durable step cannot: its \
             journal keeps what its body returned)",
            self.ty
        )
    }
}

impl std::error::Error for ValueNotHanded {}
