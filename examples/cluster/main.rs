//! Many instances, one PostgreSQL: the billing service of
//! `workflow_suite::cluster` as several worker processes.
//!
//! `cargo run --example cluster` runs the demo: a throwaway PostgreSQL
//! from the machine's binaries, three worker processes, 600 invoices, one
//! worker SIGKILLed a third of the way; every invoice is paid once.
//!
//! `cargo run --example cluster -- --help` for running the instances
//! yourself against your own PostgreSQL.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use workflow_suite::cluster;

const HELP: &str = "cluster: a billing service as several worker processes on one PostgreSQL

USAGE: cargo run --example cluster -- [COMMAND]

  demo                                 (default) a throwaway PostgreSQL, three workers, one killed
  worker --url URL --instance NAME     one worker instance, until SIGTERM or ctrl-c
  invoices --url URL --count N         add N open invoices (the sweep enqueues their payments)
  status --url URL                     invoices by status and payer, and the durable runs' health
  --help                               this text

URL is a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/postgres";

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Result<String, Error> {
        let at = args.iter().position(|a| a == name);
        at.and_then(|i| args.get(i + 1))
            .cloned()
            .ok_or_else(|| format!("{name} is needed; see --help").into())
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        None | Some("demo") => rt.block_on(demo()),
        Some("worker") => {
            let (url, instance) = (flag("--url")?, flag("--instance")?);
            rt.block_on(async {
                let (summary, health) = cluster::run_worker(&url, &instance).await?;
                tracing::info!(?summary, "worker stopped");
                println!("{}", serde_json::to_string_pretty(&health)?);
                Ok(())
            })
        }
        Some("invoices") => {
            let (url, count) = (flag("--url")?, flag("--count")?.parse()?);
            rt.block_on(async {
                let store = cluster::open(&url).await?;
                let pool = store.as_postgres().expect("PostgreSQL").pool();
                let ids = cluster::add_invoices(pool, count).await?;
                println!("added {} invoices", ids.len());
                Ok(())
            })
        }
        Some("status") => rt.block_on(status(&flag("--url")?)),
        Some("--help" | "-h") => {
            println!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}; see --help").into()),
    }
}

async fn status(url: &str) -> Result<(), Error> {
    let store = cluster::open(url).await?;
    let pool = store.as_postgres().expect("PostgreSQL").pool();
    for (status, by, n) in cluster::tally(pool).await? {
        match by.as_str() {
            "" => println!("invoices {status}: {n}"),
            by => println!("invoices {status} by {by}: {n}"),
        }
    }
    let runner = workflow_runtime::host::Runner::builder()
        .store(store)
        .build()?;
    let health = runner.durable_health().await?;
    for (workflow, runs) in &health.workflows {
        let c = &runs.counts;
        println!(
            "{workflow} runs: {} completed, {} failed, {} running ({} waiting for a worker)",
            c.completed, c.failed, c.running, c.waiting
        );
    }
    Ok(())
}

/// A worker process; its health at exit comes on its stdout.
fn worker(url: &str, instance: &str) -> Result<Child, Error> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["worker", "--url", url, "--instance", instance])
        .stdout(std::process::Stdio::piped())
        .spawn()?)
}

async fn paid(pool: &sqlx::PgPool) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM invoices WHERE status = 'paid'")
            .fetch_one(pool)
            .await?,
    )
}

async fn wait_paid(pool: &sqlx::PgPool, n: i64) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while paid(pool).await? < n {
        if Instant::now() > deadline {
            return Err(format!("fewer than {n} invoices paid after two minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn demo() -> Result<(), Error> {
    let pg = workflow_runtime::testing::TempPostgres::start()?;
    let url = pg.url();
    let store = cluster::open(&url).await?;
    let pool = store.as_postgres().expect("PostgreSQL").pool().clone();
    println!("PostgreSQL at {url}; starting workers a, b and c");
    let mut workers = vec![worker(&url, "a")?, worker(&url, "b")?, worker(&url, "c")?];
    let invoices = cluster::add_invoices(&pool, 600).await?;
    println!(
        "added {} invoices; the sweep enqueues them on its next tick",
        invoices.len()
    );
    wait_paid(&pool, 200).await?;
    workers[0].kill()?;
    workers[0].wait()?;
    println!(
        "a SIGKILLed with 200 paid: its runs wait out their 2s leases, then b and c take them"
    );
    wait_paid(&pool, 600).await?;
    for child in workers.drain(1..) {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let output = child.wait_with_output()?;
        let health: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let pay = &health["workflows"]["PayInvoice"];
        println!(
            "{} stopped gracefully: claimed {} payments, {} of them taken over from another instance",
            health["instance"], pay["claimed"], pay["takeovers"]
        );
    }
    let charges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gateway_charges")
        .fetch_one(&pool)
        .await?;
    let requests: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gateway_requests")
        .fetch_one(&pool)
        .await?;
    status(&url).await?;
    println!(
        "{} invoices, {charges} charges, {requests} gateway requests \
         (a repeated request is a charge a dead worker may have sent; the key kept it one charge)",
        invoices.len()
    );
    Ok(())
}
