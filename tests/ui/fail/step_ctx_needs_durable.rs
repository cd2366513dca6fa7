use workflow_runtime::durable::StepCtx;
use workflow_runtime::prelude::*;

struct Pay;

#[workflow]
impl Pay {
    #[step(given = "an order")]
    fn order(&self, step: &StepCtx, id: u64) -> String {
        format!("{id} {}", step.key())
    }
}

fn main() {}
