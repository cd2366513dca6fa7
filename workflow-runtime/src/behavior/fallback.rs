//! A value behavior that answers a failed step with a value of its own:
//! the guide's "serve the cached price when the pricing service is down".

use std::marker::PhantomData;

use super::value::{ForType, IntoBehaviorFor, NextValue, ValueBehavior, serve_instead};
use super::{BoxFuture, StepScope};
use crate::error::StepFailure;

/// Hands on `serve(&failure)` when the step fails for good (after any
/// retry inside it), or the failure when that gives `None`. A value served
/// is logged at `warn` with the failure it hides.
///
/// Put it outside a retry or a breaker so they see the failures it hides:
/// registered for a type (`behavior_for::<T>`) it sits outside a step's own
/// behaviors.
///
/// ```
/// use workflow_runtime::behavior::{Fallback, Retry};
/// use workflow_runtime::prelude::*;
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Price(u32);
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let ctx = WorkflowContext::builder("Quote")
///     .behavior_for::<Price>(Fallback::to(|_failure| Some(Price(1_000))))
///     .build();
/// let tries = std::sync::atomic::AtomicU32::new(0);
/// let price = Workflow::given(&ctx, "a sku", || "sku-1")
///     .try_when("priced", |_sku| {
///         tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///         Err::<Price, _>(std::io::Error::other("pricing is down"))
///     })
///     .retry(Retry::max_attempts(3))
///     .value_behaviors()
///     .await;
/// assert_eq!(price.unwrap(), Price(1_000));
/// assert_eq!(tries.into_inner(), 3, "the retry ran inside the fallback");
/// # }
/// ```
pub struct Fallback<T, F> {
    serve: F,
    value: PhantomData<fn() -> T>,
}

impl<T, F> Fallback<T, F>
where
    F: Fn(&StepFailure) -> Option<T> + Send + Sync + 'static,
{
    /// Serves `serve(&failure)` for a step that failed, when it gives a
    /// value.
    pub fn to(serve: F) -> Self {
        Fallback {
            serve,
            value: PhantomData,
        }
    }
}

impl<T, F> ValueBehavior<T> for Fallback<T, F>
where
    T: Send + 'static,
    F: Fn(&StepFailure) -> Option<T> + Send + Sync + 'static,
{
    fn around<'a>(
        &'a self,
        step: &'a StepScope,
        mut next: NextValue<'a, T>,
    ) -> BoxFuture<'a, Result<T, StepFailure>> {
        Box::pin(async move {
            match next.run().await {
                Ok(value) => Ok(value),
                Err(failure) => {
                    let value = (self.serve)(&failure);
                    serve_instead(step, failure, value, "its fallback")
                }
            }
        })
    }
}

impl<T, F> IntoBehaviorFor<T> for Fallback<T, F>
where
    T: Send + 'static,
    F: Fn(&StepFailure) -> Option<T> + Send + Sync + 'static,
{
    fn into_behavior_for(self) -> ForType {
        ForType::value(self)
    }
}

impl<T, F> std::fmt::Debug for Fallback<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback").finish_non_exhaustive()
    }
}
