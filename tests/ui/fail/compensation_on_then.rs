#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct PlaceOrder;

#[workflow]
impl PlaceOrder {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(then = "it is positive", compensate = forget)]
    fn positive(&self, id: &u32) -> bool {
        *id > 0
    }

    #[compensation]
    fn forget(&self, id: u32) {
        let _ = id;
    }
}

fn main() {}
