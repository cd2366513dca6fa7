//! Talking to durable runs while they live: durable sleep (suspended, no
//! task or worker held, woken at the journaled time across restarts),
//! events (buffered, typed, consumed once, deduplicated, with deadlines),
//! cancel by id (undone, once), redrive after a failure whose cause was
//! fixed, and status by id; on the memory store (virtual time) and SQLite.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use workflow_runtime::durable::{
    DurableError, MemoryStore, RunStatus, SqliteOptions, SqliteStore, StepCtx, StepState, Store,
    Waiting,
};
use workflow_runtime::host::{Clock, Runner};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Crash, CrashingStore};

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::{Declined, TempDir};

const DAY: Duration = Duration::from_secs(86_400);
const START_MS: i64 = 1_700_000_000_000;

/// What the steps did, across every life of the process.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn note(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }
    fn count(&self, what: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|w| *w == what).count()
    }
}

/// An order that cools off for three days, then ships; shipping notes
/// the wall-clock time it ran at.
struct CoolOff {
    log: Arc<Log>,
    clock: Clock,
}

#[workflow(durable)]
impl CoolOff {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        self.log.note("order");
        id
    }

    #[step(when = "it cools off", compensate = release)]
    async fn cool_off(&self, step: &StepCtx, id: u32) -> u32 {
        self.log.note("cool-off reached");
        step.sleep(3 * DAY).await;
        id
    }

    #[step(when = "it ships")]
    fn ship(&self, id: u32) -> i64 {
        self.log.note("ship");
        let _ = id;
        self.clock.now_ms()
    }

    #[compensation]
    async fn release(&self, _: u32) {
        self.log.note("released");
    }
}

fn virtual_runner(store: &Store, log: &Arc<Log>, clock: Clock) -> Runner {
    Runner::builder()
        .store(store.clone())
        .clock(clock)
        .durable(CoolOff {
            log: log.clone(),
            clock,
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_sleeping_run_holds_no_task_and_wakes_at_its_journaled_time() {
    let clock = Clock::following_tokio(UNIX_EPOCH + Duration::from_millis(START_MS as u64));
    let store = Store::memory();
    let log = Arc::new(Log::default());
    let runner = virtual_runner(&store, &log, clock);
    let run = runner.start(&CoolOff::ID, "order-1", 1).await.unwrap();
    // Suspended: journaled as asleep until three days on, driven by nobody.
    let mut waited = 0;
    while runner.status("order-1").await.unwrap().waiting.is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        waited += 1;
        assert!(waited < 1_000, "the run never suspended");
    }
    let status = runner.status("order-1").await.unwrap();
    let wake = START_MS + 3 * DAY.as_millis() as i64;
    assert!(
        matches!(status.waiting, Some(Waiting::Sleep { until_ms }) if (wake..wake + 100).contains(&until_ms)),
        "{:?}",
        status.waiting
    );
    assert_eq!(status.current_step.as_deref(), Some("it cools off"));
    assert_eq!(status.steps[1].state, StepState::Running);
    assert_eq!(
        runner.durable_in_flight(),
        0,
        "a sleeping run holds no task"
    );
    let shipped_at = run.result().await.unwrap();
    assert!(
        (wake..wake + 1_000).contains(&shipped_at),
        "woke at {shipped_at}, due at {wake}"
    );
    // The step ran again from its start when the run woke: its work before
    // the sleep twice, and the step before it once.
    assert_eq!(log.count("cool-off reached"), 2);
    assert_eq!(log.count("order"), 1);
    assert_eq!(log.count("ship"), 1);
}

/// The process dies right after the sleep's wake time is journaled,
/// before the run is suspended; a new one starts on the same journal a
/// day later. Were the wake time not journaled, it would sleep three days
/// from the restart.
#[tokio::test(start_paused = true)]
async fn a_sleep_cut_by_a_crash_wakes_at_the_original_time() {
    let clock = Clock::following_tokio(UNIX_EPOCH + Duration::from_millis(START_MS as u64));
    let memory = MemoryStore::new();
    let crashing = CrashingStore::new(memory.clone(), Crash::after("sleep"));
    let log = Arc::new(Log::default());
    let first = virtual_runner(&Store::new(crashing.clone()), &log, clock);
    let _run = first.start(&CoolOff::ID, "order-2", 2).await.unwrap();
    crashing.crashed().await;
    tokio::time::sleep(DAY).await;
    let second = virtual_runner(&Store::new(memory), &log, clock);
    assert_eq!(second.resume().await.unwrap(), 1);
    let shipped_at = second
        .handle(&CoolOff::ID, "order-2")
        .result()
        .await
        .unwrap();
    let wake = START_MS + 3 * DAY.as_millis() as i64;
    assert!(
        (wake..wake + 1_000).contains(&shipped_at),
        "woke at {shipped_at}, due at {wake} (a restart must not push it back)"
    );
}

/// A step waiting for a manager's decision, for a day at most.
struct Approval(Arc<Log>);

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
enum Decision {
    Approve,
    Reject,
}

#[workflow(durable)]
impl Approval {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "a manager decides")]
    async fn decide(&self, step: &StepCtx, id: u32) -> Result<u32, Declined> {
        self.0.note("asked");
        match step.event::<Decision>("approval").within(DAY).await {
            Some(Decision::Approve) => Ok(id),
            Some(Decision::Reject) => Err(Declined),
            None => {
                self.0.note("timed out");
                Err(Declined)
            }
        }
    }

    #[step(when = "a second opinion, if any")]
    async fn second(&self, step: &StepCtx, id: u32) -> String {
        let second = step
            .event::<Decision>("approval")
            .within(Duration::from_secs(2))
            .await;
        format!("{id}: second {second:?}")
    }
}

fn approvals(store: &Store, log: &Arc<Log>) -> Runner {
    // The wall clock moves with tokio's, paused or not.
    Runner::builder()
        .store(store.clone())
        .clock(Clock::following_tokio(std::time::SystemTime::now()))
        .durable(Approval(log.clone()))
        .build()
        .unwrap()
}

async fn wait_until_waiting(runner: &Runner, run: &str) {
    for _ in 0..2_000 {
        if runner.status(run).await.unwrap().waiting.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run {run} never suspended");
}

async fn sqlite(dir: &TempDir) -> Store {
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    Store::new(sqlite)
}

#[tokio::test(start_paused = true)]
async fn an_event_sent_before_the_wait_is_waiting_for_it() {
    let store = Store::memory();
    let log = Arc::new(Log::default());
    let runner = approvals(&store, &log);
    // Enqueued, not started: the event arrives before any step runs.
    runner.enqueue(&Approval::ID, "a-1", 1).await.unwrap();
    runner
        .send(&Approval::ID, "a-1", "approval", Decision::Approve)
        .await
        .unwrap();
    runner.resume().await.unwrap();
    let out = runner.handle(&Approval::ID, "a-1").result().await.unwrap();
    // Consumed once: the second wait does not get it again.
    assert_eq!(out, "1: second None");
    let status = runner.status("a-1").await.unwrap();
    assert_eq!(status.events.len(), 1);
    assert!(status.events[0].consumed);
}

async fn an_event_wakes_a_waiting_run(store: Store) {
    let log = Arc::new(Log::default());
    let runner = approvals(&store, &log);
    let run = runner.start(&Approval::ID, "a-2", 2).await.unwrap();
    wait_until_waiting(&runner, "a-2").await;
    assert!(runner.status("a-2").await.unwrap().waits_for("approval"));
    assert_eq!(runner.durable_in_flight(), 0, "a waiting run holds no task");
    // A value that is not a `Decision` is passed over, not handed on.
    runner
        .send(&Approval::ID, "a-2", "approval", 42)
        .await
        .unwrap();
    runner
        .send(&Approval::ID, "a-2", "approval", Decision::Approve)
        .await
        .unwrap();
    runner
        .send(&Approval::ID, "a-2", "approval", Decision::Reject)
        .await
        .unwrap();
    // The first wait takes the approval, the second the rejection after it.
    assert_eq!(run.result().await.unwrap(), "2: second Some(Reject)");
    let status = runner.status("a-2").await.unwrap();
    let consumed: Vec<bool> = status.events.iter().map(|e| e.consumed).collect();
    assert_eq!(consumed, [false, true, true]);
}

#[tokio::test]
async fn an_event_wakes_a_waiting_run_in_memory() {
    an_event_wakes_a_waiting_run(Store::memory()).await;
}

#[tokio::test]
async fn an_event_wakes_a_waiting_run_on_sqlite() {
    let dir = TempDir::new("talk-event");
    an_event_wakes_a_waiting_run(sqlite(&dir).await).await;
}

#[tokio::test(start_paused = true)]
async fn a_wait_gives_up_at_its_deadline_and_the_run_fails_as_the_step_says() {
    let store = Store::memory();
    let log = Arc::new(Log::default());
    let runner = approvals(&store, &log);
    let run = runner.start(&Approval::ID, "a-3", 3).await.unwrap();
    let failed = run.result().await;
    assert!(
        matches!(&failed, Err(DurableError::Failed { step: Some(step), .. }) if step == "a manager decides"),
        "{failed:?}"
    );
    assert_eq!(log.count("timed out"), 1);
    // An event after the end is refused, naming the status.
    let late = runner
        .send(&Approval::ID, "a-3", "approval", Decision::Approve)
        .await;
    assert!(
        matches!(
            late,
            Err(DurableError::NotRunning {
                status: RunStatus::Failed,
                ..
            })
        ),
        "{late:?}"
    );
}

async fn two_sends_with_one_key_deliver_once(store: Store) {
    let log = Arc::new(Log::default());
    let runner = approvals(&store, &log);
    let run = runner.start(&Approval::ID, "a-4", 4).await.unwrap();
    let sends: Vec<_> = (0..2)
        .map(|_| {
            let runner = runner.clone();
            tokio::spawn(async move {
                runner
                    .send_once(&Approval::ID, "a-4", "approval", Decision::Approve, "req-9")
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for send in sends {
        seqs.push(send.await.unwrap());
    }
    assert_eq!(seqs[0], seqs[1], "both sends name the one event");
    // Had the retried send been delivered too, the second wait would take it.
    assert_eq!(run.result().await.unwrap(), "4: second None");
    assert_eq!(runner.status("a-4").await.unwrap().events.len(), 1);
}

#[tokio::test]
async fn two_concurrent_sends_with_one_key_deliver_once_in_memory() {
    two_sends_with_one_key_deliver_once(Store::memory()).await;
}

#[tokio::test]
async fn two_concurrent_sends_with_one_key_deliver_once_on_sqlite() {
    let dir = TempDir::new("talk-dedup");
    two_sends_with_one_key_deliver_once(sqlite(&dir).await).await;
}

/// A step whose body waits on something that never comes while it runs
/// (no durable wait): a cancel stops it where it is.
struct Held {
    log: Arc<Log>,
    started: Arc<tokio::sync::Notify>,
}

#[workflow(durable)]
impl Held {
    #[step(given = "a reservation", compensate = unreserve)]
    fn reserve(&self, id: u32) -> u32 {
        self.log.note("reserved");
        id
    }

    #[step(when = "it is held")]
    async fn hold(&self, id: u32) -> u32 {
        self.log.note("holding");
        self.started.notify_one();
        std::future::pending::<()>().await;
        id
    }

    #[compensation]
    async fn unreserve(&self, _: u32) {
        self.log.note("unreserved");
    }
}

async fn a_cancelled_run_in_flight_here_is_undone_once(store: Store) {
    let log = Arc::new(Log::default());
    let started = Arc::new(tokio::sync::Notify::new());
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Held {
            log: log.clone(),
            started: started.clone(),
        })
        .build()
        .unwrap();
    let notified = started.notified();
    let run = runner.start(&Held::ID, "h-1", 1).await.unwrap();
    notified.await;
    runner
        .cancel("h-1", "ops: duplicate booking")
        .await
        .unwrap();
    let ended = run.result().await;
    assert!(
        matches!(&ended, Err(DurableError::Cancelled { reason, .. }) if reason == "ops: duplicate booking"),
        "{ended:?}"
    );
    assert_eq!(log.count("unreserved"), 1);
    let status = runner.status("h-1").await.unwrap();
    assert_eq!(status.status, RunStatus::Cancelled);
    assert_eq!(status.steps[0].state, StepState::Compensated);
    // A finished run is not cancelled again; the error names its status.
    let again = runner.cancel("h-1", "again").await;
    assert!(
        matches!(&again, Err(e @ DurableError::NotRunning { status: RunStatus::Cancelled, .. })
            if e.to_string() == "cannot cancel run \"h-1\": it is cancelled"),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_cancelled_run_in_flight_here_is_undone_once_in_memory() {
    a_cancelled_run_in_flight_here_is_undone_once(Store::memory()).await;
}

#[tokio::test]
async fn a_cancelled_run_in_flight_here_is_undone_once_on_sqlite() {
    let dir = TempDir::new("talk-cancel");
    a_cancelled_run_in_flight_here_is_undone_once(sqlite(&dir).await).await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_sleeping_run_wakes_to_be_undone() {
    let clock = Clock::following_tokio(UNIX_EPOCH + Duration::from_millis(START_MS as u64));
    let store = Store::memory();
    let log = Arc::new(Log::default());
    let runner = virtual_runner(&store, &log, clock);
    let run = runner.start(&CoolOff::ID, "order-3", 3).await.unwrap();
    while runner.status("order-3").await.unwrap().waiting.is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    runner.cancel("order-3", "customer withdrew").await.unwrap();
    let ended = run.result().await;
    assert!(
        matches!(ended, Err(DurableError::Cancelled { .. })),
        "{ended:?}"
    );
    // The step it slept in had not completed: only the one before is
    // undone, and nothing ships.
    assert_eq!(log.count("released"), 0);
    assert_eq!(log.count("ship"), 0);
    let status = runner.status("order-3").await.unwrap();
    assert_eq!(status.status, RunStatus::Cancelled);
    assert_eq!(status.error.as_deref(), Some("customer withdrew"));
    assert!(status.waiting.is_none());
    // Well before the three days.
    assert!(clock.now_ms() < START_MS + DAY.as_millis() as i64);
}

static BANK_UP: AtomicBool = AtomicBool::new(false);

/// A payment whose bank is down until the test says otherwise.
struct Pay {
    log: Arc<Log>,
    charges: AtomicU32,
}

#[workflow(durable)]
impl Pay {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        self.log.note("order");
        id
    }

    #[step(when = "stock is reserved", compensate = unreserve)]
    fn reserve(&self, id: u32) -> u32 {
        self.log.note("reserve");
        id
    }

    #[step(when = "it is charged")]
    fn charge(&self, id: u32) -> Result<String, Declined> {
        self.charges.fetch_add(1, Ordering::SeqCst);
        if BANK_UP.load(Ordering::SeqCst) {
            Ok(format!("charged {id}"))
        } else {
            Err(Declined)
        }
    }

    #[compensation]
    async fn unreserve(&self, _: u32) {
        self.log.note("unreserve");
    }
}

async fn a_failed_run_redriven_goes_on_from_where_it_failed(store: Store) {
    BANK_UP.store(false, Ordering::SeqCst);
    let log = Arc::new(Log::default());
    let pay = Pay {
        log: log.clone(),
        charges: AtomicU32::new(0),
    };
    let runner = Runner::builder()
        .store(store.clone())
        .durable(pay)
        .build()
        .unwrap();
    let failed = runner
        .start(&Pay::ID, "pay-1", 1)
        .await
        .unwrap()
        .result()
        .await;
    assert!(
        matches!(failed, Err(DurableError::Failed { .. })),
        "{failed:?}"
    );
    assert_eq!(log.count("unreserve"), 1);
    BANK_UP.store(true, Ordering::SeqCst);
    runner.redrive("pay-1").await.unwrap();
    let out = runner.handle(&Pay::ID, "pay-1").result().await.unwrap();
    assert_eq!(out, "charged 1");
    // The order step stayed journaled; the reservation its compensation
    // undid was made again.
    assert_eq!(log.count("order"), 1);
    assert_eq!(log.count("reserve"), 2);
    let status = runner.status("pay-1").await.unwrap();
    assert_eq!(status.status, RunStatus::Completed);
    assert_eq!(status.earlier_failures.len(), 1);
    assert!(
        status.earlier_failures[0].contains("card declined"),
        "{:?}",
        status.earlier_failures
    );
    // Only a failed (or parked) run is redriven.
    let again = runner.redrive("pay-1").await;
    assert!(
        matches!(
            again,
            Err(DurableError::NotRunning {
                status: RunStatus::Completed,
                ..
            })
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_failed_run_redriven_goes_on_from_where_it_failed_in_memory_and_on_sqlite() {
    // One test: they share the bank's switch.
    a_failed_run_redriven_goes_on_from_where_it_failed(Store::memory()).await;
    let dir = TempDir::new("talk-redrive");
    a_failed_run_redriven_goes_on_from_where_it_failed(sqlite(&dir).await).await;
}

/// Each run sleeps an hour; the others do a quick job.
struct Nap;

#[workflow(durable)]
impl Nap {
    #[step(given = "a nap")]
    async fn nap(&self, step: &StepCtx, id: u32) -> u32 {
        step.sleep(Duration::from_secs(3_600)).await;
        id
    }
}

struct Quick;

#[workflow(durable)]
impl Quick {
    #[step(given = "a job")]
    fn job(&self, id: u32) -> u32 {
        id + 1
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

/// 10,000 runs asleep cost no task and no worker slot: a worker of
/// capacity 4 takes new work at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sleeping_runs_leave_a_small_worker_free() {
    let dir = TempDir::new("talk-sleepers");
    // Synced as a busy service would (WAL, NORMAL): the test is about
    // slots, not the disk.
    let sqlite = SqliteStore::open(
        SqliteOptions::new(dir.0.join("runs.db"))
            .sync(workflow_runtime::durable::Synchronous::Normal),
    )
    .await
    .unwrap();
    let store = Store::new(sqlite);
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Nap)
        .durable(Quick)
        .build()
        .unwrap();
    let before = rss_kib();
    for i in 0..10_000u32 {
        let _ = runner.start(&Nap::ID, format!("nap-{i}"), i).await.unwrap();
    }
    let mut waited = 0;
    while runner.durable_in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
        assert!(waited < 3_000, "sleeping runs still hold tasks");
    }
    let after = rss_kib();
    let worker = tokio::spawn({
        let runner = runner.clone();
        async move { runner.work(4).await }
    });
    let started = std::time::Instant::now();
    for i in 0..8u32 {
        let id = runner
            .enqueue(&Quick::ID, format!("quick-{i}"), i)
            .await
            .unwrap();
        assert_eq!(
            tokio::time::timeout(
                Duration::from_secs(30),
                runner.handle(&Quick::ID, id).result()
            )
            .await
            .expect("a sleeping run held the worker")
            .unwrap(),
            i + 1
        );
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.running, 10_000);
    eprintln!(
        "10,000 suspended runs: {} KiB of memory more ({} bytes a run); 8 new runs through a worker of capacity 4 in {:?}",
        after.saturating_sub(before),
        after.saturating_sub(before) * 1024 / 10_000,
        started.elapsed()
    );
    worker.abort();
}

/// A parcel shipped by a child run; the carrier fails parcels for
/// customers it does not serve.
struct ShipParcel(Arc<Log>);

#[workflow(durable)]
impl ShipParcel {
    #[step(given = "a parcel")]
    async fn label(&self, step: &StepCtx, order: u32) -> Result<String, Declined> {
        self.0.note("label");
        if order == 13 {
            return Err(Declined);
        }
        // Long enough to be cancelled while it sleeps, when asked to.
        if order == 7 {
            step.sleep(3 * DAY).await;
        }
        Ok(format!("parcel {order}"))
    }
}

/// An order whose shipping is a child run.
struct ShippedOrder(Arc<Log>);

#[workflow(durable)]
impl ShippedOrder {
    #[step(given = "an order", compensate = refund)]
    fn order(&self, id: u32) -> u32 {
        self.0.note("order");
        id
    }

    #[step(when = "it ships")]
    async fn ship(&self, step: &StepCtx, id: u32) -> Result<String, DurableError> {
        step.child(&ShipParcel::ID, id).await
    }

    #[compensation]
    async fn refund(&self, _: u32) {
        self.0.note("refund");
    }
}

fn shipping(store: &Store, log: &Arc<Log>) -> Runner {
    Runner::builder()
        .store(store.clone())
        .clock(Clock::following_tokio(std::time::SystemTime::now()))
        .durable(ShippedOrder(log.clone()))
        .durable(ShipParcel(log.clone()))
        .build()
        .unwrap()
}

async fn a_child_run_links_both_ways_and_its_failure_fails_its_step(store: Store) {
    let log = Arc::new(Log::default());
    let runner = shipping(&store, &log);
    let out = runner
        .start(&ShippedOrder::ID, "o-1", 1)
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(out, "parcel 1");
    let parent = runner.status("o-1").await.unwrap();
    assert_eq!(parent.children, ["o-1/1/0"]);
    let child = runner.status("o-1/1/0").await.unwrap();
    assert_eq!(child.parent.as_deref(), Some("o-1"));
    assert_eq!(child.status, RunStatus::Completed);
    // The child's failure is the parent's step's: undone there.
    let failed = runner
        .start(&ShippedOrder::ID, "o-13", 13)
        .await
        .unwrap()
        .result()
        .await;
    assert!(
        matches!(&failed, Err(DurableError::Failed { step: Some(step), error, .. })
            if step == "it ships" && error.contains("card declined")),
        "{failed:?}"
    );
    assert_eq!(log.count("refund"), 1);
}

#[tokio::test]
async fn a_child_run_links_both_ways_and_its_failure_fails_its_step_in_memory() {
    a_child_run_links_both_ways_and_its_failure_fails_its_step(Store::memory()).await;
}

#[tokio::test]
async fn a_child_run_links_both_ways_and_its_failure_fails_its_step_on_sqlite() {
    let dir = TempDir::new("talk-child");
    a_child_run_links_both_ways_and_its_failure_fails_its_step(sqlite(&dir).await).await;
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_parent_cancels_its_child() {
    let store = Store::memory();
    let log = Arc::new(Log::default());
    let runner = shipping(&store, &log);
    let run = runner.start(&ShippedOrder::ID, "o-7", 7).await.unwrap();
    // The parent waits for its child, which sleeps.
    for _ in 0..1_000 {
        let child = store.status("o-7/1/0").await;
        if child.is_ok_and(|child| child.waiting.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(matches!(
        runner.status("o-7").await.unwrap().waiting,
        Some(Waiting::Child { run }) if run == "o-7/1/0"
    ));
    assert_eq!(runner.durable_in_flight(), 0, "neither holds a task");
    runner.cancel("o-7", "customer withdrew").await.unwrap();
    let ended = run.result().await;
    assert!(
        matches!(ended, Err(DurableError::Cancelled { .. })),
        "{ended:?}"
    );
    let child = runner.status("o-7/1/0").await.unwrap();
    assert_eq!(child.status, RunStatus::Cancelled);
    assert!(
        child
            .error
            .unwrap()
            .contains("its parent o-7 was cancelled")
    );
    assert_eq!(log.count("refund"), 1);
}

/// Reaches a day-long sleep once the test lets it go on.
struct Gated {
    log: Arc<Log>,
    gate: Arc<tokio::sync::Semaphore>,
}

#[workflow(durable)]
impl Gated {
    #[step(given = "a booking", compensate = unbook)]
    fn book(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "it waits a day")]
    async fn wait(&self, step: &StepCtx, id: u32) -> u32 {
        self.log.note("started");
        let _ = self.gate.acquire().await.unwrap();
        step.sleep(DAY).await;
        id
    }

    #[compensation]
    async fn unbook(&self, step: &StepCtx, _: u32) {
        // A compensation may sleep too (a back-off before a refund).
        step.sleep(Duration::from_secs(5)).await;
        self.log.note("unbooked");
    }
}

/// Found by review: a cancel sent by another process while a step runs
/// was lost when the step then suspended: the run slept its whole day
/// (for ever, on a wait without a deadline) with the cancel recorded.
#[tokio::test(start_paused = true)]
async fn a_cancel_sent_while_a_step_runs_is_not_lost_when_it_then_suspends() {
    let clock = Clock::following_tokio(UNIX_EPOCH + Duration::from_millis(START_MS as u64));
    let memory = MemoryStore::new();
    let log = Arc::new(Log::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runner = Runner::builder()
        .store(Store::new(memory.clone()))
        .clock(clock)
        .durable(Gated {
            log: log.clone(),
            gate: gate.clone(),
        })
        .build()
        .unwrap();
    // Another process's runner on the same journal.
    let other = Runner::builder()
        .store(Store::new(memory))
        .clock(clock)
        .build()
        .unwrap();
    let run = runner.start(&Gated::ID, "g-1", 1).await.unwrap();
    while log.count("started") == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    other.cancel("g-1", "ops").await.unwrap();
    gate.add_permits(1);
    let ended = run.result().await;
    assert!(
        matches!(ended, Err(DurableError::Cancelled { .. })),
        "{ended:?}"
    );
    assert_eq!(
        log.count("unbooked"),
        1,
        "undone, its compensation's sleep included"
    );
    assert!(
        clock.now_ms() < START_MS + DAY.as_millis() as i64,
        "it slept its day with the cancel recorded"
    );
}

/// Found by review: a redriven wait took the event its failed run had
/// consumed (the rejection) again, and failed the same way.
#[tokio::test]
async fn a_redriven_wait_waits_for_a_new_event() {
    let store = Store::memory();
    let log = Arc::new(Log::default());
    let runner = approvals(&store, &log);
    let run = runner.start(&Approval::ID, "a-5", 5).await.unwrap();
    wait_until_waiting(&runner, "a-5").await;
    runner
        .send(&Approval::ID, "a-5", "approval", Decision::Reject)
        .await
        .unwrap();
    assert!(matches!(
        run.result().await,
        Err(DurableError::Failed { .. })
    ));
    runner.redrive("a-5").await.unwrap();
    wait_until_waiting(&runner, "a-5").await;
    runner
        .send(&Approval::ID, "a-5", "approval", Decision::Approve)
        .await
        .unwrap();
    let out = runner.handle(&Approval::ID, "a-5").result().await.unwrap();
    assert_eq!(out, "5: second None");
    let status = runner.status("a-5").await.unwrap();
    assert!(
        status.events.iter().all(|e| e.consumed),
        "{:?}",
        status.events
    );
}

/// Found by review: a child's end woke its parent by the system clock, so
/// a runner whose clock is behind it (a virtual one) never found the
/// parent due.
#[tokio::test(start_paused = true)]
async fn a_child_wakes_its_parent_whatever_the_runners_clock() {
    let clock = Clock::following_tokio(UNIX_EPOCH + Duration::from_millis(START_MS as u64));
    let log = Arc::new(Log::default());
    let runner = Runner::builder()
        .store(Store::memory())
        .clock(clock)
        .durable(ShippedOrder(log.clone()))
        .durable(ShipParcel(log.clone()))
        .build()
        .unwrap();
    let run = runner.start(&ShippedOrder::ID, "o-2", 2).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), run.result())
        .await
        .expect("the parent woke when its child ended")
        .unwrap();
    assert_eq!(out, "parcel 2");
}
