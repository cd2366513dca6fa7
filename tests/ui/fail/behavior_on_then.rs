#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order { order }

    #[step(then = "valid", timeout = "1s")]
    fn valid(&self, _order: &Order) -> bool { true }
}

fn main() {}
