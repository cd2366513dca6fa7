use workflow_runtime::prelude::*;

struct Payment;

struct Pay;

#[workflow(retry(retries = 2))]
impl Pay {
    #[step(given = "a payment")]
    fn payment(&self) -> Payment {
        Payment
    }

    #[step(when = "charged")]
    async fn charge(&self, _payment: Payment) -> u64 {
        1
    }
}

fn main() {}
