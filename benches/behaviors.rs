//! Behaviors on the happy path: one step under retry + timeout + circuit
//! breaker, against the same async fn in a tower `ServiceBuilder` with
//! retry and timeout layers. Prints the ratio ours / tower for the whole
//! run, and for what the behaviors add: ours over the same chain without
//! them, against tower over the bare call.
//!
//! `cargo bench --bench behaviors`

#[path = "harness.rs"]
mod harness;

use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::Duration;

use harness::{Case, median, report, time_async};
use tower::retry::Policy;
use tower::{Service, ServiceBuilder, ServiceExt};
use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker, Retry};
use workflow_runtime::prelude::*;

async fn charge(cents: u64) -> Result<u64, std::fmt::Error> {
    Ok(black_box(cents) + 1)
}

/// Retry up to 3 attempts, as ours does.
#[derive(Clone)]
struct Attempts(u32);

impl<E> Policy<u64, u64, E> for Attempts {
    type Future = Ready<()>;
    fn retry(&mut self, _: &mut u64, result: &mut Result<u64, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => None,
            Err(_) if self.0 > 1 => {
                self.0 -= 1;
                Some(ready(()))
            }
            Err(_) => None,
        }
    }
    fn clone_request(&mut self, req: &u64) -> Option<u64> {
        Some(*req)
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("bench", BreakerConfig::default());
    // Each run has its own context, as a runner gives it; the context's
    // cost is the same with and without behaviors, and cancels out of
    // what they add.
    let iters = 20_000;
    let rounds = 15;

    let bare = || async {
        black_box(charge(41).await.unwrap());
    };
    let ours = || {
        let breaker = breaker.clone();
        async move {
            let ctx = WorkflowContext::new("Bench");
            let out = Workflow::given(&ctx, "order", || 41u64)
                .try_when_async("charge", charge)
                .retry(Retry::max_attempts(3))
                .timeout(Duration::from_secs(30))
                .circuit_breaker(breaker)
                .await;
            black_box(out.unwrap());
        }
    };
    let service = ServiceBuilder::new()
        .retry(Attempts(3))
        .timeout(Duration::from_secs(30))
        .service_fn(charge);
    let tower = || {
        let mut service = service.clone();
        async move {
            let out = service.ready().await.unwrap().call(41).await;
            black_box(out.unwrap());
        }
    };
    let plain_chain = || async move {
        let ctx = WorkflowContext::new("Bench");
        let out = Workflow::given(&ctx, "order", || 41u64)
            .try_when_async("charge", charge)
            .await;
        black_box(out.unwrap());
    };

    if let Some(mode) = harness::instructions_mode() {
        harness::run_case(&rt, &mode, "ours", &ours);
        harness::run_case(&rt, &mode, "tower", &tower);
        harness::run_case(&rt, &mode, "plain", &plain_chain);
        harness::run_case(&rt, &mode, "bare", &bare);
        return;
    }
    let (mut b, mut o, mut t, mut p) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        b.push(time_async(&rt, iters, &bare));
        o.push(time_async(&rt, iters, &ours));
        t.push(time_async(&rt, iters, &tower));
        p.push(time_async(&rt, iters, &plain_chain));
    }
    let (b, o, t, p) = (median(b), median(o), median(t), median(p));
    let tower_case = Case {
        name: "tower: retry + timeout layers",
        per_iter: t,
    };
    report(
        "behaviors on the happy path (per run, median of 15 rounds)",
        &tower_case,
        &[
            Case {
                name: "ours: retry + timeout + breaker, with context",
                per_iter: o,
            },
            Case {
                name: "ours: plain chain, with context",
                per_iter: p,
            },
            Case {
                name: "bare async fn call",
                per_iter: b,
            },
        ],
    );
    let added = |with: std::time::Duration, without: std::time::Duration| {
        with.as_secs_f64() - without.as_secs_f64()
    };
    println!(
        "  added by the behaviors: ours {:.1?} over the plain chain, tower {:.1?} over the bare call   ratio {:.2}",
        o.saturating_sub(p),
        t.saturating_sub(b),
        added(o, p) / added(t, b)
    );
}
