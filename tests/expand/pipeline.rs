//! A workflow of sync and async, plain and fallible steps.

struct PendingOrderProcessor {
    payment: Arc<dyn PaymentGateway>,
}

/// Processes orders awaiting payment.
#[workflow]
impl PendingOrderProcessor {
    #[step(given = "pending order")]
    fn pending(&self, order: Order) -> Order {
        order
    }

    #[step(when = "process payment")]
    async fn charge(&self, order: Order) -> Result<Order, PaymentError> {
        self.payment.charge(order).await
    }

    #[step(when = "update status")]
    async fn save(&self, order: Order) -> Order {
        order
    }

    #[step(then = "processed")]
    fn processed(&self, order: &Order) -> bool {
        order.paid
    }
}
