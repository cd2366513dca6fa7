#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order { order }

    #[step(when = "charge", retry(max_attempts = 0))]
    async fn charge(&self, order: Order) -> Order { order }
}

fn main() {}
