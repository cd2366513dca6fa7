//! A step body that hands its value to value behaviors
//! ([`ValueBehavior`](crate::behavior::ValueBehavior)): made where its
//! value is known to be `Send + 'static`, which is what handing it through
//! the stack takes.

use super::sealed::Sealed;
use super::step_fn::{CallAgain, StepAt, StepFn, StepResult};
use crate::behavior::{Port, Resumed};

/// The step's own body, with the way to hand its value on
/// ([`Workflow::value_behaviors`](crate::Workflow::value_behaviors)).
pub struct Valued<F>(pub(crate) F);

impl<F> Sealed for Valued<F> {}

impl<F, In> StepFn<In> for Valued<F>
where
    F: StepFn<In>,
    F::Output: Send + 'static,
{
    type Output = F::Output;
    type Future = F::Future;
    fn at_call() -> bool {
        F::at_call()
    }
    fn call(self, input: In) -> Self::Future {
        self.0.call(input)
    }
    fn call_now(self, input: In, at: StepAt<'_>) -> Result<StepResult<F::Output>, F::Future> {
        self.0.call_now(input, at)
    }
    fn call_at(self, input: In, at: StepAt<'_>) -> Self::Future {
        self.0.call_at(input, at)
    }
    fn replay(&self, input: &In) -> Option<Self::Future> {
        self.0.replay(input)
    }
    fn replay_at(&self, input: &In, at: StepAt<'_>) -> Option<Self::Future> {
        self.0.replay_at(input, at)
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
    fn recorded(&self) -> Option<StepResult<Self::Output>> {
        self.0.recorded()
    }
    fn resumed(&self) -> Option<Resumed> {
        self.0.resumed()
    }
    fn value_port(&self) -> Option<Port<Self::Output>> {
        Some(Port::new())
    }
}

impl<F, In> CallAgain<In> for Valued<F>
where
    F: CallAgain<In>,
    F::Output: Send + 'static,
{
    fn call_again(&self, input: In) -> Self::Future {
        self.0.call_again(input)
    }
}
