//! Durable workflows on the in-memory and SQLite stores: journaled steps,
//! resume from the first unfinished step, idempotent start, step keys,
//! transactional steps, versioning.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_runtime::durable::{
    Backend, Durable, DurableError, JournalMark, MemoryStore, RunRow, RunStatus, SqliteOptions,
    SqliteStore, SqliteTx, StepCtx, StepRow, Store,
};
use workflow_runtime::host::{Cadence, Runner};
use workflow_runtime::prelude::*;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::{Declined, TempDir};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    paid: bool,
}

/// Counts how often each step body runs; `fail_charge` makes charging fail.
#[derive(Default)]
struct Pay {
    loads: AtomicU32,
    charges: AtomicU32,
    fail_charge: std::sync::atomic::AtomicBool,
    keys: std::sync::Mutex<Vec<String>>,
}

#[workflow(durable)]
impl Pay {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Order { id, paid: false }
    }

    #[step(when = "process payment")]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        self.charges.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap().push(step.key());
        if self.fail_charge.load(Ordering::SeqCst) {
            return Err(Declined);
        }
        Ok(Order {
            paid: true,
            ..order
        })
    }

    #[step(then = "it is paid")]
    fn paid(&self, order: &Order) -> bool {
        order.paid
    }
}

#[tokio::test]
async fn a_run_journals_each_step_and_completes() {
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Pay::default())
        .build()
        .unwrap();
    let run = runner.start(&Pay::ID, "order-1", 1).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Order { id: 1, paid: true });
    let row = store.run("order-1").await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Completed);
    let steps = store.backend().steps("order-1").await.unwrap();
    let titles: Vec<_> = steps.iter().map(|s| (s.index, s.title.as_str())).collect();
    assert_eq!(titles, [(0, "pending order"), (1, "process payment")]);
    assert_eq!(
        String::from_utf8_lossy(&steps[1].output),
        r#"{"id":1,"paid":true}"#
    );
}

#[tokio::test]
async fn starting_a_run_id_twice_is_one_run() {
    let pay = Arc::new(Pay::default());
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let first = runner.start(&ArcPay::ID, "order-2", 2).await.unwrap();
    let second = runner.start(&ArcPay::ID, "order-2", 2).await.unwrap();
    assert_eq!(first.result().await.unwrap().id, 2);
    assert_eq!(second.result().await.unwrap().id, 2);
    let third = runner.start(&ArcPay::ID, "order-2", 2).await.unwrap();
    assert_eq!(third.result().await.unwrap().id, 2);
    assert_eq!(pay.charges.load(Ordering::SeqCst), 1);
    assert_eq!(store.counts().await.unwrap().completed, 1);
    // The same id with another input is another request: refused.
    let err = runner.start(&ArcPay::ID, "order-2", 3).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"run "order-2" exists with another input; a run id names one request"#
    );
}

/// `Pay` behind an `Arc`, so a test keeps its counters after handing it
/// to a runner.
struct ArcPay(Arc<Pay>);

#[workflow(durable, name = "ArcPay")]
impl ArcPay {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        self.0.load(id)
    }

    #[step(when = "process payment")]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        self.0.charge(step, order).await
    }
}

#[tokio::test]
async fn a_failed_run_is_journaled_as_failed_and_not_resumed() {
    let pay = Arc::new(Pay::default());
    pay.fail_charge.store(true, Ordering::SeqCst);
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let run = runner.start(&ArcPay::ID, "order-3", 3).await.unwrap();
    let err = run.result().await.unwrap_err();
    assert!(
        matches!(&err, DurableError::Failed { run, step: Some(step), error }
            if run == "order-3" && step == "process payment" && error.contains("card declined")),
        "{err}"
    );
    assert_eq!(runner.resume().await.unwrap(), 0);
}

#[tokio::test]
async fn a_resumed_run_replays_completed_steps_from_the_journal() {
    let journal = MemoryStore::new();
    // First life: the charge fails... and the process "dies" with the run
    // unfinished: a running row and the first step journaled.
    let store = Store::new(journal.clone());
    let first = Arc::new(Pay::default());
    {
        let row = RunRow::new(
            "order-4",
            "ArcPay",
            <ArcPay as workflow_runtime::durable::Durable>::FINGERPRINT,
            b"4".to_vec(),
        );
        journal.insert_run(&row).await.unwrap();
        let step = StepRow::new(
            0,
            "pending order",
            br#"{"id":4,"paid":false}"#.to_vec(),
            1,
            0,
            0,
        );
        journal.record_step("order-4", &step).await.unwrap();
    }
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(first.clone()))
        .build()
        .unwrap();
    assert_eq!(runner.resume().await.unwrap(), 1);
    let run = runner.start(&ArcPay::ID, "order-4", 4).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Order { id: 4, paid: true });
    assert_eq!(
        first.loads.load(Ordering::SeqCst),
        0,
        "the journaled step ran again"
    );
    assert_eq!(first.charges.load(Ordering::SeqCst), 1);
    assert_eq!(*first.keys.lock().unwrap(), ["order-4/1"]);
}

#[tokio::test]
async fn a_run_id_of_another_workflow_is_refused() {
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Pay::default())
        .durable(ArcPay(Arc::default()))
        .build()
        .unwrap();
    runner
        .start(&Pay::ID, "shared", 1)
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    let err = runner.start(&ArcPay::ID, "shared", 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"run "shared" is a run of workflow "Pay""#
    );
}

#[tokio::test]
async fn starting_needs_a_store_and_a_registered_workflow() {
    let runner = Runner::builder().durable(Pay::default()).build().unwrap();
    let err = runner.start(&Pay::ID, "x", 1).await.unwrap_err();
    assert!(matches!(err, DurableError::NoStore), "{err}");
    let runner = Runner::builder().store(Store::memory()).build().unwrap();
    let err = runner.start(&Pay::ID, "x", 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "workflow \"Pay\" is not registered: add it with `Runner::builder().durable(..)`"
    );
}

#[tokio::test]
async fn a_run_outlives_the_future_that_started_it() {
    let pay = Arc::new(Pay::default());
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(SlowPay(pay.clone()))
        .build()
        .unwrap();
    // A request handler starts the run, then its client goes away: the
    // handler's future is dropped while the run is mid-step.
    let started = tokio::time::timeout(Duration::from_millis(5), async {
        let run = runner.start(&SlowPay::ID, "order-5", 5).await.unwrap();
        run.result().await
    })
    .await;
    assert!(started.is_err(), "the run should still be going");
    assert_eq!(pay.charges.load(Ordering::SeqCst), 0);
    // The runner finishes it all the same, with no one asking.
    for _ in 0..200 {
        if runner.durable_in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(pay.charges.load(Ordering::SeqCst), 1);
    assert_eq!(
        store.run("order-5").await.unwrap().unwrap().status,
        RunStatus::Completed
    );
}

/// `Pay` with a charge that takes a while.
struct SlowPay(Arc<Pay>);

#[workflow(durable)]
impl SlowPay {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        self.0.load(id)
    }

    #[step(when = "process payment")]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.0.charge(step, order).await
    }
}

#[tokio::test]
async fn a_run_journaled_by_another_definition_is_parked_not_replayed() {
    let journal = MemoryStore::new();
    let row = RunRow::new("order-6", "ArcPay", "0123456789abcdef", b"6".to_vec());
    journal.insert_run(&row).await.unwrap();
    let pay = Arc::new(Pay::default());
    let store = Store::new(journal);
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let run = runner.start(&ArcPay::ID, "order-6", 6).await.unwrap();
    let err = run.result().await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(r#"run "order-6" is incompatible with this code: its journal was written by definition 0123456789abcdef of "ArcPay""#),
        "{message}"
    );
    assert_eq!(pay.loads.load(Ordering::SeqCst), 0);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.running, counts.incompatible), (0, 1));
    let health = runner.durable_health().await.unwrap();
    assert_eq!(
        health.status,
        workflow_runtime::host::HealthStatus::Degraded
    );
}

#[tokio::test]
async fn a_corrupt_journal_row_parks_the_run_naming_it_and_the_file() {
    let dir = TempDir::new("corrupt-row");
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    let fingerprint = <ArcPay as Durable>::FINGERPRINT;
    sqlite
        .insert_run(&RunRow::new(
            "order-7",
            "ArcPay",
            fingerprint,
            b"7".to_vec(),
        ))
        .await
        .unwrap();
    // Step 0's output, written by hand: not an `Order`.
    let bad = StepRow::new(0, "pending order", br#"{"id":"seven"}"#.to_vec(), 1, 0, 0);
    sqlite.record_step("order-7", &bad).await.unwrap();
    let pay = Arc::new(Pay::default());
    let store = Store::new(sqlite);
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    assert_eq!(runner.resume().await.unwrap(), 1);
    let err = runner
        .start(&ArcPay::ID, "order-7", 7)
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(r#"run "order-7""#), "{message}");
    assert!(message.contains("runs.db"), "{message}");
    assert!(
        message.contains(r#"step 0 ("pending order") output does not decode"#),
        "{message}"
    );
    assert_eq!(
        pay.charges.load(Ordering::SeqCst),
        0,
        "a step after the bad row ran"
    );
    // The row is still there, as written.
    let steps = store.backend().steps("order-7").await.unwrap();
    assert_eq!(steps, [bad]);
}

/// Saves an order in the store's own database, in the step's transaction.
struct SaveOrder {
    fail: bool,
}

#[workflow(durable)]
impl SaveOrder {
    #[step(given = "an order")]
    fn order(&self, id: u64) -> Order {
        Order { id, paid: true }
    }

    #[step(when = "it is saved", transactional)]
    async fn save(&self, tx: &mut SqliteTx, order: Order) -> Result<u64, sqlx::Error> {
        let id = i64::try_from(order.id).unwrap_or_default();
        sqlx::query("INSERT INTO orders (id) VALUES (?)")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        if self.fail {
            // After the write: the rollback must take it back.
            return Err(sqlx::Error::RowNotFound);
        }
        Ok(order.id)
    }
}

async fn orders_db(dir: &TempDir) -> SqliteStore {
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE orders (id INTEGER NOT NULL)")
        .execute(sqlite.pool())
        .await
        .unwrap();
    sqlite
}

async fn saved(sqlite: &SqliteStore) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
        .fetch_all(sqlite.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_transactional_step_commits_its_writes_with_its_journal_row() {
    let dir = TempDir::new("tx-commit");
    let sqlite = orders_db(&dir).await;
    let runner = Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(SaveOrder { fail: false })
        .build()
        .unwrap();
    let run = runner.start(&SaveOrder::ID, "o-8", 8).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 8);
    assert_eq!(saved(&sqlite).await, [8]);
    let journaled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM workflow_steps WHERE run_id = 'o-8' AND step_index = 1",
    )
    .fetch_one(sqlite.pool())
    .await
    .unwrap();
    assert_eq!(journaled, 1);
}

#[tokio::test]
async fn a_failed_transactional_step_leaves_no_write_behind() {
    let dir = TempDir::new("tx-rollback");
    let sqlite = orders_db(&dir).await;
    let runner = Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(SaveOrder { fail: true })
        .build()
        .unwrap();
    let err = runner
        .start(&SaveOrder::ID, "o-9", 9)
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::Failed { .. }), "{err}");
    assert!(
        saved(&sqlite).await.is_empty(),
        "the failed step's write was kept"
    );
    let steps = sqlite.steps("o-9").await.unwrap();
    assert_eq!(
        steps.iter().filter(|row| row.mark().is_none()).count(),
        1,
        "only the first step is journaled"
    );
    assert!(
        steps
            .iter()
            .any(|row| row.mark() == Some(JournalMark::FailedAt(1))),
        "the journal says where the run failed"
    );
}

#[tokio::test]
async fn a_transactional_step_without_a_store_says_so() {
    let ctx = SaveOrder::context().build();
    let err = SaveOrder { fail: false }.run(&ctx, 1).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "step \"it is saved\" is transactional: it runs only in a durable run of a runner with a SQL store"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_durable_workflow_runs_without_a_store_as_a_plain_one() {
    let pay = Pay::default();
    let ctx = Pay::context().build();
    assert_eq!(
        pay.run(&ctx, 10).await.unwrap(),
        Order { id: 10, paid: true }
    );
    assert!(ctx.all_passed());
    // With no run id, a step's key uses the context's execution id.
    let key = pay.keys.lock().unwrap()[0].clone();
    assert_eq!(key, format!("{}/1", ctx.execution_id()));
}

#[tokio::test]
async fn replayed_steps_skip_their_behaviors_and_are_recorded_as_replayed() {
    let journal = MemoryStore::new();
    let fingerprint = <ArcPay as Durable>::FINGERPRINT;
    let row = RunRow::new("order-11", "ArcPay", fingerprint, b"11".to_vec());
    journal.insert_run(&row).await.unwrap();
    let step = StepRow::new(
        0,
        "pending order",
        br#"{"id":11,"paid":false}"#.to_vec(),
        1,
        0,
        0,
    );
    journal.record_step("order-11", &step).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let runner = Runner::builder()
        .store(Store::new(journal))
        .durable(ArcPay(Arc::default()))
        .behavior(recorder.clone())
        .build()
        .unwrap();
    let run = runner.start(&ArcPay::ID, "order-11", 11).await.unwrap();
    run.result().await.unwrap();
    assert_eq!(*recorder.titles.lock().unwrap(), ["process payment"]);
    let ctx = recorder.ctx.lock().unwrap().clone().unwrap();
    let outcomes: Vec<_> = ctx
        .steps()
        .iter()
        .map(|s| (s.title.to_string(), s.outcome.to_string()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("pending order".to_owned(), "replayed".to_owned()),
            ("process payment".to_owned(), "passed".to_owned())
        ]
    );
    assert!(ctx.all_passed());
}

/// Remembers the steps it wraps, and their run's context.
#[derive(Default)]
struct Recorder {
    titles: std::sync::Mutex<Vec<String>>,
    ctx: std::sync::Mutex<Option<WorkflowContext>>,
}

impl workflow_runtime::behavior::Behavior for Recorder {
    fn around<'a>(
        &'a self,
        step: &'a workflow_runtime::behavior::StepScope,
        mut next: workflow_runtime::behavior::Next<'a>,
    ) -> workflow_runtime::behavior::BoxFuture<'a, workflow_runtime::behavior::Attempted> {
        self.titles.lock().unwrap().push(step.title().to_owned());
        *self.ctx.lock().unwrap() = Some(step.ctx().clone());
        Box::pin(async move { next.run().await })
    }
}

#[tokio::test]
async fn a_host_resumes_unfinished_runs_when_it_starts() {
    let journal = MemoryStore::new();
    let fingerprint = <ArcPay as Durable>::FINGERPRINT;
    let row = RunRow::new("order-12", "ArcPay", fingerprint, b"12".to_vec());
    journal.insert_run(&row).await.unwrap();
    let pay = Arc::new(Pay::default());
    let host = workflow_runtime::host::WorkflowHost::builder()
        .store(Store::new(journal.clone()))
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let runner = host.runner();
    // The host stops once the run it resumed is done.
    let done = async {
        for _ in 0..400 {
            let run = journal.run("order-12").await.unwrap().unwrap();
            if run.status.is_finished() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the host did not resume the run");
    };
    host.run_until(done).await;
    let run = journal.run("order-12").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(pay.loads.load(Ordering::SeqCst), 1);
    let health = runner.durable_health().await.unwrap();
    assert_eq!(health.status, workflow_runtime::host::HealthStatus::Healthy);
    assert_eq!((health.counts.completed, health.in_flight), (1, 0));
}

#[tokio::test]
async fn a_host_lets_durable_runs_in_flight_finish_at_shutdown() {
    let pay = Arc::new(Pay::default());
    let store = Store::memory();
    let host = workflow_runtime::host::WorkflowHost::builder()
        .store(store.clone())
        .durable(SlowPay(pay.clone()))
        .build()
        .unwrap();
    let runner = host.runner();
    let signal = async {
        let run = runner.start(&SlowPay::ID, "order-13", 13).await.unwrap();
        drop(run);
        assert_eq!(runner.durable_in_flight(), 1);
    };
    host.run_until(signal).await;
    assert_eq!(runner.durable_in_flight(), 0);
    let run = store.run("order-13").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
}

/// Declines `declines` times, then charges; its retry waits `backoff`.
struct Flaky {
    declines: u32,
    attempts: std::sync::Mutex<Vec<u32>>,
}

impl Flaky {
    fn new(declines: u32) -> Self {
        Flaky {
            declines,
            attempts: std::sync::Mutex::default(),
        }
    }

    fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        self.attempts.lock().unwrap().push(step.attempt());
        if step.attempt() <= self.declines {
            return Err(Declined);
        }
        Ok(Order {
            paid: true,
            ..order
        })
    }
}

#[workflow(durable)]
impl FastRetry {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        Order { id, paid: false }
    }

    #[step(when = "process payment", retry(max_attempts = 3, backoff = "1ms"))]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        self.0.charge(step, order)
    }
}

struct FastRetry(Arc<Flaky>);

#[workflow(durable)]
impl SlowRetry {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        Order { id, paid: false }
    }

    #[step(when = "process payment", retry(max_attempts = 3, backoff = "10m"))]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        self.0.charge(step, order)
    }
}

struct SlowRetry(Arc<Flaky>);

#[tokio::test]
async fn failed_attempts_are_journaled_with_their_count() {
    let flaky = Arc::new(Flaky::new(2));
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(FastRetry(flaky.clone()))
        .build()
        .unwrap();
    let run = runner.start(&FastRetry::ID, "order-14", 14).await.unwrap();
    assert!(run.result().await.unwrap().paid);
    assert_eq!(*flaky.attempts.lock().unwrap(), [1, 2, 3]);
    let failures = store.backend().failures("order-14").await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].index, failures[0].attempts), (1, 2));
    assert_eq!(failures[0].error, "card declined");
    let steps = store.backend().steps("order-14").await.unwrap();
    assert_eq!(steps[1].attempts, 3);
}

/// A journal left by a process that died while step 1 waited out its
/// backoff after `attempts` failures, the last `ago` before now.
async fn died_while_retrying(id: &str, attempts: u32, failed_ms: i64) -> MemoryStore {
    let journal = MemoryStore::new();
    let fingerprint = <SlowRetry as Durable>::FINGERPRINT;
    let bytes = id.trim_start_matches("order-").as_bytes().to_vec();
    journal
        .insert_run(&RunRow::new(id, "SlowRetry", fingerprint, bytes))
        .await
        .unwrap();
    let output = br#"{"id":15,"paid":false}"#.to_vec();
    journal
        .record_step(id, &StepRow::new(0, "pending order", output, 1, 0, 0))
        .await
        .unwrap();
    let mut failure = workflow_runtime::durable::FailureRow::new(1, attempts, "card declined");
    failure.failed_ms = failed_ms;
    journal.record_failure(id, &failure).await.unwrap();
    journal
}

// On virtual time: the runner's clock follows tokio's paused clock, so
// the rest of the backoff is waited exactly, and at once.
#[tokio::test(start_paused = true)]
async fn a_resumed_retry_keeps_its_count_and_the_rest_of_its_backoff() {
    use workflow_runtime::Clock;
    // 2026-01-01 00:00:00 UTC, by the runner's clock.
    let now_ms: i64 = 1_767_225_600_000;
    let clock = Clock::following_tokio(
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap()),
    );
    // Two attempts failed; the backoff after the second is 10 minutes, of
    // which all but 300ms had passed at the crash.
    let ago =
        i64::try_from((Duration::from_secs(10 * 60) - Duration::from_millis(300)).as_millis())
            .unwrap();
    let journal = died_while_retrying("order-15", 2, now_ms - ago).await;
    let flaky = Arc::new(Flaky::new(2));
    let runner = Runner::builder()
        .clock(clock)
        .store(Store::new(journal))
        .durable(SlowRetry(flaky.clone()))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let run = runner.start(&SlowRetry::ID, "order-15", 15).await.unwrap();
    let order = tokio::time::timeout(Duration::from_secs(30), run.result())
        .await
        .expect("the backoff started over")
        .unwrap();
    assert!(order.paid);
    // Attempt 3 ran, once, after what was left of the backoff.
    assert_eq!(*flaky.attempts.lock().unwrap(), [3]);
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(330)).contains(&waited),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_resumed_retry_with_no_attempts_left_fails_with_the_journaled_error() {
    use workflow_runtime::Clock;
    let journal = died_while_retrying("order-16", 3, Clock::system().now_ms() - 1_000).await;
    let flaky = Arc::new(Flaky::new(0));
    let runner = Runner::builder()
        .store(Store::new(journal))
        .durable(SlowRetry(flaky.clone()))
        .build()
        .unwrap();
    let err = runner
        .start(&SlowRetry::ID, "order-16", 16)
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("card declined"), "{err}");
    assert!(
        flaky.attempts.lock().unwrap().is_empty(),
        "a fourth attempt ran"
    );
}

/// Its charge's first attempt journals its own row, then fails: as if the
/// attempt's commit went through and a timeout cut it short.
struct CutShort {
    journal: MemoryStore,
    calls: AtomicU32,
}

#[workflow(durable)]
impl CutShort {
    #[step(given = "an id")]
    fn id(&self, id: u64) -> u64 {
        id
    }

    #[step(when = "charged", retry(max_attempts = 3, backoff = "1ms"))]
    async fn charge(&self, step: &StepCtx, id: u64) -> Result<u64, Declined> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let row = StepRow::new(1, "charged", b"4200".to_vec(), 1, 0, 0);
            self.journal.record_step(step.run_id(), &row).await.unwrap();
            return Err(Declined);
        }
        Ok(id * 100)
    }
}

#[tokio::test]
async fn an_attempt_after_one_that_committed_hands_on_its_row() {
    let journal = MemoryStore::new();
    let cut = Arc::new(CutShort {
        journal: journal.clone(),
        calls: AtomicU32::new(0),
    });
    let runner = Runner::builder()
        .store(Store::new(journal.clone()))
        .durable(ArcCut(cut.clone()))
        .build()
        .unwrap();
    let run = runner.start(&ArcCut::ID, "cut-1", 7).await.unwrap();
    // The journaled value, not a second charge's.
    assert_eq!(run.result().await.unwrap(), 4200);
    assert_eq!(cut.calls.load(Ordering::SeqCst), 1);
}

struct ArcCut(Arc<CutShort>);

#[workflow(durable, name = "CutShort")]
impl ArcCut {
    #[step(given = "an id")]
    fn id(&self, id: u64) -> u64 {
        self.0.id(id)
    }

    #[step(when = "charged", retry(max_attempts = 3, backoff = "1ms"))]
    async fn charge(&self, step: &StepCtx, id: u64) -> Result<u64, Declined> {
        self.0.charge(step, id).await
    }
}

/// A memory store whose first step write fails, as a full disk would.
struct FailsOnce {
    inner: MemoryStore,
    failed: std::sync::atomic::AtomicBool,
    /// The step whose row fails to land once (any first row when `None`).
    step: Option<&'static str>,
}

impl Backend for FailsOnce {
    fn describe(&self) -> String {
        "fails-once".to_owned()
    }
    fn insert_run<'a>(
        &'a self,
        run: &'a RunRow,
    ) -> workflow_runtime::behavior::BoxFuture<
        'a,
        Result<workflow_runtime::durable::Inserted, workflow_runtime::durable::StoreError>,
    > {
        self.inner.insert_run(run)
    }
    fn run<'a>(
        &'a self,
        id: &'a str,
    ) -> workflow_runtime::behavior::BoxFuture<
        'a,
        Result<Option<RunRow>, workflow_runtime::durable::StoreError>,
    > {
        self.inner.run(id)
    }
    fn steps<'a>(
        &'a self,
        run: &'a str,
    ) -> workflow_runtime::behavior::BoxFuture<
        'a,
        Result<Vec<StepRow>, workflow_runtime::durable::StoreError>,
    > {
        self.inner.steps(run)
    }
    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> workflow_runtime::behavior::BoxFuture<'a, Result<(), workflow_runtime::durable::StoreError>>
    {
        let this_step = self.step.is_none_or(|title| title == step.title);
        if this_step && !self.failed.swap(true, Ordering::SeqCst) {
            return Box::pin(async {
                Err(workflow_runtime::durable::StoreError::Database {
                    store: "fails-once".to_owned(),
                    doing: "journaling a step".to_owned(),
                    source: "disk full".into(),
                })
            });
        }
        self.inner.record_step(run, step)
    }
    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a workflow_runtime::durable::FailureRow,
    ) -> workflow_runtime::behavior::BoxFuture<'a, Result<(), workflow_runtime::durable::StoreError>>
    {
        self.inner.record_failure(run, failure)
    }
    fn failures<'a>(
        &'a self,
        run: &'a str,
    ) -> workflow_runtime::behavior::BoxFuture<
        'a,
        Result<Vec<workflow_runtime::durable::FailureRow>, workflow_runtime::durable::StoreError>,
    > {
        self.inner.failures(run)
    }
    fn finish_run<'a>(
        &'a self,
        run: &'a str,
        end: &'a workflow_runtime::durable::RunEnd,
    ) -> workflow_runtime::behavior::BoxFuture<
        'a,
        Result<bool, workflow_runtime::durable::StoreError>,
    > {
        self.inner.finish_run(run, end)
    }
    fn running(
        &self,
    ) -> workflow_runtime::behavior::BoxFuture<
        '_,
        Result<Vec<RunRow>, workflow_runtime::durable::StoreError>,
    > {
        self.inner.running()
    }
    fn counts_by_workflow(
        &self,
        now_ms: i64,
    ) -> workflow_runtime::behavior::BoxFuture<
        '_,
        Result<workflow_runtime::durable::WorkflowCounts, workflow_runtime::durable::StoreError>,
    > {
        self.inner.counts_by_workflow(now_ms)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[tokio::test]
async fn a_journal_write_that_failed_once_is_tried_again_with_the_value() {
    let pay = Arc::new(Pay::default());
    let journal = MemoryStore::new();
    let store = Store::new(FailsOnce {
        inner: journal.clone(),
        failed: std::sync::atomic::AtomicBool::new(false),
        step: None,
    });
    let runner = Runner::builder()
        .store(store)
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let run = runner.start(&ArcPay::ID, "order-17", 17).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Order { id: 17, paid: true });
    // The first step's row did not land at first: written again with the
    // value in hand, so the step ran once.
    assert_eq!(pay.loads.load(Ordering::SeqCst), 1);
    assert_eq!(pay.charges.load(Ordering::SeqCst), 1);
    assert_eq!(
        journal.run("order-17").await.unwrap().unwrap().status,
        RunStatus::Completed
    );
}

/// Runs hourly; after downtime, the latest missed tick runs once.
struct Nightly;

#[workflow(durable, every = "1h", catch_up = "latest")]
impl Nightly {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

#[test]
fn a_schedule_catches_up_with_its_latest_tick_when_asked() {
    let schedule = Nightly::schedule().unwrap();
    assert_eq!(schedule.cadence, Cadence::Every(Duration::from_secs(3600)));
    assert_eq!(schedule.catch_up, workflow_runtime::host::CatchUp::Latest);
    assert_eq!(Pay::schedule(), None);
}

#[tokio::test]
async fn a_run_stopped_before_its_end_was_written_replays_its_first_step_and_runs_its_last_again() {
    use workflow_runtime::testing::{Crash, CrashingStore};

    let memory = MemoryStore::new();
    let pay = Arc::new(Pay::default());
    let dying = CrashingStore::new(memory.clone(), Crash::BeforeEnd);
    let first = Runner::builder()
        .store(Store::new(dying.clone()))
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let _ = first.start(&ArcPay::ID, "order-41", 41).await.unwrap();
    dying.crashed().await;
    assert_eq!(pay.charges.load(Ordering::SeqCst), 1);

    let second = Runner::builder()
        .store(Store::new(memory.clone()))
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    assert_eq!(second.resume().await.unwrap(), 1);
    let run = second.start(&ArcPay::ID, "order-41", 41).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Order { id: 41, paid: true });
    // The first step came from the journal. The last one's row is
    // written with the end, so the crash before the end was a crash
    // before that row: the charge ran again, as after a crash before
    // its own commit (its step key is the same, for a bank's idempotency).
    assert_eq!(pay.loads.load(Ordering::SeqCst), 1);
    assert_eq!(pay.charges.load(Ordering::SeqCst), 2);
    let row = memory.run("order-41").await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Completed);
}

/// Reserves, then charges; the reservation is undone if a later step fails.
#[derive(Default)]
struct Reserve {
    released: AtomicU32,
    charges: AtomicU32,
}

struct ArcReserve(Arc<Reserve>);

#[workflow(durable)]
impl ArcReserve {
    #[step(given = "an order")]
    fn order(&self, id: u64) -> u64 {
        id
    }

    #[step(when = "reserve stock", compensate = release)]
    fn reserve(&self, id: u64) -> u64 {
        id
    }

    #[step(when = "charge card")]
    fn charge(&self, id: u64) -> u64 {
        self.0.charges.fetch_add(1, Ordering::SeqCst);
        id
    }

    #[compensation]
    fn release(&self, id: u64) {
        let _ = id;
        self.0.released.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_step_whose_row_did_not_land_at_first_is_not_undone() {
    let reserve = Arc::new(Reserve::default());
    let journal = MemoryStore::new();
    let store = Store::new(FailsOnce {
        inner: journal.clone(),
        failed: std::sync::atomic::AtomicBool::new(false),
        // Not the last step, whose row goes with the run's end: the row
        // of a step with a compensation, written on its own.
        step: Some("reserve stock"),
    });
    let runner = Runner::builder()
        .store(store)
        .durable(ArcReserve(reserve.clone()))
        .build()
        .unwrap();
    let run = runner.start(&ArcReserve::ID, "order-18", 18).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 18);
    // The journal's failure is no failure of the step's: nothing undone,
    // and the reservation's row written again rather than the steps run
    // again.
    assert_eq!(reserve.released.load(Ordering::SeqCst), 0);
    assert_eq!(reserve.charges.load(Ordering::SeqCst), 1);
}

/// A memory store that counts the journal reads a drive makes and the
/// worker's looks for due runs, and can hold each run write, once made,
/// until the test lets it return (the moment between a start's write and
/// its drive, held open).
#[derive(Clone)]
struct Watched {
    inner: MemoryStore,
    reads: Arc<Reads>,
    /// `Some`: each run write waits for a permit once written.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

#[derive(Default)]
struct Reads {
    runs: AtomicU32,
    steps: AtomicU32,
    failures: AtomicU32,
    looks: AtomicU32,
}

use workflow_runtime::behavior::BoxFuture;
use workflow_runtime::durable::{FailureRow, Inserted, RunEnd, StoreError, WorkflowCounts};

impl Watched {
    fn new() -> Self {
        Watched {
            inner: MemoryStore::new(),
            reads: Arc::default(),
            gate: None,
        }
    }

    fn holding_starts() -> Self {
        Watched {
            gate: Some(Arc::new(tokio::sync::Semaphore::new(0))),
            ..Watched::new()
        }
    }

    /// Runs, steps and failures read so far.
    fn reads(&self) -> [u32; 3] {
        let reads = &self.reads;
        [&reads.runs, &reads.steps, &reads.failures].map(|n| n.load(Ordering::SeqCst))
    }
}

impl Backend for Watched {
    fn describe(&self) -> String {
        "watched".to_owned()
    }
    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        Box::pin(async move {
            let inserted = self.inner.insert_run(run).await;
            if let Some(gate) = &self.gate {
                drop(gate.acquire().await.unwrap());
            }
            inserted
        })
    }
    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>> {
        self.reads.runs.fetch_add(1, Ordering::SeqCst);
        self.inner.run(id)
    }
    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        self.reads.steps.fetch_add(1, Ordering::SeqCst);
        self.inner.steps(run)
    }
    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
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
        self.reads.failures.fetch_add(1, Ordering::SeqCst);
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
        self.reads.looks.fetch_add(1, Ordering::SeqCst);
        self.inner.running()
    }
    fn request_cancel<'a>(
        &'a self,
        run: &'a str,
        reason: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.inner.request_cancel(run, reason, now_ms)
    }
    fn counts_by_workflow(&self, now_ms: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>> {
        self.inner.counts_by_workflow(now_ms)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A run this process starts is driven from the row it wrote: its journal
/// is known empty, so the drive reads neither the row back nor its steps
/// and failures, and its handle takes the end the drive wrote: nothing is
/// read. A run found in the store is read afresh before it is resumed.
#[tokio::test]
async fn a_started_run_is_driven_from_the_row_it_wrote() {
    let counts = Watched::new();
    let runner = Runner::builder()
        .store(Store::new(counts.clone()))
        .durable(Pay::default())
        .build()
        .unwrap();
    let run = runner.start(&Pay::ID, "fresh", 1).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Order { id: 1, paid: true });
    assert_eq!(counts.reads(), [0, 0, 0], "run, steps, failures read");

    // Written by someone else (a process that crashed after the write):
    // resumed from what the store holds.
    let order = serde_json::to_vec(&5_u64).unwrap();
    counts
        .inner
        .insert_run(&RunRow::new("found", "Pay", Pay::FINGERPRINT, order))
        .await
        .unwrap();
    runner.resume().await.unwrap();
    let found = runner.handle(&Pay::ID, "found").result().await.unwrap();
    assert_eq!(found, Order { id: 5, paid: true });
    let [runs, steps, failures] = counts.reads();
    assert!(
        runs >= 1 && steps == 1 && failures == 1,
        "{:?}",
        counts.reads()
    );
}

/// A start whose run is written but not yet driven, while this process's
/// worker looks for due runs again and again: the worker leaves the run
/// to the start (it is in flight here from before its write), and the
/// order is charged once. Taken up by the worker, it would be charged by
/// the worker and again by the start's drive from the row it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_leaves_a_started_run_to_its_start() {
    let held = Watched::holding_starts();
    let pay = Arc::new(Pay::default());
    let runner = Runner::builder()
        .store(Store::new(held.clone()))
        .durable(ArcPay(pay.clone()))
        .look_every(Duration::from_millis(1))
        .build()
        .unwrap();
    let worker = tokio::spawn({
        let runner = runner.clone();
        async move { runner.work(8).await }
    });
    let start = tokio::spawn({
        let runner = runner.clone();
        async move {
            let run = runner.start(&ArcPay::ID, "held", 7).await.unwrap();
            run.result().await.unwrap()
        }
    });
    // Written, and held there while the worker looks ten times more.
    while held.inner.run("held").await.unwrap().is_none() {
        tokio::task::yield_now().await;
    }
    let looked = held.reads.looks.load(Ordering::SeqCst);
    while held.reads.looks.load(Ordering::SeqCst) < looked + 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        pay.charges.load(Ordering::SeqCst),
        0,
        "the worker took the run up"
    );
    held.gate.as_ref().unwrap().add_permits(1);
    assert!(start.await.unwrap().paid);
    assert_eq!(pay.charges.load(Ordering::SeqCst), 1, "one charge");
    worker.abort();
}

/// A cancel asked for while a start holds its written run (in flight here,
/// not yet driven) is not lost: the first drive, which would otherwise
/// take the row as written, reads the cancel from the store and undoes
/// the run before its steps run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_between_a_starts_write_and_its_drive_is_kept() {
    let held = Watched::holding_starts();
    let pay = Arc::new(Pay::default());
    let runner = Runner::builder()
        .store(Store::new(held.clone()))
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let start = tokio::spawn({
        let runner = runner.clone();
        async move { runner.start(&ArcPay::ID, "held", 7).await.unwrap() }
    });
    while held.inner.run("held").await.unwrap().is_none() {
        tokio::task::yield_now().await;
    }
    runner
        .cancel("held", "the customer changed their mind")
        .await
        .unwrap();
    held.gate.as_ref().unwrap().add_permits(1);
    let ended = start.await.unwrap().result().await;
    assert!(
        matches!(&ended, Err(DurableError::Cancelled { reason, .. }) if reason == "the customer changed their mind"),
        "{ended:?}"
    );
    assert_eq!(pay.loads.load(Ordering::SeqCst), 0, "no step ran");
    assert_eq!(pay.charges.load(Ordering::SeqCst), 0);
}

/// A durable workflow whose first step makes an `Order` from the run's
/// input.
#[derive(Default)]
struct LoadOnly;

#[workflow(durable)]
impl LoadOnly {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        Order { id, paid: false }
    }

    #[step(when = "process payment")]
    async fn charge(&self, _step: &StepCtx, order: Order) -> Result<Order, Declined> {
        Ok(order)
    }
}

/// A receipt only the later step makes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Receipt(u64);

/// Settles an order: fails its first try, not declared `replayable`.
#[derive(Default)]
struct Settle {
    tries: Arc<AtomicU32>,
}

#[workflow(durable)]
impl Settle {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        Order { id, paid: false }
    }

    #[step(when = "settled")]
    async fn settle(&self, _step: &StepCtx, order: Order) -> Result<Receipt, Declined> {
        match self.tries.fetch_add(1, Ordering::SeqCst) {
            0 => Err(Declined),
            _ => Ok(Receipt(order.id)),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_type_wide_retry_runs_a_later_durable_step_again_and_refuses_a_durable_first_step() {
    use workflow_runtime::behavior::Retry;
    use workflow_runtime::host::HostError;
    // The first step makes an `Order` from the run's input, which a durable
    // workflow's first step takes once: refused, naming it.
    let refused = Runner::builder()
        .store(Store::memory())
        .durable(LoadOnly)
        .behavior_for::<Order>(Retry::retries(2))
        .build()
        .err();
    assert_eq!(
        refused,
        Some(HostError::RetryCannotApply {
            workflow: "LoadOnly",
            step: "pending order",
            output: "Order",
        })
    );
    assert!(LoadOnly::STEPS[1].replayable, "`Order` is `Clone`");

    // For a type only the later step makes, the retry runs it again.
    let tries = Arc::new(AtomicU32::new(0));
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Settle {
            tries: tries.clone(),
        })
        .behavior_for::<Receipt>(Retry::retries(2))
        .build()
        .unwrap();
    let run = runner.start(&Settle::ID, "settle-1", 7).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Receipt(7));
    assert_eq!(tries.load(Ordering::SeqCst), 2);
    let steps = store.backend().steps("settle-1").await.unwrap();
    assert_eq!(steps[1].attempts, 2, "journaled as the second attempt");
}
