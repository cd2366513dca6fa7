//! `#[step]` free functions: sync and async, plain and fallible, callable
//! as before and usable as chain steps.

use workflow_runtime::prelude::*;

#[step(when = "parse")]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n = text.trim().parse()?;
    Ok(n)
}

#[step]
async fn double(n: u32) -> u32 {
    n * 2
}

#[step(then = "is even")]
fn is_even(n: &u32) -> bool {
    n % 2 == 0
}

#[step]
async fn maybe_fail(n: u32) -> Result<u32, std::fmt::Error> {
    if n > 100 {
        return Err(std::fmt::Error);
    }
    Ok(n)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        assert_eq!(parse(" 21 ").unwrap(), 21);
        assert_eq!(double(21).await, 42);
        let ctx = WorkflowContext::new("Free");
        let n = Workflow::given(&ctx, "text", || "21")
            .try_when("parsed", parse)
            .when_async("doubled", double)
            .try_and_async("checked", maybe_fail)
            .then("even", is_even)
            .await
            .unwrap();
        assert_eq!(n, 42);
    });
}
