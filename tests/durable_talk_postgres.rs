//! Talking to durable runs across processes on PostgreSQL: a run
//! sleeping on an instance that is SIGKILLed wakes on another at its
//! original time (a suspended run holds no lease, so nothing waits for
//! one to run out); a run waiting in one process receives an event sent
//! by another; a run in flight in another process is cancelled and
//! undone there, once; two sends with one key deliver one event; a
//! failed run is redriven by any instance.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow_runtime::durable::{DurableError, RunStatus, StepCtx, Store, Waiting};
use workflow_runtime::host::{Runner, WorkflowHost};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TempPostgres;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::Declined;

/// Notes what the steps did in the database, so the test process reads
/// what a worker process did.
#[derive(Clone)]
struct Notes(sqlx::PgPool);

impl Notes {
    async fn note(&self, run: &str, what: &str) {
        sqlx::query("INSERT INTO talk_notes (run, what) VALUES ($1, $2)")
            .bind(run)
            .bind(what)
            .execute(&self.0)
            .await
            .unwrap();
    }

    async fn count(&self, run: &str, what: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM talk_notes WHERE run = $1 AND what = $2")
            .bind(run)
            .bind(what)
            .fetch_one(&self.0)
            .await
            .unwrap()
    }
}

/// Sleeps three seconds, then reports when it woke (the database's clock
/// is not needed: every process reads the same wall clock here).
struct Sleepy;

#[workflow(durable)]
impl Sleepy {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "it cools off")]
    async fn cool_off(&self, step: &StepCtx, id: u32) -> u32 {
        step.sleep(Duration::from_secs(3)).await;
        id
    }

    #[step(when = "it ships")]
    fn ship(&self, _id: u32) -> i64 {
        workflow_runtime::host::Clock::system().now_ms()
    }
}

/// Waits for a decision.
struct Decide;

#[workflow(durable)]
impl Decide {
    #[step(given = "a request")]
    async fn decide(&self, step: &StepCtx, id: u32) -> String {
        match step.event::<bool>("approval").await {
            Some(true) => format!("{id} approved"),
            _ => format!("{id} refused"),
        }
    }
}

/// Reserves, then holds the run in a step that does not end by itself.
struct Hold(Notes);

#[workflow(durable)]
impl Hold {
    #[step(given = "a reservation", compensate = unreserve)]
    async fn reserve(&self, step: &StepCtx, id: u32) -> u32 {
        self.0.note(step.run_id(), "reserved").await;
        id
    }

    #[step(when = "it is held")]
    async fn hold(&self, step: &StepCtx, id: u32) -> u32 {
        self.0.note(step.run_id(), "holding").await;
        std::future::pending::<()>().await;
        id
    }

    #[compensation]
    async fn unreserve(&self, step: &StepCtx, _: u32) {
        self.0.note(step.run_id(), "unreserved").await;
    }
}

/// A parcel, packed slowly: long enough to kill the process packing it.
struct Pack(Notes);

#[workflow(durable)]
impl Pack {
    #[step(given = "a parcel")]
    async fn pack(&self, step: &StepCtx, id: u32) -> String {
        self.0.note(step.run_id(), "packing").await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        format!("parcel {id}")
    }
}

/// An order whose packing is a child run.
struct Parcel(Notes);

#[workflow(durable)]
impl Parcel {
    #[step(given = "an order")]
    async fn ship(&self, step: &StepCtx, id: u32) -> Result<String, DurableError> {
        self.0.note(step.run_id(), "shipping").await;
        step.child(&Pack::ID, id).await
    }
}

/// A worker process: this test binary, re-run, until killed.
#[test]
fn talk_pg_worker() {
    let (Ok(url), Ok(instance)) = (
        std::env::var("WF_TALK_PG_URL"),
        std::env::var("WF_TALK_PG_INSTANCE"),
    ) else {
        return; // Run as a test of its own: nothing to do.
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::postgres(&url).await.unwrap();
        let notes = Notes(store.as_postgres().unwrap().pool().clone());
        let host = WorkflowHost::builder()
            .durable(Sleepy)
            .durable(Decide)
            .durable(Hold(notes.clone()))
            .durable(Pack(notes.clone()))
            .durable(Parcel(notes))
            .store(store)
            .instance(instance, Duration::from_secs(3))
            .worker(4)
            .build()
            .unwrap();
        host.run_until_signal().await;
    });
}

fn spawn_worker(url: &str, instance: &str) -> Worker {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "talk_pg_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WF_TALK_PG_URL", url)
        .env("WF_TALK_PG_INSTANCE", instance)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Worker(child)
}

/// A worker process, killed however the test ends.
struct Worker(Child);

impl Worker {
    fn kill(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn setup(pg: &TempPostgres) -> (Store, Notes) {
    let store = Store::postgres(&pg.url()).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    sqlx::query("CREATE TABLE IF NOT EXISTS talk_notes (run TEXT NOT NULL, what TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    (store, Notes(pool))
}

/// A runner of this process that does not work: it starts, sends,
/// cancels and reads.
fn client(store: &Store, notes: &Notes) -> Runner {
    Runner::builder()
        .store(store.clone())
        .durable(Sleepy)
        .durable(Decide)
        .durable(Hold(notes.clone()))
        .durable(Parcel(notes.clone()))
        .instance("client")
        .poll_every(Duration::from_millis(50))
        .build()
        .unwrap()
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sleeping_on_a_killed_instance_wakes_on_another_at_its_time() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let (store, notes) = setup(&pg).await;
    let client = client(&store, &notes);
    let mut first = spawn_worker(&pg.url(), "first");
    client.enqueue(&Sleepy::ID, "s-1", 1).await.unwrap();
    until("the run sleeps", async || {
        client.status("s-1").await.unwrap().waiting.is_some()
    })
    .await;
    let Some(Waiting::Sleep { until_ms: wake }) = client.status("s-1").await.unwrap().waiting
    else {
        panic!("not asleep");
    };
    let holders = store.backend().holders(0).await.unwrap();
    assert_eq!(
        holders.values().sum::<u64>(),
        0,
        "a sleeping run holds no lease: {holders:?}"
    );
    // Killed while the run sleeps: it held no lease to run out.
    first.kill();
    let _second = spawn_worker(&pg.url(), "second");
    let shipped = client.handle(&Sleepy::ID, "s-1").result().await.unwrap();
    // Never early; late by a poll and a worker process's start at most
    // (ten seconds leaves room for a busy machine).
    assert!(
        shipped >= wake && shipped < wake + 10_000,
        "woke at {shipped}, due at {wake}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_in_one_process_receives_an_event_sent_by_another() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let (store, notes) = setup(&pg).await;
    let client = client(&store, &notes);
    let _worker = spawn_worker(&pg.url(), "worker");
    client.enqueue(&Decide::ID, "d-1", 1).await.unwrap();
    until("the run waits", async || {
        client.status("d-1").await.unwrap().waits_for("approval")
    })
    .await;
    let holders = store.backend().holders(0).await.unwrap();
    assert!(
        holders.values().sum::<u64>() == 0,
        "a waiting run holds no lease: {holders:?}"
    );
    client
        .send(&Decide::ID, "d-1", "approval", true)
        .await
        .unwrap();
    let out = client.handle(&Decide::ID, "d-1").result().await.unwrap();
    assert_eq!(out, "1 approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_flight_in_another_process_is_cancelled_and_undone_once() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let (store, notes) = setup(&pg).await;
    let client = client(&store, &notes);
    let _worker = spawn_worker(&pg.url(), "worker");
    client.enqueue(&Hold::ID, "h-1", 1).await.unwrap();
    until("the run holds", async || {
        notes.count("h-1", "holding").await == 1
    })
    .await;
    client.cancel("h-1", "ops: not wanted").await.unwrap();
    let ended = client.handle(&Hold::ID, "h-1").result().await;
    assert!(
        matches!(&ended, Err(DurableError::Cancelled { reason, .. }) if reason == "ops: not wanted"),
        "{ended:?}"
    );
    assert_eq!(notes.count("h-1", "unreserved").await, 1);
    assert_eq!(
        client.status("h-1").await.unwrap().status,
        RunStatus::Cancelled
    );
}

/// A charge that fails until the test's switch is on.
struct Charge(Arc<std::sync::atomic::AtomicBool>);

#[workflow(durable)]
impl Charge {
    #[step(given = "an order")]
    fn charge(&self, id: u32) -> Result<String, Declined> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(format!("charged {id}"))
        } else {
            Err(Declined)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_with_one_key_deliver_once_and_a_failed_run_is_redriven() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let (store, notes) = setup(&pg).await;
    let client = client(&store, &notes);
    let worker = client.clone();
    let working = tokio::spawn(async move { worker.work(4).await });
    client.enqueue(&Decide::ID, "d-2", 2).await.unwrap();
    let other = Runner::builder()
        .store(store.clone())
        .instance("other")
        .build()
        .unwrap();
    let sends = [client.clone(), other.clone()].map(|runner| {
        tokio::spawn(async move {
            runner
                .send_once(&Decide::ID, "d-2", "approval", true, "req-1")
                .await
                .unwrap()
        })
    });
    let mut seqs = Vec::new();
    for send in sends {
        seqs.push(send.await.unwrap());
    }
    assert_eq!(seqs, [1, 1]);
    assert_eq!(
        client.handle(&Decide::ID, "d-2").result().await.unwrap(),
        "2 approved"
    );
    assert_eq!(client.status("d-2").await.unwrap().events.len(), 1);
    working.abort();

    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let payer = Runner::builder()
        .store(store.clone())
        .durable(Charge(up.clone()))
        .instance("payer")
        .poll_every(Duration::from_millis(20))
        .build()
        .unwrap();
    let failed = payer
        .start(&Charge::ID, "c-1", 1)
        .await
        .unwrap()
        .result()
        .await;
    assert!(
        matches!(failed, Err(DurableError::Failed { .. })),
        "{failed:?}"
    );
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    payer.redrive("c-1").await.unwrap();
    let worker = payer.clone();
    let working = tokio::spawn(async move { worker.work(2).await });
    assert_eq!(
        payer.handle(&Charge::ID, "c-1").result().await.unwrap(),
        "charged 1"
    );
    working.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_waits_through_its_childs_instance_being_killed() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let (store, notes) = setup(&pg).await;
    let client = client(&store, &notes);
    let mut first = spawn_worker(&pg.url(), "first");
    client.enqueue(&Parcel::ID, "p-1", 1).await.unwrap();
    until("the child packs", async || {
        notes.count("p-1/0/0", "packing").await == 1
    })
    .await;
    let parent = client.status("p-1").await.unwrap();
    assert!(
        matches!(&parent.waiting, Some(Waiting::Child { run }) if run == "p-1/0/0"),
        "{parent:?}"
    );
    // Killed mid-packing: the child's lease runs out, another instance
    // takes it over, and its end wakes the parent.
    first.kill();
    let _second = spawn_worker(&pg.url(), "second");
    let out = client.handle(&Parcel::ID, "p-1").result().await.unwrap();
    assert_eq!(out, "parcel 1");
    assert_eq!(
        notes.count("p-1/0/0", "packing").await,
        2,
        "packed again after the kill"
    );
    let child = client.status("p-1/0/0").await.unwrap();
    assert_eq!(child.parent.as_deref(), Some("p-1"));
    assert_eq!(client.status("p-1").await.unwrap().children, ["p-1/0/0"]);
}
