//! The worker against a temporary database: the rows it changes, the
//! health it reports, and a shutdown within its timeout.

use std::time::Duration;

use workflow_suite::orders::{Item, OrderStore, Status};
use workflow_suite::worker::{CARD_LIMIT_CENTS, WorkerConfig, host};

fn item(unit_cents: u64) -> Vec<Item> {
    vec![Item {
        sku: "A".into(),
        quantity: 1,
        unit_cents,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pays_pending_orders_and_leaves_declined_ones_pending() {
    let db = std::env::temp_dir().join(format!("worker-{}.db", std::process::id()));
    let store = OrderStore::open(&db).await.unwrap();
    let small = store.create("c-1".into(), item(500)).await.unwrap();
    let big = store
        .create("c-2".into(), item(CARD_LIMIT_CENTS + 1))
        .await
        .unwrap();
    let other = store.create("c-3".into(), item(700)).await.unwrap();

    let config = WorkerConfig {
        every: Duration::from_millis(50),
        shutdown_timeout: Duration::from_secs(2),
    };
    let worker = host(&store, &config);
    let runner = worker.runner();
    let (watched, watcher) = (store.clone(), runner.clone());
    let summary = tokio::time::timeout(
        Duration::from_secs(20),
        worker.run_until(async move {
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

    for id in [small.id, other.id] {
        let order = store.get(id).await.unwrap().unwrap();
        assert_eq!(order.status, Status::Paid);
        assert_eq!(order.payment_id, Some(format!("tx-{id}")));
    }
    assert_eq!(
        store.get(big.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    assert!(summary.runs.passed >= 6, "{summary:?}");
    assert_eq!(summary.runs.failed, 0);
    assert!(!summary.forced);

    let health = runner.health();
    let names: Vec<_> = health.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        ["HealthMonitor", "MetricsCollector", "PendingOrderProcessor"]
    );
    assert_eq!(health.status, workflow_runtime::host::HealthStatus::Healthy);

    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn runner_ran(runner: &workflow_runtime::host::Runner, passes: u64) -> bool {
    runner
        .health()
        .workflows
        .iter()
        .find(|w| w.name == "PendingOrderProcessor")
        .is_some_and(|w| w.runs >= passes)
}
