#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct Orders;

struct Processor<'a> {
    orders: &'a Orders,
}

#[workflow]
impl<'a> Processor<'a> {
    #[step(given = "an id")]
    fn id(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
