//! Every durable run ends, or is parked with a reason a person can act
//! on: a run whose journal keeps failing it is driven again a bounded
//! number of times and then parked `stuck`; a row that does not read back
//! parks its run and never keeps the other runs from resuming; health
//! shows parked runs; and `resume_parked` puts a run back once its cause
//! is fixed (an `incompatible` one only for code that registers its
//! definition).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use workflow_runtime::behavior::BoxFuture;
use workflow_runtime::durable::{
    Backend, DurableError, FailureRow, Inserted, MemoryStore, RunEnd, RunRow, SqliteOptions,
    SqliteStore, StepRow, Store, StoreError, WorkflowCounts,
};
use workflow_runtime::host::{HealthStatus, Runner};
use workflow_runtime::prelude::*;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

/// A memory store whose step writes fail while `down` is set: a database
/// that does not answer.
#[derive(Clone)]
struct Flaky {
    inner: MemoryStore,
    down: Arc<AtomicBool>,
}

impl Flaky {
    fn refused(&self) -> StoreError {
        StoreError::Database {
            store: "flaky".into(),
            doing: "writing".into(),
            source: "connection refused".into(),
        }
    }
}

impl Backend for Flaky {
    fn describe(&self) -> String {
        "flaky".to_owned()
    }
    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        self.inner.insert_run(run)
    }
    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>> {
        self.inner.run(id)
    }
    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        self.inner.steps(run)
    }
    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(self.refused())));
        }
        self.inner.record_step(run, step)
    }
    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.record_failure(run, failure)
    }
    fn failures<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<FailureRow>, StoreError>> {
        self.inner.failures(run)
    }
    fn finish_run<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.finish_run(run, end)
    }
    fn running(&self) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        self.inner.running()
    }
    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.unpark(run)
    }
    fn counts_by_workflow(&self, now_ms: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>> {
        self.inner.counts_by_workflow(now_ms)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Counts how often its first step ran.
#[derive(Default)]
struct Count(Arc<AtomicU32>);

#[workflow(durable)]
impl Count {
    #[step(given = "a number")]
    fn number(&self, n: u32) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst);
        n
    }

    #[step(when = "doubled")]
    fn double(&self, n: u32) -> u32 {
        n * 2
    }
}

/// Before, a run whose journal kept failing was driven again every few
/// seconds for as long as the runner lived, `running` with nobody able to
/// finish it, its handle never resolving.
#[tokio::test(start_paused = true)]
async fn a_run_the_journal_keeps_failing_is_parked_stuck_and_resumed_by_hand() {
    let down = Arc::new(AtomicBool::new(true));
    let memory = MemoryStore::new();
    let store = Store::new(Flaky {
        inner: memory.clone(),
        down: down.clone(),
    });
    let count = Count::default();
    let counts = count.0.clone();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(count)
        .redrive(3, Duration::from_secs(10))
        .build()
        .unwrap();
    let run = runner.start(&Count::ID, "c-1", 21).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(3600), run.result())
        .await
        .expect("the run is parked within the bound");
    match &ended {
        Err(DurableError::Stuck { reason, .. }) => {
            // Past 3 drives and past 10s, both: each drive tries its
            // row for 5s before it gives up, so both hold at the fourth.
            assert!(reason.contains("driven again 3 times"), "{reason}");
            assert!(reason.contains("connection refused"), "{reason}");
        }
        other => panic!("expected the run parked as stuck, got {other:?}"),
    }
    let health = runner.durable_health().await.unwrap();
    assert_eq!(health.counts.stuck, 1);
    assert_eq!(health.status, HealthStatus::Degraded);
    // Four drives (the first and three more), each running the body once:
    // the journal never took its row.
    let drives = counts.load(Ordering::SeqCst);
    assert_eq!(drives, 4);

    // The database answers again: a person puts the run back.
    down.store(false, Ordering::SeqCst);
    assert!(runner.resume_parked("c-1").await.unwrap());
    let again = runner.handle(&Count::ID, "c-1");
    assert_eq!(again.result().await.unwrap(), 42);
    assert_eq!(counts.load(Ordering::SeqCst), drives + 1);
    assert!(
        !runner.resume_parked("c-1").await.unwrap(),
        "not parked now"
    );
    assert_eq!(
        runner.durable_health().await.unwrap().status,
        HealthStatus::Healthy
    );
}

async fn sqlite(dir: &TempDir) -> (Store, SqliteStore) {
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    (Store::new(sqlite.clone()), sqlite)
}

/// Before, a corrupt row was driven again forever, and one `running` row
/// that did not read back made `running()` fail, so `resume()` returned
/// early and no run resumed, on every restart.
#[tokio::test]
async fn a_corrupt_row_parks_its_run_and_the_others_resume() {
    let dir = TempDir::new("corrupt-rows");
    let (store, sqlite) = sqlite(&dir).await;
    for id in ["good", "bad-step", "bad-run"] {
        let row = RunRow::new(id, Count::NAME, Count::FINGERPRINT, b"5".to_vec());
        store.backend().insert_run(&row).await.unwrap();
    }
    // A step row whose attempts are negative, and a run whose time is text.
    sqlx::query(
        "INSERT INTO workflow_steps (run_id, step_index, title, output, attempts, started_ms, ended_ms)
         VALUES ('bad-step', 0, 'a number', '5', -1, 0, 0)",
    )
    .execute(sqlite.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE workflow_runs SET created_ms = 'yesterday' WHERE id = 'bad-run'")
        .execute(sqlite.pool())
        .await
        .unwrap();

    let runner = Runner::builder()
        .store(store.clone())
        .durable(Count::default())
        .build()
        .unwrap();
    assert_eq!(
        runner.resume().await.unwrap(),
        2,
        "good and bad-step resume"
    );
    assert_eq!(
        runner.handle(&Count::ID, "good").result().await.unwrap(),
        10
    );
    let bad_step = runner.handle(&Count::ID, "bad-step").result().await;
    assert!(
        matches!(&bad_step, Err(DurableError::Stuck { reason, .. }) if reason.contains("corrupt")),
        "{bad_step:?}"
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM workflow_runs WHERE id = 'bad-run'")
            .fetch_one(sqlite.pool())
            .await
            .unwrap();
    assert_eq!(status, "stuck");
    let counts = runner.durable_health().await.unwrap().counts;
    assert_eq!((counts.completed, counts.stuck, counts.running), (1, 2, 0));
    // Resumed again, nothing is left to drive.
    assert_eq!(runner.resume().await.unwrap(), 0);
}

/// The same workflow, as the next release defines it.
struct CountV2;

#[workflow(name = "Count", durable = "v2")]
impl CountV2 {
    #[step(given = "a number")]
    fn number(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "tripled")]
    fn triple(&self, n: u32) -> u32 {
        n * 3
    }
}

/// Before, an `incompatible` run could not be put back at all.
#[tokio::test]
async fn an_incompatible_run_is_resumed_only_by_code_that_registers_its_definition() {
    let store = Store::memory();
    // A v2 runner finds a v1 run: it parks it.
    let v1_row = RunRow::new("old", "Count", Count::FINGERPRINT, b"4".to_vec());
    store.backend().insert_run(&v1_row).await.unwrap();
    let v2 = Runner::builder()
        .store(store.clone())
        .durable(CountV2)
        .build()
        .unwrap();
    assert_eq!(v2.resume().await.unwrap(), 1);
    let parked = v2.handle(&CountV2::ID, "old").result().await;
    assert!(
        matches!(parked, Err(DurableError::Incompatible { .. })),
        "{parked:?}"
    );
    // v2 cannot put it back: its definition is not v1's.
    let refused = v2.resume_parked("old").await.unwrap_err();
    assert!(
        refused.to_string().contains(Count::FINGERPRINT),
        "{refused}"
    );
    // Code that registers v1 can, and finishes it as v1 would.
    let v1 = Runner::builder()
        .store(store.clone())
        .durable(Count::default())
        .build()
        .unwrap();
    assert!(v1.resume_parked("old").await.unwrap());
    assert_eq!(v1.handle(&Count::ID, "old").result().await.unwrap(), 8);
}

/// JSON, laid out for people: a codec of another name.
struct Pretty;

impl workflow_runtime::durable::Codec for Pretty {
    fn name(&self) -> &'static str {
        "pretty"
    }
    fn encode(
        &self,
        value: &serde_json::Value,
    ) -> Result<Vec<u8>, workflow_runtime::durable::CodecError> {
        serde_json::to_vec_pretty(value).map_err(workflow_runtime::durable::CodecError::new)
    }
    fn decode(
        &self,
        bytes: &[u8],
    ) -> Result<serde_json::Value, workflow_runtime::durable::CodecError> {
        serde_json::from_slice(bytes).map_err(workflow_runtime::durable::CodecError::new)
    }
}

/// Runs `id` of `Count` on `memory`, through a store with `codec`, until
/// its first step's row is journaled, then stops, as a killed process
/// would.
async fn left_after_its_first_step(
    memory: &MemoryStore,
    codec: impl workflow_runtime::durable::Codec,
    id: &str,
) {
    use workflow_runtime::testing::{Crash, CrashingStore};
    let dying = CrashingStore::new(memory.clone(), Crash::after("a number"));
    let runner = Runner::builder()
        .store(Store::new(dying.clone()).with_codec(codec))
        .durable(Count::default())
        .build()
        .unwrap();
    let _ = runner.start(&Count::ID, id, 5).await.unwrap();
    dying.crashed().await;
}

/// Point 13: before, a store given another codec read every run it had
/// with the new one: every run journaled before was corrupt. Each run now
/// keeps the codec it started with.
#[tokio::test]
async fn a_store_given_another_codec_still_reads_the_runs_it_had() {
    let memory = MemoryStore::new();
    left_after_its_first_step(&memory, workflow_runtime::durable::Json, "before").await;
    let store = Store::new(memory.clone()).with_codec(Pretty);
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Count::default())
        .build()
        .unwrap();
    assert_eq!(runner.resume().await.unwrap(), 1);
    assert_eq!(
        runner.handle(&Count::ID, "before").result().await.unwrap(),
        10
    );
    // New runs take the store's codec.
    let after = runner.start(&Count::ID, "after", 7).await.unwrap();
    assert_eq!(after.result().await.unwrap(), 14);
    let row = memory.run("after").await.unwrap().unwrap();
    assert_eq!(row.codec, "pretty");
    assert!(
        String::from_utf8(row.output.unwrap())
            .unwrap()
            .contains("14")
    );

    // A runner whose store lacks a run's codec parks the run, naming both.
    left_after_its_first_step(&memory, Pretty, "pretty-left").await;
    let plain = Runner::builder()
        .store(Store::new(memory))
        .durable(Count::default())
        .build()
        .unwrap();
    assert_eq!(plain.resume().await.unwrap(), 1);
    let parked = plain.handle(&Count::ID, "pretty-left").result().await;
    assert!(
        matches!(&parked, Err(DurableError::Stuck { reason, .. }) if reason.contains("codec pretty")),
        "{parked:?}"
    );
}

/// Point 13: before, each drive of a run its journal failed counted as a
/// failed run, so a database blip made health report failures the code
/// never had. A run driven again is interrupted, not failed.
#[tokio::test(start_paused = true)]
async fn a_run_driven_again_counts_no_failed_run() {
    let down = Arc::new(AtomicBool::new(true));
    let store = Store::new(Flaky {
        inner: MemoryStore::new(),
        down: down.clone(),
    });
    let runner = Runner::builder()
        .store(store)
        .durable(Count::default())
        .build()
        .unwrap();
    // The database answers again after the first drive gave up its row.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(6)).await;
        down.store(false, Ordering::SeqCst);
    });
    let run = runner.start(&Count::ID, "blip", 4).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 8);
    let health = runner.health();
    let count = health
        .workflows
        .iter()
        .find(|w| w.name == "Count")
        .expect("Count ran");
    assert_eq!((count.failures, count.consecutive_failures), (0, 0));
    assert!(count.runs >= 2, "driven twice: {}", count.runs);
    assert_eq!(health.status, HealthStatus::Healthy);
}
