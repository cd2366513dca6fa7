//! Transactional steps on SQLite share the store's batches: the writer
//! lends each step the batch's transaction under a savepoint, so the
//! steps of concurrent runs commit together, and a step that gives the
//! transaction back without keeping its writes (its body failed, or it
//! was dropped midway) takes back only its own.

use std::time::Duration;

use tokio::sync::watch;
use workflow_runtime::StepError;
use workflow_runtime::durable::{DurableError, SqliteOptions, SqliteStore, SqliteTx, Store};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

/// Deposits `cents` once its gate opens. Its transactional step holds the
/// batch's transaction for `hold`; a negative deposit holds it until its
/// timeout drops the step.
struct Deposit {
    gate: watch::Receiver<bool>,
    hold: Duration,
}

#[workflow(durable)]
impl Deposit {
    #[step(given = "asked")]
    async fn asked(&self, cents: i64) -> i64 {
        let mut gate = self.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
        if cents < 0 {
            // After the others: its transactional step asks last.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        cents
    }

    #[step(when = "deposited", transactional, timeout = "2s")]
    async fn deposit(&self, tx: &mut SqliteTx, cents: i64) -> Result<i64, sqlx::Error> {
        sqlx::query("INSERT INTO deposits (cents) VALUES (?)")
            .bind(cents)
            .execute(&mut **tx)
            .await?;
        let hold = if cents < 0 {
            Duration::from_secs(3_600)
        } else {
            self.hold
        };
        tokio::time::sleep(hold).await;
        Ok(cents)
    }
}

async fn store(dir: &TempDir) -> SqliteStore {
    store_with(SqliteOptions::new(dir.0.join("runs.db"))).await
}

/// A store opened with `options`, with the deposits table.
async fn store_with(options: SqliteOptions) -> SqliteStore {
    let sqlite = SqliteStore::open(options).await.unwrap();
    sqlx::query("CREATE TABLE deposits (cents INTEGER NOT NULL)")
        .execute(sqlite.pool())
        .await
        .unwrap();
    sqlite
}

async fn deposits(sqlite: &SqliteStore) -> Vec<i64> {
    sqlx::query_scalar("SELECT cents FROM deposits ORDER BY cents")
        .fetch_all(sqlite.pool())
        .await
        .unwrap()
}

fn runner(sqlite: &SqliteStore, gate: watch::Receiver<bool>, hold: Duration) -> Runner {
    Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(Deposit { gate, hold })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_steps_of_concurrent_runs_commit_together() {
    let dir = TempDir::new("shared-commits");
    let sqlite = store(&dir).await;
    let (open, gate) = watch::channel(false);
    let runner = runner(&sqlite, gate, Duration::from_millis(10));
    let mut runs = Vec::new();
    for cents in 1..=16 {
        let id = format!("d-{cents}");
        runs.push(runner.start(&Deposit::ID, &id, cents).await.unwrap());
    }
    let before = sqlite.commits();
    open.send(true).unwrap();
    for (run, cents) in runs.into_iter().zip(1..) {
        assert_eq!(run.result().await.unwrap(), cents);
    }
    let after = sqlite.commits();
    assert_eq!(deposits(&sqlite).await, (1..=16).collect::<Vec<i64>>());
    // Sixteen transactional steps, sixteen first steps' rows and sixteen
    // ends: a transaction a transactional step would be sixteen at least.
    let transactions = after.transactions - before.transactions;
    let writes = after.writes - before.writes;
    assert!(
        transactions <= 12,
        "{transactions} transactions for 16 transactional steps and 32 other writes"
    );
    assert_eq!(writes, 48, "{transactions} transactions, {writes} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_dropped_holding_the_batchs_transaction_takes_back_only_its_own_writes() {
    let dir = TempDir::new("shared-commits-drop");
    let sqlite = store(&dir).await;
    let (open, gate) = watch::channel(false);
    let runner = runner(&sqlite, gate, Duration::from_millis(200));
    let kept = runner.start(&Deposit::ID, "kept", 7).await.unwrap();
    let stuck = runner.start(&Deposit::ID, "stuck", -1).await.unwrap();
    // The kept deposit is lent the transaction first and holds it for
    // 200 ms, while the stuck one asks; the stuck one is lent it by a later
    // batch, and holds it until its timeout drops the step. (That a
    // rollback to the step's savepoint spares the other writes of its own
    // batch is `sqlite_store.rs`'s `a_lent_transaction_dropped_...`.)
    open.send(true).unwrap();
    assert_eq!(kept.result().await.unwrap(), 7);
    match stuck.result().await {
        Err(DurableError::Failed { error, .. }) => {
            assert!(error.contains("timed out"), "{error}");
        }
        other => panic!("the stuck step's run ended {other:?}"),
    }
    assert_eq!(deposits(&sqlite).await, [7]);
    // The store goes on committing: a later run's writes land.
    let later = runner.start(&Deposit::ID, "later", 3).await.unwrap();
    assert_eq!(later.result().await.unwrap(), 3);
    assert_eq!(deposits(&sqlite).await, [3, 7]);
}

/// Journals a write of the application's from inside its transactional
/// step, which the rules say not to: the write queues for the batch after
/// the one that lent the step its transaction.
struct WritesInside {
    store: SqliteStore,
    /// Makes the write on a task of its own, and waits for it.
    spawned: bool,
}

#[workflow(durable)]
impl WritesInside {
    #[step(given = "deposited", transactional)]
    async fn deposit(&self, tx: &mut SqliteTx, cents: i64) -> Result<i64, StepError> {
        sqlx::query("INSERT INTO deposits (cents) VALUES (?)")
            .bind(cents)
            .execute(&mut **tx)
            .await
            .map_err(StepError::new)?;
        let audit = sqlx::query("INSERT INTO deposits (cents) VALUES (-100)");
        if self.spawned {
            let store = self.store.clone();
            tokio::spawn(async move { store.execute(audit).await })
                .await
                .map_err(StepError::new)?
                .map_err(StepError::new)?;
        } else {
            self.store.execute(audit).await.map_err(StepError::new)?;
        }
        Ok(cents)
    }
}

fn writes_inside(sqlite: &SqliteStore, spawned: bool) -> Runner {
    Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(WritesInside {
            store: sqlite.clone(),
            spawned,
        })
        .build()
        .unwrap()
}

/// The store goes on: a later run's writes land.
async fn a_later_run_lands(sqlite: &SqliteStore) {
    let (_open, gate) = watch::channel(true);
    let later = runner(sqlite, gate, Duration::ZERO);
    let run = later.start(&Deposit::ID, "later", 3).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 3);
    assert_eq!(deposits(sqlite).await, [3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_inside_a_transactional_step_is_refused_rather_than_hold_the_store() {
    let dir = TempDir::new("shared-commits-inside");
    let sqlite = store(&dir).await;
    let runner = writes_inside(&sqlite, false);
    let run = runner.start(&WritesInside::ID, "inside", 5).await.unwrap();
    // Refused at once: queued, it would wait for the batch that waits for
    // the step.
    let ended = tokio::time::timeout(Duration::from_secs(20), run.result())
        .await
        .expect("the store was held by a transactional step waiting on its own write");
    match ended {
        Err(DurableError::Failed { error, .. }) => {
            assert!(error.contains("write through the step's `tx`"), "{error}");
        }
        other => panic!("the run ended {other:?}"),
    }
    assert_eq!(deposits(&sqlite).await, Vec::<i64>::new());
    a_later_run_lands(&sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_a_transactional_step_waits_for_on_another_task_fails_after_the_acquire_timeout() {
    let dir = TempDir::new("shared-commits-spawned");
    let sqlite = store_with(
        SqliteOptions::new(dir.0.join("runs.db")).acquire_timeout(Duration::from_millis(300)),
    )
    .await;
    let runner = writes_inside(&sqlite, true);
    let run = runner.start(&WritesInside::ID, "spawned", 5).await.unwrap();
    // The batch waits for the step no longer than the acquire timeout, and
    // the write, queued behind it, waits for the connection no longer
    // either: both fail, rather than wait for each other for good.
    let ended = tokio::time::timeout(Duration::from_secs(20), run.result())
        .await
        .expect("a transactional step and the write it waits for held the store");
    assert!(
        matches!(ended, Err(DurableError::Failed { .. })),
        "{ended:?}"
    );
    assert_eq!(deposits(&sqlite).await, Vec::<i64>::new());
    a_later_run_lands(&sqlite).await;
}
