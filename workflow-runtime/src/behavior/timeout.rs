//! Timeout: drop the rest of the stack when it runs too long.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};
use crate::error::StepFailure;

/// Fails the step with [`StepFailure::TimedOut`] when the rest of the
/// stack takes longer than the limit, dropping it (and so the step's
/// future): no cooperation from the step needed. Inside a retry it limits
/// each attempt; outside, all of them together.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::Timeout;
/// let timeout = Timeout::new(Duration::from_secs(30));
/// assert_eq!(timeout.limit(), Duration::from_secs(30));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Timeout {
    limit: Duration,
}

impl Timeout {
    /// A timeout of `limit`: a step still running then is dropped and
    /// recorded as timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::Timeout;
    /// use workflow_runtime::prelude::*;
    /// use workflow_runtime::StepFailure;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let ctx = WorkflowContext::builder("Slow")
    ///     .behavior(Timeout::new(Duration::from_secs(2)))
    ///     .build();
    /// let err = Workflow::given(&ctx, "n", || 1)
    ///     .when_async("waits forever", |n| async move {
    ///         std::future::pending::<()>().await;
    ///         n
    ///     })
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(err, WorkflowError::TimedOut { .. }));
    /// assert!(matches!(ctx.steps()[1].outcome, StepOutcome::Failed(StepFailure::TimedOut(d)) if d == Duration::from_secs(2)));
    /// # }
    /// ```
    #[inline]
    pub fn new(limit: Duration) -> Self {
        Timeout { limit }
    }

    /// The limit, for reports and logs.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::behavior::Timeout;
    /// let timeout = Timeout::new(Duration::from_millis(5));
    /// println!("steps may take {:?}", timeout.limit());
    /// ```
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl Behavior for Timeout {
    fn around<'a>(&'a self, _step: &'a StepScope, next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(Limited {
            inner: Some(next.run_once()),
            started: Instant::now(),
            limit: self.limit,
            sleep: None,
            polled: false,
        })
    }
}

struct Limited<'a> {
    inner: Option<BoxFuture<'a, Attempted>>,
    started: Instant,
    limit: Duration,
    // Made only once the step is still running on a later poll: the happy
    // path of a quick step never touches the timer.
    sleep: Option<Pin<Box<Sleep>>>,
    polled: bool,
}

impl Future for Limited<'_> {
    type Output = Attempted;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempted> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(StepFailure::TimedOut(self.limit)));
        };
        if let Poll::Ready(result) = inner.as_mut().poll(cx) {
            self.inner = None;
            return Poll::Ready(result);
        }
        if !std::mem::replace(&mut self.polled, true) {
            // The first poll only asks the step to start its body, which it
            // does before this future's task sleeps; look again right after
            // rather than arm a timer for a body that may finish at once.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let deadline = self.started + self.limit;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                // Drop the step now, so a retry outside can start afresh.
                self.inner = None;
                Poll::Ready(Err(StepFailure::TimedOut(self.limit)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
