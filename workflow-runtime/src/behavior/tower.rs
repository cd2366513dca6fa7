//! Tower interop: any tower `Layer` wraps a step as a behavior, so existing
//! middleware keeps working.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use tower_layer::Layer;
use tower_service::Service;

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};
use crate::error::{StepError, StepFailure};

/// What a tower middleware's errors become.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The rest of the stack as a tower `Service<()>`: calling it runs the step
/// once. It borrows the running step, so a layer that needs `'static`
/// services (one that spawns them, as `Buffer` does) does not compile.
///
/// ```
/// use tower::limit::ConcurrencyLimitLayer;
/// use workflow_runtime::behavior::TowerLayer;
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // The layer's service wraps a `NextService`: calling it runs the step.
/// let ctx = WorkflowContext::new("Limited");
/// let n = Workflow::given(&ctx, "one", || 1)
///     .when("plus one", |n| n + 1)
///     .with(TowerLayer::new(ConcurrencyLimitLayer::new(1)))
///     .await;
/// assert_eq!(n.unwrap(), 2);
/// # }
/// ```
pub struct NextService<'a>(Next<'a>);

impl Clone for NextService<'_> {
    fn clone(&self) -> Self {
        NextService(self.0.detach())
    }
}

impl<'a> Service<()> for NextService<'a> {
    type Response = ();
    type Error = StepFailure;
    type Future = BoxFuture<'a, Attempted>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), StepFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        self.0.detach().run_once()
    }
}

/// Wraps steps in a tower layer: the layer's service stands where the
/// behavior does in the stack. The layer's errors come back as the step's
/// failure (a `StepFailure` passes through unchanged).
///
/// ```
/// use std::time::Duration;
/// use tower::timeout::TimeoutLayer;
/// use workflow_runtime::behavior::TowerLayer;
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("Tower");
/// let n = Workflow::given(&ctx, "one", || 1)
///     .when_async("tower-wrapped", |n| async move { n + 1 })
///     .with(TowerLayer::new(TimeoutLayer::new(Duration::from_secs(1))))
///     .await;
/// assert_eq!(n.unwrap(), 2);
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TowerLayer<L> {
    layer: L,
}

impl<L> TowerLayer<L> {
    /// Wraps `layer`.
    pub fn new(layer: L) -> Self {
        TowerLayer { layer }
    }
}

#[derive(Debug)]
struct Middleware(BoxError);

impl fmt::Display for Middleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Middleware {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

fn failure(error: BoxError) -> StepFailure {
    match error.downcast::<StepFailure>() {
        Ok(failure) => *failure,
        Err(other) => StepFailure::Error(StepError::new(Middleware(other))),
    }
}

/// A layer that can wrap the rest of the stack for any step's lifetime:
/// tower's bounds, spelled once per lifetime so the `Behavior` impl can ask
/// for all of them. Every tower layer whose service needs no `'static`
/// has it.
///
/// ```
/// use std::time::Duration;
/// use tower::timeout::TimeoutLayer;
/// use workflow_runtime::behavior::WrapsNext;
///
/// fn wraps_any_step<L: for<'a> WrapsNext<'a>>(_: &L) {}
/// wraps_any_step(&TimeoutLayer::new(Duration::from_secs(1)));
/// ```
pub trait WrapsNext<'a> {
    /// Runs the layer's service around one run of `next`.
    fn wrap(&self, next: Next<'a>) -> BoxFuture<'a, Attempted>;
}

impl<'a, L> WrapsNext<'a> for L
where
    L: Layer<NextService<'a>>,
    L::Service: Service<(), Response = ()> + Send + 'a,
    <L::Service as Service<()>>::Error: Into<BoxError>,
    <L::Service as Service<()>>::Future: Send + 'a,
{
    fn wrap(&self, next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(Call::Ready {
            service: self.layer(NextService(next)),
        })
    }
}

pin_project! {
    /// Waits for the service to be ready, then calls it once.
    #[project = CallProj]
    enum Call<S: Service<()>> {
        Ready { service: S },
        Calling { #[pin] fut: S::Future },
    }
}

impl<S> Future for Call<S>
where
    S: Service<(), Response = ()>,
    S::Error: Into<BoxError>,
{
    type Output = Attempted;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempted> {
        loop {
            match self.as_mut().project() {
                CallProj::Ready { service } => {
                    ready!(service.poll_ready(cx)).map_err(|e| failure(e.into()))?;
                    let fut = service.call(());
                    self.set(Call::Calling { fut });
                }
                CallProj::Calling { fut } => {
                    return fut.poll(cx).map_err(|e| failure(e.into()));
                }
            }
        }
    }
}

impl<L> Behavior for TowerLayer<L>
where
    L: for<'a> WrapsNext<'a> + Send + Sync + 'static,
{
    fn around<'a>(&'a self, _step: &'a StepScope, next: Next<'a>) -> BoxFuture<'a, Attempted> {
        self.layer.wrap(next)
    }
}
