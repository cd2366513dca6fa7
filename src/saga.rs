//! The guide's order placement as a saga across two services: the stock
//! (the shop's own database) and a card payments service (another system,
//! with its own file). No transaction spans both, so each step that
//! changes one of them names the step that undoes it: when shipping fails,
//! the card is refunded, then the stock released, latest first.
//!
//! [`transactions`](crate::transactions) places the same order inside one
//! database transaction; the `transactions` example runs both.

use std::path::Path;

use sqlx::SqlitePool;
use workflow_runtime::prelude::*;
use workflow_runtime::{StepError, WorkflowContext};

use crate::orders::{Item, order_total};
use crate::transactions::take_stock;

/// What can go wrong after the money moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shipping {
    /// A carrier takes the parcel.
    Works,
    /// No carrier takes it: the step fails, and the saga undoes.
    NoCarrier,
}

/// No carrier took the parcel.
#[derive(Debug)]
pub struct NoCarrier;

impl std::fmt::Display for NoCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no carrier takes the parcel")
    }
}

impl std::error::Error for NoCarrier {}

/// An order to place.
#[derive(Clone, Debug)]
pub struct Order {
    /// Who orders.
    pub customer: String,
    /// What.
    pub items: Vec<Item>,
}

/// Stock set aside for an order: what "release stock" gives back.
#[derive(Clone, Debug)]
pub struct Reservation {
    /// The order.
    pub order: Order,
}

/// A card charge: what "refund" pays back.
#[derive(Clone, Debug)]
pub struct Charge {
    /// The payments service's id for it.
    pub id: i64,
    /// How much.
    pub cents: i64,
}

/// The parcel on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shipment {
    /// The charge it was paid with.
    pub charge: i64,
}

/// The payments service: another system, with its own file.
#[derive(Clone)]
pub struct Payments {
    pool: SqlitePool,
}

impl Payments {
    /// Opens (or creates) the service's file.
    pub async fn open(path: &Path) -> Result<Payments, sqlx::Error> {
        let pool = crate::db::open_pool(path).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS charges (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT NOT NULL,
                 cents INTEGER NOT NULL, refunded INTEGER NOT NULL DEFAULT 0)",
        )
        .execute(&pool)
        .await?;
        Ok(Payments { pool })
    }

    async fn charge(&self, customer: &str, cents: i64) -> Result<i64, sqlx::Error> {
        let done = sqlx::query("INSERT INTO charges (customer, cents) VALUES (?1, ?2)")
            .bind(customer)
            .bind(cents)
            .execute(&self.pool)
            .await?;
        Ok(done.last_insert_rowid())
    }

    async fn refund(&self, charge: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE charges SET refunded = 1 WHERE id = ?1")
            .bind(charge)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Cents charged and not refunded, and refunds made.
    pub async fn totals(&self) -> Result<(i64, i64), sqlx::Error> {
        sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN refunded = 0 THEN cents ELSE 0 END), 0),
                    COALESCE(SUM(refunded), 0) FROM charges",
        )
        .fetch_one(&self.pool)
        .await
    }
}

/// The saga: stock, then payment, then shipping, each change undone by a
/// compensation of its own when a later step fails.
pub struct PlaceOrderSaga {
    /// The shop's database (the `inventory` table).
    pub stock: SqlitePool,
    /// The card payments service.
    pub payments: Payments,
    /// Whether a carrier takes the parcel.
    pub shipping: Shipping,
}

/// Places an order across the stock and the payments service.
#[workflow(name = "PlaceOrderSaga")]
impl PlaceOrderSaga {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order {
        order
    }

    #[step(when = "reserve stock", compensate = release_stock)]
    async fn reserve(&self, order: Order) -> Result<Reservation, StepError> {
        // All of the order's items or none: one transaction of the stock's
        // own database.
        let mut tx = self.stock.begin().await.map_err(StepError::new)?;
        take_stock(&mut tx, &order.items).await?;
        tx.commit().await.map_err(StepError::new)?;
        Ok(Reservation { order })
    }

    #[step(when = "charge card", compensate = refund)]
    async fn charge(&self, reservation: Reservation) -> Result<Charge, StepError> {
        let order = &reservation.order;
        let cents = order_total(&order.items)
            .and_then(|total| i64::try_from(total).ok())
            .ok_or_else(|| StepError::new(std::io::Error::other("order total too large")))?;
        let id = self
            .payments
            .charge(&order.customer, cents)
            .await
            .map_err(StepError::new)?;
        Ok(Charge { id, cents })
    }

    #[step(when = "ship")]
    fn ship(&self, charge: Charge) -> Result<Shipment, NoCarrier> {
        match self.shipping {
            Shipping::Works => Ok(Shipment { charge: charge.id }),
            Shipping::NoCarrier => Err(NoCarrier),
        }
    }

    #[compensation(retry(max_attempts = 3, backoff = "50ms"))]
    async fn release_stock(&self, reservation: Reservation) -> Result<(), sqlx::Error> {
        let mut tx = self.stock.begin().await?;
        for item in &reservation.order.items {
            sqlx::query("UPDATE inventory SET quantity = quantity + ?1 WHERE sku = ?2")
                .bind(item.quantity)
                .bind(&item.sku)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    #[compensation(retry(max_attempts = 3, backoff = "50ms"))]
    async fn refund(&self, charge: Charge) -> Result<(), sqlx::Error> {
        self.payments.refund(charge.id).await
    }
}

/// Runs the saga for `order`, returning the shipment or the failure it
/// undid, and the run's records.
pub async fn place_order_saga(
    saga: &PlaceOrderSaga,
    order: Order,
) -> (Result<Shipment, WorkflowError>, WorkflowContext) {
    let ctx = PlaceOrderSaga::context().build();
    let result = saga.run(&ctx, order).await;
    (result, ctx)
}
