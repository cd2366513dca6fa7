#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

#[workflow(nmae = "Orders")]
impl Orders {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order { order }
}

fn main() {}
