//! One trace per durable run, across processes: the W3C trace context of
//! the span that starts a run is journaled with it (`traceparent`), and
//! each drive of the run, in whichever process, runs in a span whose
//! parent is that context. Without the `opentelemetry` feature a run
//! carries no context and its drives open no extra span.

use super::store::RunRow;

/// The `traceparent` of the current span, if it is in a sampled or
/// recorded OpenTelemetry trace.
#[cfg(feature = "opentelemetry")]
pub(crate) fn current() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags().to_u8()
        )
    })
}

#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn current() -> Option<String> {
    None
}

/// The span one drive of `run` runs in: a child of the context its
/// starter journaled. `None` when the run carries none (or it does not
/// read as a `traceparent`).
#[cfg(feature = "opentelemetry")]
pub(crate) fn drive_span(run: &RunRow) -> Option<tracing::Span> {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let parts: Vec<&str> = run.trace.as_deref()?.split('-').collect();
    let [_version, trace, span, flags] = parts.as_slice() else {
        return None;
    };
    let parent = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    if !parent.is_valid() {
        return None;
    }
    let drive = tracing::info_span!(
        "durable_run",
        otel.name = %format_args!("{} run", run.workflow),
        otel.kind = "internal",
        workflow.name = %run.workflow,
        workflow.run_id = %run.id,
    );
    let _ = drive.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    Some(drive)
}

#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn drive_span(run: &RunRow) -> Option<tracing::Span> {
    let _ = run;
    None
}
