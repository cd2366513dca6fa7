//! The guide's order domain and its SQLite store, shared by the examples.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sqlx::{SqliteConnection, SqlitePool};
use workflow_runtime::durable::SqliteStore;

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
    /// Created, above the total that needs a manager's approval, and not
    /// approved yet: nothing charges it.
    AwaitingApproval,
    /// Created, awaiting payment.
    Pending,
    /// Paid.
    Paid,
    /// Paid and confirmed to the customer.
    Confirmed,
    /// Never paid, and never to be: its payment failed for good. Nothing
    /// charges a cancelled order (the worker pays only pending ones).
    Cancelled,
}

impl Status {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingApproval => "awaiting_approval",
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Confirmed => "confirmed",
            Status::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "paid" => Status::Paid,
            "confirmed" => Status::Confirmed,
            "cancelled" => Status::Cancelled,
            "awaiting_approval" => Status::AwaitingApproval,
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

/// A storage failure: the database's, or the journal's when the orders
/// write through it.
#[derive(Debug)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order store: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(Box::new(e))
    }
}

impl From<workflow_runtime::durable::StoreError> for StoreError {
    fn from(e: workflow_runtime::durable::StoreError) -> Self {
        StoreError(Box::new(e))
    }
}

/// An `orders` row as selected, before its JSON and status are parsed.
type OrderRow = (i64, String, String, i64, String, Option<String>);

/// One parse for every read, so `get` and `pending` agree on what a row
/// means.
fn order_of((id, customer_id, items, total_cents, status, payment_id): OrderRow) -> Order {
    Order {
        id,
        customer_id,
        // A row this store did not write may hold anything; an unreadable
        // item list reads as empty rather than hiding the whole order.
        items: serde_json::from_str(&items).unwrap_or_default(),
        // Stored as the i64 the write cast it to, so the cast back restores it.
        total_cents: total_cents as u64,
        status: Status::parse(&status),
        payment_id,
    }
}

/// The order's total in cents, or `None` when it does not fit: the
/// products and their sum are checked, and the total must fit the signed
/// 64-bit integer the database stores.
///
/// ```
/// use workflow_suite::orders::{Item, order_total};
/// let item = |quantity, unit_cents| Item { sku: "A".into(), quantity, unit_cents };
/// assert_eq!(order_total(&[item(2, 500), item(1, 250)]), Some(1250));
/// assert_eq!(order_total(&[item(u32::MAX, u64::MAX)]), None);
/// ```
pub fn order_total(items: &[Item]) -> Option<u64> {
    let total = items.iter().try_fold(0u64, |total, item| {
        total.checked_add(u64::from(item.quantity).checked_mul(item.unit_cents)?)
    })?;
    i64::try_from(total).ok()?;
    Some(total)
}

/// Stores a new pending order through `conn`: the pool's connection, or a
/// transaction's (`&mut **tx`), so the order commits with what else the
/// transaction writes.
pub async fn insert(
    conn: &mut SqliteConnection,
    customer_id: String,
    items: Vec<Item>,
) -> Result<Order, StoreError> {
    insert_as(conn, customer_id, items, Status::Pending).await
}

/// [`insert`], in `status`: an order above the approval limit is
/// created awaiting approval, so no worker charges it before then.
pub async fn insert_as(
    conn: &mut SqliteConnection,
    customer_id: String,
    items: Vec<Item>,
    status: Status,
) -> Result<Order, StoreError> {
    let total_cents = order_total(&items).ok_or_else(|| {
        StoreError::from(sqlx::Error::Encode(
            "the order's total does not fit in a 63-bit count of cents".into(),
        ))
    })?;
    let json = serde_json::to_string(&items).expect("items serialize");
    let id = sqlx::query(
        "INSERT INTO orders (customer_id, items, total_cents, status) VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(&customer_id)
    .bind(json)
    // SQLite integers are signed; `order_of` casts back.
    .bind(total_cents as i64)
    .bind(status.as_str())
    .execute(conn)
    .await?
    .last_insert_rowid();
    Ok(Order {
        id,
        customer_id,
        items,
        total_cents,
        status,
        payment_id: None,
    })
}

/// Orders in a SQLite file, created on first use.
#[derive(Clone)]
pub struct OrderStore {
    pool: SqlitePool,
    /// The journal in the same file, when the orders live beside it: their
    /// writes then share its transactions (and syncs) with the runs'.
    journal: Option<SqliteStore>,
}

impl OrderStore {
    /// Opens (or creates) the database at `path`, on a pool of one
    /// connection (see [`open_pool`](crate::db::open_pool)).
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::from_pool(crate::db::open_pool(path).await?).await
    }

    /// A store on an existing pool, creating the `orders` table if it is
    /// missing: so the orders can share a file (and transactions) with
    /// other tables, such as a durable workflow journal's.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS orders (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 customer_id TEXT NOT NULL,
                 items TEXT NOT NULL,
                 total_cents INTEGER NOT NULL,
                 status TEXT NOT NULL,
                 payment_id TEXT
             )",
        )
        .execute(&pool)
        .await?;
        // Which run decides an order awaiting approval: where an
        // approval is sent.
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS order_runs (
                 order_id INTEGER PRIMARY KEY,
                 run_id TEXT NOT NULL
             )",
        )
        .execute(&pool)
        .await?;
        Ok(OrderStore {
            pool,
            journal: None,
        })
    }

    /// A store in the journal's file, creating its tables if they are
    /// missing. Its writes go through the journal's group commit
    /// ([`SqliteStore::execute`]): an order's update shares its sync with
    /// every run's journal writes of the moment, rather than take one of
    /// its own.
    pub async fn beside(journal: &SqliteStore) -> Result<Self, StoreError> {
        Ok(OrderStore {
            journal: Some(journal.clone()),
            ..Self::from_pool(journal.pool().clone()).await?
        })
    }

    /// Executes the write `query`: through the journal's group commit if
    /// the store is beside one; the rows it changed.
    async fn write(
        &self,
        query: sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<u64, StoreError> {
        Ok(match &self.journal {
            Some(journal) => journal.execute(query).await?,
            None => query.execute(&self.pool).await?.rows_affected(),
        })
    }

    /// The pool the store runs on, for queries of the caller's own on the
    /// same file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Stores a new pending order.
    pub async fn create(&self, customer_id: String, items: Vec<Item>) -> Result<Order, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert(&mut conn, customer_id, items).await
    }

    /// Saves an order's status and payment id.
    pub async fn update(&self, order: &Order) -> Result<(), StoreError> {
        let update = sqlx::query("UPDATE orders SET status = ?1, payment_id = ?2 WHERE id = ?3")
            .bind(order.status.as_str())
            .bind(order.payment_id.clone())
            .bind(order.id);
        self.write(update).await?;
        Ok(())
    }

    /// Notes that run `run` decides whether order `id` is approved.
    pub async fn link_run(&self, id: i64, run: &str) -> Result<(), StoreError> {
        let link = sqlx::query(
            "INSERT INTO order_runs (order_id, run_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(run.to_owned());
        self.write(link).await?;
        Ok(())
    }

    /// The run that decides whether order `id` is approved, if one does.
    pub async fn run_of(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT run_id FROM order_runs WHERE order_id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The order run `run` decides the approval of, if any.
    pub async fn order_of_run(&self, run: &str) -> Result<Option<Order>, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT order_id FROM order_runs WHERE run_id = ?1")
                .bind(run)
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    /// Approves order `id` if it awaits approval: it is pending payment
    /// from then on. Whether it did.
    pub async fn approve(&self, id: i64) -> Result<bool, StoreError> {
        let approve = sqlx::query(
            "UPDATE orders SET status = 'pending' WHERE id = ?1 AND status = 'awaiting_approval'",
        )
        .bind(id);
        Ok(self.write(approve).await? == 1)
    }

    /// Cancels the order with `id` if it is not paid (pending, or awaiting
    /// approval); whether it did. A paid order is left as it is:
    /// cancelling it would need a refund.
    pub async fn cancel_pending(&self, id: i64) -> Result<bool, StoreError> {
        let cancel = sqlx::query(
            "UPDATE orders SET status = 'cancelled'
             WHERE id = ?1 AND status IN ('pending', 'awaiting_approval')",
        )
        .bind(id);
        Ok(self.write(cancel).await? == 1)
    }

    /// The order with `id`, if any.
    pub async fn get(&self, id: i64) -> Result<Option<Order>, StoreError> {
        let row = sqlx::query_as::<_, OrderRow>(
            "SELECT id, customer_id, items, total_cents, status, payment_id FROM orders WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(order_of))
    }

    /// The pending orders, oldest first.
    pub async fn pending(&self) -> Result<Vec<Order>, StoreError> {
        let rows = sqlx::query_as::<_, OrderRow>(
            "SELECT id, customer_id, items, total_cents, status, payment_id FROM orders
             WHERE status = 'pending' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(order_of).collect())
    }

    /// How many orders are in each status.
    pub async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows = sqlx::query_as::<_, (String, i64)>(
            "SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(status, n)| (Status::parse(&status), n as u64))
            .collect())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// How many orders are stored.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}
