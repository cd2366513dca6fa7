//! The chain's stages and their futures: each step is a small state
//! machine nested in the next, so a whole chain is one future with no heap
//! allocation of its own.

use std::future::{Future, Ready, ready};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::step_fn::{Failed, StepFn, StepResult, panic_message};
use crate::context::active::{enter, enter_direct};
use crate::context::{StepOutcome, StepRecord, WorkflowContext};
use crate::error::{StepFailure, WorkflowError};
use crate::step::{StepInfo, StepKind, Title};

/// A stage's result: the value with the first soft failure so far (one
/// that was recorded but let the chain go on), or the error that stopped it.
pub type Flow<T> = Result<(T, Option<WorkflowError>), WorkflowError>;

/// A link of the chain: knows how to start its future once the chain is
/// awaited.
pub trait Stage<'c> {
    /// The value this stage hands to the next.
    type Output;
    /// The stage's future, including every stage before it.
    type Future: Future<Output = Flow<Self::Output>>;
    /// Builds the future.
    fn start(self, ctx: &'c WorkflowContext) -> Self::Future;
}

/// The empty chain before `given`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Start;

impl<'c> Stage<'c> for Start {
    type Output = ();
    type Future = Ready<Flow<()>>;
    fn start(self, _: &'c WorkflowContext) -> Self::Future {
        ready(Ok(((), None)))
    }
}

/// A step after `prev`.
#[derive(Debug)]
pub struct Step<P, F> {
    pub(crate) prev: P,
    pub(crate) kind: StepKind,
    pub(crate) title: Title,
    pub(crate) body: F,
}

impl<'c, P, F> Stage<'c> for Step<P, F>
where
    P: Stage<'c>,
    F: StepFn<P::Output>,
{
    type Output = F::Output;
    type Future = StepFuture<'c, P::Future, F, P::Output>;
    fn start(self, ctx: &'c WorkflowContext) -> Self::Future {
        StepFuture {
            ctx,
            kind: self.kind,
            title: self.title,
            body: Some(self.body),
            soft: None,
            state: State::Prev {
                fut: self.prev.start(ctx),
            },
        }
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<P, S> {
        Prev { #[pin] fut: P },
        Running {
            #[pin] fut: S,
            started: Instant,
            // The first poll runs an async body's first stretch: a `#[step]`
            // function entered there is the body, recorded by the chain.
            first: bool,
            // Made only once the step returns `Pending`: sync and
            // immediately-ready steps never touch the timer or the token.
            #[pin] deadline: Option<Sleep>,
            #[pin] cancelled: Option<WaitForCancellationFutureOwned>,
        },
        Done,
    }
}

pin_project! {
    /// The future of one step and every step before it.
    pub struct StepFuture<'c, P, F, In>
    where
        F: StepFn<In>,
    {
        ctx: &'c WorkflowContext,
        kind: StepKind,
        title: Title,
        body: Option<F>,
        soft: Option<WorkflowError>,
        #[pin]
        state: State<P, F::Future>,
    }

    impl<'c, P, F, In> PinnedDrop for StepFuture<'c, P, F, In>
    where
        F: StepFn<In>,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped mid-step: the run was cancelled from outside (a
            // `select!`, a host's shutdown timeout). Say so in the record.
            if let StateProj::Running { started, .. } = this.state.project() {
                this.ctx.record(StepRecord::new(
                    *this.kind,
                    this.title.clone(),
                    started.elapsed(),
                    StepOutcome::Cancelled,
                ));
            }
        }
    }
}

impl<'c, P, F, In> Future for StepFuture<'c, P, F, In>
where
    P: Future<Output = Flow<In>>,
    F: StepFn<In>,
{
    type Output = Flow<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            match this.state.project() {
                StateProj::Prev { fut } => {
                    let (value, soft) = match ready!(fut.poll(cx)) {
                        Ok(ok) => ok,
                        Err(error) => {
                            self.as_mut().project().state.set(State::Done);
                            self.skip();
                            return Poll::Ready(Err(error));
                        }
                    };
                    *this.soft = soft;
                    let started = Instant::now();
                    if this.ctx.is_cancelled() {
                        self.as_mut().project().state.set(State::Done);
                        return Poll::Ready(self.end(started, Ended::Cancelled));
                    }
                    let body = this
                        .body
                        .take()
                        .expect("StepFuture polled after completion");
                    match catch_unwind(AssertUnwindSafe(|| {
                        enter_direct(this.ctx, || body.call(value))
                    })) {
                        Ok(fut) => self.as_mut().project().state.set(State::Running {
                            fut,
                            started,
                            first: true,
                            deadline: None,
                            cancelled: None,
                        }),
                        Err(payload) => {
                            self.as_mut().project().state.set(State::Done);
                            return Poll::Ready(self.end(started, Ended::Panic(&*payload)));
                        }
                    }
                }
                StateProj::Running {
                    fut,
                    started,
                    first,
                    mut deadline,
                    mut cancelled,
                } => {
                    let started = *started;
                    let ctx = *this.ctx;
                    let poll = || match std::mem::replace(first, false) {
                        true => enter_direct(ctx, || fut.poll(cx)),
                        false => enter(ctx, || fut.poll(cx)),
                    };
                    let ended = match catch_unwind(AssertUnwindSafe(poll)) {
                        Ok(Poll::Ready(result)) => Ended::Result(result),
                        Err(payload) => {
                            // The payload must outlive the state it came from.
                            self.as_mut().project().state.set(State::Done);
                            return Poll::Ready(self.end(started, Ended::Panic(&*payload)));
                        }
                        Ok(Poll::Pending) => {
                            if let Some(limit) = this.ctx.options().step_timeout {
                                if deadline.is_none() {
                                    deadline.set(Some(tokio::time::sleep_until(started + limit)));
                                }
                                if let Some(sleep) = deadline.as_mut().as_pin_mut()
                                    && sleep.poll(cx).is_ready()
                                {
                                    self.as_mut().project().state.set(State::Done);
                                    return Poll::Ready(self.end(started, Ended::TimedOut(limit)));
                                }
                            }
                            if cancelled.is_none() {
                                let token = this.ctx.cancellation_token().clone();
                                cancelled.set(Some(token.cancelled_owned()));
                            }
                            match cancelled.as_pin_mut().map(|c| c.poll(cx)) {
                                Some(Poll::Ready(())) => Ended::Cancelled,
                                _ => return Poll::Pending,
                            }
                        }
                    };
                    self.as_mut().project().state.set(State::Done);
                    return Poll::Ready(self.end(started, ended));
                }
                StateProj::Done => panic!("StepFuture polled after completion"),
            }
        }
    }
}

enum Ended<'p, O> {
    Result(StepResult<O>),
    Panic(&'p (dyn std::any::Any + Send)),
    TimedOut(Duration),
    Cancelled,
}

impl<'c, P, F, In> StepFuture<'c, P, F, In>
where
    F: StepFn<In>,
{
    fn info(&self) -> StepInfo {
        StepInfo {
            workflow: self.ctx.shared_name(),
            kind: self.kind,
            title: self.title.clone(),
        }
    }

    fn record(&self, elapsed: Duration, outcome: StepOutcome) {
        self.ctx.record(StepRecord::new(
            self.kind,
            self.title.clone(),
            elapsed,
            outcome,
        ));
    }

    fn skip(&self) {
        if self.ctx.options().skip_remaining_on_failure {
            self.record(Duration::ZERO, StepOutcome::Skipped);
        }
    }

    /// Records how the step ended and decides whether the chain goes on.
    /// A run's error is always its first failure, soft or not.
    fn end(self: Pin<&mut Self>, started: Instant, ended: Ended<'_, F::Output>) -> Flow<F::Output> {
        let options = self.ctx.options();
        let (error, continue_with) = match ended {
            Ended::Result(Ok(value)) => {
                self.record(started.elapsed(), StepOutcome::Passed);
                return Ok((value, self.project().soft.take()));
            }
            Ended::Result(Err(Failed { failure, value })) => {
                self.record(started.elapsed(), StepOutcome::Failed(failure.clone()));
                let soft = match failure {
                    StepFailure::Assertion => {
                        !options.halt_on_failed_assertion || options.continue_on_error
                    }
                    _ => options.continue_on_error,
                };
                let error = WorkflowError::from_failure(self.info(), failure);
                (error, value.filter(|_| soft))
            }
            Ended::Panic(payload) => {
                let failure = StepFailure::Panic(panic_message(payload).into());
                self.record(started.elapsed(), StepOutcome::Failed(failure.clone()));
                (WorkflowError::from_failure(self.info(), failure), None)
            }
            Ended::TimedOut(after) => {
                self.record(after, StepOutcome::TimedOut(after));
                let step = self.info();
                (WorkflowError::TimedOut { step, after }, None)
            }
            Ended::Cancelled => {
                self.record(started.elapsed(), StepOutcome::Cancelled);
                (WorkflowError::Cancelled { step: self.info() }, None)
            }
        };
        let first = self.project().soft.take().unwrap_or(error);
        match continue_with {
            Some(value) => Ok((value, Some(first))),
            None => Err(first),
        }
    }
}

/// A `finally` after `prev`: runs whether or not `prev` succeeded.
#[derive(Debug)]
pub struct Finally<P, F> {
    pub(crate) prev: P,
    pub(crate) title: Title,
    pub(crate) body: F,
}

impl<'c, P, F> Stage<'c> for Finally<P, F>
where
    P: Stage<'c>,
    F: FnOnce(Result<&P::Output, &WorkflowError>),
{
    type Output = P::Output;
    type Future = FinallyFuture<'c, P::Future, F>;
    fn start(self, ctx: &'c WorkflowContext) -> Self::Future {
        FinallyFuture {
            ctx,
            title: self.title,
            body: Some(self.body),
            prev: self.prev.start(ctx),
        }
    }
}

pin_project! {
    /// The future of a `finally` and every step before it.
    pub struct FinallyFuture<'c, P, F> {
        ctx: &'c WorkflowContext,
        title: Title,
        body: Option<F>,
        #[pin]
        prev: P,
    }
}

impl<'c, P, F, T> Future for FinallyFuture<'c, P, F>
where
    P: Future<Output = Flow<T>>,
    F: FnOnce(Result<&T, &WorkflowError>),
{
    type Output = Flow<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let flow = ready!(this.prev.poll(cx));
        let body = this
            .body
            .take()
            .expect("FinallyFuture polled after completion");
        let started = Instant::now();
        let seen = flow.as_ref().map(|(value, _)| value);
        let panicked = catch_unwind(AssertUnwindSafe(|| body(seen))).err();
        let outcome = match &panicked {
            None => StepOutcome::Passed,
            Some(payload) => {
                StepOutcome::Failed(StepFailure::Panic(panic_message(&**payload).into()))
            }
        };
        this.ctx.record(StepRecord::new(
            StepKind::Finally,
            this.title.clone(),
            started.elapsed(),
            outcome.clone(),
        ));
        let Some(payload) = panicked else {
            return Poll::Ready(flow);
        };
        // An earlier failure stays the run's error; a panic here only
        // becomes it when everything before passed.
        Poll::Ready(match flow {
            Err(error) => Err(error),
            Ok((value, soft)) => {
                let error = WorkflowError::Panicked {
                    step: StepInfo {
                        workflow: this.ctx.shared_name(),
                        kind: StepKind::Finally,
                        title: this.title.clone(),
                    },
                    message: panic_message(&*payload).into(),
                };
                if this.ctx.options().continue_on_error {
                    Ok((value, Some(soft.unwrap_or(error))))
                } else {
                    Err(soft.unwrap_or(error))
                }
            }
        })
    }
}

pin_project! {
    /// The future of a whole chain: what awaiting a
    /// [`Workflow`](super::Workflow) runs.
    pub struct ChainFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> ChainFuture<F> {
    pub(crate) fn new(inner: F) -> Self {
        ChainFuture { inner }
    }
}

impl<F, T> Future for ChainFuture<F>
where
    F: Future<Output = Flow<T>>,
{
    type Output = Result<T, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll(cx)) {
            Ok((value, None)) => Ok(value),
            Ok((_, Some(first))) | Err(first) => Err(first),
        })
    }
}
