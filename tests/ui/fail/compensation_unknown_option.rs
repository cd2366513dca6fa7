#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct PlaceOrder;

#[workflow]
impl PlaceOrder {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "charge card", compensate = refund)]
    fn charge(&self, id: u32) -> String {
        format!("ch-{id}")
    }

    #[compensation(when = "refund")]
    fn refund(&self, charge: String) {
        let _ = charge;
    }
}

fn main() {}
