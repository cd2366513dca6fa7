//! The guide's web API: `POST /api/orders` runs the create-order workflow
//! (create order → process payment → send confirmation) through typed
//! handlers, with retry on payment and a circuit breaker on notification;
//! `GET /health` serves the runner's health report and `GET /metrics`
//! Prometheus text. Orders live in SQLite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::json;
use workflow_runtime::behavior::{
    BreakerConfig, CircuitBreaker, CircuitOpen, Metrics, Retry, Tracing,
};
use workflow_runtime::handlers::Handlers;
use workflow_runtime::host::{HealthStatus, Runner};
use workflow_runtime::prelude::*;
use workflow_runtime::{StepError, StepFailure, WorkflowError};

use crate::orders::{Item, Order, OrderStore, Status, StoreError};

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// `POST /api/orders`'s body.
#[derive(Clone, Debug, Deserialize)]
pub struct CreateOrderRequest {
    /// Who orders.
    pub customer_id: String,
    /// What.
    pub items: Vec<Item>,
    /// How they pay: any name; `"declined-card"` is declined.
    pub payment_method: String,
}

/// The `create order` handler's request.
pub struct CreateOrder {
    customer_id: String,
    items: Vec<Item>,
}

/// The `process payment` handler's request.
pub struct ProcessPayment {
    order: Order,
    method: String,
}

/// The `send confirmation` handler's request.
pub struct SendConfirmation(Order);

/// Why a payment failed; only transient failures are retried.
#[derive(Debug)]
pub struct PaymentError {
    reason: &'static str,
    transient: bool,
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payment failed: {}", self.reason)
    }
}

impl std::error::Error for PaymentError {}

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
    /// Failed notifications in a row that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open.
    pub breaker_open_for: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: PathBuf::from("orders.db"),
            breaker_failures: 3,
            breaker_open_for: Duration::from_secs(30),
        }
    }
}

/// The running application's shared state.
#[derive(Clone)]
pub struct App {
    runner: Runner,
    handlers: Handlers,
    store: OrderStore,
    notifications_down: Arc<AtomicBool>,
    breaker: Arc<CircuitBreaker>,
    metrics: PrometheusHandle,
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
    /// Opens the store and wires the handlers, the runner and the breaker.
    pub async fn new(config: &Config) -> Result<App, StoreError> {
        let store = OrderStore::open(&config.database).await?;
        let notifications_down = Arc::new(AtomicBool::new(false));
        let handlers = {
            let (create, pay, notify) = (store.clone(), store.clone(), store.clone());
            let down = notifications_down.clone();
            Handlers::builder()
                .register(move |req: CreateOrder| {
                    let store = create.clone();
                    async move { store.create(req.customer_id, req.items).await }
                })
                .register(move |req: ProcessPayment| {
                    let store = pay.clone();
                    async move {
                        if req.method == "declined-card" {
                            return Err(StepError::new(PaymentError {
                                reason: "card declined",
                                transient: false,
                            }));
                        }
                        let mut order = req.order;
                        order.status = Status::Paid;
                        order.payment_id = Some(format!("tx-{}", order.id));
                        store.update(&order).await.map_err(StepError::new)?;
                        Ok(order)
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
        let runner = Runner::builder()
            .behavior(Tracing)
            .behavior(Metrics)
            .handlers(handlers.clone())
            .build()
            .expect("no workflow is registered by name");
        Ok(App {
            runner,
            handlers,
            store,
            notifications_down,
            breaker: CircuitBreaker::new(
                "notifications",
                BreakerConfig::new(config.breaker_failures, config.breaker_open_for),
            ),
            metrics: prometheus(),
        })
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

    /// The HTTP routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/api/orders", post(create_order))
            .route("/api/orders/{id}", get(get_order))
            .route("/health", get(health))
            .route("/metrics", get(metrics_text))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self)
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
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
        StepFailure::Error(e) => e.downcast_ref::<PaymentError>().is_none_or(|p| p.transient),
        _ => true,
    }
}

async fn create_order(
    State(app): State<App>,
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
    let App {
        runner,
        handlers,
        breaker,
        ..
    } = app;
    let execution = Arc::new(OnceLock::new());
    let seen = execution.clone();
    let result = runner
        .run_fn("CreateOrder", move |ctx| async move {
            let _ = seen.set(ctx.execution_id());
            let method = req.payment_method.clone();
            ctx.set_metadata("customerId", req.customer_id.clone());
            Workflow::given(&ctx, "order request", move || req)
                .handle("create order", &handlers, |r| CreateOrder {
                    customer_id: r.customer_id,
                    items: r.items,
                })
                .handle("process payment", &handlers, move |order| ProcessPayment {
                    order,
                    method: method.clone(),
                })
                .retry(
                    Retry::new(3)
                        .backoff(Duration::from_millis(50))
                        .filter(is_transient),
                )
                .handle("send confirmation", &handlers, SendConfirmation)
                .circuit_breaker(breaker)
                .then("completed", |order: &Order| {
                    order.status == Status::Confirmed
                })
                .await
        })
        .await;
    match result {
        Ok(order) => (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/api/orders/{}", order.id))],
            Json(order),
        )
            .into_response(),
        Err(error) => {
            let circuit_open = matches!(&error, WorkflowError::Failed { error, .. } if error.downcast_ref::<CircuitOpen>().is_some());
            let status = if circuit_open {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let step = error.step();
            tracing::error!(%error, step = %step.title, "order creation failed");
            problem(
                status,
                "order creation failed",
                error.to_string(),
                json!({
                    "workflow": &*step.workflow,
                    "step": &*step.title,
                    "step_kind": step.kind.as_str(),
                    "execution_id": execution.get().map(|id| id.to_string()),
                }),
            )
        }
    }
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
    let mut report = app.runner.health();
    let breaker = app.breaker.snapshot();
    report.breakers.push(workflow_runtime::host::BreakerHealth {
        name: breaker.name.to_string(),
        state: breaker.state.to_string(),
        consecutive_failures: breaker.consecutive_failures,
        transitions: breaker.transitions,
    });
    let breaker_status = match breaker.state {
        workflow_runtime::behavior::CircuitState::Closed => HealthStatus::Healthy,
        workflow_runtime::behavior::CircuitState::HalfOpen => HealthStatus::Degraded,
        workflow_runtime::behavior::CircuitState::Open => HealthStatus::Unhealthy,
    };
    report.status = report.status.max(breaker_status);
    let code = if report.status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(report)).into_response()
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
