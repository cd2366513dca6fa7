//! The order API under load: a real server on 127.0.0.1, durable on
//! SQLite (`synchronous=FULL`), and 32 clients posting orders over
//! keep-alive connections, each waiting for its answer before the next
//! (as `wrk -c32` does). Each order is a durable run of five steps, two of
//! them writing the orders table, one a transaction of its own.
//!
//! Printed: requests per second and latency percentiles at 32 clients
//! (the median of five rounds, with their range), and at one client for
//! the latency alone; beside them, in the same run,
//! the floor of the HTTP stack: the same server answering a `GET` of a
//! page it does not have (a 404 problem, no disk), at 32 clients; and
//! the same orders with random run ids (each with an `Idempotency-Key`
//! of its own, as clients' keys make them), in rounds paired with the
//! app's own time-ordered ids (`durable::new_run_id`).
//!
//! With `ORDER_API_SERVER` and `ORDER_API_BASELINE_SERVER` set (paths of
//! two builds of `examples/order_api`: today's, and the tree before group
//! commit, which `benches/order_api_baseline.sh` builds), the same load
//! is put on both, each a server process of its own on a file of its own,
//! in rounds taken in turn: the order API's target (the README's table)
//! as a ratio whose baseline is measured in the same run, so that the
//! disk's speed that day weighs on both sides. `benches/report.sh` sets
//! both.
//!
//! `cargo bench --bench order_api`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;
use workflow_suite::order_api::{App, Config};

/// Requests per measurement, per client count.
const REQUESTS: u64 = 3_000;

/// Measurements of the order API at 32 clients, for each kind of run id.
const ROUNDS: usize = 5;

/// Answers per second and the latency percentiles of `requests` requests
/// made by `clients` clients, each request made by `one`.
async fn load<F, Fut>(clients: u64, requests: u64, one: F) -> (f64, Vec<Duration>)
where
    F: Fn(reqwest::Client) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (next, one) = (next.clone(), one.clone());
        // A client of its own: one keep-alive connection each.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        set.spawn(async move {
            let mut took = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let sent = Instant::now();
                one(client.clone()).await;
                took.push(sent.elapsed());
            }
            took
        });
    }
    let mut took = Vec::new();
    while let Some(done) = set.join_next().await {
        took.extend(done.unwrap());
    }
    let rate = requests as f64 / start.elapsed().as_secs_f64();
    took.sort();
    (rate, took)
}

/// A build of the order API's example server, running on a loopback port
/// with a file of its own in `dir`; killed, and its file removed, when
/// dropped.
struct Server {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl Server {
    /// Starts `binary` and waits (30 seconds at most) until it answers.
    async fn start(binary: &Path, dir: PathBuf) -> Server {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A port free now; the server binds it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args(["--addr", &format!("127.0.0.1:{port}"), "--db"])
            .arg(dir.join("orders.db"))
            // Both builds log warnings only, so neither pays for a line
            // per order.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let client = reqwest::Client::new();
        let health = format!("{}/health", server.base);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Its own health page, answered 200: not another process that
            // took the port first.
            match client.get(&health).send().await {
                Ok(answer) if answer.status() == 200 => break,
                Ok(answer) => panic!(
                    "{} answered its health check with {}",
                    binary.display(),
                    answer.status()
                ),
                Err(_) => {}
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("{} exited at start: {status}", binary.display());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer within 30 s",
                binary.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client's `POST /api/orders` of one order to the server at `base`,
/// with a random `Idempotency-Key` when `keyed`.
fn poster(base: &str, keyed: bool) -> impl Fn(reqwest::Client) -> OneOrder + Clone + use<> {
    let orders = format!("{base}/api/orders");
    move |client: reqwest::Client| {
        let orders = orders.clone();
        Box::pin(async move {
            let order = json!({
                "customer_id": "c-1",
                "items": [{"sku": "A", "quantity": 2, "unit_cents": 500}],
                "payment_method": "card",
            });
            let mut request = client.post(&orders).json(&order);
            if keyed {
                request = request.header("idempotency-key", Uuid::new_v4().to_string());
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        })
    }
}

/// One order's request, as [`poster`] makes it.
type OneOrder = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Today's server and the one before group commit, each a process of its
/// own, under the same 32 clients in rounds taken in turn (which goes
/// first alternates): each one's median round, and the median of the
/// pairs' ratios.
async fn against_baseline(today: &Path, before: &Path, dir: &Path) {
    let today = Server::start(today, dir.join("today")).await;
    let before = Server::start(before, dir.join("before")).await;
    let (post_today, post_before) = (poster(&today.base, false), poster(&before.base, false));
    load(32, 300, post_today.clone()).await;
    load(32, 300, post_before.clone()).await;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 1 {
            theirs.push(load(32, REQUESTS, post_before.clone()).await);
        }
        ours.push(load(32, REQUESTS, post_today.clone()).await);
        if round % 2 == 0 {
            theirs.push(load(32, REQUESTS, post_before.clone()).await);
        }
    }
    let mut pairs: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a.0 / b.0).collect();
    pairs.sort_by(f64::total_cmp);
    ours.sort_by(|a, b| a.0.total_cmp(&b.0));
    theirs.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("today's server and the tree's before group commit, each a process of its own");
    print(
        &format!("  today's, 32 clients (median of {ROUNDS})"),
        &ours[ROUNDS / 2],
    );
    print(
        &format!("  before group commit (median of {ROUNDS})"),
        &theirs[ROUNDS / 2],
    );
    println!(
        "  {:<40} {:>8.2} (median of {ROUNDS} pairs; {:.2} to {:.2})",
        "  today's over before group commit",
        pairs[ROUNDS / 2],
        pairs[0],
        pairs[ROUNDS - 1]
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn print(name: &str, (rate, took): &(f64, Vec<Duration>)) {
    println!(
        "  {name:<40} {rate:>8.0} req/s   p50 {:>9.1?}   p99 {:>9.1?}",
        percentile(took, 0.5),
        percentile(took, 0.99)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("wf-bench-orders-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(async {
        let config = Config {
            database: dir.join("orders.db"),
            ..Config::default()
        };
        let app = App::new(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        let (post, post_keyed) = (poster(&base, false), poster(&base, true));
        let missing = format!("{base}/no-such-page");
        let get = move |client: reqwest::Client| {
            let missing = missing.clone();
            async move {
                let response = client.get(&missing).send().await.unwrap();
                assert_eq!(response.status(), 404);
            }
        };
        // Warm: connections, statements, the page cache.
        load(32, 300, post.clone()).await;
        println!("the order API, durable on SQLite (synchronous=FULL)");
        print(
            "GET of a missing page, 32 clients (floor)",
            &load(32, REQUESTS * 4, get).await,
        );
        let journal = app.runner().store().and_then(|s| s.as_sqlite()).unwrap();
        let (mut transactions, mut writes) = (0, 0);
        // The disk's sync time moves from run to run on a shared machine:
        // the round with the median rate stands for them, and the range
        // is printed beside it. Each round of the app's own run ids is
        // paired with one of random ids, taken in turn first, on the same
        // file as it grows.
        let mut rounds = Vec::new();
        let mut keyed_rounds = Vec::new();
        for round in 0..ROUNDS {
            if round % 2 == 1 {
                keyed_rounds.push(load(32, REQUESTS, post_keyed.clone()).await);
            }
            let before = journal.commits();
            rounds.push(load(32, REQUESTS, post.clone()).await);
            let after = journal.commits();
            transactions += after.transactions - before.transactions;
            writes += after.writes - before.writes;
            if round % 2 == 0 {
                keyed_rounds.push(load(32, REQUESTS, post_keyed.clone()).await);
            }
        }
        let mut pairs: Vec<f64> = rounds
            .iter()
            .zip(&keyed_rounds)
            .map(|(ours, keyed)| ours.0 / keyed.0)
            .collect();
        pairs.sort_by(f64::total_cmp);
        rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        keyed_rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        print(
            &format!("POST /api/orders, 32 clients (median of {ROUNDS})"),
            &rounds[ROUNDS / 2],
        );
        println!(
            "  {:<40} {:>8.0} to {:.0} req/s",
            "  the rounds ranged from",
            rounds[0].0,
            rounds[ROUNDS - 1].0
        );
        println!(
            "  {:.2} group transactions per order, {:.1} writes each (a transactional step, \
             lent the batch's transaction, counts as one)",
            transactions as f64 / (REQUESTS * ROUNDS as u64) as f64,
            writes as f64 / transactions.max(1) as f64
        );
        print(
            &format!("  with random run ids (median of {ROUNDS})"),
            &keyed_rounds[ROUNDS / 2],
        );
        println!(
            "  {:<40} {:>8.2} (median of {ROUNDS} pairs; {:.2} to {:.2})",
            "  time-ordered ids over random ones",
            pairs[ROUNDS / 2],
            pairs[0],
            pairs[ROUNDS - 1]
        );
        print(
            "POST /api/orders, 1 client",
            &load(1, REQUESTS / 10, post).await,
        );
        let _ = stop.send(());
        let _ = server.await;
        drop(app);
        if let (Some(today), Some(before)) = (
            std::env::var_os("ORDER_API_SERVER"),
            std::env::var_os("ORDER_API_BASELINE_SERVER"),
        ) {
            println!();
            against_baseline(today.as_ref(), before.as_ref(), &dir).await;
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
