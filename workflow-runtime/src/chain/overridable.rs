//! A step a context's override may stand in for (see
//! [`ContextBuilder::override_step`](crate::ContextBuilder::override_step)):
//! at each attempt, the stand-in's result when the context has one for
//! the step's title, the step's own work otherwise.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::sealed::Sealed;
use super::step_fn::{Failed, StepAt, StepFn, StepResult};

/// A step body a test may stand in for: the step's own, and nothing more
/// to carry, as the chain says where it runs at each attempt.
pub struct Overridable<F>(pub(crate) F);

impl<F> Sealed for Overridable<F> {}

pin_project! {
    /// The step's own future, or the stand-in's result.
    pub struct Overridden<Fut, O> {
        #[pin]
        state: State<Fut, O>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut, O> {
        Own { #[pin] fut: Fut },
        Canned { result: Option<StepResult<O>> },
    }
}

impl<Fut, O> Overridden<Fut, O> {
    pub(super) fn own(fut: Fut) -> Self {
        Overridden {
            state: State::Own { fut },
        }
    }

    pub(super) fn canned(result: StepResult<O>) -> Self {
        Overridden {
            state: State::Canned {
                result: Some(result),
            },
        }
    }
}

impl<Fut, O> Future for Overridden<Fut, O>
where
    Fut: Future<Output = StepResult<O>>,
{
    type Output = StepResult<O>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Own { fut } => fut.poll(cx),
            StateProj::Canned { result } => {
                Poll::Ready(result.take().expect("a canned result is taken once"))
            }
        }
    }
}

/// The stand-in's result for `input`, if the context has one for the
/// step's title. A context without stand-ins, every run's but a test's,
/// pays one inline check: the lookup is out of line, so its registers
/// are not saved and restored around every step's call.
#[inline(always)]
pub(super) fn stand_in<In: 'static, O: 'static>(
    at: StepAt<'_>,
    input: &In,
) -> Option<StepResult<O>> {
    if !at.ctx.has_overrides() {
        return None;
    }
    looked_up(at, input)
}

#[inline(never)]
fn looked_up<In: 'static, O: 'static>(at: StepAt<'_>, input: &In) -> Option<StepResult<O>> {
    Some(match at.ctx.step_override::<In, O>(at.title)? {
        Ok(stand_in) => stand_in(input).map_err(Failed::error),
        Err(mismatch) => Err(Failed::error(mismatch)),
    })
}

/// `body` started as a step a stand-in may take the place of: the
/// stand-in's result, or the body's future. What [`Overridable`] and
/// [`Declared`](super::Declared) do alike at each call.
#[inline]
pub(super) fn called_at<F, In, O>(body: F, input: In, at: StepAt<'_>) -> Overridden<F::Future, O>
where
    F: StepFn<In, Output = O>,
    In: 'static,
    O: 'static,
{
    match stand_in(at, &input) {
        Some(result) => Overridden::canned(result),
        None => Overridden::own(body.call_at(input, at)),
    }
}

/// [`called_at`], for a body that may be done as it is called.
#[inline]
pub(super) fn called_now<F, In, O>(
    body: F,
    input: In,
    at: StepAt<'_>,
) -> Result<StepResult<O>, Overridden<F::Future, O>>
where
    F: StepFn<In, Output = O>,
    In: 'static,
    O: 'static,
{
    match stand_in(at, &input) {
        Some(result) => Ok(result),
        None => body.call_now(input, at).map_err(Overridden::own),
    }
}

/// [`called_at`], for another attempt of a body that can replay.
#[inline]
pub(super) fn replayed_at<F, In, O>(
    body: &F,
    input: &In,
    at: StepAt<'_>,
) -> Option<Overridden<F::Future, O>>
where
    F: StepFn<In, Output = O>,
    In: 'static,
    O: 'static,
{
    if !body.can_replay() {
        return None;
    }
    match stand_in(at, input) {
        Some(result) => Some(Overridden::canned(result)),
        None => body.replay_at(input, at).map(Overridden::own),
    }
}

impl<F, In, O> StepFn<In> for Overridable<F>
where
    F: StepFn<In, Output = O>,
    In: 'static,
    O: 'static,
{
    type Output = O;
    type Future = Overridden<F::Future, O>;
    fn call(self, input: In) -> Self::Future {
        Overridden::own(self.0.call(input))
    }
    fn call_at(self, input: In, at: StepAt<'_>) -> Self::Future {
        called_at(self.0, input, at)
    }
    fn at_call() -> bool {
        F::at_call()
    }
    fn call_now(self, input: In, at: StepAt<'_>) -> Result<StepResult<O>, Self::Future> {
        called_now(self.0, input, at)
    }
    fn replay(&self, input: &In) -> Option<Self::Future> {
        self.0.replay(input).map(Overridden::own)
    }
    fn replay_at(&self, input: &In, at: StepAt<'_>) -> Option<Self::Future> {
        replayed_at(&self.0, input, at)
    }
    fn can_replay(&self) -> bool {
        self.0.can_replay()
    }
    fn replays_always(&self) -> bool {
        self.0.replays_always()
    }
    fn passes_value_on(&self) -> bool {
        self.0.passes_value_on()
    }
    fn value_port(&self) -> Option<crate::behavior::Port<O>> {
        self.0.value_port()
    }
    fn recorded(&self) -> Option<StepResult<O>> {
        self.0.recorded()
    }
    fn resumed(&self) -> Option<crate::behavior::Resumed> {
        self.0.resumed()
    }
}
