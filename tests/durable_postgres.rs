//! Many instances, one PostgreSQL (a throwaway server from the machine's
//! binaries): durable runs enqueued by one instance and run by three
//! worker processes that claim them with leases. One worker is SIGKILLed
//! and started again, one is restarted gracefully (SIGTERM), one is
//! SIGSTOPped past its lease and then continued. At the end every run
//! completed once, each transactional effect is there exactly once (by
//! the instance that journaled its step), no step ran more often than its
//! run was claimed, and a recurring workflow fired once per tick across
//! the three. A paused owner's step result is refused; a cron schedule
//! fires once per tick across instances.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use workflow_runtime::durable::{PgTx, StepCtx, Store};
use workflow_runtime::host::{Runner, WorkflowHost};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TempPostgres;

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

const RUNS: usize = 1000;

/// Which instance completed each step.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Parcel {
    run: String,
    by: Vec<String>,
}

struct Ship {
    pool: PgPool,
    instance: String,
}

impl Ship {
    /// A plain step's effect: a row written outside the journal.
    async fn effect(&self, step: &StepCtx, mut parcel: Parcel) -> Result<Parcel, sqlx::Error> {
        sqlx::query("INSERT INTO effects (run, step, instance) VALUES ($1, $2, $3)")
            .bind(step.run_id())
            .bind(i64::from(step.index()))
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
        parcel.by.push(self.instance.clone());
        Ok(parcel)
    }
}

#[workflow(durable)]
impl Ship {
    #[step(given = "an order")]
    async fn open(&self, step: &StepCtx, run: String) -> Result<Parcel, sqlx::Error> {
        self.effect(
            step,
            Parcel {
                run,
                by: Vec::new(),
            },
        )
        .await
    }

    #[step(when = "it is packed")]
    async fn pack(&self, step: &StepCtx, parcel: Parcel) -> Result<Parcel, sqlx::Error> {
        self.effect(step, parcel).await
    }

    #[step(when = "it is charged", transactional)]
    async fn charge(&self, tx: &mut PgTx, mut parcel: Parcel) -> Result<Parcel, sqlx::Error> {
        sqlx::query("INSERT INTO charges (run, instance) VALUES ($1, $2)")
            .bind(&parcel.run)
            .bind(&self.instance)
            .execute(&mut **tx)
            .await?;
        parcel.by.push(self.instance.clone());
        Ok(parcel)
    }
}

/// A recurring workflow every second: each tick must fire once across all
/// the instances.
struct Tick;

#[workflow(durable, every = "1s", run_immediately)]
impl Tick {
    #[step(given = "a tick")]
    fn tick(&self) -> u8 {
        1
    }
}

/// Holds its run past its owner's lease: the paused-owner test's step.
struct Hold {
    pool: PgPool,
    instance: String,
}

#[workflow(durable)]
impl Hold {
    #[step(given = "a held step")]
    async fn hold(&self, run: String) -> Result<(String, String), sqlx::Error> {
        sqlx::query("INSERT INTO holds (run, instance) VALUES ($1, $2)")
            .bind(&run)
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok((run, self.instance.clone()))
    }

    #[step(when = "it is settled", transactional)]
    async fn settle(
        &self,
        tx: &mut PgTx,
        (run, by): (String, String),
    ) -> Result<String, sqlx::Error> {
        sqlx::query("INSERT INTO settles (run, instance) VALUES ($1, $2)")
            .bind(&run)
            .bind(&self.instance)
            .execute(&mut **tx)
            .await?;
        Ok(by)
    }
}

/// A worker instance: this test binary, re-run, until killed or asked to
/// stop (SIGTERM), when it writes its health to the `exits` table.
#[test]
fn pg_worker() {
    let (Ok(url), Ok(instance)) = (std::env::var("WF_PG_URL"), std::env::var("WF_INSTANCE")) else {
        return; // Run as a test of its own: nothing to do.
    };
    let ticks = std::env::var("WF_TICKS").is_ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tracing_subscriber::fmt()
        .with_env_filter("warn,sqlx::query=error")
        .with_writer(std::io::stderr)
        .init();
    rt.block_on(async move {
        let store = Store::postgres(&url).await.unwrap();
        let pool = store.as_postgres().unwrap().pool().clone();
        let mut host = WorkflowHost::builder()
            .store(store)
            .durable(Ship {
                pool: pool.clone(),
                instance: instance.clone(),
            })
            .durable(Hold {
                pool: pool.clone(),
                instance: instance.clone(),
            });
        if ticks {
            host = host.recurring_durable(Tick);
        }
        let host = host
            .instance(instance.clone(), Duration::from_secs(1))
            .worker(16)
            .build()
            .unwrap();
        let runner = host.runner();
        host.run_until_signal().await;
        let health = runner.durable_health().await.unwrap();
        sqlx::query("INSERT INTO exits (instance, health) VALUES ($1, $2)")
            .bind(&instance)
            .bind(serde_json::to_string(&health).unwrap())
            .execute(&pool)
            .await
            .unwrap();
    });
}

fn worker(url: &str, instance: &str, ticks: bool) -> std::process::Child {
    worker_logging_to(url, instance, ticks, Stdio::inherit())
}

fn worker_logging_to(url: &str, instance: &str, ticks: bool, stderr: Stdio) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["pg_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env("WF_PG_URL", url)
        .env("WF_INSTANCE", instance)
        .stdout(Stdio::null())
        .stderr(stderr);
    if ticks {
        command.env("WF_TICKS", "1");
    }
    command.spawn().unwrap()
}

/// Asks a worker to stop (SIGTERM) and waits until it has.
fn stop(child: &mut std::process::Child) {
    signal(child, "TERM");
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the worker's graceful stop failed: {status}"
    );
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

async fn completed(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM workflow_runs WHERE workflow = 'Ship' AND status = 'completed'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn wait_until(pool: &PgPool, what: &str, done: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed(pool).await < done {
        if Instant::now() > deadline {
            let states: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
                "SELECT workflow, status, owner, COUNT(*) FROM workflow_runs GROUP BY 1, 2, 3",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            panic!("timed out waiting for {what}: {states:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tables the workflows write their effects to, and the workers'
/// health at exit.
async fn tables(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE effects (run TEXT NOT NULL, step BIGINT NOT NULL, instance TEXT NOT NULL);
         CREATE TABLE charges (run TEXT NOT NULL, instance TEXT NOT NULL);
         CREATE TABLE holds (run TEXT NOT NULL, instance TEXT NOT NULL);
         CREATE TABLE settles (run TEXT NOT NULL, instance TEXT NOT NULL);
         CREATE TABLE exits (instance TEXT NOT NULL, health TEXT NOT NULL);",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// One test of this file at a time: each runs a server and worker
/// processes, and their tick checks want the machine's two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The worker processes, killed however the test ends.
struct Workers(Vec<std::process::Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_runs_survive_a_kill_and_fence_out_a_paused_owner() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let store = Store::postgres(&url).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    tables(&pool).await;

    // An instance that only enqueues (an HTTP handler, say).
    let api = Runner::builder()
        .store(store)
        .durable(Ship {
            pool: pool.clone(),
            instance: "api".into(),
        })
        .build()
        .unwrap();
    let started = Instant::now();
    for n in 0..RUNS {
        let id = format!("ship-{n:04}");
        api.enqueue(&Ship::ID, id.clone(), id).await.unwrap();
    }

    // Health before any worker: the queue's depth and its oldest run, in
    // all and for the workflow.
    let health = api.durable_health().await.unwrap();
    assert_eq!(
        (health.counts.waiting, health.counts.running),
        (RUNS as u64, RUNS as u64)
    );
    assert!(health.oldest_waiting_age.is_some());
    assert_eq!((health.claimed, health.takeovers), (0, 0));
    let ship = &health.workflows["Ship"];
    assert_eq!(ship.counts.waiting, RUNS as u64);
    assert!(ship.oldest_waiting_age.is_some());

    let mut workers = Workers(vec![
        worker(&url, "a", true),
        worker(&url, "b", true),
        worker(&url, "c", true),
    ]);
    wait_until(&pool, "a fifth of the runs", (RUNS / 5) as i64).await;
    // Any instance sees who is working.
    let holders = api.durable_health().await.unwrap().instances;
    assert!(
        holders.len() >= 2
            && holders
                .keys()
                .all(|i| ["a", "b", "c"].contains(&i.as_str())),
        "{holders:?}"
    );
    // SIGKILL: a's runs wait out their leases; a is started again.
    workers.0[0].kill().unwrap();
    workers.0[0].wait().unwrap();
    workers.0[0] = worker(&url, "a", true);
    // A graceful restart: b lets go of its leases and starts again.
    stop(&mut workers.0[1]);
    workers.0[1] = worker(&url, "b", true);
    wait_until(&pool, "half of the runs", (RUNS / 2) as i64).await;
    // c paused past its lease: a and b take its runs; back, it holds
    // leases no more.
    signal(&workers.0[2], "STOP");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(&workers.0[2], "CONT");
    wait_until(&pool, "every run", RUNS as i64).await;
    let elapsed = started.elapsed();

    // Ticks on a cluster of three instances: while the backlog ran, a tick
    // whose run had not finished was skipped (no overlap). Over the next
    // 20s, with one worker SIGKILLed and started again half-way, each
    // tick fires once (run ids are unique), on the 1s grid; a tick is
    // missing only while the previous tick's run was still going (the
    // killed worker held it until its lease ran out).
    let window_start = now_ms() + 1000;
    tokio::time::sleep(Duration::from_secs(10)).await;
    workers.0[2].kill().unwrap();
    workers.0[2].wait().unwrap();
    workers.0[2] = worker(&url, "c", true);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let window_end = now_ms() - 1000;
    for child in &mut workers.0 {
        stop(child);
    }
    workers.0.clear();
    let ticks: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, status, updated_ms, lease_until_ms FROM workflow_runs WHERE workflow = 'Tick'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let ended: BTreeMap<i64, i64> = ticks
        .iter()
        .map(|(id, _, updated, _)| (id.trim_start_matches("Tick@").parse().unwrap(), *updated))
        .collect();
    let first_on_grid = window_start + (1000 - window_start.rem_euclid(1000)) % 1000;
    let expected: Vec<i64> = (first_on_grid..=window_end).step_by(1000).collect();
    assert!(expected.len() >= 18, "{expected:?}");
    let at: Vec<i64> = ended
        .keys()
        .copied()
        .filter(|t| (window_start..=window_end).contains(t))
        .collect();
    assert!(
        at.iter().all(|t| expected.contains(t)),
        "{at:?} off the grid"
    );
    let mut missed = Vec::new();
    for tick in &expected {
        if ended.contains_key(tick) {
            continue;
        }
        let before = ended.range(..tick).next_back();
        assert!(
            before.is_some_and(|(_, ended)| ended > tick),
            "tick {tick} missed though the run before it ({before:?}) had ended"
        );
        missed.push(*tick);
    }
    assert!(
        missed.len() <= 3,
        "{} ticks missed: {missed:?}",
        missed.len()
    );
    // Every tick due while the workers ran, ran. One that fired as the
    // last of them stopped (its worker no longer claiming) waits for the
    // next instance, free to claim at once: a graceful stop leaves no
    // run held.
    let unfinished: Vec<_> = ticks
        .iter()
        .filter(|(_, status, _, _)| status != "completed")
        .collect();
    for (id, status, _, lease_until) in &unfinished {
        let tick: i64 = id.trim_start_matches("Tick@").parse().unwrap();
        assert!(
            tick > window_end,
            "tick {id} ({status}) left unfinished though due before the workers stopped"
        );
        assert_eq!(*lease_until, 0, "tick {id} left held by a stopped worker");
    }
    assert!(
        unfinished.len() <= 1,
        "tick runs left unfinished: {unfinished:?}"
    );

    // Each life that stopped gracefully reported its claims per workflow.
    let exits: Vec<(String, String)> = sqlx::query_as("SELECT instance, health FROM exits")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(exits.len(), 4, "b twice, a's second life, c's second life");
    let (mut reported_claims, mut reported_takeovers) = (0, 0);
    for (instance, health) in &exits {
        let health: serde_json::Value = serde_json::from_str(health).unwrap();
        assert_eq!(health["instance"], instance.as_str());
        let ship = &health["workflows"]["Ship"];
        reported_claims += ship["claimed"].as_u64().unwrap();
        reported_takeovers += ship["takeovers"].as_u64().unwrap();
        // Each life claimed work (Ship runs, or ticks after the backlog),
        // and its per-workflow claims add up to its own.
        let per_workflow: u64 = health["workflows"]
            .as_object()
            .unwrap()
            .values()
            .map(|w| w["claimed"].as_u64().unwrap())
            .sum();
        assert_eq!(Some(per_workflow), health["claimed"].as_u64(), "{health}");
        assert!(per_workflow > 0, "{instance}: {health}");
    }

    // Every run completed, once.
    let runs: Vec<(String, String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT id, status, output, epoch FROM workflow_runs WHERE workflow = 'Ship' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(runs.len(), RUNS);
    let mut journaled: BTreeMap<String, (Vec<String>, i64)> = BTreeMap::new();
    for (id, status, output, epoch) in runs {
        assert_eq!(status, "completed", "run {id}");
        let parcel: Parcel = serde_json::from_slice(&output).unwrap();
        assert_eq!(parcel.by.len(), 3, "run {id}: {parcel:?}");
        journaled.insert(id, (parcel.by, epoch));
    }

    // The transactional step's effect: exactly once, by the instance that
    // journaled it.
    let charges: Vec<(String, String)> = sqlx::query_as("SELECT run, instance FROM charges")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut charged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (run, instance) in charges {
        charged.entry(run).or_default().push(instance);
    }
    for (run, (by, _)) in &journaled {
        assert_eq!(charged.get(run), Some(&vec![by[2].clone()]), "run {run}");
    }

    // Plain steps: at least once, and never more often than the run was
    // claimed; the journaling instance's own execution is among them.
    let effects: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT run, step, instance FROM effects")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut ran: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    for (run, step, instance) in effects {
        ran.entry((run, step)).or_default().push(instance);
    }
    let (mut repeated, mut takeovers) = (0, 0);
    for (run, (by, epoch)) in &journaled {
        takeovers += epoch - 1;
        for step in [0, 1] {
            let lives = &ran[&(run.clone(), step)];
            assert!(
                lives.contains(&by[step as usize]),
                "run {run} step {step}: {lives:?}"
            );
            assert!(
                lives.len() as i64 <= *epoch,
                "run {run} step {step} ran {} times in {epoch} claims",
                lives.len()
            );
            repeated += lives.len() - 1;
        }
    }
    // The killed worker's runs, and the paused one's, were taken over;
    // the lives that stopped gracefully saw some of it.
    assert!(takeovers > 0, "no run changed hands");
    assert!(reported_takeovers > 0 && reported_takeovers <= takeovers as u64);
    assert!(reported_claims <= RUNS as u64 + takeovers as u64);
    let mut per_instance: BTreeMap<String, usize> = BTreeMap::new();
    for (by, _) in journaled.values() {
        *per_instance.entry(by[2].clone()).or_default() += 1;
    }
    println!(
        "{RUNS} runs on 3 worker processes in {elapsed:.1?} (one SIGKILLed and started \
         again, one restarted gracefully, one SIGSTOPped past its lease): completed by \
         {per_instance:?}; {takeovers} takeovers; {repeated} plain-step executions \
         repeated; {RUNS} charges exactly once; {} ticks of 1s in {}s on three \
         instances (one SIGKILLed and started again), each once, {} skipped while the \
         killed worker held the previous tick's run",
        at.len(),
        (window_end - window_start) / 1000,
        missed.len(),
    );
}

/// Waits as long as it is told.
struct Slow;

#[workflow(durable)]
impl Slow {
    #[step(given = "a wait")]
    async fn wait(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_shuts_down_hands_its_runs_over_at_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = Store::postgres(&pg.url()).await.unwrap();
    let host = WorkflowHost::builder()
        .store(store.clone())
        .durable(Slow)
        .instance("a", Duration::from_secs(30))
        .worker(4)
        .options(
            workflow_runtime::host::HostOptions::default()
                .shutdown_timeout(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let runner = host.runner();
    runner.enqueue(&Slow::ID, "slow-1", 60_000).await.unwrap();
    // Run until `a` has claimed the minute-long run, then shut down.
    host.run_until(async {
        while runner.durable_in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let health = runner.durable_health().await.unwrap();
    assert_eq!((health.instance.as_str(), health.claimed), ("a", 1));

    // Its 30s lease was released: another instance takes the run at once.
    let now = now_ms();
    let claimed = store
        .backend()
        .claim_run("b", "slow-1", (now, now + 30_000))
        .await
        .unwrap();
    let claimed = claimed.expect("the lease was released at shutdown");
    assert_eq!(claimed.fence.epoch, 2);
}

/// A run whose owner is paused (SIGSTOP) past its lease mid-step is taken
/// over; the owner, continued (SIGCONT), finishes the step but cannot
/// record it: the run completes once, with the new owner's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_cannot_record_its_step() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let store = Store::postgres(&url).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    tables(&pool).await;
    let api = Runner::builder()
        .store(store)
        .durable(Hold {
            pool: pool.clone(),
            instance: "api".into(),
        })
        .build()
        .unwrap();
    api.enqueue(&Hold::ID, "hold-1", "hold-1".to_owned())
        .await
        .unwrap();

    let holders = |pool: PgPool| async move {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT instance FROM holds ORDER BY instance")
            .fetch_all(&pool)
            .await
            .unwrap();
        rows.into_iter().map(|(i,)| i).collect::<Vec<_>>()
    };
    let wait_for_holders = |n: usize| {
        let pool = pool.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while holders(pool.clone()).await.len() < n {
                assert!(Instant::now() < deadline, "no holder {n}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let mut workers = Workers(vec![worker_logging_to(&url, "p", false, Stdio::piped())]);
    // Read p's log as it comes, so a full pipe never blocks it.
    let mut log = workers.0[0].stderr.take().unwrap();
    let said = std::thread::spawn(move || {
        let mut said = String::new();
        std::io::Read::read_to_string(&mut log, &mut said).unwrap();
        said
    });
    wait_for_holders(1).await; // p is inside the step, for 1.5s
    signal(&workers.0[0], "STOP");
    tokio::time::sleep(Duration::from_millis(1200)).await; // p's 1s lease runs out
    workers.0.push(worker(&url, "q", false));
    wait_for_holders(2).await; // q took the run over and is inside the step
    signal(&workers.0[0], "CONT"); // p's step ends at once: its result is refused
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: String =
            sqlx::query_scalar("SELECT status FROM workflow_runs WHERE id = 'hold-1'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if status == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "hold-1 is {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for child in &mut workers.0 {
        stop(child);
    }
    let said = said.join().unwrap();
    workers.0.clear();
    // p learnt its lease was gone, from its next renewal or from the write
    // of its result (whichever came first once it was continued), and
    // stopped the run there.
    let by_renewal = said.contains("leases lost; stopping those runs here")
        && said.contains("lease lost: this instance stopped the run");
    let by_write = said.contains("lease lost: this instance's step result was refused")
        && said.contains("run \"hold-1\": instance p lost its lease");
    assert!(by_renewal || by_write, "p said: {said}");

    assert_eq!(holders(pool.clone()).await, ["p", "q"], "both ran the step");
    let (output, epoch): (Vec<u8>, i64) =
        sqlx::query_as("SELECT output, epoch FROM workflow_runs WHERE id = 'hold-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(serde_json::from_slice::<String>(&output).unwrap(), "q");
    assert_eq!(epoch, 2, "claimed twice: by p, then by q");
    let journaled: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT step_index, output FROM workflow_steps WHERE run_id = 'hold-1' ORDER BY step_index",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(journaled.len(), 2, "one row per step");
    let held: (String, String) = serde_json::from_slice(&journaled[0].1).unwrap();
    assert_eq!(held.1, "q", "the step's journaled result is q's, not p's");
    let settles: Vec<(String, String)> = sqlx::query_as("SELECT run, instance FROM settles")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(settles, [("hold-1".to_owned(), "q".to_owned())]);
}

/// Every second by a cron expression in a time zone, on two instances
/// of one store.
struct Chime;

#[workflow(durable, cron = "* * * * * *", zone = "Europe/Paris")]
impl Chime {
    #[step(given = "a chime")]
    fn chime(&self) -> u8 {
        1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_schedule_fires_each_tick_once_across_instances() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = Store::postgres(&pg.url()).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    let host = |name: &str| {
        WorkflowHost::builder()
            .store(store.clone())
            .recurring_durable(Chime)
            .instance(name, Duration::from_secs(5))
            .worker(4)
            .build()
            .unwrap()
    };
    let (one, two) = (host("one"), host("two"));
    let window_start = now_ms() + 1000;
    let wait = || tokio::time::sleep(Duration::from_millis(4500));
    tokio::join!(one.run_until(wait()), two.run_until(wait()));
    let window_end = now_ms() - 1000;
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM workflow_runs WHERE workflow = 'Chime'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut at: Vec<i64> = ids
        .iter()
        .map(|(id,)| id.trim_start_matches("Chime@").parse().unwrap())
        .filter(|t| (window_start..=window_end).contains(t))
        .collect();
    at.sort_unstable();
    let first = window_start + (1000 - window_start.rem_euclid(1000)) % 1000;
    let expected: Vec<i64> = (first..=window_end).step_by(1000).collect();
    assert!(!expected.is_empty());
    assert_eq!(at, expected, "each second's tick once");
}

/// How many runs of `workflow` the store holds.
async fn runs_of(pool: &PgPool, workflow: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM workflow_runs WHERE workflow = $1")
        .bind(workflow)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_paused_on_one_instance_fires_on_none_until_another_resumes_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = Store::postgres(&pg.url()).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    let host = |name: &str| {
        WorkflowHost::builder()
            .store(store.clone())
            .recurring_durable(Tick)
            .instance(name, Duration::from_secs(5))
            .worker(4)
            .build()
            .unwrap()
    };
    let (one, two) = (host("one"), host("two"));
    let (a, b) = (one.runner(), two.runner());
    let stop = tokio_util::sync::CancellationToken::new();
    let hosts = tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::join!(
                one.run_until(stop.cancelled()),
                two.run_until(stop.cancelled())
            );
        }
    });
    // Ticking, every second, once across the two.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(runs_of(&pool, "Tick").await >= 2);

    assert!(a.pause_schedule("Tick").await.unwrap());
    // A tick fired as the pause landed may still be written.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let paused_at = runs_of(&pool, "Tick").await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        runs_of(&pool, "Tick").await,
        paused_at,
        "a paused schedule fired"
    );
    let schedule = b.schedules().await.unwrap();
    assert_eq!(schedule.len(), 1);
    assert!(schedule[0].paused);
    // Its ticks still pass: the next is ahead, not stuck where it paused.
    assert!(
        schedule[0].next_tick_ms.unwrap() > now_ms() - 1000,
        "{schedule:?}"
    );
    let last = schedule[0].last_tick_ms.unwrap();
    assert!(
        last < now_ms() - 3000,
        "the last tick that fired is before the pause"
    );

    assert!(b.resume_schedule("Tick").await.unwrap());
    let mut fired = paused_at;
    for _ in 0..40 {
        fired = runs_of(&pool, "Tick").await;
        if fired > paused_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        fired > paused_at,
        "resumed on another instance, it fires again"
    );
    assert!(!a.schedules().await.unwrap()[0].paused);
    // Nothing to pause under a name never scheduled.
    assert!(!a.pause_schedule("Nope").await.unwrap());
    stop.cancel();
    hosts.await.unwrap();
}
