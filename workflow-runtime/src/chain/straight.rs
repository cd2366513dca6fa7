//! A chain cut at every step: each step's future is made from the one
//! before's [`Flow`] once that one has ended, and the steps run in turn.
//!
//! `#[workflow]` runs its steps this way, as one `async` body that
//! awaits each step in turn (`let flow = ….__step().await;`). A nested
//! chain holds every step's future inside the next's, so its size is the
//! sum of its steps'; here the next step takes the finished one's place
//! in the body's state, so a run's future is as large as its largest
//! step and what the body captured: the workflow, its context and the
//! run's input, whose room an `async` block keeps, as an `async fn` keeps
//! its arguments'. A step with no behaviors, in a context with none and
//! no journal, runs plain (`plain.rs`): a sync body is called as the
//! step is made, an async one polled in a small future of its own. Any
//! other runs in a [`StepFuture`](super::StepFuture), so behaviors and
//! journaling are the chain's own, and both end a step alike: the same
//! records, outcomes and errors. A step's behaviors (and a named
//! breaker's registration) are made once the step before it has ended,
//! the first's at the run's first poll.
//!
//! A step's compensation undoes it from inside the nested chain, which
//! keeps what each earlier step made; a workflow with one keeps that
//! shape.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::plain::StraightStage;
use super::stage::{Carry, Finally, Flow, OwnRun, Stage, Start, Step, Unwind};
use super::step_fn::StepFn;
use super::{Workflow, sealed};
use crate::behavior::Builtins;
use crate::context::WorkflowContext;
use crate::error::WorkflowError;

/// A chain's start from the [`Flow`] an earlier step handed on: its
/// value, first soft failure and end time, or the error that stopped the
/// run, which the next step hears as the nested chain's would.
#[derive(Debug)]
pub struct After<T>(Flow<T>);

impl<T> sealed::Sealed for After<T> {}

impl<'c, T> Stage<'c> for After<T> {
    type Output = T;
    type Future = Handed<T>;
    #[inline]
    fn start(self, _: &'c WorkflowContext) -> Self::Future {
        Handed(Some(self.0.map_err(Box::new)))
    }
}

/// The [`Flow`] a step was handed, ready at its first poll. The error
/// that stopped the run is boxed while it waits: only a failed run's
/// later steps hold one, and each step's future would otherwise carry
/// its room.
#[derive(Debug)]
pub struct Handed<T>(Option<Result<Carry<T>, Box<WorkflowError>>>);

impl<T> Unpin for Handed<T> {}

impl<T> Future for Handed<T> {
    type Output = Flow<T>;
    #[inline]
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Flow<T>> {
        let flow = self.0.take().expect("a handed flow is taken once");
        Poll::Ready(flow.map_err(|error| *error))
    }
}

impl<T> sealed::Sealed for Handed<T> {}

impl<T> Unwind for Handed<T> {}

impl<'c, T> Workflow<'c, After<T>> {
    /// A chain going on from `flow`, for the step after it.
    #[doc(hidden)]
    #[inline]
    pub fn __after(ctx: &'c WorkflowContext, flow: Flow<T>) -> Self {
        Workflow {
            ctx,
            stage: After(flow),
        }
    }
}

impl<T> After<T> {
    /// The flow handed on.
    #[inline]
    pub(super) fn flow(&self) -> &Flow<T> {
        &self.0
    }

    /// The same, by value.
    #[inline]
    pub(super) fn into_inner(self) -> Flow<T> {
        self.0
    }
}

impl<'c, T, F, B> Workflow<'c, Step<After<T>, F, B>>
where
    F: StepFn<T>,
    B: Builtins,
{
    /// The chain's last step's future, whose [`Flow`] the next step
    /// starts from ([`__after`](Workflow::__after)): a plain step's or
    /// the chain's ([`StraightStage`]). Opaque, and `Send` by its bound:
    /// the `async` body that awaits it is then `Send` by that bound too,
    /// where the compiler, asked to prove it of the step's own type
    /// inside the body, loses the lifetimes its closures were given
    /// ("implementation of `Send` is not general enough"): a durable
    /// step's `&StepCtx`, but also any step whose values are a
    /// `&'static str` or a `Box<dyn Error>` (the `Statics` workflow of
    /// `tests/workflow_macro.rs`).
    ///
    /// `Send` is asked of the step's parts (its input, body, the body's
    /// future and its value, and the room its own behaviors run in), of
    /// which the future made of them is `Send` by its type: that is
    /// proved once, here, not at every step of every workflow, where
    /// walking the whole future's type cost a re-check of 200 steps 35 M
    /// compiler instructions (of 656 M). The impls are by stage, the
    /// first step's ([`Start`]) and a later one's ([`After`]), for the
    /// same reason: a stage named in full asks nothing of the chain's
    /// traits, which a generic one did at every step (45 M more).
    #[doc(hidden)]
    #[inline]
    pub fn __step(self) -> impl Future<Output = Flow<F::Output>> + Send
    where
        T: Send,
        F: Send,
        F::Future: Send,
        F::Output: Send,
        B::Slot<OwnRun<F, T>>: Send,
    {
        self.stage.straight(self.ctx)
    }
}

impl<'c, F, B> Workflow<'c, Step<Start, F, B>>
where
    F: StepFn<()>,
    B: Builtins,
{
    /// The first step's future, as [`__step`](Workflow::__step) makes a
    /// later one's.
    #[doc(hidden)]
    #[inline]
    pub fn __step(self) -> impl Future<Output = Flow<F::Output>> + Send
    where
        F: Send,
        F::Future: Send,
        F::Output: Send,
        B::Slot<OwnRun<F, ()>>: Send,
    {
        self.stage.straight(self.ctx)
    }
}

impl<'c, P, F> Workflow<'c, Finally<P, F>>
where
    Finally<P, F>: StraightStage<'c>,
{
    /// A `finally`'s future, as [`__step`](Workflow::__step) makes a
    /// step's.
    #[doc(hidden)]
    #[inline]
    pub fn __step(self) -> impl Future<Output = Flow<<Finally<P, F> as Stage<'c>>::Output>> + Send
    where
        <Finally<P, F> as StraightStage<'c>>::Straight: Send,
    {
        self.stage.straight(self.ctx)
    }
}

pin_project! {
    /// A run's steps as one future: the `async` body `#[workflow]`
    /// writes, which awaits each step's future in turn, made from the
    /// [`Flow`] the one before handed on. The compiler lays that body out
    /// as one state machine, each step's future in the room the one
    /// before left.
    pub struct Straight<F> {
        #[pin]
        steps: F,
    }
}

impl<F> Straight<F> {
    /// The run whose steps `steps` awaits in turn.
    #[inline]
    pub(crate) fn new(steps: F) -> Self {
        Straight { steps }
    }
}

impl<F: Future> Future for Straight<F> {
    type Output = F::Output;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().steps.poll(cx)
    }
}

impl<F> sealed::Sealed for Straight<F> {}

/// A straight-line run has no compensation (a workflow with one is a
/// nested chain): its steps are seen as a chain with nothing to undo.
impl<F> Unwind for Straight<F> {}
