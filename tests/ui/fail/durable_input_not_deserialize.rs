use serde::Serialize;
use workflow_runtime::prelude::*;

#[derive(Serialize)]
struct Order;

struct Pay;

#[workflow(durable)]
impl Pay {
    #[step(given = "an order")]
    fn order(&self, _order: Order) -> u64 {
        42
    }
}

fn main() {}
