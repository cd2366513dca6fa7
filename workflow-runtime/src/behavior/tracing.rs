//! Tracing: a span per workflow run and per step, with OpenTelemetry's
//! field names.

use tracing::field::{Empty, display};
use tracing::{Instrument, Span};

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};

/// The target of the spans and events this module makes.
pub(crate) const TARGET: &str = module_path!();
use crate::context::WorkflowContext;

/// The span of one workflow run; step spans nest inside it. Instrument the
/// run with it (the runner does).
///
/// ```
/// use tracing::Instrument;
/// use workflow_runtime::behavior::workflow_span;
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("Traced");
/// let n = Workflow::given(&ctx, "one", || 1)
///     .result()
///     .instrument(workflow_span(&ctx))
///     .await;
/// assert_eq!(n.unwrap(), 1);
/// # }
/// ```
pub fn workflow_span(ctx: &WorkflowContext) -> Span {
    tracing::info_span!(
        "workflow",
        otel.name = ctx.name(),
        otel.kind = "internal",
        workflow.name = ctx.name(),
        workflow.execution_id = %ctx.execution_id(),
        otel.status_code = Empty,
    )
}

/// Runs each step in a span `step` with `otel.name`
/// (`"CreateOrder.charge card"`: the workflow and the step's title, as the
/// .NET guide names its activities), `otel.kind` (`internal`),
/// `workflow.name`, `workflow.execution_id`, `step.kind` (`Given`,
/// `When`, ..), `step.phase` (`setup`, `action`, `assertion`, `cleanup`,
/// `compensation`), `step.title`, `correlation_id` (when the context has
/// one), and at the end `otel.status_code` (`OK` / `ERROR`),
/// `step.attempts` and, on failure, `error.message`, plus an event named
/// `exception` with `exception.type` and `exception.message`: what
/// OpenTelemetry reads as the span's exception. `tracing` span names are
/// static, so the name an OpenTelemetry exporter shows comes from
/// `otel.name`.
///
/// ```
/// use workflow_runtime::WorkflowContext;
/// use workflow_runtime::behavior::Tracing;
/// let ctx = WorkflowContext::builder("Traced").behavior(Tracing).build();
/// # drop(ctx);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Tracing;

impl Behavior for Tracing {
    fn around<'a>(&'a self, step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        let ctx = step.ctx();
        let correlation = super::logging::correlation_id(ctx);
        let span = tracing::info_span!(
            "step",
            otel.name = %format_args!("{}.{}", ctx.name(), step.title()),
            otel.kind = "internal",
            workflow.name = ctx.name(),
            workflow.execution_id = %ctx.execution_id(),
            step.kind = step.kind().as_str(),
            step.phase = step.kind().phase(),
            step.title = step.title(),
            correlation_id = correlation.as_deref(),
            step.attempts = Empty,
            otel.status_code = Empty,
            error.message = Empty,
        );
        Box::pin(async move {
            // The layers inside start in the span too (`Logging` reads it
            // as its scope).
            let inner = span.in_scope(|| next.run());
            let result = inner.instrument(span.clone()).await;
            span.record("step.attempts", step.attempts());
            match &result {
                Ok(()) => {
                    span.record("otel.status_code", "OK");
                }
                Err(failure) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.message", display(failure));
                    tracing::error!(
                        parent: &span,
                        exception.r#type = failure.kind(),
                        exception.message = %failure,
                        "exception"
                    );
                }
            }
            result
        })
    }
}
