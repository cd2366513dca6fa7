//! A step a context's override may stand in for (see
//! [`ContextBuilder::override_step`](crate::ContextBuilder::override_step)):
//! at each attempt, the stand-in's result when the context has one for
//! the step's title, the step's own work otherwise.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::sealed::Sealed;
use super::step_fn::{CallAgain, Failed, StepFn, StepResult};
use crate::context::WorkflowContext;
use crate::step::Title;

/// A step body a test may stand in for.
pub struct Overridable<'c, F> {
    pub(crate) ctx: &'c WorkflowContext,
    pub(crate) title: Title,
    pub(crate) inner: F,
}

impl<F> Sealed for Overridable<'_, F> {}

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
    fn own(fut: Fut) -> Self {
        Overridden {
            state: State::Own { fut },
        }
    }

    fn canned(result: StepResult<O>) -> Self {
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

impl<F> Overridable<'_, F> {
    /// The stand-in's result for `input`, if the context has one.
    fn stand_in<In: 'static, O: 'static>(&self, input: &In) -> Option<StepResult<O>> {
        Some(match self.ctx.step_override::<In, O>(&self.title)? {
            Ok(stand_in) => stand_in(input).map_err(Failed::error),
            Err(mismatch) => Err(Failed::error(mismatch)),
        })
    }
}

impl<'c, F, In, O> StepFn<In> for Overridable<'c, F>
where
    F: StepFn<In, Output = O>,
    In: 'static,
    O: 'static,
{
    type Output = O;
    type Future = Overridden<F::Future, O>;
    fn call(self, input: In) -> Self::Future {
        match self.stand_in(&input) {
            Some(result) => Overridden::canned(result),
            None => Overridden::own(self.inner.call(input)),
        }
    }
    fn replay(&self, input: &In) -> Option<Self::Future> {
        if !self.inner.can_replay() {
            return None;
        }
        match self.stand_in(input) {
            Some(result) => Some(Overridden::canned(result)),
            None => self.inner.replay(input).map(Overridden::own),
        }
    }
    fn can_replay(&self) -> bool {
        self.inner.can_replay()
    }
    fn recorded(&self) -> Option<StepResult<O>> {
        self.inner.recorded()
    }
    fn resumed(&self) -> Option<crate::behavior::Resumed> {
        self.inner.resumed()
    }
}

impl<'c, F, In, O> CallAgain<In> for Overridable<'c, F>
where
    F: CallAgain<In, Output = O>,
    In: 'static,
    O: 'static,
{
    fn call_again(&self, input: In) -> Self::Future {
        match self.stand_in(&input) {
            Some(result) => Overridden::canned(result),
            None => Overridden::own(self.inner.call_again(input)),
        }
    }
}
