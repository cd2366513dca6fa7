//! A chain cut at every step: each step's future is made from the one
//! before's [`Flow`] once that one has ended, and the steps run in turn.
//!
//! `#[workflow]` runs its steps this way. A nested chain holds every
//! step's future inside the next's, so its size is the sum of its steps';
//! here the next step takes the finished one's place, so a run's
//! future is as large as its largest step plus what each later step's
//! maker captures (a reference or two), and what `__then` moves as the
//! run is built is that small future. Each step still runs in a
//! [`StepFuture`](super::StepFuture), so records, behaviors, overrides,
//! cancellation and journaling are the chain's own; a later step's
//! behaviors (and a named breaker's registration) are made when it
//! starts, the first's as the run is.
//!
//! A step's compensation undoes it from inside the nested chain, which
//! keeps what each earlier step made; a workflow with one keeps that
//! shape.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::stage::{Flow, Stage, Unwind};
use super::{Workflow, sealed};
use crate::context::WorkflowContext;

/// A chain's start from the [`Flow`] an earlier step handed on: its
/// value, first soft failure and end time, or the error that stopped the
/// run, which the next step hears as the nested chain's would.
#[derive(Debug)]
pub struct After<T>(Flow<T>);

impl<T> sealed::Sealed for After<T> {}

impl<'c, T> Stage<'c> for After<T> {
    type Output = T;
    type Future = Ready<Flow<T>>;
    fn start(self, _: &'c WorkflowContext) -> Self::Future {
        ready(self.0)
    }
}

impl<'c, T> Workflow<'c, After<T>> {
    /// A chain going on from `flow`, for the step after it.
    #[doc(hidden)]
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
    pub fn __step(self) -> S::Future {
        self.stage.start(self.ctx)
    }
}

pin_project! {
    /// A step's future, then the next step's, made by `then` from the
    /// first's [`Flow`] once the first has ended, in its place: one future
    /// the size of the larger of the two.
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
            fut: A,
            then: Option<G>,
        },
        After {
            #[pin]
            fut: B,
        },
    }
}

impl<A, G, B> Future for Next<A, G, B>
where
    A: Future,
    G: FnOnce(A::Output) -> B,
    B: Future,
{
    type Output = B::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        if let NextProj::Before { fut, then } = state.as_mut().project() {
            let flow = ready!(fut.poll(cx));
            let then = then.take().expect("a step's successor is made once");
            // The finished step holds nothing by now (its body and running
            // state went as it ended): it is dropped as the next takes its
            // place, rather than first, which would cost a second write of
            // the whole state.
            let next = then(flow);
            state.set(NextState::After { fut: next });
        }
        match state.project() {
            NextProj::After { fut } => fut.poll(cx),
            NextProj::Before { .. } => unreachable!("the next step was made above"),
        }
    }
}

/// Puts the next step after a step's future, postfix, so a run reads in
/// its steps' order.
#[doc(hidden)]
pub trait ThenStep: Future + Sized {
    /// `self`, then the step `then` makes from its [`Flow`].
    fn __then<G, B>(self, then: G) -> Next<Self, G, B>
    where
        G: FnOnce(Self::Output) -> B,
        B: Future,
    {
        Next {
            state: NextState::Before {
                fut: self,
                then: Some(then),
            },
        }
    }
}

impl<F: Future> ThenStep for F {}

impl<A, G, B> sealed::Sealed for Next<A, G, B> {}

/// A straight-line run has no compensation (a workflow with one is a
/// nested chain): its steps are seen as a chain with nothing to undo.
impl<A, G, B> Unwind for Next<A, G, B> {}
