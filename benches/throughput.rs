//! Runner throughput: 1,000,000 runs of a 3-step workflow through the
//! runner on both cores, against spawning the same async fn directly.
//! Prints runs per second and the ratio runner / raw spawn.
//!
//! `cargo bench --bench throughput`

#[path = "harness.rs"]
#[allow(dead_code)]
mod harness;

use std::hint::black_box;
use std::time::Instant;

use tokio::task::JoinSet;
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;

const RUNS: u64 = 1_000_000;
const IN_FLIGHT: usize = 10_000;

async fn load(n: u64) -> u64 {
    black_box(n) + 1
}

async fn price(n: u64) -> Result<u64, std::fmt::Error> {
    Ok(black_box(n) * 2)
}

struct Quote;

#[workflow]
impl Quote {
    #[step(given = "an id")]
    fn id(&self, n: u64) -> u64 {
        n
    }

    #[step(when = "loaded")]
    async fn load(&self, n: u64) -> u64 {
        load(n).await
    }

    #[step(and = "priced")]
    async fn price(&self, n: u64) -> Result<u64, std::fmt::Error> {
        price(n).await
    }
}

async fn raw(n: u64) -> Result<u64, std::fmt::Error> {
    price(load(n).await).await
}

/// Spawns `RUNS` tasks, at most `IN_FLIGHT` at a time; runs per second.
async fn drive<F, Fut>(make: F) -> f64
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let start = Instant::now();
    let mut set = JoinSet::new();
    let mut ok = 0u64;
    for n in 0..RUNS {
        if set.len() >= IN_FLIGHT {
            ok += u64::from(set.join_next().await.unwrap().unwrap());
        }
        set.spawn(make(n));
    }
    while let Some(done) = set.join_next().await {
        ok += u64::from(done.unwrap());
    }
    assert_eq!(ok, RUNS);
    RUNS as f64 / start.elapsed().as_secs_f64()
}

/// Instruction mode: one run at a time on one thread, spawned and awaited,
/// so callgrind sees the same work each time.
fn count_instructions(mode: &(String, u32)) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runner = Runner::builder().build().unwrap();
    let spawned = || async {
        let ok = tokio::spawn(async { raw(1).await.is_ok() }).await.unwrap();
        assert!(black_box(ok));
    };
    let through_runner = || {
        let runner = runner.clone();
        async move {
            let ok = tokio::spawn(async move { runner.run(&Quote, 1).await.is_ok() })
                .await
                .unwrap();
            assert!(black_box(ok));
        }
    };
    harness::run_case(&rt, mode, "spawn", &spawned);
    harness::run_case(&rt, mode, "runner", &through_runner);
}

fn main() {
    if let Some(mode) = harness::instructions_mode() {
        count_instructions(&mode);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runner = Runner::builder().build().unwrap();
    let (mut ours, mut spawn) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        spawn.push(rt.block_on(drive(|n| async move { raw(n).await.is_ok() })));
        let runner = runner.clone();
        ours.push(rt.block_on(drive(move |n| {
            let runner = runner.clone();
            async move { runner.run(&Quote, n).await.is_ok() }
        })));
    }
    let best = |v: Vec<f64>| v.into_iter().fold(0.0, f64::max);
    let (ours, spawn) = (best(ours), best(spawn));
    println!("runner throughput, {RUNS} runs of a 3-step workflow on 2 workers (best of 3)");
    println!(
        "  {:<44} {:>12.0} runs/s",
        "raw spawn of the same async fns", spawn
    );
    println!(
        "  {:<44} {:>12.0} runs/s   ratio {:.2}",
        "through the runner",
        ours,
        ours / spawn
    );
    assert_eq!(runner.stats().passed, 3 * RUNS);
}
