//! Options and behaviors for every step, on the definition: the options
//! refine a runner's defaults, `timeout` and `retry` go on each step that
//! takes behaviors (a step's own replaces them in place: `charge` keeps a
//! timeout per attempt), `behaviors(..)` wrap
//! every step from the context.

struct Payments;

#[workflow(
    step_timeout = "30s",
    continue_on_error,
    retry(retries = 2),
    timeout = "1s",
    behaviors(Tracing, Metrics)
)]
impl Payments {
    #[step(given = "an amount")]
    fn amount(&self, cents: u64) -> u64 {
        cents
    }

    #[step(when = "charged", retry(max_attempts = 5))]
    async fn charge(&self, cents: u64) -> Result<u64, PaymentError> {
        Ok(cents)
    }

    #[step(then = "charged something")]
    fn positive(&self, cents: &u64) -> bool {
        *cents > 0
    }
}
