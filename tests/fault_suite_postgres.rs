//! The seeded fault suite on PostgreSQL, with worker processes: each round
//! draws runs (the same plans as `fault_suite.rs`: eight step slots of
//! every kind, failures anywhere), enqueues them, starts one to three
//! worker processes (this test binary, re-run) with a one-second lease,
//! and meets them with faults drawn from the seed: a worker SIGKILLed and
//! started again, a worker SIGSTOPped past its lease and continued, a
//! worker restarted gracefully (SIGTERM, drained, replaced), a worker
//! deployed as release 2 of the workflow beside release 1 (some runs start
//! on release 2; each release keeps a worker for its runs); in half the
//! rounds the workers take eight runs at once on pools of two connections.
//! When
//! every run has ended it checks:
//!
//! - every run ended, in the status its plan implies;
//! - each step passed at most once per fault that hit the round, plus one;
//! - each transactional effect is there exactly when its row is;
//! - compensations of completed steps ran, latest first, at most once per
//!   fault plus one, and never for a run that completed.
//!
//! `WF_PG_FAULT_ROUNDS` sets the number of rounds (default 8) and
//! `WF_PG_FAULT_SEED` the first seed; a failing round prints its seed.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use workflow_runtime::durable::{JournalMark, PgTx, RunStatus, StepCtx, Store};
use workflow_runtime::host::{Runner, WorkflowHost};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TempPostgres;

#[path = "fault/plan.rs"]
mod plan;
use plan::{Expected, Plan, Planned, Rng, SLOTS, draw_plan};

/// What the steps did goes to the database, where every process writes.
#[derive(Debug)]
enum Noted {
    Db(sqlx::Error),
    Planned(Planned),
}

impl std::fmt::Display for Noted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Noted::Db(e) => e.fmt(f),
            Noted::Planned(p) => p.fmt(f),
        }
    }
}

impl std::error::Error for Noted {}

struct PgFuzz {
    pool: PgPool,
    instance: String,
}

impl PgFuzz {
    async fn note(&self, run: &str, slot: usize, what: &str) -> Result<(), Noted> {
        sqlx::query("INSERT INTO events (run, slot, what, instance) VALUES ($1, $2, $3, $4)")
            .bind(run)
            .bind(slot as i32)
            .bind(what)
            .bind(&self.instance)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(Noted::Db)
    }

    async fn body(&self, slot: usize, step: &StepCtx, plan: Plan) -> Result<Plan, Noted> {
        let planned = plan.slots[slot];
        if !planned.active {
            return Ok(plan);
        }
        self.note(&plan.run, slot, "exec").await?;
        if step.attempt() <= planned.fail_until {
            return Err(Noted::Planned(Planned("step")));
        }
        self.note(&plan.run, slot, "passed").await?;
        Ok(plan)
    }

    async fn undo(&self, slot: usize, plan: &Plan) -> Result<(), Noted> {
        if !plan.slots[slot].active {
            return Ok(());
        }
        self.note(&plan.run, slot, "undo").await?;
        if plan.slots[slot].undo_fails {
            return Err(Noted::Planned(Planned("compensation")));
        }
        self.note(&plan.run, slot, "undone").await
    }
}

/// Both releases of the workflow, one definition: release 2 differs by its
/// version label alone, so its fingerprint differs and a rolling deploy
/// runs both side by side.
macro_rules! fuzz_workflow {
    ($ty:ident, $($durable:tt)*) => {
        #[workflow(name = "PgFuzz", $($durable)*)]
        impl $ty {
    #[step(given = "open")]
    async fn open(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Noted> {
        self.body(0, step, plan).await
    }

    #[step(when = "reserve", compensate = release, retry(max_attempts = 3, backoff = "1ms"))]
    async fn reserve(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Noted> {
        self.body(1, step, plan).await
    }

    #[step(and = "pack", retry(max_attempts = 2, backoff = "1ms"), timeout = "5s")]
    async fn pack(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Noted> {
        self.body(2, step, plan).await
    }

    #[step(then = "checked")]
    fn checked(&self, plan: &Plan) -> bool {
        let slot = plan.slots[3];
        !(slot.active && slot.fail_until > 0)
    }

    #[step(when = "charge", transactional)]
    async fn charge(&self, tx: &mut PgTx, plan: Plan) -> Result<Plan, sqlx::Error> {
        let slot = plan.slots[4];
        if !slot.active {
            return Ok(plan);
        }
        sqlx::query("INSERT INTO charges (run) VALUES ($1)")
            .bind(&plan.run)
            .execute(&mut **tx)
            .await?;
        // A little work inside the transaction, for faults to land in.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if slot.fail_until > 0 {
            return Err(sqlx::Error::RowNotFound);
        }
        Ok(plan)
    }

    #[step(but = "notify", compensate = unnotify)]
    async fn notify(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Noted> {
        self.body(5, step, plan).await
    }

    #[step(when = "ship", retry(max_attempts = 3, backoff = "1ms"))]
    async fn ship(&self, step: &StepCtx, plan: Plan) -> Result<Plan, Noted> {
        self.body(6, step, plan).await
    }

    #[step(finally = "audit")]
    fn audit(&self) {}

    #[compensation(retry(max_attempts = 2, backoff = "1ms"))]
    async fn release(&self, plan: Plan) -> Result<(), Noted> {
        self.undo(1, &plan).await
    }

    #[compensation]
    async fn unnotify(&self, plan: Plan) -> Result<(), Noted> {
        self.undo(5, &plan).await
    }
        }
    };
}

fuzz_workflow!(PgFuzz, durable);

/// Release 2: the same steps, journaled under another fingerprint.
struct PgFuzzV2(PgFuzz);

impl std::ops::Deref for PgFuzzV2 {
    type Target = PgFuzz;
    fn deref(&self) -> &PgFuzz {
        &self.0
    }
}

fuzz_workflow!(PgFuzzV2, durable = "v2");

/// A worker process: this test binary, re-run, until killed or asked to
/// stop (SIGTERM).
#[test]
fn pg_fault_worker() {
    let (Ok(url), Ok(instance)) = (
        std::env::var("WF_PG_FAULT_URL"),
        std::env::var("WF_PG_FAULT_INSTANCE"),
    ) else {
        return; // Run as a test of its own: nothing to do.
    };
    let v2 = std::env::var("WF_PG_FAULT_V2").is_ok();
    // A pool smaller than the load: two connections for a capacity of eight.
    let small_pool = std::env::var("WF_PG_FAULT_SMALL_POOL").is_ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (store, capacity) = if small_pool {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await
                .unwrap();
            let store = workflow_runtime::durable::PostgresStore::from_pool(pool, &url);
            (Store::new(store.await.unwrap()), 8)
        } else {
            (Store::postgres(&url).await.unwrap(), 4)
        };
        let pool = store.as_postgres().unwrap().pool().clone();
        let fuzz = PgFuzz {
            pool,
            instance: instance.clone(),
        };
        let host = if v2 {
            WorkflowHost::builder().durable(PgFuzzV2(fuzz))
        } else {
            WorkflowHost::builder().durable(fuzz)
        };
        let host = host
            .store(store)
            .instance(instance, Duration::from_secs(1))
            .worker(capacity)
            .build()
            .unwrap();
        host.run_until_signal().await;
    });
}

/// A worker process running release 1 of the workflow, or release 2, on
/// a pool smaller than its capacity or not.
fn spawn_worker(url: &str, instance: &str, v2: bool, small_pool: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "pg_fault_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WF_PG_FAULT_URL", url)
        .env("WF_PG_FAULT_INSTANCE", instance)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if v2 {
        command.env("WF_PG_FAULT_V2", "1");
    }
    if small_pool {
        command.env("WF_PG_FAULT_SMALL_POOL", "1");
    }
    command.spawn().unwrap()
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status();
}

/// The worker processes, killed however the round ends.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            signal(child, "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fault a round meets, at a time from its start.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL worker `n`, then start it again.
    Kill(usize),
    /// SIGSTOP worker `n` past its lease, then SIGCONT.
    Stop(usize),
    /// Restart worker `n` gracefully (SIGTERM, then a new process), as a
    /// rolling restart does: it drains, releases its leases, and another
    /// takes its place.
    Restart(usize),
    /// A rolling deploy's step: worker `n` is restarted gracefully as
    /// release 2 of the workflow, beside the others still on release 1.
    Deploy(usize),
}

/// One round; the faults it met.
/// The instances that only enqueue: one per release.
struct Apis {
    v1: Runner,
    v2: Runner,
}

/// One round; the faults it met, and whether its workers' pools were
/// smaller than their capacity.
async fn round(
    url: &str,
    pool: &PgPool,
    apis: &Apis,
    seed: u64,
) -> Result<(Vec<Fault>, bool), String> {
    let fail = |what: String| Err(format!("seed {seed}: {what}"));
    let mut rng = Rng(seed);
    let plans: Vec<Plan> = (0..2 + rng.below(4))
        .map(|n| draw_plan(&mut rng, format!("pg{seed}-r{n}")))
        .collect();
    let processes = 1 + rng.below(3) as usize;
    let faults: Vec<(u64, Fault)> = (0..rng.below(3))
        .map(|_| {
            let at = rng.below(400);
            let n = rng.below(processes as u64) as usize;
            let fault = match rng.below(4) {
                0 => Fault::Kill(n),
                1 => Fault::Stop(n),
                2 => Fault::Restart(n),
                _ => Fault::Deploy(n),
            };
            (at, fault)
        })
        .collect();
    // Half the rounds' workers have a pool smaller than their capacity.
    let small_pool = rng.chance(50);
    // Some runs start on release 2 (a node already deployed).
    let (mut any_v1, mut any_v2) = (false, false);
    for plan in &plans {
        if rng.chance(25) {
            any_v2 = true;
            apis.v2
                .enqueue(&PgFuzzV2::ID, plan.run.clone(), plan.clone())
                .await
                .unwrap();
        } else {
            any_v1 = true;
            apis.v1
                .enqueue(&PgFuzz::ID, plan.run.clone(), plan.clone())
                .await
                .unwrap();
        }
    }
    let mut workers = Workers(
        (0..processes)
            .map(|n| spawn_worker(url, &format!("pg{seed}-w{n}"), false, small_pool))
            .collect(),
    );
    let mut on_v2 = vec![false; processes];
    let started = Instant::now();
    let mut lives = processes;
    for (at, fault) in &faults {
        let wait = Duration::from_millis(*at).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        match *fault {
            Fault::Kill(n) => {
                let _ = workers.0[n].kill();
                let _ = workers.0[n].wait();
                tokio::time::sleep(Duration::from_millis(100)).await;
                workers.0[n] =
                    spawn_worker(url, &format!("pg{seed}-w{n}-{lives}"), on_v2[n], small_pool);
                lives += 1;
            }
            Fault::Stop(n) => {
                signal(&workers.0[n], "STOP");
                tokio::time::sleep(Duration::from_millis(1500)).await;
                signal(&workers.0[n], "CONT");
            }
            Fault::Restart(n) | Fault::Deploy(n) => {
                signal(&workers.0[n], "TERM");
                let _ = workers.0[n].wait();
                on_v2[n] |= matches!(fault, Fault::Deploy(_));
                workers.0[n] =
                    spawn_worker(url, &format!("pg{seed}-w{n}-{lives}"), on_v2[n], small_pool);
                lives += 1;
            }
        }
    }
    // Mid-deploy, each release still has a worker for its runs.
    if any_v1 && on_v2.iter().all(|v2| *v2) {
        workers.0.push(spawn_worker(
            url,
            &format!("pg{seed}-v1"),
            false,
            small_pool,
        ));
    }
    if any_v2 && !on_v2.iter().any(|v2| *v2) {
        workers
            .0
            .push(spawn_worker(url, &format!("pg{seed}-v2"), true, small_pool));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let ids: Vec<String> = plans.iter().map(|p| p.run.clone()).collect();
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflow_runs WHERE id = ANY($1) AND status = 'running'",
        )
        .bind(&ids)
        .fetch_one(pool)
        .await
        .unwrap();
        if running == 0 {
            break;
        }
        if Instant::now() > deadline {
            return fail(format!(
                "{running} runs still running after 90s ({faults:?})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for child in &workers.0 {
        signal(child, "TERM");
    }
    for child in &mut workers.0 {
        let _ = child.wait();
    }
    workers.0.clear();

    let bound = 1 + faults.len();
    let store = apis.v1.store().unwrap();
    for plan in &plans {
        let run = store.backend().run(&plan.run).await.unwrap().unwrap();
        let rows = store.backend().steps(&plan.run).await.unwrap();
        let events: Vec<(i32, String)> =
            sqlx::query_as("SELECT slot, what FROM events WHERE run = $1 ORDER BY id")
                .bind(&plan.run)
                .fetch_all(pool)
                .await
                .unwrap();
        let expected = plan.expected();
        let status_ok = match expected {
            Expected::Completed => run.status == RunStatus::Completed,
            Expected::Failed(_) => run.status == RunStatus::Failed,
            Expected::CompensationFailed(_) => run.status == RunStatus::CompensationFailed,
        };
        if !status_ok {
            return fail(format!(
                "run {} ended {} ({:?}), its plan implies {expected:?}: {plan:?} ({faults:?})",
                plan.run, run.status, run.error
            ));
        }
        for slot in 0..SLOTS {
            let passed = events
                .iter()
                .filter(|(s, what)| *s as usize == slot && what == "passed")
                .count();
            if passed > bound {
                return fail(format!(
                    "run {}: slot {slot} passed {passed} times with {faults:?}",
                    plan.run
                ));
            }
        }
        let charged = rows.iter().any(|r| r.mark().is_none() && r.index == 4);
        let charges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM charges WHERE run = $1")
            .bind(&plan.run)
            .fetch_one(pool)
            .await
            .unwrap();
        if charges != i64::from(charged && plan.slots[4].active) {
            return fail(format!(
                "run {}: {charges} charges, row journaled: {charged}",
                plan.run
            ));
        }
        let undone: Vec<usize> = events
            .iter()
            .filter(|(_, what)| what == "undone")
            .map(|(s, _)| *s as usize)
            .collect();
        let undos = events.iter().filter(|(_, what)| what == "undo").count();
        if let Err(violation) = plan.check_compensations(&undone, undos, bound) {
            return fail(violation);
        }
        // Each compensation that passed is journaled as done.
        let journaled: BTreeSet<usize> = rows
            .iter()
            .filter_map(|r| match r.mark() {
                Some(JournalMark::Compensated(j)) => Some(j as usize),
                _ => None,
            })
            .collect();
        if undone.iter().any(|j| !journaled.contains(j)) {
            return fail(format!(
                "run {}: a compensation that ran is not journaled",
                plan.run
            ));
        }
    }
    Ok((
        faults.into_iter().map(|(_, fault)| fault).collect(),
        small_pool,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_runs_keep_their_promises_under_seeded_faults_on_postgres() {
    let rounds: u64 = std::env::var("WF_PG_FAULT_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let first: u64 = std::env::var("WF_PG_FAULT_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let store = Store::postgres(&url).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    sqlx::raw_sql(
        "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, slot INT NOT NULL,
             what TEXT NOT NULL, instance TEXT NOT NULL);
         CREATE TABLE charges (run TEXT NOT NULL);",
    )
    .execute(&pool)
    .await
    .unwrap();
    // An instance that only enqueues.
    let api = |store: Store, v2: bool| {
        let fuzz = PgFuzz {
            pool: pool.clone(),
            instance: "api".into(),
        };
        let builder = Runner::builder().store(store);
        let builder = if v2 {
            builder.durable(PgFuzzV2(fuzz))
        } else {
            builder.durable(fuzz)
        };
        builder.build().unwrap()
    };
    let apis = Apis {
        v1: api(store.clone(), false),
        v2: api(store, true),
    };
    let (mut kills, mut stops, mut restarts, mut deploys, mut small) = (0, 0, 0, 0, 0);
    for seed in first..first + rounds {
        match round(&url, &pool, &apis, seed).await {
            Ok((faults, small_pool)) => {
                small += u32::from(small_pool);
                for fault in faults {
                    match fault {
                        Fault::Kill(_) => kills += 1,
                        Fault::Stop(_) => stops += 1,
                        Fault::Restart(_) => restarts += 1,
                        Fault::Deploy(_) => deploys += 1,
                    }
                }
            }
            Err(violation) => {
                panic!("{violation}\nreplay: WF_PG_FAULT_SEED={seed} WF_PG_FAULT_ROUNDS=1")
            }
        }
    }
    eprintln!(
        "postgres fault suite: {rounds} rounds from seed {first}, {kills} kills, {stops} stops \
         past the lease, {restarts} graceful restarts, {deploys} workers deployed as release 2, \
         {small} rounds on pools smaller than the load, no violation"
    );
}
