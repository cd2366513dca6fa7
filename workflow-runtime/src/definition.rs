//! The workflow-definition trait that `#[workflow]` implements, and the
//! static description of a workflow's steps.

use std::fmt::Write as _;
use std::future::Future;

use crate::context::{ContextBuilder, WorkflowContext};
use crate::error::WorkflowError;
use crate::step::{StepKind, StepMeta};

/// A workflow whose steps are known at compile time: what `#[workflow]`
/// implements, and what the host and the runner run.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// struct Calculator;
///
/// #[workflow(description = "Adds two numbers")]
/// impl Calculator {
///     #[step(given = "two numbers")]
///     fn numbers(&self, input: (i32, i32)) -> (i32, i32) {
///         input
///     }
///
///     #[step(when = "they are added")]
///     async fn add(&self, (a, b): (i32, i32)) -> i32 {
///         a + b
///     }
///
///     #[step(then = "the sum is positive")]
///     fn positive(&self, sum: &i32) -> bool {
///         *sum > 0
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(Calculator::NAME, "Calculator");
/// assert_eq!(Calculator::STEPS.len(), 3);
/// let ctx = Calculator::context().build();
/// assert_eq!(Calculator.run(&ctx, (2, 3)).await.unwrap(), 5);
/// assert!(ctx.all_passed());
/// # }
/// ```
pub trait WorkflowDefinition: Send + Sync + 'static {
    /// What the first step takes (`()` when it takes nothing).
    type Input: Send + 'static;
    /// What the last value-producing step returns.
    type Output: Send + 'static;
    /// The workflow's name.
    const NAME: &'static str;
    /// What the workflow does.
    const DESCRIPTION: Option<&'static str> = None;
    /// The steps, in the order they run.
    const STEPS: &'static [StepMeta];
    /// When a host runs it as a recurring workflow
    /// (`#[workflow(every = "30s", run_immediately)]` or
    /// `#[workflow(cron = "0 */5 * * * *")]`).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::host::Schedule;
    /// # use std::time::Duration;
    /// struct Sweep;
    /// #[workflow(every = "10m")]
    /// impl Sweep { #[step(given = "a sweep")] fn sweep(&self) -> u8 { 1 } }
    /// assert_eq!(Sweep::schedule(), Some(Schedule::every(Duration::from_secs(600))));
    /// ```
    fn schedule() -> Option<crate::schedule::Schedule>
    where
        Self: Sized,
    {
        None
    }

    /// The handlers its steps use, checked when a host or runner is built
    /// (`#[workflow(handlers(CreateOrder => Order))]`).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// assert!(Ping::handlers().is_empty());
    /// ```
    fn handlers() -> Vec<crate::handlers::HandlerKey>
    where
        Self: Sized,
    {
        Vec::new()
    }

    /// Runs the steps under `ctx`.
    fn run<'a>(
        &'a self,
        ctx: &'a WorkflowContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, WorkflowError>> + Send + 'a;

    /// A context builder already carrying the name and description.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// let ctx = Ping::context().build();
    /// assert_eq!(ctx.name(), "Ping");
    /// ```
    fn context() -> ContextBuilder
    where
        Self: Sized,
    {
        default_context::<Self>()
    }

    /// The steps as a Mermaid flowchart.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping {
    /// #     #[step(given = "ping")] fn ping(&self) -> u8 { 1 }
    /// #     #[step(then = "pong")] fn pong(&self, n: &u8) -> bool { *n == 1 }
    /// # }
    /// assert_eq!(
    ///     Ping::mermaid(),
    ///     "flowchart TD\n    \
    ///      start([\"Ping\"])\n    \
    ///      s0[\"Given: ping\"]\n    \
    ///      s1{{\"Then: pong\"}}\n    \
    ///      start --> s0\n    \
    ///      s0 -->|u8| s1\n"
    /// );
    /// ```
    fn mermaid() -> String
    where
        Self: Sized,
    {
        mermaid(Self::NAME, Self::STEPS)
    }
}

/// Renders steps as a Mermaid flowchart: assertions as hexagons, `finally`
/// as a rounded box reached also from every fallible step.
///
/// ```
/// use workflow_runtime::{StepKind, StepMeta, mermaid};
/// let steps = [StepMeta::new(StepKind::When, "say \"hi\"", "hi").output("()")];
/// assert!(mermaid("Greeter", &steps).contains("s0[\"When: say #quot;hi#quot;\"]"));
/// ```
pub fn mermaid(name: &str, steps: &[StepMeta]) -> String {
    let escape = |s: &str| s.replace('"', "#quot;");
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    start([\"{}\"])", escape(name));
    for (i, step) in steps.iter().enumerate() {
        let label = format!("\"{}: {}\"", step.kind, escape(step.title));
        let _ = match step.kind {
            StepKind::Then => writeln!(out, "    s{i}{{{{{label}}}}}"),
            StepKind::Finally => writeln!(out, "    s{i}({label})"),
            _ => writeln!(out, "    s{i}[{label}]"),
        };
    }
    let mut prev = String::from("start");
    for i in 0..steps.len() {
        let edge = match i.checked_sub(1).map(|p| steps[p].output) {
            Some(ty) if !ty.is_empty() => format!(" -->|{}| ", escape(ty)),
            _ => " --> ".to_owned(),
        };
        let _ = writeln!(out, "    {prev}{edge}s{i}");
        prev = format!("s{i}");
    }
    if let Some(fin) = steps.iter().position(|s| s.kind == StepKind::Finally) {
        for (i, step) in steps[..fin].iter().enumerate() {
            if step.fallible || step.kind == StepKind::Then {
                let _ = writeln!(out, "    s{i} -.->|fails| s{fin}");
            }
        }
    }
    out
}

/// The context a definition makes unless it says more: its name, its
/// description, room for its steps' records.
pub fn default_context<W: WorkflowDefinition>() -> ContextBuilder {
    let builder = WorkflowContext::static_builder(W::NAME)
        .expected_steps(W::STEPS.len())
        .step_metas(W::STEPS);
    match W::DESCRIPTION {
        Some(description) => builder.description(description),
        None => builder,
    }
}
