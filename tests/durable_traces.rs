//! One trace per durable run: the W3C trace context of the span that
//! starts a run is journaled with it, and every drive of the run (woken
//! from a sleep by the waker, or resumed by another runner after the
//! first one went away) parents its spans on it; and a failed step's span
//! as OpenTelemetry sees it. Spans go through `tracing-opentelemetry` to
//! OpenTelemetry's in-memory exporter.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, TraceId, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use workflow_runtime::behavior::Tracing;
use workflow_runtime::durable::{RunStatus, StepCtx, Store};
use workflow_runtime::host::{Clock, Runner};
use workflow_runtime::prelude::*;

/// Sleeps between its two steps, so each step runs in another drive.
struct Nap;

#[workflow(durable)]
impl Nap {
    #[step(given = "a number")]
    async fn first(&self, step: &StepCtx, n: u32) -> u32 {
        step.sleep(Duration::from_secs(60)).await;
        n
    }

    #[step(when = "it is doubled")]
    async fn second(&self, step: &StepCtx, n: u32) -> u32 {
        step.sleep(Duration::from_secs(60)).await;
        n * 2
    }
}

fn runner(store: &Store, clock: Clock) -> Runner {
    Runner::builder()
        .store(store.clone())
        .clock(clock)
        .behavior(Tracing)
        .durable(Nap)
        .build()
        .unwrap()
}

/// Spans of this thread's runs, exported to memory until the guard drops.
fn exported() -> (
    InMemorySpanExporter,
    SdkTracerProvider,
    tracing::subscriber::DefaultGuard,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (exporter, provider, guard)
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_drive_of_a_run_joins_the_trace_of_the_code_that_started_it() {
    let (exporter, provider, _guard) = exported();

    let store = Store::memory();
    let clock = Clock::following_tokio(SystemTime::now());
    // A request starts the run, then goes away: its span ends.
    let first = runner(&store, clock);
    let request = tracing::info_span!("request", otel.name = "POST /naps");
    let _run = first
        .start(&Nap::ID, "nap-1", 21)
        .instrument(request)
        .await
        .unwrap();
    // The first step suspends on its sleep; the waker wakes it a minute
    // on, in its own task, and the second step suspends too.
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(
        first.status("nap-1").await.unwrap().current_step.as_deref(),
        Some("it is doubled")
    );
    // The first runner goes away; a second one, later, finishes the run.
    drop(first);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let second = runner(&store, clock);
    second.resume().await.unwrap();
    for _ in 0..100 {
        if store.run("nap-1").await.unwrap().unwrap().status != RunStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.run("nap-1").await.unwrap().unwrap().output.as_deref(),
        Some(&b"42"[..])
    );
    drop(second);
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let request = named(&spans, "POST /naps");
    assert_eq!(
        request.len(),
        1,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let trace: TraceId = request[0].span_context.trace_id();
    let request_id: SpanId = request[0].span_context.span_id();
    // The start drove the first step in the request's span; the waker's
    // drive and the second runner's (two of them: the first step again,
    // then the second) each opened a drive span whose parent is the
    // request's, carried by the journal, not by the process.
    let drives = named(&spans, "Nap run");
    assert!(drives.len() >= 2, "{} drive spans", drives.len());
    for drive in &drives {
        assert_eq!(
            drive.span_context.trace_id(),
            trace,
            "a drive in another trace"
        );
        assert_eq!(drive.parent_span_id, request_id);
        assert!(drive.parent_span_is_remote);
    }
    // Every step's span, in whichever drive, is in the request's trace.
    for title in ["Nap.a number", "Nap.it is doubled"] {
        let steps = named(&spans, title);
        assert!(!steps.is_empty(), "no span for {title}");
        for step in steps {
            assert_eq!(
                step.span_context.trace_id(),
                trace,
                "{title} in another trace"
            );
        }
    }
    // Nothing of the run started a trace of its own.
    let traces: std::collections::HashSet<TraceId> =
        spans.iter().map(|s| s.span_context.trace_id()).collect();
    assert_eq!(traces.len(), 1, "{} traces", traces.len());
}

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_step_is_its_spans_exception_with_kind_phase_and_correlation_id() {
    let (exporter, provider, _guard) = exported();
    let ctx = WorkflowContext::builder("Pay").behavior(Tracing).build();
    ctx.set_metadata(
        workflow_runtime::behavior::logging::CORRELATION_ID,
        "req-9".to_string(),
    );
    let failed = Workflow::given(&ctx, "an order", || 1)
        .try_when("charged", |_| Err::<u32, _>(Declined))
        .await;
    assert!(failed.is_err());
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let charged = named(&spans, "Pay.charged");
    assert_eq!(charged.len(), 1);
    let attribute = |name: &str| {
        charged[0]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == name)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("step.kind").as_deref(), Some("When"));
    assert_eq!(attribute("step.phase").as_deref(), Some("action"));
    assert_eq!(attribute("correlation_id").as_deref(), Some("req-9"));
    let exception = charged[0]
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("an exception event");
    let message = exception
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "exception.message")
        .map(|kv| kv.value.to_string());
    assert_eq!(message.as_deref(), Some("card declined"));
}
