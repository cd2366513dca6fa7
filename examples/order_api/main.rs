//! The guide's web API on axum: `POST /api/orders`, `GET /api/orders/{id}`,
//! `GET /health`, `GET /metrics`, orders in SQLite, and the workflow
//! console at `/workflows`.
//!
//! `cargo run --example order_api -- --help`

use std::net::SocketAddr;
use std::path::PathBuf;

use workflow_suite::order_api::{App, Config, DEFAULT_ADDR, Operator};

const HELP: &str = "order_api: the create-order workflow behind an HTTP API

USAGE: cargo run --example order_api -- [--addr HOST:PORT] [--db PATH] [--operator NAME:TOKEN] [--mermaid URL] [--trace-stdout]

  --addr HOST:PORT   where to listen (default 127.0.0.1:3000; env ORDER_API_ADDR)
  --db PATH          the SQLite file, created on first start (default orders.db; env ORDER_API_DB)
  --operator NAME:TOKEN
                     lets NAME act on runs in the console (/workflows) when the
                     browser's cookie order_api_operator holds TOKEN (8 characters
                     or more); repeatable (or env ORDER_API_OPERATORS, comma-separated,
                     which keeps tokens out of `ps`). Without one it is read-only.
  --mermaid URL      draw the console's diagrams with the Mermaid ES module at URL
                     (e.g. https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs)
  --trace-stdout     export OpenTelemetry spans to stdout: one trace per order,
                     from the request through every step (see the README for OTLP)
  --help             this text

Try:
  curl -i -X POST localhost:3000/api/orders -H 'content-type: application/json' \\
       -d '{\"customer_id\":\"c-1\",\"items\":[{\"sku\":\"A\",\"quantity\":2,\"unit_cents\":500}],\"payment_method\":\"card\"}'
  curl -s localhost:3000/health
  curl -s localhost:3000/metrics
  open http://localhost:3000/workflows";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr: SocketAddr = std::env::var("ORDER_API_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_ADDR);
    let mut config = Config::default();
    if let Ok(db) = std::env::var("ORDER_API_DB") {
        config.database = PathBuf::from(db);
    }
    let mut trace_stdout = false;
    let from_env = std::env::var("ORDER_API_OPERATORS").unwrap_or_default();
    let mut args = from_env
        .split(',')
        .filter(|o| !o.is_empty())
        .flat_map(|o| ["--operator".to_owned(), o.to_owned()])
        .collect::<Vec<_>>()
        .into_iter()
        .chain(std::env::args().skip(1));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--addr" => addr = args.next().ok_or("--addr needs HOST:PORT")?.parse()?,
            "--db" => config.database = args.next().ok_or("--db needs a path")?.into(),
            "--trace-stdout" => trace_stdout = true,
            "--mermaid" => config.mermaid = Some(args.next().ok_or("--mermaid needs a URL")?),
            "--operator" => {
                let given = args.next().ok_or("--operator needs NAME:TOKEN")?;
                let (name, token) = given
                    .split_once(':')
                    .filter(|(name, token)| !name.is_empty() && token.len() >= 8)
                    .ok_or("--operator needs NAME:TOKEN, the token at least 8 characters")?;
                config.operators.push(Operator {
                    name: name.to_owned(),
                    token: token.to_owned(),
                });
            }
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Spans to OpenTelemetry when asked: the request's span is journaled
    // with its order's run, so the run's steps join the request's trace.
    let provider = trace_stdout.then(|| {
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
            .build()
    });
    let otel = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("order_api"))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .with(otel)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let app = App::new(&config).await?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, db = %config.database.display(), "order API listening");
        app.serve(listener, workflow_runtime::host::stop_signal())
            .await?;
        Ok(())
    })
}
