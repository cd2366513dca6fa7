//! Per-step behaviors, outermost first as written.

struct Payments;

#[workflow]
impl Payments {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order {
        order
    }

    #[step(
        when = "charged",
        retry(max_attempts = 3, backoff = "100ms", jitter),
        timeout = "30s",
        circuit_breaker(name = "payments", failures = 5, open_for = "60s")
    )]
    async fn charge(&self, order: Order) -> Result<Order, PaymentError> {
        bank().charge(order).await
    }

    // Behavior values, a value behavior among them, outermost first.
    #[step(when = "receipted", behaviors(Fallback::to(|_| Some(Receipt::pending())), Logging))]
    async fn receipt(&self, order: Order) -> Result<Receipt, PaymentError> {
        bank().receipt(order).await
    }
}
