//! Behaviors declared on workflow methods compile, in any order, on sync
//! and async, plain and fallible steps, the first one included.

use std::sync::Arc;

use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
struct Order {
    id: u32,
}

#[derive(Debug)]
struct Declined;
impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("declined")
    }
}
impl std::error::Error for Declined {}

struct Orders {
    gateway: Arc<str>,
}

#[workflow]
impl Orders {
    #[step(given = "an order", retry(max_attempts = 2))]
    fn order(&self, order: Order) -> Order {
        order
    }

    #[step(
        when = "charged",
        retry(max_attempts = 3, backoff = "100ms", max_delay = "5s", jitter),
        timeout = "30s",
        circuit_breaker(name = "ui-payments", failures = 5, open_for = "60s")
    )]
    async fn charge(&self, order: Order) -> Result<Order, Declined> {
        let _ = &self.gateway;
        Ok(order)
    }

    #[step(and = "notified", timeout = "1.5s", circuit_breaker(name = "ui-mail"))]
    fn notify(&self, order: Order) -> u32 {
        order.id
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let orders = Orders { gateway: "bank".into() };
    let ctx = Orders::context().build();
    let id = rt.block_on(orders.run(&ctx, Order { id: 9 })).unwrap();
    assert_eq!(id, 9);
}
