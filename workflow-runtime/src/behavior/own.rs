//! A chain step's own built-in behaviors, kept in the step's type.
//!
//! `.retry(..)`, `.timeout(..)` and `.circuit_breaker(..)` (and so
//! `#[step(retry(..), timeout = "..", circuit_breaker(..))]`) each wrap the
//! step's stack in one more type: `Retrying<TimeLimited<Guarded<Bare>>>`
//! for the three in that order, outermost first. Each layer is plain state
//! in the step's future, as a tower layer's is in its service: no list,
//! no box per run, and no timer until the step has to wait. Their poll is
//! one nested function the compiler sees whole.
//!
//! A step that something else wraps too (its context's behaviors, or one
//! given with `.with(..)` before or after them), or a durable step resuming
//! a retry the journal began, hands its layers to the step's list instead,
//! where they keep their place in the order written and the same meaning.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::time::{Instant, Sleep};

use super::inline::{Attempts, step_over};
use super::layer::Layer;
use super::retry::Site;
use super::{Attempted, CircuitBreaker, Retry, Timeout};
use crate::context::WorkflowContext;
use crate::error::{StepError, StepFailure};

/// Attempts sent back at once (no backoff) in one poll, before the step
/// yields to the task's other work, the step timeout and cancellation.
const AGAIN_PER_POLL: u32 = 32;

mod sealed {
    pub trait Sealed {}
}

/// A step's own built-in behaviors, as a type: [`Bare`] for none, and
/// each of [`Retrying`], [`TimeLimited`] and [`Guarded`] around the ones
/// given after it. The chain builds it; a user rarely names it.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::{Bare, Retry, Retrying, TimeLimited};
/// use workflow_runtime::chain::{Plain, Replay, Start, Step, Unary};
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("W");
/// let chain = Workflow::given(&ctx, "one", || 1)
///     .when("doubled", |n| n * 2)
///     .retry(Retry::max_attempts(3))
///     .timeout(Duration::from_secs(1));
/// // The step's type says what wraps it: a retry around a timeout.
/// let _: &Workflow<'_, Step<_, Replay<_>, Retrying<TimeLimited<Bare>>>> = &chain;
/// assert_eq!(chain.await.unwrap(), 2);
/// # }
/// ```
pub trait Builtins: sealed::Sealed + Send + Sized {
    /// These behaviors with `L` inside them all.
    type Then<L: Builtin>: Builtins;

    /// The room a step keeps for running these behaviors: `T` when there
    /// are any, nothing at all for [`Bare`], so a step without them
    /// carries none.
    #[doc(hidden)]
    type Slot<T>;

    /// Whether there are none.
    #[doc(hidden)]
    const EMPTY: bool;

    /// Adds `layer` inside the others.
    #[doc(hidden)]
    fn __then<L: Builtin>(self, layer: L) -> Self::Then<L>;

    /// Whether one of them may run the step again.
    #[doc(hidden)]
    fn __runs_again(&self) -> bool;

    /// Copies them, outermost first, to the end of a context's stack.
    #[doc(hidden)]
    fn __push_layers(&self, into: &mut Vec<Layer>);

    /// Runs the step under them until the outermost hands up its outcome.
    #[doc(hidden)]
    fn __poll<A: Attempts>(
        &mut self,
        pass: &mut Pass<'_>,
        body: &mut A,
        cx: &mut Context<'_>,
    ) -> Poll<Attempted>;

    /// Leaves every layer idle: what they wrap was dropped.
    #[doc(hidden)]
    fn __reset(&mut self);

    /// Lets the step's first attempt in before the layers run it: each
    /// breaker admits it, outermost first. `false` when one refuses: the
    /// layers then run the step from the start, the breakers outside the
    /// one that refused holding their admissions, as their own way down
    /// would have left them, and hear the refusal themselves.
    #[doc(hidden)]
    fn __admit(&mut self) -> bool;

    /// The first attempt, let in by [`__admit`](Self::__admit), passed at
    /// its first poll: each breaker hears so, innermost first, as the
    /// layers would have told them on their way back up.
    #[doc(hidden)]
    fn __passed(&mut self);

    /// Keeps `value` in the slot, or hands it back when there is no room
    /// ([`Bare`]).
    #[doc(hidden)]
    fn __slot<T>(value: T) -> Result<Self::Slot<T>, T>;

    /// What the slot holds.
    #[doc(hidden)]
    fn __pin<T>(slot: Pin<&mut Self::Slot<T>>) -> Pin<&mut T>;
}

/// A built-in behavior a step can keep in its type: [`Retry`],
/// [`Timeout`], or a shared [`CircuitBreaker`].
pub trait Builtin: sealed::Sealed {
    /// This behavior around `I`.
    type Around<I: Builtins>: Builtins;
    /// Wraps `inner`.
    #[doc(hidden)]
    fn __around<I: Builtins>(self, inner: I) -> Self::Around<I>;
}

/// One poll's way down through a step's layers.
#[doc(hidden)]
pub struct Pass<'a> {
    site: Site<'a>,
    /// The time to start deadlines from on this way down: the step's start
    /// on its first, then read once when a timeout first needs it.
    now: Option<Instant>,
    /// The step's start, for its step timeout.
    begun: Instant,
    /// The earliest deadline of the timeouts around the layer being run.
    deadline: Option<Instant>,
    /// A retry found that deadline passed before its next attempt: the
    /// innermost timeout around it whose deadline has passed fires, with no
    /// attempt started and no timer looked at.
    overdue: bool,
    /// Attempts sent back at once in this poll.
    again: u32,
}

impl<'a> Pass<'a> {
    /// A poll of the step `title` in `ctx`, which started at `begun`;
    /// `first` is that start again on the step's first poll. `call` marks a
    /// call inside a step's body.
    pub(crate) fn new(
        ctx: &'a WorkflowContext,
        title: &'a str,
        call: bool,
        begun: Instant,
        first: Option<Instant>,
    ) -> Self {
        Pass {
            site: Site { ctx, title, call },
            now: first,
            begun,
            deadline: None,
            overdue: false,
            again: 0,
        }
    }

    fn now(&mut self) -> Instant {
        *self.now.get_or_insert_with(Instant::now)
    }

    /// Whether a timeout around the layer being run is out of time.
    fn past_deadline(&mut self) -> bool {
        self.deadline.is_some_and(|deadline| self.now() >= deadline)
    }
}

/// No built-in behaviors of the step's own.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bare;

/// Has no value: [`Bare`]'s slot, so a step without behaviors keeps no
/// room for running them.
#[doc(hidden)]
#[derive(Debug)]
pub enum Never {}

impl sealed::Sealed for Bare {}

impl Builtins for Bare {
    type Then<L: Builtin> = L::Around<Bare>;
    type Slot<T> = Never;
    const EMPTY: bool = true;

    #[inline]
    fn __then<L: Builtin>(self, layer: L) -> Self::Then<L> {
        layer.__around(Bare)
    }

    fn __runs_again(&self) -> bool {
        false
    }

    fn __push_layers(&self, _: &mut Vec<Layer>) {}

    fn __poll<A: Attempts>(
        &mut self,
        _: &mut Pass<'_>,
        body: &mut A,
        cx: &mut Context<'_>,
    ) -> Poll<Attempted> {
        if body.in_flight() {
            body.poll(cx)
        } else {
            body.start_and_poll(cx)
        }
    }

    fn __reset(&mut self) {}

    fn __admit(&mut self) -> bool {
        true
    }

    fn __passed(&mut self) {}

    fn __slot<T>(value: T) -> Result<Never, T> {
        Err(value)
    }

    fn __pin<T>(slot: Pin<&mut Never>) -> Pin<&mut T> {
        match *Pin::into_inner(slot) {}
    }
}

/// A [`Retry`] around the behaviors `I`.
#[derive(Debug)]
pub struct Retrying<I> {
    retry: Retry,
    /// The attempt under way, from 1; 0 outside a run.
    attempt: u32,
    /// Another attempt is due and has not started.
    due: bool,
    /// The wait before the next attempt, while it lasts.
    backoff: Option<Pin<Box<Sleep>>>,
    inner: I,
}

/// A [`Timeout`] around the behaviors `I`.
#[derive(Debug)]
pub struct TimeLimited<I> {
    timeout: Timeout,
    /// Set on the way in.
    deadline: Option<Instant>,
    /// Armed only once what it wraps has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    inner: I,
}

/// A [`CircuitBreaker`] around the behaviors `I`.
#[derive(Debug)]
pub struct Guarded<I> {
    admission: Admission,
    inner: I,
}

/// A breaker and the call it let in, if one is under way: a call dropped
/// before it ended counts for nothing, and frees the half-open trial.
#[derive(Debug)]
struct Admission {
    breaker: Arc<CircuitBreaker>,
    /// Whether the call under way is the half-open circuit's trial.
    trial: Option<bool>,
}

impl Admission {
    #[inline]
    fn abandon(&mut self) {
        if let Some(trial) = self.trial.take() {
            self.breaker.abandon(trial);
        }
    }
}

impl Drop for Admission {
    #[inline]
    fn drop(&mut self) {
        self.abandon();
    }
}

impl sealed::Sealed for Retry {}
impl sealed::Sealed for Timeout {}
impl sealed::Sealed for Arc<CircuitBreaker> {}

impl Builtin for Retry {
    type Around<I: Builtins> = Retrying<I>;
    #[inline]
    fn __around<I: Builtins>(self, inner: I) -> Retrying<I> {
        Retrying {
            retry: self,
            attempt: 0,
            due: false,
            backoff: None,
            inner,
        }
    }
}

impl Builtin for Timeout {
    type Around<I: Builtins> = TimeLimited<I>;
    #[inline]
    fn __around<I: Builtins>(self, inner: I) -> TimeLimited<I> {
        TimeLimited {
            timeout: self,
            deadline: None,
            sleep: None,
            inner,
        }
    }
}

impl Builtin for Arc<CircuitBreaker> {
    type Around<I: Builtins> = Guarded<I>;
    #[inline]
    fn __around<I: Builtins>(self, inner: I) -> Guarded<I> {
        Guarded {
            admission: Admission {
                breaker: self,
                trial: None,
            },
            inner,
        }
    }
}

/// What every layer's `Builtins` shares: where `I` goes, and the slot.
macro_rules! layered {
    () => {
        type Slot<T> = T;
        const EMPTY: bool = false;

        fn __slot<T>(value: T) -> Result<T, T> {
            Ok(value)
        }

        fn __pin<T>(slot: Pin<&mut T>) -> Pin<&mut T> {
            slot
        }
    };
}

/// A layer that is no breaker: a first attempt let in before the layers
/// run is its inner layers' business.
macro_rules! no_breaker {
    () => {
        #[inline]
        fn __admit(&mut self) -> bool {
            self.inner.__admit()
        }

        #[inline]
        fn __passed(&mut self) {
            self.inner.__passed();
        }
    };
}

impl<I> sealed::Sealed for Retrying<I> {}
impl<I> sealed::Sealed for TimeLimited<I> {}
impl<I> sealed::Sealed for Guarded<I> {}

impl<I: Builtins> Builtins for Retrying<I> {
    type Then<L: Builtin> = Retrying<I::Then<L>>;
    layered!();

    #[inline]
    fn __then<L: Builtin>(self, layer: L) -> Self::Then<L> {
        Retrying {
            retry: self.retry,
            attempt: self.attempt,
            due: self.due,
            backoff: self.backoff,
            inner: self.inner.__then(layer),
        }
    }

    fn __runs_again(&self) -> bool {
        // As in a list (`Layer::runs_again`): any retry may.
        true
    }

    fn __push_layers(&self, into: &mut Vec<Layer>) {
        into.push(Layer::retry(self.retry.clone()));
        self.inner.__push_layers(into);
    }

    fn __poll<A: Attempts>(
        &mut self,
        pass: &mut Pass<'_>,
        body: &mut A,
        cx: &mut Context<'_>,
    ) -> Poll<Attempted> {
        if self.attempt == 0 {
            self.attempt = 1;
        }
        loop {
            if let Some(sleep) = &mut self.backoff {
                ready!(sleep.as_mut().poll(cx));
                self.backoff = None;
            }
            // Before another attempt (after a backoff, at once, or after
            // yielding): a timeout around the retry may have run out.
            if self.due {
                if step_over(pass.site.ctx, pass.begun) {
                    return Poll::Pending;
                }
                if pass.past_deadline() {
                    pass.overdue = true;
                    return Poll::Pending;
                }
                self.due = false;
            }
            let outcome = ready!(self.inner.__poll(pass, body, cx));
            if let Err(failure) = &outcome
                && let Some(wait) =
                    self.retry
                        .again(self.attempt, failure, body.can_replay(), &pass.site)
            {
                self.attempt += 1;
                self.due = true;
                // The next attempt's deadlines start from its own start.
                pass.now = None;
                if !wait.is_zero() {
                    self.backoff = Some(Box::pin(tokio::time::sleep(wait)));
                    continue;
                }
                pass.again += 1;
                // Yield, so the task's other work runs.
                if pass.again >= AGAIN_PER_POLL {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            self.attempt = 0;
            return Poll::Ready(outcome);
        }
    }

    fn __reset(&mut self) {
        self.attempt = 0;
        self.due = false;
        self.backoff = None;
        self.inner.__reset();
    }

    no_breaker!();
}

impl<I: Builtins> Builtins for TimeLimited<I> {
    type Then<L: Builtin> = TimeLimited<I::Then<L>>;
    layered!();

    #[inline]
    fn __then<L: Builtin>(self, layer: L) -> Self::Then<L> {
        TimeLimited {
            timeout: self.timeout,
            deadline: self.deadline,
            sleep: self.sleep,
            inner: self.inner.__then(layer),
        }
    }

    fn __runs_again(&self) -> bool {
        self.inner.__runs_again()
    }

    fn __push_layers(&self, into: &mut Vec<Layer>) {
        into.push(Layer::timeout(self.timeout));
        self.inner.__push_layers(into);
    }

    fn __poll<A: Attempts>(
        &mut self,
        pass: &mut Pass<'_>,
        body: &mut A,
        cx: &mut Context<'_>,
    ) -> Poll<Attempted> {
        let deadline = match self.deadline {
            Some(deadline) => deadline,
            None => *self.deadline.insert(pass.now() + self.timeout.limit()),
        };
        let around = pass.deadline;
        pass.deadline = Some(around.map_or(deadline, |earlier| earlier.min(deadline)));
        let polled = self.inner.__poll(pass, body, cx);
        pass.deadline = around;
        if polled.is_pending() {
            // A retry inside found the time up before its next attempt: the
            // innermost timeout out of time fires now, as the timer would
            // only once its driver turns.
            let overdue = pass.overdue && pass.now() >= deadline;
            if !overdue {
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            // Out of time: drop what it wraps (the attempt first, then the
            // layers it ran in), which ended unfinished.
            pass.overdue = false;
            if body.in_flight() {
                body.abandon();
            }
            self.inner.__reset();
        }
        self.deadline = None;
        // Armed only when what it wraps waited: most runs never drop one.
        if self.sleep.is_some() {
            self.sleep = None;
        }
        match polled {
            Poll::Ready(outcome) => Poll::Ready(outcome),
            Poll::Pending => Poll::Ready(Err(StepFailure::TimedOut(self.timeout.limit()))),
        }
    }

    fn __reset(&mut self) {
        self.deadline = None;
        self.sleep = None;
        self.inner.__reset();
    }

    no_breaker!();
}

impl<I: Builtins> Builtins for Guarded<I> {
    type Then<L: Builtin> = Guarded<I::Then<L>>;
    layered!();

    #[inline]
    fn __then<L: Builtin>(self, layer: L) -> Self::Then<L> {
        Guarded {
            admission: self.admission,
            inner: self.inner.__then(layer),
        }
    }

    fn __runs_again(&self) -> bool {
        self.inner.__runs_again()
    }

    fn __push_layers(&self, into: &mut Vec<Layer>) {
        into.push(Layer::breaker(self.admission.breaker.clone()));
        self.inner.__push_layers(into);
    }

    fn __poll<A: Attempts>(
        &mut self,
        pass: &mut Pass<'_>,
        body: &mut A,
        cx: &mut Context<'_>,
    ) -> Poll<Attempted> {
        let admission = &mut self.admission;
        if admission.trial.is_none() {
            match admission.breaker.admit() {
                Ok(trial) => admission.trial = Some(trial),
                Err(open) => return Poll::Ready(Err(StepFailure::Error(StepError::new(open)))),
            }
        }
        let outcome = ready!(self.inner.__poll(pass, body, cx));
        if let Some(trial) = self.admission.trial.take() {
            self.admission.breaker.finish(trial, outcome.is_ok());
        }
        Poll::Ready(outcome)
    }

    fn __reset(&mut self) {
        self.admission.abandon();
        self.inner.__reset();
    }

    #[inline]
    fn __admit(&mut self) -> bool {
        let admission = &mut self.admission;
        if admission.trial.is_none() {
            match admission.breaker.admit() {
                Ok(trial) => admission.trial = Some(trial),
                Err(_) => return false,
            }
        }
        self.inner.__admit()
    }

    #[inline]
    fn __passed(&mut self) {
        self.inner.__passed();
        if let Some(trial) = self.admission.trial.take() {
            self.admission.breaker.finish(trial, true);
        }
    }
}
