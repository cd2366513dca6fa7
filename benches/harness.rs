//! A small timing harness: runs each case in interleaved rounds on one
//! runtime and reports the median per-iteration time, so cases measured in
//! one run share the machine's conditions.

use std::future::Future;
use std::time::{Duration, Instant};

/// One measured case.
pub struct Case {
    pub name: &'static str,
    pub per_iter: Duration,
}

/// Times `f` once over `iters` iterations.
pub fn time_async<F, Fut>(rt: &tokio::runtime::Runtime, iters: u32, f: &F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            f().await;
        }
        start.elapsed() / iters
    })
}

/// Median of `rounds` interleaved measurements per case.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub fn report(title: &str, baseline: &Case, cases: &[Case]) {
    println!("{title}");
    println!(
        "  {:<44} {:>12}",
        baseline.name,
        format!("{:.1?}", baseline.per_iter)
    );
    for case in cases {
        let ratio = case.per_iter.as_secs_f64() / baseline.per_iter.as_secs_f64();
        println!(
            "  {:<44} {:>12}   ratio {:.2}",
            case.name,
            format!("{:.1?}", case.per_iter),
            ratio
        );
    }
}

/// The case to run alone, and how many times, when `report.sh` counts
/// instructions under callgrind (`WORKFLOW_BENCH_CASE`,
/// `WORKFLOW_BENCH_ITERS`); `None` for a timed run.
pub fn instructions_mode() -> Option<(String, u32)> {
    let case = std::env::var("WORKFLOW_BENCH_CASE").ok()?;
    let iters = std::env::var("WORKFLOW_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    Some((case, iters))
}

/// In instruction mode, runs `f` if it is the case asked for. Callgrind
/// counts the whole process, so the script runs each case at two
/// iteration counts and keeps the difference: setup cancels out.
pub fn run_case<F, Fut>(rt: &tokio::runtime::Runtime, mode: &(String, u32), name: &str, f: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    if mode.0 == name {
        time_async(rt, mode.1, f);
    }
}
