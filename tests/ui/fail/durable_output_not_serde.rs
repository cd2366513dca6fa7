use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;

#[derive(Serialize, Deserialize)]
struct Order;

// Leaves the journal: neither Serialize nor Deserialize.
struct Receipt;

struct Pay;

#[workflow(durable)]
impl Pay {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order {
        order
    }

    #[step(when = "it is charged")]
    async fn charge(&self, _order: Order) -> Receipt {
        Receipt
    }
}

fn main() {
    // Code that names the workflow still compiles: one mistake, one place.
    let _ = workflow_runtime::host::Runner::builder().durable(Pay);
}
