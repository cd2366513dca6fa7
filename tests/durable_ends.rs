//! Durable runs end, and a step that failed for good stays failed: an
//! assertion anywhere in the chain fails the run (it is not driven again
//! forever), a failure journaled before a crash is not run again after
//! it, a value that would not read back from the journal fails its step
//! before any row is written, and a step's own `StoreError` is a step
//! failure like any other, compensated.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workflow_runtime::durable::{
    DurableError, MemoryStore, RunStatus, SqliteOptions, SqliteStore, StepCtx, Store, StoreError,
};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Crash, CrashingStore};

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::{Declined, TempDir};

/// What the steps did, across every life of the process.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn note(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn count(&self, what: &str) -> usize {
        self.all().iter().filter(|w| *w == what).count()
    }
}

/// A charge guarded by an assertion before it.
struct GuardedCharge(Arc<Log>);

#[workflow(durable)]
impl GuardedCharge {
    #[step(given = "an amount")]
    fn amount(&self, cents: u32) -> u32 {
        cents
    }

    #[step(then = "it is valid")]
    fn valid(&self, cents: &u32) -> bool {
        *cents > 0
    }

    #[step(when = "charge")]
    fn charge(&self, cents: u32) -> String {
        self.0.note("charge");
        format!("charged {cents}")
    }
}

async fn sqlite(dir: &TempDir) -> Store {
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    Store::new(sqlite)
}

async fn status(store: &Store, run: &str) -> RunStatus {
    store.backend().run(run).await.unwrap().unwrap().status
}

/// Point 1 of the hardening: before, the run stayed `running` and was
/// driven again every few seconds, forever, as the first step without a
/// row (the charge) was not the one that failed.
async fn a_false_assertion_before_a_value_step_fails_the_run(store: Store) {
    let log = Arc::new(Log::default());
    let runner = Runner::builder()
        .store(store.clone())
        .durable(GuardedCharge(log.clone()))
        .build()
        .unwrap();
    let run = runner.start(&GuardedCharge::ID, "zero", 0).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), run.result())
        .await
        .expect("the run ends");
    match ended {
        Err(DurableError::Failed { step, .. }) => assert_eq!(step.as_deref(), Some("it is valid")),
        other => panic!("expected the assertion's failure, got {other:?}"),
    }
    assert_eq!(status(&store, "zero").await, RunStatus::Failed);
    assert_eq!(log.count("charge"), 0);
    assert_eq!(runner.durable_in_flight(), 0);
    assert_eq!(runner.resume().await.unwrap(), 0);
}

#[tokio::test]
async fn a_false_assertion_before_a_value_step_fails_the_run_in_memory() {
    a_false_assertion_before_a_value_step_fails_the_run(Store::memory()).await;
}

#[tokio::test]
async fn a_false_assertion_before_a_value_step_fails_the_run_in_sqlite() {
    let dir = TempDir::new("assertion-mid-chain");
    a_false_assertion_before_a_value_step_fails_the_run(sqlite(&dir).await).await;
}

/// A charge that fails without retry, after a step with a compensation
/// whose own failure is final too.
struct Declines {
    log: Arc<Log>,
    release_fails: bool,
}

#[workflow(durable)]
impl Declines {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "reserve", compensate = release)]
    fn reserve(&self, id: u32) -> u32 {
        self.log.note("reserve");
        id
    }

    #[step(when = "charge")]
    fn charge(&self, id: u32) -> Result<u32, Declined> {
        self.log.note("charge");
        // Declined in the first life only: run again, it would pass.
        if self.log.count("charge") == 1 {
            Err(Declined)
        } else {
            Ok(id)
        }
    }

    #[compensation]
    fn release(&self, _id: u32) -> Result<(), Declined> {
        self.log.note("release");
        if self.release_fails {
            Err(Declined)
        } else {
            Ok(())
        }
    }
}

/// Runs order 1 until the store dies just before the run's end is
/// written, then resumes it in a second life on the same journal.
async fn die_before_the_end_then_resume(release_fails: bool) -> (Arc<Log>, Store, DurableError) {
    let log = Arc::new(Log::default());
    let memory = MemoryStore::new();
    let dying = CrashingStore::new(memory.clone(), Crash::BeforeEnd);
    let first = Runner::builder()
        .store(Store::new(dying.clone()))
        .durable(Declines {
            log: log.clone(),
            release_fails,
        })
        .build()
        .unwrap();
    let _ = first.start(&Declines::ID, "order-1", 1).await.unwrap();
    dying.crashed().await;

    let store = Store::new(memory);
    let second = Runner::builder()
        .store(store.clone())
        .durable(Declines {
            log: log.clone(),
            release_fails,
        })
        .build()
        .unwrap();
    let run = second.start(&Declines::ID, "order-1", 1).await.unwrap();
    let error = run.result().await.unwrap_err();
    (log, store, error)
}

/// Point 10: before, the charge ran again as attempt 2, passed, and a run
/// the code had failed (and undone) completed.
#[tokio::test]
async fn a_step_that_failed_for_good_does_not_run_again_after_a_crash() {
    let (log, store, error) = die_before_the_end_then_resume(false).await;
    assert!(
        matches!(&error, DurableError::Failed { step: Some(step), .. } if step == "charge"),
        "{error:?}"
    );
    assert_eq!(log.count("charge"), 1, "{:?}", log.all());
    assert_eq!(log.count("release"), 1, "{:?}", log.all());
    assert_eq!(status(&store, "order-1").await, RunStatus::Failed);
}

/// Point 10, for a compensation: before, the failed compensation ran
/// again after the crash, and the run ended `failed` instead of
/// `compensation_failed`.
#[tokio::test]
async fn a_compensation_that_failed_for_good_does_not_run_again_after_a_crash() {
    let (log, store, error) = die_before_the_end_then_resume(true).await;
    assert!(
        matches!(&error, DurableError::CompensationFailed { step: Some(step), .. } if step == "charge"),
        "{error:?}"
    );
    assert_eq!(log.count("charge"), 1, "{:?}", log.all());
    assert_eq!(log.count("release"), 1, "{:?}", log.all());
    assert_eq!(
        status(&store, "order-1").await,
        RunStatus::CompensationFailed
    );
}

/// A charge that fails without retry, in a workflow with nothing to undo.
struct DeclinesOnce(Arc<Log>);

#[workflow(durable)]
impl DeclinesOnce {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "charge")]
    fn charge(&self, id: u32) -> Result<u32, Declined> {
        self.0.note("charge");
        if self.0.count("charge") == 1 {
            Err(Declined)
        } else {
            Ok(id)
        }
    }
}

/// Point 10 with nothing to undo: before, the charge's failure was only
/// a failed attempt in the journal, so after a crash before the run's end
/// the charge ran again, passed, and the failed run completed.
#[tokio::test]
async fn a_failure_with_nothing_to_undo_does_not_run_again_after_a_crash() {
    let log = Arc::new(Log::default());
    let memory = MemoryStore::new();
    let dying = CrashingStore::new(memory.clone(), Crash::BeforeEnd);
    let first = Runner::builder()
        .store(Store::new(dying.clone()))
        .durable(DeclinesOnce(log.clone()))
        .build()
        .unwrap();
    let _ = first.start(&DeclinesOnce::ID, "order-2", 2).await.unwrap();
    dying.crashed().await;

    let store = Store::new(memory);
    let second = Runner::builder()
        .store(store.clone())
        .durable(DeclinesOnce(log.clone()))
        .build()
        .unwrap();
    let error = second
        .start(&DeclinesOnce::ID, "order-2", 2)
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DurableError::Failed { step: Some(step), .. } if step == "charge"),
        "{error:?}"
    );
    assert_eq!(log.count("charge"), 1);
    assert_eq!(status(&store, "order-2").await, RunStatus::Failed);
}

/// Values JSON cannot hold as they are, after a step that is undone.
struct Measures(Arc<Log>);

#[workflow(durable)]
impl Measures {
    #[step(given = "a sample")]
    fn sample(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "book it", compensate = unbook)]
    fn book(&self, n: u32) -> u32 {
        self.0.note("book");
        n
    }

    #[step(when = "measure")]
    fn measure(&self, n: u32) -> f64 {
        if n == 0 { f64::NAN } else { f64::from(n) }
    }

    #[compensation]
    fn unbook(&self, _n: u32) {
        self.0.note("unbook");
    }
}

/// Point 8: before, NaN was journaled as `null`, the run said
/// `completed`, and its result then failed to decode.
#[tokio::test]
async fn a_value_that_does_not_read_back_fails_its_step_before_it_is_journaled() {
    let log = Arc::new(Log::default());
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Measures(log.clone()))
        .build()
        .unwrap();
    let error = runner
        .start(&Measures::ID, "nan", 0)
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    match &error {
        DurableError::Failed {
            step: Some(step),
            error,
            ..
        } => {
            assert_eq!(step, "measure");
            assert!(error.contains("f64"), "{error}");
            assert!(error.contains("\"measure\""), "{error}");
        }
        other => panic!("expected the step's failure, got {other:?}"),
    }
    assert_eq!(status(&store, "nan").await, RunStatus::Failed);
    let rows = store.backend().steps("nan").await.unwrap();
    assert!(rows.iter().all(|row| row.index != 2), "no row for the NaN");
    assert_eq!(log.all(), ["book", "unbook"]);

    let fine = runner.start(&Measures::ID, "two", 2).await.unwrap();
    assert_eq!(fine.result().await.unwrap(), 2.0);
}

/// A step that orchestrates another run and passes its store's error on.
struct Orchestrates(Arc<Log>);

#[workflow(durable)]
impl Orchestrates {
    #[step(given = "a batch")]
    fn batch(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "open the batch", compensate = close)]
    fn open(&self, n: u32) -> u32 {
        self.0.note("open");
        n
    }

    #[step(when = "look up the child run")]
    fn child(&self, n: u32) -> Result<BTreeMap<String, u32>, StoreError> {
        self.0.note("child");
        Err(StoreError::NoSuchRun(format!("child-{n}")))
    }

    #[compensation]
    fn close(&self, _n: u32) {
        self.0.note("close");
    }
}

/// Point 9: before, a step's own `StoreError` was taken for the journal's,
/// so the run was not compensated and was driven again forever.
#[tokio::test]
async fn a_steps_own_store_error_is_a_step_failure_and_is_compensated() {
    let log = Arc::new(Log::default());
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Orchestrates(log.clone()))
        .build()
        .unwrap();
    let run = runner.start(&Orchestrates::ID, "b-1", 1).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), run.result())
        .await
        .expect("the run ends");
    assert!(
        matches!(&ended, Err(DurableError::Failed { step: Some(step), .. }) if step == "look up the child run"),
        "{ended:?}"
    );
    assert_eq!(log.all(), ["open", "child", "close"]);
    assert_eq!(status(&store, "b-1").await, RunStatus::Failed);
}

/// Counts how often a plain step ran, for the journal-fault test below.
static LOCKED_RUNS: AtomicU32 = AtomicU32::new(0);

/// A step whose journal write meets a locked SQLite file: the step itself
/// has another writer take the file, for 1.5 s, before it returns.
struct Locked(std::path::PathBuf);

#[workflow(durable)]
impl Locked {
    #[step(given = "a number")]
    async fn number(&self, n: u32) -> u32 {
        LOCKED_RUNS.fetch_add(1, Ordering::SeqCst);
        let mut other = {
            use sqlx::ConnectOptions;
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&self.0)
                .connect()
                .await
                .unwrap()
        };
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        });
        n
    }
}

/// Point 11's second half: while another process held the SQLite file
/// locked, a plain step's body ran again on every re-drive. Its value is
/// in hand: the write is tried again, and the body runs once.
#[tokio::test]
async fn a_journal_write_that_meets_a_locked_file_is_tried_again_with_the_value() {
    let dir = TempDir::new("locked-file");
    let path = dir.0.join("runs.db");
    let options = SqliteOptions::new(&path).busy_timeout(Duration::from_millis(50));
    let store = Store::new(SqliteStore::open(options).await.unwrap());
    let runner = Runner::builder()
        .store(store)
        .durable(Locked(path))
        .build()
        .unwrap();

    let run = runner.start(&Locked::ID, "locked", 7).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 7);
    assert_eq!(LOCKED_RUNS.load(Ordering::SeqCst), 1);
}

/// Counts the steps running at once.
#[derive(Default)]
struct Gauge {
    now: AtomicU32,
    most: AtomicU32,
}

struct Busy(Arc<Gauge>);

#[workflow(durable)]
impl Busy {
    #[step(given = "some work")]
    async fn work(&self, n: u32) -> u32 {
        let now = self.0.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        n
    }
}

/// Point 13: before, a worker on SQLite resumed every unfinished run at
/// once, whatever its capacity.
#[tokio::test]
async fn a_worker_on_sqlite_resumes_no_more_runs_at_once_than_its_capacity() {
    use workflow_runtime::host::WorkflowHost;
    let dir = TempDir::new("resume-capacity");
    let store = sqlite(&dir).await;
    for n in 0..8u32 {
        let row = workflow_runtime::durable::RunRow::new(
            format!("busy-{n}"),
            Busy::NAME,
            Busy::FINGERPRINT,
            n.to_string().into_bytes(),
        );
        store.backend().insert_run(&row).await.unwrap();
    }
    let gauge = Arc::new(Gauge::default());
    let host = WorkflowHost::builder()
        .store(store.clone())
        .durable(Busy(gauge.clone()))
        .worker(2)
        .build()
        .unwrap();
    let runner = host.runner();
    host.run_until(async {
        for n in 0..8u32 {
            let ended = runner.handle(&Busy::ID, format!("busy-{n}")).result();
            assert_eq!(ended.await.unwrap(), n);
        }
    })
    .await;
    assert_eq!(gauge.most.load(Ordering::SeqCst), 2);
}

/// Point 13: before, a handle from a runner without a store read a fresh
/// memory store and said the run did not exist.
#[tokio::test]
async fn a_handle_from_a_runner_without_a_store_says_so() {
    let runner = Runner::builder()
        .durable(Busy(Arc::default()))
        .build()
        .unwrap();
    let error = runner.handle(&Busy::ID, "x").result().await.unwrap_err();
    assert!(matches!(error, DurableError::NoStore), "{error:?}");
}

/// Runs every minute.
struct Minutely;

#[workflow(durable, every = "1m")]
impl Minutely {
    #[step(given = "a tick")]
    fn tick(&self) -> u8 {
        1
    }
}

/// Point 13: before, a recurring durable workflow on a store without
/// leases only logged an error at each tick.
#[test]
fn a_recurring_durable_workflow_needs_a_store_with_leases() {
    use workflow_runtime::host::{HostError, WorkflowHost};
    let refused = WorkflowHost::builder()
        .store(Store::memory())
        .recurring_durable(Minutely)
        .worker(2)
        .build();
    match refused {
        Err(
            error @ HostError::TicksNeedLeases {
                workflow: "Minutely",
                ..
            },
        ) => {
            assert!(
                error.to_string().contains("memory has no leases"),
                "{error}"
            );
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("built a host whose ticks nobody could fire once"),
    }
}

/// A refund that is declined once, then passes, and says which key it
/// refunded with.
struct Refunds(Arc<Log>);

#[workflow(durable)]
impl Refunds {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "charge", compensate = refund)]
    fn charge(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "ship")]
    fn ship(&self, _id: u32) -> Result<u32, Declined> {
        Err(Declined)
    }

    #[compensation(retry(max_attempts = 2, backoff = "1ms"))]
    fn refund(&self, step: &StepCtx, _id: u32) -> Result<(), Declined> {
        self.0
            .note(format!("refund {} attempt {}", step.key(), step.attempt()));
        if step.attempt() == 1 {
            Err(Declined)
        } else {
            Ok(())
        }
    }
}

/// Point 13: before, compensations got no `&StepCtx`, so a refund had no
/// idempotency key though it runs at least once. Its key is its own, the
/// same on every attempt.
#[tokio::test]
async fn a_compensation_takes_its_step_ctx_and_keeps_its_key_across_attempts() {
    let log = Arc::new(Log::default());
    let runner = Runner::builder()
        .store(Store::memory())
        .durable(Refunds(log.clone()))
        .build()
        .unwrap();
    let error = runner
        .start(&Refunds::ID, "r-1", 1)
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    assert!(matches!(error, DurableError::Failed { .. }), "{error:?}");
    assert_eq!(
        log.all(),
        [
            "refund r-1/1000001 attempt 1",
            "refund r-1/1000001 attempt 2"
        ]
    );
}
