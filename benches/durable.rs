//! Durable runs on SQLite, against sqlx writing the same rows by hand.
//!
//! - One journaled step: the extra time an 11-step durable run takes over
//!   a 1-step one, per step, against the floor: the same step row inserted
//!   by plain sqlx in a transaction. Target: ratio ≤ 1.3.
//! - A whole 3-step durable run against the floor of its five writes
//!   (the run row, three step rows, the run's end), each in a transaction.
//! - Runs per second of the 3-step workflow, one at a time and 16 at
//!   once, `synchronous=FULL` and `NORMAL`.
//!
//! Cases are measured in interleaved rounds in one process, so they share
//! the machine's conditions. `cargo bench --bench durable`

#[path = "harness.rs"]
#[allow(dead_code)]
mod harness;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::{Case, median, report};
use workflow_runtime::durable::{SqliteOptions, SqliteStore, Store, Synchronous};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;

#[path = "common/durable_workflows.rs"]
mod workflows;
use workflows::{Eleven, One, Three};

const ROUNDS: usize = 5;
const ITERS: u64 = 40;
const IN_FLIGHT: usize = 16;

/// `Three` without durability, for the instruction counts.
struct ThreePlain;

#[workflow]
impl ThreePlain {
    #[step(given = "a number")]
    fn n(&self, n: u64) -> u64 {
        n + 1
    }

    #[step(when = "doubled")]
    async fn double(&self, n: u64) -> u64 {
        n * 2
    }

    #[step(and = "squared")]
    async fn square(&self, n: u64) -> u64 {
        n * n
    }
}

/// Instruction mode: the journal's own work, apart from the disk, as a
/// 3-step run on the in-memory store against the same run not durable.
fn count_instructions(mode: &(String, u32)) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runner = Runner::builder()
        .store(Store::memory())
        .durable(Three)
        .build()
        .unwrap();
    harness::run_case(&rt, mode, "plain", &async || {
        runner.run(&ThreePlain, 1).await.unwrap();
    });
    harness::run_case(&rt, mode, "memory", &async || {
        let run = runner.start(&Three::ID, id(), 1).await.unwrap();
        run.result().await.unwrap();
    });
}

/// A store in a fresh file, and the runner over it.
async fn open(dir: &std::path::Path, name: &str, sync: Synchronous) -> (SqliteStore, Runner) {
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.join(name)).sync(sync))
        .await
        .unwrap();
    let runner = Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(One)
        .durable(Three)
        .durable(Eleven)
        .build()
        .unwrap();
    (sqlite, runner)
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn id() -> String {
    format!("r{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The floor of one step: its row, inserted by hand in a transaction.
async fn floor_step(sqlite: &SqliteStore, run: &str, index: i64) {
    let mut tx = sqlite.pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO workflow_steps
         (run_id, step_index, title, output, attempts, started_ms, ended_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run)
    .bind(index)
    .bind("doubled")
    .bind("42")
    .bind(1_i64)
    .bind(0_i64)
    .bind(0_i64)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The floor of a 3-step run: its five writes, each in a transaction.
/// Returns the run's id.
async fn floor_run(sqlite: &SqliteStore) -> String {
    let run = id();
    let mut tx = sqlite.pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO workflow_runs
         (id, workflow, fingerprint, status, input, created_ms, updated_ms)
         VALUES (?, 'Three', 'f', 'running', '1', 0, 0)",
    )
    .bind(&run)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for index in 0..3 {
        floor_step(sqlite, &run, index).await;
    }
    let mut tx = sqlite.pool().begin().await.unwrap();
    sqlx::query("UPDATE workflow_runs SET status = 'completed', output = '4' WHERE id = ?")
        .bind(&run)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    run
}

/// Runs of the 3-step workflow per second with `IN_FLIGHT` at once: the
/// one writer commits them one after another.
async fn concurrent(runner: &Runner) -> f64 {
    const RUNS: usize = 400;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..RUNS {
        if set.len() >= IN_FLIGHT {
            set.join_next().await.unwrap().unwrap();
        }
        let runner = runner.clone();
        set.spawn(async move {
            let run = runner.start(&Three::ID, id(), 1).await.unwrap();
            run.result().await.unwrap();
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    RUNS as f64 / start.elapsed().as_secs_f64()
}

async fn time<F: AsyncFn()>(f: F) -> Duration {
    let start = Instant::now();
    for _ in 0..ITERS {
        f().await;
    }
    start.elapsed() / u32::try_from(ITERS).unwrap()
}

fn main() {
    if let Some(mode) = harness::instructions_mode() {
        count_instructions(&mode);
        return;
    }
    let dir = std::env::temp_dir().join(format!("wf-bench-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (sync, label) in [(Synchronous::Full, "FULL"), (Synchronous::Normal, "NORMAL")] {
            let (sqlite, runner) = open(&dir, &format!("bench-{label}.db"), sync).await;
            // The floor's step rows hang off one run row.
            let floor_run_id = floor_run(&sqlite).await;
            let step_index = AtomicU64::new(100);

            let mut samples: [Vec<Duration>; 5] = Default::default();
            for _ in 0..ROUNDS {
                samples[0].push(
                    time(async || {
                        let index =
                            i64::try_from(step_index.fetch_add(1, Ordering::Relaxed)).unwrap();
                        floor_step(&sqlite, &floor_run_id, index).await;
                    })
                    .await,
                );
                samples[1].push(
                    time(async || {
                        runner
                            .start(&One::ID, id(), 1)
                            .await
                            .unwrap()
                            .result()
                            .await
                            .unwrap();
                    })
                    .await,
                );
                samples[2].push(
                    time(async || {
                        runner
                            .start(&Eleven::ID, id(), 1)
                            .await
                            .unwrap()
                            .result()
                            .await
                            .unwrap();
                    })
                    .await,
                );
                samples[3].push(
                    time(async || {
                        floor_run(&sqlite).await;
                    })
                    .await,
                );
                samples[4].push(
                    time(async || {
                        runner
                            .start(&Three::ID, id(), 1)
                            .await
                            .unwrap()
                            .result()
                            .await
                            .unwrap();
                    })
                    .await,
                );
            }
            let [floor, one, eleven, floor3, three] = samples.map(median);
            let per_step = eleven.saturating_sub(one) / 10;
            report(
                &format!("one journaled step, synchronous={label}"),
                &Case {
                    name: "sqlx: the step row inserted in a transaction",
                    per_iter: floor,
                },
                &[Case {
                    name: "durable step: (11-step run - 1-step run) / 10",
                    per_iter: per_step,
                }],
            );
            report(
                &format!("a 3-step durable run, synchronous={label}"),
                &Case {
                    name: "sqlx: its 5 writes, each in a transaction",
                    per_iter: floor3,
                },
                &[Case {
                    name: "durable run (start, 3 steps, end, result)",
                    per_iter: three,
                }],
            );
            println!(
                "  3-step durable runs per second, one at a time: {:.0}",
                1.0 / three.as_secs_f64()
            );
            println!(
                "  3-step durable runs per second, {IN_FLIGHT} in flight: {:.0}\n",
                concurrent(&runner).await
            );
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
