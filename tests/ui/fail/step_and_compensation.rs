#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct PlaceOrder;

#[workflow]
impl PlaceOrder {
    #[step(given = "an order", compensate = forget)]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[compensation]
    #[step(when = "forget")]
    fn forget(&self, id: u32) {
        let _ = id;
    }
}

fn main() {}
