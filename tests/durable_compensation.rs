//! Durable compensation on the in-memory and SQLite stores: compensations
//! are journaled, a run that crashes while compensating resumes undoing
//! (never running its failed step again, never undoing a step twice), and
//! a compensation that fails for good marks the run `compensation_failed`,
//! which health shows.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_runtime::durable::{
    Durable, DurableError, MemoryStore, RunStatus, SqliteOptions, SqliteStore, Store,
};
use workflow_runtime::host::{HealthStatus, Runner};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Crash, CrashingStore};

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Reservation {
    order: u32,
    slot: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Receipt {
    order: u32,
    charge: String,
}

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// What the services saw, across every life of the process.
#[derive(Default)]
struct World {
    log: Mutex<Vec<String>>,
    ship_fails: AtomicBool,
    label_fails: AtomicBool,
    refund_fails: AtomicBool,
    /// While set, releasing stock never returns: the process dies there.
    release_hangs: AtomicBool,
    release_started: tokio::sync::Notify,
}

impl World {
    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

struct PlaceOrder(Arc<World>);

#[workflow(durable)]
impl PlaceOrder {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "reserve stock", compensate = release_stock)]
    fn reserve(&self, order: u32) -> Reservation {
        self.0.note(format!("reserve {order}"));
        Reservation { order, slot: 3 }
    }

    #[step(when = "charge card", compensate = refund)]
    async fn charge(&self, reservation: Reservation) -> Result<Receipt, Refused> {
        self.0.note(format!("charge {}", reservation.order));
        Ok(Receipt {
            order: reservation.order,
            charge: format!("ch-{}", reservation.order),
        })
    }

    #[step(when = "ship")]
    async fn ship(&self, receipt: Receipt) -> Result<String, Refused> {
        self.0.note(format!("ship {}", receipt.order));
        if self.0.ship_fails.load(Ordering::SeqCst) {
            return Err(Refused("no carrier"));
        }
        Ok(format!("parcel {}", receipt.charge))
    }

    // A `then` step takes the value by reference: a `String` here.
    #[allow(clippy::ptr_arg)]
    #[step(then = "labelled")]
    fn labelled(&self, parcel: &String) -> bool {
        !parcel.is_empty() && !self.0.label_fails.load(Ordering::SeqCst)
    }

    #[compensation]
    async fn release_stock(&self, reservation: Reservation) -> Result<(), Refused> {
        self.0.note(format!("release slot {}", reservation.slot));
        if self.0.release_hangs.load(Ordering::SeqCst) {
            self.0.release_started.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    #[compensation(retry(max_attempts = 2, backoff = "10ms"))]
    async fn refund(&self, receipt: Receipt) -> Result<(), Refused> {
        self.0.note(format!("refund {}", receipt.charge));
        if self.0.refund_fails.load(Ordering::SeqCst) {
            return Err(Refused("bank down"));
        }
        Ok(())
    }
}

/// A first process whose store dies at `crash` while it runs order `n`:
/// what it journaled stays in the memory store handed back, for the next.
async fn first_life(world: &Arc<World>, crash: Crash, n: u32) -> MemoryStore {
    let memory = MemoryStore::new();
    let dying = CrashingStore::new(memory.clone(), crash);
    let first = runner(&Store::new(dying.clone()), world);
    let _ = first
        .start(&PlaceOrder::ID, format!("order-{n}"), n)
        .await
        .unwrap();
    dying.crashed().await;
    memory
}

fn runner(store: &Store, world: &Arc<World>) -> Runner {
    Runner::builder()
        .store(store.clone())
        .durable(PlaceOrder(world.clone()))
        .build()
        .unwrap()
}

async fn sqlite(dir: &TempDir) -> Store {
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    Store::new(sqlite)
}

/// The journal's rows for `run`, by index and title.
async fn rows(store: &Store, run: &str) -> Vec<(u32, String)> {
    let mut rows: Vec<_> = store
        .backend()
        .steps(run)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.index, row.title))
        .collect();
    rows.sort();
    rows
}

async fn compensations_are_journaled_and_the_run_fails(store: Store) {
    let world = Arc::new(World::default());
    world.ship_fails.store(true, Ordering::SeqCst);
    let runner = runner(&store, &world);
    let run = runner.start(&PlaceOrder::ID, "order-1", 1).await.unwrap();
    let err = run.result().await.unwrap_err();
    match &err {
        DurableError::Failed { step, error, .. } => {
            assert_eq!(step.as_deref(), Some("ship"));
            assert!(error.ends_with("refused: no carrier"), "{error}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        world.log(),
        [
            "reserve 1",
            "charge 1",
            "ship 1",
            "refund ch-1",
            "release slot 3"
        ]
    );
    let journal = rows(&store, "order-1").await;
    let titles: Vec<_> = journal.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        titles,
        [
            "an order",
            "reserve stock",
            "charge card",
            "release stock",
            "refund",
            // The row that says the run is undoing, named for the step
            // whose failure started it.
            "When ship"
        ]
    );
    // Journaled as done, the run is never resumed or undone again.
    assert_eq!(runner.resume().await.unwrap(), 0);
    assert_eq!(world.log().len(), 5);
}

#[tokio::test]
async fn compensations_are_journaled_and_the_run_fails_in_memory() {
    compensations_are_journaled_and_the_run_fails(Store::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn compensations_are_journaled_and_the_run_fails_in_sqlite() {
    let dir = TempDir::new("saga-journaled");
    compensations_are_journaled_and_the_run_fails(sqlite(&dir).await).await;
}

/// Opens the store a life of the process uses: the same memory, or the
/// same SQLite file (on a pool of that life's runtime).
type Open = Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Store> + Send>> + Send + Sync>;

/// Runs order 2 until releasing its stock hangs, then drops the whole
/// runtime, as a killed process would leave it: no end is journaled.
fn crash_while_releasing(open: &Open, world: &Arc<World>) {
    world.ship_fails.store(true, Ordering::SeqCst);
    world.release_hangs.store(true, Ordering::SeqCst);
    let life = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    life.block_on(async {
        let store = open().await;
        let runner = runner(&store, world);
        let _run = runner.start(&PlaceOrder::ID, "order-2", 2).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), world.release_started.notified())
            .await
            .expect("the compensation starts");
    });
    life.shutdown_background();
}

async fn a_crash_while_compensating_resumes_undoing(open: Open) {
    let world = Arc::new(World::default());
    let crashed = {
        let (open, world) = (open.clone(), world.clone());
        std::thread::spawn(move || crash_while_releasing(&open, &world))
    };
    crashed.join().unwrap();
    assert_eq!(
        world.log(),
        [
            "reserve 2",
            "charge 2",
            "ship 2",
            "refund ch-2",
            "release slot 3"
        ]
    );
    let store = open().await;
    let run = store.run("order-2").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);

    // The next life: shipping would work now, but the run was undoing.
    world.ship_fails.store(false, Ordering::SeqCst);
    world.release_hangs.store(false, Ordering::SeqCst);
    let runner = runner(&store, &world);
    assert_eq!(runner.resume().await.unwrap(), 1);
    let run = runner.start(&PlaceOrder::ID, "order-2", 2).await.unwrap();
    let err = run.result().await.unwrap_err();
    assert!(
        matches!(&err, DurableError::Failed { error, .. } if error.ends_with("refused: no carrier")),
        "{err}"
    );
    // Only the release runs again: the refund was journaled, and shipping
    // had failed for good before the crash.
    assert_eq!(
        world.log(),
        [
            "reserve 2",
            "charge 2",
            "ship 2",
            "refund ch-2",
            "release slot 3",
            "release slot 3"
        ]
    );
}

#[tokio::test]
async fn a_crash_while_compensating_resumes_undoing_in_memory() {
    let store = Store::new(MemoryStore::new());
    a_crash_while_compensating_resumes_undoing(Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store })
    }))
    .await;
}

#[tokio::test]
async fn a_crash_while_compensating_resumes_undoing_in_sqlite() {
    let dir = TempDir::new("saga-crash");
    let file = dir.0.join("runs.db");
    a_crash_while_compensating_resumes_undoing(Arc::new(move || {
        let file = file.clone();
        Box::pin(
            async move { Store::new(SqliteStore::open(SqliteOptions::new(file)).await.unwrap()) },
        )
    }))
    .await;
}

#[tokio::test]
async fn a_compensation_that_fails_for_good_marks_the_run_and_health_shows_it() {
    let store = Store::new(MemoryStore::new());
    let world = Arc::new(World::default());
    world.ship_fails.store(true, Ordering::SeqCst);
    world.refund_fails.store(true, Ordering::SeqCst);
    let runner = runner(&store, &world);
    let run = runner.start(&PlaceOrder::ID, "order-3", 3).await.unwrap();
    let err = run.result().await.unwrap_err();
    match &err {
        DurableError::CompensationFailed { step, error, .. } => {
            assert_eq!(step.as_deref(), Some("ship"));
            assert!(
                error.contains("no carrier") && error.contains("bank down"),
                "{error}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    // Retried once, and the stock is released all the same.
    assert_eq!(
        world.log(),
        [
            "reserve 3",
            "charge 3",
            "ship 3",
            "refund ch-3",
            "refund ch-3",
            "release slot 3"
        ]
    );
    let run = store.run("order-3").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::CompensationFailed);
    let health = runner.durable_health().await.unwrap();
    assert_eq!(health.counts.compensation_failed, 1);
    assert_eq!(health.workflows["PlaceOrder"].counts.compensation_failed, 1);
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!(runner.resume().await.unwrap(), 0);
}

#[tokio::test]
async fn a_run_stopped_right_after_its_refund_was_journaled_only_releases_the_stock() {
    let world = Arc::new(World::default());
    world.ship_fails.store(true, Ordering::SeqCst);
    let memory = first_life(&world, Crash::after("refund"), 4).await;
    assert_eq!(
        world.log(),
        ["reserve 4", "charge 4", "ship 4", "refund ch-4"]
    );

    // The next process, shipping fixed: the run goes on undoing.
    world.ship_fails.store(false, Ordering::SeqCst);
    let second = runner(&Store::new(memory), &world);
    assert_eq!(second.resume().await.unwrap(), 1);
    let run = second.start(&PlaceOrder::ID, "order-4", 4).await.unwrap();
    assert!(matches!(
        run.result().await,
        Err(DurableError::Failed { .. })
    ));
    assert_eq!(
        world.log(),
        [
            "reserve 4",
            "charge 4",
            "ship 4",
            "refund ch-4",
            "release slot 3"
        ]
    );
}

#[tokio::test]
async fn a_run_stopped_before_its_charge_was_journaled_charges_again_then_completes() {
    let world = Arc::new(World::default());
    let memory = first_life(&world, Crash::before("charge card"), 5).await;

    let second = runner(&Store::new(memory), &world);
    assert_eq!(second.resume().await.unwrap(), 1);
    let run = second.start(&PlaceOrder::ID, "order-5", 5).await.unwrap();
    assert_eq!(run.result().await.unwrap(), "parcel ch-5");
    // The charge ran in both lives (the journal never heard of the first):
    // why a step that charges takes an idempotency key.
    assert_eq!(world.log(), ["reserve 5", "charge 5", "charge 5", "ship 5"]);
}

#[tokio::test]
async fn a_run_resumed_mid_undo_fails_its_assertion_again_even_if_it_would_pass_now() {
    let world = Arc::new(World::default());
    world.label_fails.store(true, Ordering::SeqCst);
    let memory = first_life(&world, Crash::after("refund"), 6).await;

    // Labels work now; the run was undoing for the check that failed.
    world.label_fails.store(false, Ordering::SeqCst);
    let second = runner(&Store::new(memory), &world);
    assert_eq!(second.resume().await.unwrap(), 1);
    let run = second.start(&PlaceOrder::ID, "order-6", 6).await.unwrap();
    let err = run.result().await.unwrap_err();
    assert!(
        matches!(&err, DurableError::Failed { step, .. } if step.as_deref() == Some("labelled")),
        "{err}"
    );
    assert_eq!(
        world.log(),
        [
            "reserve 6",
            "charge 6",
            "ship 6",
            "refund ch-6",
            "release slot 3"
        ]
    );
}
