//! Methods whose names read the same in UpperCamelCase (`step1`, `step_1`),
//! or start with no letter (`_1st`), still get checks of their own.
#![allow(non_snake_case)]
use workflow_runtime::prelude::*;

struct Numbers;

#[workflow]
impl Numbers {
    #[step(given = "one")]
    fn _1st(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "two")]
    fn step1(&self, n: u32) -> u32 {
        n + 1
    }

    #[step(when = "three")]
    fn step_1(&self, n: u32) -> u32 {
        n + 1
    }

    #[step(then = "is three")]
    fn stepOne(&self, n: &u32) -> bool {
        *n == 3
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Numbers::context().build();
    assert_eq!(Numbers.run(&ctx, 1).await.unwrap(), 3);
}
