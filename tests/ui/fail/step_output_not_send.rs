//! A step whose value cannot be sent between threads (an `Rc`) cannot be
//! handed from one step to the next of a run that a multi-threaded
//! runtime may move: the first error names the type that is not `Send`
//! (the second, the step that then cannot run).
use std::rc::Rc;

use workflow_runtime::prelude::*;

struct Counter;

#[workflow]
impl Counter {
    #[step(given = "a count")]
    fn count(&self, n: u32) -> Rc<u32> {
        Rc::new(n)
    }

    #[step(when = "read")]
    fn read(&self, n: Rc<u32>) -> u32 {
        *n
    }
}

fn main() {}
