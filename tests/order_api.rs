//! The order API driven as a client would: a real server on 127.0.0.1 with
//! an ephemeral port, real HTTP, a real SQLite file.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use workflow_suite::order_api::{App, BODY_LIMIT, Config};
use workflow_suite::orders::Status;
use workflow_suite::worker::{Gateway, Worker, WorkerConfig};

struct Server {
    base: String,
    client: reqwest::Client,
    app: App,
    _stop: tokio::sync::oneshot::Sender<()>,
    db: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
            let _ = std::fs::remove_file(format!("{}{suffix}", self.gateway().display()));
        }
    }
}

async fn start() -> Server {
    start_with(Config::default()).await
}

async fn start_with(config: Config) -> Server {
    static N: AtomicU32 = AtomicU32::new(0);
    let db = std::env::temp_dir().join(format!(
        "order-api-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let config = Config {
        database: db.clone(),
        ..config
    };
    let app = App::new(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    Server {
        base,
        client: reqwest::Client::new(),
        app,
        _stop: stop,
        db,
    }
}

impl Server {
    /// The worker's card gateway file, beside this server's orders.
    fn gateway(&self) -> std::path::PathBuf {
        self.db.with_extension("gateway.db")
    }

    /// One pass of the worker's `PendingOrderProcessor` over this server's
    /// orders file, as the `worker` example runs it beside the API; the
    /// worker's gateway, to see what it charged.
    async fn worker_pass(&self) -> Gateway {
        let config = WorkerConfig {
            gateway: Some(self.gateway()),
            gateway_latency: std::time::Duration::ZERO,
            ..WorkerConfig::default()
        };
        let worker = Worker::open(&self.db, &config).await.unwrap();
        worker
            .host
            .runner()
            .run_named("PendingOrderProcessor")
            .await
            .unwrap();
        worker.gateway
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn post_order(&self, method: &str) -> reqwest::Response {
        let url = format!("{}/api/orders", self.base);
        self.client
            .post(url)
            .json(&order(method))
            .send()
            .await
            .unwrap()
    }
}

fn order(method: &str) -> Value {
    json!({
        "customer_id": "c-1",
        "items": [{"sku": "A", "quantity": 2, "unit_cents": 500}, {"sku": "B", "quantity": 1, "unit_cents": 250}],
        "payment_method": method,
    })
}

fn is_problem(response: &reqwest::Response) -> bool {
    response.headers()["content-type"] == "application/problem+json"
}

#[tokio::test]
async fn an_order_is_created_paid_confirmed_and_stored() {
    let server = start().await;
    let response = server.post_order("card").await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "confirmed");
    assert_eq!(created["total_cents"], 1250);
    assert_eq!(location, format!("/api/orders/{}", created["id"]));

    let fetched: Value = server.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, created);
    assert_eq!(server.app.store().count().await.unwrap(), 1);

    let health = server.get("/health").await;
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    // The database check ran for this request.
    assert_eq!(health["checks"][0]["name"], "DatabaseCheck");
    assert_eq!(
        health["checks"][0]["description"],
        "The orders database answers."
    );
    assert_eq!(health["checks"][0]["status"], "healthy");
    assert_eq!(health["workflows"][0]["name"], "CreateOrder");

    let metrics = server.get("/metrics").await;
    let text = metrics.text().await.unwrap();
    assert!(text.contains("workflow_steps_total{workflow=\"CreateOrder\",step=\"process payment\",kind=\"When\",phase=\"action\",status=\"success\"}"), "{text}");
}

#[tokio::test]
async fn a_declined_payment_is_a_problem_naming_the_step_and_is_not_retried() {
    let server = start().await;
    let response = server.post_order("declined-card").await;
    // A business refusal, not a server error.
    assert_eq!(response.status(), 402);
    assert!(is_problem(&response));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["step"], "process payment");
    assert_eq!(problem["workflow"], "CreateOrder");
    assert_eq!(
        problem["detail"],
        "workflow \"CreateOrder\", step When \"process payment\" failed: payment failed: card declined"
    );
    assert!(
        problem["execution_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    // The order was created, then undone by its step's compensation.
    let stored = server.app.store().get(1).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Cancelled);
    assert_eq!(server.app.bank().requests().len(), 1);
    // A declined card is not transient: the retry filter lets it through.
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics
            .contains("workflow_retries_total{workflow=\"CreateOrder\",step=\"process payment\"}")
    );
}

/// The bug: a declined card answered 402 but left its order `pending`, and
/// the worker, over the same file, then charged it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_leaves_no_order_the_worker_charges() {
    let server = start().await;
    let response = server.post_order("declined-card").await;
    assert_eq!(response.status(), 402);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["title"], "payment declined");

    let gateway = server.worker_pass().await;
    assert_eq!(
        gateway.charges().await.unwrap(),
        [],
        "the worker charged the declined order"
    );
    assert_eq!(gateway.requests().await.unwrap(), 0);
    // Undone, in a status the worker does not select, and it stays so.
    let order = server.app.store().get(1).await.unwrap().unwrap();
    assert_eq!(order.status, Status::Cancelled);
    assert_eq!(order.payment_id, None);
    assert!(server.app.store().pending().await.unwrap().is_empty());
    server.worker_pass().await;
    assert_eq!(gateway.charges().await.unwrap(), []);
}

/// An order without an `Idempotency-Key` runs under an id that sorts by
/// time (a UUID v7, `durable::new_run_id`), which keeps the journal's
/// writes for the orders in flight on shared pages: a later order's id
/// sorts after an earlier one's.
#[tokio::test]
async fn an_order_without_a_key_runs_under_an_id_that_sorts_by_time() {
    let server = start().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = server.post_order("card").await;
        assert_eq!(response.status(), 201);
        let id = response.headers()["x-correlation-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let uuid = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 7, "{id}");
        ids.push(id);
    }
    assert!(ids[0] < ids[1], "{ids:?}");
}

/// The payment carries its step's idempotency key: the bank's answer to the
/// first attempt is lost after it charged, the retry asks again with the
/// same key and gets that charge back, and the card is charged once.
#[tokio::test]
async fn the_payment_carries_the_step_key_and_a_retry_charges_once() {
    let server = start().await;
    server.app.bank().lose_answers(1);
    let response = server
        .client
        .post(format!("{}/api/orders", server.base))
        .header("idempotency-key", "k-pay")
        .json(&order("card"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let run = response.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let created: Value = response.json().await.unwrap();

    let requests = server.app.bank().requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    // The durable step's key: the run's id and the step's place in it,
    // the same on both attempts.
    assert!(
        requests[0].key.starts_with(&format!("{run}/")),
        "{requests:?}"
    );
    assert_eq!(requests[0].key, requests[1].key);
    let charges = server.app.bank().charges();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].order, created["id"].as_i64().unwrap());
    assert_eq!(created["payment_id"], charges[0].id.as_str());
    assert_eq!(created["status"], "confirmed");
}

/// Declined cards are the customers' business, not the service failing:
/// three in a row left the host unhealthy and `/health` answering 503.
#[tokio::test]
async fn three_declined_cards_in_a_row_leave_the_host_healthy() {
    let server = start().await;
    for _ in 0..3 {
        assert_eq!(server.post_order("declined-card").await.status(), 402);
    }
    let health = server.get("/health").await;
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.unwrap();
    // Degraded, the last run having failed; counted, not a fault.
    assert_eq!(health["status"], "degraded", "{health}");
    let create = &health["workflows"][0];
    assert_eq!(create["name"], "CreateOrder");
    assert_eq!(create["consecutive_failures"], 3, "{health}");
    assert_eq!(create["consecutive_faults"], 0, "{health}");
    assert_eq!(health["durable"]["counts"]["failed"], 3, "{health}");

    // A fourth declined card is still the client's to fix, and a good
    // card still gets its order.
    assert_eq!(server.post_order("declined-card").await.status(), 402);
    assert_eq!(server.post_order("card").await.status(), 201);
    let health = server.get("/health").await;
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
}

#[tokio::test]
async fn a_failing_notifier_opens_the_breaker_and_the_api_answers_503() {
    let server = start().await;
    server.app.set_notifications_down(true);
    let mut statuses = Vec::new();
    // The guide's breaker: five failures in a row open it.
    for _ in 0..6 {
        let response = server.post_order("card").await;
        statuses.push(response.status().as_u16());
        if response.status() == 503 {
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["step"], "send confirmation");
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .ends_with("circuit \"notifications\" is open")
            );
        }
    }
    assert_eq!(statuses, [500, 500, 500, 500, 500, 503]);
    let health = server.get("/health").await;
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["breakers"][0]["state"], "open");
}

#[tokio::test]
async fn bad_input_gets_a_clear_status_never_a_500() {
    let server = start().await;
    let url = format!("{}/api/orders", server.base);
    let send = |body: String, content_type: &'static str| {
        server
            .client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let malformed = send("{\"customer_id\": ".into(), "application/json")
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(is_problem(&malformed));
    let detail: Value = malformed.json().await.unwrap();
    assert!(
        detail["detail"].as_str().unwrap().contains("EOF"),
        "{detail}"
    );

    let missing = send(
        json!({"customer_id": "c-1"}).to_string(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), 400);
    let detail: Value = missing.json().await.unwrap();
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("missing field `items`"),
        "{detail}"
    );

    let mut zero = order("card");
    zero["items"][0]["quantity"] = json!(0);
    let invalid = send(zero.to_string(), "application/json").await.unwrap();
    assert_eq!(invalid.status(), 400);
    let detail: Value = invalid.json().await.unwrap();
    assert_eq!(detail["title"], "invalid order");
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("`quantity` must be at least 1")
    );

    // Money that would wrap: refused, not stored with a wrapped total.
    let mut overflowing = order("card");
    overflowing["items"][0]["quantity"] = json!(u32::MAX);
    overflowing["items"][0]["unit_cents"] = json!(u64::MAX);
    let too_large = send(overflowing.to_string(), "application/json")
        .await
        .unwrap();
    assert_eq!(too_large.status(), 422);
    assert!(is_problem(&too_large));
    let detail: Value = too_large.json().await.unwrap();
    assert_eq!(detail["title"], "order total too large");
    // Just over what the database holds, too.
    let mut just_over = order("card");
    just_over["items"] = json!([{"sku": "A", "quantity": 1, "unit_cents": i64::MAX as u64 + 1}]);
    let status = send(just_over.to_string(), "application/json")
        .await
        .unwrap()
        .status();
    assert_eq!(status, 422);

    let huge = send("x".repeat(BODY_LIMIT + 1), "application/json")
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);

    let wrong_type = send(order("card").to_string(), "text/plain").await.unwrap();
    assert_eq!(wrong_type.status(), 415);

    let unknown = server.get("/nope").await;
    assert_eq!(unknown.status(), 404);
    assert!(is_problem(&unknown));

    let not_a_number = server.get("/api/orders/abc").await;
    assert_eq!(not_a_number.status(), 400);
    let absent = server.get("/api/orders/999").await;
    assert_eq!(absent.status(), 404);

    assert_eq!(server.app.store().count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_leave_mid_request_never_cut_an_order_in_half() {
    const REQUESTS: usize = 240;
    const IN_FLIGHT: usize = 16;
    // Payment takes 100ms: long enough for clients to leave mid-run, even
    // on a loaded machine.
    let server = start_with(Config {
        payment_latency: std::time::Duration::from_millis(100),
        ..Config::default()
    })
    .await;
    let url = format!("{}/api/orders", server.base);
    let mut set = tokio::task::JoinSet::new();
    let (mut answered, mut abandoned) = (0, 0);
    for n in 0..REQUESTS {
        if set.len() >= IN_FLIGHT {
            match set.join_next().await.unwrap().unwrap() {
                Ok(status) => {
                    assert_eq!(status, 201);
                    answered += 1;
                }
                Err(()) => abandoned += 1,
            }
        }
        // Two clients in three give up early, most while their order's
        // workflow is in flight: their connection closes and the server
        // drops the request's future.
        let patience = match n % 3 {
            0 => std::time::Duration::from_secs(30),
            1 => std::time::Duration::from_millis(40),
            _ => std::time::Duration::from_millis(70),
        };
        let (client, url) = (server.client.clone(), url.clone());
        set.spawn(async move {
            let sent = client
                .post(url)
                .json(&order("card"))
                .timeout(patience)
                .send()
                .await;
            match sent {
                Ok(response) => Ok(response.status().as_u16()),
                Err(e) if e.is_timeout() => Err(()),
                Err(e) => panic!("{e}"),
            }
        });
    }
    while let Some(done) = set.join_next().await {
        match done.unwrap() {
            Ok(status) => {
                assert_eq!(status, 201);
                answered += 1;
            }
            Err(()) => abandoned += 1,
        }
    }
    assert!(abandoned > 0, "no client left early");

    // The runs the departed clients started finish on the runner's tasks.
    let runner = server.app.runner().clone();
    for _ in 0..500 {
        if runner.durable_in_flight() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(runner.durable_in_flight(), 0);

    let pool = server.app.store().pool();
    let runs: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, status, CAST(output AS TEXT) FROM workflow_runs WHERE workflow = 'CreateOrder'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        runs.len() > answered,
        "no run outlived its client: {} runs, {answered} answered",
        runs.len()
    );
    let mut journaled = std::collections::BTreeMap::new();
    for (id, status, output) in &runs {
        assert_eq!(status, "completed", "run {id}");
        let order: Value = serde_json::from_str(output.as_deref().unwrap()).unwrap();
        journaled.insert(order["id"].as_i64().unwrap(), order);
    }
    // Row for row: every order in the table is a completed run's output,
    // confirmed, and every completed run's order is in the table.
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(ids, journaled.keys().copied().collect::<Vec<_>>());
    for (id, journaled) in &journaled {
        let stored = server.app.store().get(*id).await.unwrap().unwrap();
        assert_eq!(&serde_json::to_value(&stored).unwrap(), journaled);
        assert_eq!(stored.status, workflow_suite::orders::Status::Confirmed);
    }
    println!(
        "{REQUESTS} requests: {answered} answered, {abandoned} abandoned by their clients; \
         {} orders, every one confirmed and journaled as completed",
        runs.len()
    );
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_request_the_same_order() {
    let server = start().await;
    let url = format!("{}/api/orders", server.base);
    let send = |body: Value| {
        server
            .client
            .post(&url)
            .header("idempotency-key", "k-1")
            .json(&body)
            .send()
    };
    let first = send(order("card")).await.unwrap();
    // The run id, made from the customer and the key, is the run's
    // correlation id: what its `Logging` events carry.
    let customer = order("card")["customer_id"].as_str().unwrap().to_owned();
    assert_eq!(
        first.headers()["x-correlation-id"].to_str().unwrap(),
        format!("{customer}/k-1")
    );
    let first: Value = first.json().await.unwrap();
    let again = send(order("card")).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(server.app.store().count().await.unwrap(), 1);

    let mut other = order("card");
    other["items"][0]["quantity"] = json!(5);
    let reused = send(other).await.unwrap();
    assert_eq!(reused.status(), 422);
    assert!(is_problem(&reused));
    assert_eq!(server.app.store().count().await.unwrap(), 1);
}

/// The guide's API hosts its recurring workflows beside the web app: both
/// run on one runner, and one stop signal shuts both down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recurring_workflows_run_beside_the_api_and_stop_with_it() {
    let db = std::env::temp_dir().join(format!("order-api-recurring-{}.db", std::process::id()));
    let config = Config {
        database: db.clone(),
        recurring_every: std::time::Duration::from_millis(50),
        ..Config::default()
    };
    let app = App::new(&config).await.unwrap();
    let runner = app.runner().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let runs = |name: &str| {
        runner
            .health()
            .workflows
            .iter()
            .find(|w| w.name == name)
            .map_or(0, |w| w.runs)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while runs("HealthMonitor") < 2 || runs("MetricsCollector") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the recurring workflows did not run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The API answers meanwhile, from the same runner.
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    stop.send(()).unwrap();
    let served = tokio::time::timeout(std::time::Duration::from_secs(30), serving)
        .await
        .expect("the API and the host stop together")
        .unwrap();
    assert!(served.is_ok(), "{served:?}");
    assert!(
        reqwest::get(format!("{base}/health")).await.is_err(),
        "still listening"
    );
    let after = runs("HealthMonitor");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(runs("HealthMonitor"), after, "still running on a schedule");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn big_order(customer: &str) -> Value {
    json!({
        "customer_id": customer,
        "items": [{"sku": "PIANO", "quantity": 1, "unit_cents": 250_000}],
        "payment_method": "card",
    })
}

async fn until_status(server: &Server, location: &str, status: &str) -> Value {
    for _ in 0..500 {
        let order: Value = server.get(location).await.json().await.unwrap();
        if order["status"] == status {
            return order;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("order {location} never became {status}");
}

/// An order above the approval limit is answered 202 awaiting approval,
/// its run suspended; an approval sent by id goes on to charge and
/// confirm it, once; a rejection cancels it, charging nothing.
#[tokio::test]
async fn an_order_above_the_limit_waits_for_a_managers_decision() {
    let server = start().await;
    let url = format!("{}/api/orders", server.base);
    let response = server
        .client
        .post(&url)
        .json(&big_order("c-big"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "awaiting_approval");
    let fetched: Value = server.get(&location).await.json().await.unwrap();
    assert_eq!(fetched["status"], "awaiting_approval");
    assert_eq!(
        server.app.runner().durable_in_flight(),
        0,
        "the run waits, holding no task"
    );
    assert!(server.app.bank().charges().is_empty());

    let decide = |decision: &'static str, key: &'static str| {
        let (client, url) = (
            server.client.clone(),
            format!("{}{location}/approval", server.base),
        );
        async move {
            client
                .post(url)
                .header("idempotency-key", key)
                .json(&json!({ "decision": decision }))
                .send()
                .await
                .unwrap()
        }
    };
    // Twice, as a retrying client would: one decision.
    assert_eq!(decide("approve", "m-1").await.status(), 202);
    assert_eq!(decide("approve", "m-1").await.status(), 202);
    let confirmed = until_status(&server, &location, "confirmed").await;
    assert_eq!(confirmed["id"], order["id"]);
    assert_eq!(server.app.bank().charges().len(), 1);
    // Decided: nothing awaits approval any more.
    let late = decide("reject", "m-2").await;
    assert_eq!(late.status(), 409);

    let rejected = server
        .client
        .post(&url)
        .json(&big_order("c-other"))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 202);
    let location = rejected.headers()["location"].to_str().unwrap().to_owned();
    let decision = server
        .client
        .post(format!("{}{location}/approval", server.base))
        .json(&json!({ "decision": "reject" }))
        .send()
        .await
        .unwrap();
    assert_eq!(decision.status(), 202);
    until_status(&server, &location, "cancelled").await;
    assert_eq!(
        server.app.bank().charges().len(),
        1,
        "nothing charged for the rejected order"
    );
    // A small order does not wait.
    assert_eq!(server.post_order("card").await.status(), 201);
}

/// Nobody decides: a day later, on tokio's paused clock, the run gives up
/// and the order is cancelled, nothing charged.
#[tokio::test]
async fn an_order_nobody_approves_is_cancelled_after_a_day() {
    use workflow_runtime::durable::{Durable, DurableError};
    use workflow_suite::order_api::{CreateOrder, CreateOrderRequest};
    let db = std::env::temp_dir().join(format!("order-api-approval-{}.db", std::process::id()));
    let config = Config {
        database: db.clone(),
        clock: workflow_runtime::host::Clock::following_tokio(std::time::SystemTime::now()),
        // Tokio's paused clock jumps to the next timer while a query waits
        // on SQLite's thread: the pool must not time out meanwhile.
        pool_timeout: std::time::Duration::from_secs(10 * 365 * 86_400),
        // Nor may a step: its 30 s would pass in one such jump.
        step_timeout: std::time::Duration::from_secs(10 * 365 * 86_400),
        ..Config::default()
    };
    let app = App::new(&config).await.unwrap();
    // Paused once the file is open; a second's tick keeps each jump short
    // while a query is in flight.
    tokio::time::pause();
    let tick = tokio::spawn(async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    let started = tokio::time::Instant::now();
    let req: CreateOrderRequest = serde_json::from_value(big_order("c-slow")).unwrap();
    let run = app
        .runner()
        .start(&CreateOrder::ID, "slow-1", req)
        .await
        .unwrap();
    let ended = run.result().await;
    tick.abort();
    assert!(
        matches!(&ended, Err(DurableError::Failed { step: Some(step), error, .. })
            if step == "manager approval" && error.contains("not approved within 86400s")),
        "{ended:?}"
    );
    // Never early. How late is this test clock's doing, not the run's:
    // while a query waits on SQLite's thread the paused clock jumps a tick
    // at a time, more of them the busier the machine (the memory store's
    // virtual-time tests bound the lateness to a second).
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(86_400),
        "gave up early, after {waited:?}"
    );
    let order = app.store().order_of_run("slow-1").await.unwrap().unwrap();
    assert_eq!(order.status, Status::Cancelled);
    assert!(app.bank().charges().is_empty());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
