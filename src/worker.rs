//! The guide's worker service: PendingOrderProcessor, HealthMonitor and
//! MetricsCollector as recurring workflows over the orders database.

use std::time::Duration;

use workflow_runtime::behavior::{Metrics, Tracing};
use workflow_runtime::host::{HostOptions, Schedule, WorkflowHost};
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

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order {} declined: over the card limit", self.order)
    }
}

impl std::error::Error for Declined {}

/// What one pass over the pending orders did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Processed {
    /// Orders paid.
    pub paid: u32,
    /// Orders the gateway declined (left pending).
    pub declined: u32,
}

/// Charges the card of one order.
#[step(when = "process payment")]
pub async fn charge(mut order: Order) -> Result<Order, Declined> {
    if order.total_cents > CARD_LIMIT_CENTS {
        return Err(Declined { order: order.id });
    }
    order.status = Status::Paid;
    order.payment_id = Some(format!("tx-{}", order.id));
    Ok(order)
}

/// Pays every pending order; each charge records itself as a sub-step.
pub struct PendingOrderProcessor {
    /// The orders.
    pub store: OrderStore,
}

/// Processes orders awaiting payment.
#[workflow(every = "30s", run_immediately)]
impl PendingOrderProcessor {
    #[step(given = "pending orders")]
    async fn pending(&self) -> Result<Vec<Order>, StoreError> {
        self.store.pending().await
    }

    #[step(when = "process payments")]
    async fn process(&self, orders: Vec<Order>) -> Result<Processed, StoreError> {
        let mut processed = Processed::default();
        for order in orders {
            match charge(order).await {
                Ok(paid) => {
                    self.store.update(&paid).await?;
                    processed.paid += 1;
                }
                Err(declined) => {
                    tracing::warn!(%declined, "payment declined; the order stays pending");
                    processed.declined += 1;
                }
            }
        }
        Ok(processed)
    }

    #[step(then = "every order handled")]
    fn handled(&self, processed: &Processed) -> bool {
        tracing::info!(
            paid = processed.paid,
            declined = processed.declined,
            "pending orders processed"
        );
        true
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

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// How often each workflow runs.
    pub every: Duration,
    /// Grace for in-flight runs at shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            every: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The worker's host: the three workflows on `config.every`, run
/// immediately, traced and measured.
pub fn host(store: &OrderStore, config: &WorkerConfig) -> WorkflowHost {
    let every = Schedule::every(config.every).run_immediately(true);
    WorkflowHost::builder()
        .recurring_every(
            PendingOrderProcessor {
                store: store.clone(),
            },
            every,
        )
        .recurring_every(
            HealthMonitor {
                store: store.clone(),
            },
            every,
        )
        .recurring_every(
            MetricsCollector {
                store: store.clone(),
            },
            every,
        )
        .behavior(Tracing)
        .behavior(Metrics)
        .options(
            HostOptions::default()
                .max_parallelism(4)
                .shutdown_timeout(config.shutdown_timeout),
        )
        .build()
        .expect("the worker's workflows need no handlers")
}
