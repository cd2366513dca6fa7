//! Leases on PostgreSQL that hold under load. `Runner::start` while the
//! same runner's worker polls: the run is claimed once, by one of them,
//! and its step runs once. Before,
//! `start` claimed a run its own worker had just claimed, the epoch moved
//! on, the worker's step ran and was refused, and the step ran again: 33
//! of 400 starts ran their charge twice. The same id started many times
//! at once (a client retrying with its idempotency key) is one run too.
//! And two instances whose capacity is well above their pool's size, busy
//! with transactional steps that hold connections, keep their leases:
//! before, renewals queued behind the steps for a connection, leases
//! lapsed, and the instances took each other's runs over in a loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workflow_runtime::durable::{PgTx, PostgresStore, StepCtx, Store};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TempPostgres;

/// How often each run's charge ran, by run id.
#[derive(Default)]
struct Charges(Mutex<HashMap<String, u32>>);

struct Charge(Arc<Charges>);

#[workflow(durable)]
impl Charge {
    #[step(given = "an order")]
    fn order(&self, cents: u32) -> u32 {
        cents
    }

    #[step(when = "charge")]
    async fn charge(&self, step: &StepCtx, cents: u32) -> u32 {
        *self
            .0
            .0
            .lock()
            .unwrap()
            .entry(step.run_id().to_owned())
            .or_default() += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
        cents
    }
}

async fn runner(url: &str, charges: &Arc<Charges>) -> Runner {
    Runner::builder()
        .store(Store::postgres(url).await.unwrap())
        .durable(Charge(charges.clone()))
        .instance("api")
        .poll_every(Duration::from_millis(1))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_never_claims_a_run_its_own_worker_drives() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let charges = Arc::new(Charges::default());
    let runner = runner(&pg.url(), &charges).await;
    let worker = tokio::spawn({
        let runner = runner.clone();
        async move { runner.work(64).await }
    });
    let starts = 200;
    let mut handles = Vec::new();
    for n in 0..starts {
        handles.push(
            runner
                .start(&Charge::ID, format!("o-{n}"), n)
                .await
                .unwrap(),
        );
    }
    for (n, handle) in handles.into_iter().enumerate() {
        let cents = tokio::time::timeout(Duration::from_secs(60), handle.result())
            .await
            .expect("the run ends")
            .unwrap();
        assert_eq!(cents as usize, n);
    }
    worker.abort();
    let charges = charges.0.lock().unwrap();
    assert_eq!(charges.len(), starts as usize);
    let twice: Vec<_> = charges.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "charged more than once: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_id_started_many_times_at_once_runs_once() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let charges = Arc::new(Charges::default());
    let runner = runner(&pg.url(), &charges).await;
    for round in 0..20 {
        let id = format!("retried-{round}");
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let (runner, id) = (runner.clone(), id.clone());
                tokio::spawn(async move { runner.start(&Charge::ID, id, 7).await })
            })
            .collect();
        for start in starts {
            let handle = start.await.unwrap().unwrap();
            let ended = tokio::time::timeout(Duration::from_secs(60), handle.result()).await;
            assert_eq!(ended.expect("the run ends").unwrap(), 7);
        }
        assert_eq!(
            charges.0.lock().unwrap()[&id],
            1,
            "{id} charged more than once"
        );
    }
}

/// A transactional step that holds its connection a while.
struct Slow;

#[workflow(durable)]
impl Slow {
    #[step(given = "an order")]
    fn order(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "booked", transactional)]
    async fn book(&self, tx: &mut PgTx, n: u32) -> Result<u32, sqlx::Error> {
        sqlx::query("INSERT INTO bookings (n) VALUES ($1)")
            .bind(i64::from(n))
            .execute(&mut **tx)
            .await?;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_above_the_pool_keeps_its_leases() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let instance = |name: &'static str| {
        let url = url.clone();
        async move {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(3)
                .connect(&url)
                .await
                .unwrap();
            let store = PostgresStore::from_pool(pool, &url).await.unwrap();
            Runner::builder()
                .store(Store::new(store))
                .durable(Slow)
                .instance(name)
                .lease(Duration::from_millis(900))
                .poll_every(Duration::from_millis(20))
                .build()
                .unwrap()
        }
    };
    let (a, b) = (instance("a").await, instance("b").await);
    let pool = Store::postgres(&url)
        .await
        .unwrap()
        .as_postgres()
        .unwrap()
        .pool()
        .clone();
    sqlx::query("CREATE TABLE bookings (n BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let runs = 16u32;
    for n in 0..runs {
        a.enqueue(&Slow::ID, format!("slow-{n}"), n).await.unwrap();
    }
    let workers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|runner| tokio::spawn(async move { runner.work(8).await }))
        .collect();
    for n in 0..runs {
        let ended = tokio::time::timeout(
            Duration::from_secs(60),
            a.handle(&Slow::ID, format!("slow-{n}")).result(),
        )
        .await
        .expect("every run ends");
        assert_eq!(ended.unwrap(), n);
    }
    for worker in workers {
        worker.abort();
    }
    let takeovers =
        a.durable_health().await.unwrap().takeovers + b.durable_health().await.unwrap().takeovers;
    assert_eq!(takeovers, 0, "an instance took a run over from a live one");
    let booked: Vec<i64> = sqlx::query_scalar("SELECT n FROM bookings ORDER BY n")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(booked, (0..i64::from(runs)).collect::<Vec<_>>());
}

/// Point 7: before, the claim scanned every running row (no index on the
/// lease), so each poll of each worker read every leased run. Now a claim
/// among 20,000 live leases reads the lease index (judged by the
/// database's `now()`, which an index can use; its clock's
/// `clock_timestamp()` could not be).
#[tokio::test]
async fn a_claim_reads_the_lease_index_not_every_leased_run() {
    use workflow_runtime::durable::Backend;
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO workflow_runs
             (id, workflow, fingerprint, status, input, created_ms, updated_ms, owner, epoch, lease_until_ms)
         SELECT 'held-' || g, 'W', 'f', 'running', '\\x31', g, g, 'busy', 1, 9000000000000
         FROM generate_series(1, 20000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO workflow_runs (id, workflow, fingerprint, status, input, created_ms, updated_ms)
         SELECT 'free-' || g, 'W', 'f', 'running', '\\x31', g, g FROM generate_series(1, 5) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE workflow_runs")
        .execute(&pool)
        .await
        .unwrap();
    let scans = || async {
        // Statistics reach other sessions within a second of a transaction.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let (index,): (i64,) = sqlx::query_as(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'workflow_runs_by_lease'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        index
    };
    let before = scans().await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let claimed = store
        .claim(
            "me",
            &[("W".to_owned(), "f".to_owned())],
            10,
            (now, now + 30_000),
            600_000,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5, "only the runs no lease holds");
    // A session reports its statistics when it ends, at the latest.
    drop(store);
    let after = scans().await;
    assert!(
        after > before,
        "the claim did not read the lease index: {before} -> {after} scans"
    );
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

/// Point 13: before, a host that fired durable ticks but was no worker
/// inserted tick runs nobody claimed, and then skipped every later tick
/// as overlapping the first.
#[tokio::test]
async fn a_host_that_fires_durable_ticks_must_be_a_worker() {
    use workflow_runtime::host::{HostError, WorkflowHost};
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = Store::postgres(&pg.url()).await.unwrap();
    let refused = WorkflowHost::builder()
        .store(store.clone())
        .recurring_durable(Minutely)
        .build();
    assert!(
        matches!(
            refused,
            Err(HostError::TicksNeedWorker {
                workflow: "Minutely"
            })
        ),
        "{:?}",
        refused.err()
    );
    assert!(
        WorkflowHost::builder()
            .store(store)
            .recurring_durable(Minutely)
            .worker(1)
            .build()
            .is_ok()
    );
}

/// A pricing workflow, as release 1 defines it.
struct PriceV1;

#[workflow(name = "Price", durable = "v1")]
impl PriceV1 {
    #[step(given = "an amount")]
    fn amount(&self, cents: u32) -> u32 {
        cents
    }

    #[step(when = "taxed")]
    fn taxed(&self, cents: u32) -> u32 {
        cents + cents / 10
    }
}

/// The same workflow in release 2, with a step more.
struct PriceV2;

#[workflow(name = "Price", durable = "v2")]
impl PriceV2 {
    #[step(given = "an amount")]
    fn amount(&self, cents: u32) -> u32 {
        cents
    }

    #[step(when = "taxed")]
    fn taxed(&self, cents: u32) -> u32 {
        cents + cents / 10
    }

    #[step(when = "rounded")]
    fn rounded(&self, cents: u32) -> u32 {
        cents.div_ceil(100) * 100
    }
}

/// Point 4, a rolling deploy: v1 and v2 instances side by side on one
/// store, each enqueuing runs. Before, claims filtered by name only, so a
/// v1 worker claimed a run a v2 node enqueued and parked it `incompatible`
/// (7 of 20 in the report). Now each version runs its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_v2_instances_side_by_side_each_run_their_own_version() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let v1 = Runner::builder()
        .store(Store::postgres(&url).await.unwrap())
        .durable(PriceV1)
        .instance("v1")
        .poll_every(Duration::from_millis(5))
        .build()
        .unwrap();
    let v2 = Runner::builder()
        .store(Store::postgres(&url).await.unwrap())
        .durable(PriceV2)
        .instance("v2")
        .poll_every(Duration::from_millis(5))
        .build()
        .unwrap();
    let workers: Vec<_> = [v1.clone(), v2.clone()]
        .into_iter()
        .map(|runner| tokio::spawn(async move { runner.work(4).await }))
        .collect();
    for n in 0..20u32 {
        if n % 2 == 0 {
            v1.enqueue(&PriceV1::ID, format!("p-{n}"), 1000 + n)
                .await
                .unwrap();
        } else {
            v2.enqueue(&PriceV2::ID, format!("p-{n}"), 1000 + n)
                .await
                .unwrap();
        }
    }
    for n in 0..20u32 {
        let id = format!("p-{n}");
        let ended = if n % 2 == 0 {
            tokio::time::timeout(
                Duration::from_secs(60),
                v1.handle(&PriceV1::ID, id).result(),
            )
            .await
        } else {
            tokio::time::timeout(
                Duration::from_secs(60),
                v2.handle(&PriceV2::ID, id).result(),
            )
            .await
        };
        let cents = ended.expect("the run ends").unwrap();
        let taxed = (1000 + n) + (1000 + n) / 10;
        let expected = if n % 2 == 0 {
            taxed
        } else {
            taxed.div_ceil(100) * 100
        };
        assert_eq!(cents, expected, "p-{n} ran as the other version");
    }
    for worker in workers {
        worker.abort();
    }
    let counts = v1.durable_health().await.unwrap().counts;
    assert_eq!((counts.completed, counts.incompatible), (20, 0));
}

/// Point 4's other half: once no instance runs a version any more, its
/// runs end. Before the rolling-deploy fix they were parked by any other
/// version at once; with it alone they would wait forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_a_retired_version_is_parked_once_nobody_claims_it() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let v1 = Runner::builder()
        .store(Store::postgres(&url).await.unwrap())
        .durable(PriceV1)
        .instance("v1")
        .build()
        .unwrap();
    v1.enqueue(&PriceV1::ID, "old", 500).await.unwrap();
    // v1 is retired: only v2 instances remain, and they wait for a v1
    // instance no longer than they are told to.
    let v2 = Runner::builder()
        .store(Store::postgres(&url).await.unwrap())
        .durable(PriceV2)
        .instance("v2")
        .poll_every(Duration::from_millis(10))
        .orphans_after(Duration::from_millis(300))
        .build()
        .unwrap();
    let worker = tokio::spawn({
        let v2 = v2.clone();
        async move { v2.work(4).await }
    });
    let ended = tokio::time::timeout(
        Duration::from_secs(30),
        v2.handle(&PriceV2::ID, "old").result(),
    )
    .await
    .expect("the run ends");
    worker.abort();
    assert!(
        matches!(
            &ended,
            Err(workflow_runtime::durable::DurableError::Incompatible { .. })
        ),
        "{ended:?}"
    );
    // A v1 instance brought back for it finishes it as v1 would.
    assert!(v1.resume_parked("old").await.unwrap());
    let worker = tokio::spawn({
        let v1 = v1.clone();
        async move { v1.work(4).await }
    });
    let cents = tokio::time::timeout(
        Duration::from_secs(30),
        v1.handle(&PriceV1::ID, "old").result(),
    )
    .await
    .expect("the run ends")
    .unwrap();
    worker.abort();
    assert_eq!(cents, 550);
}

/// Awaiting a run another instance drives: every handle waits on this
/// runner's one watcher, which asks the store about all the runs it
/// watches in one query per poll, rather than each handle reading the
/// run's row every 25ms for as long as it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_on_runs_driven_elsewhere_share_one_watcher() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let api = Runner::builder()
        .store(Store::postgres(&url).await.unwrap())
        .durable(Slow)
        .instance("api")
        .poll_every(Duration::from_millis(20))
        .build()
        .unwrap();
    let pool = api.store().unwrap().as_postgres().unwrap().pool().clone();
    sqlx::query("CREATE TABLE bookings (n BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let worker = Runner::builder()
        .store(Store::postgres(&url).await.unwrap())
        .durable(Slow)
        .instance("worker")
        .poll_every(Duration::from_millis(20))
        .build()
        .unwrap();
    for n in 0..4u32 {
        api.enqueue(&Slow::ID, format!("w-{n}"), n).await.unwrap();
    }
    let waiters: Vec<_> = (0..400u32)
        .map(|i| {
            let handle = api.handle(&Slow::ID, format!("w-{}", i % 4));
            tokio::spawn(async move { (i % 4, handle.result().await) })
        })
        .collect();
    let working = tokio::spawn({
        let worker = worker.clone();
        async move { worker.work(4).await }
    });
    for waiter in waiters {
        let (n, ended) = tokio::time::timeout(Duration::from_secs(60), waiter)
            .await
            .expect("every waiter hears of its run's end")
            .unwrap();
        assert_eq!(ended.unwrap(), n);
    }
    working.abort();
}

/// A charge that is declined every time, retried many times, noting each
/// attempt.
struct Declining(sqlx::PgPool);

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("declined")
    }
}

impl std::error::Error for Declined {}

#[workflow(durable)]
impl Declining {
    #[step(given = "an order")]
    fn order(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "charge", retry(max_attempts = 8, backoff = "50ms"))]
    async fn charge(&self, _n: u32) -> Result<u32, Declined> {
        sqlx::query("INSERT INTO attempts (at) VALUES (clock_timestamp())")
            .execute(&self.0)
            .await
            .unwrap();
        Err(Declined)
    }
}

/// Point 6: before, an instance whose run was taken over kept retrying the
/// step (its failed attempts' writes swallowed `LeaseLost`), running the
/// side effect again and again for nothing. Now the first refused write,
/// or the next renewal, stops the run there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_run_was_taken_over_stops_retrying_it() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let store = Store::postgres(&url).await.unwrap();
    let pool = store.as_postgres().unwrap().pool().clone();
    sqlx::query("CREATE TABLE attempts (at TIMESTAMPTZ NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let a = Runner::builder()
        .store(store)
        .durable(Declining(pool.clone()))
        .instance("a")
        .lease(Duration::from_secs(3))
        .build()
        .unwrap();
    let run = a.start(&Declining::ID, "held", 1).await.unwrap();
    let attempts = || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts")
            .fetch_one(&pool)
            .await
            .unwrap();
        n
    };
    while attempts().await < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another instance takes the run over, as its claim would after a's
    // lease ran out.
    sqlx::query("UPDATE workflow_runs SET owner = 'b', epoch = epoch + 1 WHERE id = 'held'")
        .execute(&pool)
        .await
        .unwrap();
    let at_takeover = attempts().await;
    // a lets the run go (its handle would now wait for b to end it).
    drop(run);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.durable_in_flight() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a never let the run go"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = attempts().await - at_takeover;
    assert!(
        after <= 1,
        "a ran the charge {after} more times after b took the run over"
    );
    // b dies at once; its lease runs out and a worker takes the run up
    // again and ends it: no run is left running with nobody on it.
    sqlx::query("UPDATE workflow_runs SET lease_until_ms = 0 WHERE id = 'held'")
        .execute(&pool)
        .await
        .unwrap();
    let worker = tokio::spawn({
        let a = a.clone();
        async move { a.work(1).await }
    });
    let ended = tokio::time::timeout(
        Duration::from_secs(30),
        a.handle(&Declining::ID, "held").result(),
    )
    .await
    .expect("the run ends");
    worker.abort();
    assert!(
        matches!(
            ended,
            Err(workflow_runtime::durable::DurableError::Failed { .. })
        ),
        "{ended:?}"
    );
}
