#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

#[workflow]
impl Orders {
    #[step(then = "is paid")]
    fn paid(&self, _order: &Order) -> bool { true }
}

fn main() {}
