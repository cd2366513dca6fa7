#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "numbers")]
    fn numbers(&self) -> impl Iterator<Item = u8> { 0..3 }
}

fn main() {}
