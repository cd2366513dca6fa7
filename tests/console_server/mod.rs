//! The order API with its console at `/workflows`, served on 127.0.0.1
//! for the console's tests.

use workflow_runtime::durable::{RunFilter, RunStatus};
use workflow_suite::order_api::{App, Config, Operator};

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub app: App,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn start(operators: Vec<Operator>) -> Server {
    start_with(Config {
        operators,
        ..Config::default()
    })
    .await
}

/// The order API as `config` says, its file in a fresh directory.
pub async fn start_with(config: Config) -> Server {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "console-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = Config {
        database: dir.join("orders.db"),
        ..config
    };
    let app = App::new(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Server {
        base,
        client,
        app,
        _stop: stop,
        _dir: TempDir(dir),
    }
}

pub fn ana() -> Vec<Operator> {
    vec![Operator {
        name: "ana".into(),
        token: "s3cret".into(),
    }]
}

impl Server {
    /// Places an order for `customer` paid with `card`; a total above
    /// $500 waits for a manager's approval, so its run stays running. Its
    /// run id.
    pub async fn order_paid(&self, customer: &str, cents: u64, card: &str) -> String {
        let before = self.run_ids().await;
        let response = self
            .client
            .post(format!("{}/api/orders", self.base))
            .json(&serde_json::json!({
                "customer_id": customer,
                "items": [{"sku": "A", "quantity": 1, "unit_cents": cents}],
                "payment_method": card,
            }))
            .send()
            .await
            .unwrap();
        // A declined card answers 402; its run is there all the same.
        assert!(
            response.status().is_success() || response.status() == 402,
            "{}",
            response.text().await.unwrap()
        );
        let after = self.run_ids().await;
        after
            .into_iter()
            .find(|id| !before.contains(id))
            .expect("a new run")
    }

    /// [`order_paid`](Self::order_paid) with a card the bank accepts.
    pub async fn order(&self, customer: &str, cents: u64) -> String {
        self.order_paid(customer, cents, "card").await
    }

    pub async fn run_ids(&self) -> Vec<String> {
        let page = self.app.runner().runs(&RunFilter::new()).await.unwrap();
        page.runs.into_iter().map(|r| r.id).collect()
    }

    pub async fn status(&self, run: &str) -> RunStatus {
        self.app.runner().status(run).await.unwrap().status
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }
}
