#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

#[workflow]
fn orders(order: Order) -> Order { order }

fn main() {}
