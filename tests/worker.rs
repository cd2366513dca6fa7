//! The worker against temporary files: the rows it changes, the health it
//! reports, a shutdown within its timeout, and a worker process killed
//! mid-batch that finishes the batch when started again, charging no one
//! twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use workflow_runtime::host::HostOptions;
use workflow_suite::orders::{Item, OrderStore, Status};
use workflow_suite::worker::{CARD_LIMIT_CENTS, Worker, WorkerConfig};

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

fn item(unit_cents: u64) -> Vec<Item> {
    vec![Item {
        sku: "A".into(),
        quantity: 1,
        unit_cents,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pays_pending_orders_and_leaves_declined_ones_pending() {
    let dir = TempDir::new("pays");
    let db = dir.0.join("orders.db");
    let store = OrderStore::open(&db).await.unwrap();
    let small = store.create("c-1".into(), item(500)).await.unwrap();
    let big = store
        .create("c-2".into(), item(CARD_LIMIT_CENTS + 1))
        .await
        .unwrap();
    let other = store.create("c-3".into(), item(700)).await.unwrap();
    store.pool().close().await;

    let config = WorkerConfig {
        every: Duration::from_millis(50),
        host: HostOptions::default().shutdown_timeout(Duration::from_secs(2)),
        ..WorkerConfig::default()
    };
    let worker = Worker::open(&db, &config).await.unwrap();
    let (store, gateway) = (worker.orders.clone(), worker.gateway.clone());
    let runner = worker.host.runner();
    let (watched, watcher) = (store.clone(), runner.clone());
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        worker.host.run_until(async move {
            // Stop once a few passes have run and only the declined order is left.
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let left = watched.pending().await.unwrap();
                if left.len() == 1 && runner_ran(&watcher, 2) {
                    break;
                }
            }
        }),
    )
    .await
    .expect("the worker stops within the shutdown timeout");

    let charges: BTreeMap<i64, String> = gateway.charges().await.unwrap().into_iter().collect();
    for id in [small.id, other.id] {
        let order = store.get(id).await.unwrap().unwrap();
        assert_eq!(order.status, Status::Paid);
        assert_eq!(order.payment_id.as_ref(), Some(&charges[&id]));
    }
    assert_eq!(charges.len(), 2, "{charges:?}");
    assert_eq!(
        store.get(big.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    // The declined order's run failed once and is not charged again on
    // later passes: its run id is its order's.
    assert_eq!(gateway.requests().await.unwrap(), 3);
    assert!(summary.runs.passed >= 6, "{summary:?}");
    assert_eq!(
        summary.runs.failed, 1,
        "the declined payment's run: {summary:?}"
    );
    assert!(!summary.forced);

    let health = runner.health();
    let names: Vec<_> = health.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "HealthMonitor",
            "MetricsCollector",
            "PayOrder",
            "PendingOrderProcessor"
        ]
    );
    let durable = runner.durable_health().await.unwrap();
    assert_eq!((durable.counts.completed, durable.counts.failed), (2, 1));
}

/// Before redrive, one unanswered request failed the order's payment run
/// for good, and every later pass read that failure back: the order
/// stayed pending forever. An outage of three requests now costs three
/// redrives, each after a longer wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_failed_by_a_gateway_outage_is_redriven_on_later_passes() {
    let dir = TempDir::new("outage");
    let db = dir.0.join("orders.db");
    let store = OrderStore::open(&db).await.unwrap();
    let order = store.create("c-1".into(), item(500)).await.unwrap();
    store.pool().close().await;

    let config = WorkerConfig {
        every: Duration::from_millis(50),
        host: HostOptions::default().shutdown_timeout(Duration::from_secs(2)),
        ..WorkerConfig::default()
    };
    let worker = Worker::open(&db, &config).await.unwrap();
    let (store, gateway) = (worker.orders.clone(), worker.gateway.clone());
    gateway.outage(3);
    let runner = worker.host.runner();
    let watched = store.clone();
    tokio::time::timeout(
        Duration::from_secs(20),
        worker.host.run_until(async move {
            while !watched.pending().await.unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }),
    )
    .await
    .expect("the order is paid");
    let paid = store.get(order.id).await.unwrap().unwrap();
    assert_eq!(paid.status, Status::Paid);
    assert_eq!(
        gateway.requests().await.unwrap(),
        4,
        "three refused, one paid"
    );
    let status = runner
        .status(&format!("pay-order-{}", order.id))
        .await
        .unwrap();
    assert_eq!(status.earlier_failures.len(), 3, "{status:?}");
    assert!(
        status.earlier_failures[0].contains("did not answer"),
        "{:?}",
        status.earlier_failures
    );
}

fn runner_ran(runner: &workflow_runtime::host::Runner, passes: u64) -> bool {
    runner
        .health()
        .workflows
        .iter()
        .find(|w| w.name == "PendingOrderProcessor")
        .is_some_and(|w| w.runs >= passes)
}

/// The worker as its own process: this test binary, re-run, until killed.
#[test]
fn worker_process() {
    let Ok(db) = std::env::var("WF_WORKER_DB") else {
        return; // Run as a test of its own: nothing to do.
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let config = WorkerConfig {
            every: Duration::from_millis(50),
            gateway_latency: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        let worker = Worker::open(Path::new(&db), &config).await.unwrap();
        let summary = worker.host.run_until_signal().await;
        println!(
            "shutdown summary: passed={} failed={} forced={}",
            summary.runs.passed, summary.runs.failed, summary.forced
        );
    });
}

fn worker(db: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "worker_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WF_WORKER_DB", db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `check` every 20ms for up to 30s.
async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_finishes_it_when_restarted_without_charging_twice() {
    const ORDERS: i64 = 40;
    let dir = TempDir::new("kill");
    let db = dir.0.join("orders.db");
    let store = OrderStore::open(&db).await.unwrap();
    for n in 0..ORDERS {
        // Every tenth order is over the card limit.
        let cents = if n % 10 == 9 {
            CARD_LIMIT_CENTS + 1
        } else {
            500
        };
        store.create(format!("c-{n}"), item(cents)).await.unwrap();
    }
    let payable = ORDERS - ORDERS / 10;
    let paid = async || -> i64 {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'paid'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        n
    };

    // Kill the worker (SIGKILL) once it is part way through the batch.
    let mut first = worker(&db);
    wait_for("the first payments", async || paid().await >= 5).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let paid_at_kill = paid().await;
    assert!(
        paid_at_kill < payable,
        "the batch finished before the kill: make the gateway slower"
    );

    let completed = async || -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflow_runs WHERE workflow = 'PayOrder' AND status = 'completed'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let second = worker(&db);
    // Paid (the transactional step) and then journaled as completed (the
    // run's end, a write of its own).
    wait_for("the whole batch", async || {
        paid().await == payable && completed().await == payable
    })
    .await;
    // Asked to stop the way a container is (SIGTERM): it shuts down
    // gracefully and says what it did.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = second.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let said = String::from_utf8_lossy(&output.stdout);
    let summary = said
        .lines()
        .find_map(|line| Some(line.split_once("shutdown summary: ")?.1))
        .unwrap_or_else(|| panic!("no shutdown summary in {said:?}"));
    let field = |name: &str| {
        summary
            .split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap()
            .to_owned()
    };
    assert!(field("passed").parse::<u64>().unwrap() > 0, "{summary}");
    assert_eq!(field("forced"), "false", "{summary}");

    let gateway = workflow_suite::worker::Gateway::open(&dir.0.join("gateway.db"), Duration::ZERO)
        .await
        .unwrap();
    let charges = gateway.charges().await.unwrap();
    let mut per_order: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (order, charge) in &charges {
        per_order.entry(*order).or_default().push(charge.clone());
    }
    assert_eq!(
        per_order.len() as i64,
        payable,
        "orders charged: {per_order:?}"
    );
    for (order, charged) in &per_order {
        assert_eq!(charged.len(), 1, "order {order} charged {charged:?}");
        let stored = store.get(*order).await.unwrap().unwrap();
        assert_eq!(stored.status, Status::Paid);
        assert_eq!(stored.payment_id.as_ref(), Some(&charged[0]));
    }
    let declined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'pending'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(declined, ORDERS / 10);
    // The journal agrees: one completed payment run per paid order.
    assert_eq!(completed().await, payable);
    // Payments run one at a time: only the one in flight at the kill can
    // have reached the gateway twice. Journaled charges were not asked
    // for again, and declined orders (their runs failed) were asked once.
    let requests = gateway.requests().await.unwrap();
    assert!(
        requests <= ORDERS as u64 + 1,
        "{requests} gateway requests for {ORDERS} orders"
    );
    println!(
        "killed after {paid_at_kill} of {payable} payments; {requests} gateway requests for {} charges",
        charges.len()
    );
}

#[test]
fn the_worker_reads_its_config_file_with_defaults_and_names_a_bad_key() {
    let config = WorkerConfig::from_toml(
        r#"
        every = "5s"
        gateway_latency = "20ms"

        [workflow]
        step_timeout = "2s"
        continue_on_error = true
        "#,
    )
    .unwrap();
    assert_eq!(config.every, Duration::from_secs(5));
    assert_eq!(config.gateway_latency, Duration::from_millis(20));
    assert_eq!(
        config.host.shutdown_timeout,
        WorkerConfig::default().host.shutdown_timeout
    );
    assert_eq!(config.workflow.step_timeout, Some(Duration::from_secs(2)));
    assert!(config.workflow.continue_on_error);
    // Nothing given: the defaults.
    let empty = WorkerConfig::from_toml("").unwrap();
    assert_eq!(empty.every, WorkerConfig::default().every);

    let bad = WorkerConfig::from_toml("every = \"30 sec\"")
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("\"30 sec\" is not a duration") && bad.contains("key \"default.every\""),
        "{bad}"
    );
    let unknown = WorkerConfig::from_toml("evry = \"30s\"")
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("unknown field") && unknown.contains("`evry`"),
        "{unknown}"
    );
    let nested = WorkerConfig::from_toml("[workflow]\nstep_timout = \"1s\"")
        .unwrap_err()
        .to_string();
    assert!(
        nested.contains("unknown field") && nested.contains("`step_timout`"),
        "{nested}"
    );
}

#[test]
// The closure's error type is figment's, as `Jail` asks.
#[allow(clippy::result_large_err)]
fn the_worker_takes_the_guides_keys_and_layers_the_environment_over_its_file() {
    figment::Jail::expect_with(|jail| {
        // The guide's appsettings, PascalCase and TimeSpan text.
        jail.create_file(
            "worker.toml",
            r#"
            Every = "00:00:05"

            [Workflow]
            StepTimeout = "00:00:30"
            ContinueOnError = true

            [host]
            EnableParallelExecution = false
            MaxParallelism = 2
            "#,
        )?;
        jail.set_env("WORKFLOW__HOST__MAX_PARALLELISM", "8");
        jail.set_env("WORKFLOW__HOST__SHUTDOWN_TIMEOUT", "5s");
        let config =
            WorkerConfig::load(Some(std::path::Path::new("worker.toml"))).map_err(|e| *e)?;
        assert_eq!(config.every, Duration::from_secs(5));
        assert_eq!(config.workflow.step_timeout, Some(Duration::from_secs(30)));
        assert!(config.workflow.continue_on_error);
        assert!(!config.host.parallel);
        // The environment is read after the file.
        assert_eq!(config.host.max_parallelism, 8);
        assert_eq!(config.host.shutdown_timeout, Duration::from_secs(5));

        // A bad value names its key and where it came from.
        jail.set_env("WORKFLOW__WORKFLOW__STEP_TIMEOUT", "3x");
        let bad = WorkerConfig::load(None).unwrap_err().to_string();
        assert!(bad.contains("\"3x\" is not a duration"), "{bad}");
        assert!(
            bad.to_lowercase().contains("key \"workflow.step_timeout\""),
            "{bad}"
        );
        assert!(bad.contains("`WORKFLOW__` environment"), "{bad}");
        let missing = WorkerConfig::load(Some(std::path::Path::new("nope.toml")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.toml"), "{missing}");
        Ok(())
    });
}
