//! `crate = path` lets a crate that re-exports the runtime use the macros.

mod facade {
    pub use workflow_runtime as runtime;
}

use facade::runtime::prelude::*;

struct Ping;

#[workflow(crate = facade::runtime)]
impl Ping {
    #[step(given = "ping")]
    fn ping(&self) -> u8 {
        1
    }
}

fn main() {
    assert_eq!(Ping::NAME, "Ping");
}
