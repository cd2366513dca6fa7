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
