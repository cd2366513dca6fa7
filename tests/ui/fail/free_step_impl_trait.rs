#![allow(dead_code)]
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order;
#[derive(Clone, Debug)]
struct Invoice;

struct Orders;

#[step]
fn numbers() -> impl Iterator<Item = u8> { 0..3 }

fn main() {}
