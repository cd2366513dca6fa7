use workflow_runtime::prelude::*;

struct Pay;

#[workflow(durable)]
impl Pay {
    #[step(given = "an order")]
    fn order(&self, id: u64) -> u64 {
        id
    }

    #[step(when = "it is saved", transactional)]
    async fn save(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
