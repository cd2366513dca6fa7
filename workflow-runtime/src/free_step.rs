//! `#[step]` on free functions: a call made while a step runs records
//! itself in that step's context, as its child.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::context::active::{Active, current, enter};
use crate::context::{StepId, StepOutcome, StepRecord, WorkflowContext};
use crate::error::panic_message;
use crate::error::{StepError, StepFailure};
use crate::step::StepMeta;

/// One call of a `#[step]` function, from entry to record. Generated code
/// drives it; the methods are public for that reason only.
#[doc(hidden)]
pub struct FreeStep {
    site: &'static StepMeta,
    call: Option<Call>,
}

/// A call made inside a step: where it records, and what it lends to the
/// steps its body calls in turn.
struct Call {
    ctx: WorkflowContext,
    id: StepId,
    parent: Option<StepId>,
    /// This call as the active step, while its body runs.
    active: Option<Active>,
}

/// How a step's return value reads as an outcome.
#[doc(hidden)]
pub type Classify<R> = fn(&R) -> Option<StepFailure>;

/// An infallible step's outcome.
#[doc(hidden)]
pub fn plain_outcome<R>(_: &R) -> Option<StepFailure> {
    None
}

/// A fallible step's outcome: the caller keeps the error itself; the record
/// keeps its message.
#[doc(hidden)]
pub fn result_outcome<T, E: fmt::Display>(result: &Result<T, E>) -> Option<StepFailure> {
    let error = result.as_ref().err()?;
    Some(StepFailure::Error(StepError::new(ErrorMessage(
        error.to_string(),
    ))))
}

#[derive(Debug)]
struct ErrorMessage(String);

impl fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorMessage {}

impl FreeStep {
    /// Enters a step call: inside a step, this call records as its child.
    pub fn enter(site: &'static StepMeta) -> Self {
        let call = current().map(|Active { ctx, step }| {
            let id = ctx.next_step_id();
            Call {
                active: Some(Active::new(ctx.clone(), Some(id))),
                ctx,
                id,
                parent: step,
            }
        });
        FreeStep { site, call }
    }

    /// Captures the input when the context asks for it.
    pub fn capture(&self, describe: impl FnOnce() -> Option<String>) -> Option<String> {
        match &self.call {
            Some(call) if call.ctx.options().capture_io => describe(),
            _ => None,
        }
    }

    /// Runs a sync body and records it. (The body comes before `describe`:
    /// closures are type-checked in order, and `describe` needs the body's
    /// return type.)
    pub fn run<R>(
        self,
        input: Option<String>,
        classify: Classify<R>,
        body: impl FnOnce() -> R,
        describe: impl FnOnce(&R) -> Option<String>,
    ) -> R {
        let Some(mut call) = self.call else {
            return body();
        };
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| enter(&mut call.active, body))) {
            Ok(out) => {
                let output = capture_output(&call.ctx, &out, describe);
                call.record(self.site, started, classify(&out), input, output);
                out
            }
            Err(payload) => {
                let failure = StepFailure::Panic(panic_message(&*payload).into());
                call.record(self.site, started, Some(failure), input, None);
                resume_unwind(payload)
            }
        }
    }

    /// Wraps an async body so it records itself when it ends.
    pub fn run_async<F, D>(
        self,
        input: Option<String>,
        classify: Classify<F::Output>,
        body: F,
        describe: D,
    ) -> FreeStepFuture<F, D>
    where
        F: Future,
        D: FnOnce(&F::Output) -> Option<String>,
    {
        FreeStepFuture {
            site: self.site,
            run: self.call.map(|call| Running {
                call,
                started: None,
                input,
                describe: Some(describe),
                classify,
            }),
            body,
        }
    }
}

fn capture_output<R>(
    ctx: &WorkflowContext,
    out: &R,
    describe: impl FnOnce(&R) -> Option<String>,
) -> Option<String> {
    if ctx.options().capture_io {
        describe(out)
    } else {
        None
    }
}

impl Call {
    fn record(
        &self,
        site: &StepMeta,
        started: Instant,
        failure: Option<StepFailure>,
        input: Option<String>,
        output: Option<String>,
    ) {
        let outcome = failure.map_or(StepOutcome::Passed, StepOutcome::Failed);
        self.record_outcome(site, started, outcome, input, output);
    }

    fn record_outcome(
        &self,
        site: &StepMeta,
        started: Instant,
        outcome: StepOutcome,
        input: Option<String>,
        output: Option<String>,
    ) {
        let mut record = StepRecord::new(site.kind, site.title, started.elapsed(), outcome);
        record.input = input;
        record.output = output;
        record.id = self.id;
        record.parent = self.parent;
        self.ctx.record(record);
    }
}

struct Running<R, D> {
    call: Call,
    started: Option<Instant>,
    input: Option<String>,
    describe: Option<D>,
    classify: Classify<R>,
}

pin_project! {
    /// The future of an async `#[step]` function.
    #[doc(hidden)]
    pub struct FreeStepFuture<F: Future, D> {
        site: &'static StepMeta,
        run: Option<Running<F::Output, D>>,
        #[pin]
        body: F,
    }

    impl<F: Future, D> PinnedDrop for FreeStepFuture<F, D> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(Running { call, started: Some(started), input, .. }) = this.run.take() {
                call.record_outcome(this.site, started, StepOutcome::Cancelled, input, None);
            }
        }
    }
}

impl<F, D> Future for FreeStepFuture<F, D>
where
    F: Future,
    D: FnOnce(&F::Output) -> Option<String>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(run) = this.run.as_mut() else {
            return this.body.poll(cx);
        };
        let started = *run.started.get_or_insert_with(Instant::now);
        let body = this.body;
        let polled = catch_unwind(AssertUnwindSafe(|| {
            enter(&mut run.call.active, || body.poll(cx))
        }));
        let run = this.run.take().expect("checked above");
        match polled {
            Ok(Poll::Pending) => {
                *this.run = Some(run);
                Poll::Pending
            }
            Ok(Poll::Ready(out)) => {
                let describe = run.describe.expect("a step future ends once");
                let output = capture_output(&run.call.ctx, &out, describe);
                let failure = (run.classify)(&out);
                run.call
                    .record(this.site, started, failure, run.input, output);
                Poll::Ready(out)
            }
            Err(payload) => {
                let failure = StepFailure::Panic(panic_message(&*payload).into());
                run.call
                    .record(this.site, started, Some(failure), run.input, None);
                resume_unwind(payload)
            }
        }
    }
}
