//! Tower interop: any tower `Layer` wraps a step as a behavior, so existing
//! middleware keeps working.

use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::{Attempted, Behavior, BoxFuture, Next, OwnedNext, StepScope};
use crate::error::{StepError, StepFailure};

/// What a tower middleware's errors become.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The rest of the stack as a tower `Service<()>`: calling it runs the step
/// once.
#[derive(Clone)]
pub struct NextService(OwnedNext);

impl Service<()> for NextService {
    type Response = ();
    type Error = StepFailure;
    type Future = BoxFuture<'static, Attempted>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), StepFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        self.0.run()
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

impl<L> Behavior for TowerLayer<L>
where
    L: Layer<NextService> + Send + Sync + 'static,
    L::Service: Service<(), Response = ()> + Send,
    <L::Service as Service<()>>::Error: Into<BoxError>,
    <L::Service as Service<()>>::Future: Send,
{
    fn around<'a>(&'a self, _step: &'a StepScope, next: Next<'a>) -> BoxFuture<'a, Attempted> {
        let mut service = self.layer.layer(NextService(next.to_owned()));
        Box::pin(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|e| failure(e.into()))?;
            service.call(()).await.map_err(|e| failure(e.into()))
        })
    }
}
