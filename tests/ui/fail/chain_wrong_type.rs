#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

async fn run(ctx: &WorkflowContext) {
    let _ = Workflow::given(ctx, "an order", || Order)
        .when("billed", |invoice: Invoice| invoice)
        .await;
}

fn main() {}
