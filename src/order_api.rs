//! The guide's web API: `POST /api/orders` starts the create-order workflow
//! (create order → process payment → send confirmation), a durable run
//! journaled in the orders file, with retry on payment and a circuit
//! breaker on notification, payment and notification through typed
//! handlers; `GET /health` serves the runner's health report and
//! `GET /metrics` Prometheus text.
//!
//! The order pays or is undone: the payment carries the payment step's
//! idempotency key (`step.key()`) to the bank, so a retried or resumed
//! payment charges once, and when the payment fails for good (a declined
//! card, or no answer after the retries) the `create order` step's
//! compensation cancels the order, which the worker, paying `pending`
//! orders from the same file, then never charges.
//!
//! The run belongs to the runner, not to the request: a client that goes
//! away mid-request leaves its order to finish, and the journal agrees
//! with the orders table. An `Idempotency-Key` header names the run (with
//! the customer's id), so a client retrying a request gets the first one's
//! order; the same key with another body is refused (422).
//!
//! Beside the web app, in the same process and on the same runner, the
//! host runs the guide's recurring workflows (the health monitor and the
//! metrics collector); a stop signal shuts both down together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use serde_json::json;
use workflow_runtime::behavior::{BreakerConfig, Breakers, CircuitOpen, Logging, Metrics, Tracing};
use workflow_runtime::console::Console;
use workflow_runtime::durable::{
    DurableError, SqliteOptions, SqliteStore, SqliteTx, StepCtx, Store,
};
use workflow_runtime::handlers::Handlers;
use workflow_runtime::host::{HealthStatus, Runner, Schedule, WorkflowHost};
use workflow_runtime::prelude::*;
use workflow_runtime::{StepError, StepFailure};

use crate::bank::Bank;
pub use crate::bank::PaymentError;
use crate::orders::{self, Item, Order, OrderStore, Status, StoreError, order_total};
use crate::worker::{HealthMonitor, MetricsCollector};

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// `POST /api/orders`'s body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateOrderRequest {
    /// Who orders.
    pub customer_id: String,
    /// What.
    pub items: Vec<Item>,
    /// How they pay: any name; `"declined-card"` is declined.
    pub payment_method: String,
}

/// The `process payment` handler's request.
pub struct ProcessPayment {
    order: Order,
    method: String,
    /// The payment step's idempotency key: the same on every attempt and
    /// after a restart, so the bank charges the order once.
    key: String,
}

/// The `send confirmation` handler's request.
pub struct SendConfirmation(Order);

/// A created order and how it will be paid: what `create order` hands on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Placed {
    order: Order,
    method: String,
}

/// The create-order workflow: the order is inserted in the step's
/// transaction, committed with its journal row, and cancelled by the
/// step's compensation if the run fails before it is paid; payment and
/// notification go through the typed handlers.
pub struct CreateOrder {
    handlers: Handlers,
    store: OrderStore,
    approval: Approval,
}

/// Which orders wait for a manager, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Approval {
    /// Orders whose total is above this many cents wait for a decision.
    pub above_cents: u64,
    /// How long they wait before they are rejected.
    pub within: Duration,
}

/// A manager's decision on an order: `POST /api/orders/{id}/approval`'s
/// body, and the event the order's run waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Go on: the order is paid.
    Approve,
    /// Stop: the order is cancelled, nothing charged.
    Reject,
}

/// Why an order awaiting approval was not approved.
#[derive(Debug)]
pub enum NotApproved {
    /// A manager rejected it.
    Rejected,
    /// Nobody decided in time.
    TimedOut(Duration),
}

impl NotApproved {
    /// How a rejection reads in the run's journaled failure.
    pub const REJECTED: &'static str = "rejected by a manager";
}

impl std::fmt::Display for NotApproved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotApproved::Rejected => f.write_str(Self::REJECTED),
            NotApproved::TimedOut(within) => {
                write!(f, "not approved within {}s", within.as_secs())
            }
        }
    }
}

impl std::error::Error for NotApproved {}

/// Creates, pays and confirms an order.
#[workflow(durable, name = "CreateOrder", handlers(ProcessPayment => Order, SendConfirmation => Order))]
impl CreateOrder {
    #[step(given = "order request")]
    fn request(&self, req: CreateOrderRequest) -> CreateOrderRequest {
        req
    }

    #[step(when = "create order", transactional, compensate = cancel)]
    async fn create(
        &self,
        tx: &mut SqliteTx,
        req: CreateOrderRequest,
    ) -> Result<Placed, StoreError> {
        // Above the limit, created awaiting approval: no worker charges it
        // before a manager says so.
        let status = match order_total(&req.items) {
            Some(total) if total > self.approval.above_cents => Status::AwaitingApproval,
            _ => Status::Pending,
        };
        let order = orders::insert_as(tx, req.customer_id, req.items, status).await?;
        Ok(Placed {
            order,
            method: req.payment_method,
        })
    }

    /// An order above the limit waits (durably: the run is suspended,
    /// holding no worker) for `POST /api/orders/{id}/approval`, for a day
    /// at most; a rejection, or no decision in time, fails the run, and
    /// `create order`'s compensation cancels the order.
    #[step(when = "manager approval")]
    async fn approval(&self, step: &StepCtx, mut placed: Placed) -> Result<Placed, StepError> {
        if placed.order.status != Status::AwaitingApproval {
            return Ok(placed);
        }
        self.store
            .link_run(placed.order.id, step.run_id())
            .await
            .map_err(StepError::new)?;
        let within = self.approval.within;
        match step.event::<Decision>("approval").within(within).await {
            Some(Decision::Approve) => {
                self.store
                    .approve(placed.order.id)
                    .await
                    .map_err(StepError::new)?;
                placed.order.status = Status::Pending;
                tracing::info!(order = placed.order.id, "order approved");
                Ok(placed)
            }
            Some(Decision::Reject) => Err(StepError::new(NotApproved::Rejected)),
            None => Err(StepError::new(NotApproved::TimedOut(within))),
        }
    }

    #[step(
        when = "process payment",
        retry(retries = 3, backoff = "50ms", filter = is_transient)
    )]
    async fn pay(&self, step: &StepCtx, placed: Placed) -> Result<Order, StepError> {
        self.handlers
            .call(ProcessPayment {
                order: placed.order,
                method: placed.method,
                key: step.key(),
            })
            .await
    }

    #[step(when = "send confirmation", circuit_breaker(name = "notifications"))]
    async fn confirm(&self, order: Order) -> Result<Order, StepError> {
        self.handlers.call(SendConfirmation(order)).await
    }

    #[step(then = "completed")]
    fn completed(&self, order: &Order) -> bool {
        order.status == Status::Confirmed
    }

    /// Undoes `create order` once a later step failed for good. An unpaid
    /// order is cancelled: left pending, the worker would charge a card
    /// the client was told had failed. A paid one (the confirmation
    /// failed) stays paid: undoing it would be a refund, not a cancel.
    #[compensation(retry(max_attempts = 3, backoff = "50ms"))]
    async fn cancel(&self, placed: Placed) -> Result<(), StoreError> {
        let id = placed.order.id;
        if self.store.cancel_pending(id).await? {
            tracing::info!(order = id, "order cancelled: its payment failed");
        } else {
            tracing::warn!(order = id, "order not cancelled: it is no longer pending");
        }
        Ok(())
    }
}

/// The notification service is unreachable.
#[derive(Debug)]
pub struct NotificationError;

impl std::fmt::Display for NotificationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("notification service unreachable")
    }
}

impl std::error::Error for NotificationError {}

/// How to run the API.
#[derive(Clone, Debug)]
pub struct Config {
    /// The SQLite file (created on first start).
    pub database: PathBuf,
    /// Failed notifications in a row that open the breaker (the guide's
    /// 5).
    pub breaker_failures: u32,
    /// The longest any step of a run may take (the guide's
    /// `DefaultWorkflowOptions.StepTimeout`, 30 s).
    pub step_timeout: Duration,
    /// How long the breaker stays open.
    pub breaker_open_for: Duration,
    /// How long the (simulated) payment service takes to answer.
    pub payment_latency: Duration,
    /// How often the recurring workflows run (the first at start).
    pub recurring_every: Duration,
    /// Which orders wait for a manager's approval, and how long.
    pub approval: Approval,
    /// The wall clock the runs read (a test's follows tokio's).
    pub clock: workflow_runtime::host::Clock,
    /// How long a query waits for the database's one connection.
    pub pool_timeout: Duration,
    /// Who may act on runs in the console at `/workflows` (cancel,
    /// redrive, send events): each operator's name and the token its
    /// session cookie (`order_api_operator`) holds. Empty: the console is
    /// read-only.
    pub operators: Vec<Operator>,
    /// The Mermaid ES module the console draws definitions with, if any
    /// (`Console::mermaid`); without it the console shows their text.
    pub mermaid: Option<String>,
}

/// A person allowed to act on runs in the console.
#[derive(Clone, Debug)]
pub struct Operator {
    /// Who they are, as the console logs their actions.
    pub name: String,
    /// The secret their session cookie holds.
    pub token: String,
}

/// The cookie an operator's session sets.
pub const OPERATOR_COOKIE: &str = "order_api_operator";

impl Default for Config {
    fn default() -> Self {
        Config {
            database: PathBuf::from("orders.db"),
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(30),
            step_timeout: Duration::from_secs(30),
            payment_latency: Duration::ZERO,
            recurring_every: Duration::from_secs(30),
            approval: Approval {
                above_cents: 50_000,
                within: Duration::from_secs(86_400),
            },
            clock: workflow_runtime::host::Clock::system(),
            pool_timeout: Duration::from_secs(30),
            operators: Vec::new(),
            mermaid: None,
        }
    }
}

/// Why the application could not start.
#[derive(Debug)]
pub enum AppError {
    /// The orders file, which holds the journal too, failed.
    Journal(workflow_runtime::durable::StoreError),
    /// The orders table failed.
    Orders(StoreError),
    /// Unfinished orders could not be resumed.
    Resume(DurableError),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Journal(e) => write!(f, "order API: {e}"),
            AppError::Orders(e) => write!(f, "order API: {e}"),
            AppError::Resume(e) => write!(f, "order API: resuming orders: {e}"),
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Journal(e) => Some(e),
            AppError::Orders(e) => Some(e),
            AppError::Resume(e) => Some(e),
        }
    }
}

impl From<workflow_runtime::durable::StoreError> for AppError {
    fn from(e: workflow_runtime::durable::StoreError) -> Self {
        AppError::Journal(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Orders(e)
    }
}

impl From<DurableError> for AppError {
    fn from(e: DurableError) -> Self {
        AppError::Resume(e)
    }
}

/// Run each time `/health` is asked for.
pub struct DatabaseCheck {
    /// The orders.
    pub store: OrderStore,
}

/// The orders database answers.
#[workflow]
impl DatabaseCheck {
    #[step(given = "the database answers")]
    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

/// The running application's shared state.
#[derive(Clone)]
pub struct App {
    runner: Runner,
    /// The host of the recurring workflows, until `serve` runs it.
    host: Arc<std::sync::Mutex<Option<WorkflowHost>>>,
    store: OrderStore,
    bank: Bank,
    notifications_down: Arc<AtomicBool>,
    metrics: PrometheusHandle,
    operators: Arc<Vec<Operator>>,
    mermaid: Option<String>,
    /// Orders above this many cents wait for a manager's approval.
    approval_above: u64,
}

fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // One recorder per process; a second app shares it.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl App {
    /// Opens the orders file (the journal's too) and wires the handlers,
    /// the runner and the breaker. Orders a stopped server left unfinished
    /// resume at once.
    pub async fn new(config: &Config) -> Result<App, AppError> {
        let sqlite = SqliteStore::open(
            SqliteOptions::new(&config.database).acquire_timeout(config.pool_timeout),
        )
        .await?;
        let store = OrderStore::beside(&sqlite).await?;
        let notifications_down = Arc::new(AtomicBool::new(false));
        let bank = Bank::new();
        let handlers = {
            let (pay, notify) = (store.clone(), store.clone());
            let (down, payments) = (notifications_down.clone(), bank.clone());
            let latency = config.payment_latency;
            Handlers::builder()
                .register(move |req: ProcessPayment| {
                    let (store, bank) = (pay.clone(), payments.clone());
                    async move {
                        tokio::time::sleep(latency).await;
                        let mut order = req.order;
                        let charge = bank
                            .charge(&req.key, order.id, order.total_cents, &req.method)
                            .map_err(StepError::new)?;
                        order.status = Status::Paid;
                        order.payment_id = Some(charge.id);
                        store.update(&order).await.map_err(StepError::new)?;
                        Ok::<_, StepError>(order)
                    }
                })
                .register(move |SendConfirmation(mut order): SendConfirmation| {
                    let (store, down) = (notify.clone(), down.clone());
                    async move {
                        if down.load(Ordering::SeqCst) {
                            return Err(StepError::new(NotificationError));
                        }
                        order.status = Status::Confirmed;
                        store.update(&order).await.map_err(StepError::new)?;
                        Ok(order)
                    }
                })
                .build()
        };
        // The breaker's settings come from the configuration; the step
        // names it and takes it as configured.
        let breakers = Breakers::new();
        breakers.breaker(
            "notifications",
            BreakerConfig::new(config.breaker_failures, config.breaker_open_for),
        );
        // One host for the durable orders and the recurring workflows: its
        // runner serves the API's requests too.
        let every = Schedule::every(config.recurring_every).run_immediately(true);
        let host = WorkflowHost::builder()
            .store(Store::new(sqlite))
            .durable(CreateOrder {
                handlers: handlers.clone(),
                store: store.clone(),
                approval: config.approval,
            })
            .clock(config.clock)
            .recurring_every(
                HealthMonitor {
                    store: store.clone(),
                },
                every.clone(),
            )
            .health_check(DatabaseCheck {
                store: store.clone(),
            })
            .recurring_every(
                MetricsCollector {
                    store: store.clone(),
                },
                every,
            )
            .behavior(Tracing)
            .behavior(Metrics)
            .behavior(Logging)
            .handlers(handlers)
            .breakers(breakers)
            // The guide's DefaultWorkflowOptions: a 30 s step timeout, and
            // a failed step ends the run (ContinueOnError = false).
            .workflow_options(WorkflowOptions::default().step_timeout(config.step_timeout))
            .build()
            .expect("the workflow's handlers are registered");
        let runner = host.runner();
        runner.resume().await?;
        Ok(App {
            runner,
            host: Arc::new(std::sync::Mutex::new(Some(host))),
            store,
            bank,
            notifications_down,
            metrics: prometheus(),
            operators: Arc::new(config.operators.clone()),
            mermaid: config.mermaid.clone(),
            approval_above: config.approval.above_cents,
        })
    }

    /// The runner, whose durable runs hold every order's workflow.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Makes the notification service fail (or recover), to see the
    /// breaker open.
    pub fn set_notifications_down(&self, down: bool) {
        self.notifications_down.store(down, Ordering::SeqCst);
    }

    /// The store, for inspection.
    pub fn store(&self) -> &OrderStore {
        &self.store
    }

    /// The (simulated) bank the payments go to: what it was asked, with
    /// which keys, and what it charged.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// The HTTP routes.
    pub fn router(self) -> Router {
        // The console acts for the operator whose session cookie it
        // finds; anyone else reads. With no operators it only reads.
        let operators = self.operators.clone();
        let mut console = Console::new(self.runner.clone());
        if let Some(url) = &self.mermaid {
            console = console.mermaid(url.clone());
        }
        if !operators.is_empty() {
            console = console.authorize(move |request| {
                let token = request
                    .headers
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| *name == OPERATOR_COOKIE)?
                    .1;
                // Compared in constant time; an empty token names nobody.
                let same = |op: &&Operator| {
                    op.token.len() == token.len()
                        && op
                            .token
                            .bytes()
                            .zip(token.bytes())
                            .fold(0, |d, (x, y)| d | (x ^ y))
                            == 0
                };
                let operator = operators
                    .iter()
                    .filter(|op| !op.token.is_empty())
                    .find(same)?;
                Some(operator.name.clone())
            });
        }
        Router::new()
            .nest("/workflows", console.router())
            .route("/api/orders", post(create_order))
            .route("/api/orders/{id}", get(get_order))
            .route("/api/orders/{id}/approval", post(decide))
            .route("/health", get(health))
            .route("/metrics", get(metrics_text))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self)
    }

    /// Serves on `listener`, and runs the recurring workflows, until
    /// `shutdown` completes; then stops both gracefully and returns once
    /// both have stopped.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let host = self
            .host
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let stop = tokio_util::sync::CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal.cancel();
        });
        // Whichever side ends first (the signal, a server error, a host
        // that stops on a failure) stops the other too.
        let http = async {
            let served = axum::serve(listener, self.router())
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .await;
            stop.cancel();
            served
        };
        let recurring = async {
            if let Some(host) = host {
                let summary = host.run_until(stop.cancelled()).await;
                tracing::info!(?summary, "recurring workflows stopped");
                stop.cancel();
            }
        };
        let (served, ()) = tokio::join!(http, recurring);
        served
    }
}

/// An `application/problem+json` response.
fn problem(
    status: StatusCode,
    title: &str,
    detail: impl Into<String>,
    extra: serde_json::Value,
) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn validate(req: &CreateOrderRequest) -> Result<(), String> {
    if req.customer_id.trim().is_empty() {
        return Err("`customer_id` must not be empty".into());
    }
    if req.items.is_empty() {
        return Err("`items` must list at least one item".into());
    }
    if let Some(item) = req
        .items
        .iter()
        .find(|i| i.quantity == 0 || i.sku.trim().is_empty())
    {
        return Err(format!(
            "item {:?}: `sku` must not be empty and `quantity` must be at least 1",
            item.sku
        ));
    }
    if req.payment_method.trim().is_empty() {
        return Err("`payment_method` must not be empty".into());
    }
    Ok(())
}

fn is_transient(failure: &StepFailure) -> bool {
    match failure {
        StepFailure::Error(e) => e
            .downcast_ref::<PaymentError>()
            .is_none_or(PaymentError::is_transient),
        _ => true,
    }
}

/// A request's headers, as OpenTelemetry's propagators read them.
struct Carrier<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The request's span: a traced order's run journals it, so every step, in
/// whichever process and however late, joins the request's trace. A
/// caller that sent its own trace context (`traceparent`) is its parent.
async fn create_order(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<CreateOrderRequest>, JsonRejection>,
) -> Response {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = tracing::info_span!(
        "request",
        otel.name = "POST /api/orders",
        otel.kind = "server"
    );
    let caller =
        opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Carrier(&headers));
    let _ = span.set_parent(caller);
    create_order_in_span(app, headers, body)
        .instrument(span)
        .await
}

async fn create_order_in_span(
    app: App,
    headers: HeaderMap,
    body: Result<Json<CreateOrderRequest>, JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(rejection) => {
            let status = match rejection.status() {
                s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                _ => StatusCode::BAD_REQUEST,
            };
            return problem(
                status,
                "invalid request body",
                rejection.body_text(),
                json!({}),
            );
        }
    };
    if let Err(detail) = validate(&req) {
        return problem(StatusCode::BAD_REQUEST, "invalid order", detail, json!({}));
    }
    let Some(total) = order_total(&req.items) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "order total too large",
            "the items' quantities times their unit prices add up to more cents than an \
             order can hold"
                .to_owned(),
            json!({}),
        );
    };
    // The client's key, scoped to its customer, makes a retried request
    // the same run; without one, each request is a run of its own, under
    // an id that sorts by time, which keeps the journal's writes together.
    let run_id = headers
        .get("idempotency-key")
        .and_then(|key| key.to_str().ok())
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .map_or_else(workflow_runtime::durable::new_run_id, |key| {
            format!("{}/{key}", req.customer_id)
        });
    let run = match app
        .runner
        .start(&CreateOrder::ID, run_id.clone(), req)
        .await
    {
        Ok(run) => run,
        Err(error @ DurableError::InputMismatch { .. }) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency key reused",
                error.to_string(),
                json!({ "execution_id": run_id }),
            );
        }
        Err(error) => return start_failed(&run_id, &error),
    };
    // Dropped with the request if the client leaves: the run goes on. An
    // order that waits for a manager is answered once it waits: 202,
    // awaiting approval. One above today's limit is looked at soon; any
    // other (a retried request whose order was made under another limit)
    // only if it is not done in a second, so most requests never read how
    // their run stands.
    let first_look = if total > app.approval_above {
        Duration::from_millis(25)
    } else {
        Duration::from_secs(1)
    };
    let result = tokio::select! {
        result = run.result() => result,
        order = awaiting_approval(&app, &run_id, first_look) => {
            let location = format!("/api/orders/{}", order.id);
            return (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(order)).into_response();
        }
    };
    match result {
        // The run id is the run's correlation id: its `Logging` events
        // carry it, in whichever process drives the run.
        Ok(order) => {
            let mut created = (
                StatusCode::CREATED,
                [(header::LOCATION, format!("/api/orders/{}", order.id))],
                Json(order),
            )
                .into_response();
            // A customer id may hold bytes a header cannot: the order is
            // made all the same, and the body says where it is.
            if let Ok(id) = HeaderValue::try_from(&run_id) {
                created
                    .headers_mut()
                    .insert(HeaderName::from_static("x-correlation-id"), id);
            }
            created
        }
        // A failed compensation lands here too: its error ends with the
        // compensation's failure, so it answers 500, never 402.
        Err(
            DurableError::Failed { step, error, .. }
            | DurableError::CompensationFailed { step, error, .. },
        ) => {
            // The journal keeps a failure as its message; the run's last
            // error says which kind it was.
            let circuit_open = error.ends_with(
                &CircuitOpen {
                    breaker: "notifications".into(),
                }
                .to_string(),
            );
            let declined = error.ends_with(&PaymentError::DECLINED.to_string());
            let not_approved = step.as_deref() == Some("manager approval");
            let (status, title) = if declined {
                // A business refusal: the client's to act on, not ours.
                (StatusCode::PAYMENT_REQUIRED, "payment declined")
            } else if not_approved {
                (StatusCode::CONFLICT, "order not approved")
            } else if circuit_open {
                (StatusCode::SERVICE_UNAVAILABLE, "order creation failed")
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, "order creation failed")
            };
            let step = step.unwrap_or_default();
            let kind = CreateOrder::STEPS
                .iter()
                .find(|meta| meta.title == step)
                .map(|meta| meta.kind.as_str());
            if declined || not_approved {
                tracing::info!(%error, %step, correlation_id = run_id, "order refused");
            } else {
                tracing::error!(%error, %step, correlation_id = run_id, "order creation failed");
            }
            problem(
                status,
                title,
                error,
                json!({
                    "workflow": CreateOrder::NAME,
                    "step": step,
                    "step_kind": kind,
                    "execution_id": run_id,
                }),
            )
        }
        Err(error) => start_failed(&run_id, &error),
    }
}

/// The order run `run_id` made, once the run waits for its approval.
async fn awaiting_approval(app: &App, run_id: &str, first_look: Duration) -> Order {
    tokio::time::sleep(first_look).await;
    loop {
        if let Ok(status) = app.runner.status(run_id).await
            && status.waits_for("approval")
            && let Ok(Some(order)) = app.store.order_of_run(run_id).await
        {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `POST /api/orders/{id}/approval`'s body.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// `"approve"` or `"reject"`.
    pub decision: Decision,
}

/// A manager's decision on an order awaiting approval: sent to the
/// order's run, which goes on (paid) or is undone (cancelled). An
/// `idempotency-key` header makes a retried request one decision.
async fn decide(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<DecisionRequest>, JsonRejection>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid order id",
            format!("{id:?} is not a number"),
            json!({}),
        );
    };
    let decision = match body {
        Ok(Json(body)) => body.decision,
        Err(rejection) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid request body",
                rejection.body_text(),
                json!({}),
            );
        }
    };
    let order = match app.store.get(id).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "order not found",
                format!("no order {id}"),
                json!({}),
            );
        }
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store failure",
                e.to_string(),
                json!({}),
            );
        }
    };
    let run = match app.store.run_of(id).await {
        Ok(Some(run)) if order.status == Status::AwaitingApproval => run,
        Ok(_) => {
            return problem(
                StatusCode::CONFLICT,
                "order not awaiting approval",
                format!("order {id} is {}", order.status.as_str()),
                json!({ "status": order.status.as_str() }),
            );
        }
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store failure",
                e.to_string(),
                json!({}),
            );
        }
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|key| key.to_str().ok())
        .filter(|key| !key.is_empty() && key.len() <= 200);
    let sent = match key {
        Some(key) => {
            app.runner
                .send_once(&CreateOrder::ID, &run, "approval", decision, key)
                .await
        }
        None => {
            app.runner
                .send(&CreateOrder::ID, &run, "approval", decision)
                .await
        }
    };
    match sent {
        Ok(_) => {
            tracing::info!(order = id, ?decision, run, "approval decision sent");
            (
                StatusCode::ACCEPTED,
                [(header::LOCATION, format!("/api/orders/{id}"))],
                Json(json!({ "order": id, "decision": decision })),
            )
                .into_response()
        }
        Err(error @ DurableError::NotRunning { .. }) => problem(
            StatusCode::CONFLICT,
            "order not awaiting approval",
            error.to_string(),
            json!({}),
        ),
        Err(error) => start_failed(&run, &error),
    }
}

/// A run that could not start or be read back: the journal failed.
fn start_failed(run_id: &str, error: &DurableError) -> Response {
    tracing::error!(%error, run = run_id, "order workflow unavailable");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "order workflow unavailable",
        error.to_string(),
        json!({ "execution_id": run_id }),
    )
}

async fn get_order(State(app): State<App>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid order id",
            format!("{id:?} is not a number"),
            json!({}),
        );
    };
    match app.store.get(id).await {
        Ok(Some(order)) => Json(order).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "order not found",
            format!("no order {id}"),
            json!({}),
        ),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store failure",
            e.to_string(),
            json!({}),
        ),
    }
}

async fn health(State(app): State<App>) -> Response {
    // The passive report from past runs, with the health checks run now.
    let mut report = app.runner.check_health().await;
    let durable = match app.runner.durable_health().await {
        Ok(durable) => durable,
        Err(error) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "health unavailable",
                error.to_string(),
                json!({}),
            );
        }
    };
    report.status = report.status.max(durable.status);
    let code = if report.status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    if let Some(body) = body.as_object_mut() {
        body.insert(
            "durable".into(),
            serde_json::to_value(&durable).unwrap_or_default(),
        );
    }
    (code, Json(body)).into_response()
}

async fn metrics_text(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not found",
        "no such route",
        json!({}),
    )
}

/// The address the example listens on by default.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 3000);
