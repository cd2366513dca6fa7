//! Attribute macros for `workflow-runtime`: `#[step]` and `#[workflow]`.
//!
//! Use them through `workflow-runtime`, which re-exports them. Each macro
//! goes parse → validate → expand; on a mistake the original item is still
//! emitted next to one `compile_error!` per mistake, so the rest of the crate
//! keeps compiling and the mistake gets one message.

#[cfg(feature = "cron")]
mod cron;
mod duration;
mod errors;
mod expand;
mod model;
mod options;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Marks a step: a method of a `#[workflow]` impl block, or a free function
/// that records itself in the active workflow context (as a child of the
/// step whose body calls it).
///
/// Options: one kind (`given`, `when`, `and`, `but`, `then`, `finally`),
/// optionally with a title (`when = "process payment"`); without one the
/// title comes from the function's name (`process_payment` → "process
/// payment"), and without a kind the step is a `when`. On workflow methods,
/// behaviors too, outermost first as written: `retry(max_attempts = 3, backoff =
/// "100ms", max_delay = "5s", jitter)`, `timeout = "30s"`,
/// `circuit_breaker(name = "payments", failures = 5, open_for = "60s")`, and
/// `behaviors(..)`, a list of behavior values, value behaviors among them
/// (`behaviors(Fallback::to(cached), Logging)`). Write a fallback or a cache
/// before a `retry` or `timeout` to have it answer after them; written
/// after, it answers each attempt, and the retry never sees a failure. A
/// workflow's own `retry` or `timeout` (`#[workflow(retry(..))]`) sits
/// outside a step's behaviors unless the step gives its own of that kind.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::free_step(args.into(), item.into()).into()
}

/// Turns an `impl` block into a typed workflow: its `#[step]` methods run in
/// declaration order, each taking the previous step's output.
///
/// Options: `name = "..."` (default: the type's name), `description =
/// "..."` (default: the impl block's doc comment), `crate = path` (default:
/// `::workflow_runtime`, for crates that re-export it).
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::workflow(args.into(), item.into()).into()
}
