//! Tower interop: any tower `Layer` wraps steps as a behavior, so existing
//! middleware keeps working, its state shared by every step it wraps.

use std::fmt;
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use tower_layer::Layer;
use tower_service::Service;

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};
use crate::error::{StepError, StepFailure};

/// What a tower middleware's errors become.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One step run's turn through a [`TowerLayer`]'s service: what the
/// service's requests are. The innermost service, [`StepGate`], hands the
/// turn to the step and waits for its result.
///
/// ```
/// use tower::Service;
/// use workflow_runtime::behavior::{StepGate, Turn};
/// // What a layer's service is called with, and passes on inward.
/// fn wraps_gate<S: Service<Turn, Response = ()>>(_: &S) {}
/// wraps_gate(&StepGate);
/// ```
pub struct Turn {
    go: oneshot::Sender<()>,
    done: oneshot::Receiver<Attempted>,
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Turn")
    }
}

/// The innermost service of a [`TowerLayer`]: calling it lets the step
/// run, and its response is the step's result. It owns nothing of the
/// step, so the layer's services may be `'static` (tower's `Buffer`
/// spawns its own).
///
/// ```
/// use tower::Layer;
/// use tower::limit::ConcurrencyLimitLayer;
/// use workflow_runtime::behavior::StepGate;
/// let service = ConcurrencyLimitLayer::new(1).layer(StepGate);
/// # drop(service);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct StepGate;

impl Service<Turn> for StepGate {
    type Response = ();
    type Error = StepFailure;
    type Future = BoxFuture<'static, Attempted>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), StepFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, turn: Turn) -> Self::Future {
        Box::pin(async move {
            // The step runs now; a step gone (its run dropped) has nothing
            // more to say.
            let _ = turn.go.send(());
            turn.done.await.unwrap_or(Ok(()))
        })
    }
}

/// Wraps steps in a tower layer. The layer is applied once, when the
/// behavior is made, and every step the behavior wraps goes through that
/// one service (a clone of it per call, as tower's services are shared):
/// a `ConcurrencyLimitLayer::new(1)` lets one step body run at a time
/// across all the runs that share the behavior (give it to a runner, or
/// share it in an `Arc`). The layer's errors come back as the step's
/// failure (a `StepFailure` passes through unchanged); a service that
/// gives up on a step (a timeout) drops it where it is.
///
/// A layer whose services are not `Clone` wraps them in tower's `Buffer`
/// (`BufferLayer`), which spawns its worker: make the behavior inside a
/// tokio runtime then.
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
#[derive(Debug)]
pub struct TowerLayer<S> {
    // Behind a lock so the behavior is `Sync` whatever the service is:
    // each call clones it out, as tower's shared services are used.
    service: std::sync::Mutex<S>,
}

impl<S: Clone> Clone for TowerLayer<S> {
    fn clone(&self) -> Self {
        TowerLayer {
            service: std::sync::Mutex::new(self.service()),
        }
    }
}

impl<S: Clone> TowerLayer<S> {
    /// A clone of the one service.
    fn service(&self) -> S {
        self.service
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl<S> TowerLayer<S> {
    /// Applies `layer` around the step gate, once.
    ///
    /// ```
    /// use tower::limit::ConcurrencyLimitLayer;
    /// use workflow_runtime::behavior::TowerLayer;
    /// let one_at_a_time = TowerLayer::new(ConcurrencyLimitLayer::new(1));
    /// # drop(one_at_a_time);
    /// ```
    pub fn new<L>(layer: L) -> Self
    where
        L: Layer<StepGate, Service = S>,
    {
        TowerLayer {
            service: std::sync::Mutex::new(layer.layer(StepGate)),
        }
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

/// Waits for `service` to be ready and calls it with `turn`.
async fn call<S>(mut service: S, turn: Turn) -> Result<(), BoxError>
where
    S: Service<Turn, Response = ()>,
    S::Error: Into<BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    service.call(turn).await.map_err(Into::into)
}

impl<S> Behavior for TowerLayer<S>
where
    S: Service<Turn, Response = ()> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    fn around<'a>(&'a self, _step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            let (go, gone) = oneshot::channel();
            let (done, finished) = oneshot::channel();
            let through = call(self.service(), Turn { go, done: finished });
            tokio::pin!(through);
            // The service lets the step run, or fails first (a refusal, a
            // timeout while it waited).
            tokio::select! {
                biased;
                turn = gone => {
                    if turn.is_err() {
                        // Dropped without running the step: its answer says why.
                        return through.await.map_err(failure);
                    }
                }
                result = &mut through => {
                    return result.map_err(failure);
                }
            }
            // The step runs inside the service's call; a service that gives
            // up meanwhile (a timeout) drops it.
            let ran = tokio::select! {
                ran = next.run() => ran,
                result = &mut through => return result.map_err(failure),
            };
            let _ = done.send(ran);
            through.await.map_err(failure)
        })
    }
}
