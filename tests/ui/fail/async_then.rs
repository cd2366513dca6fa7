#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order { order }

    #[step(then = "is paid")]
    async fn paid(&self, _order: &Order) -> bool { true }
}

fn main() {}
