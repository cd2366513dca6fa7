//! The durable workflows the durable benchmarks run: one step, three
//! steps, eleven steps (the per-step cost is the difference of the last
//! and the first).

use workflow_runtime::prelude::*;

/// One step.
pub struct One;

#[workflow(durable)]
impl One {
    #[step(given = "a number")]
    fn n(&self, n: u64) -> u64 {
        n + 1
    }
}

/// Three steps.
pub struct Three;

#[workflow(durable)]
impl Three {
    #[step(given = "a number")]
    fn n(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "doubled")]
    async fn double(&self, n: u64) -> u64 {
        n * 2
    }
    #[step(and = "squared")]
    async fn square(&self, n: u64) -> u64 {
        n * n
    }
}

/// Eleven steps.
pub struct Eleven;

#[workflow(durable)]
impl Eleven {
    #[step(given = "a number")]
    fn s0(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "1")]
    async fn s1(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "2")]
    async fn s2(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "3")]
    async fn s3(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "4")]
    async fn s4(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "5")]
    async fn s5(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "6")]
    async fn s6(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "7")]
    async fn s7(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "8")]
    async fn s8(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "9")]
    async fn s9(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(and = "10")]
    async fn s10(&self, n: u64) -> u64 {
        n + 1
    }
}
