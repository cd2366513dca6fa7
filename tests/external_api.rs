//! The external API workflow over real HTTP against a flaky local server:
//! the breaker around the call inside the step opens after three failures,
//! goes half-open after its open period, and closes.

use std::time::Duration;

use workflow_runtime::behavior::{BreakerConfig, CircuitOpen, CircuitState};
use workflow_runtime::host::Runner;
use workflow_runtime::{WorkflowDefinition, WorkflowError};
use workflow_suite::external_api::{ExternalApiWorkflow, Flaky};

#[tokio::test]
async fn the_breaker_opens_goes_half_open_and_closes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let flaky = Flaky::default();
    flaky.set_down(true);
    tokio::spawn(flaky.clone().serve(listener));
    // The guide's breaker (3 failures), open for a second rather than its
    // minute, so the test sees it close.
    let workflow = ExternalApiWorkflow::with_breaker(
        reqwest::Client::new(),
        base,
        BreakerConfig::new(3, Duration::from_secs(1)),
    );
    assert_eq!(
        ExternalApiWorkflow::new(reqwest::Client::new(), "")
            .breaker
            .config(),
        BreakerConfig::new(3, Duration::from_secs(60)),
        "the guide's minute"
    );
    let runner = Runner::builder().build().unwrap();

    // Three failed calls open it; the fourth run is refused without a call.
    for payload in ["a", "b", "c"] {
        let err = runner.run(&workflow, payload.into()).await.unwrap_err();
        assert!(
            matches!(&err, WorkflowError::Failed { step, .. } if step.title == "call external api"),
            "{err}"
        );
    }
    let err = runner.run(&workflow, "d".into()).await.unwrap_err();
    assert!(
        matches!(&err, WorkflowError::Failed { error, .. } if error.downcast_ref::<CircuitOpen>().is_some()),
        "{err}"
    );
    assert_eq!(flaky.calls(), 3);
    let breaker = &workflow.breaker;
    assert_eq!(breaker.state(), CircuitState::Open);

    // Open: rejected without calling the API.
    flaky.set_down(false);
    assert!(runner.run(&workflow, "e".into()).await.is_err());
    assert_eq!(flaky.calls(), 3);

    // After the open period, one trial goes through and closes it.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    let response = runner.run(&workflow, "f".into()).await.unwrap();
    assert!(response.success);
    assert_eq!(response.call, 4);
    use CircuitState::*;
    let path: Vec<_> = breaker
        .snapshot()
        .recent
        .iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(path, [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]);
}

#[tokio::test]
async fn the_pricing_cache_answers_while_fresh_and_with_the_last_price_while_the_api_is_down() {
    use workflow_suite::external_api::{Price, PricingWorkflow};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let flaky = Flaky::default();
    tokio::spawn(flaky.clone().serve(listener));
    let pricing = PricingWorkflow::new(reqwest::Client::new(), base, Duration::from_secs(2));
    let runner = Runner::builder().build().unwrap();
    let price = |sku: &str, cents| Price {
        sku: sku.into(),
        cents,
    };

    // Fetched once, then answered from the cache while fresh, per sku.
    assert_eq!(
        runner.run(&pricing, "mug".into()).await.unwrap(),
        price("mug", 301)
    );
    assert_eq!(
        runner.run(&pricing, "mug".into()).await.unwrap(),
        price("mug", 301)
    );
    assert_eq!(
        runner.run(&pricing, "lamp".into()).await.unwrap(),
        price("lamp", 402)
    );
    assert_eq!(flaky.calls(), 2);

    // Stale and the API down: the last price answers, after a real call.
    tokio::time::sleep(Duration::from_millis(2_050)).await;
    flaky.set_down(true);
    let ctx = runner.context(PricingWorkflow::context());
    let served = runner.run_in(&pricing, &ctx, "mug".into()).await.unwrap();
    assert_eq!(served, price("mug", 301));
    assert_eq!(flaky.calls(), 3);
    assert_eq!(ctx.steps()[1].attempts, 1, "the fetch ran and failed");

    // A sku never priced has nothing to fall back on.
    let err = runner.run(&pricing, "desk".into()).await.unwrap_err();
    assert!(
        matches!(&err, WorkflowError::Failed { step, .. } if step.title == "price fetched"),
        "{err}"
    );

    // Up again: a fresh price replaces the stale one.
    flaky.set_down(false);
    assert_eq!(
        runner.run(&pricing, "mug".into()).await.unwrap(),
        price("mug", 305)
    );
}
