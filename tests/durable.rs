//! Durable workflows on the in-memory and SQLite stores: journaled steps,
//! resume from the first unfinished step, idempotent start, step keys,
//! transactional steps, versioning.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use workflow_runtime::durable::{DurableError, RunStatus, StepCtx, Store};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    paid: bool,
}

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

/// Counts how often each step body runs; `fail_charge` makes charging fail.
#[derive(Default)]
struct Pay {
    loads: AtomicU32,
    charges: AtomicU32,
    fail_charge: std::sync::atomic::AtomicBool,
    keys: std::sync::Mutex<Vec<String>>,
}

#[workflow(durable)]
impl Pay {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Order { id, paid: false }
    }

    #[step(when = "process payment")]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        self.charges.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap().push(step.key());
        if self.fail_charge.load(Ordering::SeqCst) {
            return Err(Declined);
        }
        Ok(Order {
            paid: true,
            ..order
        })
    }

    #[step(then = "it is paid")]
    fn paid(&self, order: &Order) -> bool {
        order.paid
    }
}

#[tokio::test]
async fn a_run_journals_each_step_and_completes() {
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Pay::default())
        .build()
        .unwrap();
    let run = runner.start(&Pay::ID, "order-1", 1).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Order { id: 1, paid: true });
    let row = store.run("order-1").await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Completed);
    let steps = store.backend().steps("order-1").await.unwrap();
    let titles: Vec<_> = steps.iter().map(|s| (s.index, s.title.as_str())).collect();
    assert_eq!(titles, [(0, "pending order"), (1, "process payment")]);
    assert_eq!(
        String::from_utf8_lossy(&steps[1].output),
        r#"{"id":1,"paid":true}"#
    );
}

#[tokio::test]
async fn starting_a_run_id_twice_is_one_run() {
    let pay = Arc::new(Pay::default());
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let first = runner.start(&ArcPay::ID, "order-2", 2).await.unwrap();
    let second = runner.start(&ArcPay::ID, "order-2", 99).await.unwrap();
    assert_eq!(first.result().await.unwrap().id, 2);
    assert_eq!(second.result().await.unwrap().id, 2);
    let third = runner.start(&ArcPay::ID, "order-2", 3).await.unwrap();
    assert_eq!(third.result().await.unwrap().id, 2);
    assert_eq!(pay.charges.load(Ordering::SeqCst), 1);
    assert_eq!(store.counts().await.unwrap().completed, 1);
}

/// `Pay` behind an `Arc`, so a test keeps its counters after handing it
/// to a runner.
struct ArcPay(Arc<Pay>);

#[workflow(durable, name = "ArcPay")]
impl ArcPay {
    #[step(given = "pending order")]
    fn load(&self, id: u64) -> Order {
        self.0.load(id)
    }

    #[step(when = "process payment")]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, Declined> {
        self.0.charge(step, order).await
    }
}

#[tokio::test]
async fn a_failed_run_is_journaled_as_failed_and_not_resumed() {
    let pay = Arc::new(Pay::default());
    pay.fail_charge.store(true, Ordering::SeqCst);
    let store = Store::memory();
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(pay.clone()))
        .build()
        .unwrap();
    let run = runner.start(&ArcPay::ID, "order-3", 3).await.unwrap();
    let err = run.result().await.unwrap_err();
    assert!(
        matches!(&err, DurableError::Failed { run, error } if run == "order-3" && error.contains("card declined")),
        "{err}"
    );
    assert_eq!(runner.resume().await.unwrap(), 0);
}

#[tokio::test]
async fn a_resumed_run_replays_completed_steps_from_the_journal() {
    let journal = workflow_runtime::durable::MemoryStore::new();
    // First life: the charge fails... and the process "dies" with the run
    // unfinished: a running row and the first step journaled.
    let store = Store::new(journal.clone());
    let first = Arc::new(Pay::default());
    {
        use workflow_runtime::durable::{Backend, RunRow, StepRow};
        let row = RunRow::new(
            "order-4",
            "ArcPay",
            <ArcPay as workflow_runtime::durable::Durable>::FINGERPRINT,
            b"4".to_vec(),
        );
        journal.insert_run(&row).await.unwrap();
        let step = StepRow::new(
            0,
            "pending order",
            br#"{"id":4,"paid":false}"#.to_vec(),
            1,
            0,
            0,
        );
        journal.record_step("order-4", &step).await.unwrap();
    }
    let runner = Runner::builder()
        .store(store.clone())
        .durable(ArcPay(first.clone()))
        .build()
        .unwrap();
    assert_eq!(runner.resume().await.unwrap(), 1);
    let run = runner.start(&ArcPay::ID, "order-4", 4).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Order { id: 4, paid: true });
    assert_eq!(
        first.loads.load(Ordering::SeqCst),
        0,
        "the journaled step ran again"
    );
    assert_eq!(first.charges.load(Ordering::SeqCst), 1);
    assert_eq!(*first.keys.lock().unwrap(), ["order-4/1"]);
}
