//! `retry` on the first step copies the workflow's input for each attempt:
//! an input that is not `Clone` is one error, naming the step.
#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct Payment;

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "a payment", retry(max_attempts = 3))]
    fn payment(&self, _payment: Payment) -> u32 { 1 }
}

fn main() {}
