//! The guide's transaction management: a workflow inside one SQLite
//! transaction that commits only if every step passed, and rolls back
//! otherwise: after a failed step, a panic, or a cancellation.

use std::path::{Path, PathBuf};

use sqlx::SqliteConnection;
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
async fn take_stock(tx: &mut SqliteConnection, items: &[Item]) -> Result<(), StepError> {
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

/// Places an order in one transaction: save the order, take the stock,
/// check it. Commits only when every step passed.
///
/// The transaction travels through the steps inside the chain's value, so
/// a step that fails, panics or is cancelled drops it, and a dropped sqlx
/// transaction rolls back.
pub async fn place_order(
    db: PathBuf,
    customer: String,
    items: Vec<Item>,
    fault: Fault,
) -> Result<i64, WorkflowError> {
    let pool = crate::db::open_pool(&db).await.expect("the database opens");
    let tx = pool.begin().await.expect("a transaction starts");
    let ctx = WorkflowContext::new("PlaceOrder");
    // The steps are `Fn` closures returning `async move` futures, which
    // cannot move the context out of the closure: a reference copies in.
    let ctx = &ctx;
    let result = Workflow::given(ctx, "an order", || (tx, customer, items))
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
        .await;
    let result = match result {
        // Every step passed: keep it all.
        Ok((tx, id)) if ctx.all_passed() => {
            tx.commit().await.expect("the transaction commits");
            Ok(id)
        }
        // Anything else: dropping the transaction rolls it back.
        Ok((tx, id)) => {
            drop(tx);
            Ok(id)
        }
        Err(error) => Err(error),
    };
    // Closing waits for the rollback (queued on the connection when a
    // transaction is dropped) to run, so the next open sees the file as
    // this run left it.
    pool.close().await;
    result
}
