//! The guide's "serve the cached price when the pricing service is down":
//! a pricing workflow whose cache answers fresh prices without a call and
//! the last price while the local pricing API fails.
//!
//! `cargo run --example pricing -- --help`

use std::time::Duration;

use workflow_runtime::host::Runner;
use workflow_suite::external_api::{Flaky, PricingWorkflow};

const HELP: &str = "pricing: a cache that serves the last price while the pricing API is down

USAGE: cargo run --example pricing -- [--fresh-for SECONDS]

  --fresh-for SECONDS   how long a price is served without a call (default 1)
  --help                this text

Starts a local pricing API on 127.0.0.1 (an ephemeral port), prices a mug
every 400ms, takes the API down for a while, and prints where each price
came from.";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut fresh_for = Duration::from_secs(1);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--fresh-for" => {
                let secs: f64 = args.next().ok_or("--fresh-for needs seconds")?.parse()?;
                fresh_for = Duration::try_from_secs_f64(secs)?;
            }
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let api = Flaky::default();
    tokio::spawn(api.clone().serve(listener));

    let pricing = PricingWorkflow::new(reqwest::Client::new(), base, fresh_for);
    let runner = Runner::builder().build()?;
    for round in 1..=12 {
        let down = (5..=9).contains(&round);
        api.set_down(down);
        let calls = api.calls();
        let outcome = match runner.run(&pricing, "mug".into()).await {
            Ok(price) => {
                let from = match (api.calls() > calls, down) {
                    (false, _) => "the cache (fresh)",
                    (true, false) => "the API",
                    (true, true) => "the cache (stale: the API failed)",
                };
                format!("{} cents, from {from}", price.cents)
            }
            Err(error) => format!("failed: {error}"),
        };
        let state = if down { "down" } else { "up" };
        println!("round {round:>2} (API {state:>4}): {outcome}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    Ok(())
}
