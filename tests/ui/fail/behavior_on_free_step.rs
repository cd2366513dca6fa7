#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;

struct Orders;

#[step(when = "charge", retry(max_attempts = 3))]
async fn charge(order: Order) -> Order { order }

fn main() {}
