//! The guide's order domain and its SQLite store, shared by the examples.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What is bought.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Price of one, in cents.
    pub unit_cents: u64,
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, awaiting payment.
    Pending,
    /// Paid.
    Paid,
    /// Paid and confirmed to the customer.
    Confirmed,
}

impl Status {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Confirmed => "confirmed",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "paid" => Status::Paid,
            "confirmed" => Status::Confirmed,
            _ => Status::Pending,
        }
    }
}

/// An order as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: i64,
    /// Who ordered.
    pub customer_id: String,
    /// What.
    pub items: Vec<Item>,
    /// The total, in cents.
    pub total_cents: u64,
    /// Where it is.
    pub status: Status,
    /// The payment's transaction id, once paid.
    pub payment_id: Option<String>,
}

/// A storage failure.
#[derive(Debug)]
pub struct StoreError(rusqlite::Error);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order store: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e)
    }
}

/// Orders in a SQLite file, created on first use. Calls run on tokio's
/// blocking pool.
#[derive(Clone)]
pub struct OrderStore {
    conn: Arc<Mutex<Connection>>,
}

impl OrderStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS orders (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 customer_id TEXT NOT NULL,
                 items TEXT NOT NULL,
                 total_cents INTEGER NOT NULL,
                 status TEXT NOT NULL,
                 payment_id TEXT
             );",
        )?;
        Ok(OrderStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(PoisonError::into_inner)))
            .await
            .expect("the store's blocking task does not panic")
            .map_err(StoreError)
    }

    /// Stores a new pending order.
    pub async fn create(&self, customer_id: String, items: Vec<Item>) -> Result<Order, StoreError> {
        let total_cents = items
            .iter()
            .map(|i| u64::from(i.quantity) * i.unit_cents)
            .sum();
        let json = serde_json::to_string(&items).expect("items serialize");
        let id = self
            .with({
                let customer_id = customer_id.clone();
                move |c| {
                    c.execute(
                        "INSERT INTO orders (customer_id, items, total_cents, status) VALUES (?1, ?2, ?3, 'pending')",
                        params![customer_id, json, total_cents as i64],
                    )?;
                    Ok(c.last_insert_rowid())
                }
            })
            .await?;
        Ok(Order {
            id,
            customer_id,
            items,
            total_cents,
            status: Status::Pending,
            payment_id: None,
        })
    }

    /// Saves an order's status and payment id.
    pub async fn update(&self, order: &Order) -> Result<(), StoreError> {
        let (id, status, payment) = (order.id, order.status.as_str(), order.payment_id.clone());
        self.with(move |c| {
            c.execute(
                "UPDATE orders SET status = ?1, payment_id = ?2 WHERE id = ?3",
                params![status, payment, id],
            )
            .map(drop)
        })
        .await
    }

    /// The order with `id`, if any.
    pub async fn get(&self, id: i64) -> Result<Option<Order>, StoreError> {
        self.with(move |c| {
            c.query_row(
                "SELECT id, customer_id, items, total_cents, status, payment_id FROM orders WHERE id = ?1",
                params![id],
                |row| {
                    let items: String = row.get(2)?;
                    let status: String = row.get(4)?;
                    Ok(Order {
                        id: row.get(0)?,
                        customer_id: row.get(1)?,
                        items: serde_json::from_str(&items).unwrap_or_default(),
                        total_cents: row.get::<_, i64>(3)? as u64,
                        status: Status::parse(&status),
                        payment_id: row.get(5)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// The pending orders, oldest first.
    pub async fn pending(&self) -> Result<Vec<Order>, StoreError> {
        let ids: Vec<i64> = self
            .with(|c| {
                let mut stmt =
                    c.prepare("SELECT id FROM orders WHERE status = 'pending' ORDER BY id")?;
                stmt.query_map([], |r| r.get(0))?.collect()
            })
            .await?;
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(order) = self.get(id).await? {
                orders.push(order);
            }
        }
        Ok(orders)
    }

    /// How many orders are in each status.
    pub async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status")?;
            stmt.query_map([], |r| {
                let status: String = r.get(0)?;
                Ok((Status::parse(&status), r.get::<_, i64>(1)? as u64))
            })?
            .collect()
        })
        .await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    /// How many orders are stored.
    pub async fn count(&self) -> Result<u64, StoreError> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n as u64)
    }
}
