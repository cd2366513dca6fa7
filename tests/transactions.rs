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

// ---- the same order as a saga across two services --------------------

mod saga {
    use workflow_runtime::StepKind;
    use workflow_suite::saga::{
        NoCarrier, Order, Payments, PlaceOrderSaga, Shipping, place_order_saga,
    };

    use super::{db, widgets};

    async fn saga(name: &str, shipping: Shipping) -> (std::path::PathBuf, PlaceOrderSaga) {
        let stock = db(name).await;
        let payments = stock.with_extension("payments.db");
        let _ = std::fs::remove_file(&payments);
        let saga = PlaceOrderSaga {
            stock: workflow_suite::db::open_pool(&stock).await.unwrap(),
            payments: Payments::open(&payments).await.unwrap(),
            shipping,
        };
        (stock, saga)
    }

    #[tokio::test]
    async fn a_shipped_order_keeps_its_stock_taken_and_its_charge() {
        let (stock, saga) = saga("saga-ships", Shipping::Works).await;
        let order = Order {
            customer: "c-1".into(),
            items: widgets(2),
        };
        let (result, ctx) = place_order_saga(&saga, order).await;
        assert_eq!(result.unwrap().charge, 1);
        assert!(ctx.steps().iter().all(|s| s.kind != StepKind::Compensate));
        assert_eq!(super::snapshot(&stock, "widget").await.unwrap().2, 3);
        assert_eq!(saga.payments.totals().await.unwrap(), (200, 0));
    }

    #[tokio::test]
    async fn when_shipping_fails_the_card_is_refunded_then_the_stock_released() {
        let (stock, saga) = saga("saga-undone", Shipping::NoCarrier).await;
        let order = Order {
            customer: "c-1".into(),
            items: widgets(2),
        };
        let (result, ctx) = place_order_saga(&saga, order).await;
        let err = result.unwrap_err();
        assert!(
            matches!(&err, workflow_runtime::WorkflowError::Failed { error, .. }
                if error.downcast_ref::<NoCarrier>().is_some()),
            "{err}"
        );
        let undone: Vec<_> = ctx
            .steps()
            .into_iter()
            .filter(|s| s.kind == StepKind::Compensate)
            .map(|s| (s.title.into_owned(), s.outcome.to_string()))
            .collect();
        assert_eq!(
            undone,
            [
                ("refund".to_owned(), "passed".to_owned()),
                ("release stock".to_owned(), "passed".to_owned())
            ]
        );
        // Both services are as they were: no stock taken, no money kept.
        assert_eq!(super::snapshot(&stock, "widget").await.unwrap().2, 5);
        assert_eq!(saga.payments.totals().await.unwrap(), (0, 1));
    }

    #[tokio::test]
    async fn an_order_over_the_stock_fails_before_any_money_moves() {
        let (stock, saga) = saga("saga-short", Shipping::Works).await;
        let order = Order {
            customer: "c-1".into(),
            items: widgets(9),
        };
        let (result, ctx) = place_order_saga(&saga, order).await;
        assert!(result.is_err());
        // The failed step is its own to clean up: nothing completed before it.
        assert!(ctx.steps().iter().all(|s| s.kind != StepKind::Compensate));
        assert_eq!(super::snapshot(&stock, "widget").await.unwrap().2, 5);
        assert_eq!(saga.payments.totals().await.unwrap(), (0, 0));
    }
}
