//! Behaviors on tokio's paused clock: exact schedules, exact transitions.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use workflow_runtime::assert_steps;
use workflow_runtime::behavior::{
    Attempted, Behavior, BoxFuture, BreakerConfig, CircuitBreaker, CircuitOpen, CircuitState, Next,
    Retry, StepScope, Timeout,
};
use workflow_runtime::chain::BehaviorExt;
use workflow_runtime::prelude::*;
use workflow_runtime::{StepFailure, WorkflowOptions};

#[derive(Debug)]
struct Flaky(u32);

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "flaky failure #{}", self.0)
    }
}

impl std::error::Error for Flaky {}

/// A step body that fails its first `failures` calls, noting when each
/// call started.
#[derive(Clone)]
struct Script {
    failures: u32,
    calls: Arc<AtomicU32>,
    starts: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    fn failing(failures: u32) -> Self {
        Script {
            failures,
            calls: Arc::default(),
            starts: Arc::default(),
        }
    }

    async fn call(&self, n: u32) -> Result<u32, Flaky> {
        self.starts.lock().unwrap().push(Instant::now());
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        if call <= self.failures {
            Err(Flaky(call))
        } else {
            Ok(n)
        }
    }

    fn gaps(&self) -> Vec<Duration> {
        let starts = self.starts.lock().unwrap();
        starts.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn retry_follows_the_exact_backoff_schedule() {
    let ctx = WorkflowContext::new("Retry");
    let script = Script::failing(3);
    let out = Workflow::given(&ctx, "n", || 7)
        .try_when_async("flaky", |n| {
            let script = script.clone();
            async move { script.call(n).await }
        })
        .retry(Retry::max_attempts(4).backoff(ms(100)))
        .await
        .unwrap();
    assert_eq!(out, 7);
    // Each call takes 10ms, then waits 100, 200, 400ms before the next.
    assert_eq!(script.gaps(), [ms(110), ms(210), ms(410)]);
    let step = &ctx.steps()[1];
    assert_eq!(step.attempts, 4);
    assert_eq!(step.attempt_elapsed, [ms(10); 4]);
    assert_eq!(step.elapsed, ms(740));
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_attempts_with_the_last_failure() {
    let ctx = WorkflowContext::new("Retry");
    let script = Script::failing(10);
    let err = Workflow::given(&ctx, "n", || 7)
        .try_when_async("flaky", |n| {
            let script = script.clone();
            async move { script.call(n).await }
        })
        .retry(Retry::max_attempts(3).backoff(ms(50)).max_delay(ms(60)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "Retry", step When "flaky" failed: flaky failure #3"#
    );
    assert_eq!(script.gaps(), [ms(60), ms(70)], "50ms, then capped at 60ms");
    assert_eq!(ctx.steps()[1].attempts, 3);
    assert_steps!(ctx, [
        Given "n" passed,
        When "flaky" failed("flaky failure #3"),
    ]);
}

#[tokio::test(start_paused = true)]
async fn jittered_waits_stay_within_half_to_full_delay() {
    let ctx = WorkflowContext::new("Jitter");
    let script = Script::failing(5);
    Workflow::given(&ctx, "n", || 1)
        .try_when_async("flaky", |n| {
            let script = script.clone();
            async move { script.call(n).await }
        })
        .retry(Retry::max_attempts(6).backoff(ms(100)).jitter(true))
        .await
        .unwrap();
    let gaps = script.gaps();
    assert_eq!(gaps.len(), 5);
    for (i, gap) in gaps.iter().enumerate() {
        let delay = ms(100 * (1 << i));
        let waited = *gap - ms(10);
        assert!(
            waited >= delay / 2 && waited <= delay,
            "retry {i}: waited {waited:?} for {delay:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_retry_filter_decides_what_is_retried() {
    let ctx = WorkflowContext::new("Filter");
    let script = Script::failing(2);
    let only_timeouts = Retry::max_attempts(5).filter(|f| matches!(f, StepFailure::TimedOut(_)));
    let err = Workflow::given(&ctx, "n", || 1)
        .try_when_async("flaky", |n| {
            let script = script.clone();
            async move { script.call(n).await }
        })
        .retry(only_timeouts)
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Failed { .. }));
    assert_eq!(ctx.steps()[1].attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_drops_the_step_and_records_timed_out() {
    let ctx = WorkflowContext::new("Timeout");
    let started = Instant::now();
    let err = Workflow::given(&ctx, "n", || 1)
        .when_async("hangs", |n| async move {
            std::future::pending::<()>().await;
            n
        })
        .timeout(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert!(
        matches!(err, WorkflowError::TimedOut { after, .. } if after == Duration::from_secs(2))
    );
    assert!(
        matches!(ctx.steps()[1].outcome, StepOutcome::Failed(StepFailure::TimedOut(d)) if d == Duration::from_secs(2))
    );
    assert_steps!(ctx, [Given "n" passed, When "hangs" timed_out]);
}

#[tokio::test(start_paused = true)]
async fn retry_outside_timeout_limits_each_attempt() {
    let ctx = WorkflowContext::new("RetryTimeout");
    let calls = AtomicU32::new(0);
    let started = Instant::now();
    let out = Workflow::given(&ctx, "n", || 5)
        .when_async("slow twice", |n| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if call < 2 {
                    std::future::pending::<()>().await;
                }
                n
            }
        })
        .retry(Retry::max_attempts(3).backoff(ms(100)))
        .timeout(Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(out, 5);
    // Two attempts time out after 1s each, with 100ms and 200ms between.
    assert_eq!(started.elapsed(), ms(2300));
    assert_eq!(ctx.steps()[1].attempts, 3);
}

fn breaker(name: &str, failures: u32, open_for: Duration) -> Arc<CircuitBreaker> {
    CircuitBreaker::new(name, BreakerConfig::new(failures, open_for))
}

async fn call_through(breaker: &Arc<CircuitBreaker>, fail: bool) -> Result<u32, WorkflowError> {
    let ctx = WorkflowContext::new("Breaker");
    Workflow::given(&ctx, "n", || 1)
        .try_when_async("call", move |n| async move {
            tokio::time::sleep(ms(5)).await;
            if fail { Err(Flaky(n)) } else { Ok(n) }
        })
        .circuit_breaker(breaker.clone())
        .await
}

fn is_open_rejection(err: &WorkflowError) -> bool {
    matches!(err, WorkflowError::Failed { error, .. } if error.downcast_ref::<CircuitOpen>().is_some())
}

#[tokio::test(start_paused = true)]
async fn the_breaker_goes_through_every_transition() {
    let b = breaker("payments-transitions", 3, Duration::from_secs(60));
    for _ in 0..2 {
        assert!(call_through(&b, true).await.is_err());
    }
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(
        call_through(&b, false).await.is_ok(),
        "a success resets the count"
    );
    for _ in 0..3 {
        assert!(call_through(&b, true).await.is_err());
    }
    assert_eq!(b.state(), CircuitState::Open);

    let rejected = call_through(&b, false).await.unwrap_err();
    assert!(is_open_rejection(&rejected));
    assert_eq!(
        rejected.to_string(),
        r#"workflow "Breaker", step When "call" failed: circuit "payments-transitions" is open"#
    );

    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(call_through(&b, true).await.is_err(), "the trial fails");
    assert_eq!(b.state(), CircuitState::Open);

    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(call_through(&b, false).await.is_ok(), "the trial passes");
    assert_eq!(b.state(), CircuitState::Closed);

    use CircuitState::*;
    let path: Vec<_> = b.snapshot().recent.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        path,
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
    assert_eq!(b.snapshot().transitions, 5);
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_exactly_one_of_a_hundred_racing_callers_through() {
    let b = breaker("payments-race", 1, Duration::from_secs(10));
    assert!(call_through(&b, true).await.is_err());
    tokio::time::advance(Duration::from_secs(10)).await;

    let ran = Arc::new(AtomicU32::new(0));
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let b = b.clone();
            let ran = ran.clone();
            tokio::spawn(async move {
                let ctx = WorkflowContext::new("Race");
                Workflow::given(&ctx, "n", || 1)
                    .when_async("trial", move |n| {
                        let ran = ran.clone();
                        async move {
                            ran.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(ms(100)).await;
                            n
                        }
                    })
                    .circuit_breaker(b)
                    .await
            })
        })
        .collect();
    let mut passed = 0;
    let mut rejected = 0;
    for caller in callers {
        match caller.await.unwrap() {
            Ok(_) => passed += 1,
            Err(e) if is_open_rejection(&e) => rejected += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1, "exactly one trial ran");
    assert_eq!((passed, rejected), (1, 99));
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn panics_count_as_failures_and_cancellation_does_not() {
    let b = breaker("payments-panics", 2, Duration::from_secs(10));
    let ctx = WorkflowContext::new("Panics");
    let err = Workflow::given(&ctx, "n", || 1)
        .when("explodes", |_: i32| -> i32 { panic!("boom") })
        .circuit_breaker(b.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Panicked { .. }));
    assert_eq!(b.snapshot().consecutive_failures, 1);

    // A call cancelled mid-flight (its future dropped) counts for nothing.
    let ctx = WorkflowContext::new("Cancelled");
    let slow = Workflow::given(&ctx, "n", || 1)
        .when_async("slow", |n| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            n
        })
        .circuit_breaker(b.clone());
    assert!(tokio::time::timeout(ms(10), slow).await.is_err());
    assert_eq!(b.snapshot().consecutive_failures, 1);
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(matches!(ctx.steps()[1].outcome, StepOutcome::Cancelled));

    // A cancelled half-open trial frees the slot for the next caller.
    assert!(call_through(&b, true).await.is_err());
    assert_eq!(b.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(10)).await;
    let ctx = WorkflowContext::new("Trial");
    let trial = Workflow::given(&ctx, "n", || 1)
        .when_async("slow trial", |n| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            n
        })
        .circuit_breaker(b.clone());
    assert!(tokio::time::timeout(ms(10), trial).await.is_err());
    assert!(
        call_through(&b, false).await.is_ok(),
        "the next caller gets the trial"
    );
    assert_eq!(b.state(), CircuitState::Closed);
}

// A step's own breaker whose half-open trial the step timeout ended: the
// step is over but its chain goes on (here, undoing the step before it),
// and the trial's slot is free for the next caller then, not only once the
// whole chain is dropped.
#[tokio::test(start_paused = true)]
async fn a_trial_the_step_timeout_ended_frees_the_breaker_while_the_chain_goes_on() {
    let b = breaker("trial-ended", 1, Duration::from_secs(10));
    assert!(call_through(&b, true).await.is_err());
    tokio::time::advance(Duration::from_secs(10)).await;
    let ctx = WorkflowContext::builder("Trial")
        .options(WorkflowOptions::default().step_timeout(ms(50)))
        .build();
    let admitted = Arc::new(Mutex::new(None));
    let err = Workflow::given(&ctx, "order", || 1u32)
        .compensate({
            let (b, admitted) = (b.clone(), admitted.clone());
            move |_| {
                let (b, admitted) = (b.clone(), admitted.clone());
                async move {
                    *admitted.lock().unwrap() = Some(call_through(&b, false).await.is_ok());
                    Ok::<_, std::io::Error>(())
                }
            }
        })
        .when_async("slow trial", |n| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            n
        })
        .circuit_breaker(b.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::TimedOut { .. }), "{err}");
    assert_eq!(
        *admitted.lock().unwrap(),
        Some(true),
        "the compensation's call was let through as the next trial"
    );
    assert_eq!(b.state(), CircuitState::Closed);
}

/// Notes when it enters and leaves.
struct Mark(&'static str, Arc<Mutex<Vec<String>>>);

impl Behavior for Mark {
    fn around<'a>(&'a self, _step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            self.1.lock().unwrap().push(format!("{}>", self.0));
            let result = next.run().await;
            self.1.lock().unwrap().push(format!("<{}", self.0));
            result
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Payment(u32);

#[tokio::test]
async fn behaviors_compose_host_then_workflow_then_typed_then_step() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mark = |name| Mark(name, log.clone());
    let ctx = WorkflowContext::builder("Order")
        .behavior(mark("host"))
        .behavior(mark("workflow"))
        .behavior_for::<Payment>(mark("payments"))
        .build();
    let body_log = log.clone();
    Workflow::given(&ctx, "amount", || 5)
        .when("pay", move |n| {
            body_log.lock().unwrap().push("body".into());
            Payment(n)
        })
        .with(mark("outer step"))
        .with(mark("inner step"))
        .await
        .unwrap();
    let log = log.lock().unwrap();
    // The `given` step produces an i32: only the untyped behaviors wrap it.
    assert_eq!(
        *log,
        [
            "host>",
            "workflow>",
            "<workflow",
            "<host",
            "host>",
            "workflow>",
            "payments>",
            "outer step>",
            "inner step>",
            "body",
            "<inner step",
            "<outer step",
            "<payments",
            "<workflow",
            "<host",
        ]
    );
}

// The built-in behaviors a step is given (`.retry(..)`, `.timeout(..)`)
// are kept in its type and run there when nothing else wraps the step;
// here a context-wide behavior and the step's own others do, and the
// built-ins keep their place between them, in the order written.
#[tokio::test(start_paused = true)]
async fn a_steps_built_in_behaviors_keep_their_place_among_the_others() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mark = |name| Mark(name, log.clone());
    let ctx = WorkflowContext::builder("Order")
        .behavior(mark("host"))
        .build();
    let calls = AtomicU32::new(0);
    let body_log = log.clone();
    let paid = Workflow::given(&ctx, "amount", || 5)
        .try_when("pay", |n| {
            body_log.lock().unwrap().push("body".into());
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Flaky(n)),
                _ => Ok(n),
            }
        })
        .with(mark("before"))
        .retry(Retry::max_attempts(2))
        .timeout(ms(1_000))
        .with(mark("after"))
        .await
        .unwrap();
    assert_eq!(paid, 5);
    let log = log.lock().unwrap();
    assert_eq!(
        log[2..],
        [
            "host>", "before>", "after>", "body", "<after", "after>", "body", "<after", "<before",
            "<host",
        ]
    );
    assert_eq!(ctx.steps()[1].attempts, 2);
}

/// Runs the step twice and keeps the second result: a custom behavior that
/// uses `next` more than once.
struct Twice(Arc<AtomicU32>);

impl Behavior for Twice {
    fn around<'a>(&'a self, step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            next.run().await?;
            self.0.fetch_add(step.attempts(), Ordering::SeqCst);
            next.run().await
        })
    }
}

#[tokio::test]
async fn a_custom_behavior_can_run_a_replayable_step_again() {
    let seen = Arc::new(AtomicU32::new(0));
    let ctx = WorkflowContext::new("Custom");
    let calls = AtomicU32::new(0);
    let out = Workflow::given(&ctx, "n", || 1)
        .when("count", |n| n + calls.fetch_add(1, Ordering::SeqCst))
        .replayable()
        .with(Twice(seen.clone()))
        .await
        .unwrap();
    assert_eq!(out, 2, "the second run's value wins");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(ctx.steps()[1].attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_context_wide_retry_runs_a_step_that_cannot_replay_only_once() {
    let ctx = WorkflowContext::builder("HostRetry")
        .behavior(Retry::max_attempts(5))
        .build();
    let calls = AtomicU32::new(0);
    let err = Workflow::given(&ctx, "text", || "x")
        .try_when("parse", |s| {
            calls.fetch_add(1, Ordering::SeqCst);
            s.parse::<u8>()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Failed { .. }));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Made replayable, the same step is retried by the context's behavior.
    let calls = AtomicU32::new(0);
    Workflow::given(&ctx, "text", || "7")
        .try_when("parse", |s| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => "x".parse::<u8>(),
            _ => s.parse::<u8>(),
        })
        .replayable()
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_options_timeout_still_applies_outside_the_behaviors() {
    let ctx = WorkflowContext::builder("Outer")
        .options(WorkflowOptions::default().step_timeout(Duration::from_secs(1)))
        .build();
    let err = Workflow::given(&ctx, "n", || 1)
        .when_async("hangs", |n| async move {
            std::future::pending::<()>().await;
            n
        })
        .retry(Retry::max_attempts(10))
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::TimedOut { .. }));
}

#[test]
fn a_timeout_behavior_on_a_quick_step_never_touches_the_timer() {
    // No time driver on this runtime: making a timer would panic.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ctx = WorkflowContext::new("Quick");
    let out = rt.block_on(
        Workflow::given(&ctx, "n", || 1)
            .when_async("quick", |n| async move { n + 1 })
            .with(Timeout::new(Duration::from_secs(1)))
            .result(),
    );
    assert_eq!(out.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_tower_layer_wraps_a_step_as_a_behavior() {
    use workflow_runtime::behavior::TowerLayer;

    let ctx = WorkflowContext::new("Tower");
    let started = Instant::now();
    let err = Workflow::given(&ctx, "n", || 1)
        .when_async("hangs", |n| async move {
            std::future::pending::<()>().await;
            n
        })
        .with(TowerLayer::new(tower::timeout::TimeoutLayer::new(
            Duration::from_secs(3),
        )))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(
        err.to_string(),
        r#"workflow "Tower", step When "hangs" failed: request timed out"#
    );

    // A step failure passes through the layer unchanged.
    let err = Workflow::given(&ctx, "text", || "x")
        .try_when("parse", |s| s.parse::<u8>())
        .with(TowerLayer::new(tower::limit::ConcurrencyLimitLayer::new(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkflowError::Failed { ref error, .. } if error.downcast_ref::<std::num::ParseIntError>().is_some())
    );
}

/// Issue 25, point 4: the layer was applied anew on every step run, so a
/// stateful one limited nothing: `ConcurrencyLimitLayer::new(1)` let four
/// bodies run at once across four runs. Built once, it holds; and a layer
/// whose services must be `'static` (tower's `Buffer`) works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_layer_is_built_once_so_its_state_holds_across_runs() {
    use workflow_runtime::behavior::TowerLayer;
    use workflow_runtime::host::Runner;

    let running = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let runner = Runner::builder()
        .behavior(TowerLayer::new(tower::limit::ConcurrencyLimitLayer::new(1)))
        .build()
        .unwrap();
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let (runner, running, most) = (runner.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                runner
                    .run_fn("Limited", move |ctx| async move {
                        Workflow::given(&ctx, "n", move || i)
                            .when_async("busy", move |n| {
                                let (running, most) = (running.clone(), most.clone());
                                async move {
                                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                    most.fetch_max(now, Ordering::SeqCst);
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    running.fetch_sub(1, Ordering::SeqCst);
                                    n
                                }
                            })
                            .await
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap();
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "one body at a time across runs"
    );

    // A layer that spawns its service: it needs `'static` services.
    let ctx = WorkflowContext::new("Buffered");
    let n = Workflow::given(&ctx, "one", || 1)
        .when_async("buffered", |n| async move { n + 1 })
        .with(TowerLayer::new(tower::buffer::BufferLayer::new(8)))
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_with_no_backoff_starts_each_attempt_afresh_after_a_timeout() {
    // The timeout abandons an attempt and the retry asks for the next one
    // in the same poll: the step must drop the old body and start anew.
    let ctx = WorkflowContext::new("NoBackoff");
    let calls = AtomicU32::new(0);
    let started = Instant::now();
    let out = Workflow::given(&ctx, "n", || 5)
        .when_async("hangs twice", |n| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if call < 2 {
                    std::future::pending::<()>().await;
                }
                n + call
            }
        })
        .retry(Retry::max_attempts(3).backoff(Duration::ZERO))
        .timeout(ms(50))
        .await
        .unwrap();
    assert_eq!(out, 7, "the third call's own result");
    assert_eq!(started.elapsed(), ms(100));
    let step = &ctx.steps()[1];
    assert_eq!(step.attempts, 3);
    assert_eq!(step.attempt_elapsed, [ms(50), ms(50), ms(0)]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_that_is_not_send_runs_under_context_wide_behaviors() {
    // The body's future stays in the step, never inside the behaviors'
    // boxed (Send) future, so it may hold an `Rc` across an await.
    let ctx = WorkflowContext::builder("Local")
        .behavior(Timeout::new(Duration::from_secs(1)))
        .build();
    let out = Workflow::given(&ctx, "n", || 2)
        .when_async("uses an Rc", |n| async move {
            let shared = std::rc::Rc::new(n);
            tokio::task::yield_now().await;
            *shared * 21
        })
        .await
        .unwrap();
    assert_eq!(out, 42);
    assert_eq!(ctx.steps()[1].attempts, 1);
}

#[workflow_runtime::step(when = "audit")]
fn audit(n: &u32) -> bool {
    *n > 0
}

#[tokio::test(start_paused = true)]
async fn steps_called_in_each_attempt_record_under_the_retried_step() {
    let ctx = WorkflowContext::new("Audited");
    let script = Script::failing(1);
    let out = Workflow::given(&ctx, "n", || 3)
        .try_when_async("audited call", |n| {
            let script = script.clone();
            async move {
                audit(&n);
                script.call(n).await
            }
        })
        .retry(Retry::max_attempts(2).backoff(ms(10)))
        .await
        .unwrap();
    assert_eq!(out, 3);
    let steps = ctx.steps();
    let titles: Vec<_> = steps.iter().map(|s| s.title.as_ref()).collect();
    assert_eq!(titles, ["n", "audit", "audit", "audited call"]);
    assert_eq!(steps[1].parent, Some(steps[3].id));
    assert_eq!(steps[2].parent, Some(steps[3].id));
    assert_eq!(steps[3].attempts, 2);
}

/// Polls the rest of the stack only when that run's own waker has fired,
/// as `FuturesUnordered` polls its children.
struct PollsOnlyWhenWoken;

struct Gate {
    woken: std::sync::atomic::AtomicBool,
    task: Mutex<Option<std::task::Waker>>,
}

impl std::task::Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.lock().unwrap().take() {
            task.wake();
        }
    }
}

impl Behavior for PollsOnlyWhenWoken {
    fn around<'a>(&'a self, _step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            let mut run = next.run();
            let gate = Arc::new(Gate {
                woken: true.into(),
                task: Mutex::new(None),
            });
            std::future::poll_fn(|cx| {
                *gate.task.lock().unwrap() = Some(cx.waker().clone());
                if !gate.woken.swap(false, Ordering::SeqCst) {
                    return std::task::Poll::Pending;
                }
                let waker = std::task::Waker::from(gate.clone());
                run.as_mut()
                    .poll(&mut std::task::Context::from_waker(&waker))
            })
            .await
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_behavior_that_polls_next_only_on_its_own_wakeups_still_sees_the_outcome() {
    let ctx = WorkflowContext::builder("Gated")
        .behavior(PollsOnlyWhenWoken)
        .build();
    let run = Workflow::given(&ctx, "n", || 20)
        .when("doubled", |n| n * 2)
        .when_async("later", |n| async move {
            tokio::time::sleep(ms(5)).await;
            n + 2
        });
    let out = tokio::time::timeout(Duration::from_secs(1), run.into_future())
        .await
        .expect("the step finished rather than waiting forever");
    assert_eq!(out.unwrap(), 42);
}

/// Runs the rest of the stack until it succeeds, however often it fails.
struct UntilItWorks;

impl Behavior for UntilItWorks {
    fn around<'a>(&'a self, _step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            loop {
                if next.run().await.is_ok() {
                    return Ok(());
                }
            }
        })
    }
}

#[tokio::test]
async fn a_behavior_that_asks_forever_yields_so_the_step_timeout_ends_it() {
    // The step runs once and every later ask is refused at once: without a
    // budget per poll the loop would spin inside one poll forever. On the
    // real clock (a paused one only moves when the runtime idles, and this
    // task never does), the 50ms step timeout ends it.
    let ctx = WorkflowContext::builder("Insistent")
        .options(WorkflowOptions::default().step_timeout(ms(50)))
        .behavior(UntilItWorks)
        .build();
    let err = Workflow::given(&ctx, "text", || "x")
        .try_when("parsed", |s| s.parse::<u8>())
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::TimedOut { .. }), "{err}");
}

// ---- behaviors around one call inside a step ----------------------------

/// The bank a step calls: fails its first `failures` calls.
fn bank(script: &Script, cents: u32) -> impl Future<Output = Result<u32, Flaky>> + use<> {
    let script = script.clone();
    async move { script.call(cents).await }
}

#[tokio::test(start_paused = true)]
async fn a_retry_around_one_call_retries_only_that_call_and_records_it_under_the_step() {
    let ctx = WorkflowContext::new("Pay");
    let script = Script::failing(2);
    let validated = Arc::new(AtomicU32::new(0));
    let cents = Workflow::given(&ctx, "an order", || 250)
        .try_when_async("charge", |cents| {
            let (ctx, script, validated) = (ctx.clone(), script.clone(), validated.clone());
            async move {
                // Work before the call runs once, however often the call is retried.
                validated.fetch_add(1, Ordering::SeqCst);
                Retry::max_attempts(3)
                    .backoff(ms(100))
                    .call_again(&ctx, "call bank", || bank(&script, cents))
                    .await
            }
        })
        .await
        .unwrap();
    assert_eq!(cents, 250);
    assert_eq!(validated.load(Ordering::SeqCst), 1);
    assert_eq!(script.gaps(), [ms(110), ms(210)]);
    let steps = ctx.steps();
    let titles: Vec<_> = steps.iter().map(|s| s.title.to_string()).collect();
    assert_eq!(titles, ["an order", "call bank", "charge"]);
    let (call, charge) = (&steps[1], &steps[2]);
    assert_eq!(call.parent, Some(charge.id));
    assert_eq!(call.attempts, 3);
    assert_eq!(call.attempt_elapsed, [ms(10); 3]);
    assert_eq!(charge.parent, None);
    assert_eq!(charge.attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_around_one_call_opens_and_refuses_with_its_name() {
    let ctx = WorkflowContext::new("Pay");
    let breaker = breaker("bank", 2, ms(1_000));
    let script = Script::failing(10);
    let charge = |cents: u32| {
        let (ctx, breaker, script) = (ctx.clone(), breaker.clone(), script.clone());
        async move { breaker.call(&ctx, "call bank", bank(&script, cents)).await }
    };
    for expected in [1, 2] {
        let err = charge(5).await.unwrap_err();
        assert_eq!(err.downcast_ref::<Flaky>().map(|f| f.0), Some(expected));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    let refused = charge(5).await.unwrap_err();
    assert_eq!(
        refused
            .downcast_ref::<CircuitOpen>()
            .map(|open| &*open.breaker),
        Some("bank")
    );
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        2,
        "the open breaker never reached the bank"
    );
    // Made outside any step, each call is a step of its own.
    let steps = ctx.steps();
    assert_eq!(steps.len(), 3);
    assert!(
        steps
            .iter()
            .all(|s| s.parent.is_none() && s.title == "call bank")
    );
    assert!(
        steps[2].outcome.to_string().contains("bank"),
        "{}",
        steps[2].outcome
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_around_one_call_fails_the_call_with_the_workflow_and_title() {
    let ctx = WorkflowContext::new("Pay");
    let err = Workflow::given(&ctx, "an order", || 1)
        .try_when_async("charge", |n| {
            let ctx = ctx.clone();
            async move {
                Timeout::new(ms(50))
                    .call(&ctx, "call bank", async move {
                        tokio::time::sleep(ms(500)).await;
                        Ok::<_, Flaky>(n)
                    })
                    .await
            }
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "Pay", step When "charge" failed: workflow "Pay", step When "call bank" timed out after 50ms"#
    );
    let steps = ctx.steps();
    assert_eq!(steps[1].title, "call bank");
    assert!(matches!(
        steps[1].outcome,
        workflow_runtime::StepOutcome::Failed(StepFailure::TimedOut(after)) if after == ms(50)
    ));
    assert_eq!(steps[1].parent, Some(steps[2].id));
    assert_eq!(steps[1].elapsed, ms(50));
}

#[tokio::test]
async fn the_context_behaviors_wrap_the_step_not_again_the_call_inside_it() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let ctx = WorkflowContext::builder("Pay")
        .behavior(Mark("context", log.clone()))
        .build();
    Workflow::given(&ctx, "an order", || 1)
        .try_when_async("charge", |n| {
            let (ctx, log) = (ctx.clone(), log.clone());
            async move {
                ctx.around("call bank")
                    .with(Mark("call", log))
                    .run(async move { Ok::<_, Flaky>(n) })
                    .await
            }
        })
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "context>", "<context", "context>", "call>", "<call", "<context"
        ]
    );
}

#[tokio::test]
async fn a_retry_around_a_future_hands_on_its_one_failure() {
    let ctx = WorkflowContext::new("Pay");
    let err = ctx
        .around("call bank")
        .with(Retry::max_attempts(3))
        .run(async { Err::<u32, _>(Flaky(1)) })
        .await
        .unwrap_err();
    // A future runs once: the retry hands on its failure (and warns).
    assert_eq!(err.downcast_ref::<Flaky>().map(|f| f.0), Some(1));
    assert_eq!(ctx.steps()[0].attempts, 1);
}

/// Runs the rest of the stack once, unchanged. Added to a stack of
/// built-in behaviors, it makes the stack run through `Behavior::around`
/// rather than inline, so the two ways can be compared.
struct PassThrough;

impl Behavior for PassThrough {
    fn around<'a>(&'a self, _: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move { next.run().await })
    }
}

/// What one run showed: the step's record, when each attempt started
/// (from the run's start), and the breaker's state after it.
#[derive(Debug, PartialEq)]
struct Seen {
    outcome: String,
    attempts: u32,
    attempt_elapsed: Vec<Duration>,
    elapsed: Duration,
    starts: Vec<Duration>,
    /// The breaker's state as the run left it...
    breaker_after_run: CircuitState,
    /// ...and after one more call through it.
    breaker: CircuitState,
}

/// Stacks of built-in behaviors, outermost first.
#[derive(Clone, Copy, Debug)]
enum Stack {
    /// A timeout limits each of the retry's attempts: two hang, the third passes.
    RetryOutsideTimeout,
    /// A timeout limits all the attempts and the backoffs between them.
    TimeoutOutsideRetry,
    /// The retry goes on through a breaker that opens under it.
    RetryOutsideBreaker,
    /// A timeout drops the breaker's half-open trial, which frees the trial.
    TimeoutOutsideBreaker,
    /// A timeout whose deadline falls where the retry's backoff ends.
    TimeoutOnBackoff,
    /// A retry whose filter panics: the step fails with the panic.
    PanickingFilter,
}

/// How a stack of built-in behaviors is run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    /// The step's own, in its type (`.retry(..)`, `.timeout(..)`,
    /// `.circuit_breaker(..)`), with nothing else around the step.
    Own,
    /// In the step's list (`.with(..)`): the inline runner.
    Inline,
    /// In the list with a pass-through behavior inside them: each runs
    /// through its `around`.
    General,
}

/// How long a step's quick attempts take.
#[derive(Clone, Copy, Debug)]
enum Quick {
    /// 5ms.
    Waits,
    /// No time at all: ready at their first poll, the way most attempts
    /// end, which a step's own built-ins let through before they run.
    AtOnce,
}

/// Runs `stack` around a step whose attempt `n` takes 20ms if `n <= slow`
/// (`quick` otherwise) and fails if `n <= failures`, on `path`.
async fn run_stack_case(
    stack: Stack,
    (slow, quick): (u32, Quick),
    failures: u32,
    path: Path,
) -> Seen {
    let breaker = breaker("compared", 2, ms(1_000));
    if let Stack::TimeoutOutsideBreaker = stack {
        // Tripped before, and now due for its half-open trial.
        for _ in 0..2 {
            let _ = call_through(&breaker, true).await;
        }
        tokio::time::advance(ms(1_000)).await;
    }
    let calls = AtomicU32::new(0);
    let starts = Mutex::new(Vec::new());
    let ctx = WorkflowContext::new("Compared");
    let begun = Instant::now();
    let retry = Retry::max_attempts(4).backoff(ms(10));
    let work = |n| {
        starts.lock().unwrap().push(begun.elapsed());
        let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            match (call <= slow, quick) {
                (true, _) => tokio::time::sleep(ms(20)).await,
                (false, Quick::Waits) => tokio::time::sleep(ms(5)).await,
                (false, Quick::AtOnce) => {}
            }
            if call <= failures {
                Err(Flaky(call))
            } else {
                Ok(n)
            }
        }
    };
    let chain = || Workflow::given(&ctx, "n", || 1u32).try_when_async("work", work);
    if path == Path::Own {
        let b = breaker.clone();
        let _ = match stack {
            Stack::RetryOutsideTimeout => chain().retry(retry).timeout(ms(15)).await,
            Stack::TimeoutOutsideRetry => chain().timeout(ms(50)).retry(retry).await,
            Stack::RetryOutsideBreaker => chain().retry(retry).circuit_breaker(b).await,
            Stack::TimeoutOutsideBreaker => chain().timeout(ms(10)).circuit_breaker(b).await,
            Stack::TimeoutOnBackoff => chain().timeout(ms(15)).retry(retry).await,
            Stack::PanickingFilter => {
                chain()
                    .retry(retry.filter(|_| panic!("filter broke")))
                    .await
            }
        };
    } else {
        let chain = chain().replayable();
        let chain = match stack {
            Stack::RetryOutsideTimeout => chain.with(retry).with(Timeout::new(ms(15))),
            Stack::TimeoutOutsideRetry => chain.with(Timeout::new(ms(50))).with(retry),
            Stack::RetryOutsideBreaker => chain.with(retry).with(breaker.clone()),
            Stack::TimeoutOutsideBreaker => chain.with(Timeout::new(ms(10))).with(breaker.clone()),
            Stack::TimeoutOnBackoff => chain.with(Timeout::new(ms(15))).with(retry),
            Stack::PanickingFilter => chain.with(retry.filter(|_| panic!("filter broke"))),
        };
        let _ = if path == Path::General {
            chain.with(PassThrough).await
        } else {
            chain.await
        };
    }
    let step = ctx.steps().into_iter().find(|s| s.title == "work").unwrap();
    let breaker_after_run = breaker.state();
    if let Stack::TimeoutOutsideBreaker = stack {
        // The dropped trial left the slot free: the next call is the trial.
        call_through(&breaker, false).await.unwrap();
    }
    Seen {
        outcome: step.outcome.to_string(),
        attempts: step.attempts,
        attempt_elapsed: step.attempt_elapsed,
        elapsed: step.elapsed,
        starts: starts.into_inner().unwrap(),
        breaker_after_run,
        breaker: breaker.state(),
    }
}

#[tokio::test(start_paused = true)]
async fn built_in_behaviors_run_by_their_types_and_inline_exactly_as_through_their_around() {
    use Quick::{AtOnce, Waits};
    let cases = [
        (Stack::RetryOutsideTimeout, (2, Waits), 0),
        (Stack::TimeoutOutsideRetry, (0, Waits), 4),
        (Stack::RetryOutsideBreaker, (0, Waits), 4),
        (Stack::TimeoutOutsideBreaker, (1, Waits), 0),
        (Stack::TimeoutOnBackoff, (0, Waits), 4),
        (Stack::PanickingFilter, (0, Waits), 4),
        // Attempts ready at their first poll, as most are.
        (Stack::RetryOutsideBreaker, (0, AtOnce), 4),
        (Stack::RetryOutsideBreaker, (0, AtOnce), 1),
        (Stack::TimeoutOutsideBreaker, (0, AtOnce), 0),
        (Stack::RetryOutsideTimeout, (1, AtOnce), 0),
        (Stack::PanickingFilter, (0, AtOnce), 4),
    ];
    let mut seen = Vec::new();
    for (stack, time, failures) in cases {
        let own = run_stack_case(stack, time, failures, Path::Own).await;
        let inline = run_stack_case(stack, time, failures, Path::Inline).await;
        let general = run_stack_case(stack, time, failures, Path::General).await;
        assert_eq!(inline, general, "{stack:?} {time:?}");
        assert_eq!(own, general, "{stack:?} {time:?}");
        seen.push(own);
    }
    // What the runs were, so agreeing cannot mean both ran nothing.
    let [
        timed,
        limited,
        refused,
        trial,
        on_backoff,
        panicked,
        refused_at_once,
        retried_at_once,
        trial_at_once,
        timed_then_at_once,
        panicked_at_once,
    ] = &seen[..]
    else {
        unreachable!()
    };
    // Two attempts dropped at 15ms, 10ms and 20ms of backoff, one that passed.
    assert_eq!(timed.outcome, "passed");
    assert_eq!(timed.starts, [ms(0), ms(25), ms(60)]);
    assert_eq!(timed.attempt_elapsed, [ms(15), ms(15), ms(5)]);
    // Attempts at 0, 15 and 40ms; the 50ms limit falls in the third backoff.
    assert_eq!(limited.outcome, "timed out after 50ms");
    assert_eq!(limited.starts, [ms(0), ms(15), ms(40)]);
    assert_eq!(limited.elapsed, ms(50));
    // Two failures open the breaker; it refuses the last two attempts,
    // whose bodies never start.
    assert_eq!(refused.attempts, 2);
    assert_eq!(refused.starts, [ms(0), ms(15)]);
    assert!(refused.outcome.contains("compared"), "{}", refused.outcome);
    assert_eq!(refused.breaker, CircuitState::Open);
    assert_eq!(trial.outcome, "timed out after 10ms");
    assert_eq!(trial.breaker, CircuitState::Closed);
    // The attempt at 0ms fails at 5ms; its 10ms backoff ends on the limit,
    // and the next attempt does not start.
    assert_eq!(on_backoff.outcome, "timed out after 15ms");
    assert_eq!(on_backoff.starts, [ms(0)]);
    assert!(
        panicked.outcome.contains("filter broke"),
        "{}",
        panicked.outcome
    );
    assert_eq!(panicked.starts, [ms(0)]);
    // Failures at once: two open the breaker, which refuses the next two.
    assert_eq!(refused_at_once.attempts, 2);
    assert_eq!(refused_at_once.starts, [ms(0), ms(10)]);
    assert_eq!(refused_at_once.breaker, CircuitState::Open);
    // One failure at once, then a pass at once after the 10ms backoff.
    assert_eq!(retried_at_once.outcome, "passed");
    assert_eq!(retried_at_once.attempts, 2);
    assert_eq!(retried_at_once.attempt_elapsed, [ms(0), ms(0)]);
    assert_eq!(retried_at_once.breaker, CircuitState::Closed);
    // The half-open trial passes at its first poll and closes the circuit.
    assert_eq!(trial_at_once.outcome, "passed");
    assert_eq!(trial_at_once.attempts, 1);
    assert_eq!(trial_at_once.breaker_after_run, CircuitState::Closed);
    // Dropped by the timeout, the trial left the circuit half-open, and
    // free for the next call, which closed it.
    assert_eq!(trial.breaker_after_run, CircuitState::HalfOpen);
    // One attempt dropped at 15ms, then one that passes at once.
    assert_eq!(timed_then_at_once.outcome, "passed");
    assert_eq!(timed_then_at_once.starts, [ms(0), ms(25)]);
    assert!(
        panicked_at_once.outcome.contains("filter broke"),
        "{}",
        panicked_at_once.outcome
    );
    assert_eq!(panicked_at_once.attempts, 1);
}

/// A 5ms wait for the value 7 that counts its polls: two, the first and
/// the one after its timer fired, unless something polls it for nothing.
struct CountedWait<'a> {
    polls: &'a AtomicU32,
    wait: Pin<Box<tokio::time::Sleep>>,
}

impl Future for CountedWait<'_> {
    type Output = Result<u32, Flaky>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.wait.as_mut().poll(cx).map(|()| Ok(7))
    }
}

/// A step's own built-ins start its first attempt before they run it;
/// when that attempt waits, they take it up without polling it again in
/// the same poll, every way they are stacked, and a half-open breaker's
/// trial that waited is closed by its pass.
#[tokio::test(start_paused = true)]
async fn an_attempt_that_waits_is_polled_once_per_wake_under_a_steps_own_behaviors() {
    let breaker = breaker("polled", 2, ms(1_000));
    for _ in 0..2 {
        let _ = call_through(&breaker, true).await;
    }
    tokio::time::advance(ms(1_000)).await;
    for stack in 0..4 {
        let polls = AtomicU32::new(0);
        let ctx = WorkflowContext::new("Polled");
        let chain =
            Workflow::given(&ctx, "n", || 1u32).try_when_async("waits once", |_| CountedWait {
                polls: &polls,
                wait: Box::pin(tokio::time::sleep(ms(5))),
            });
        let out = match stack {
            0 => chain.retry(Retry::max_attempts(2)).await,
            1 => chain.timeout(ms(1_000)).await,
            2 => chain.circuit_breaker(breaker.clone()).await,
            _ => {
                chain
                    .retry(Retry::max_attempts(2))
                    .timeout(ms(1_000))
                    .circuit_breaker(breaker.clone())
                    .await
            }
        };
        assert_eq!(out.unwrap(), 7, "stack {stack}");
        assert_eq!(polls.load(Ordering::SeqCst), 2, "stack {stack}");
        assert_eq!(ctx.steps()[1].attempts, 1, "stack {stack}");
        // Tripped before, the breaker was due for its trial: this one.
        let state = breaker.state();
        let expected = if stack < 2 {
            CircuitState::HalfOpen
        } else {
            CircuitState::Closed
        };
        assert_eq!(state, expected, "stack {stack}");
    }
}

/// Two breakers on one step, the inner one open: it refuses the step,
/// whose body never runs, and the outer one, which had let the step in,
/// hears the refusal as a failure (a half-open outer one's trial fails
/// and opens it again). The same by the step's types as through the
/// breakers' `around`.
#[tokio::test(start_paused = true)]
async fn an_inner_breaker_that_refuses_is_heard_by_the_outer_one_every_way() {
    for (path, outer_half_open) in [
        (Path::Own, false),
        (Path::General, false),
        (Path::Own, true),
        (Path::General, true),
    ] {
        let outer = breaker("outer", 1, ms(1_000));
        let inner = breaker("inner", 1, ms(5_000));
        let _ = call_through(&inner, true).await;
        if outer_half_open {
            let _ = call_through(&outer, true).await;
            tokio::time::advance(ms(1_000)).await;
            assert_eq!(outer.state(), CircuitState::HalfOpen);
        }
        assert_eq!(inner.state(), CircuitState::Open);
        let calls = AtomicU32::new(0);
        let ctx = WorkflowContext::new("Nested");
        let chain = Workflow::given(&ctx, "n", || 1u32).try_when("work", |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<u32, Flaky>(n)
        });
        let out = match path {
            Path::Own => {
                chain
                    .circuit_breaker(outer.clone())
                    .circuit_breaker(inner.clone())
                    .await
            }
            _ => {
                chain
                    .replayable()
                    .with(outer.clone())
                    .with(inner.clone())
                    .with(PassThrough)
                    .await
            }
        };
        let seen = format!("{path:?}, outer half-open: {outer_half_open}");
        let err = out.unwrap_err();
        assert!(is_open_rejection(&err), "{seen}: {err}");
        assert!(err.to_string().contains("inner"), "{seen}: {err}");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{seen}");
        assert_eq!(outer.state(), CircuitState::Open, "{seen}");
    }
}

/// Where the 30ms limit around [`quick_failures`] sits.
#[derive(Clone, Copy, Debug)]
enum Limit {
    /// A timeout behavior wrapping the retry.
    AroundTheRetry,
    /// The options' step timeout, outside every behavior (the retry has
    /// no timeout of its own).
    StepTimeout,
}

/// A step that blocks its thread for 12ms and fails, retried with no
/// backoff under a 30ms `limit`: no attempt ever waits, so only a check
/// before each new attempt can see the time run out. The record, and when
/// each attempt started, from just before the run.
async fn quick_failures(limit: Limit, path: Path) -> (StepRecord, Vec<Duration>) {
    let options = match limit {
        Limit::AroundTheRetry => WorkflowOptions::default(),
        Limit::StepTimeout => WorkflowOptions::default().step_timeout(ms(30)),
    };
    let ctx = WorkflowContext::builder("Quick").options(options).build();
    let starts = Mutex::new(Vec::new());
    let begun = std::time::Instant::now();
    let chain = Workflow::given(&ctx, "n", || 1u32).try_when("work", |n| {
        starts.lock().unwrap().push(begun.elapsed());
        std::thread::sleep(ms(12));
        Err::<u32, _>(Flaky(n))
    });
    let retry = Retry::max_attempts(100).backoff(Duration::ZERO);
    let _ = match (limit, path) {
        (Limit::AroundTheRetry, Path::Own) => chain.timeout(ms(30)).retry(retry).await,
        (Limit::AroundTheRetry, Path::Inline) => {
            chain.with(Timeout::new(ms(30))).retry(retry).await
        }
        (Limit::AroundTheRetry, Path::General) => {
            chain
                .with(Timeout::new(ms(30)))
                .retry(retry)
                .with(PassThrough)
                .await
        }
        (Limit::StepTimeout, Path::Own) => chain.retry(retry).await,
        (Limit::StepTimeout, Path::Inline) => chain.replayable().with(retry).await,
        (Limit::StepTimeout, Path::General) => {
            chain.replayable().with(retry).with(PassThrough).await
        }
    };
    let step = ctx.steps().into_iter().find(|s| s.title == "work").unwrap();
    (step, starts.into_inner().unwrap())
}

/// Runs [`quick_failures`] under `limit` every way and checks what holds
/// for each: the step timed out at 30ms and no attempt started past it.
/// Attempts start at 0, 12 and 24ms; the third ends past the limit, and
/// no fourth starts (a check that waited for the timer to fire would
/// start one at 36ms or later). Starts are read from before the run and
/// after each check, hence a margin short of that. The records, and when
/// their attempts started, by path.
async fn no_attempt_starts_past(limit: Limit) -> Vec<(Path, StepRecord, Vec<Duration>)> {
    let mut runs = Vec::new();
    for path in [Path::Own, Path::Inline, Path::General] {
        let (step, starts) = quick_failures(limit, path).await;
        assert_eq!(step.outcome.to_string(), "timed out after 30ms", "{path:?}");
        assert!(
            !starts.is_empty() && starts.iter().all(|start| *start < ms(33)),
            "{path:?}: attempts started at {starts:?}"
        );
        runs.push((path, step, starts));
    }
    runs
}

// On the real clock: the body blocks the thread, which paused time cannot
// see. Bounded: at most 100 attempts of 12ms.
#[tokio::test]
async fn an_outer_timeout_ends_a_retry_of_quick_failures_every_way() {
    for (path, step, starts) in no_attempt_starts_past(Limit::AroundTheRetry).await {
        assert_eq!(step.attempts as usize, starts.len(), "{path:?}");
    }
}

// On the real clock, as above. Before each new attempt the retry sees the
// step's time is up, where it used to go on until it had made 32 attempts
// in one poll (or, with a body that waits, started one more).
#[tokio::test]
async fn the_step_timeout_ends_a_retry_of_quick_failures_every_way() {
    no_attempt_starts_past(Limit::StepTimeout).await;
}

// A run cancelled while its step's retry goes on: no attempt starts after.
// On the paused clock, so the retry's zero backoff is over at once and the
// check before the next attempt, not the step's own look at cancellation
// while it waits, is what stops it.
#[tokio::test(start_paused = true)]
async fn a_cancelled_run_starts_no_further_attempt_every_way() {
    for path in [Path::Own, Path::Inline, Path::General] {
        let ctx = WorkflowContext::new("Cancelled");
        let calls = AtomicU32::new(0);
        let chain = Workflow::given(&ctx, "n", || 1u32).try_when("work", |n| {
            // The first attempt's failure comes with the run cancelled.
            calls.fetch_add(1, Ordering::SeqCst);
            ctx.cancel();
            Err::<u32, _>(Flaky(n))
        });
        let retry = Retry::max_attempts(5).backoff(Duration::ZERO);
        let err = match path {
            Path::Own => chain.retry(retry).await,
            Path::Inline => chain.replayable().with(retry).await,
            Path::General => chain.replayable().with(retry).with(PassThrough).await,
        }
        .unwrap_err();
        assert!(
            matches!(err, WorkflowError::Cancelled { .. }),
            "{path:?}: {err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{path:?}");
    }
}

/// Issue 25, point 5: a sync step that panicked under a behavior recorded
/// `attempts = 0` and no attempt times though its body ran each time: the
/// attempt was counted only once its future existed, and a sync body
/// panics while it is made. On the inline path (built-in retry) and the
/// general one (a custom behavior around the retry).
#[tokio::test(start_paused = true)]
async fn a_sync_step_that_panics_under_a_retry_counts_its_attempts() {
    for custom in [false, true] {
        let ran = Arc::new(AtomicU32::new(0));
        let ctx = WorkflowContext::new("Panics");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let chain = Workflow::given(&ctx, "n", || 1)
            .when("explodes", {
                let ran = ran.clone();
                move |_: i32| -> i32 {
                    ran.fetch_add(1, Ordering::SeqCst);
                    panic!("boom")
                }
            })
            .replayable()
            .retry(Retry::max_attempts(3).backoff(ms(10)));
        let err = if custom {
            chain.with(Mark("outer", seen.clone())).await.unwrap_err()
        } else {
            chain.await.unwrap_err()
        };
        assert!(matches!(err, WorkflowError::Panicked { .. }), "{err}");
        assert_eq!(ran.load(Ordering::SeqCst), 3, "custom: {custom}");
        let step = &ctx.steps()[1];
        assert_eq!(step.attempts, 3, "custom: {custom}");
        assert_eq!(step.attempt_elapsed.len(), 3, "custom: {custom}");
    }
}
