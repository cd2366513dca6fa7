//! Durable runs on SQLite, against sqlx writing the same rows by hand.
//!
//! - One journaled step: the extra time an 11-step durable run takes over
//!   a 1-step one, per step, against the floor: the same step row inserted
//!   by plain sqlx in a transaction. Target: ratio ≤ 1.3.
//! - A whole 3-step durable run against the floor of its five writes
//!   (the run row, three step rows, the run's end), each in a transaction.
//! - Runs per second of the 3-step workflow with 1, 8 and 64 in flight,
//!   `synchronous=FULL`, against the floor of a hand-written group-commit
//!   writer making the same five writes per run (target: ≥ 0.7 of it), and
//!   what 64 in flight gain over one (target: ≥ 10×).
//!
//! Cases are measured in interleaved rounds in one process, so they share
//! the machine's conditions. `cargo bench --bench durable`

#[path = "harness.rs"]
#[allow(dead_code)]
mod harness;

use std::future::Future;
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
/// Runs in flight for the throughput table.
const IN_FLIGHT: [usize; 3] = [1, 8, 64];

#[path = "common/floor_writer.rs"]
mod floor_writer;
use floor_writer::Floor;

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

/// Runs per second with `in_flight` at once, each run made by `one`.
async fn rate<F, Fut>(in_flight: usize, one: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runs = 100 * in_flight.min(16);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..runs {
        if set.len() >= in_flight {
            set.join_next().await.unwrap().unwrap();
        }
        set.spawn(one());
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    runs as f64 / start.elapsed().as_secs_f64()
}

/// The throughput table: ours and the floor's runs per second at each
/// `IN_FLIGHT`, medians of interleaved rounds.
async fn throughput(dir: &std::path::Path) {
    let (sqlite, runner) = open(dir, "throughput.db", Synchronous::Full).await;
    let floor_db = SqliteStore::open(SqliteOptions::new(dir.join("floor.db")))
        .await
        .unwrap();
    let floor = Floor::spawn(floor_db.pool().clone());
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); IN_FLIGHT.len()];
    let mut floors = ours.clone();
    let before = sqlite.commits();
    for _ in 0..3 {
        for (i, &n) in IN_FLIGHT.iter().enumerate() {
            floors[i].push(
                rate(n, || {
                    let floor = floor.clone();
                    async move { floor.run(id()).await }
                })
                .await,
            );
            ours[i].push(
                rate(n, || {
                    let runner = runner.clone();
                    async move {
                        let run = runner.start(&Three::ID, id(), 1).await.unwrap();
                        run.result().await.unwrap();
                    }
                })
                .await,
            );
        }
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ours, floors): (Vec<f64>, Vec<f64>) = (
        ours.into_iter().map(mid).collect(),
        floors.into_iter().map(mid).collect(),
    );
    println!("3-step durable runs per second, synchronous=FULL");
    println!(
        "  {:<10} {:>18} {:>14} {:>8}",
        "in flight", "group-commit floor", "durable runs", "ratio"
    );
    for (i, n) in IN_FLIGHT.iter().enumerate() {
        println!(
            "  {:<10} {:>18.0} {:>14.0} {:>8.2}",
            n,
            floors[i],
            ours[i],
            ours[i] / floors[i]
        );
    }
    let commits = sqlite.commits();
    println!(
        "  from concurrency: {} in flight / 1 in flight = {:.1}x; {:.1} journal writes per transaction",
        IN_FLIGHT[IN_FLIGHT.len() - 1],
        ours[ours.len() - 1] / ours[0],
        (commits.writes - before.writes) as f64
            / (commits.transactions - before.transactions).max(1) as f64
    );
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
            println!();
        }
        throughput(&dir).await;
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
