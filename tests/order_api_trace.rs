//! A caller's W3C trace context reaches its order's run: the order API's
//! request span takes the caller's `traceparent` as its parent, and the
//! run journals it.
//!
//! Alone in its binary: tracing caches per-callsite interest globally, and
//! a test running beside it without a subscriber would disable the
//! request's span.

use opentelemetry::trace::TracerProvider;
use tracing_subscriber::layer::SubscriberExt;

#[allow(dead_code)] // each test binary uses part of it
mod console_server;

#[tokio::test]
async fn a_callers_trace_context_reaches_its_orders_run() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = console_server::start(Vec::new()).await;
    let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = server
        .client
        .post(format!("{}/api/orders", server.base))
        .header("traceparent", format!("00-{caller}-00f067aa0ba902b7-01"))
        .header("idempotency-key", "traced-1")
        .json(&serde_json::json!({
            "customer_id": "c-1",
            "items": [{"sku": "A", "quantity": 1, "unit_cents": 500}],
            "payment_method": "card",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let run = server
        .app
        .runner()
        .store()
        .unwrap()
        .run("c-1/traced-1")
        .await
        .unwrap()
        .unwrap();
    let trace = run.trace.expect("the run journaled a trace context");
    assert!(trace.starts_with(&format!("00-{caller}-")), "{trace}");
    // Its parent is the request's span, not the caller's.
    assert!(!trace.contains("00f067aa0ba902b7"), "{trace}");
}
