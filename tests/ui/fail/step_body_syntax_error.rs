#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct Orders;

// A mistake inside a step's body is rustc's to report, where it is: the
// macro keeps bodies as they came, and reads the rest of the block.
#[workflow]
impl Orders {
    #[step(given = "an amount")]
    fn amount(&self, cents: u64) -> u64 {
        let doubled = cents * ;
        doubled
    }

    #[step(then = "positive")]
    fn positive(&self, cents: &u64) -> bool {
        *cents > 0
    }
}

fn main() {}
