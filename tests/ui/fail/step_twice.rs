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
    #[step(when = "again")]
    fn order(&self, order: Order) -> Order { order }
}

fn main() {}
