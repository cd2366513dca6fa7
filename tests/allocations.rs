//! Heap allocations on the plain path, counted by a global allocator.
//!
//! Each thread counts its own allocations, so tests (and the test
//! harness) allocating on other threads never show up in a count; the
//! runs counted here run on a current-thread runtime, on the test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use workflow_runtime::prelude::*;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn counted() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn a_three_step_chain_allocates_only_its_step_records() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // Warm up thread-locals and the runtime.
    let warm = WorkflowContext::new("Warm");
    rt.block_on(
        Workflow::given(&warm, "g", || 1)
            .when("w", |n| n)
            .into_future(),
    )
    .unwrap();

    let (ctx, context_allocs) = count(|| WorkflowContext::new("Calculator"));
    // The shared context and its name.
    assert!(context_allocs <= 2, "context: {context_allocs} allocations");

    let (sum, run_allocs) = count(|| {
        rt.block_on(
            Workflow::given(&ctx, "two numbers", || (10, 5))
                .when_async("they are added", |(a, b)| async move { a + b })
                .then("the sum is correct", |sum| *sum == 15)
                .into_future(),
        )
    });
    assert_eq!(sum.unwrap(), 15);
    // The step-record vector grows once (room for 16); steps themselves
    // allocate nothing.
    assert_eq!(run_allocs, 1, "run: {run_allocs} allocations");

    // A one-step run on the same context fits in the records' spare
    // capacity: no allocation at all.
    let (_, again) = count(|| rt.block_on(Workflow::given(&ctx, "one more", || 1).into_future()));
    assert_eq!(again, 0);
}

struct ThreeSteps;

#[workflow]
impl ThreeSteps {
    #[step(given = "two numbers")]
    fn numbers(&self) -> (i32, i32) {
        (10, 5)
    }

    #[step(when = "they are added")]
    async fn add(&self, (a, b): (i32, i32)) -> i32 {
        a + b
    }

    #[step(then = "the sum is correct")]
    fn correct(&self, sum: &i32) -> bool {
        *sum == 15
    }
}

#[test]
fn a_workflow_run_allocates_nothing_once_its_context_exists() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let warm = ThreeSteps::context().build();
    rt.block_on(ThreeSteps.run(&warm, ())).unwrap();

    // The definition's context makes room for its three records up front,
    // and keeps the definition's name as the static string it is: the
    // shared context and the records' room, nothing else.
    let (ctx, context_allocs) = count(|| ThreeSteps::context().build());
    assert_eq!(context_allocs, 2, "context: {context_allocs} allocations");
    let (sum, run_allocs) = count(|| rt.block_on(ThreeSteps.run(&ctx, ())));
    assert_eq!(sum.unwrap(), 15);
    assert_eq!(run_allocs, 0, "run: {run_allocs} allocations");
    assert_eq!(ctx.steps().len(), 3);
}

#[test]
fn a_step_under_retry_timeout_and_breaker_allocates_nothing() {
    use std::time::Duration;
    use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker, Retry};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("bank", BreakerConfig::default());
    let run = |ctx: &WorkflowContext| {
        rt.block_on(
            Workflow::given(ctx, "cents", || 250u32)
                .try_when_async(
                    "charge",
                    |cents| async move { Ok::<_, std::io::Error>(cents) },
                )
                .retry(Retry::max_attempts(3))
                .timeout(Duration::from_secs(30))
                .circuit_breaker(breaker.clone())
                .into_future(),
        )
    };
    let warm = WorkflowContext::new("Warm");
    run(&warm).unwrap();

    let ctx = WorkflowContext::new("Pay");
    // Room for the records first, so only the step's own are counted.
    run(&ctx).unwrap();
    let (cents, allocs) = count(|| run(&ctx));
    assert_eq!(cents.unwrap(), 250);
    // The three behaviors are the step's own, kept in its type with their
    // states in its future: no list of them, no box for their runner, no
    // timer while nothing waits. (In the step's list, as `.with(..)` puts
    // them, the list and the inline runner's state are two allocations;
    // run through each behavior's `around`, more.)
    assert_eq!(allocs, 0, "run: {allocs} allocations");
    assert_eq!(ctx.steps().last().unwrap().attempts, 1);
}

#[test]
fn a_step_that_waits_under_a_step_timeout_boxes_its_waits_once() {
    use std::time::Duration;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let run = |ctx: &WorkflowContext| {
        rt.block_on(
            Workflow::given(ctx, "n", || 1u32)
                .when_async("waits once", |n| async move {
                    PendingOnce(false).await;
                    n + 1
                })
                .into_future(),
        )
    };
    let options = WorkflowOptions::default().step_timeout(Duration::from_secs(30));
    let warm = WorkflowContext::builder("Warm")
        .options(options.clone())
        .build();
    run(&warm).unwrap();

    let ctx = WorkflowContext::builder("Waits").options(options).build();
    // Room for the records first, and the context's cancellation token,
    // made by the first step that waits, so only the step's own are counted.
    run(&ctx).unwrap();
    let (n, allocs) = count(|| run(&ctx));
    assert_eq!(n.unwrap(), 2);
    // The step timeout's timer and the run's cancellation watch, boxed
    // together once the step returns `Pending` (they were a box each).
    assert_eq!(allocs, 1, "run: {allocs} allocations");
}

/// Returns `Pending` once, having woken its task: a wait that allocates
/// nothing itself (`yield_now` defers its waker into a list the runtime
/// makes for each `block_on`).
struct PendingOnce(bool);

impl std::future::Future for PendingOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
