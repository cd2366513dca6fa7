//! Logging like the .NET guide's `LoggingBehavior`: an event when a step
//! starts, completes or fails, carrying who and what.

use tokio::time::Instant;
use tracing::Instrument;

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};

/// The metadata key whose value, when the context holds a `String`,
/// `&'static str` or `Uuid` there, every event carries as
/// `correlation_id` (an API sets it from a request header, through the
/// runner's context factory). A durable run's is its run id unless the
/// factory sets one: the id is journaled, so every process that drives the
/// run logs the same.
pub const CORRELATION_ID: &str = "correlationId";

/// Logs each step through `tracing`, in a scope: the step runs inside an
/// `info` span `step` carrying `workflow.name`, `workflow.execution_id`,
/// `step.kind` (`Given`, `When`, ..), `step.phase` (`setup`, `action`,
/// `assertion`, `cleanup`, `compensation`), `step.title` and, when the
/// context's metadata holds one under [`CORRELATION_ID`],
/// `correlation_id`, so the step body's own log lines carry them too (as
/// the .NET guide's logger scope does). In it: a `debug` event when the
/// step starts, an `info` event when it completes with `elapsed_ms`, an
/// `error` event when it fails with `elapsed_ms` and `error`, each with
/// the same fields for loggers that print no spans. Their target is
/// `workflow_runtime::behavior::logging`, so
/// `RUST_LOG=workflow_runtime::behavior::logging=info` shows them alone.
/// Inside [`Tracing`](super::Tracing)'s span for the step (`Tracing`
/// registered before `Logging`), that span is the scope; registered the
/// other way round, a step body sits in both.
///
/// ```
/// use workflow_runtime::behavior::{Logging, logging::CORRELATION_ID};
/// use workflow_runtime::prelude::*;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::builder("Orders").behavior(Logging).build();
/// ctx.set_metadata(CORRELATION_ID, "req-42".to_string());
/// // Logs "step started" (debug) and "step completed" (info), each with
/// // correlation_id = "req-42".
/// Workflow::given(&ctx, "an order", || 42).await.unwrap();
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Logging;

impl Behavior for Logging {
    fn around<'a>(&'a self, step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        let ctx = step.ctx();
        // Recorded only when present (`None` records nothing).
        let correlation = correlation_id(ctx);
        // Inside `Tracing`'s span for this step, that span is the scope:
        // it carries the same fields, and a second would be exported too.
        let current = tracing::Span::current();
        let in_step = current
            .metadata()
            .is_some_and(|m| m.name() == "step" && m.target() == super::tracing::TARGET);
        let scope = if in_step {
            current
        } else {
            tracing::info_span!(
                "step",
                workflow.name = ctx.name(),
                workflow.execution_id = %ctx.execution_id(),
                step.kind = step.kind().as_str(),
                step.phase = step.kind().phase(),
                step.title = step.title(),
                correlation_id = correlation.as_deref(),
            )
        };
        Box::pin(
            async move {
                let correlation = correlation.as_deref();
                let id = ctx.execution_id();
                let (kind, phase) = (step.kind().as_str(), step.kind().phase());
                tracing::debug!(
                    workflow.name = ctx.name(),
                    workflow.execution_id = %id,
                    step.kind = kind,
                    step.phase = phase,
                    step.title = step.title(),
                    correlation_id = correlation,
                    "step started"
                );
                let started = Instant::now();
                let result = next.run().await;
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                match &result {
                    Ok(()) => tracing::info!(
                        workflow.name = ctx.name(),
                        workflow.execution_id = %id,
                        step.kind = kind,
                        step.phase = phase,
                        step.title = step.title(),
                        correlation_id = correlation,
                        elapsed_ms,
                        "step completed"
                    ),
                    Err(failure) => tracing::error!(
                        workflow.name = ctx.name(),
                        workflow.execution_id = %id,
                        step.kind = kind,
                        step.phase = phase,
                        step.title = step.title(),
                        correlation_id = correlation,
                        elapsed_ms,
                        error = %failure,
                        "step failed"
                    ),
                }
                result
            }
            .instrument(scope),
        )
    }
}

pub(crate) fn correlation_id(ctx: &crate::context::WorkflowContext) -> Option<String> {
    ctx.metadata::<String>(CORRELATION_ID)
        .or_else(|| {
            ctx.metadata::<&'static str>(CORRELATION_ID)
                .map(str::to_owned)
        })
        .or_else(|| {
            ctx.metadata::<uuid::Uuid>(CORRELATION_ID)
                .map(|id| id.to_string())
        })
}
