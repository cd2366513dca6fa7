#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct Receipt;

struct PlaceOrder;

#[workflow]
impl PlaceOrder {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "charge card", compensate = refund)]
    fn charge(&self, id: u32) -> Receipt {
        let _ = id;
        Receipt
    }

    #[compensation]
    fn refund(&self, receipt: Receipt) {
        let _ = receipt;
    }
}

fn main() {}
