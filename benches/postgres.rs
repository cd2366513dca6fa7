//! Durable runs through PostgreSQL (a throwaway server that syncs its
//! commits), against sqlx writing the same rows by hand, in one run:
//!
//! - one journaled step (fenced by its lease): the extra time an 11-step
//!   run takes over a 1-step one, per step, against the step row inserted
//!   by plain sqlx in a transaction (the floor). Target: the durable
//!   step's rate ≥ 0.7 × the floor's.
//! - runs per second of a 3-step workflow enqueued once and run by 1, 2
//!   and 3 worker processes (this binary, re-run).
//!
//! `cargo bench --bench postgres`

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use workflow_runtime::durable::{PostgresStore, Store};
use workflow_runtime::host::{Runner, WorkflowHost};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TempPostgres;

#[path = "common/durable_workflows.rs"]
mod workflows;
use workflows::{Eleven, One, Three};

const ROUNDS: usize = 5;
const ITERS: u32 = 30;
const RUNS: usize = 600;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn id(prefix: &str) -> String {
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The floor: one step row inserted by hand in a transaction.
async fn floor_step(pg: &PostgresStore, run: &str, index: i64) {
    let mut tx = pg.pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO workflow_steps
         (run_id, step_index, title, output, attempts, started_ms, ended_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run)
    .bind(index)
    .bind("doubled")
    .bind(&b"42"[..])
    .bind(1_i64)
    .bind(0_i64)
    .bind(0_i64)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn time(f: impl AsyncFn()) -> Duration {
    let start = Instant::now();
    for _ in 0..ITERS {
        f().await;
    }
    start.elapsed() / ITERS
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A worker process: this binary, re-run, until killed.
fn worker_main(url: String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let host = WorkflowHost::builder()
            .store(Store::postgres(&url).await.unwrap())
            .durable(Three)
            .instance(
                format!("bench-{}", std::process::id()),
                Duration::from_secs(10),
            )
            .worker(32)
            .build()
            .unwrap();
        host.run().await;
    });
}

fn spawn_worker(url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("WF_BENCH_PG_WORKER", url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs per second of `RUNS` enqueued 3-step runs on `workers` processes.
async fn with_workers(url: &str, api: &Runner, pg: &PostgresStore, workers: usize) -> f64 {
    let prefix = format!("w{workers}-");
    for _ in 0..RUNS {
        api.enqueue(&Three::ID, id(&prefix), 1).await.unwrap();
    }
    let start = Instant::now();
    let mut children: Vec<Child> = (0..workers).map(|_| spawn_worker(url)).collect();
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflow_runs WHERE status = 'completed' AND id LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(pg.pool())
        .await
        .unwrap();
        if done == RUNS as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = RUNS as f64 / start.elapsed().as_secs_f64();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    rate
}

fn main() {
    if let Ok(url) = std::env::var("WF_BENCH_PG_WORKER") {
        worker_main(url);
        return;
    }
    let server = TempPostgres::start_synced().expect("PostgreSQL starts");
    let url = server.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pg = PostgresStore::open(&url).await.unwrap();
        let runner = Runner::builder()
            .store(Store::new(pg.clone()))
            .durable(One)
            .durable(Three)
            .durable(Eleven)
            .build()
            .unwrap();
        // The floor's step rows hang off one run row.
        let floor_run = id("floor-");
        runner.enqueue(&One::ID, floor_run.clone(), 1).await.unwrap();
        let index = AtomicU64::new(100);

        let mut samples: [Vec<Duration>; 3] = Default::default();
        for _ in 0..ROUNDS {
            samples[0].push(
                time(async || {
                    let i = i64::try_from(index.fetch_add(1, Ordering::Relaxed)).unwrap();
                    floor_step(&pg, &floor_run, i).await;
                })
                .await,
            );
            samples[1].push(
                time(async || {
                    let run = runner.start(&One::ID, id("one-"), 1).await.unwrap();
                    run.result().await.unwrap();
                })
                .await,
            );
            samples[2].push(
                time(async || {
                    let run = runner.start(&Eleven::ID, id("eleven-"), 1).await.unwrap();
                    run.result().await.unwrap();
                })
                .await,
            );
        }
        let [floor, one, eleven] = samples.map(median);
        let step = eleven.saturating_sub(one) / 10;
        println!("one journaled step through PostgreSQL (synchronous_commit on, fsync on)");
        println!(
            "  sqlx: the step row inserted in a transaction    {:>10.1?}   {:>8.0} steps/s",
            floor,
            1.0 / floor.as_secs_f64()
        );
        println!(
            "  durable step, fenced: (11-step - 1-step) / 10   {:>10.1?}   {:>8.0} steps/s   rate ratio {:.2}",
            step,
            1.0 / step.as_secs_f64(),
            floor.as_secs_f64() / step.as_secs_f64()
        );
        println!("3-step durable runs, {RUNS} enqueued, run by worker processes");
        for workers in 1..=3 {
            let rate = with_workers(&url, &runner, &pg, workers).await;
            println!("  {workers} worker process(es)                          {rate:>8.0} runs/s");
        }
    });
}
