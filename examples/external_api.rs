//! The guide's HTTP client scenario: a workflow calling a flaky API with
//! a circuit breaker around the call; watch the breaker open, go half-open
//! and close.
//!
//! `cargo run --example external_api -- --help`

use std::time::Duration;

use workflow_runtime::behavior::{BreakerConfig, CircuitState};
use workflow_runtime::host::Runner;
use workflow_suite::external_api::{ExternalApiWorkflow, Flaky};

const HELP: &str = "external_api: a circuit breaker around an HTTP call

USAGE: cargo run --example external_api -- [--down-for CALLS] [--open-for SECONDS]

  --down-for CALLS     how many runs the local API is down for (default 4)
  --open-for SECONDS   how long the breaker stays open (default 60, the guide's minute)
  --help               this text

Starts a local API on 127.0.0.1 (an ephemeral port) that answers 503 for a
while, calls it every 300ms, and prints each run and the breaker's state.";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut down_for = 4u32;
    let mut open_for = Duration::from_secs(60);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--down-for" => down_for = args.next().ok_or("--down-for needs a number")?.parse()?,
            "--open-for" => {
                let secs: f64 = args.next().ok_or("--open-for needs seconds")?.parse()?;
                open_for = Duration::try_from_secs_f64(secs)?;
            }
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let flaky = Flaky::default();
    flaky.set_down(true);
    tokio::spawn(flaky.clone().serve(listener));

    let workflow = ExternalApiWorkflow::with_breaker(
        reqwest::Client::new(),
        base,
        BreakerConfig::new(3, open_for),
    );
    let runner = Runner::builder().build()?;
    let mut shown = 0;
    let runs = 20 + (open_for.as_secs_f64() / 0.3).ceil() as u32;
    for run in 1..=runs {
        if run > down_for {
            flaky.set_down(false);
        }
        let outcome = match runner.run(&workflow, format!("run {run}")).await {
            Ok(response) => format!("ok (server call {})", response.call),
            Err(error) => format!("failed: {error}"),
        };
        println!("run {run:>2}: {outcome}");
        let breaker = workflow.breaker.snapshot();
        let state = breaker.state;
        for t in breaker.recent.iter().skip(shown) {
            println!("        breaker: {} -> {}", t.from, t.to);
        }
        shown = breaker.recent.len();
        if run > down_for && state == CircuitState::Closed && outcome.starts_with("ok") {
            println!("recovered after {} calls to the API", flaky.calls());
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}
