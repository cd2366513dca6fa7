use workflow_runtime::prelude::*;

struct Pay;

#[workflow]
impl Pay {
    #[step(given = "an amount", retry(max = 3))]
    async fn charge(&self, cents: u64) -> u64 {
        cents
    }
}

fn main() {}
