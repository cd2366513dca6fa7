//! A durable workflow's steps in every shape: sync and async, plain and
//! fallible, with `&StepCtx`, a transaction, retry, and assertions.

use serde::{Deserialize, Serialize};
use workflow_runtime::durable::{SqliteTx, StepCtx};
use workflow_runtime::prelude::*;

#[derive(Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
}

struct Pay;

#[workflow(durable = "v2")]
impl Pay {
    #[step(given = "an order", retry(max_attempts = 2))]
    fn order(&self, id: u64) -> Order {
        Order { id }
    }

    #[step(when = "it is checked")]
    fn check(&self, order: Order) -> Result<Order, std::fmt::Error> {
        Ok(order)
    }

    #[step(when = "it is charged", retry(max_attempts = 3, backoff = "10ms"))]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Order, std::io::Error> {
        let _ = step.key();
        Ok(order)
    }

    #[step(then = "it has an id")]
    fn has_id(&self, order: &Order) -> bool {
        order.id > 0
    }

    #[step(and = "it is saved", transactional)]
    async fn save(&self, step: &StepCtx, tx: &mut SqliteTx, order: Order) -> Result<u64, sqlx::Error> {
        sqlx::query("SELECT ?").bind(step.key()).execute(&mut **tx).await?;
        Ok(order.id)
    }

    #[step(and = "it is done")]
    async fn done(&self, id: u64) {
        let _ = id;
    }
}

fn main() {
    use workflow_runtime::durable::Durable;
    assert_eq!(Pay::VERSION, Some("v2"));
    assert_eq!(Pay::FINGERPRINT.len(), 16);
    let _ = Pay::ID;
}
