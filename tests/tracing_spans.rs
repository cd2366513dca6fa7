//! The tracing spans a run emits, captured by a subscriber layer.
//!
//! Alone in its binary: tracing caches per-callsite interest globally, and a
//! test running beside it without a subscriber would hide its spans.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::Instrument;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use workflow_runtime::behavior::logging::CORRELATION_ID;
use workflow_runtime::behavior::{Logging, Tracing, workflow_span};
use workflow_runtime::prelude::*;

#[allow(dead_code)] // each test binary uses part of it
mod common;

use common::{Declined, paused_runtime as runtime};

async fn order_run(ctx: &WorkflowContext) -> Result<u32, WorkflowError> {
    Workflow::given(ctx, "an order", || 40)
        .when("priced", |n| n + 2)
        .try_when("charged", |_| Err::<u32, _>(Declined))
        .result()
        .instrument(workflow_span(ctx))
        .await
}

// ---- tracing ----------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct SpanRecord {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

/// An event's span and fields.
type Event = (Option<String>, BTreeMap<String, String>);

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    events: Arc<Mutex<Vec<Event>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

#[derive(Clone, Copy)]
struct Index(usize);

impl<S> tracing_subscriber::Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let span = ctx.span(id).unwrap();
        let mut record = SpanRecord {
            name: attrs.metadata().name().to_owned(),
            parent: span.parent().map(|p| p.name().to_owned()),
            ..SpanRecord::default()
        };
        attrs.record(&mut Fields(&mut record.fields));
        let mut spans = self.spans.lock().unwrap();
        span.extensions_mut().insert(Index(spans.len()));
        spans.push(record);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let Index(at) = *ctx.span(id).unwrap().extensions().get::<Index>().unwrap();
        values.record(&mut Fields(&mut self.spans.lock().unwrap()[at].fields));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        fields.insert("level".into(), event.metadata().level().to_string());
        let parent = ctx.event_span(event).map(|s| s.name().to_owned());
        self.events.lock().unwrap().push((parent, fields));
    }
}

/// What `runs` emit through a fresh runner, driven to their end on a
/// paused clock under a capturing subscriber.
fn captured_under_a_runner<F>(runs: impl FnOnce(workflow_runtime::host::Runner) -> F) -> Capture
where
    F: std::future::Future<Output = ()>,
{
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let runner = workflow_runtime::host::Runner::builder().build().unwrap();
    tracing::subscriber::with_default(subscriber, || runtime().block_on(runs(runner)));
    capture
}

/// A runner runs each workflow in its own span, which ends with the
/// run's status as OpenTelemetry reads it.
#[test]
fn a_runners_run_span_ends_with_the_runs_status() {
    let capture = captured_under_a_runner(|runner| async move {
        let passed = runner
            .run_fn("Passes", |ctx| async move {
                Workflow::given(&ctx, "one", || 1).await
            })
            .await;
        assert_eq!(passed.unwrap(), 1);
        let failed = runner
            .run_fn("Fails", |ctx| async move {
                Workflow::given(&ctx, "one", || 1)
                    .try_when("charged", |_| Err::<u32, _>(Declined))
                    .await
            })
            .await;
        assert!(failed.is_err());
    });
    let spans = capture.spans.lock().unwrap();
    let runs: Vec<_> = spans
        .iter()
        .filter(|span| span.name == "workflow")
        .map(|span| {
            (
                span.fields["otel.name"].as_str(),
                span.fields["otel.status_code"].as_str(),
            )
        })
        .collect();
    assert_eq!(runs, [("Passes", "OK"), ("Fails", "ERROR")]);
}

/// Says so, as a tracing event, when it is dropped.
struct SaysWhenDropped;

impl Drop for SaysWhenDropped {
    fn drop(&mut self) {
        tracing::info!(what = "the step's body", "dropped");
    }
}

/// A run dropped while its step waits (a timeout around it) drops that
/// step's body inside the run's span, as it polled it there.
#[test]
fn a_run_dropped_mid_step_drops_its_body_in_the_runs_span() {
    let capture = captured_under_a_runner(|runner| async move {
        let run = runner.run_fn("Dropped", |ctx| async move {
            Workflow::given_async(&ctx, "waits", || async {
                let _says = SaysWhenDropped;
                tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
                1
            })
            .await
        });
        let timed_out = tokio::time::timeout(std::time::Duration::from_secs(1), run).await;
        assert!(timed_out.is_err());
    });
    let events = capture.events.lock().unwrap();
    let dropped: Vec<_> = events
        .iter()
        .filter(|(_, fields)| fields.get("what").map(String::as_str) == Some("the step's body"))
        .map(|(span, _)| span.as_deref())
        .collect();
    assert_eq!(dropped, [Some("workflow")]);
}

#[test]
fn each_run_is_a_span_and_each_step_a_child_span_with_otel_fields() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let ctx = WorkflowContext::builder("CreateOrder")
        .behavior(Tracing)
        .build();
    let result =
        tracing::subscriber::with_default(subscriber, || runtime().block_on(order_run(&ctx)));
    assert!(result.is_err());

    let spans = capture.spans.lock().unwrap();
    let tree: Vec<_> = spans
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.parent.as_deref(),
                s.fields["otel.name"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        tree,
        [
            ("workflow", None, "CreateOrder"),
            ("step", Some("workflow"), "CreateOrder.an order"),
            ("step", Some("workflow"), "CreateOrder.priced"),
            ("step", Some("workflow"), "CreateOrder.charged"),
        ]
    );
    let id = ctx.execution_id().to_string();
    for step in &spans[1..] {
        assert_eq!(step.fields["workflow.name"], "CreateOrder");
        assert_eq!(step.fields["workflow.execution_id"], id);
        assert_eq!(step.fields["step.attempts"], "1");
        assert_eq!(step.fields["otel.kind"], "internal");
    }
    let charged = &spans[3].fields;
    assert_eq!(charged["step.kind"], "When");
    assert_eq!(charged["step.phase"], "action");
    assert_eq!(spans[1].fields["step.phase"], "setup");
    assert_eq!(charged["step.title"], "charged");
    assert_eq!(charged["otel.status_code"], "ERROR");
    assert_eq!(charged["error.message"], "card declined");
    assert_eq!(spans[2].fields["otel.status_code"], "OK");

    let events = capture.events.lock().unwrap();
    // The failure is the span's exception, as OpenTelemetry names one.
    let failures: Vec<_> = events
        .iter()
        .filter(|(_, f)| f.get("message").map(String::as_str) == Some("exception"))
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0.as_deref(), Some("step"));
    assert_eq!(failures[0].1["exception.message"], "card declined");
    assert_eq!(failures[0].1["exception.type"], "error");
}

#[test]
fn logging_tells_when_each_step_starts_completes_or_fails() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let ctx = WorkflowContext::builder("CreateOrder")
        .behavior(Logging)
        .build();
    ctx.set_metadata(CORRELATION_ID, "req-42".to_string());
    let result =
        tracing::subscriber::with_default(subscriber, || runtime().block_on(order_run(&ctx)));
    assert!(result.is_err());

    let events = capture.events.lock().unwrap();
    let said: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|(_, f)| {
            (
                f["level"].as_str(),
                f["message"].as_str(),
                f["step.title"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("DEBUG", "step started", "an order"),
            ("INFO", "step completed", "an order"),
            ("DEBUG", "step started", "priced"),
            ("INFO", "step completed", "priced"),
            ("DEBUG", "step started", "charged"),
            ("ERROR", "step failed", "charged"),
        ]
    );
    let id = ctx.execution_id().to_string();
    for (_, fields) in events.iter() {
        assert_eq!(fields["workflow.name"], "CreateOrder");
        assert_eq!(fields["workflow.execution_id"], id);
        assert_eq!(fields["correlation_id"], "req-42");
    }
    assert_eq!(events[4].1["step.kind"], "When");
    assert_eq!(events[4].1["step.phase"], "action");
    assert!(events[1].1.contains_key("elapsed_ms"));
    assert!(!events[0].1.contains_key("elapsed_ms"));
    assert_eq!(events[5].1["error"], "card declined");
    assert!(events[5].1.contains_key("elapsed_ms"));
}

#[test]
fn a_step_body_logs_inside_the_logging_scope_and_tracing_spans_carry_the_correlation_id() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let ctx = WorkflowContext::builder("CreateOrder")
        .behavior(Logging)
        .build();
    ctx.set_metadata(CORRELATION_ID, "req-7".to_string());
    let traced = WorkflowContext::builder("CreateOrder")
        .behavior(Tracing)
        .build();
    traced.set_metadata(CORRELATION_ID, "req-8".to_string());
    tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            Workflow::given(&ctx, "an order", || 40)
                .when("charged", |n| {
                    tracing::info!("calling the bank");
                    n + 2
                })
                .await
                .unwrap();
            Workflow::given(&traced, "an order", || 1).await.unwrap();
        })
    });
    let spans = capture.spans.lock().unwrap();
    let scopes: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == "step").collect();
    assert_eq!(scopes.len(), 3, "{spans:?}");
    let charged = scopes
        .iter()
        .find(|s| s.fields["step.title"] == "charged")
        .unwrap();
    assert_eq!(charged.fields["workflow.name"], "CreateOrder");
    assert_eq!(charged.fields["step.kind"], "When");
    assert_eq!(charged.fields["step.phase"], "action");
    assert_eq!(charged.fields["correlation_id"], "req-7");
    assert_eq!(
        scopes[2].fields["correlation_id"], "req-8",
        "the Tracing span"
    );
    drop(spans);
    // The body's own line sits in the step's scope, so it carries them.
    let events = capture.events.lock().unwrap();
    let body = events
        .iter()
        .find(|(_, f)| f.get("message").map(String::as_str) == Some("calling the bank"))
        .unwrap();
    assert_eq!(body.0.as_deref(), Some("step"));
    drop(events);

    // With `Tracing` outside it, `Logging` uses its span: one per step.
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let both = WorkflowContext::builder("CreateOrder")
        .behavior(Tracing)
        .behavior(Logging)
        .build();
    tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            Workflow::given(&both, "an order", || 40)
                .when("priced", |n| n + 2)
                .await
                .unwrap();
        })
    });
    let spans = capture.spans.lock().unwrap();
    let steps: Vec<&str> = spans
        .iter()
        .filter(|s| s.name == "step")
        .map(|s| s.fields["step.title"].as_str())
        .collect();
    assert_eq!(steps, ["an order", "priced"]);
}

struct Ship;

#[workflow(durable)]
impl Ship {
    #[step(given = "a parcel")]
    fn parcel(&self, weight: u32) -> u32 {
        weight
    }

    #[step(when = "labelled")]
    async fn label(&self, weight: u32) -> String {
        format!("{weight}kg")
    }
}

/// The correlation ids of the `Logging` events a durable run of `Ship`
/// emits under a runner made by `builder`.
fn durable_correlation_ids(
    builder: workflow_runtime::host::RunnerBuilder,
    run_id: &str,
) -> Vec<String> {
    use workflow_runtime::durable::{Durable, Store};
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let runner = builder
        .store(Store::memory())
        .durable(Ship)
        .behavior(Logging)
        .build()
        .unwrap();
    let label = tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            let run = runner.start(&Ship::ID, run_id, 3).await.unwrap();
            run.result().await.unwrap()
        })
    });
    assert_eq!(label, "3kg");
    let events = capture.events.lock().unwrap();
    assert_eq!(events.len(), 4, "two steps, started and completed");
    events
        .iter()
        .map(|(_, fields)| fields.get("correlation_id").cloned().unwrap_or_default())
        .collect()
}

#[test]
fn a_durable_run_logs_its_run_id_as_its_correlation_id_unless_the_factory_sets_one() {
    use workflow_runtime::host::Runner;
    let ids = durable_correlation_ids(Runner::builder(), "ship-7");
    assert_eq!(ids, ["ship-7"; 4]);
    let factory = Runner::builder()
        .context_factory(|ctx| ctx.set_metadata(CORRELATION_ID, "req-9".to_string()));
    assert_eq!(durable_correlation_ids(factory, "ship-8"), ["req-9"; 4]);
}
