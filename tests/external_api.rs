//! The external API workflow over real HTTP against a flaky local server:
//! the breaker around the call inside the step opens after three failures,
//! goes half-open after its open period, and closes.

use std::time::Duration;

use workflow_runtime::WorkflowError;
use workflow_runtime::behavior::{BreakerConfig, CircuitOpen, CircuitState};
use workflow_runtime::host::Runner;
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
