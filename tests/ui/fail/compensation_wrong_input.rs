#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone)]
struct Receipt;
struct Invoice;

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
    async fn refund(&self, invoice: Invoice) -> Result<(), std::io::Error> {
        let _ = invoice;
        Ok(())
    }
}

fn main() {}
