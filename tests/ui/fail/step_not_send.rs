//! A step whose future holds an `Rc` across an `.await` cannot run on a
//! multi-threaded runtime: the error names the step's method, the `Rc` and
//! the `.await` it is held across. (Its notes name the step's future and
//! the bound that asks for `Send`: rustc names where an auto trait is
//! required, and a workflow's run requires it of each step.)
use std::rc::Rc;

use workflow_runtime::prelude::*;

struct Counter;

#[workflow]
impl Counter {
    #[step(given = "a count")]
    async fn count(&self, n: u32) -> u32 {
        let shared = Rc::new(n);
        tokio::task::yield_now().await;
        *shared
    }
}

fn main() {}
