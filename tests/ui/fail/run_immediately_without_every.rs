#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct Heartbeat;

#[workflow(run_immediately)]
impl Heartbeat {
    #[step(given = "beat")]
    fn beat(&self) {}
}

fn main() {}
