use serde::{Deserialize, Serialize};
use workflow_runtime::behavior::Fallback;
use workflow_runtime::prelude::*;

#[derive(Serialize, Deserialize)]
struct Order;

#[derive(Clone, Serialize, Deserialize)]
struct Receipt;

struct Pay;

#[workflow(durable)]
impl Pay {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order {
        order
    }

    // A fallback replaces the value the journal keeps: refused here.
    #[step(when = "it is charged", behaviors(Fallback::to(|_| Some(Receipt))))]
    async fn charge(&self, _order: Order) -> Receipt {
        Receipt
    }
}

fn main() {}
