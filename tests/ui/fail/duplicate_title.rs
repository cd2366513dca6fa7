#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct Payments;

#[workflow]
impl Payments {
    #[step(given = "an amount")]
    fn amount(&self, cents: u32) -> u32 { cents }

    #[step(when = "charge")]
    fn charge(&self, cents: u32) -> u32 { cents }

    #[step(when = "charge")]
    fn charge_fee(&self, cents: u32) -> u32 { cents + 30 }
}

fn main() {}
