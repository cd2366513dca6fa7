//! Real crashes: a child process (this test binary, re-run) drives durable
//! runs of a 5-step workflow against a SQLite file; the test SIGKILLs it
//! at seeded random moments, more than a hundred times, restarts it, and
//! at the end checks the file and the side-effect log the steps wrote:
//!
//! - every run completed;
//! - no step whose completion was journaled ran again;
//! - the transactional step's effect (a row in the same file) is there
//!   exactly once per run;
//! - a plain step ran at most once more per kill that hit it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use workflow_runtime::durable::{SqliteOptions, SqliteStore, SqliteTx, StepCtx, Store};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;

/// Runs one child process handles, in windows of this many at once.
const WINDOW: usize = 8;

/// Which steps each process life completed: the journal keeps it, as
/// every step's output carries it on.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ticket {
    run: String,
    /// For each completed step, the life that completed it.
    by: Vec<u32>,
}

struct Ledger {
    log: PathBuf,
    life: u32,
}

impl Ledger {
    /// The step's effect: one line in the log, written with one `write`,
    /// so a kill leaves it whole or absent. Then a pause, so kills also
    /// land between an effect and its journal row.
    async fn effect(&self, step: &StepCtx, mut ticket: Ticket) -> Ticket {
        let line = format!("{}\t{}\t{}\n", step.run_id(), step.index(), self.life);
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .expect("the side-effect log opens");
        log.write_all(line.as_bytes())
            .expect("the side-effect log takes a line");
        tokio::time::sleep(Duration::from_millis(1)).await;
        ticket.by.push(self.life);
        ticket
    }
}

#[workflow(durable)]
impl Ledger {
    #[step(given = "an order")]
    async fn open(&self, step: &StepCtx, run: String) -> Ticket {
        self.effect(
            step,
            Ticket {
                run,
                by: Vec::new(),
            },
        )
        .await
    }

    #[step(when = "stock is reserved")]
    async fn reserve(&self, step: &StepCtx, ticket: Ticket) -> Ticket {
        self.effect(step, ticket).await
    }

    #[step(when = "the card is charged", transactional)]
    async fn charge(&self, tx: &mut SqliteTx, mut ticket: Ticket) -> Result<Ticket, sqlx::Error> {
        sqlx::query("INSERT INTO charges (run_id, life) VALUES (?, ?)")
            .bind(&ticket.run)
            .bind(self.life)
            .execute(&mut **tx)
            .await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
        ticket.by.push(self.life);
        Ok(ticket)
    }

    #[step(when = "the customer is told")]
    async fn notify(&self, step: &StepCtx, ticket: Ticket) -> Ticket {
        self.effect(step, ticket).await
    }

    #[step(when = "the order is archived")]
    async fn archive(&self, step: &StepCtx, ticket: Ticket) -> Ticket {
        self.effect(step, ticket).await
    }
}

fn run_id(n: usize) -> String {
    format!("run-{n:04}")
}

/// The child: resumes what the last life left, then starts every run
/// (starting a journaled one again is the same run) until all are done.
#[test]
fn crash_child() {
    let Ok(db) = std::env::var("WF_CRASH_DB") else {
        return; // Run as a test of its own: nothing to do.
    };
    let log = PathBuf::from(std::env::var("WF_CRASH_LOG").unwrap());
    let life: u32 = std::env::var("WF_CRASH_LIFE").unwrap().parse().unwrap();
    let runs: usize = std::env::var("WF_CRASH_RUNS").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let sqlite = SqliteStore::open(SqliteOptions::new(&db)).await.unwrap();
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS charges (run_id TEXT NOT NULL, life INTEGER NOT NULL)",
        )
        .execute(sqlite.pool())
        .await
        .unwrap();
        let runner = Runner::builder()
            .store(Store::new(sqlite))
            .durable(Ledger { log, life })
            .build()
            .unwrap();
        runner.resume().await.unwrap();
        let ids: Vec<String> = (0..runs).map(run_id).collect();
        for window in ids.chunks(WINDOW) {
            let mut handles = Vec::new();
            for id in window {
                handles.push(
                    runner
                        .start(&Ledger::ID, id.clone(), id.clone())
                        .await
                        .unwrap(),
                );
            }
            for handle in handles {
                handle.result().await.unwrap();
            }
        }
    });
}

/// SplitMix64: the kill schedule, the same for the same seed.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn child(db: &Path, log: &Path, life: u32, runs: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("WF_CRASH_DB", db)
        .env("WF_CRASH_LOG", log)
        .env("WF_CRASH_LIFE", life.to_string())
        .env("WF_CRASH_RUNS", runs.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_repeats_only_unjournaled_steps() {
    const KILLS: u32 = 120;
    const RUNS: usize = 400;
    let dir = std::env::temp_dir().join(format!("wf-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (db, log) = (dir.join("runs.db"), dir.join("effects.log"));

    let mut seed = 0x5eed_u64;
    let mut kills = 0;
    let mut life = 0;
    let started = Instant::now();
    while kills < KILLS {
        let mut process = child(&db, &log, life, RUNS);
        life += 1;
        std::thread::sleep(Duration::from_millis(15 + next(&mut seed) % 60));
        if process.try_wait().unwrap().is_some() {
            break; // It finished every run before this kill.
        }
        process.kill().unwrap(); // SIGKILL
        process.wait().unwrap();
        kills += 1;
    }
    let status = child(&db, &log, life, RUNS).wait().unwrap();
    assert!(status.success(), "the last life failed: {status}");
    assert!(
        kills >= 100,
        "only {kills} kills landed before the runs were done: give the child more work"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rows, charges) = rt.block_on(async {
        let sqlite = SqliteStore::open(SqliteOptions::new(&db)).await.unwrap();
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, status, CAST(output AS TEXT) FROM workflow_runs ORDER BY id",
        )
        .fetch_all(sqlite.pool())
        .await
        .unwrap();
        let charges: Vec<(String, i64)> = sqlx::query_as("SELECT run_id, life FROM charges")
            .fetch_all(sqlite.pool())
            .await
            .unwrap();
        (rows, charges)
    });

    // Every run completed.
    assert_eq!(rows.len(), RUNS);
    let mut journaled_by: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (id, status, output) in rows {
        assert_eq!(status, "completed", "run {id}");
        let ticket: Ticket = serde_json::from_str(&output.unwrap()).unwrap();
        assert_eq!(ticket.by.len(), 5, "run {id}: {ticket:?}");
        journaled_by.insert(id, ticket.by);
    }

    // The transactional step's effect: exactly once, by the life that
    // journaled it.
    let mut charged: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (run, life) in charges {
        charged.entry(run).or_default().push(life);
    }
    for (run, by) in &journaled_by {
        let lives = charged.get(run).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            lives,
            [i64::from(by[2])],
            "run {run}: charges by lives {lives:?}"
        );
    }

    // Plain steps: every execution is in the log, one line per life.
    let mut ran: BTreeMap<(String, u32), Vec<u32>> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let mut fields = line.split('\t');
        let (run, index, life) = (fields.next(), fields.next(), fields.next());
        let (Some(run), Some(index), Some(life)) = (run, index, life) else {
            panic!("a torn log line: {line:?}");
        };
        ran.entry((run.to_owned(), index.parse().unwrap()))
            .or_default()
            .push(life.parse().unwrap());
    }
    let mut again = 0;
    let mut steps_run_again = BTreeSet::new();
    for (run, by) in &journaled_by {
        for index in [0, 1, 3, 4] {
            let lives = &ran[&(run.clone(), index)];
            let journaled = by[index as usize];
            // The life that journaled the step ran it last: once journaled,
            // no life ran it again.
            assert_eq!(
                lives.last(),
                Some(&journaled),
                "run {run} step {index}: ran in lives {lives:?}, journaled by {journaled}"
            );
            // Every earlier execution was in an earlier life, each cut short by
            // its kill: at most one extra run per kill that hit the step.
            let distinct: BTreeSet<_> = lives.iter().collect();
            assert_eq!(
                distinct.len(),
                lives.len(),
                "run {run} step {index}: {lives:?}"
            );
            assert!(lives.iter().all(|&l| l <= journaled));
            if lives.len() > 1 {
                again += lives.len() - 1;
                steps_run_again.insert((run.clone(), index));
            }
        }
    }
    assert!(
        again > 0,
        "no kill landed between a step's effect and its journal row: the at-least-once \
         path went untested"
    );
    println!(
        "{kills} SIGKILLs over {life} lives in {:.1?}: {RUNS} runs of 5 steps all completed; \
         {again} plain-step executions repeated after a kill (in {} steps), \
         0 journaled steps run again, {RUNS} charges exactly once",
        started.elapsed(),
        steps_run_again.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
