//! The body of a step `#[workflow]` declared with no behaviors of its
//! own: in one wrapper, what [`value_behaviors`](crate::Workflow::value_behaviors),
//! a replay kept for a type-wide retry when the input is `Clone`, and
//! [`overridable`](crate::Workflow::overridable) give it one after the
//! other. It behaves as `Overridable<Replay<Valued<F>>>` (or, for an input
//! that is not `Clone`, `Overridable<Valued<F>>`) does. Being one type
//! rather than three nested, each step asks the compiler for fewer trait
//! proofs, whose results incremental compilation records and checks at
//! every `cargo check`: 200 such steps re-check in 7 % fewer instructions.

use std::marker::PhantomData;

use super::overridable::{Overridden, called_at, called_now, replayed_at, stand_in};
use super::sealed::Sealed;
use super::step_fn::{CallAgain, ReplayInput, StepAt, StepFn, StepResult};
use crate::behavior::{Port, Resumed};

/// A declared step's body `F`; `K` says whether a type-wide retry may run
/// it again ([`ForRetries`]) or it runs once ([`NoReplay`]).
#[doc(hidden)]
pub struct Declared<F, K>(F, PhantomData<K>);

/// A [`Declared`] step whose input is `Clone`: a behavior that runs steps
/// again may run it again, on a copy of its input made only then.
#[doc(hidden)]
pub struct ForRetries;

/// A [`Declared`] step whose input is not `Clone`: it runs once.
#[doc(hidden)]
pub struct NoReplay;

impl<F, K> Declared<F, K> {
    #[inline]
    pub(crate) fn new(body: F) -> Self {
        Declared(body, PhantomData)
    }
}

impl<F, K> Sealed for Declared<F, K> {}

/// What both kinds share: everything but the replay.
macro_rules! declared_step_fn {
    () => {
        type Output = O;
        type Future = Overridden<F::Future, O>;
        fn at_call() -> bool {
            F::at_call()
        }
        fn call(self, input: In) -> Self::Future {
            Overridden::own(self.0.call(input))
        }
        fn call_at(self, input: In, at: StepAt<'_>) -> Self::Future {
            called_at(self.0, input, at)
        }
        fn call_now(self, input: In, at: StepAt<'_>) -> Result<StepResult<O>, Self::Future> {
            called_now(self.0, input, at)
        }
        fn passes_value_on(&self) -> bool {
            self.0.passes_value_on()
        }
        fn value_port(&self) -> Option<Port<O>> {
            Some(Port::new())
        }
        fn recorded(&self) -> Option<StepResult<O>> {
            self.0.recorded()
        }
        fn resumed(&self) -> Option<Resumed> {
            self.0.resumed()
        }
    };
}

impl<F, In, O> StepFn<In> for Declared<F, ForRetries>
where
    F: CallAgain<In, Output = O>,
    In: ReplayInput + 'static,
    O: Send + 'static,
{
    declared_step_fn!();

    fn replay(&self, input: &In) -> Option<Self::Future> {
        Some(Overridden::own(self.0.call_again(input.clone())))
    }
    fn replay_at(&self, input: &In, at: StepAt<'_>) -> Option<Self::Future> {
        Some(match stand_in(at, input) {
            Some(result) => Overridden::canned(result),
            None => Overridden::own(self.0.call_again(input.clone())),
        })
    }
    fn can_replay(&self) -> bool {
        true
    }
    fn replays_always(&self) -> bool {
        false
    }
}

impl<F, In, O> StepFn<In> for Declared<F, NoReplay>
where
    F: StepFn<In, Output = O>,
    In: 'static,
    O: Send + 'static,
{
    declared_step_fn!();

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
}
