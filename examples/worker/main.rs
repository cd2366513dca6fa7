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

USAGE: cargo run --example worker -- [--config FILE] [--db PATH] [--gateway PATH] [--every SECONDS] [--shutdown-timeout SECONDS]

  --config FILE              a TOML file: every, gateway, gateway_latency, a [workflow] table of
                             WorkflowOptions and a [host] table of HostOptions (durations as \"30s\" or
                             \"00:00:30\", keys in snake_case or PascalCase); keys left out keep their
                             defaults; then environment variables WORKFLOW__KEY override it
                             (WORKFLOW__HOST__MAX_PARALLELISM=8), then WORKER_EVERY and the flags below
  --db PATH                  the SQLite file the order API writes, and the payments' journal (default orders.db; env WORKER_DB)
  --gateway PATH             the simulated card gateway's SQLite file (default gateway.db beside --db)
  --every SECONDS            how often each workflow runs (default 30; env WORKER_EVERY)
  --shutdown-timeout SECONDS grace for in-flight runs on SIGTERM or ctrl-c (default 30; [host] shutdown_timeout)
  --help                     this text";

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("worker: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = PathBuf::from(std::env::var("WORKER_DB").unwrap_or_else(|_| "orders.db".into()));
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return Ok(());
    }
    // The defaults, the file, then WORKFLOW__… variables; flags last.
    let file = match args.iter().position(|a| a == "--config") {
        Some(at) => Some(PathBuf::from(
            args.get(at + 1).ok_or("--config needs a value")?,
        )),
        None => None,
    };
    let mut config = WorkerConfig::load(file.as_deref())?;
    if let Ok(every) = std::env::var("WORKER_EVERY") {
        config.every = seconds(&every)?;
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--config" => drop(value()?),
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--db" => db = value()?.into(),
            "--gateway" => config.gateway = Some(value()?.into()),
            "--every" => config.every = seconds(&value()?)?,
            "--shutdown-timeout" => config.host.shutdown_timeout = seconds(&value()?)?,
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
