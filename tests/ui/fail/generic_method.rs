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
    fn order<T: Into<Order>>(&self, order: T) -> Order { order.into() }
}

fn main() {}
