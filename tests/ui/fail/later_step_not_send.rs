//! A later step (here under its own timeout) whose future holds an `Rc`
//! across an `.await`: the error names the step's method, the `Rc` and the
//! `.await`, within the step's own future, and the bound on the step's
//! parts that asks for `Send`. (`cargo check` prints this error twice,
//! the same each time, for a first step too, as it did when the bound
//! was asked of the whole step's future: once for the call's bound and
//! once at the `.await`. trybuild folds duplicates, so the snapshot has
//! one.)
use std::rc::Rc;

use workflow_runtime::prelude::*;

struct Counter;

#[workflow]
impl Counter {
    #[step(given = "a count")]
    fn start(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "counted", timeout = "1s")]
    async fn count(&self, n: u32) -> u32 {
        let shared = Rc::new(n);
        tokio::task::yield_now().await;
        *shared
    }
}

fn main() {}
