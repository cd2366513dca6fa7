//! A randomized, seeded fault suite for durable runs on SQLite. Each round
//! draws, from its seed, a few runs of a workflow whose eight steps cover
//! every kind (given, when with a compensation, and under retry and
//! timeout, then, a transactional when, but with a compensation, a retried
//! when, finally), each step active or not (so a run is 2 to 8 steps
//! long), failing on some attempts or for good, assertions false anywhere,
//! compensations that fail; and the faults its processes meet: a crash
//! before or after a chosen journal write (the process's runtime is torn
//! down, as a kill leaves it), a crash inside a transactional step's body
//! after its write, while it holds the batch's transaction that other
//! runs' writes share, journal writes that fail for a while. Lives
//! of the process follow one another on the same file until one ends
//! every run. After each round it checks:
//!
//! - every run ended, in the status its plan implies;
//! - no step ran again once its row was journaled, and no step ran again
//!   once the run was journaled as failed at it;
//! - each step passed at most once per crash that hit the round, plus one;
//! - each transactional effect is there exactly when its row is;
//! - compensations of completed steps ran, at most once per crash plus
//!   one, latest step first, and never for a run that completed;
//! - health counts what the plans imply.
//!
//! `WF_FAULT_ROUNDS` sets the number of rounds (default 150) and
//! `WF_FAULT_SEED` the first seed; a failing round prints its seed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use workflow_runtime::behavior::BoxFuture;
use workflow_runtime::durable::{
    Backend, FailureRow, Fence, Inserted, JournalMark, RunEnd, RunRow, RunStatus, SqliteOptions,
    SqliteStore, SqliteTx, StepCtx, StepRow, Store, StoreError, WorkflowCounts,
};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

#[path = "fault/plan.rs"]
mod plan;
use plan::{Expected, Plan, Planned, Rng, SLOTS, draw_plan};

// ---------------------------------------------------------------- the world

/// What happened, as the steps and compensations saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum What {
    /// A step's body started this attempt.
    Exec { slot: usize, attempt: u32 },
    /// A step's body passed.
    Passed { slot: usize },
    /// A compensation's body started.
    Undo { slot: usize },
    /// A compensation's body passed.
    Undone { slot: usize },
}

#[derive(Clone, Debug)]
struct Event {
    life: u32,
    run: String,
    what: What,
}

#[derive(Default)]
struct World {
    life: AtomicU32,
    events: Mutex<Vec<Event>>,
    /// This life's crash inside the charge step's body, if it has one:
    /// at which charge it dies, how many it has seen, and its store.
    charge_crash: Mutex<Option<ChargeCrash>>,
    /// Lives that died in a charge's body.
    charge_deaths: AtomicU64,
}

struct ChargeCrash {
    at: u32,
    seen: u32,
    faulty: Faulty,
}

impl World {
    /// Whether the process dies here, in a charge's body: it is dead from
    /// now on.
    fn dies_charging(&self) -> bool {
        let mut crash = self.charge_crash.lock().unwrap();
        let Some(crash) = crash.as_mut() else {
            return false;
        };
        crash.seen += 1;
        // Dead already (a crash at a journal write): not a second death.
        if crash.seen != crash.at || crash.faulty.dead.load(Ordering::SeqCst) {
            return false;
        }
        crash.faulty.die();
        self.charge_deaths.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn note(&self, run: &str, what: What) {
        let life = self.life.load(Ordering::SeqCst);
        self.events.lock().unwrap().push(Event {
            life,
            run: run.to_owned(),
            what,
        });
    }
    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

struct Fuzz(Arc<World>);

impl Fuzz {
    /// A plain step's body: noted, failing as planned, passing the plan on.
    fn body(&self, slot: usize, step: &StepCtx, plan: Plan) -> Result<Plan, Planned> {
        let planned = plan.slots[slot];
        if !planned.active {
            return Ok(plan);
        }
        let attempt = step.attempt();
        self.0.note(&plan.run, What::Exec { slot, attempt });
        if attempt <= planned.fail_until {
            return Err(Planned("step"));
        }
        self.0.note(&plan.run, What::Passed { slot });
        Ok(plan)
    }

    fn undo(&self, slot: usize, plan: &Plan) -> Result<(), Planned> {
        if !plan.slots[slot].active {
            return Ok(());
        }
        self.0.note(&plan.run, What::Undo { slot });
        if plan.slots[slot].undo_fails {
            return Err(Planned("compensation"));
        }
        self.0.note(&plan.run, What::Undone { slot });
        Ok(())
    }
}

#[workflow(durable)]
impl Fuzz {
    #[step(given = "open")]
    async fn open(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Planned> {
        self.body(0, step, plan)
    }

    #[step(when = "reserve", compensate = release, retry(max_attempts = 3, backoff = "1ms"))]
    async fn reserve(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Planned> {
        self.body(1, step, plan)
    }

    #[step(and = "pack", retry(max_attempts = 2, backoff = "1ms"), timeout = "5s")]
    async fn pack(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Planned> {
        self.body(2, step, plan)
    }

    #[step(then = "checked")]
    fn checked(&self, plan: &Plan) -> bool {
        let slot = plan.slots[3];
        if slot.active {
            self.0.note(
                &plan.run,
                What::Exec {
                    slot: 3,
                    attempt: 1,
                },
            );
        }
        !(slot.active && slot.fail_until > 0)
    }

    #[step(when = "charge", transactional)]
    async fn charge(&self, tx: &mut SqliteTx, plan: Plan) -> Result<Plan, sqlx::Error> {
        let slot = plan.slots[4];
        if !slot.active {
            return Ok(plan);
        }
        self.0.note(
            &plan.run,
            What::Exec {
                slot: 4,
                attempt: 1,
            },
        );
        sqlx::query("INSERT INTO charges (run) VALUES (?)")
            .bind(&plan.run)
            .execute(&mut **tx)
            .await?;
        if self.0.dies_charging() {
            // Killed holding the batch's transaction, its write in it.
            std::future::pending::<()>().await;
        }
        if slot.fail_until > 0 {
            // After the write: the rollback takes it back.
            return Err(sqlx::Error::RowNotFound);
        }
        self.0.note(&plan.run, What::Passed { slot: 4 });
        Ok(plan)
    }

    #[step(but = "notify", compensate = unnotify)]
    async fn notify(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Planned> {
        self.body(5, step, plan)
    }

    #[step(when = "ship", retry(max_attempts = 3, backoff = "1ms"))]
    async fn ship(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Planned> {
        self.body(6, step, plan)
    }

    #[step(finally = "audit")]
    fn audit(&self) {}

    #[compensation(retry(max_attempts = 2, backoff = "1ms"))]
    async fn release(&self, plan: Plan) -> Result<(), Planned> {
        self.undo(1, &plan)
    }

    #[compensation]
    async fn unnotify(&self, plan: Plan) -> Result<(), Planned> {
        self.undo(5, &plan)
    }
}

// ---------------------------------------------------------------- faults

/// What a life of the process meets.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    /// Dies at this journal write (counted from 1 in this life): before it
    /// lands, or right after.
    crash: Option<(u32, bool)>,
    /// These journal writes fail, as a database that is briefly away.
    failing: Option<(u32, u32)>,
    /// Dies inside the body of this life's charge step of this number
    /// (counted from 1), after its write.
    in_charge: Option<u32>,
}

/// The SQLite store, with this life's faults: a crash stops every call for
/// good (the process is dead), a failing write says the database failed.
#[derive(Clone)]
struct Faulty {
    inner: SqliteStore,
    faults: Faults,
    writes: Arc<AtomicU32>,
    dead: Arc<AtomicBool>,
    died: Arc<Notify>,
    crashes: Arc<AtomicU64>,
}

impl Faulty {
    fn new(inner: SqliteStore, faults: Faults) -> Self {
        Faulty {
            inner,
            faults,
            writes: Arc::default(),
            dead: Arc::default(),
            died: Arc::default(),
            crashes: Arc::default(),
        }
    }

    async fn crashed(&self) {
        loop {
            let died = self.died.notified();
            if self.dead.load(Ordering::SeqCst) {
                return;
            }
            died.await;
        }
    }

    fn die(&self) {
        self.dead.store(true, Ordering::SeqCst);
        self.crashes.fetch_add(1, Ordering::SeqCst);
        self.died.notify_waiters();
    }

    fn alive<'a, T: Send + 'a>(
        &'a self,
        call: BoxFuture<'a, Result<T, StoreError>>,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async move {
            if self.dead.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            call.await
        })
    }

    fn write<'a, T: Send + 'a>(
        &'a self,
        call: impl FnOnce() -> BoxFuture<'a, Result<T, StoreError>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async move {
            if self.dead.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((from, count)) = self.faults.failing
                && (from..from + count).contains(&n)
            {
                return Err(StoreError::Database {
                    store: "faulty".into(),
                    doing: format!("write {n}"),
                    source: "disk I/O error (injected)".into(),
                });
            }
            match self.faults.crash {
                Some((at, true)) if at == n => {
                    self.die();
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                Some((at, false)) if at == n => {
                    let written = call().await;
                    drop(written);
                    self.die();
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                _ => call().await,
            }
        })
    }
}

impl Backend for Faulty {
    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }
    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        self.write(move || self.inner.insert_run(run))
    }
    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>> {
        self.alive(self.inner.run(id))
    }
    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        self.alive(self.inner.steps(run))
    }
    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.write(move || self.inner.record_step(run, step))
    }
    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.write(move || self.inner.record_failure(run, failure))
    }
    fn failures<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<FailureRow>, StoreError>> {
        self.alive(self.inner.failures(run))
    }
    fn finish_run<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.write(move || self.inner.finish_run(run, end))
    }
    // One write, as the store makes it: a crash before it leaves neither
    // the last step's row nor the end, one after it both.
    fn finish_run_with<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
        last: Option<&'a StepRow>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.write(move || self.inner.finish_run_with(run, end, last, fence))
    }
    fn running(&self) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        self.alive(self.inner.running())
    }
    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.write(move || self.inner.unpark(run))
    }
    fn counts_by_workflow(&self, now_ms: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>> {
        self.alive(self.inner.counts_by_workflow(now_ms))
    }
    // The SQLite store itself, so transactional steps take their
    // transactions from it (their commits are atomic with their rows).
    fn as_any(&self) -> &dyn std::any::Any {
        self.inner.as_any()
    }
}

// ---------------------------------------------------------------- rounds

/// How a life of the process ended.
#[derive(Debug, PartialEq)]
enum LifeEnd {
    Crashed,
    /// Every run ended.
    Finished,
}

struct Round {
    seed: u64,
    dir: TempDir,
    world: Arc<World>,
    plans: Vec<Plan>,
    crashes: u64,
    /// The journal's rows per run after each life, by life.
    journals: Vec<BTreeMap<String, Vec<StepRow>>>,
}

async fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap()
}

impl Round {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let runs = 1 + rng.below(4);
        let plans = (0..runs)
            .map(|n| draw_plan(&mut rng, format!("s{seed}-r{n}")))
            .collect();
        Round {
            seed,
            dir: TempDir::new(&format!("fault-{seed}")),
            world: Arc::default(),
            plans,
            crashes: 0,
            journals: Vec::new(),
        }
    }

    /// One life of the process on its own runtime, torn down at its end
    /// as a killed process leaves things.
    fn life(&mut self, life: u32, faults: Faults) -> LifeEnd {
        self.world.life.store(life, Ordering::SeqCst);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (world, plans, dir, seed) =
            (self.world.clone(), self.plans.clone(), &self.dir, self.seed);
        let (end, crashes) = rt.block_on(async move {
            let sqlite = open(dir).await;
            if life == 1 {
                sqlx::query("CREATE TABLE IF NOT EXISTS charges (run TEXT NOT NULL)")
                    .execute(sqlite.pool())
                    .await
                    .unwrap();
            }
            let faulty = Faulty::new(sqlite, faults);
            *world.charge_crash.lock().unwrap() = faults.in_charge.map(|at| ChargeCrash {
                at,
                seen: 0,
                faulty: faulty.clone(),
            });
            let runner = Runner::builder()
                .store(Store::new(faulty.clone()))
                .durable(Fuzz(world))
                .redrive(20, Duration::from_secs(120))
                .build()
                .unwrap();
            let work = async {
                // A restarted process resumes what it left; its clients
                // start their runs again with the same ids (idempotently).
                if life > 1 {
                    runner.resume().await.unwrap();
                }
                for plan in &plans {
                    // Refused while the database fails: the client asks again.
                    let mut tries = 0;
                    while let Err(error) = runner
                        .start(&Fuzz::ID, plan.run.clone(), plan.clone())
                        .await
                    {
                        tries += 1;
                        assert!(tries < 20, "seed {seed}: start keeps failing: {error}");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                for plan in &plans {
                    let _ = runner.handle(&Fuzz::ID, plan.run.clone()).result().await;
                }
            };
            let end = tokio::select! {
                () = faulty.crashed() => LifeEnd::Crashed,
                () = work => LifeEnd::Finished,
                () = tokio::time::sleep(Duration::from_secs(60)) => {
                    panic!("seed {seed}: life {life} neither crashed nor ended its runs")
                }
            };
            (end, faulty.crashes.load(Ordering::SeqCst))
        });
        // Waits for the runtime's threads to stop: one still inside a poll
        // when the next life starts would note its step under that life.
        rt.shutdown_timeout(Duration::from_secs(10));
        // The dead life's store goes with it, as the process's would.
        self.world.charge_crash.lock().unwrap().take();
        self.crashes += crashes;
        self.journals.push(self.snapshot());
        end
    }

    fn snapshot(&self) -> BTreeMap<String, Vec<StepRow>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sqlite = open(&self.dir).await;
            let mut rows = BTreeMap::new();
            for plan in &self.plans {
                rows.insert(plan.run.clone(), sqlite.steps(&plan.run).await.unwrap());
            }
            rows
        })
    }

    /// Runs lives until one ends every run: the first lives meet faults
    /// drawn from the seed, the last none.
    fn play(&mut self) {
        let mut rng = Rng(self.seed ^ 0xFA17);
        let faulty_lives = rng.below(3);
        for life in 1..=faulty_lives as u32 + 1 {
            let mut faults = Faults::default();
            if u64::from(life) <= faulty_lives {
                // A run writes about ten rows: a crash point among them.
                let writes = 4 + 10 * self.plans.len() as u64;
                if rng.chance(80) {
                    faults.crash = Some((1 + rng.below(writes) as u32, rng.chance(50)));
                }
                if rng.chance(40) {
                    faults.failing = Some((1 + rng.below(writes) as u32, 1 + rng.below(3) as u32));
                }
                if rng.chance(30) {
                    faults.in_charge = Some(1 + rng.below(self.plans.len() as u64) as u32);
                }
            }
            if self.life(life, faults) == LifeEnd::Finished {
                return;
            }
        }
        panic!("seed {}: the last life, with no faults, crashed", self.seed);
    }

    /// Checks the invariants; a violation names the seed.
    fn check(&self) -> Result<(), String> {
        let fail = |what: String| Err(format!("seed {}: {what}", self.seed));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (runs, charges, counts) = rt.block_on(async {
            let sqlite = open(&self.dir).await;
            let mut runs = BTreeMap::new();
            let mut charges = BTreeMap::new();
            for plan in &self.plans {
                runs.insert(
                    plan.run.clone(),
                    sqlite.run(&plan.run).await.unwrap().unwrap(),
                );
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM charges WHERE run = ?")
                    .bind(&plan.run)
                    .fetch_one(sqlite.pool())
                    .await
                    .unwrap();
                charges.insert(plan.run.clone(), n);
            }
            let runner = Runner::builder()
                .store(Store::new(sqlite))
                .durable(Fuzz(Arc::default()))
                .build()
                .unwrap();
            let counts = runner.durable_health().await.unwrap().counts;
            (runs, charges, counts)
        });
        let events = self.world.events();
        let last = self.journals.last().expect("a life ran");
        let bound = 1 + self.crashes as usize;
        let mut expected_counts = (0, 0, 0);
        for plan in &self.plans {
            let run = &runs[&plan.run];
            let rows = &last[&plan.run];
            let mine: Vec<&Event> = events.iter().filter(|e| e.run == plan.run).collect();
            let expected = plan.expected();
            // Ended, as its plan implies.
            let status_ok = match expected {
                Expected::Completed => {
                    expected_counts.0 += 1;
                    run.status == RunStatus::Completed
                }
                Expected::Failed(_) => {
                    expected_counts.1 += 1;
                    run.status == RunStatus::Failed
                }
                Expected::CompensationFailed(_) => {
                    expected_counts.2 += 1;
                    run.status == RunStatus::CompensationFailed
                }
            };
            if !status_ok {
                return fail(format!(
                    "run {} ended {} ({:?}), its plan implies {expected:?}: {plan:?}",
                    plan.run, run.status, run.error
                ));
            }
            // Nothing ran again once the journal had its row, or had the
            // run failed at it.
            for (life, journal) in self.journals.iter().enumerate() {
                let later = |slot: usize| {
                    mine.iter().any(|e| {
                        e.life as usize > life + 1
                            && matches!(e.what, What::Exec { slot: s, .. } if s == slot)
                    })
                };
                // Nor a compensation once journaled as done, nor any once
                // the undoing was journaled as failed.
                let undone_later = |slot: Option<usize>| {
                    mine.iter().any(|e| {
                        e.life as usize > life + 1
                            && matches!(e.what, What::Undo { slot: s } if slot.is_none_or(|k| k == s))
                    })
                };
                for row in &journal[&plan.run] {
                    let slot = match row.mark() {
                        None => row.index as usize,
                        Some(JournalMark::FailedAt(k)) => k as usize,
                        Some(JournalMark::Compensated(k)) => {
                            if undone_later(Some(k as usize)) {
                                return fail(format!(
                                    "run {}: slot {k}'s compensation ran after life {} journaled it",
                                    plan.run,
                                    life + 1
                                ));
                            }
                            continue;
                        }
                        Some(_) => {
                            if undone_later(None) {
                                return fail(format!(
                                    "run {}: a compensation ran after life {} journaled the undoing failed",
                                    plan.run,
                                    life + 1
                                ));
                            }
                            continue;
                        }
                    };
                    if slot < SLOTS && later(slot) {
                        return fail(format!(
                            "run {}: slot {slot} ran after life {} journaled it ({:?})",
                            plan.run,
                            life + 1,
                            row.mark()
                        ));
                    }
                }
            }
            // No step passed twice in one life: that would be a step run
            // again without a crash.
            for slot in 0..SLOTS {
                for life in 1..=self.journals.len() as u32 {
                    let passed = mine
                        .iter()
                        .filter(|e| e.life == life && e.what == What::Passed { slot })
                        .count();
                    if passed > 1 {
                        return fail(format!(
                            "run {}: slot {slot} passed {passed} times in life {life}",
                            plan.run
                        ));
                    }
                }
            }
            // Each step passed at most once per crash, plus one.
            for slot in 0..SLOTS {
                let passed = mine
                    .iter()
                    .filter(|e| e.what == What::Passed { slot })
                    .count();
                if passed > bound {
                    return fail(format!(
                        "run {}: slot {slot} passed {passed} times with {} crashes",
                        plan.run, self.crashes
                    ));
                }
            }
            // The transactional effect is there exactly when its row is.
            let charged = rows.iter().any(|r| r.mark().is_none() && r.index == 4);
            if charges[&plan.run] != i64::from(charged && plan.slots[4].active) {
                return fail(format!(
                    "run {}: {} charges, row journaled: {charged}",
                    plan.run, charges[&plan.run]
                ));
            }
            // Compensations: of the completed compensated steps before the
            // failure, latest first, at most once per crash plus one; none
            // for a completed run.
            let undone: Vec<usize> = mine
                .iter()
                .filter_map(|e| match e.what {
                    What::Undone { slot } => Some(slot),
                    _ => None,
                })
                .collect();
            let undos = mine
                .iter()
                .filter(|e| matches!(e.what, What::Undo { .. }))
                .count();
            if let Err(violation) = plan.check_compensations(&undone, undos, bound) {
                return fail(violation);
            }
        }
        // Health counts what the plans imply.
        let got = (counts.completed, counts.failed, counts.compensation_failed);
        if got != expected_counts || counts.running != 0 || counts.stuck != 0 {
            return fail(format!(
                "health counts {counts:?}, the plans imply {expected_counts:?}"
            ));
        }
        Ok(())
    }
}

#[test]
fn durable_runs_keep_their_promises_under_seeded_faults() {
    let rounds: u64 = std::env::var("WF_FAULT_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150);
    let first: u64 = std::env::var("WF_FAULT_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let (mut crashes, mut in_charge) = (0, 0);
    for seed in first..first + rounds {
        let mut round = Round::new(seed);
        round.play();
        if let Err(violation) = round.check() {
            panic!("{violation}\nreplay: WF_FAULT_SEED={seed} WF_FAULT_ROUNDS=1");
        }
        crashes += round.crashes;
        in_charge += round.world.charge_deaths.load(Ordering::SeqCst);
    }
    eprintln!(
        "fault suite: {rounds} rounds from seed {first}, {crashes} crashes \
         ({in_charge} inside a transactional step holding the batch's transaction), no violation"
    );
}
