//! Compensation: a saga's undo. A step declared with a compensation keeps
//! a copy of its output; when a later step fails for good, the chain runs
//! the compensations of the steps that completed, latest first, each as a
//! step of its own (kind `Compensate`, with its own behaviors), given its
//! step's output.
//!
//! The stages' futures stay in place once done (see [`StepFuture`]), so
//! undoing walks back through them: each asks its own compensation to run,
//! then the stage before it. Nothing is boxed or type-erased, and a chain
//! without compensations never takes this path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::sealed::Sealed;
use super::stage::{Flow, Place, Stage, Start, StartFuture, Step, StepFuture, Unwind};
use super::step_fn::{ErrFuture, StepFn};
use crate::behavior::{Bare, Layers};
use crate::context::WorkflowContext;
use crate::error::{StepError, WorkflowError};
use crate::step::{StepKind, Title};

/// What undoes a step, given its output: made into the compensation's
/// step body once a later step has failed. Implemented by [`Undo`] (the
/// chain's `.compensate(..)`) and by durable workflows' journaled undo.
pub trait Compensation<'c, O>: Sealed {
    /// The compensation's body, run as a `Compensate` step.
    type Step: StepFn<(), Output = ()>;
    /// The body for `value`, the output of the step it undoes, which
    /// `keep` copies for each attempt; `cause` is the failure that started
    /// compensating.
    fn undo(
        self,
        ctx: &'c WorkflowContext,
        value: O,
        keep: fn(&O) -> O,
        cause: &WorkflowError,
    ) -> Self::Step;
}

/// A compensation from a closure: `|receipt| async move { refund(receipt).await }`.
pub struct Undo<C>(pub(crate) C);

impl<C> Undo<C> {
    /// The compensation `undo` makes; what `#[step(compensate = ..)]`
    /// generates.
    #[doc(hidden)]
    pub fn new(undo: C) -> Self {
        Undo(undo)
    }
}

impl<C> Sealed for Undo<C> {}

impl<'c, C, O, Fut, E> Compensation<'c, O> for Undo<C>
where
    C: Fn(O) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<StepError>,
{
    type Step = UndoStep<C, O>;
    fn undo(
        self,
        _: &'c WorkflowContext,
        value: O,
        keep: fn(&O) -> O,
        _: &WorkflowError,
    ) -> Self::Step {
        UndoStep {
            undo: self.0,
            value,
            keep,
        }
    }
}

/// The body of an [`Undo`]: its closure and the value it undoes, which it
/// copies for each attempt a retry asks for.
pub struct UndoStep<C, O> {
    undo: C,
    value: O,
    keep: fn(&O) -> O,
}

impl<C, O> Sealed for UndoStep<C, O> {}

impl<C, O, Fut, E> StepFn<()> for UndoStep<C, O>
where
    C: Fn(O) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<StepError>,
{
    type Output = ();
    type Future = ErrFuture<Fut, ()>;
    fn call(self, (): ()) -> Self::Future {
        ErrFuture::new((self.undo)(self.value))
    }
    fn replay(&self, (): &()) -> Option<Self::Future> {
        Some(ErrFuture::new((self.undo)((self.keep)(&self.value))))
    }
    fn can_replay(&self) -> bool {
        true
    }
}

/// A step with a compensation: the step, what undoes it, how its output
/// is copied for it, and the compensation's title and behaviors.
pub struct Compensated<S, U, O> {
    pub(crate) step: S,
    pub(crate) undo: U,
    pub(crate) keep: fn(&O) -> O,
    pub(crate) title: Title,
    pub(crate) layers: Layers,
}

impl<S, U, O> Sealed for Compensated<S, U, O> {}

impl<'c, S, U> Stage<'c> for Compensated<S, U, S::Output>
where
    S: Stage<'c>,
    U: Compensation<'c, S::Output>,
{
    type Output = S::Output;
    type Future = CompensatedFuture<'c, S::Future, U, S::Output>;
    fn start(self, ctx: &'c WorkflowContext) -> Self::Future {
        CompensatedFuture {
            ctx,
            step: self.step.start(ctx),
            undo: Some(self.undo),
            keep: self.keep,
            title: self.title,
            layers: self.layers,
            kept: None,
            running: None,
            failed: None,
            own_done: false,
        }
    }
}

/// A compensation's step future: the one-step chain that runs it.
type UndoFuture<'c, B> = StepFuture<'c, StartFuture, B, (), Bare>;

pin_project! {
    /// The future of a step with a compensation, and every step before it.
    pub struct CompensatedFuture<'c, F, U, O>
    where
        U: Compensation<'c, O>,
    {
        ctx: &'c WorkflowContext,
        #[pin]
        step: F,
        undo: Option<U>,
        keep: fn(&O) -> O,
        title: Title,
        layers: Layers,
        // The step's output, once it completed: what its compensation gets.
        kept: Option<O>,
        #[pin]
        running: Option<UndoFuture<'c, U::Step>>,
        failed: Option<WorkflowError>,
        own_done: bool,
    }
}

impl<'c, F, U, O> Future for CompensatedFuture<'c, F, U, O>
where
    F: Future<Output = Flow<O>>,
    U: Compensation<'c, O>,
{
    type Output = Flow<O>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let flow = ready!(this.step.poll(cx));
        if let Ok(carry) = &flow {
            *this.kept = Some((this.keep)(carry.value()));
        }
        Poll::Ready(flow)
    }
}

impl<'c, F, U, O> Sealed for CompensatedFuture<'c, F, U, O> where U: Compensation<'c, O> {}

impl<'c, F, U, O> Unwind for CompensatedFuture<'c, F, U, O>
where
    F: Unwind,
    U: Compensation<'c, O>,
{
    fn compensates(&self) -> bool {
        true
    }

    fn poll_unwind(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        cause: &WorkflowError,
    ) -> Poll<Option<WorkflowError>> {
        let mut this = self.project();
        if !*this.own_done {
            if this.running.is_none() {
                match (this.kept.take(), this.undo.take()) {
                    (Some(value), Some(undo)) => {
                        let body = undo.undo(this.ctx, value, *this.keep, cause);
                        let step = Step {
                            prev: Start,
                            kind: StepKind::Compensate,
                            title: std::mem::take(this.title),
                            body,
                            layers: std::mem::take(this.layers),
                            own: Bare,
                            place: Place::Chain,
                        };
                        this.running.set(Some(step.start(this.ctx)));
                    }
                    // The step never completed: nothing of it to undo.
                    _ => *this.own_done = true,
                }
            }
            if let Some(running) = this.running.as_mut().as_pin_mut() {
                let flow: Flow<()> = ready!(running.poll(cx));
                *this.failed = flow.err();
                this.running.set(None);
                *this.own_done = true;
            }
        }
        // The steps before undo after this one: latest first. A failed
        // compensation does not stop the earlier ones, whose effects are
        // their own.
        let earlier = ready!(this.step.poll_unwind(cx, cause));
        // A cancelled compensation wins: the undoing stopped short and is
        // for whoever cancelled it to resume, not a failure to report.
        Poll::Ready(match (this.failed.take(), earlier) {
            (Some(cancelled @ WorkflowError::Cancelled { .. }), _)
            | (_, Some(cancelled @ WorkflowError::Cancelled { .. })) => Some(cancelled),
            (own, earlier) => own.or(earlier),
        })
    }
}
