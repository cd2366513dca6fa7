//! The guide's worker service: PendingOrderProcessor, HealthMonitor and
//! MetricsCollector as recurring workflows over the orders database. Each
//! payment is a durable run journaled in the orders file, so a worker
//! killed mid-batch finishes the batch when it starts again, without
//! charging anyone twice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use workflow_runtime::StepError;
use workflow_runtime::behavior::{Metrics, Tracing};
use workflow_runtime::durable::{
    DurableError, RunHandle, RunStatus, SqliteOptions, SqliteStore, SqliteTx, StepCtx, Store,
};
use workflow_runtime::host::{HostOptions, Runner, Schedule, WorkflowHost};
use workflow_runtime::prelude::*;

use crate::orders::{Order, OrderStore, Status, StoreError};

/// Orders over this total are declined by the (simulated) gateway.
pub const CARD_LIMIT_CENTS: u64 = 100_000;

/// The gateway declined a charge.
#[derive(Debug)]
pub struct Declined {
    /// The order.
    pub order: i64,
}

/// How a decline reads in a payment run's journaled failure: a declined
/// card is the customer's to fix, not a blip to try again.
const DECLINED: &str = "declined: over the card limit";

/// The longest a failed payment waits between redrives.
pub const LONGEST_REDRIVE_WAIT: Duration = Duration::from_secs(3_600);

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order {} {DECLINED}", self.order)
    }
}

/// The gateway could not be reached: a transient failure.
#[derive(Debug)]
pub struct Unreachable;

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the card gateway did not answer")
    }
}

impl std::error::Error for Unreachable {}

impl std::error::Error for Declined {}

/// What one pass over the pending orders did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Processed {
    /// Orders paid.
    pub paid: u32,
    /// Orders whose payment failed (the gateway declined, or a step
    /// failed), each logged and left pending: one order's failure never
    /// stops the others.
    pub failed: u32,
}

/// The (simulated) card gateway: an external system with its own file.
/// Like real gateways, it takes an idempotency key: a key it has seen
/// gets the earlier charge back instead of a second one. Every request is
/// logged, so a test sees how often it was asked.
#[derive(Clone)]
pub struct Gateway {
    pool: SqlitePool,
    latency: Duration,
    /// Requests still to fail as unreachable: an outage, for tests.
    outage: Arc<std::sync::atomic::AtomicU32>,
}

/// A charge the gateway made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order paid.
    pub order: i64,
    /// The gateway's id for the charge.
    pub charge: String,
}

impl Gateway {
    /// Opens (or creates) the gateway's file; each request takes `latency`.
    pub async fn open(path: &Path, latency: Duration) -> Result<Self, sqlx::Error> {
        let pool = crate::db::open_pool(path).await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS gateway_requests (
                 key TEXT NOT NULL, order_id INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS gateway_charges (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 key TEXT NOT NULL UNIQUE,
                 order_id INTEGER NOT NULL,
                 cents INTEGER NOT NULL);",
        )
        .execute(&pool)
        .await?;
        Ok(Gateway {
            pool,
            latency,
            outage: Arc::default(),
        })
    }

    /// Makes the next `requests` requests fail as unreachable.
    pub fn outage(&self, requests: u32) {
        self.outage
            .store(requests, std::sync::atomic::Ordering::SeqCst);
    }

    /// Charges `order` once per `key`.
    pub async fn charge(&self, key: &str, order: &Order) -> Result<Receipt, StepError> {
        sqlx::query("INSERT INTO gateway_requests (key, order_id) VALUES (?, ?)")
            .bind(key)
            .bind(order.id)
            .execute(&self.pool)
            .await?;
        tokio::time::sleep(self.latency).await;
        let down = self
            .outage
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if down {
            return Err(StepError::new(Unreachable));
        }
        if order.total_cents > CARD_LIMIT_CENTS {
            return Err(StepError::new(Declined { order: order.id }));
        }
        sqlx::query(
            "INSERT INTO gateway_charges (key, order_id, cents) VALUES (?, ?, ?)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(order.id)
        // SQLite integers are signed; totals stay far below `i64::MAX`.
        .bind(order.total_cents as i64)
        .execute(&self.pool)
        .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM gateway_charges WHERE key = ?")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(Receipt {
            order: order.id,
            charge: format!("ch-{id}"),
        })
    }

    /// The charges made, as (order, charge id), in order.
    pub async fn charges(&self) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT order_id, id FROM gateway_charges ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(order, id)| (order, format!("ch-{id}")))
            .collect())
    }

    /// How many charge requests it was sent.
    pub async fn requests(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gateway_requests")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unsigned_abs())
    }
}

/// Pays one order, durably: a worker killed mid-payment resumes it at the
/// step it was in, and the gateway's idempotency key (the step's key) and
/// the transactional status update see to it that the order is charged,
/// and marked paid, once.
pub struct PayOrder {
    /// The orders (in the journal's file).
    pub store: OrderStore,
    /// The card gateway.
    pub gateway: Gateway,
}

/// Pays one pending order.
#[workflow(durable)]
impl PayOrder {
    #[step(given = "pending order")]
    async fn load(&self, id: i64) -> Result<Order, StoreError> {
        match self.store.get(id).await? {
            Some(order) => Ok(order),
            None => Err(StoreError::from(sqlx::Error::RowNotFound)),
        }
    }

    #[step(when = "process payment")]
    async fn charge(&self, step: &StepCtx, mut order: Order) -> Result<Order, StepError> {
        let receipt = self.gateway.charge(&step.key(), &order).await?;
        order.payment_id = Some(receipt.charge);
        Ok(order)
    }

    #[step(when = "update status", transactional)]
    async fn save(&self, tx: &mut SqliteTx, mut order: Order) -> Result<Order, sqlx::Error> {
        let updated = sqlx::query(
            "UPDATE orders SET status = 'paid', payment_id = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(&order.payment_id)
        .bind(order.id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        // Paid only if this update paid it: "processed" checks that.
        if updated == 1 {
            order.status = Status::Paid;
        }
        Ok(order)
    }

    #[step(then = "processed")]
    fn processed(&self, order: &Order) -> bool {
        order.status == Status::Paid
    }
}

/// Finds the pending orders and pays each with a durable [`PayOrder`]
/// run whose id is the order's: a run a killed worker left unfinished is
/// the run the next pass starts (and the host resumes), never a second
/// payment. Only `pending` orders: one the order API cancelled, its card
/// declined, is never charged.
pub struct PendingOrderProcessor {
    /// The orders.
    pub store: OrderStore,
    /// The runner that owns the payment runs; set once the host is built.
    pub runner: Arc<OnceLock<Runner>>,
    /// How long a payment that failed waits before its first redrive;
    /// each redrive doubles it, up to [`LONGEST_REDRIVE_WAIT`].
    pub redrive_after: Duration,
}

/// Processes orders awaiting payment.
#[workflow(every = "30s", run_immediately)]
impl PendingOrderProcessor {
    #[step(given = "pending orders")]
    async fn pending(&self) -> Result<Vec<Order>, StoreError> {
        self.store.pending().await
    }

    #[step(when = "process payments")]
    async fn process(&self, orders: Vec<Order>) -> Result<Processed, DurableError> {
        let runner = self.runner.get().ok_or(DurableError::NoStore)?;
        tracing::info!(count = orders.len(), "processing pending orders");
        let mut processed = Processed::default();
        // One chain per order, as the guide writes it; each order's failure
        // is logged and counted, and the next order goes on.
        for order in orders {
            let run = payment(runner, order.id, self.redrive_after).await;
            match run {
                Ok(run) => match run.result().await {
                    Ok(_) => {
                        tracing::info!(order = order.id, "order processed");
                        processed.paid += 1;
                    }
                    // The worker is stopping: the payment is journaled and
                    // resumes when it starts again; the rest wait too.
                    Err(DurableError::Stopped { .. }) => {
                        tracing::info!(
                            order = order.id,
                            "stopping; the payment resumes on restart"
                        );
                        break;
                    }
                    Err(error) => {
                        tracing::error!(order = order.id, %error, "failed to process order");
                        processed.failed += 1;
                    }
                },
                Err(error) => {
                    tracing::error!(order = order.id, %error, "failed to process order");
                    processed.failed += 1;
                }
            }
        }
        Ok(processed)
    }

    #[step(then = "every order handled")]
    fn handled(&self, processed: &Processed) -> bool {
        tracing::info!(
            paid = processed.paid,
            failed = processed.failed,
            "pending orders processed"
        );
        true
    }
}

/// The payment run of order `id`: started, or the one a pass started
/// before. One that failed for a reason other than a decline (the gateway
/// down) is redriven once it has waited `first` (doubling with each
/// redrive, up to [`LONGEST_REDRIVE_WAIT`]): a durable backoff across
/// passes, so an outage of any length never leaves an order pending for
/// good; a declined card is left for the customer.
async fn payment(
    runner: &Runner,
    id: i64,
    first: Duration,
) -> Result<RunHandle<Order>, DurableError> {
    let run = format!("pay-order-{id}");
    match runner.status(&run).await {
        Ok(status) if status.status == RunStatus::Failed => {
            let error = status.error.unwrap_or_default();
            let redrives = status.earlier_failures.len();
            let wait = first
                .saturating_mul(1 << redrives.min(16))
                .min(LONGEST_REDRIVE_WAIT);
            let failed_ms = u64::try_from(status.updated_ms).unwrap_or(0);
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH + Duration::from_millis(failed_ms))
                .unwrap_or_default();
            if error.contains(DECLINED) || since < wait {
                return Err(DurableError::Failed {
                    run,
                    step: status.current_step,
                    error,
                });
            }
            tracing::warn!(%run, %error, redrive = redrives + 1, "redriving a failed payment");
            runner.redrive(&run).await?;
            Ok(runner.handle(&PayOrder::ID, run))
        }
        _ => runner.start(&PayOrder::ID, run, id).await,
    }
}

/// Checks that the database answers.
pub struct HealthMonitor {
    /// The orders.
    pub store: OrderStore,
}

/// Checks that the orders database answers.
#[workflow(every = "30s", run_immediately)]
impl HealthMonitor {
    #[step(given = "the database answers")]
    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

/// Reports orders by status as the `orders` gauge.
pub struct MetricsCollector {
    /// The orders.
    pub store: OrderStore,
}

/// Reports how many orders are in each status.
#[workflow(every = "30s", run_immediately)]
impl MetricsCollector {
    #[step(given = "orders by status")]
    async fn count(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        self.store.count_by_status().await
    }

    #[step(when = "reported")]
    fn report(&self, counts: Vec<(Status, u64)>) -> usize {
        for (status, n) in &counts {
            metrics::gauge!("orders", "status" => status.as_str()).set(*n as f64);
        }
        counts.len()
    }
}

/// How the worker runs. Every key may come from a TOML file, then from
/// environment variables `WORKFLOW__KEY` (`__` between a table and its
/// key: `WORKFLOW__HOST__MAX_PARALLELISM=8`, `WORKFLOW__WORKFLOW__STEP_TIMEOUT=30s`)
/// ([`WorkerConfig::load`]); durations as `"30s"` or `"00:00:30"`, keys in
/// snake_case or as the guide writes them (`StepTimeout`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// How often each workflow runs.
    #[serde(deserialize_with = "workflow_runtime::config::positive_duration")]
    pub every: Duration,
    /// The gateway's file (default: `gateway.db` beside the orders).
    pub gateway: Option<PathBuf>,
    /// How long a gateway request takes.
    #[serde(deserialize_with = "workflow_runtime::config::duration")]
    pub gateway_latency: Duration,
    /// The options every run starts from (`[workflow]` in the file).
    pub workflow: workflow_runtime::WorkflowOptions,
    /// The host's options (`[host]`): parallelism, the shutdown's grace.
    pub host: HostOptions,
}

/// The prefix of the environment variables the worker reads its settings
/// from.
pub const ENV_PREFIX: &str = "WORKFLOW__";

impl WorkerConfig {
    /// Reads the configuration from TOML text; keys left out keep their
    /// defaults, and a bad value or an unknown key is an error naming it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_suite::worker::WorkerConfig;
    /// let config = WorkerConfig::from_toml("every = \"5s\"\n[workflow]\nstep_timeout = \"2s\"").unwrap();
    /// assert_eq!(config.every, Duration::from_secs(5));
    /// assert_eq!(config.host.shutdown_timeout, Duration::from_secs(30));
    /// assert_eq!(config.workflow.step_timeout, Some(Duration::from_secs(2)));
    /// ```
    pub fn from_toml(text: &str) -> Result<WorkerConfig, Box<figment::Error>> {
        Self::layered(figment::Figment::new().merge(SnakeKeys(Toml::string(text))))
    }

    /// The defaults, then the TOML file at `file` (when given), then the
    /// environment's `WORKFLOW__…` variables, each over the one before. An
    /// error names the key and where its value came from.
    pub fn load(file: Option<&Path>) -> Result<WorkerConfig, Box<figment::Error>> {
        let mut sources = figment::Figment::new();
        if let Some(file) = file {
            // Exactly this file: a missing one is an error naming it.
            sources = sources.merge(SnakeKeys(Toml::file_exact(file)));
        }
        Self::layered(sources.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    fn layered(sources: figment::Figment) -> Result<WorkerConfig, Box<figment::Error>> {
        sources.extract().map_err(Box::new)
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            every: Duration::from_secs(30),
            gateway: None,
            gateway_latency: Duration::from_millis(5),
            workflow: workflow_runtime::WorkflowOptions::default(),
            // The library's: a `[host]` table that sets one key keeps the
            // others' defaults.
            host: HostOptions::default(),
        }
    }
}

/// A provider whose keys are read in snake_case, however the file wrote
/// them (`MaxParallelism`, `maxParallelism`): the environment's keys are,
/// and a key written two ways in two sources must merge as one.
struct SnakeKeys<P>(P);

impl<P: figment::Provider> figment::Provider for SnakeKeys<P> {
    fn metadata(&self) -> figment::Metadata {
        self.0.metadata()
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Ok(self
            .0
            .data()?
            .into_iter()
            .map(|(profile, dict)| (profile, snake_dict(dict)))
            .collect())
    }
}

fn snake_dict(dict: figment::value::Dict) -> figment::value::Dict {
    dict.into_iter()
        .map(|(key, value)| (snake_case(&key), snake_value(value)))
        .collect()
}

fn snake_value(value: figment::value::Value) -> figment::value::Value {
    use figment::value::Value;
    match value {
        Value::Dict(tag, dict) => Value::Dict(tag, snake_dict(dict)),
        Value::Array(tag, values) => {
            Value::Array(tag, values.into_iter().map(snake_value).collect())
        }
        other => other,
    }
}

/// `StepTimeout` and `stepTimeout` as `step_timeout`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut previous_lower = false;
    for c in key.chars() {
        if c.is_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            previous_lower = false;
        } else {
            out.push(c);
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Why the worker could not start.
#[derive(Debug)]
pub enum WorkerError {
    /// The orders file, which holds the journal too, did not open.
    Journal(workflow_runtime::durable::StoreError),
    /// The orders table, or the gateway's file, did not open.
    Database(StoreError),
}

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerError::Journal(e) => write!(f, "worker: {e}"),
            WorkerError::Database(e) => write!(f, "worker: {e}"),
        }
    }
}

impl std::error::Error for WorkerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WorkerError::Journal(e) => Some(e),
            WorkerError::Database(e) => Some(e),
        }
    }
}

/// The worker: its orders, its gateway, and the host that runs it.
pub struct Worker {
    /// The orders, in the same file as the durable journal.
    pub orders: OrderStore,
    /// The card gateway.
    pub gateway: Gateway,
    /// The host: the three recurring workflows on `config.every`, run
    /// immediately, traced and measured, and the durable payment runs.
    pub host: WorkflowHost,
}

impl Worker {
    /// Opens the orders file (and the journal in it) and the gateway, and
    /// builds the host. Payments a stopped worker left unfinished resume
    /// when the host runs.
    pub async fn open(db: &Path, config: &WorkerConfig) -> Result<Worker, WorkerError> {
        let sqlite = SqliteStore::open(SqliteOptions::new(db))
            .await
            .map_err(WorkerError::Journal)?;
        let orders = OrderStore::beside(&sqlite)
            .await
            .map_err(WorkerError::Database)?;
        let gateway_file = config
            .gateway
            .clone()
            .unwrap_or_else(|| db.with_file_name("gateway.db"));
        let gateway = Gateway::open(&gateway_file, config.gateway_latency)
            .await
            .map_err(|e| WorkerError::Database(e.into()))?;
        let every = Schedule::every(config.every).run_immediately(true);
        let runner = Arc::new(OnceLock::new());
        let host = WorkflowHost::builder()
            .store(Store::new(sqlite))
            .durable(PayOrder {
                store: orders.clone(),
                gateway: gateway.clone(),
            })
            .recurring_every(
                PendingOrderProcessor {
                    store: orders.clone(),
                    runner: runner.clone(),
                    redrive_after: config.every,
                },
                every.clone(),
            )
            .recurring_every(
                HealthMonitor {
                    store: orders.clone(),
                },
                every.clone(),
            )
            .recurring_every(
                MetricsCollector {
                    store: orders.clone(),
                },
                every,
            )
            .behavior(Tracing)
            .behavior(Metrics)
            .workflow_options(config.workflow.clone())
            .options(config.host.clone())
            .build()
            .expect("the worker's workflows need no handlers");
        let _ = runner.set(host.runner());
        Ok(Worker {
            orders,
            gateway,
            host,
        })
    }
}
