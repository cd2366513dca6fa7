//! The `cluster` example's billing service as three worker processes of
//! this test binary on a throwaway PostgreSQL: one is SIGKILLed while it
//! has payments in flight, the others stop on SIGTERM. Every invoice is
//! paid, charged and marked once, and the cron sweep's ticks fired once
//! each on its two-second grid.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use workflow_runtime::testing::TempPostgres;
use workflow_suite::cluster;

const INVOICES: usize = 400;

/// A worker instance: this test binary, re-run, until killed or stopped.
#[test]
fn cluster_worker() {
    let (Ok(url), Ok(instance)) = (
        std::env::var("CLUSTER_URL"),
        std::env::var("CLUSTER_INSTANCE"),
    ) else {
        return; // Run as a test of its own: nothing to do.
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (summary, health) = rt.block_on(cluster::run_worker(&url, &instance)).unwrap();
    assert!(!summary.forced, "{summary:?}");
    assert_eq!(health.instance, instance);
}

fn worker(url: &str, instance: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "cluster_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CLUSTER_URL", url)
        .env("CLUSTER_INSTANCE", instance)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The worker processes, killed however the test ends.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn wait_paid(pool: &PgPool, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let paid = count(pool, "SELECT COUNT(*) FROM invoices WHERE status = 'paid'").await;
        if paid >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{paid} of {n} invoices paid");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_pay_every_invoice_once_when_one_dies() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let store = cluster::open(&url).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    let mut workers = Workers(vec![
        worker(&url, "a"),
        worker(&url, "b"),
        worker(&url, "c"),
    ]);
    cluster::add_invoices(&pool, INVOICES).await.unwrap();

    wait_paid(&pool, (INVOICES / 3) as i64).await;
    // SIGKILL the worker holding the most payments in flight right now (a
    // worker between batches may hold none).
    let busiest: String = sqlx::query_scalar(
        "SELECT owner FROM workflow_runs
         WHERE workflow = 'PayInvoice' AND status = 'running' AND owner IS NOT NULL
         GROUP BY owner ORDER BY COUNT(*) DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let at = ["a", "b", "c"].iter().position(|n| *n == busiest).unwrap();
    let mut killed = workers.0.remove(at);
    killed.kill().unwrap();
    killed.wait().unwrap();
    wait_paid(&pool, INVOICES as i64).await;
    for child in &mut workers.0 {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(child.wait().unwrap().success(), "a graceful stop");
    }
    workers.0.clear();

    // Each invoice: paid once, by the charge the gateway made for it.
    let unpaid = count(
        &pool,
        "SELECT COUNT(*) FROM invoices WHERE status <> 'paid'",
    )
    .await;
    assert_eq!(unpaid, 0);
    let charges = count(&pool, "SELECT COUNT(*) FROM gateway_charges").await;
    assert_eq!(charges, INVOICES as i64, "one charge per invoice");
    let mismatched = count(
        &pool,
        "SELECT COUNT(*) FROM invoices i LEFT JOIN gateway_charges g ON g.key = i.charge
         WHERE g.invoice IS DISTINCT FROM i.id",
    )
    .await;
    assert_eq!(mismatched, 0, "every invoice marked with its own charge");

    // The journal: each payment one completed run; the killed worker's
    // were taken over (a claim after the first).
    let completed = count(
        &pool,
        "SELECT COUNT(*) FROM workflow_runs WHERE workflow = 'PayInvoice' AND status = 'completed'",
    )
    .await;
    assert_eq!(completed, INVOICES as i64);
    let takeovers = count(
        &pool,
        "SELECT COALESCE(SUM(epoch - 1), 0)::BIGINT FROM workflow_runs WHERE workflow = 'PayInvoice'",
    )
    .await;
    assert!(takeovers > 0, "the killed worker left no payment behind");
    let requests = count(&pool, "SELECT COUNT(*) FROM gateway_requests").await;

    // The sweep: its ticks on the two-second grid, each a run of its own.
    let ticks: Vec<String> =
        sqlx::query_scalar("SELECT id FROM workflow_runs WHERE workflow = 'InvoiceSweep'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!ticks.is_empty());
    for tick in &ticks {
        let at: i64 = tick.trim_start_matches("InvoiceSweep@").parse().unwrap();
        assert_eq!(at % 2000, 0, "{tick} is off the grid");
    }
    println!(
        "{INVOICES} invoices on 3 workers (one SIGKILLed): {charges} charges, {requests} \
         gateway requests, {takeovers} payments taken over, {} sweep ticks",
        ticks.len()
    );
}
