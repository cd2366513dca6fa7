//! The guide's HTTP client scenario: a workflow calling a flaky API with
//! retry and a circuit breaker; watch the breaker open, go half-open and
//! close.
//!
//! `cargo run --example external_api -- --help`

use std::time::Duration;

use workflow_runtime::behavior::CircuitState;
use workflow_runtime::host::Runner;
use workflow_suite::external_api::{ExternalApiWorkflow, Flaky};

const HELP: &str = "external_api: retry and a circuit breaker around an HTTP call

USAGE: cargo run --example external_api -- [--down-for CALLS]

  --down-for CALLS   how many runs the local API is down for (default 4)
  --help             this text

Starts a local API on 127.0.0.1 (an ephemeral port) that answers 503 for a
while, calls it every 300ms, and prints each run and the breaker's state.";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut down_for = 4u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--down-for" => down_for = args.next().ok_or("--down-for needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let flaky = Flaky::default();
    flaky.set_down(true);
    tokio::spawn(flaky.clone().serve(listener));

    let workflow = ExternalApiWorkflow {
        client: reqwest::Client::new(),
        base,
    };
    let runner = Runner::builder().build()?;
    let mut shown = 0;
    for run in 1..=20u32 {
        if run > down_for {
            flaky.set_down(false);
        }
        let outcome = match runner.run(&workflow, format!("run {run}")).await {
            Ok(response) => format!("ok (server call {})", response.call),
            Err(error) => format!("failed: {error}"),
        };
        println!("run {run:>2}: {outcome}");
        let breaker = runner.breakers().get("external-api").map(|b| b.snapshot());
        let state = breaker.as_ref().map_or(CircuitState::Closed, |b| b.state);
        if let Some(breaker) = breaker {
            for t in breaker.recent.iter().skip(shown) {
                println!("        breaker: {} -> {}", t.from, t.to);
            }
            shown = breaker.recent.len();
        }
        if run > down_for && state == CircuitState::Closed && outcome.starts_with("ok") {
            println!("recovered after {} calls to the API", flaky.calls());
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}
