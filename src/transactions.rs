//! The guide's transaction management: a workflow inside one SQLite
//! transaction that commits only if every step passed, and rolls back
//! otherwise: after a failed step, a panic, or a cancellation.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction, params};
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
pub fn setup(db: &Path, stock: &[(&str, u32)]) -> rusqlite::Result<()> {
    let conn = Connection::open(db)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS placed_orders (id INTEGER PRIMARY KEY, customer_id TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS order_lines (order_id INTEGER NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS inventory (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL);",
    )?;
    for (sku, quantity) in stock {
        conn.execute(
            "INSERT INTO inventory (sku, quantity) VALUES (?1, ?2)
             ON CONFLICT(sku) DO UPDATE SET quantity = excluded.quantity",
            params![sku, quantity],
        )?;
    }
    Ok(())
}

/// How many rows each table holds, and the stock of `sku`.
pub fn snapshot(db: &Path, sku: &str) -> rusqlite::Result<(u64, u64, i64)> {
    let conn = Connection::open(db)?;
    let count = |table: &str| {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
    };
    let stock = conn.query_row(
        "SELECT quantity FROM inventory WHERE sku = ?1",
        params![sku],
        |r| r.get(0),
    )?;
    Ok((count("placed_orders")?, count("order_lines")?, stock))
}

fn save_order(
    tx: &Transaction<'_>,
    customer: &str,
    items: &[Item],
) -> Result<i64, rusqlite::Error> {
    tx.execute(
        "INSERT INTO placed_orders (customer_id) VALUES (?1)",
        params![customer],
    )?;
    let id = tx.last_insert_rowid();
    for item in items {
        tx.execute(
            "INSERT INTO order_lines (order_id, sku, quantity) VALUES (?1, ?2, ?3)",
            params![id, item.sku, item.quantity],
        )?;
    }
    Ok(id)
}

fn take_stock(tx: &Transaction<'_>, items: &[Item]) -> Result<(), StepError> {
    for item in items {
        let changed = tx
            .execute(
                "UPDATE inventory SET quantity = quantity - ?1 WHERE sku = ?2 AND quantity >= ?1",
                params![item.quantity, item.sku],
            )
            .map_err(StepError::new)?;
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
/// The steps are sync SQLite calls, so the run happens on tokio's blocking
/// pool, holding the connection and its transaction there.
pub async fn place_order(
    db: PathBuf,
    customer: String,
    items: Vec<Item>,
    fault: Fault,
) -> Result<i64, WorkflowError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut conn = Connection::open(&db).expect("the database opens");
        let tx = conn.transaction().expect("a transaction starts");
        let ctx = WorkflowContext::new("PlaceOrder");
        let result = handle.block_on(
            Workflow::given(&ctx, "an order", || (customer, items))
                .try_when("save order", |(customer, items)| {
                    let id = save_order(&tx, &customer, &items)?;
                    if fault == Fault::CancelAfterSave {
                        ctx.cancel();
                    }
                    Ok::<_, rusqlite::Error>((id, items))
                })
                .try_and("update inventory", |(id, items)| {
                    if fault == Fault::PanicInInventory {
                        panic!("inventory service crashed");
                    }
                    take_stock(&tx, &items).map(|()| id)
                })
                .then("order saved", |id| *id > 0)
                .result(),
        );
        match &result {
            // Every step passed: keep it all.
            Ok(_) if ctx.all_passed() => tx.commit().expect("the transaction commits"),
            // Anything else: dropping the transaction rolls it back.
            _ => drop(tx),
        }
        result
    })
    .await
    .expect("the blocking task ends")
}
