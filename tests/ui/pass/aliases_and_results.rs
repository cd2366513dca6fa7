//! Type aliases of the same type pass; fallible steps hand on their `Ok` type.
#![allow(dead_code)]

use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order {
    cents: u64,
}
type Same = Order;
type Cents = u64;

#[derive(Debug)]
struct Declined;
impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("declined")
    }
}
impl std::error::Error for Declined {}

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "an order")]
    fn order(&self, order: Same) -> Order {
        order
    }

    #[step(when = "charged")]
    fn charge(&self, order: Order) -> Result<Cents, Declined> {
        Ok(order.cents)
    }

    #[step(and = "parsed")]
    fn parse(&self, cents: u64) -> std::io::Result<String> {
        Ok(cents.to_string())
    }

    #[step(then = "is short")]
    fn short(&self, text: &String) -> std::primitive::bool {
        text.len() < 10
    }
}

fn main() {
    fn assert_definition<W: WorkflowDefinition<Input = Order, Output = String>>() {}
    assert_definition::<Orders>();
}
