//! A durable workflow: journaled steps, a step key, a transactional step.

struct PendingOrderProcessor {
    bank: Bank,
}

#[workflow(durable = "v2")]
impl PendingOrderProcessor {
    #[step(given = "pending order")]
    fn load(&self, id: OrderId) -> Order {
        Order::pending(id)
    }

    #[step(when = "process payment", retry(max_attempts = 5, backoff = "1s"))]
    async fn charge(&self, step: &StepCtx, order: Order) -> Result<Receipt, PaymentError> {
        self.bank.charge(&order, step.key()).await
    }

    #[step(when = "update status", transactional)]
    async fn save(&self, tx: &mut SqliteTx, receipt: Receipt) -> Result<Order, sqlx::Error> {
        receipt.save(tx).await
    }

    #[step(then = "processed")]
    fn processed(&self, order: &Order) -> bool {
        order.paid
    }
}
