//! A step whose future holds an `Rc` across an `.await` cannot run on a
//! multi-threaded runtime: the error points into the step's body, at the
//! `Rc` and the `.await` it is held across. (The run's body is proved
//! `Send` once, with every step's future in it, rather than each step's
//! apart, which made a re-check some 9 % slower: so the help names the
//! run's future, not the step's.)
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
