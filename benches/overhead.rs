//! Step overhead and allocations: a 10-step workflow of trivial steps (five
//! sync, five async) as (a) a `#[workflow]`, (b) the fluent chain, (c)
//! hand-written async code making the same calls and recording the same
//! per-step timings in a `Vec`, (d) bare calls with no recording, and
//! (e) the floor: hand-written code keeping what the engine keeps for
//! every step (`common/step_floor.rs`).
//!
//! `cargo bench --bench overhead`

#[path = "harness.rs"]
mod harness;
#[path = "common/step_floor.rs"]
mod step_floor;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harness::{Case, median, report, time_async};
use workflow_runtime::prelude::*;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn inc(n: u64) -> u64 {
    black_box(n) + 1
}

async fn inc_async(n: u64) -> u64 {
    black_box(n) + 1
}

struct TenSteps;

#[workflow]
impl TenSteps {
    #[step(given = "start")]
    fn s0(&self, n: u64) -> u64 {
        inc(n)
    }
    #[step(when = "s1")]
    async fn s1(&self, n: u64) -> u64 {
        inc_async(n).await
    }
    #[step(when = "s2")]
    fn s2(&self, n: u64) -> u64 {
        inc(n)
    }
    #[step(when = "s3")]
    async fn s3(&self, n: u64) -> u64 {
        inc_async(n).await
    }
    #[step(when = "s4")]
    fn s4(&self, n: u64) -> u64 {
        inc(n)
    }
    #[step(when = "s5")]
    async fn s5(&self, n: u64) -> u64 {
        inc_async(n).await
    }
    #[step(when = "s6")]
    fn s6(&self, n: u64) -> u64 {
        inc(n)
    }
    #[step(when = "s7")]
    async fn s7(&self, n: u64) -> u64 {
        inc_async(n).await
    }
    #[step(when = "s8")]
    fn s8(&self, n: u64) -> u64 {
        inc(n)
    }
    #[step(when = "s9")]
    async fn s9(&self, n: u64) -> u64 {
        inc_async(n).await
    }
}

async fn chain(ctx: &WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Workflow::given(ctx, "start", move || inc(n))
        .when_async("s1", inc_async)
        .when("s2", inc)
        .when_async("s3", inc_async)
        .when("s4", inc)
        .when_async("s5", inc_async)
        .when("s6", inc)
        .when_async("s7", inc_async)
        .when("s8", inc)
        .when_async("s9", inc_async)
        .await
}

/// What a careful user writes instead: the same calls, each recorded as
/// the engine records it (kind, title, elapsed, outcome) into a `Vec`.
async fn by_hand(n: u64) -> (u64, Vec<(&'static str, &'static str, Duration, bool)>) {
    let mut log = Vec::with_capacity(10);
    let mut t = tokio::time::Instant::now();
    let mut mark = |kind, title, log: &mut Vec<_>| {
        let now = tokio::time::Instant::now();
        log.push((kind, title, now - t, true));
        t = now;
    };
    let n = inc(n);
    mark("Given", "start", &mut log);
    let n = inc_async(n).await;
    mark("When", "s1", &mut log);
    let n = inc(n);
    mark("When", "s2", &mut log);
    let n = inc_async(n).await;
    mark("When", "s3", &mut log);
    let n = inc(n);
    mark("When", "s4", &mut log);
    let n = inc_async(n).await;
    mark("When", "s5", &mut log);
    let n = inc(n);
    mark("When", "s6", &mut log);
    let n = inc_async(n).await;
    mark("When", "s7", &mut log);
    let n = inc(n);
    mark("When", "s8", &mut log);
    let n = inc_async(n).await;
    mark("When", "s9", &mut log);
    (n, log)
}

/// The same steps with the engine's guarantees kept by hand: the floor
/// under any shape of the engine (see `common/step_floor.rs`).
async fn floor(ctx: &WorkflowContext, n: u64) -> Result<u64, step_floor::Stopped> {
    use StepKind::{Given, When};
    let mut run = step_floor::Guarded::new(ctx);
    let n = run.sync(Given, "start", || inc(n))?;
    let n = run.step(When, "s1", inc_async(n)).await?;
    let n = run.sync(When, "s2", || inc(n))?;
    let n = run.step(When, "s3", inc_async(n)).await?;
    let n = run.sync(When, "s4", || inc(n))?;
    let n = run.step(When, "s5", inc_async(n)).await?;
    let n = run.sync(When, "s6", || inc(n))?;
    let n = run.step(When, "s7", inc_async(n)).await?;
    let n = run.sync(When, "s8", || inc(n))?;
    run.step(When, "s9", inc_async(n)).await
}

async fn bare(n: u64) -> u64 {
    let n = inc(n);
    let n = inc_async(n).await;
    let n = inc(n);
    let n = inc_async(n).await;
    let n = inc(n);
    let n = inc_async(n).await;
    let n = inc(n);
    let n = inc_async(n).await;
    let n = inc(n);
    inc_async(n).await
}

fn count<F: FnOnce()>(f: F) -> (usize, usize) {
    let (a, b) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    f();
    (
        ALLOCS.load(Ordering::Relaxed) - a,
        BYTES.load(Ordering::Relaxed) - b,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let iters = 20_000;
    let rounds = 15;

    // Each run has its own context, as the runner gives it.
    let macro_run = || async {
        let ctx = TenSteps::context().build();
        black_box(TenSteps.run(&ctx, 1).await.unwrap());
    };
    let chain_run = || async {
        let ctx = WorkflowContext::new("TenSteps");
        black_box(chain(&ctx, 1).await.unwrap());
    };
    let hand_run = || async {
        black_box(by_hand(1).await);
    };
    let bare_run = || async {
        black_box(bare(1).await);
    };
    let floor_run = || async {
        let ctx = TenSteps::context().build();
        black_box(floor(&ctx, 1).await.unwrap());
    };
    if let Some(mode) = harness::instructions_mode() {
        harness::run_case(&rt, &mode, "workflow", &macro_run);
        harness::run_case(&rt, &mode, "chain", &chain_run);
        harness::run_case(&rt, &mode, "hand", &hand_run);
        harness::run_case(&rt, &mode, "bare", &bare_run);
        harness::run_case(&rt, &mode, "floor", &floor_run);
        return;
    }

    let (mut a, mut b, mut c, mut d, mut e) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        a.push(time_async(&rt, iters, &macro_run));
        b.push(time_async(&rt, iters, &chain_run));
        c.push(time_async(&rt, iters, &hand_run));
        d.push(time_async(&rt, iters, &bare_run));
        e.push(time_async(&rt, iters, &floor_run));
    }
    let (a, b, c, d, e) = (median(a), median(b), median(c), median(d), median(e));
    {
        let ctx = WorkflowContext::new("TenSteps");
        let run = TenSteps.run(&ctx, 1);
        println!(
            "future sizes: #[workflow] run {} bytes, hand-written {} bytes",
            std::mem::size_of_val(&run),
            std::mem::size_of_val(&by_hand(1))
        );
    }
    let hand = Case {
        name: "(c) hand-written, records in a Vec",
        per_iter: c,
    };
    report(
        "10-step workflow, per run (median of 15 rounds)",
        &hand,
        &[
            Case {
                name: "(a) #[workflow]",
                per_iter: a,
            },
            Case {
                name: "(b) fluent chain",
                per_iter: b,
            },
            Case {
                name: "(d) bare calls, nothing recorded",
                per_iter: d,
            },
            Case {
                name: "(e) floor: the engine's guarantees by hand",
                per_iter: e,
            },
        ],
    );
    println!(
        "  ratio (a)/(c) {:.2}   (b)/(c) {:.2}   (a)/(d) {:.0}   (e)/(c) {:.2}   (a)/(e) {:.2}",
        a.as_secs_f64() / c.as_secs_f64(),
        b.as_secs_f64() / c.as_secs_f64(),
        a.as_secs_f64() / d.as_secs_f64(),
        e.as_secs_f64() / c.as_secs_f64(),
        a.as_secs_f64() / e.as_secs_f64()
    );

    // Allocations: the context is made outside, then one run is counted.
    println!("heap allocations per run (context made outside the count)");
    for (name, per_run) in [
        ("(a) #[workflow]", {
            let ctx = TenSteps::context().build();
            rt.block_on(TenSteps.run(&ctx, 1)).unwrap();
            let ctx = TenSteps::context().build();
            count(|| drop(rt.block_on(TenSteps.run(&ctx, 1))))
        }),
        ("(b) fluent chain", {
            let ctx = WorkflowContext::new("TenSteps");
            count(|| drop(rt.block_on(chain(&ctx, 1))))
        }),
        (
            "context creation",
            count(|| drop(TenSteps::context().build())),
        ),
    ] {
        println!(
            "  {name:<44} {:>3} allocations, {:>5} bytes ({:.1} per step)",
            per_run.0,
            per_run.1,
            per_run.0 as f64 / 10.0
        );
    }
}
