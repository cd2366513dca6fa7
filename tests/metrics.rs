//! The metrics a run emits, captured by an in-memory recorder.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use workflow_runtime::behavior::{Metrics, Retry};
use workflow_runtime::prelude::*;

#[allow(dead_code)] // each test binary uses part of it
mod common;

use common::{Declined, paused_runtime as runtime};

async fn order_run(ctx: &WorkflowContext) -> Result<u32, WorkflowError> {
    Workflow::given(ctx, "an order", || 40)
        .when("priced", |n| n + 2)
        .try_when("charged", |_| Err::<u32, _>(Declined))
        .await
}

// ---- metrics ----------------------------------------------------------

type Series = BTreeMap<String, Vec<f64>>;

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Series>>);

struct Handle(String, Recorded);

impl Handle {
    /// Keeps every value recorded, in order.
    fn push(&self, value: f64) {
        let mut series = self.1.0.lock().unwrap();
        series.entry(self.0.clone()).or_default().push(value);
    }
}

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }
    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.push(value);
    }
    fn decrement(&self, value: f64) {
        self.push(-value);
    }
    fn set(&self, value: f64) {
        self.push(value);
    }
}

impl Recorded {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        let labels: Vec<_> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Handle(
            format!("{}{{{}}}", key.name(), labels.join(",")),
            self.clone(),
        ))
    }
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

#[test]
fn steps_retries_and_breakers_report_through_the_metrics_facade() {
    use std::time::Duration;
    use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker};

    let recorded = Recorded::default();
    let ctx = WorkflowContext::builder("CreateOrder")
        .behavior(Metrics)
        .build();
    let breaker = CircuitBreaker::new("bank", BreakerConfig::new(1, Duration::from_secs(5)));
    metrics::with_local_recorder(&recorded, || {
        runtime().block_on(async {
            let _ = order_run(&ctx).await;
            let _ = Workflow::given(&ctx, "text", || "x")
                .try_when("parsed", |s| s.parse::<u8>())
                .retry(Retry::max_attempts(3))
                .circuit_breaker(breaker.clone())
                .await;
        })
    });
    let series = recorded.0.lock().unwrap();
    let count = |key: &str| series.get(key).map_or(0.0, |v| v.iter().sum());
    let wf = "workflow=CreateOrder";
    assert_eq!(
        count(&format!(
            "workflow_steps_total{{{wf},step=an order,kind=Given,phase=setup,status=success}}"
        )),
        1.0
    );
    assert_eq!(
        count(&format!(
            "workflow_steps_total{{{wf},step=text,kind=Given,phase=setup,status=success}}"
        )),
        1.0
    );
    assert_eq!(
        count(&format!(
            "workflow_steps_total{{{wf},step=priced,kind=When,phase=action,status=success}}"
        )),
        1.0
    );
    assert_eq!(
        count(&format!(
            "workflow_steps_total{{{wf},step=charged,kind=When,phase=action,status=error}}"
        )),
        1.0
    );
    assert_eq!(
        count(&format!(
            "workflow_steps_total{{{wf},step=parsed,kind=When,phase=action,status=error}}"
        )),
        1.0
    );
    let durations = &series[&format!(
        "workflow_step_duration_seconds{{{wf},step=charged,kind=When,phase=action,status=error}}"
    )];
    assert_eq!(durations.len(), 1);
    // The breaker opens on the first failure; both retries are rejected by
    // it, so the body itself ran once.
    assert_eq!(
        count(&format!("workflow_retries_total{{{wf},step=parsed}}")),
        2.0
    );
    assert_eq!(ctx.steps().last().unwrap().attempts, 1);
    assert_eq!(series["workflow_circuit_state{breaker=bank}"], [2.0]);
}
