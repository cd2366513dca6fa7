#![allow(dead_code)]
use workflow_runtime::durable::StepCtx;
use workflow_runtime::prelude::*;

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("refused") }
}
impl std::error::Error for Refused {}

struct Payments;

#[workflow]
impl Payments {
    #[step(given = "an amount")]
    fn amount(&self, cents: u32) -> u32 { cents }

    #[step(when = "charge", compensate = refund)]
    fn charge(&self, cents: u32) -> u32 { cents }

    #[step(then = "charged")]
    fn charged(&self, cents: &u32) -> bool { *cents > 0 }

    #[compensation]
    fn refund(&self, step: &StepCtx, cents: u32) -> Result<(), Refused> { let _ = (step, cents); Ok(()) }
}

fn main() {}
