//! A chain cut at every step: each step's future is made from the one
//! before's [`Flow`] once that one has ended, and the steps run in turn.
//!
//! `#[workflow]` runs its steps this way. A nested chain holds every
//! step's future inside the next's, so its size is the sum of its steps';
//! here the next step takes the finished one's place, so a run's
//! future is as large as its largest step plus a tag per step. The
//! makers are handed the workflow and its context, kept once in
//! [`Straight`], so they capture nothing, and what `__then` moves as the
//! run is built is that small future. Each step still runs in a
//! [`StepFuture`](super::StepFuture), so records, behaviors, overrides,
//! cancellation and journaling are the chain's own; a later step's
//! behaviors (and a named breaker's registration) are made when it
//! starts, the first's as the run is.
//!
//! A step's compensation undoes it from inside the nested chain, which
//! keeps what each earlier step made; a workflow with one keeps that
//! shape.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::stage::{Carry, Flow, Stage, Unwind};
use super::{Workflow, sealed};
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

impl<'c, S: Stage<'c>> Workflow<'c, S> {
    /// The chain's last step's future, whose [`Flow`] the next step
    /// starts from ([`__after`](Workflow::__after)).
    #[doc(hidden)]
    #[inline]
    pub fn __step(self) -> S::Future {
        self.stage.start(self.ctx)
    }
}

pin_project! {
    /// A run's steps, and what each later step is made with: `env`, the
    /// workflow and its context, kept here once and handed to each
    /// step's maker, so the makers capture nothing and weigh nothing.
    pub struct Straight<E, S> {
        env: E,
        #[pin]
        steps: S,
    }
}

impl<E: Copy, F: Future> Straight<E, First<F>> {
    /// The run's first step's future, with what later steps are made with.
    #[doc(hidden)]
    pub fn __first(env: E, first: F) -> Self {
        Straight {
            env,
            steps: First { fut: first },
        }
    }
}

impl<E: Copy, S: Steps<E>> Straight<E, S> {
    /// These steps, then the step `then` makes from `env` and the last
    /// one's [`Flow`] once it has ended, in its place.
    #[doc(hidden)]
    pub fn __then<G, B>(self, then: G) -> Straight<E, Next<S, G, B>>
    where
        G: Fn(E, S::Output) -> B,
        B: Future,
    {
        Straight {
            env: self.env,
            steps: Next {
                state: NextState::Before {
                    steps: self.steps,
                    then,
                },
            },
        }
    }
}

impl<E: Copy, S: Steps<E>> Future for Straight<E, S> {
    type Output = S::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.steps.poll_steps(*this.env, cx)
    }
}

impl<E, S> sealed::Sealed for Straight<E, S> {}

/// A straight-line run has no compensation (a workflow with one is a
/// nested chain): its steps are seen as a chain with nothing to undo.
impl<E, S> Unwind for Straight<E, S> {}

/// Steps run in turn, each later one made with the run's `E`.
#[doc(hidden)]
pub trait Steps<E> {
    /// The last step's outcome.
    type Output;
    /// Polls the step under way, making the next from `env` when it ends.
    fn poll_steps(self: Pin<&mut Self>, env: E, cx: &mut Context<'_>) -> Poll<Self::Output>;
}

pin_project! {
    /// The first step's future.
    pub struct First<F> {
        #[pin]
        fut: F,
    }
}

impl<E, F: Future> Steps<E> for First<F> {
    type Output = F::Output;
    #[inline]
    fn poll_steps(self: Pin<&mut Self>, _: E, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().fut.poll(cx)
    }
}

pin_project! {
    /// Steps, then the next step's future, made by `then` once they have
    /// ended, in their place: as large as the larger of the two.
    pub struct Next<A, G, B> {
        #[pin]
        state: NextState<A, G, B>,
    }
}

pin_project! {
    #[project = NextProj]
    enum NextState<A, G, B> {
        Before {
            #[pin]
            steps: A,
            then: G,
        },
        After {
            #[pin]
            fut: B,
        },
    }
}

impl<E, A, G, B> Steps<E> for Next<A, G, B>
where
    E: Copy,
    A: Steps<E>,
    G: Fn(E, A::Output) -> B,
    B: Future,
{
    type Output = B::Output;
    #[inline]
    fn poll_steps(self: Pin<&mut Self>, env: E, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        if let NextProj::Before { steps, then } = state.as_mut().project() {
            let flow = ready!(steps.poll_steps(env, cx));
            // The finished step holds nothing by now (its body and running
            // state went as it ended): it is dropped as the next takes its
            // place, rather than first, which would cost a second write of
            // the whole state.
            let next = then(env, flow);
            state.set(NextState::After { fut: next });
        }
        match state.project() {
            NextProj::After { fut } => fut.poll(cx),
            NextProj::Before { .. } => unreachable!("the next step was made above"),
        }
    }
}
