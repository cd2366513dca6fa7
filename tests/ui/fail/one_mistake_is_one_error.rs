//! A mistake in `#[workflow]` is reported once: the workflow still
//! implements `WorkflowDefinition`, so code that runs, registers or builds
//! a context for it raises no further errors.
#![allow(dead_code)]
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;

struct Ping;

#[workflow]
impl Ping {
    #[step(given = "ping", retry(max_attempts = 0))]
    fn ping(&self) -> u8 { 1 }

    #[step(then = "pong")]
    fn pong(&self, n: &u8) -> bool { *n == 1 }
}

async fn uses_it() -> Result<u8, WorkflowError> {
    let ctx = Ping::context().build();
    let _runner = Runner::builder().register(Ping).build();
    let n: u8 = Ping.run(&ctx, ()).await?;
    Ok(n)
}

fn main() {}
