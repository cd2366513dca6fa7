//! A straight-line run's step: what `#[workflow]` awaits for each step
//! (`let flow = ….__step().await;`).
//!
//! Most steps, in most runs, need none of what a chain's step future is
//! ready for: no behaviors of their own or the context's, no journal to
//! replay from, a flow that goes on, a run not cancelled. Such a step is
//! a *plain* one, and runs here as code written for it would: a sync
//! body is called as the step is made and its result is ready at the
//! first poll; an async one is called at its first poll and polled in a
//! small future that keeps its body's future and what ends the step.
//! Any other step (behaviors, a durable run's journal, a flow that
//! stopped, a cancelled run) runs in the chain's
//! [`StepFuture`](super::StepFuture), as any step of a chain does.
//!
//! Both end a step through [`StepEnd`]: the same record, the same
//! outcome, the same error, the same flow handed on. A plain step keeps
//! every other observable behaviour too: it is the thread's active step
//! while its body is called or polled (so `#[step]` functions it calls
//! record as its children); a panic fails it; a test's stand-in takes
//! its place (the body's adapter looks it up as it is called); once it
//! waits, its step timeout and the run's cancellation can end it; and
//! dropped while its body is in flight, it is recorded cancelled.
//!
//! The step is made right before its first poll (`__step()` and its
//! `.await` are one expression), so a sync body called as it is made
//! runs where it would have run at that poll.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::stage::{
    Carry, Ended, Finally, Flow, Place, Stage, Start, Step, StepEnd, StepFuture, Waits,
};
use super::step_fn::{StepAt, StepFn, StepResult};
use super::straight::After;
use crate::behavior::Builtins;
use crate::context::active::{Active, enter};
use crate::context::{StepId, StepOutcome, StepRecord, WorkflowContext};
use crate::error::WorkflowError;
use crate::step::{StepKind, Title};

/// Where a straight-line run's step starts: the [`Flow`] the step before
/// handed on, there already when the step is made.
#[doc(hidden)]
pub trait Handoff {
    /// The value handed on.
    type Value;
    /// Whether the run goes on here: the flow holds a value.
    fn goes_on(&self) -> bool;
    /// The flow.
    fn into_flow(self) -> Flow<Self::Value>;
}

impl Handoff for Start {
    type Value = ();
    #[inline]
    fn goes_on(&self) -> bool {
        true
    }
    #[inline]
    fn into_flow(self) -> Flow<()> {
        Ok(Carry {
            value: (),
            soft: None,
            ended: None,
            active: None,
        })
    }
}

impl<T> Handoff for After<T> {
    type Value = T;
    #[inline]
    fn goes_on(&self) -> bool {
        self.flow().is_ok()
    }
    #[inline]
    fn into_flow(self) -> Flow<T> {
        self.into_inner()
    }
}

/// A stage a straight-line run awaits as one step: a step after a
/// handed flow, plain when it can be, or a `finally`, as the chain runs
/// it.
#[doc(hidden)]
pub trait StraightStage<'c>: Stage<'c> {
    /// The step's future.
    type Straight: Future<Output = Flow<Self::Output>>;
    /// Makes it.
    fn straight(self, ctx: &'c WorkflowContext) -> Self::Straight;
}

impl<'c, P, F, B> StraightStage<'c> for Step<P, F, B>
where
    P: Handoff + Stage<'c, Output = <P as Handoff>::Value>,
    F: StepFn<<P as Handoff>::Value>,
    B: Builtins,
{
    type Straight = StraightStep<'c, StepFuture<'c, P::Future, F, P::Output, B>, F, P::Output>;

    #[inline]
    fn straight(self, ctx: &'c WorkflowContext) -> Self::Straight {
        let plain = B::EMPTY
            && self.layers.is_empty()
            && self.place == Place::Chain
            && self.prev.goes_on()
            && ctx.runs_plain()
            && !ctx.is_cancelled();
        if !plain {
            return StraightStep::General {
                fut: self.start(ctx),
            };
        }
        let Step {
            prev,
            kind,
            title,
            body,
            layers,
            ..
        } = self;
        crate::behavior::discard_layers(layers);
        let Ok(Carry {
            value,
            mut soft,
            ended,
            active,
        }) = prev.into_flow()
        else {
            unreachable!("a plain step's flow goes on");
        };
        let started = ended.unwrap_or_else(Instant::now);
        let id = ctx.next_step_id();
        let mut active = Some(match active {
            Some(mut active) => {
                active.step = Some(id);
                active
            }
            None => Active::new(ctx.clone(), Some(id)),
        });
        let in_flight = |title, active, soft, body| StraightStep::Running {
            run: InFlight {
                ctx,
                kind,
                title,
                id,
                started,
                active,
                soft,
                waits: None,
                body,
            },
        };
        if !F::at_call() {
            return in_flight(title, active, soft, Body::Unstarted { body, input: value });
        }
        // A sync body does its work as it is called: its result ends the
        // step with no state kept for it.
        let end = StepEnd {
            ctx,
            kind,
            title: &title,
            place: Place::Chain,
        };
        let at = StepAt { ctx, title: &title };
        let called = catch_unwind(AssertUnwindSafe(|| {
            enter(&mut active, || body.call_now(value, at))
        }));
        let flow = match called {
            Ok(Ok(Ok(value))) => end.passed(soft, started, id, active, value),
            Ok(Ok(result)) => end.end(&mut soft, started, id, active, Ended::Result(result)),
            // Not done after all: its future, polled as any.
            Ok(Err(fut)) => return in_flight(title, active, soft, Body::Running { fut }),
            Err(payload) => end.end(&mut soft, started, id, active, Ended::Panic(&*payload)),
        };
        StraightStep::Ended { flow: Some(flow) }
    }
}

impl<'c, P, F> StraightStage<'c> for Finally<P, F>
where
    Finally<P, F>: Stage<'c>,
{
    type Straight = <Self as Stage<'c>>::Future;
    #[inline]
    fn straight(self, ctx: &'c WorkflowContext) -> Self::Straight {
        self.start(ctx)
    }
}

pin_project! {
    /// One step of a straight-line run: ended already (a plain sync
    /// step), a plain async step's body in flight, or a step the chain's
    /// future runs.
    #[doc(hidden)]
    #[project = StraightProj]
    pub enum StraightStep<'c, G, F, In>
    where
        F: StepFn<In>,
    {
        Ended { flow: Option<Flow<F::Output>> },
        Running { #[pin] run: InFlight<'c, F, In> },
        General { #[pin] fut: G },
    }
}

impl<'c, G, F, In> Future for StraightStep<'c, G, F, In>
where
    G: Future<Output = Flow<F::Output>>,
    F: StepFn<In>,
{
    type Output = Flow<F::Output>;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            StraightProj::Ended { flow } => {
                Poll::Ready(flow.take().expect("a step's future polled after it ended"))
            }
            StraightProj::Running { run } => run.poll(cx),
            StraightProj::General { fut } => fut.poll(cx),
        }
    }
}

pin_project! {
    /// A plain async step's body in flight, with what ends the step.
    #[doc(hidden)]
    pub struct InFlight<'c, F, In>
    where
        F: StepFn<In>,
    {
        // First, so that dropped mid-step, its future goes before the
        // rest, as a chain's step's does.
        #[pin]
        body: Body<F, In, F::Future>,
        ctx: &'c WorkflowContext,
        kind: StepKind,
        title: Title,
        id: StepId,
        started: Instant,
        // Lent to the thread while the body runs, so `#[step]` functions
        // it calls record as this step's children.
        active: Option<Active>,
        // The first soft failure before this step, handed on after it.
        soft: Option<Box<WorkflowError>>,
        // Made only once the body returns `Pending`, as a chain's step
        // makes them.
        waits: Option<Pin<Box<Waits>>>,
    }

    impl<'c, F, In> PinnedDrop for InFlight<'c, F, In>
    where
        F: StepFn<In>,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped with its body in flight: the run was cancelled from
            // outside (a `select!`, a host's shutdown timeout). Recorded
            // so before the body's future goes, as a chain's step is.
            if matches!(this.body.as_ref().get_ref(), Body::Running { .. }) {
                let mut record = StepRecord::new(
                    *this.kind,
                    this.title.clone(),
                    this.started.elapsed(),
                    StepOutcome::Cancelled,
                );
                record.id = *this.id;
                this.ctx.record(record);
            }
        }
    }
}

pin_project! {
    /// A plain step's body: not called yet (an async one is called at
    /// its first poll), its future in flight, or done. One slot, so a
    /// large input is held once.
    #[project = BodyProj]
    #[project_replace = BodyReplace]
    enum Body<F, In, Fut> {
        Unstarted { body: F, input: In },
        Running { #[pin] fut: Fut },
        Called,
    }
}

impl<F: StepFn<In>, In> Body<F, In, F::Future> {
    /// Calls the body if it was not yet, then polls its future.
    #[inline]
    fn poll(
        mut self: Pin<&mut Self>,
        at: StepAt<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<StepResult<F::Output>> {
        if let BodyProj::Unstarted { .. } = self.as_mut().project() {
            let BodyReplace::Unstarted { body, input } =
                self.as_mut().project_replace(Body::Called)
            else {
                unreachable!("an unstarted body was just seen");
            };
            self.set(Body::Running {
                fut: body.call_at(input, at),
            });
        }
        match self.project() {
            BodyProj::Running { fut } => fut.poll(cx),
            _ => unreachable!("a step's body polled after it ended"),
        }
    }
}

impl<'c, F: StepFn<In>, In> Future for InFlight<'c, F, In> {
    type Output = Flow<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // Outside the catch below, so that it is not taken for the
        // step's own panic.
        assert!(
            !matches!(this.body.as_ref().get_ref(), Body::Called),
            "a step's future polled after it ended"
        );
        let ctx = *this.ctx;
        let at = StepAt {
            ctx,
            title: this.title,
        };
        let mut body = this.body.as_mut();
        // One active-step swap covers an async body's call and its first
        // poll; a panic in either fails the step.
        let polled = catch_unwind(AssertUnwindSafe(|| {
            enter(this.active, || body.as_mut().poll(at, cx))
        }));
        let started = *this.started;
        // A panic's payload outlives the body's future, which goes first.
        let payload;
        let ended = match polled {
            Ok(Poll::Ready(Ok(value))) => Ok(value),
            Ok(Poll::Ready(result)) => Err(Ended::Result(result)),
            Ok(Poll::Pending) => {
                let waits = this
                    .waits
                    .get_or_insert_with(|| Box::pin(Waits::new(ctx, started)));
                match waits.as_mut().poll_end(cx) {
                    Poll::Ready(ended) => Err(ended),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Err(panicked) => {
                payload = panicked;
                Err(Ended::Panic(&*payload))
            }
        };
        // Its future (and its waits) go before the step's end is recorded.
        this.body.set(Body::Called);
        *this.waits = None;
        let end = StepEnd {
            ctx,
            kind: *this.kind,
            title: this.title,
            place: Place::Chain,
        };
        let active = this.active.take();
        Poll::Ready(match ended {
            Ok(value) => end.passed(this.soft.take(), started, *this.id, active, value),
            Err(ended) => end.end(this.soft, started, *this.id, active, ended),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::behavior::{Attempted, Behavior, BoxFuture, Next, StepScope};
    use crate::chain::Workflow;

    /// Runs each step it wraps, counting them.
    struct Counting(Arc<AtomicUsize>);

    impl Behavior for Counting {
        fn around<'a>(&'a self, _: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move { next.run().await })
        }
    }

    #[tokio::test]
    async fn a_plain_sync_step_has_ended_when_it_is_made() {
        let ctx = WorkflowContext::new("W");
        let step = Workflow::given(&ctx, "one", || 1).stage.straight(&ctx);
        assert!(matches!(step, StraightStep::Ended { .. }));
        // Its record is there before the first poll.
        assert_eq!(ctx.steps().len(), 1);
        assert_eq!(step.await.unwrap().value, 1);
    }

    #[tokio::test]
    async fn a_plain_async_step_runs_in_its_own_future() {
        let ctx = WorkflowContext::new("W");
        let step = Workflow::given_async(&ctx, "one", || async { 1 })
            .stage
            .straight(&ctx);
        assert!(matches!(step, StraightStep::Running { .. }));
        assert!(ctx.steps().is_empty());
        assert_eq!(step.await.unwrap().value, 1);
        assert!(ctx.all_passed());
    }

    #[tokio::test]
    async fn a_step_under_a_behavior_or_after_a_failure_runs_in_the_chains_future() {
        let count = Arc::new(AtomicUsize::new(0));
        let ctx = WorkflowContext::builder("W")
            .behavior(Counting(count.clone()))
            .build();
        let step = Workflow::given(&ctx, "one", || 1).stage.straight(&ctx);
        assert!(matches!(step, StraightStep::General { .. }));
        assert_eq!(step.await.unwrap().value, 1);
        assert_eq!(count.load(Ordering::Relaxed), 1);

        let ctx = WorkflowContext::new("W");
        let failed: Flow<u32> = Err(WorkflowError::Cancelled {
            step: crate::step::StepInfo {
                workflow: "W".into(),
                kind: StepKind::Given,
                title: "before".into(),
            },
        });
        let step = Workflow::__after(&ctx, failed)
            .when("after", |n: u32| n + 1)
            .stage
            .straight(&ctx);
        assert!(matches!(step, StraightStep::General { .. }));
        assert!(step.await.is_err());
        assert!(matches!(ctx.steps()[0].outcome, StepOutcome::Skipped));
    }

    /// A step made as `#[workflow]` makes it, with the adapters a
    /// context's behaviors, a type-wide retry and a test's stand-ins
    /// need, is still plain on a plain context: in one wrapper for a step
    /// with no behaviors of its own, nested for one with some.
    #[tokio::test]
    async fn a_step_made_as_the_macro_makes_it_runs_plain() {
        use crate::__private::{DeclareReplays as _, IntoProbe as _, RetryWithReplay as _};

        let ctx = WorkflowContext::new("W");
        let step = Workflow::__given_with(&ctx, "one", 1u32, |n: u32| n + 1)
            .__probe()
            .__declared()
            .stage
            .straight(&ctx);
        assert!(matches!(step, StraightStep::Ended { .. }));
        let flow = step.await;
        let step = Workflow::__after(&ctx, flow)
            .when_async("two", |n: u32| async move { n + 1 })
            .__probe()
            .__declared()
            .stage
            .straight(&ctx);
        assert!(matches!(step, StraightStep::Running { .. }));
        let flow = step.await;
        let step = Workflow::__after(&ctx, flow)
            .when("three", |n: u32| n + 1)
            .value_behaviors()
            .__probe()
            .__replayable_for_retries()
            .overridable()
            .stage
            .straight(&ctx);
        assert!(matches!(step, StraightStep::Ended { .. }));
        assert_eq!(step.await.unwrap().value, 4);
        assert_eq!(ctx.steps().len(), 3);
    }

    /// Polled again after it ended, a plain step's future panics as a
    /// chain step's does, rather than taking that for its body's panic
    /// and recording the step a second time.
    #[test]
    fn a_plain_step_polled_after_it_ended_panics_and_records_nothing_more() {
        let ctx = WorkflowContext::new("W");
        let mut step = Box::pin(
            Workflow::given_async(&ctx, "one", || async { 1 })
                .stage
                .straight(&ctx),
        );
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(step.as_mut().poll(&mut cx).is_ready());
        assert_eq!(ctx.steps().len(), 1);
        let again = catch_unwind(AssertUnwindSafe(|| step.as_mut().poll(&mut cx)));
        assert!(again.is_err());
        assert_eq!(ctx.steps().len(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_run_starts_no_plain_step() {
        let ctx = WorkflowContext::new("W");
        ctx.cancel();
        let step = Workflow::given(&ctx, "one", || 1).stage.straight(&ctx);
        assert!(matches!(step, StraightStep::General { .. }));
        assert!(step.await.is_err());
    }
}
