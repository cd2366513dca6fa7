#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;

struct Orders;

struct Payment;

#[workflow]
impl Orders {
    #[step(given = "a payment")]
    fn payment(&self) -> Payment { Payment }

    #[step(when = "charged", retry(max_attempts = 3))]
    async fn charge(&self, payment: Payment) -> Payment { payment }
}

fn main() {}
