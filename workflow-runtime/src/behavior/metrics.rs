//! Metrics through the `metrics` facade: counters and histograms per step.

use metrics::SharedString;
use tokio::time::Instant;

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};
use crate::error::StepFailure;

/// Records `workflow_steps_total` (a counter) and
/// `workflow_step_duration_seconds` (a histogram) for every step, labelled
/// `workflow`, `step` (its title), `kind` (`Given`, `When`, ..), `phase`
/// (`setup`, `action`, `assertion`, `cleanup`, `compensation`: see
/// [`StepKind::phase`](crate::StepKind::phase)) and `status` (`success`,
/// `error` or `timeout`). With no recorder installed
/// the facade drops them at the cost of a check.
///
/// Retries (`workflow_retries_total`) and breaker states
/// (`workflow_circuit_state`) are reported by those behaviors themselves.
///
/// ```
/// use workflow_runtime::WorkflowContext;
/// use workflow_runtime::behavior::Metrics;
/// let ctx = WorkflowContext::builder("Measured").behavior(Metrics).build();
/// # drop(ctx);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Metrics;

/// The `workflow` and `step` labels, sharing the strings the step holds.
pub(crate) fn labels(step: &StepScope) -> (SharedString, SharedString) {
    let workflow = step.ctx().name_label();
    let title = SharedString::from_owned(step.title().to_owned());
    (workflow, title)
}

impl Behavior for Metrics {
    fn around<'a>(&'a self, step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            let started = Instant::now();
            let result = next.run().await;
            let status = match &result {
                Ok(()) => "success",
                Err(StepFailure::TimedOut(_)) => "timeout",
                Err(_) => "error",
            };
            let (workflow, title) = labels(step);
            let labels = [
                ("workflow", workflow),
                ("step", title),
                ("kind", SharedString::const_str(step.kind().as_str())),
                ("phase", SharedString::const_str(step.kind().phase())),
                ("status", SharedString::const_str(status)),
            ];
            metrics::counter!("workflow_steps_total", &labels).increment(1);
            metrics::histogram!("workflow_step_duration_seconds", &labels)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
