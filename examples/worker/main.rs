//! The guide's worker service: pending-order processing, a health monitor
//! and a metrics collector as recurring workflows, until SIGTERM or ctrl-c. Payments
//! are durable runs journaled in the orders file: kill the worker
//! mid-batch and start it again, and it finishes the batch without
//! charging twice.
//!
//! `cargo run --example worker -- --help`

use std::path::PathBuf;
use std::time::Duration;

use workflow_suite::worker::{Worker, WorkerConfig};

const HELP: &str = "worker: recurring workflows over the orders database, until SIGTERM or ctrl-c

USAGE: cargo run --example worker -- [--db PATH] [--gateway PATH] [--every SECONDS] [--shutdown-timeout SECONDS]

  --db PATH                  the SQLite file the order API writes, and the payments' journal (default orders.db; env WORKER_DB)
  --gateway PATH             the simulated card gateway's SQLite file (default gateway.db beside --db)
  --every SECONDS            how often each workflow runs (default 30; env WORKER_EVERY)
  --shutdown-timeout SECONDS grace for in-flight runs on SIGTERM or ctrl-c (default 10)
  --help                     this text";

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = PathBuf::from(std::env::var("WORKER_DB").unwrap_or_else(|_| "orders.db".into()));
    let mut config = WorkerConfig::default();
    if let Ok(every) = std::env::var("WORKER_EVERY") {
        config.every = seconds(&every)?;
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--db" => db = value()?.into(),
            "--gateway" => config.gateway = Some(value()?.into()),
            "--every" => config.every = seconds(&value()?)?,
            "--shutdown-timeout" => config.shutdown_timeout = seconds(&value()?)?,
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let worker = Worker::open(&db, &config).await?;
        tracing::info!(db = %db.display(), every = ?config.every, "worker started; SIGTERM or ctrl-c stops it");
        let summary = worker.host.run_until_signal().await;
        tracing::info!(?summary, "worker stopped");
        Ok(())
    })
}
