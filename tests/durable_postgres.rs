//! Many instances, one PostgreSQL (a throwaway server from the machine's
//! binaries): durable runs enqueued by one instance and run by worker
//! processes that claim them with leases; one worker is SIGKILLed, one is
//! SIGSTOPped past its lease and then continued, one is started late. At
//! the end every run completed once, each transactional effect is there
//! exactly once (by the instance that journaled its step), and no step ran
//! more often than its run was claimed.

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

/// A recurring workflow every 250ms: each tick must fire once across all
/// the instances.
struct Tick;

#[workflow(durable, every = "250ms", run_immediately)]
impl Tick {
    #[step(given = "a tick")]
    fn tick(&self) -> u8 {
        1
    }
}

/// A worker instance: this test binary, re-run, until killed.
#[test]
fn pg_worker() {
    let (Ok(url), Ok(instance)) = (std::env::var("WF_PG_URL"), std::env::var("WF_INSTANCE")) else {
        return; // Run as a test of its own: nothing to do.
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();
    rt.block_on(async move {
        let store = Store::postgres(&url).await.unwrap();
        let pool = store.as_postgres().unwrap().pool().clone();
        let host = WorkflowHost::builder()
            .store(store)
            .durable(Ship {
                pool,
                instance: instance.clone(),
            })
            .recurring_durable(Tick)
            .instance(instance, Duration::from_secs(1))
            .worker(16)
            .build()
            .unwrap();
        host.run().await;
    });
}

fn worker(url: &str, instance: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["pg_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env("WF_PG_URL", url)
        .env("WF_INSTANCE", instance)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
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
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let store = Store::postgres(&url).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    sqlx::raw_sql(
        "CREATE TABLE effects (run TEXT NOT NULL, step BIGINT NOT NULL, instance TEXT NOT NULL);
         CREATE TABLE charges (run TEXT NOT NULL, instance TEXT NOT NULL);",
    )
    .execute(&pool)
    .await
    .unwrap();

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

    // Health before any worker: the queue's depth and its oldest run.
    let health = api.durable_health().await.unwrap();
    assert_eq!(
        (health.counts.waiting, health.counts.running),
        (RUNS as u64, RUNS as u64)
    );
    assert!(health.oldest_waiting_age.is_some());
    assert_eq!((health.claimed, health.takeovers), (0, 0));

    let mut workers = Workers(vec![
        worker(&url, "a"),
        worker(&url, "b"),
        worker(&url, "c"),
    ]);
    wait_until(&pool, "a quarter of the runs", (RUNS / 4) as i64).await;
    workers.0[0].kill().unwrap(); // SIGKILL: its runs wait out their leases
    workers.0[0].wait().unwrap();
    signal(&workers.0[1], "STOP"); // paused past its lease: c and d take its runs
    workers.0.push(worker(&url, "d"));
    wait_until(&pool, "half of the runs", (RUNS / 2) as i64).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(&workers.0[1], "CONT"); // back, with leases it no longer holds
    wait_until(&pool, "every run", RUNS as i64).await;
    let elapsed = started.elapsed();

    // Ticks on an idle cluster of three instances: while the backlog ran,
    // a tick whose run had not finished was skipped (no overlap); now
    // every tick fires, once (run ids are unique), on the 250ms grid.
    let window_start = now_ms() + 250;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window_end = now_ms() - 500;
    drop(workers);
    let ticks: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM workflow_runs WHERE workflow = 'Tick'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut at: Vec<i64> = ticks
        .iter()
        .map(|(id, _)| id.trim_start_matches("Tick@").parse().unwrap())
        .filter(|t| (window_start..=window_end).contains(t))
        .collect();
    at.sort_unstable();
    assert!(at.iter().all(|t| t % 250 == 0), "{at:?}");
    let first_on_grid = window_start + (250 - window_start.rem_euclid(250)) % 250;
    let expected: Vec<i64> = (first_on_grid..=window_end).step_by(250).collect();
    // Each tick once; on a busy machine a tick may come late enough to be
    // skipped (its time passed), never twice.
    let missed = expected.iter().filter(|t| !at.contains(t)).count();
    assert!(
        at.iter().all(|t| expected.contains(t)),
        "{at:?} not in {expected:?}"
    );
    assert!(
        missed <= 2,
        "{missed} of {} ticks missed: {at:?}",
        expected.len()
    );
    let unfinished = ticks
        .iter()
        .filter(|(_, status)| status != "completed")
        .count();
    assert!(unfinished <= 1, "{unfinished} tick runs unfinished");

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
    // The killed worker's runs, and the paused one's, were taken over.
    assert!(takeovers > 0, "no run changed hands");
    let mut per_instance: BTreeMap<String, usize> = BTreeMap::new();
    for (by, _) in journaled.values() {
        *per_instance.entry(by[2].clone()).or_default() += 1;
    }
    println!(
        "{RUNS} runs on 4 worker processes in {elapsed:.1?} (one SIGKILLed, one SIGSTOPped \
         past its lease): completed by {per_instance:?}; {takeovers} takeovers; {repeated} \
         plain-step executions repeated; {RUNS} charges exactly once; {} ticks of 250ms \
         in 2.25s on three instances, each once ({missed} missed)",
        at.len()
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
    let until = now_ms() + 30_000;
    let claimed = store
        .backend()
        .claim_run("b", "slow-1", until)
        .await
        .unwrap();
    let claimed = claimed.expect("the lease was released at shutdown");
    assert_eq!(claimed.fence.epoch, 2);
}
