//! The external API workflow over real HTTP against a flaky local server:
//! the breaker opens, goes half-open after its open period, and closes.

use std::time::Duration;

use workflow_runtime::WorkflowError;
use workflow_runtime::behavior::{CircuitOpen, CircuitState};
use workflow_runtime::host::Runner;
use workflow_suite::external_api::{ExternalApiWorkflow, Flaky};

#[tokio::test]
async fn the_breaker_opens_goes_half_open_and_closes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let flaky = Flaky::default();
    flaky.set_down(true);
    tokio::spawn(flaky.clone().serve(listener));
    let workflow = ExternalApiWorkflow {
        client: reqwest::Client::new(),
        base,
    };
    let runner = Runner::builder().build().unwrap();

    // Two attempts per run (retry outside the breaker): the third failure
    // opens it, so the second run's retry is rejected.
    assert!(runner.run(&workflow, "a".into()).await.is_err());
    let err = runner.run(&workflow, "b".into()).await.unwrap_err();
    assert!(
        matches!(&err, WorkflowError::Failed { error, .. } if error.downcast_ref::<CircuitOpen>().is_some())
    );
    assert_eq!(flaky.calls(), 3);
    let breaker = runner.breakers().get("external-api").unwrap();
    assert_eq!(breaker.state(), CircuitState::Open);

    // Open: rejected without calling the API.
    flaky.set_down(false);
    assert!(runner.run(&workflow, "c".into()).await.is_err());
    assert_eq!(flaky.calls(), 3);

    // After the open period, one trial goes through and closes it.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    let response = runner.run(&workflow, "d".into()).await.unwrap();
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
