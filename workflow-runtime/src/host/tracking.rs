//! What a runner keeps around each run: the span it runs in, a panic
//! caught as its outcome, and the counts and health entry that outcome
//! goes to, also when the run is dropped before it ends.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tracing::Span;

use super::health::{Health, RunOutcome};
use crate::behavior::workflow_span;
use crate::context::WorkflowContext;
use crate::error::{WorkflowError, panic_message};

/// A runner's counts of runs, as `Runner::stats` reads them.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) started: AtomicU64,
    pub(super) passed: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) cancelled: AtomicU64,
}

/// How a tracked run ended: with its future's output, or in a panic
/// outside any step (whose message this is).
pub(super) enum Tracked<T> {
    Done(T),
    Panicked(String),
}

pin_project! {
    /// A run's future under the runner's bookkeeping: made at its first
    /// poll and polled in the workflow's span with panics caught, it counts
    /// the run as started at that poll, and as passed, failed or cancelled
    /// as it ends or is dropped. One value, with no future of its own
    /// around the run's, so the runner's callers box or spawn the run and
    /// this together, once.
    pub(super) struct Tracking<'r, M, F> {
        counters: &'r Counters,
        health: &'r Health,
        ctx: &'r WorkflowContext,
        // Set at the first poll: a run never polled never started.
        started: Option<(RunGuard<'r>, Span)>,
        #[pin]
        run: Run<M, F>,
    }

    impl<'r, M, F> PinnedDrop for Tracking<'r, M, F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // Dropped mid-run: the run's future goes first, in the run's
            // span (its steps record themselves cancelled there), then the
            // guard records the run cancelled.
            if let RunProj::Made { .. } = this.run.as_mut().project()
                && let Some((_, span)) = this.started.as_ref()
            {
                let _in = span.enter();
                this.run.set(Run::Ended);
            }
        }
    }
}

pin_project! {
    /// The run: what makes its future until the first poll makes it, in
    /// the run's span and with its panics caught, then that future. The
    /// maker and the future share their room, and boxing or spawning a
    /// [`Tracking`] moves the maker's few captures rather than the run's
    /// state machine made before it.
    #[project = RunProj]
    enum Run<M, F> {
        Unmade { make: Option<M> },
        Made { #[pin] fut: F },
        Ended,
    }
}

impl<'r, M, F> Tracking<'r, M, F> {
    #[inline(always)]
    pub(super) fn new(
        counters: &'r Counters,
        health: &'r Health,
        ctx: &'r WorkflowContext,
        make: M,
    ) -> Self {
        Tracking {
            counters,
            health,
            ctx,
            started: None,
            run: Run::Unmade { make: Some(make) },
        }
    }
}

impl<M, F, T> Future for Tracking<'_, M, F>
where
    M: FnOnce() -> F,
    F: Future<Output = Result<T, WorkflowError>>,
{
    type Output = Tracked<Result<T, WorkflowError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let (counters, health, ctx) = (*this.counters, *this.health, *this.ctx);
        let (guard, span) = this.started.get_or_insert_with(|| {
            counters.started.fetch_add(1, Ordering::Relaxed);
            let guard = RunGuard {
                counters,
                health,
                name: ctx.name(),
                at: SystemTime::now(),
                started: Instant::now(),
                done: false,
            };
            (guard, workflow_span(ctx))
        });
        let tracked = {
            let _in = span.enter();
            let run = &mut this.run;
            let polled = catch_unwind(AssertUnwindSafe(|| {
                if let RunProj::Unmade { make } = run.as_mut().project()
                    && let Some(make) = make.take()
                {
                    run.set(Run::Made { fut: make() });
                }
                match run.as_mut().project() {
                    RunProj::Made { fut } => Some(fut.poll(cx)),
                    // It ended already.
                    _ => None,
                }
            }));
            let tracked = match polled {
                Ok(None) => panic!("a run's future polled after it ended"),
                Ok(Some(Poll::Pending)) => return Poll::Pending,
                Ok(Some(Poll::Ready(out))) => Tracked::Done(out),
                Err(payload) => Tracked::Panicked(panic_message(&*payload)),
            };
            // What the run held goes while its span is entered, as it
            // would have under `Instrumented`.
            this.run.set(Run::Ended);
            tracked
        };
        let (outcome, error, fault) = outcome_of(&tracked, ctx);
        // A span no subscriber took has nowhere to keep it.
        if !span.is_disabled() {
            span.record(
                "otel.status_code",
                if outcome == RunOutcome::Passed {
                    "OK"
                } else {
                    "ERROR"
                },
            );
        }
        guard.finish(outcome, error, fault);
        ctx.finish();
        Poll::Ready(tracked)
    }
}

/// How the run counts: its outcome, the message its health entry shows,
/// and whether it was a fault (a panic, an error the workflow did not
/// expect).
fn outcome_of<T>(
    tracked: &Tracked<Result<T, WorkflowError>>,
    ctx: &WorkflowContext,
) -> (RunOutcome, Option<String>, bool) {
    // A durable run its journal could not record is driven again: it was
    // interrupted, not failed, and counts as such.
    let interrupted = |e: &WorkflowError| match (e, ctx.run_journal()) {
        (WorkflowError::Failed { error, .. }, Some(journal)) => journal.fault(error).is_some(),
        _ => false,
    };
    match tracked {
        Tracked::Done(Ok(_)) => (RunOutcome::Passed, None, false),
        Tracked::Done(Err(WorkflowError::Cancelled { .. })) => {
            (RunOutcome::Cancelled, Some("cancelled".to_owned()), false)
        }
        Tracked::Done(Err(e)) if interrupted(e) => (
            RunOutcome::Cancelled,
            Some(format!("interrupted: {e}")),
            false,
        ),
        Tracked::Done(Err(e)) => (RunOutcome::Failed, Some(e.to_string()), e.is_fault()),
        Tracked::Panicked(message) => (
            RunOutcome::Failed,
            Some(format!("panicked: {message}")),
            true,
        ),
    }
}

/// Counts a started run once as it ends, or as cancelled when dropped
/// before.
struct RunGuard<'r> {
    counters: &'r Counters,
    health: &'r Health,
    name: &'r str,
    at: SystemTime,
    started: Instant,
    done: bool,
}

impl RunGuard<'_> {
    fn finish(&mut self, outcome: RunOutcome, error: Option<String>, fault: bool) {
        self.done = true;
        let counters = self.counters;
        match outcome {
            RunOutcome::Passed => &counters.passed,
            RunOutcome::Failed => &counters.failed,
            RunOutcome::Cancelled => &counters.cancelled,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.health.record(
            self.name,
            self.at,
            self.started.elapsed(),
            outcome,
            error,
            fault,
        );
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(RunOutcome::Cancelled, Some("cancelled".to_owned()), false);
        }
    }
}
