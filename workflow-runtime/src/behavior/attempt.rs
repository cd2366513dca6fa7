//! How behaviors reach the step's body without owning it.
//!
//! A step's body future stays inside the chain's own future, polled in
//! place, so it need not be `Send` or boxed. The behaviors run as one boxed,
//! `Send` future; its innermost [`Attempt`] finds the body through a
//! thread-local registration that the step's future sets only while it
//! polls that boxed future, on the same thread, with both borrowed from the
//! same pinned state.

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};
use crate::chain::{StepFn, StepResult, panic_message};
use crate::context::WorkflowContext;
use crate::context::active::{enter, enter_direct};
use crate::error::{StepError, StepFailure};

/// The step body's side of the protocol.
pub(crate) trait Driver {
    /// Makes the body's future for a new attempt.
    fn begin(self: Pin<&mut Self>) -> Result<(), StepFailure>;
    /// Polls the current attempt.
    fn poll_attempt(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempted>;
    /// Drops the current attempt (its `Attempt` was dropped mid-flight).
    fn abandon(self: Pin<&mut Self>);
}

#[derive(Clone, Copy)]
struct Registration {
    driver: *mut (dyn Driver + 'static),
    scope: *const StepScope,
}

thread_local! {
    static CURRENT: Cell<Option<Registration>> = const { Cell::new(None) };
}

/// Polls `run` with `driver` registered for `scope`'s attempts.
pub(crate) fn poll_with_driver<R>(
    driver: Pin<&mut (dyn Driver + '_)>,
    scope: *const StepScope,
    poll: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<Registration>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    // SAFETY: the registration lives only for this call, during which the
    // caller's `driver` borrow is alive and unused elsewhere; `Attempt`
    // reborrows it only inside this call, on this thread. The lifetime is
    // erased to fit a thread-local, never to outlive the borrow.
    let driver: *mut (dyn Driver + '_) = unsafe { Pin::get_unchecked_mut(driver) };
    let driver: *mut (dyn Driver + 'static) = unsafe { std::mem::transmute(driver) };
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(Registration { driver, scope }))));
    poll()
}

/// Runs `f` with the driver registered for `scope`, if any.
fn with_driver<R>(scope: &StepScope, f: impl FnOnce(Option<Pin<&mut dyn Driver>>) -> R) -> R {
    let registration = CURRENT
        .with(Cell::get)
        .filter(|r| std::ptr::eq(r.scope, scope));
    match registration {
        Some(r) => {
            // Nothing reached through the driver may register it again.
            let _hide = HideDriver(CURRENT.with(|c| c.replace(None)));
            // SAFETY: see `poll_with_driver`; the scope check makes sure this
            // attempt belongs to the step that registered the driver.
            f(Some(unsafe { Pin::new_unchecked(&mut *r.driver) }))
        }
        None => f(None),
    }
}

struct HideDriver(Option<Registration>);

impl Drop for HideDriver {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The innermost layer: one run of the step's body.
pub(crate) struct Attempt<'a> {
    scope: &'a StepScope,
    started: Option<Instant>,
    done: bool,
}

impl<'a> Attempt<'a> {
    pub(crate) fn new(scope: &'a StepScope) -> Self {
        Attempt {
            scope,
            started: None,
            done: false,
        }
    }
}

impl Future for Attempt<'_> {
    type Output = Attempted;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempted> {
        let scope = self.scope;
        let mut started = self.started;
        let polled = with_driver(scope, |driver| {
            let Some(mut driver) = driver else {
                return Poll::Ready(Err(misuse(
                    "a behavior polled `next` outside the step it wraps",
                )));
            };
            if started.is_none() {
                driver.as_mut().begin()?;
                scope.attempt_started();
                started = Some(Instant::now());
            }
            driver.poll_attempt(cx)
        });
        self.started = started;
        if polled.is_ready() {
            self.done = true;
            if let Some(started) = started {
                scope.attempt_ended(started.elapsed());
            }
        }
        polled
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.started.is_some() && !self.done {
            with_driver(self.scope, |driver| {
                if let Some(driver) = driver {
                    driver.abandon();
                }
            });
        }
    }
}

#[derive(Debug)]
struct Misuse(&'static str);

impl std::fmt::Display for Misuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Misuse {}

fn misuse(what: &'static str) -> StepFailure {
    StepFailure::Error(StepError::new(Misuse(what)))
}

/// Runs the whole stack as one owned future.
pub(crate) fn run_stack(
    layers: Vec<Arc<dyn Behavior>>,
    scope: Arc<StepScope>,
) -> BoxFuture<'static, Attempted> {
    let stack: Arc<[Arc<dyn Behavior>]> = layers.into();
    Box::pin(async move {
        Next {
            stack: &stack,
            at: 0,
            scope: &scope,
        }
        .run()
        .await
    })
}

pin_project! {
    /// The step body under behaviors: made once, or once per attempt when
    /// the step can replay its input.
    pub(crate) struct BehavedDriver<'c, F, In>
    where
        F: StepFn<In>,
    {
        ctx: &'c WorkflowContext,
        body: Option<F>,
        input: Option<In>,
        #[pin]
        fut: Option<F::Future>,
        first_poll: bool,
        pub(crate) last: Option<StepResult<F::Output>>,
    }
}

impl<'c, F: StepFn<In>, In> BehavedDriver<'c, F, In> {
    pub(crate) fn new(ctx: &'c WorkflowContext, body: F, input: In) -> Self {
        BehavedDriver {
            ctx,
            body: Some(body),
            input: Some(input),
            fut: None,
            first_poll: false,
            last: None,
        }
    }

    pub(crate) fn take_last(self: Pin<&mut Self>) -> Option<StepResult<F::Output>> {
        self.project().last.take()
    }
}

impl<F: StepFn<In>, In> Driver for BehavedDriver<'_, F, In> {
    fn begin(self: Pin<&mut Self>) -> Result<(), StepFailure> {
        let mut this = self.project();
        if this.fut.is_some() {
            return Err(misuse(
                "a behavior ran `next` again while it was still running",
            ));
        }
        let ctx = *this.ctx;
        let body = &mut *this.body;
        let input = &mut *this.input;
        let made = catch_unwind(AssertUnwindSafe(|| {
            enter_direct(ctx, || {
                if let (Some(b), Some(i)) = (body.as_ref(), input.as_ref())
                    && let Some(fut) = b.replay(i)
                {
                    return Some(fut);
                }
                Some(body.take()?.call(input.take()?))
            })
        }));
        match made {
            Ok(Some(fut)) => {
                this.fut.set(Some(fut));
                *this.first_poll = true;
                Ok(())
            }
            Ok(None) => Err(misuse(
                "the step ran once and cannot run again: declare it with a per-step behavior \
                 (such as `retry`) so its input is cloned for each attempt",
            )),
            Err(payload) => Err(StepFailure::Panic(panic_message(&*payload).into())),
        }
    }

    fn poll_attempt(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempted> {
        let mut this = self.project();
        let ctx = *this.ctx;
        let first = std::mem::replace(this.first_poll, false);
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(misuse("a behavior polled a finished attempt")));
        };
        let polled = catch_unwind(AssertUnwindSafe(|| {
            if first {
                enter_direct(ctx, || fut.poll(cx))
            } else {
                enter(ctx, || fut.poll(cx))
            }
        }));
        let result = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => {
                this.fut.set(None);
                return Poll::Ready(Err(StepFailure::Panic(panic_message(&*payload).into())));
            }
        };
        this.fut.set(None);
        let attempted = match &result {
            Ok(_) => Ok(()),
            Err(failed) => Err(failed.failure.clone()),
        };
        *this.last = Some(result);
        Poll::Ready(attempted)
    }

    fn abandon(self: Pin<&mut Self>) {
        self.project().fut.set(None);
    }
}
