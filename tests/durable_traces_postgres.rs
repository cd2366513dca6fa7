//! One trace per durable run across real processes: a run enqueued in a
//! request's span by this process is driven by a worker process (this
//! test binary, re-run), which sleeps it, wakes it and finishes it; the
//! worker's spans, exported there and written to the database when it
//! stops, are all in the request's trace, its drives parented on the
//! request's span.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use workflow_runtime::behavior::Tracing;
use workflow_runtime::durable::{RunStatus, StepCtx, Store};
use workflow_runtime::host::{Runner, WorkflowHost};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TempPostgres;

/// Suspends between its steps: the worker drives it twice.
struct Relay;

#[workflow(durable)]
impl Relay {
    #[step(given = "a baton")]
    async fn take(&self, step: &StepCtx, n: u32) -> u32 {
        step.sleep(Duration::from_secs(2)).await;
        n
    }

    #[step(when = "it is passed on")]
    fn pass(&self, n: u32) -> u32 {
        n + 1
    }
}

/// A worker process: this test binary, re-run, until SIGTERM; then it
/// writes the spans it exported to `worker_spans`.
#[test]
fn traces_pg_worker() {
    let Ok(url) = std::env::var("WF_TRACES_PG_URL") else {
        return; // Run as a test of its own: nothing to do.
    };
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("worker")));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::postgres(&url).await.unwrap();
        let pool = store.as_postgres().unwrap().pool().clone();
        let host = WorkflowHost::builder()
            .durable(Relay)
            .behavior(Tracing)
            .store(store)
            .instance("worker", Duration::from_secs(3))
            .worker(2)
            .build()
            .unwrap();
        host.run_until_signal().await;
        provider.force_flush().unwrap();
        for span in exporter.get_finished_spans().unwrap() {
            sqlx::query(
                "INSERT INTO worker_spans (name, trace_id, span_id, parent_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(span.name.to_string())
            .bind(span.span_context.trace_id().to_string())
            .bind(span.span_context.span_id().to_string())
            .bind(span.parent_span_id.to_string())
            .execute(&pool)
            .await
            .unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_in_a_request_is_one_trace_in_the_worker_process_that_drives_it() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = Store::postgres(&pg.url()).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    sqlx::raw_sql(
        "CREATE TABLE worker_spans (name TEXT NOT NULL, trace_id TEXT NOT NULL,
                                    span_id TEXT NOT NULL, parent_id TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();

    // This process: the API that starts the run, in its request's span.
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(InMemorySpanExporter::default())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("api")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let api = Runner::builder()
        .store(store.clone())
        .durable(Relay)
        .instance("api")
        .build()
        .unwrap();
    let request = tracing::info_span!("request", otel.name = "POST /relay");
    let (trace, request_id) = {
        let context = request.context();
        let span = context.span();
        let span = span.span_context();
        (span.trace_id().to_string(), span.span_id().to_string())
    };
    api.enqueue(&Relay::ID, "relay-1", 41)
        .instrument(request)
        .await
        .unwrap();

    let mut worker = Command::new(std::env::current_exe().unwrap())
        .args([
            "traces_pg_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WF_TRACES_PG_URL", pg.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = store.run("relay-1").await.unwrap().unwrap();
        if run.status != RunStatus::Running {
            assert_eq!(run.status, RunStatus::Completed);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never finished the run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(
        worker.wait().unwrap().success(),
        "the worker stopped cleanly"
    );

    let spans: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, trace_id, parent_id FROM worker_spans")
            .fetch_all(&pool)
            .await
            .unwrap();
    let named = |name: &str| spans.iter().filter(|s| s.0 == name).collect::<Vec<_>>();
    // Two drives in the worker (the first step's, then the woken one),
    // each parented on the request's span in this process.
    let drives = named("Relay run");
    assert!(drives.len() >= 2, "{spans:?}");
    for (_, drive_trace, parent) in &drives {
        assert_eq!(drive_trace, &trace);
        assert_eq!(parent, &request_id);
    }
    for title in ["Relay.a baton", "Relay.it is passed on"] {
        assert!(!named(title).is_empty(), "no span for {title}: {spans:?}");
    }
    // Everything the worker traced for the run is in the request's trace.
    let run_spans: Vec<_> = spans.iter().filter(|s| s.0.starts_with("Relay")).collect();
    assert!(run_spans.iter().all(|s| s.1 == trace), "{spans:?}");
}
