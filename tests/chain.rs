//! The fluent chain: every verb, every outcome, every option.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use workflow_runtime::prelude::*;
use workflow_runtime::{StepFailure, WorkflowOptions};

#[derive(Debug, PartialEq)]
struct Boom(&'static str);

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom: {}", self.0)
    }
}

impl std::error::Error for Boom {}

fn outcomes(ctx: &WorkflowContext) -> Vec<(StepKind, String, String)> {
    ctx.steps()
        .into_iter()
        .map(|s| (s.kind, s.title.into_owned(), s.outcome.to_string()))
        .collect()
}

fn row(kind: StepKind, title: &str, outcome: &str) -> (StepKind, String, String) {
    (kind, title.to_owned(), outcome.to_owned())
}

fn with(options: WorkflowOptions) -> WorkflowContext {
    WorkflowContext::builder("Test").options(options).build()
}

#[tokio::test]
async fn every_verb_runs_sync_and_async_plain_and_fallible_in_order() {
    let ctx = WorkflowContext::new("AllVerbs");
    let out = Workflow::given(&ctx, "g", || 1)
        .when("w", |n| n + 1)
        .try_when("tw", |n| Ok::<_, Boom>(n + 1))
        .when_async("wa", |n| async move { n + 1 })
        .try_when_async("twa", |n| async move { Ok::<_, Boom>(n + 1) })
        .and("a", |n| n + 1)
        .try_and("ta", |n| Ok::<_, Boom>(n + 1))
        .and_async("aa", |n| async move { n + 1 })
        .try_and_async("taa", |n| async move { Ok::<_, Boom>(n + 1) })
        .but("b", |n| n + 1)
        .try_but("tb", |n| Ok::<_, Boom>(n + 1))
        .but_async("ba", |n| async move { n + 1 })
        .try_but_async("tba", |n| async move { Ok::<_, Boom>(n + 1) })
        .then("t", |n| *n == 13)
        .finally("f", |outcome| assert_eq!(outcome.ok(), Some(&13)))
        .await
        .unwrap();
    assert_eq!(out, 13);
    let titles: Vec<_> = ctx.steps().into_iter().map(|s| s.title).collect();
    assert_eq!(
        titles,
        [
            "g", "w", "tw", "wa", "twa", "a", "ta", "aa", "taa", "b", "tb", "ba", "tba", "t", "f"
        ]
    );
    assert!(ctx.all_passed());
    assert!(ctx.first_failure().is_none());
}

#[tokio::test]
async fn given_comes_in_four_flavors() {
    let ctx = WorkflowContext::new("Given");
    assert_eq!(Workflow::given(&ctx, "a", || 1).await.unwrap(), 1);
    assert_eq!(
        Workflow::try_given(&ctx, "b", || "2".parse::<i32>())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        Workflow::given_async(&ctx, "c", || async { 3 })
            .await
            .unwrap(),
        3
    );
    let err = Workflow::try_given_async(&ctx, "d", || async { Err::<i32, _>(Boom("d")) })
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Failed { .. }));
    assert_eq!(ctx.steps().len(), 4);
    assert_eq!(ctx.failed_steps().len(), 1);
}

#[tokio::test]
async fn a_failed_step_stops_the_chain_and_the_rest_are_skipped() {
    let ctx = WorkflowContext::new("Orders");
    let ran_after = AtomicUsize::new(0);
    let err = Workflow::given(&ctx, "an order", || 7)
        .try_when("charge", |_| Err::<i32, _>(Boom("declined")))
        .when("ship", |n| {
            ran_after.fetch_add(1, Ordering::SeqCst);
            n
        })
        .then("shipped", |_| true)
        .await
        .unwrap_err();
    assert_eq!(ran_after.load(Ordering::SeqCst), 0);
    assert_eq!(
        outcomes(&ctx),
        [
            row(StepKind::Given, "an order", "passed"),
            row(StepKind::When, "charge", "failed: boom: declined"),
            row(StepKind::When, "ship", "skipped"),
            row(StepKind::Then, "shipped", "skipped"),
        ]
    );
    assert!(!ctx.all_passed());
    assert_eq!(ctx.first_failure().unwrap().title, "charge");
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "boom: declined");
    match err {
        WorkflowError::Failed { step, error } => {
            assert_eq!(step.kind, StepKind::When);
            assert_eq!(error.downcast_ref::<Boom>(), Some(&Boom("declined")));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn without_skip_remaining_the_unrun_steps_are_not_recorded() {
    let ctx = with(WorkflowOptions::default().skip_remaining_on_failure(false));
    let _ = Workflow::given(&ctx, "g", || 1)
        .try_when("fails", |_| Err::<i32, _>(Boom("x")))
        .when("never", |n| n)
        .await;
    assert_eq!(
        outcomes(&ctx),
        [
            row(StepKind::Given, "g", "passed"),
            row(StepKind::When, "fails", "failed: boom: x"),
        ]
    );
}

#[tokio::test]
async fn a_false_assertion_names_the_step_and_halts_by_default() {
    let ctx = WorkflowContext::new("CalculatorTest");
    let err = Workflow::given(&ctx, "two numbers", || (10, 5))
        .when("they are added", |(a, b)| a + b)
        .then("the sum is 16", |sum| *sum == 16)
        .when("never runs", |sum| sum)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "CalculatorTest", step Then "the sum is 16" failed: assertion did not hold"#
    );
    assert!(matches!(
        ctx.steps()[2].outcome,
        StepOutcome::Failed(StepFailure::Assertion)
    ));
    assert!(matches!(ctx.steps()[3].outcome, StepOutcome::Skipped));
}

#[tokio::test]
async fn soft_assertions_record_every_failure_and_end_in_the_first() {
    let ctx = with(WorkflowOptions::default().halt_on_failed_assertion(false));
    let after = AtomicUsize::new(0);
    let err = Workflow::given(&ctx, "five", || 5)
        .then("is even", |n| n % 2 == 0)
        .then("is negative", |n| *n < 0)
        .when("still runs", |n| {
            after.fetch_add(1, Ordering::SeqCst);
            n
        })
        .await
        .unwrap_err();
    assert_eq!(err.step().title, "is even");
    assert_eq!(after.load(Ordering::SeqCst), 1);
    assert_eq!(
        outcomes(&ctx),
        [
            row(StepKind::Given, "five", "passed"),
            row(StepKind::Then, "is even", "failed: assertion did not hold"),
            row(
                StepKind::Then,
                "is negative",
                "failed: assertion did not hold"
            ),
            row(StepKind::When, "still runs", "passed"),
        ]
    );
}

#[tokio::test]
async fn continue_on_error_goes_past_a_panicking_assertion_but_not_past_a_failed_when() {
    let ctx = with(WorkflowOptions::default().continue_on_error(true));
    let err = Workflow::given(&ctx, "one", || 1)
        .then("panics", |_| panic!("predicate exploded"))
        .then("holds", |n| *n == 1)
        .try_when("fails", |_| Err::<i32, _>(Boom("hard")))
        .when("unreachable", |n| n)
        .then("needs the value", |n| *n == 1)
        .finally("cleanup", |outcome| assert!(outcome.is_err()))
        .await
        .unwrap_err();
    // The first failure is the run's error, even though the chain went on.
    assert!(
        matches!(&err, WorkflowError::Panicked { message, .. } if &**message == "predicate exploded")
    );
    assert_eq!(
        outcomes(&ctx),
        [
            row(StepKind::Given, "one", "passed"),
            row(
                StepKind::Then,
                "panics",
                "failed: panicked: predicate exploded"
            ),
            row(StepKind::Then, "holds", "passed"),
            row(StepKind::When, "fails", "failed: boom: hard"),
            // No value to take: what needed one is skipped, and the cleanup
            // still runs.
            row(StepKind::When, "unreachable", "skipped"),
            row(StepKind::Then, "needs the value", "skipped"),
            row(StepKind::Finally, "cleanup", "passed"),
        ]
    );

    // Without the option, the panicking assertion stops the chain.
    let strict = WorkflowContext::new("Strict");
    let _ = Workflow::given(&strict, "one", || 1)
        .then("panics", |_| panic!("predicate exploded"))
        .then("holds", |n| *n == 1)
        .await;
    assert!(matches!(strict.steps()[2].outcome, StepOutcome::Skipped));
}

// A step timeout too long to add to a step's start (`Duration::MAX`, as
// "no limit" is sometimes spelled) never ends a step: adding it panicked
// as soon as a step waited, outside any step's own panic handling.
#[tokio::test(start_paused = true)]
async fn a_step_timeout_too_long_to_reach_never_ends_a_step() {
    let ctx = with(WorkflowOptions::default().step_timeout(Duration::MAX));
    let n = Workflow::given(&ctx, "order", || 1)
        .when_async("waits", |n| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            n + 1
        })
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test(start_paused = true)]
async fn a_step_past_its_timeout_is_dropped_and_recorded_as_timed_out() {
    let ctx = with(WorkflowOptions::default().step_timeout(Duration::from_secs(30)));
    let dropped = Arc::new(AtomicUsize::new(0));
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let started = tokio::time::Instant::now();
    let err = Workflow::given(&ctx, "order", || 1)
        .when_async("fast enough", |n| async move {
            tokio::time::sleep(Duration::from_secs(29)).await;
            n
        })
        .when_async("hangs", |n| {
            let guard = OnDrop(dropped.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                n
            }
        })
        .await
        .unwrap_err();
    // 29s for the first step, then exactly the 30s limit for the second.
    assert_eq!(started.elapsed(), Duration::from_secs(59));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the step future was dropped"
    );
    assert_eq!(
        err.to_string(),
        r#"workflow "Test", step When "hangs" timed out after 30s"#
    );
    let steps = ctx.steps();
    assert!(steps[1].outcome.is_passed());
    assert!(
        matches!(steps[2].outcome, StepOutcome::Failed(StepFailure::TimedOut(d)) if d == Duration::from_secs(30))
    );
    assert_eq!(steps[2].elapsed, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_context_drops_the_step_in_flight() {
    let token = CancellationToken::new();
    let ctx = WorkflowContext::builder("Cancel")
        .cancellation(token.clone())
        .build();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        token.cancel();
    });
    let err = Workflow::given(&ctx, "g", || ())
        .when_async("waits forever", |()| std::future::pending::<()>())
        .when("after", |()| ())
        .await
        .unwrap_err();
    canceller.await.unwrap();
    assert!(matches!(err, WorkflowError::Cancelled { ref step } if step.title == "waits forever"));
    assert_eq!(
        err.to_string(),
        r#"workflow "Cancel", step When "waits forever" was cancelled"#
    );
    assert_eq!(
        outcomes(&ctx),
        [
            row(StepKind::Given, "g", "passed"),
            row(StepKind::When, "waits forever", "cancelled"),
            row(StepKind::When, "after", "skipped"),
        ]
    );
    assert_eq!(ctx.steps()[1].elapsed, Duration::from_secs(5));
}

#[tokio::test]
async fn a_cancelled_context_starts_no_step() {
    let ctx = WorkflowContext::new("Cancelled");
    ctx.cancel();
    let err = Workflow::given(&ctx, "g", || 1)
        .when("w", |n| n)
        .await
        .unwrap_err();
    assert_eq!(err.step().title, "g");
    assert_eq!(
        outcomes(&ctx),
        [
            row(StepKind::Given, "g", "cancelled"),
            row(StepKind::When, "w", "skipped")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_running_chain_records_the_step_as_cancelled() {
    let ctx = WorkflowContext::new("Dropped");
    let chain = Workflow::given(&ctx, "g", || ())
        .when_async("slow", |()| tokio::time::sleep(Duration::from_secs(60)));
    let timed_out = tokio::time::timeout(Duration::from_secs(1), chain).await;
    assert!(timed_out.is_err());
    assert_eq!(
        outcomes(&ctx),
        [
            row(StepKind::Given, "g", "passed"),
            row(StepKind::When, "slow", "cancelled")
        ]
    );
}

#[tokio::test]
async fn panics_in_sync_and_async_steps_are_caught_and_named() {
    let ctx = WorkflowContext::new("Panics");
    let err = Workflow::given(&ctx, "g", || 1)
        .when("sync panic", |_: i32| -> i32 { panic!("sync {}", 1) })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "Panics", step When "sync panic" panicked: sync 1"#
    );

    let ctx = WorkflowContext::new("Panics");
    let err = Workflow::given(&ctx, "g", || 1)
        .when_async("async panic", |n| async move {
            tokio::task::yield_now().await;
            if n == 1 {
                panic!("async");
            }
            n
        })
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Panicked { ref message, .. } if &**message == "async"));
    assert!(matches!(
        &ctx.steps()[1].outcome,
        StepOutcome::Failed(StepFailure::Panic(m)) if &**m == "async"
    ));
}

#[tokio::test]
async fn finally_runs_after_success_and_after_failure() {
    let seen = Mutex::new(Vec::new());
    let ctx = WorkflowContext::new("Finally");
    let _ = Workflow::given(&ctx, "g", || 2)
        .finally("cleanup", |o| seen.lock().unwrap().push(format!("{o:?}")))
        .await;
    let _ = Workflow::given(&ctx, "g", || 2)
        .try_when("fails", |_| Err::<i32, _>(Boom("x")))
        .then("skipped", |_| true)
        .finally("cleanup", |o| {
            seen.lock()
                .unwrap()
                .push(o.map_err(|e| e.step().title.clone()).err().unwrap().into())
        })
        .await;
    assert_eq!(*seen.lock().unwrap(), ["Ok(2)", "fails"]);
    let steps = ctx.steps();
    assert_eq!(steps.last().unwrap().kind, StepKind::Finally);
    assert!(steps.last().unwrap().outcome.is_passed());
}

#[tokio::test]
async fn a_panic_in_finally_fails_a_passing_run_but_never_hides_an_earlier_error() {
    let ctx = WorkflowContext::new("F");
    let err = Workflow::given(&ctx, "g", || 1)
        .finally("explodes", |_| panic!("in finally"))
        .await
        .unwrap_err();
    assert_eq!(err.step().kind, StepKind::Finally);

    let ctx = WorkflowContext::new("F");
    let err = Workflow::given(&ctx, "g", || 1)
        .try_when("fails", |_| Err::<i32, _>(Boom("first")))
        .finally("explodes", |_| panic!("in finally"))
        .await
        .unwrap_err();
    assert_eq!(err.step().title, "fails");
    assert_eq!(ctx.failed_steps().len(), 2);
}

#[tokio::test]
async fn metadata_holds_value_types_and_reports_wrong_types() {
    let ctx = WorkflowContext::new("Meta");
    let id = uuid::Uuid::new_v4();
    ctx.set_metadata("correlationId", id);
    ctx.set_metadata("timeout", Duration::from_millis(250));
    ctx.set_metadata("retries", 3u8);
    ctx.set_metadata("tenantId", String::from("acme"));
    assert_eq!(ctx.metadata::<uuid::Uuid>("correlationId"), Some(id));
    assert_eq!(
        ctx.metadata::<Duration>("timeout"),
        Some(Duration::from_millis(250))
    );
    assert_eq!(ctx.metadata::<u8>("retries"), Some(3));
    ctx.set_metadata("retries", 4u8);
    assert_eq!(ctx.try_metadata::<u8>("retries"), Ok(4));
    let wrong = ctx.try_metadata::<u32>("retries").unwrap_err();
    assert_eq!(
        wrong.to_string(),
        r#"metadata "retries" holds a u8, not a u32"#
    );
    assert_eq!(
        ctx.metadata_keys(),
        ["correlationId", "timeout", "retries", "tenantId"]
    );

    #[derive(Clone, Debug, PartialEq)]
    struct Tenant {
        id: u32,
    }
    assert_eq!(ctx.insert_extension(Tenant { id: 1 }), None);
    assert_eq!(
        ctx.insert_extension(Tenant { id: 2 }),
        Some(Tenant { id: 1 })
    );
    assert_eq!(ctx.extension::<Tenant>(), Some(Tenant { id: 2 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_can_record_from_spawned_tasks() {
    let ctx = WorkflowContext::new("Shared");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                Workflow::given(&ctx, "n", move || i)
                    .when_async("doubled", |n| async move { n * 2 })
                    .await
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap().unwrap();
    }
    assert_eq!(total, 56);
    assert_eq!(ctx.steps().len(), 16);
    assert!(ctx.all_passed());
}

#[tokio::test]
async fn the_chain_future_is_send_so_it_can_be_spawned() {
    let ctx = WorkflowContext::new("Send");
    let task = tokio::spawn(async move {
        Workflow::given(&ctx, "g", || 1)
            .when_async("w", |n| async move { n + 1 })
            .result()
            .await
    });
    assert_eq!(task.await.unwrap().unwrap(), 2);
}

#[tokio::test]
async fn cleanup_hooks_run_once_after_the_workflow_ends() {
    let summaries = Arc::new(Mutex::new(Vec::new()));
    let ctx = WorkflowContext::new("Cleanup");
    let sink = summaries.clone();
    ctx.on_cleanup(move |s| sink.lock().unwrap().push((s.all_passed, s.steps, s.failed)));
    let _ = Workflow::given(&ctx, "g", || 1)
        .try_when("fails", |_| Err::<i32, _>(Boom("x")))
        .await;
    ctx.finish();
    drop(ctx);
    assert_eq!(*summaries.lock().unwrap(), [(false, 2, 1)]);
}

#[workflow_runtime::step(when = "nested wait")]
async fn nested_wait() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn total_elapsed_adds_up_the_top_level_steps_only() {
    let ctx = WorkflowContext::new("Elapsed");
    Workflow::given_async(&ctx, "waits 30ms", || async {
        tokio::time::sleep(Duration::from_millis(30)).await;
    })
    .when_async("waits 20ms, 10ms of it in a child", |()| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        nested_wait().await;
    })
    .await
    .unwrap();
    let elapsed: Vec<_> = ctx.steps().iter().map(|s| s.elapsed).collect();
    let ms = Duration::from_millis;
    assert_eq!(elapsed, [ms(30), ms(10), ms(20)]);
    // The child's 10ms is inside its parent's 20ms: counted once.
    assert_eq!(ctx.total_elapsed(), ms(50));
    assert_eq!(ctx.summary().total_elapsed, ms(50));
}

/// A step function of a user's own that says its work is done as it is
/// called (`at_call`), yet hands back a future that waits: the step keeps
/// that future and polls it, as it would any step's.
struct SaysSyncButWaits {
    forever: bool,
}

impl workflow_runtime::chain::StepFn<u32> for SaysSyncButWaits {
    type Output = u32;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = workflow_runtime::chain::StepResult<u32>> + Send>,
    >;
    fn call(self, n: u32) -> Self::Future {
        let forever = self.forever;
        Box::pin(async move {
            tokio::task::yield_now().await;
            if forever {
                std::future::pending::<()>().await;
            }
            Ok(n + 1)
        })
    }
    fn at_call() -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_whose_body_waits_after_all_is_polled_and_recorded_as_any() {
    let ctx = WorkflowContext::new("Waits");
    let n = Workflow::given(&ctx, "one", || 1u32)
        .step(StepKind::When, "waits", SaysSyncButWaits { forever: false })
        .await;
    assert_eq!(n.unwrap(), 2);
    let steps = ctx.steps();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].title, "waits");
    assert!(matches!(steps[1].outcome, StepOutcome::Passed));
    assert!(steps[0].id < steps[1].id);

    // Dropped while it waits: recorded as cancelled, as any step in flight.
    let ctx = WorkflowContext::new("Dropped");
    let chain = Workflow::given(&ctx, "one", || 1u32)
        .step(StepKind::When, "waits", SaysSyncButWaits { forever: true })
        .into_future();
    assert!(
        tokio::time::timeout(Duration::from_millis(10), chain)
            .await
            .is_err()
    );
    let steps = ctx.steps();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].title, "waits");
    assert!(matches!(steps[1].outcome, StepOutcome::Cancelled));
}
