//! Rollback leaves no rows: after a failed step, a panic, a cancellation.

use std::path::PathBuf;

use workflow_runtime::WorkflowContext;
use workflow_runtime::WorkflowError;
use workflow_runtime::prelude::*;
use workflow_suite::orders::Item;
use workflow_suite::transactions::{
    Fault, OutOfStock, Stock, TransactionError, TransactionalWorkflow, place_order, restock, setup,
    snapshot,
};

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
        TransactionError::Workflow(WorkflowError::Failed { step, error }) => {
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
    assert!(matches!(
        err,
        TransactionError::Workflow(WorkflowError::Panicked { .. })
    ));
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 5));
    std::fs::remove_file(db).unwrap();
}

#[tokio::test]
async fn a_cancellation_rolls_back() {
    let db = db("cancel").await;
    let err = place_order(db.clone(), "c-1".into(), widgets(1), Fault::CancelAfterSave)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TransactionError::Workflow(WorkflowError::Cancelled { .. })
    ));
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 5));
    std::fs::remove_file(db).unwrap();
}

#[tokio::test]
async fn the_same_wrapper_runs_another_workflow() {
    let db = db("restock").await;
    let stock = restock(db.clone(), "widget".into(), 4).await.unwrap();
    assert_eq!(
        stock,
        Stock {
            sku: "widget".into(),
            quantity: 9
        }
    );
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 9));

    // The check fails after the update ran: rolled back.
    let err = restock(db.clone(), "widget".into(), -20).await.unwrap_err();
    assert!(matches!(
        err,
        TransactionError::Workflow(WorkflowError::Assertion { .. })
    ));
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 9));
    std::fs::remove_file(db).unwrap();
}

/// A best-effort call whose failure the step calling it records and
/// handles.
#[step(when = "notify the supplier")]
async fn notify_supplier(sku: String) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(format!("supplier offline for {sku}")))
}

#[tokio::test]
async fn a_run_that_returns_after_a_nested_step_failed_rolls_back() {
    let db = db("handled").await;
    let pool = workflow_suite::db::open_pool(&db).await.unwrap();
    let restocking = TransactionalWorkflow::<i64>::new(pool.clone());
    let ctx = WorkflowContext::new("Restock");
    let ctx = &ctx;
    let err = restocking
        .execute(ctx, |tx| {
            Workflow::given(ctx, "a delivery", || tx)
                .try_when_async("add stock", |mut tx| async move {
                    sqlx::query(
                        "UPDATE inventory SET quantity = quantity + 4 WHERE sku = 'widget'",
                    )
                    .execute(&mut *tx)
                    .await?;
                    let _ = notify_supplier("widget".into()).await;
                    Ok::<_, sqlx::Error>((tx, 4))
                })
                .result()
        })
        .await
        .unwrap_err();
    match &err {
        TransactionError::NotAllPassed { workflow, step } => {
            assert_eq!(
                (workflow.as_str(), step.as_str()),
                ("Restock", "notify the supplier")
            );
        }
        other => panic!("unexpected {other}"),
    }
    pool.close().await;
    assert_eq!(snapshot(&db, "widget").await.unwrap(), (0, 0, 5));
    std::fs::remove_file(db).unwrap();
}
