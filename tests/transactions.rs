//! Rollback leaves no rows: after a failed step, a panic, a cancellation.

use std::path::PathBuf;

use workflow_runtime::WorkflowError;
use workflow_suite::orders::Item;
use workflow_suite::transactions::{Fault, OutOfStock, place_order, setup, snapshot};

async fn db(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tx-{name}-{}.db", std::process::id()));
    // The store runs in WAL mode: a stale -wal of an earlier run with the
    // same pid would be replayed into the fresh file.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    setup(&path, &[("widget", 5)]).await.unwrap();
    path
}

fn widgets(quantity: u32) -> Vec<Item> {
    vec![Item {
        sku: "widget".into(),
        quantity,
        unit_cents: 100,
    }]
}

#[tokio::test]
async fn a_passing_workflow_commits_every_step() {
    let db = db("commit").await;
    let id = place_order(db.clone(), "c-1".into(), widgets(2), Fault::None)
        .await
        .unwrap();
    assert_eq!(id, 1);
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (1, 1, 3));
    std::fs::remove_file(db).unwrap();
}

#[tokio::test]
async fn a_failed_step_rolls_back_the_steps_before_it() {
    let db = db("failed").await;
    let err = place_order(db.clone(), "c-1".into(), widgets(10), Fault::None)
        .await
        .unwrap_err();
    match &err {
        WorkflowError::Failed { step, error } => {
            assert_eq!(step.title, "update inventory");
            assert!(error.downcast_ref::<OutOfStock>().is_some());
        }
        other => panic!("unexpected {other}"),
    }
    // "save order" had inserted the order and its line: both are gone.
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 5));
    std::fs::remove_file(db).unwrap();
}

#[tokio::test]
async fn a_panic_rolls_back() {
    let db = db("panic").await;
    let err = place_order(
        db.clone(),
        "c-1".into(),
        widgets(1),
        Fault::PanicInInventory,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WorkflowError::Panicked { .. }));
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 5));
    std::fs::remove_file(db).unwrap();
}

#[tokio::test]
async fn a_cancellation_rolls_back() {
    let db = db("cancel").await;
    let err = place_order(db.clone(), "c-1".into(), widgets(1), Fault::CancelAfterSave)
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Cancelled { .. }));
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 5));
    std::fs::remove_file(db).unwrap();
}
