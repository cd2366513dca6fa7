//! The order API driven as a client would: a real server on 127.0.0.1 with
//! an ephemeral port, real HTTP, a real SQLite file.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use workflow_suite::order_api::{App, BODY_LIMIT, Config};

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
        }
    }
}

async fn start() -> Server {
    static N: AtomicU32 = AtomicU32::new(0);
    let db = std::env::temp_dir().join(format!(
        "order-api-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let config = Config {
        database: db.clone(),
        ..Config::default()
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
    assert_eq!(health["workflows"][0]["name"], "CreateOrder");

    let metrics = server.get("/metrics").await;
    let text = metrics.text().await.unwrap();
    assert!(text.contains("workflow_steps_total{workflow=\"CreateOrder\",step=\"process payment\",status=\"success\"}"), "{text}");
}

#[tokio::test]
async fn a_declined_payment_is_a_problem_naming_the_step_and_is_not_retried() {
    let server = start().await;
    let response = server.post_order("declined-card").await;
    assert_eq!(response.status(), 500);
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
    // The order was created, then left pending.
    let stored = server.app.store().get(1).await.unwrap().unwrap();
    assert_eq!(stored.status, workflow_suite::orders::Status::Pending);
    // A declined card is not transient: the retry filter lets it through.
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics
            .contains("workflow_retries_total{workflow=\"CreateOrder\",step=\"process payment\"}")
    );
}

#[tokio::test]
async fn a_failing_notifier_opens_the_breaker_and_the_api_answers_503() {
    let server = start().await;
    server.app.set_notifications_down(true);
    let mut statuses = Vec::new();
    for _ in 0..4 {
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
    assert_eq!(statuses, [500, 500, 500, 503]);
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
