//! The floor under any shape of the engine: the 10-step run written by
//! hand for this one workflow, doing for each step the work the engine
//! does for every step whatever its shape, at what it costs. Each step
//!
//! - checks the run's cancellation before it starts;
//! - makes itself the thread's active step while its body is called or
//!   polled: a thread-local slot holding the context and a step number,
//!   swapped in and out as the engine's is (here the number is a local
//!   count, and nothing reads the slot);
//! - catches a panic of its body, which fails the step and not the
//!   process;
//! - reads the clock once, its end being the next step's start;
//! - pushes the engine's own record (`StepRecord`, given its id) into the
//!   run's context, under the context's lock, through
//!   `WorkflowContext::record`, which copies it in (the engine writes
//!   it in place).
//!
//! It makes the run's context as `#[workflow]`'s `context()` does. It
//! leaves out what costs a load and a branch a step in the engine: the
//! checks for the context's behaviors, journal and stand-ins, and the
//! flag that records a step dropped mid-flight. Its bodies never wait,
//! so a step's timeout and cancellation watch, made only when a body
//! waits, cost neither side anything here.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};

use tokio::time::Instant;
use workflow_runtime::{StepFailure, StepKind, StepOutcome, StepRecord, WorkflowContext};

thread_local! {
    static ACTIVE: RefCell<Option<(WorkflowContext, u32)>> = const { RefCell::new(None) };
}

/// Why a guarded run stopped (the record says which step).
#[derive(Debug)]
pub enum Stopped {
    Cancelled,
    Panicked,
}

/// `f` with `slot` as the thread's active step, swapped back after.
#[inline]
fn enter<R>(slot: &mut Option<(WorkflowContext, u32)>, f: impl FnOnce() -> R) -> R {
    struct Restore<'s>(&'s mut Option<(WorkflowContext, u32)>);
    impl Drop for Restore<'_> {
        #[inline]
        fn drop(&mut self) {
            ACTIVE.with(|active| std::mem::swap(&mut *active.borrow_mut(), self.0));
        }
    }
    ACTIVE.with(|active| std::mem::swap(&mut *active.borrow_mut(), slot));
    let _restore = Restore(slot);
    f()
}

/// A run's steps, guarded one by one.
pub struct Guarded<'c> {
    ctx: &'c WorkflowContext,
    last: Option<Instant>,
    active: Option<(WorkflowContext, u32)>,
}

impl<'c> Guarded<'c> {
    pub fn new(ctx: &'c WorkflowContext) -> Self {
        Guarded {
            ctx,
            last: None,
            active: Some((ctx.clone(), 0)),
        }
    }

    #[inline]
    fn begin(&mut self) -> Result<Instant, Stopped> {
        if self.ctx.is_cancelled() {
            return Err(Stopped::Cancelled);
        }
        if let Some(active) = &mut self.active {
            active.1 += 1;
        }
        Ok(self.last.unwrap_or_else(Instant::now))
    }

    #[inline]
    fn end<T>(
        &mut self,
        kind: StepKind,
        title: &'static str,
        started: Instant,
        result: std::thread::Result<T>,
    ) -> Result<T, Stopped> {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(started);
        self.last = Some(now);
        let (outcome, result) = match result {
            Ok(value) => (StepOutcome::Passed, Ok(value)),
            Err(_) => (
                StepOutcome::Failed(StepFailure::Panic("panicked".into())),
                Err(Stopped::Panicked),
            ),
        };
        self.ctx
            .record(StepRecord::new(kind, title, elapsed, outcome));
        result
    }

    /// A sync step: `f` called as the active step, its panic caught.
    #[inline]
    pub fn sync<T>(
        &mut self,
        kind: StepKind,
        title: &'static str,
        f: impl FnOnce() -> T,
    ) -> Result<T, Stopped> {
        let started = self.begin()?;
        let result = catch_unwind(AssertUnwindSafe(|| enter(&mut self.active, f)));
        self.end(kind, title, started, result)
    }

    /// An async step: `fut` polled as the active step, its panic caught.
    #[inline]
    pub async fn step<F: Future>(
        &mut self,
        kind: StepKind,
        title: &'static str,
        fut: F,
    ) -> Result<F::Output, Stopped> {
        let started = self.begin()?;
        let mut fut = std::pin::pin!(fut);
        let active = &mut self.active;
        let result = std::future::poll_fn(|cx: &mut Context<'_>| {
            match catch_unwind(AssertUnwindSafe(|| enter(active, || fut.as_mut().poll(cx)))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
                Err(payload) => Poll::Ready(Err(payload)),
            }
        })
        .await;
        self.end(kind, title, started, result)
    }
}
