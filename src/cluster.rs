//! Many instances, one PostgreSQL: a billing service that runs as several
//! worker processes. Invoices are paid by durable [`PayInvoice`] runs that
//! any instance may claim; [`InvoiceSweep`], a recurring durable workflow
//! on a cron schedule, enqueues a payment for each open invoice once per
//! tick across all instances. An instance that dies leaves its runs to the
//! others once its leases run out; one that stops gracefully hands them
//! over at once. The card gateway keys each charge by the step's key, and
//! the invoice is marked paid in the step's own transaction, so no invoice
//! is charged or marked twice, whoever dies when.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use workflow_runtime::durable::{DurableError, PgTx, StepCtx, Store, StoreError};
use workflow_runtime::host::{DurableHealth, HostSummary, Runner, WorkflowHost};
use workflow_runtime::prelude::*;

/// The service's own tables: invoices, and the (simulated) card
/// gateway's charges, unique by idempotency key as a real gateway's are.
const TABLES: &str = "
    CREATE TABLE IF NOT EXISTS invoices (
        id       BIGSERIAL PRIMARY KEY,
        cents    BIGINT NOT NULL,
        status   TEXT NOT NULL DEFAULT 'open',
        paid_by  TEXT,
        charge   TEXT
    );
    CREATE TABLE IF NOT EXISTS gateway_charges (
        key      TEXT PRIMARY KEY,
        invoice  BIGINT NOT NULL,
        cents    BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS gateway_requests (
        key      TEXT NOT NULL,
        instance TEXT NOT NULL
    );";

/// An invoice to pay.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invoice {
    /// Its id.
    pub id: i64,
    /// How much.
    pub cents: i64,
}

/// A charge the gateway made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Charge {
    /// The invoice.
    pub invoice: i64,
    /// The gateway's key for it: the charging step's key.
    pub key: String,
}

/// Pays one invoice: load it, charge the card (idempotent by the step's
/// key), mark it paid with the journal row in one transaction.
pub struct PayInvoice {
    /// The service's database (the journal's too).
    pub pool: PgPool,
    /// This instance's name, written beside each payment.
    pub instance: String,
}

/// Pays one open invoice.
#[workflow(durable)]
impl PayInvoice {
    #[step(given = "an open invoice")]
    async fn load(&self, id: i64) -> Result<Invoice, sqlx::Error> {
        let (id, cents) = sqlx::query_as("SELECT id, cents FROM invoices WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Invoice { id, cents })
    }

    #[step(when = "the card is charged")]
    async fn charge(&self, step: &StepCtx, invoice: Invoice) -> Result<Charge, sqlx::Error> {
        let key = step.key();
        // The gateway: every request is seen, a charge is made once per key.
        sqlx::query("INSERT INTO gateway_requests (key, instance) VALUES ($1, $2)")
            .bind(&key)
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO gateway_charges (key, invoice, cents) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&key)
        .bind(invoice.id)
        .bind(invoice.cents)
        .execute(&self.pool)
        .await?;
        // A card gateway takes its time: long enough that a worker killed
        // at any moment has payments in flight.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Charge {
            invoice: invoice.id,
            key,
        })
    }

    #[step(when = "the invoice is marked paid", transactional)]
    async fn mark_paid(&self, tx: &mut PgTx, charge: Charge) -> Result<Charge, sqlx::Error> {
        sqlx::query("UPDATE invoices SET status = 'paid', paid_by = $1, charge = $2 WHERE id = $3")
            .bind(&self.instance)
            .bind(&charge.key)
            .bind(charge.invoice)
            .execute(&mut **tx)
            .await?;
        Ok(charge)
    }
}

/// Every two seconds, on one instance of all: a payment run for each open
/// invoice (the run's id is the invoice's, so a payment already under way
/// is not started twice).
pub struct InvoiceSweep {
    /// The service's database.
    pub pool: PgPool,
    /// The runner that enqueues the payments; set once the host is built.
    pub runner: Arc<OnceLock<Runner>>,
}

/// Enqueues the payment of every open invoice.
#[workflow(durable, cron = "*/2 * * * * *")]
impl InvoiceSweep {
    #[step(given = "the open invoices")]
    async fn open(&self) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM invoices WHERE status = 'open' ORDER BY id")
            .fetch_all(&self.pool)
            .await
    }

    #[step(when = "their payments are enqueued")]
    async fn enqueue(&self, invoices: Vec<i64>) -> Result<usize, DurableError> {
        let runner = self.runner.get().ok_or(DurableError::NoStore)?;
        for id in &invoices {
            runner
                .enqueue(&PayInvoice::ID, payment_id(*id), *id)
                .await?;
        }
        Ok(invoices.len())
    }
}

/// The durable run id of an invoice's payment.
pub fn payment_id(invoice: i64) -> String {
    format!("pay-invoice-{invoice}")
}

/// Connects to the database and creates the service's tables (the
/// journal's are created by the store).
pub async fn open(url: &str) -> Result<Store, StoreError> {
    let store = Store::postgres(url).await?;
    let pool = store.as_postgres().expect("a PostgreSQL store").pool();
    sqlx::raw_sql(TABLES)
        .execute(pool)
        .await
        .map_err(|e| StoreError::Database {
            store: store.describe(),
            doing: "creating the service's tables".to_owned(),
            source: Box::new(e),
        })?;
    Ok(store)
}

/// One instance's host: a worker of `store` named `instance` that pays
/// invoices and takes part in the sweep's ticks.
pub fn host(store: &Store, instance: &str) -> WorkflowHost {
    let pool = store
        .as_postgres()
        .expect("a PostgreSQL store")
        .pool()
        .clone();
    let runner = Arc::new(OnceLock::new());
    let host = WorkflowHost::builder()
        .store(store.clone())
        .durable(PayInvoice {
            pool: pool.clone(),
            instance: instance.to_owned(),
        })
        .recurring_durable(InvoiceSweep {
            pool,
            runner: runner.clone(),
        })
        .instance(instance, Duration::from_secs(2))
        .worker(16)
        .build()
        .expect("the service's workflows need no handlers");
    let _ = runner.set(host.runner());
    host
}

/// Runs one worker instance until SIGTERM or ctrl-c; what it did, and the
/// durable runs as it last saw them.
pub async fn run_worker(
    url: &str,
    instance: &str,
) -> Result<(HostSummary, DurableHealth), DurableError> {
    let store = open(url).await?;
    let host = host(&store, instance);
    let runner = host.runner();
    tracing::info!(instance, "worker started; SIGTERM or ctrl-c stops it");
    let summary = host.run_until_signal().await;
    let health = runner.durable_health().await?;
    Ok((summary, health))
}

/// Adds `count` open invoices; their ids.
pub async fn add_invoices(pool: &PgPool, count: usize) -> Result<Vec<i64>, sqlx::Error> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    sqlx::query_scalar(
        "INSERT INTO invoices (cents) SELECT 100 * n FROM generate_series(1, $1) AS n RETURNING id",
    )
    .bind(count)
    .fetch_all(pool)
    .await
}

/// Invoices by status, and paid ones by the instance that paid them.
pub async fn tally(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, COALESCE(paid_by, ''), COUNT(*) FROM invoices GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
}
