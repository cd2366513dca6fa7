//! `assert_steps!`: a run's records against the steps a test expects,
//! failing with the whole table (expected beside actual) so the first
//! look at a failure shows what the run did.

use std::fmt::Write as _;

use crate::context::{StepOutcome, StepRecord, WorkflowContext};
use crate::error::StepFailure;
use crate::step::StepKind;

/// One step a test expects: what [`assert_steps!`](crate::assert_steps)
/// builds from `When "charge card" failed("declined")`.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct ExpectedStep {
    /// Its kind.
    pub kind: StepKind,
    /// Its title.
    pub title: &'static str,
    /// How it ended.
    pub outcome: Expected,
}

/// How a step is expected to end.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Expected {
    /// `passed`
    Passed,
    /// `failed`, `failed(..)`, or `failed("words in the error")`.
    Failed(Option<&'static str>),
    /// `timed_out`
    TimedOut,
    /// `cancelled`
    Cancelled,
    /// `skipped`
    Skipped,
    /// `replayed`
    Replayed,
}

impl Expected {
    fn matches(self, actual: &StepOutcome) -> bool {
        match (self, actual) {
            (Expected::Passed, StepOutcome::Passed)
            | (Expected::Cancelled, StepOutcome::Cancelled)
            | (Expected::Skipped, StepOutcome::Skipped)
            | (Expected::Replayed, StepOutcome::Replayed)
            | (Expected::TimedOut, StepOutcome::Failed(StepFailure::TimedOut(_))) => true,
            (Expected::Failed(_), StepOutcome::Failed(StepFailure::TimedOut(_))) => false,
            (Expected::Failed(None), StepOutcome::Failed(_)) => true,
            (Expected::Failed(Some(words)), StepOutcome::Failed(why)) => {
                why.to_string().contains(words)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for ExpectedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} ", self.kind, self.title)?;
        match self.outcome {
            Expected::Passed => f.write_str("passed"),
            Expected::Failed(None) => f.write_str("failed(..)"),
            Expected::Failed(Some(words)) => write!(f, "failed({words:?})"),
            Expected::TimedOut => f.write_str("timed_out"),
            Expected::Cancelled => f.write_str("cancelled"),
            Expected::Skipped => f.write_str("skipped"),
            Expected::Replayed => f.write_str("replayed"),
        }
    }
}

fn actual(record: &StepRecord) -> String {
    format!("{} {:?} {}", record.kind, record.title, record.outcome)
}

/// Compares `ctx`'s records with `expected`, in order, and panics with
/// both tables side by side when they differ. What
/// [`assert_steps!`](crate::assert_steps) calls.
#[doc(hidden)]
#[track_caller]
pub fn check_steps(ctx: &WorkflowContext, expected: &[ExpectedStep]) {
    let records = ctx.steps();
    let same = records.len() == expected.len()
        && records.iter().zip(expected).all(|(record, expected)| {
            record.kind == expected.kind
                && record.title == expected.title
                && expected.outcome.matches(&record.outcome)
        });
    if same {
        return;
    }
    let width = expected
        .iter()
        .map(|e| e.to_string().chars().count())
        .max()
        .unwrap_or(0)
        .max("expected".len());
    let mut table = format!(
        "the steps of workflow {:?} are not the ones expected:\n     {:<width$}  actual\n",
        ctx.name(),
        "expected"
    );
    for row in 0..records.len().max(expected.len()) {
        let want = expected
            .get(row)
            .map(ToString::to_string)
            .unwrap_or_default();
        let got = records.get(row).map(actual).unwrap_or_default();
        let differs = match (expected.get(row), records.get(row)) {
            (Some(e), Some(r)) => {
                r.kind != e.kind || r.title != e.title || !e.outcome.matches(&r.outcome)
            }
            _ => true,
        };
        let mark = if differs { "  <--" } else { "" };
        let _ = writeln!(table, "{row:>3}  {want:<width$}  {got}{mark}");
    }
    panic!("{table}");
}

/// Asserts a run's steps, in order: kind, title and how each ended, with
/// `passed`, `failed`, `failed(..)`, `failed("words in the error")`,
/// `timed_out`, `cancelled`, `skipped` or `replayed`. On a mismatch it
/// panics with the expected and the actual steps side by side, each
/// difference marked.
///
/// ```
/// use workflow_runtime::assert_steps;
/// use workflow_runtime::prelude::*;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::new("Checkout");
/// let _ = Workflow::given(&ctx, "order", || 250u32)
///     .try_when("charge", |_| "declined".parse::<u32>())
///     .when("ship", |n| n)
///     .await;
/// assert_steps!(ctx, [
///     Given "order" passed,
///     When "charge" failed("invalid digit"),
///     When "ship" skipped,
/// ]);
/// # }
/// ```
#[macro_export]
macro_rules! assert_steps {
    ($ctx:expr, [ $( $kind:ident $title:literal $outcome:ident $( ( $($why:tt)* ) )? ),* $(,)? ]) => {
        $crate::testing::check_steps(
            &$ctx,
            &[ $( $crate::testing::ExpectedStep {
                kind: $crate::StepKind::$kind,
                title: $title,
                outcome: $crate::__expected_outcome!($outcome $( ( $($why)* ) )?),
            } ),* ],
        )
    };
}

/// The outcome words of [`assert_steps!`](crate::assert_steps).
#[doc(hidden)]
#[macro_export]
macro_rules! __expected_outcome {
    (passed) => { $crate::testing::Expected::Passed };
    (failed) => { $crate::testing::Expected::Failed(::core::option::Option::None) };
    (failed(..)) => { $crate::testing::Expected::Failed(::core::option::Option::None) };
    (failed($words:literal)) => {
        $crate::testing::Expected::Failed(::core::option::Option::Some($words))
    };
    (timed_out) => { $crate::testing::Expected::TimedOut };
    (cancelled) => { $crate::testing::Expected::Cancelled };
    (skipped) => { $crate::testing::Expected::Skipped };
    (replayed) => { $crate::testing::Expected::Replayed };
    ($other:ident $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "unknown outcome `", ::core::stringify!($other),
            "`: expected passed, failed, failed(..), failed(\"..\"), timed_out, cancelled, skipped or replayed"
        ))
    };
}
