use workflow_runtime::prelude::*;

struct Pay;

#[workflow]
impl Pay {
    #[step(given = "an amount", retry(max_attempts = 4, retries = 3))]
    async fn charge(&self, cents: u64) -> u64 {
        cents
    }
}

fn main() {}
