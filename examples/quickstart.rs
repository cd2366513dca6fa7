//! The calculator from the guide: a chain of typed steps, then the step table.
//!
//! Run it with `cargo run --example quickstart`.

use workflow_runtime::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), WorkflowError> {
    let ctx = WorkflowContext::builder("CalculatorTest")
        .description("Adds and scales two numbers")
        .build();

    let result = Workflow::given(&ctx, "two numbers", || (10, 5))
        .when("they are added", |(a, b)| a + b)
        .and_async("the sum is doubled later", |sum| async move { sum * 2 })
        .try_but("the result fits in a byte", u8::try_from)
        .then("the result is 30", |n| *n == 30)
        .finally("report", |outcome| {
            if let Err(error) = outcome {
                eprintln!("failed: {error}");
            }
        })
        .await?;

    println!(
        "{} ({}) run {}",
        ctx.name(),
        ctx.description().unwrap_or_default(),
        ctx.execution_id()
    );
    println!("result: {result}");
    println!("{:<8} {:<28} {:<10} elapsed", "kind", "title", "outcome");
    for step in ctx.steps() {
        println!(
            "{:<8} {:<28} {:<10} {:?}",
            step.kind, step.title, step.outcome, step.elapsed
        );
    }
    println!(
        "all passed: {}, total: {:?}",
        ctx.all_passed(),
        ctx.total_elapsed()
    );
    Ok(())
}
