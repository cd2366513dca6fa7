//! `#[step]` on free functions, sync and async.

#[step(when = "process payment")]
async fn process_payment(order: Order) -> Result<Order, PaymentError> {
    gateway().charge(order).await
}

#[step]
fn apply_discount(order: Order, percent: u64) -> Order {
    Order { cents: order.cents * (100 - percent) / 100, ..order }
}
