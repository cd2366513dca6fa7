//! The guide's transaction management: [`TransactionalWorkflow<T>`] runs a
//! workflow inside one SQLite transaction that commits only if every step
//! passed, and rolls back otherwise: after a failed step, a panic, or a
//! cancellation. Placing an order and restocking are two workflows on it.

use std::future::Future;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use sqlx::{SqliteConnection, SqlitePool};
use workflow_runtime::prelude::*;
use workflow_runtime::{StepError, WorkflowContext};

use crate::orders::Item;

/// Not enough of an item in stock.
#[derive(Debug)]
pub struct OutOfStock {
    /// The item.
    pub sku: String,
}

impl std::fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not enough {} in stock", self.sku)
    }
}

impl std::error::Error for OutOfStock {}

/// Something to go wrong mid-workflow, to watch the rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing goes wrong.
    None,
    /// The inventory step panics.
    PanicInInventory,
    /// The run is cancelled while the order is being saved.
    CancelAfterSave,
}

/// Creates the tables and stocks `items`.
pub async fn setup(db: &Path, stock: &[(&str, u32)]) -> Result<(), sqlx::Error> {
    let pool = crate::db::open_pool(db).await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS placed_orders (id INTEGER PRIMARY KEY, customer_id TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS order_lines (order_id INTEGER NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS inventory (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL);",
    )
    .execute(&pool)
    .await?;
    for (sku, quantity) in stock {
        sqlx::query(
            "INSERT INTO inventory (sku, quantity) VALUES (?1, ?2)
             ON CONFLICT(sku) DO UPDATE SET quantity = excluded.quantity",
        )
        .bind(sku)
        .bind(quantity)
        .execute(&pool)
        .await?;
    }
    // Closing waits for the connection to shut, so the file is settled
    // (and removable) when this returns.
    pool.close().await;
    Ok(())
}

/// How many rows each table holds, and the stock of `sku`.
pub async fn snapshot(db: &Path, sku: &str) -> Result<(u64, u64, i64), sqlx::Error> {
    let pool = crate::db::open_pool(db).await?;
    // One statement, so the three numbers come from one read of the file;
    // a missing `sku` reads as NULL and fails to decode, as it should.
    let counts = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT (SELECT COUNT(*) FROM placed_orders),
                (SELECT COUNT(*) FROM order_lines),
                (SELECT quantity FROM inventory WHERE sku = ?1)",
    )
    .bind(sku)
    .fetch_one(&pool)
    .await;
    pool.close().await;
    let (orders, lines, stock) = counts?;
    Ok((orders as u64, lines as u64, stock))
}

/// Inserts the order and its lines, returning the order's id.
async fn save_order(
    tx: &mut SqliteConnection,
    customer: &str,
    items: &[Item],
) -> Result<i64, sqlx::Error> {
    let id = sqlx::query("INSERT INTO placed_orders (customer_id) VALUES (?1)")
        .bind(customer)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
    for item in items {
        sqlx::query("INSERT INTO order_lines (order_id, sku, quantity) VALUES (?1, ?2, ?3)")
            .bind(id)
            .bind(&item.sku)
            .bind(item.quantity)
            .execute(&mut *tx)
            .await?;
    }
    Ok(id)
}

/// Takes each item from the stock; a short item fails with [`OutOfStock`],
/// which is what makes the caller roll the whole order back.
pub(crate) async fn take_stock(tx: &mut SqliteConnection, items: &[Item]) -> Result<(), StepError> {
    for item in items {
        let changed = sqlx::query(
            "UPDATE inventory SET quantity = quantity - ?1 WHERE sku = ?2 AND quantity >= ?1",
        )
        .bind(item.quantity)
        .bind(&item.sku)
        .execute(&mut *tx)
        .await
        .map_err(StepError::new)?
        .rows_affected();
        if changed == 0 {
            return Err(StepError::new(OutOfStock {
                sku: item.sku.clone(),
            }));
        }
    }
    Ok(())
}

/// The transaction a [`TransactionalWorkflow`] hands its workflow.
pub type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// Why a [`TransactionalWorkflow`] did not commit.
#[derive(Debug)]
pub enum TransactionError {
    /// The transaction could not begin or commit.
    Database(sqlx::Error),
    /// The workflow failed (a step failed, panicked or was cancelled):
    /// the transaction, dropped with the step's value, rolled back.
    Workflow(WorkflowError),
    /// The workflow returned, but not every step of its context passed (a
    /// nested step whose failure the step calling it handled): rolled
    /// back, as the guide rolls back unless `AllPassed`.
    NotAllPassed {
        /// The workflow.
        workflow: String,
        /// The first step that did not pass.
        step: String,
    },
}

impl std::fmt::Display for TransactionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransactionError::Database(error) => write!(f, "the transaction failed: {error}"),
            TransactionError::Workflow(error) => error.fmt(f),
            TransactionError::NotAllPassed { workflow, step } => write!(
                f,
                "workflow \"{workflow}\" rolled back: step \"{step}\" did not pass"
            ),
        }
    }
}

impl std::error::Error for TransactionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransactionError::Database(error) => Some(error),
            TransactionError::Workflow(error) => Some(error),
            TransactionError::NotAllPassed { .. } => None,
        }
    }
}

/// The guide's `TransactionalWorkflow<T>`: runs any workflow producing a
/// `T` inside one transaction, committing only when every step passed.
///
/// The workflow gets the transaction by value and hands it back with its
/// result, threading it through its steps inside the chain's value: a step
/// that fails, panics or is cancelled drops it, and a dropped transaction
/// rolls back, so no path leaves half a workflow committed. (The guide
/// shares one database context between the steps; here the borrow checker
/// sees that no step keeps the transaction past its turn.)
pub struct TransactionalWorkflow<T> {
    pool: SqlitePool,
    value: PhantomData<fn() -> T>,
}

impl<T> TransactionalWorkflow<T> {
    /// Runs transactions on `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        TransactionalWorkflow {
            pool,
            value: PhantomData,
        }
    }

    /// Begins a transaction, runs `workflow` on it (its chain on `ctx`),
    /// and commits if it returned and every step it recorded in `ctx`
    /// passed (steps recorded before do not count).
    pub async fn execute<F, Fut>(
        &self,
        ctx: &WorkflowContext,
        workflow: F,
    ) -> Result<T, TransactionError>
    where
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<(Tx, T), WorkflowError>>,
    {
        let before = ctx.with_steps(<[_]>::len);
        let tx = self
            .pool
            .begin()
            .await
            .map_err(TransactionError::Database)?;
        let (tx, value) = workflow(tx).await.map_err(TransactionError::Workflow)?;
        let not_passed = ctx.with_steps(|steps| {
            steps[before.min(steps.len())..]
                .iter()
                .find(|step| !step.outcome.is_passed())
                .map(|step| step.title.to_string())
        });
        if let Some(step) = not_passed {
            tx.rollback().await.map_err(TransactionError::Database)?;
            return Err(TransactionError::NotAllPassed {
                workflow: ctx.name().to_owned(),
                step,
            });
        }
        tx.commit().await.map_err(TransactionError::Database)?;
        Ok(value)
    }
}

/// Places an order in one transaction: save the order, take the stock,
/// check it. Commits only when every step passed.
pub async fn place_order(
    db: PathBuf,
    customer: String,
    items: Vec<Item>,
    fault: Fault,
) -> Result<i64, TransactionError> {
    let pool = crate::db::open_pool(&db)
        .await
        .map_err(TransactionError::Database)?;
    let placing = TransactionalWorkflow::new(pool.clone());
    let ctx = WorkflowContext::new("PlaceOrder");
    // The steps are `Fn` closures returning `async move` futures, which
    // cannot move the context out of the closure: a reference copies in.
    let ctx = &ctx;
    let result = placing
        .execute(ctx, |tx| {
            Workflow::given(ctx, "an order", || (tx, customer, items))
                .try_when_async("save order", move |(mut tx, customer, items)| async move {
                    let id = save_order(&mut tx, &customer, &items).await?;
                    if fault == Fault::CancelAfterSave {
                        ctx.cancel();
                    }
                    Ok::<_, sqlx::Error>((tx, id, items))
                })
                .try_and_async("update inventory", move |(mut tx, id, items)| async move {
                    if fault == Fault::PanicInInventory {
                        panic!("inventory service crashed");
                    }
                    take_stock(&mut tx, &items).await.map(|()| (tx, id))
                })
                .then("order saved", |(_, id)| *id > 0)
                .result()
        })
        .await;
    // Closing waits for the rollback (queued on the connection when a
    // transaction is dropped) to run, so the next open sees the file as
    // this run left it.
    pool.close().await;
    result
}

/// An item's stock after a restock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stock {
    /// The item.
    pub sku: String,
    /// How many are in stock now.
    pub quantity: i64,
}

/// Adds `quantity` of `sku` to the stock, in one transaction with its
/// check: the same [`TransactionalWorkflow`], for another workflow and
/// another result type.
pub async fn restock(db: PathBuf, sku: String, quantity: i64) -> Result<Stock, TransactionError> {
    let pool = crate::db::open_pool(&db)
        .await
        .map_err(TransactionError::Database)?;
    let restocking = TransactionalWorkflow::new(pool.clone());
    let ctx = WorkflowContext::new("Restock");
    let ctx = &ctx;
    let result = restocking
        .execute(ctx, |tx| {
            Workflow::given(ctx, "a delivery", || (tx, sku, quantity))
                .try_when_async("add stock", |(mut tx, sku, quantity)| async move {
                    let now: i64 = sqlx::query_scalar(
                        "UPDATE inventory SET quantity = quantity + ?1 WHERE sku = ?2
                         RETURNING quantity",
                    )
                    .bind(quantity)
                    .bind(&sku)
                    .fetch_one(&mut *tx)
                    .await?;
                    Ok::<_, sqlx::Error>((tx, Stock { sku, quantity: now }))
                })
                .then("stock not negative", |(_, stock)| stock.quantity >= 0)
                .result()
        })
        .await;
    pool.close().await;
    result
}
