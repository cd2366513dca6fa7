//! Adapters that give sync, async, plain and fallible step functions one
//! shape: take the input, return a future of the step's result.
//!
//! The verbs pick the adapter, so closures get their signature from the
//! verb's bound and need no type annotations.

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::sealed::Sealed;
use crate::error::{StepError, StepFailure, panic_message};

/// A failed step, with the value when the step passes its value on (a
/// `then` whose predicate was false), so a soft failure can continue.
#[derive(Debug)]
pub struct Failed<O> {
    pub(crate) failure: StepFailure,
    pub(crate) value: Option<O>,
}

impl<O> Failed<O> {
    /// The step failed with `error`; the chain stops (unless its options
    /// say to go on) and the error becomes the run's.
    ///
    /// ```
    /// use workflow_runtime::chain::Failed;
    /// let failed: Failed<u8> = Failed::error(std::fmt::Error);
    /// assert_eq!(failed.failure().to_string(), "an error occurred when formatting an argument");
    /// ```
    pub fn error<E: Into<StepError>>(error: E) -> Self {
        Failed {
            failure: StepFailure::Error(error.into()),
            value: None,
        }
    }

    /// Why the step failed.
    ///
    /// ```
    /// use workflow_runtime::chain::Failed;
    /// use workflow_runtime::StepFailure;
    /// let failed: Failed<u8> = Failed::error(std::fmt::Error);
    /// assert!(matches!(failed.failure(), StepFailure::Error(_)));
    /// ```
    pub fn failure(&self) -> &StepFailure {
        &self.failure
    }
}

/// What a step function's future yields.
pub type StepResult<O> = Result<O, Failed<O>>;

/// One step's body, whatever its flavor. Implemented by the adapters the
/// chain's verbs build; `#[step]` functions implement it too.
pub trait StepFn<In> {
    /// The value the step passes on.
    type Output;
    /// The step's work.
    type Future: Future<Output = StepResult<Self::Output>>;
    /// Starts the step. A sync step does its work here.
    fn call(self, input: In) -> Self::Future;

    /// Starts the step again on a copy of its input, for behaviors that run
    /// a step more than once (retry). `None`, the default, means the step
    /// runs once: only [`Replay`] steps replay.
    fn replay(&self, input: &In) -> Option<Self::Future> {
        let _ = input;
        None
    }

    /// Whether [`replay`](Self::replay) gives a future.
    fn can_replay(&self) -> bool {
        false
    }

    /// Whether the step keeps a copy of its input for another attempt even
    /// when no behavior around it says it runs steps again
    /// ([`Behavior::runs_again`](crate::behavior::Behavior::runs_again)):
    /// true for a step made replayable on purpose, false for one
    /// `#[workflow]` made replayable because its input is `Clone`, which
    /// then costs no clone on a run that nothing retries.
    #[doc(hidden)]
    fn replays_always(&self) -> bool {
        true
    }

    /// How the step hands its value to value behaviors
    /// ([`ValueBehavior`](crate::behavior::ValueBehavior)), if it does:
    /// only a body made where its value is known to be `Send + 'static`
    /// ([`Workflow::value_behaviors`](crate::Workflow::value_behaviors)).
    #[doc(hidden)]
    fn value_port(&self) -> Option<crate::behavior::Port<Self::Output>> {
        None
    }

    /// Whether the step hands on the value it was given rather than one
    /// of its own (an assertion): value behaviors registered for the
    /// value's type leave it alone.
    #[doc(hidden)]
    fn passes_value_on(&self) -> bool {
        false
    }

    /// The step's result as a durable run's journal recorded it, when the
    /// run is resumed past this step: the chain hands it on without
    /// running the body or its behaviors. `None`, the default, runs the
    /// step.
    fn recorded(&self) -> Option<StepResult<Self::Output>> {
        None
    }

    /// What a durable run's journal holds of the step's failed attempts,
    /// when the run is resumed in the middle of retrying it. `None`, the
    /// default, starts afresh.
    fn resumed(&self) -> Option<crate::behavior::Resumed> {
        None
    }

    /// [`call`](Self::call), for a body that looks at where it runs (a
    /// test's override, by the step's title): what the chain calls.
    #[doc(hidden)]
    fn call_at(self, input: In, at: StepAt<'_>) -> Self::Future
    where
        Self: Sized,
    {
        let _ = at;
        self.call(input)
    }

    /// [`replay`](Self::replay), likewise.
    #[doc(hidden)]
    fn replay_at(&self, input: &In, at: StepAt<'_>) -> Option<Self::Future> {
        let _ = at;
        self.replay(input)
    }

    /// Whether the body does its work as it is called (a sync step), so
    /// the chain calls it through [`call_now`](Self::call_now) as the
    /// step starts and keeps no future for it. A function rather than a
    /// constant, so `StepFn` stays usable as a trait object.
    #[doc(hidden)]
    #[inline(always)]
    fn at_call() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// [`call_at`](Self::call_at), with its result itself when the body's
    /// work is done once it is called, and otherwise the future
    /// `call_at` would have made (not yet polled). It must do what
    /// `call_at` does: a step with no behaviors is started through it
    /// when [`at_call`](Self::at_call) says so, one with behaviors
    /// through `call_at`.
    #[doc(hidden)]
    fn call_now(self, input: In, at: StepAt<'_>) -> Result<StepResult<Self::Output>, Self::Future>
    where
        Self: Sized,
    {
        Err(self.call_at(input, at))
    }
}

/// Where a step's body runs: its context and title. The chain hands it
/// over at each attempt rather than each body keeping its own.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct StepAt<'a> {
    pub(crate) ctx: &'a crate::context::WorkflowContext,
    pub(crate) title: &'a str,
}

/// A step body that can be called again: the closure is `Fn`, not just
/// `FnOnce`.
pub trait CallAgain<In>: StepFn<In> + Sealed {
    /// Starts the step on `input` without consuming the body.
    fn call_again(&self, input: In) -> Self::Future;
}

/// A replayable step: its input is cloned for every attempt.
#[derive(Clone, Copy, Debug)]
pub struct Replay<S>(pub(crate) S, pub(crate) Keep);

/// When a [`Replay`] step keeps a copy of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// For any behavior around it (`.replayable()`, `.retry(..)`).
    Always,
    /// Only when a behavior around it runs steps again: what `#[workflow]`
    /// gives a step whose input is `Clone`.
    ForRetries,
}

impl<S: CallAgain<In>, In: ReplayInput> CallAgain<In> for Replay<S> {
    fn call_again(&self, input: In) -> Self::Future {
        self.0.call_again(input)
    }
}

/// Marks inputs a replayable step can copy for another attempt.
#[diagnostic::on_unimplemented(
    message = "a step with `retry` may run more than once, so its input `{Self}` must be `Clone`",
    label = "this step's input is `{Self}`, which is not `Clone`",
    note = "derive or implement `Clone` for `{Self}`, or pass an `Arc` of it"
)]
pub trait ReplayInput: Clone {}

#[diagnostic::do_not_recommend]
impl<T: Clone> ReplayInput for T {}

impl<S: CallAgain<In>, In: ReplayInput> StepFn<In> for Replay<S> {
    type Output = S::Output;
    type Future = S::Future;
    fn at_call() -> bool {
        S::at_call()
    }
    fn call(self, input: In) -> Self::Future {
        self.0.call(input)
    }
    fn call_at(self, input: In, at: StepAt<'_>) -> Self::Future {
        self.0.call_at(input, at)
    }
    fn call_now(self, input: In, at: StepAt<'_>) -> Result<StepResult<S::Output>, S::Future> {
        self.0.call_now(input, at)
    }
    fn replay(&self, input: &In) -> Option<Self::Future> {
        Some(self.0.call_again(input.clone()))
    }
    fn can_replay(&self) -> bool {
        true
    }
    fn replays_always(&self) -> bool {
        self.1 == Keep::Always
    }
    fn passes_value_on(&self) -> bool {
        self.0.passes_value_on()
    }
    fn value_port(&self) -> Option<crate::behavior::Port<Self::Output>> {
        self.0.value_port()
    }
    fn recorded(&self) -> Option<StepResult<Self::Output>> {
        self.0.recorded()
    }
    fn resumed(&self) -> Option<crate::behavior::Resumed> {
        self.0.resumed()
    }
}

/// `Call` through a shared reference: the closure is `Fn`.
pub trait CallRef<In>: Call<In> {
    /// Calls it without consuming it.
    fn call_ref(&self, input: In) -> Self::Out;
}

impl<F: Fn(In) -> O, In, O> CallRef<In> for Unary<F> {
    fn call_ref(&self, input: In) -> O {
        (self.0)(input)
    }
}

impl<F: Fn() -> O, O> CallRef<()> for Nullary<F> {
    fn call_ref(&self, (): ()) -> O {
        (self.0)()
    }
}

/// Calls a closure with the step's input: `FnOnce(In)` for most verbs,
/// `FnOnce()` for `given`.
pub trait Call<In>: Sealed {
    /// What the closure returns.
    type Out;
    /// Calls it.
    fn call(self, input: In) -> Self::Out;
}

/// A closure taking the previous step's value.
#[derive(Clone, Copy, Debug)]
pub struct Unary<F>(pub(crate) F);

impl<F: FnOnce(In) -> O, In, O> Call<In> for Unary<F> {
    type Out = O;
    fn call(self, input: In) -> O {
        (self.0)(input)
    }
}

/// A closure taking nothing: the body of a `given`.
#[derive(Clone, Copy, Debug)]
pub struct Nullary<F>(pub(crate) F);

impl<F: FnOnce() -> O, O> Call<()> for Nullary<F> {
    type Out = O;
    fn call(self, (): ()) -> O {
        (self.0)()
    }
}

/// A closure and the value it takes, held for the first step of a
/// `#[workflow]`: called once, it moves the value in; called again (a
/// retry), it takes a copy, so the value is copied only when a retry runs
/// the step.
#[derive(Clone, Copy, Debug)]
pub struct Holding<T, F> {
    pub(crate) input: T,
    pub(crate) f: F,
}

impl<T, F: FnOnce(T) -> O, O> Call<()> for Holding<T, F> {
    type Out = O;
    fn call(self, (): ()) -> O {
        (self.f)(self.input)
    }
}

impl<T: Clone, F: Fn(T) -> O, O> CallRef<()> for Holding<T, F> {
    fn call_ref(&self, (): ()) -> O {
        (self.f)(self.input.clone())
    }
}

/// A sync step that cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct Plain<C>(pub(crate) C);

impl<C: Call<In>, In> StepFn<In> for Plain<C> {
    type Output = C::Out;
    type Future = Ready<StepResult<C::Out>>;
    fn at_call() -> bool {
        true
    }
    fn call(self, input: In) -> Self::Future {
        ready(Ok(self.0.call(input)))
    }
    fn call_now(self, input: In, _: StepAt<'_>) -> Result<StepResult<C::Out>, Self::Future> {
        Ok(Ok(self.0.call(input)))
    }
}

/// A sync step returning `Result`.
#[derive(Clone, Copy, Debug)]
pub struct Fallible<C>(pub(crate) C);

impl<C, In, O, E> StepFn<In> for Fallible<C>
where
    C: Call<In, Out = Result<O, E>>,
    E: Into<StepError>,
{
    type Output = O;
    type Future = Ready<StepResult<O>>;
    fn at_call() -> bool {
        true
    }
    fn call(self, input: In) -> Self::Future {
        ready(self.0.call(input).map_err(Failed::error))
    }
    fn call_now(self, input: In, _: StepAt<'_>) -> Result<StepResult<O>, Self::Future> {
        Ok(self.0.call(input).map_err(Failed::error))
    }
}

/// An async step that cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct Async<C>(pub(crate) C);

impl<C, In> StepFn<In> for Async<C>
where
    C: Call<In>,
    C::Out: Future,
{
    type Output = <C::Out as Future>::Output;
    type Future = OkFuture<C::Out>;
    fn call(self, input: In) -> Self::Future {
        OkFuture {
            inner: self.0.call(input),
        }
    }
}

/// An async step returning `Result`.
#[derive(Clone, Copy, Debug)]
pub struct TryAsync<C>(pub(crate) C);

impl<C, In, O, E> StepFn<In> for TryAsync<C>
where
    C: Call<In>,
    C::Out: Future<Output = Result<O, E>>,
    E: Into<StepError>,
{
    type Output = O;
    type Future = ErrFuture<C::Out, O>;
    fn call(self, input: In) -> Self::Future {
        ErrFuture {
            inner: self.0.call(input),
            _out: PhantomData,
        }
    }
}

impl<C: CallRef<In>, In> CallAgain<In> for Plain<C> {
    fn call_again(&self, input: In) -> Self::Future {
        ready(Ok(self.0.call_ref(input)))
    }
}

impl<C, In, O, E> CallAgain<In> for Fallible<C>
where
    C: CallRef<In, Out = Result<O, E>>,
    E: Into<StepError>,
{
    fn call_again(&self, input: In) -> Self::Future {
        ready(self.0.call_ref(input).map_err(Failed::error))
    }
}

impl<C, In> CallAgain<In> for Async<C>
where
    C: CallRef<In>,
    C::Out: Future,
{
    fn call_again(&self, input: In) -> Self::Future {
        OkFuture {
            inner: self.0.call_ref(input),
        }
    }
}

impl<C, In, O, E> CallAgain<In> for TryAsync<C>
where
    C: CallRef<In>,
    C::Out: Future<Output = Result<O, E>>,
    E: Into<StepError>,
{
    fn call_again(&self, input: In) -> Self::Future {
        ErrFuture {
            inner: self.0.call_ref(input),
            _out: PhantomData,
        }
    }
}

/// A `then` predicate: the value passes on, and stays available when the
/// predicate is false or panics, so soft assertions can continue.
#[derive(Clone, Copy, Debug)]
pub struct Assert<F>(pub(crate) F);

impl<F: FnOnce(&T) -> bool, T> StepFn<T> for Assert<F> {
    type Output = T;
    type Future = Ready<StepResult<T>>;
    fn at_call() -> bool {
        true
    }
    fn passes_value_on(&self) -> bool {
        true
    }
    fn call(self, value: T) -> Self::Future {
        ready(self.checked(value))
    }
    fn call_now(self, value: T, _: StepAt<'_>) -> Result<StepResult<T>, Self::Future> {
        Ok(self.checked(value))
    }
}

impl<F> Assert<F> {
    fn checked<T>(self, value: T) -> StepResult<T>
    where
        F: FnOnce(&T) -> bool,
    {
        let failure = match catch_unwind(AssertUnwindSafe(|| (self.0)(&value))) {
            Ok(true) => return Ok(value),
            Ok(false) => StepFailure::Assertion,
            Err(payload) => StepFailure::Panic(panic_message(&*payload).into()),
        };
        Err(Failed {
            failure,
            value: Some(value),
        })
    }
}

pin_project! {
    /// Wraps an infallible future's output in `Ok`.
    #[derive(Debug)]
    pub struct OkFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for OkFuture<F> {
    type Output = StepResult<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(Ok)
    }
}

pin_project! {
    /// Erases a fallible future's error type.
    #[derive(Debug)]
    pub struct ErrFuture<F, O> {
        #[pin]
        inner: F,
        _out: PhantomData<fn() -> O>,
    }
}

impl<F, O> ErrFuture<F, O> {
    pub(crate) fn new(inner: F) -> Self {
        ErrFuture {
            inner,
            _out: PhantomData,
        }
    }
}

impl<F, O, E> Future for ErrFuture<F, O>
where
    F: Future<Output = Result<O, E>>,
    E: Into<StepError>,
{
    type Output = StepResult<O>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = ready!(self.project().inner.poll(cx));
        Poll::Ready(out.map_err(Failed::error))
    }
}

/// A `handle` step: makes the request from the value, then runs the
/// registered handler for it (looked up when the chain is built).
pub struct Handle<F, Req, Resp> {
    pub(crate) make: F,
    pub(crate) handler:
        Result<crate::handlers::HandlerFnOf<Req, Resp>, crate::handlers::MissingHandler>,
}

impl<F, In, Req, Resp> StepFn<In> for Handle<F, Req, Resp>
where
    F: Fn(In) -> Req,
    Req: 'static,
    Resp: Send + 'static,
{
    type Output = Resp;
    type Future = crate::behavior::BoxFuture<'static, StepResult<Resp>>;

    fn call(self, input: In) -> Self::Future {
        self.call_again(input)
    }
}

impl<F, In, Req, Resp> CallAgain<In> for Handle<F, Req, Resp>
where
    F: Fn(In) -> Req,
    Req: 'static,
    Resp: Send + 'static,
{
    fn call_again(&self, input: In) -> Self::Future {
        match &self.handler {
            Ok(handler) => {
                let fut = handler((self.make)(input));
                Box::pin(async move { fut.await.map_err(Failed::error) })
            }
            Err(missing) => {
                let failed = Failed::error(StepError::new(missing.clone()));
                Box::pin(std::future::ready(Err(failed)))
            }
        }
    }
}

impl<F> Sealed for Unary<F> {}
impl<S> Sealed for Replay<S> {}
impl<C> Sealed for Plain<C> {}
impl<C> Sealed for Fallible<C> {}
impl<C> Sealed for Async<C> {}
impl<C> Sealed for TryAsync<C> {}
impl<F, Req, Resp> Sealed for Handle<F, Req, Resp> {}
impl<F> Sealed for Nullary<F> {}
impl<T, F> Sealed for Holding<T, F> {}

#[cfg(test)]
mod tests {
    use super::super::declared::{Declared, ForRetries, NoReplay};
    use super::super::overridable::Overridable;
    use super::super::valued::Valued;
    use super::*;

    type Sync = Unary<fn(u32) -> u32>;
    type Fails = Unary<fn(u32) -> Result<u32, std::fmt::Error>>;
    type Waits = Unary<fn(u32) -> Ready<u32>>;

    fn at_call<F: StepFn<u32>>() -> bool {
        F::at_call()
    }

    // What `#[workflow]` wraps a sync body in (`Declared` for a step with
    // no behaviors of its own; otherwise `value_behaviors`, then `Replay`
    // for a `Clone` input, then `Overridable`) keeps it called as its
    // step starts; an async body is called under its first poll.
    #[test]
    fn a_workflows_sync_bodies_are_done_at_their_call_and_async_ones_are_not() {
        assert!(at_call::<Declared<Plain<Sync>, ForRetries>>());
        assert!(at_call::<Declared<Plain<Sync>, NoReplay>>());
        assert!(at_call::<Declared<Fallible<Fails>, ForRetries>>());
        assert!(!at_call::<Declared<Async<Waits>, ForRetries>>());
        assert!(at_call::<Overridable<Replay<Valued<Plain<Sync>>>>>());
        assert!(at_call::<Overridable<Valued<Plain<Sync>>>>());
        assert!(at_call::<Overridable<Replay<Valued<Fallible<Fails>>>>>());
        // A `then` step's assertion is not wrapped.
        assert!(at_call::<Assert<fn(&u32) -> bool>>());
        assert!(!at_call::<Overridable<Replay<Valued<Async<Waits>>>>>());
    }

    // The hidden items stay out of a trait object's way: a step function
    // made elsewhere can still be handed around as one.
    #[test]
    fn a_step_function_can_be_a_trait_object() {
        let plain: Box<dyn StepFn<u32, Output = u32, Future = Ready<StepResult<u32>>>> =
            Box::new(Plain(Unary((|n| n + 1) as fn(u32) -> u32)));
        assert!(!plain.can_replay());
    }
}
