#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

#[derive(Debug)]
struct Declined;
impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("declined") }
}
impl std::error::Error for Declined {}

#[workflow]
impl Orders {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order { order }

    #[step(when = "process payment")]
    async fn charge(&self, _order: Order) -> Result<Invoice, Declined> { Ok(Invoice) }

    #[step(when = "update status")]
    fn save(&self, order: Order) -> Order { order }
}

fn main() {}
