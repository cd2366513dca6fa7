//! How a behavior runs the rest of the stack, and how the innermost layer
//! asks the step for one attempt of its body.
//!
//! The step's body never enters the behaviors' future: it stays in the
//! step's own state, so it need not be `Send` or boxed. The innermost
//! layer, [`Attempt`], only *asks* for an attempt through the step's
//! [`Handoff`]; the step, which polls the behaviors' future, sees the
//! request, runs the body and leaves the outcome there for `Attempt` to
//! take. Everything is owned or borrowed in the open: no raw pointers, no
//! thread-locals, and a `Next` borrowed from the step cannot be sent to
//! another task, so a layer that needs `'static` does not compile.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::{Attempted, BoxFuture, Layer, StepScope};
use crate::error::{StepError, StepFailure};

/// The rest of the stack. A behavior may run it any number of times, one
/// run after another: [`run`](Self::run) borrows it mutably, so two runs
/// cannot overlap.
pub struct Next<'a> {
    stack: &'a [Layer],
    scope: &'a StepScope,
}

impl<'a> Next<'a> {
    pub(crate) fn new(stack: &'a [Layer], scope: &'a StepScope) -> Self {
        Next { stack, scope }
    }

    /// Runs the remaining behaviors, then the step's body once.
    pub fn run(&mut self) -> BoxFuture<'_, Attempted> {
        self.detach().run_once()
    }

    /// A copy for adapters that cannot borrow (a tower `Service` returns
    /// futures that outlive `&mut self`): overlapping runs are then
    /// possible, and the older one ends with an error.
    pub(crate) fn detach(&self) -> Next<'a> {
        Next::new(self.stack, self.scope)
    }

    pub(crate) fn run_once(self) -> BoxFuture<'a, Attempted> {
        match self.stack.split_first() {
            Some((layer, rest)) => layer.around(self.scope, Next::new(rest, self.scope)),
            None => Box::pin(Attempt {
                handoff: &self.scope.handoff,
                number: None,
            }),
        }
    }

    /// Whether the step's body can run again (see [`StepScope::replayable`]).
    pub fn can_replay(&self) -> bool {
        self.scope.replayable()
    }

    pub(crate) fn scope(&self) -> &'a StepScope {
        self.scope
    }
}

/// Where the innermost layer and the step meet: which attempt is wanted,
/// and how the last one ended.
#[derive(Default)]
pub(crate) struct Handoff {
    slot: Mutex<Slot>,
    /// The step's value, while value behaviors hold the stack: handed up
    /// by the step after an attempt that passed, then by each value
    /// behavior to the stack around it, and taken back by the step.
    value: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

#[derive(Default)]
struct Slot {
    /// Attempts asked for so far; each `Attempt` takes the next number.
    asked: u32,
    /// The attempt waiting for the body, if any.
    wanted: Option<u32>,
    /// How that attempt ended, once the body has run.
    ended: Option<(u32, Attempted)>,
    /// Who polled the waiting `Attempt` last: woken if an outcome is left
    /// untaken after the step re-polls the behaviors (a combinator such as
    /// `FuturesUnordered` re-polls a child only when its own waker fires).
    waker: Option<Waker>,
    /// The span the behaviors had entered when they asked for the attempt
    /// (a [`Logging`](super::Logging) scope, a [`Tracing`](super::Tracing)
    /// span): the body runs in it, so its own log lines carry the step's
    /// fields. `None` when no span was entered.
    span: Option<tracing::Span>,
}

impl Slot {
    fn remember(&mut self, waker: &Waker) {
        match &mut self.waker {
            Some(known) => known.clone_from(waker),
            none => *none = Some(waker.clone()),
        }
    }
}

impl Handoff {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        // Nothing panics while holding it; recover rather than lose state.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leaves the step's value for the behaviors around the one handing it.
    pub(crate) fn put_value(&self, value: Box<dyn std::any::Any + Send>) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }

    /// Takes the value last left, if any.
    pub(crate) fn take_value(&self) -> Option<Box<dyn std::any::Any + Send>> {
        self.value
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The attempt the behaviors are waiting on, if any.
    pub(crate) fn wanted(&self) -> Option<u32> {
        self.slot().wanted
    }

    /// The span the wanted attempt's body runs in, if the behaviors were
    /// in one when they asked for it.
    pub(crate) fn span(&self) -> Option<tracing::Span> {
        self.slot().span.clone()
    }

    /// Hands `attempt`'s outcome back to the behaviors.
    pub(crate) fn complete(&self, attempt: u32, outcome: Attempted) {
        let mut slot = self.slot();
        if slot.wanted == Some(attempt) {
            slot.wanted = None;
            slot.ended = Some((attempt, outcome));
            // Its span ends when its behaviors say so, not held here
            // through a retry's backoff.
            slot.span = None;
        }
    }

    /// Called by the step before it returns `Pending`: an outcome nobody
    /// took in the re-poll wakes whoever polled its `Attempt`, so a
    /// behavior that polls `Next` only on its own wakeups still sees it.
    pub(crate) fn wake_if_untaken(&self) {
        let waker = {
            let mut slot = self.slot();
            match slot.ended {
                Some(_) => slot.waker.take(),
                None => None,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The innermost layer: one run of the step's body, asked of the step.
struct Attempt<'a> {
    handoff: &'a Handoff,
    number: Option<u32>,
}

impl Future for Attempt<'_> {
    type Output = Attempted;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempted> {
        let mut slot = self.handoff.slot();
        let number = match self.number {
            Some(number) => number,
            None => {
                slot.asked += 1;
                let number = slot.asked;
                slot.wanted = Some(number);
                slot.ended = None;
                slot.remember(cx.waker());
                let current = tracing::Span::current();
                slot.span = (!current.is_none()).then_some(current);
                drop(slot);
                self.number = Some(number);
                // The step polls the behaviors and serves the request as soon
                // as they return `Pending`, in the same poll.
                return Poll::Pending;
            }
        };
        match slot.ended.take() {
            Some((ended, outcome)) if ended == number => Poll::Ready(outcome),
            other => {
                slot.ended = other;
                if slot.wanted == Some(number) {
                    // Only the attempt still wanted says who to wake.
                    slot.remember(cx.waker());
                    Poll::Pending
                } else {
                    // A later run asked for the body while this one waited.
                    Poll::Ready(Err(StepFailure::Error(StepError::new(Overlapped))))
                }
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        // Abandoned mid-flight (a timeout, a `select!`): the step drops the
        // body's future when it sees nobody wants it.
        if let Some(number) = self.number {
            let mut slot = self.handoff.slot();
            if slot.wanted == Some(number) {
                slot.wanted = None;
            }
        }
    }
}

/// Runs the whole stack as one owned future: it holds the scope (which
/// owns the stack) and lends both to the layers it runs.
pub(crate) fn run_stack(scope: Arc<StepScope>) -> BoxFuture<'static, Attempted> {
    Box::pin(async move { Next::new(scope.stack(), &scope).run().await })
}

/// Two runs of the body were asked for at once.
#[derive(Debug)]
struct Overlapped;

impl std::fmt::Display for Overlapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a behavior ran the step again before its last run ended; \
             a step's body runs one attempt at a time",
        )
    }
}

impl std::error::Error for Overlapped {}
