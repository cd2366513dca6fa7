//! The guide's HTTP client scenario: a workflow calling an external API
//! through reqwest, its circuit breaker (3 failures, open for a minute)
//! wrapping the call inside the step, as the guide's `WrapAsync` does,
//! against a flaky local server. Beside it, a pricing workflow whose cache
//! serves the last price while the pricing service is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use workflow_runtime::StepError;
use workflow_runtime::behavior::{BreakerConfig, Cache, CircuitBreaker};
use workflow_runtime::chain::BehaviorExt;
use workflow_runtime::prelude::*;

/// What the workflow sends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiRequest {
    /// The payload.
    pub payload: String,
}

/// What the API answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResponse {
    /// Whether it worked.
    pub success: bool,
    /// Which call it was, counted by the server.
    pub call: u32,
}

/// The flaky server's switch and counter.
#[derive(Clone, Default)]
pub struct Flaky {
    down: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

impl Flaky {
    /// Makes the server answer 503 (or recover).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Calls it has received.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Serves `POST /api/process` and `GET /api/price/{sku}` on
    /// `listener`: 503 while down, else 200. A price is the sku's length in
    /// dollars plus the call's number in cents, so each fetch is told apart.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let pricing = self.clone();
        let app = Router::new()
            .route(
                "/api/price/{sku}",
                get(move |Path(sku): Path<String>| {
                    let call = pricing.answer();
                    async move {
                        let dollars = u32::try_from(sku.len()).unwrap_or(u32::MAX);
                        Ok::<_, StatusCode>(Json(Price {
                            sku,
                            cents: dollars.saturating_mul(100).saturating_add(call?),
                        }))
                    }
                }),
            )
            .route(
                "/api/process",
                post(move |Json(_): Json<ApiRequest>| {
                    let call = self.answer();
                    async move {
                        Ok::<_, StatusCode>(Json(ApiResponse {
                            success: true,
                            call: call?,
                        }))
                    }
                }),
            );
        axum::serve(listener, app).await
    }

    /// Counts a call and says how it is answered: its number, or 503 while
    /// down.
    fn answer(&self) -> Result<u32, StatusCode> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.down.load(Ordering::SeqCst) {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        }
        Ok(call)
    }
}

/// Calls the external API.
pub struct ExternalApiWorkflow {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The API's base URL.
    pub base: String,
    /// The breaker around the call, the workflow's own as the guide's is.
    pub breaker: Arc<CircuitBreaker>,
}

impl ExternalApiWorkflow {
    /// The workflow with the guide's breaker: open after 3 failures in a
    /// row, for a minute.
    pub fn new(client: reqwest::Client, base: impl Into<String>) -> Self {
        Self::with_breaker(client, base, BreakerConfig::new(3, Duration::from_secs(60)))
    }

    /// The workflow with a breaker of its own settings (a test's shorter
    /// open period).
    pub fn with_breaker(
        client: reqwest::Client,
        base: impl Into<String>,
        config: BreakerConfig,
    ) -> Self {
        ExternalApiWorkflow {
            client,
            base: base.into(),
            breaker: CircuitBreaker::new("external-api", config),
        }
    }
}

/// Calls the external API's `/api/process` behind the workflow's breaker.
#[workflow(name = "ExternalApiCall")]
impl ExternalApiWorkflow {
    #[step(given = "api request")]
    fn request(&self, payload: String) -> ApiRequest {
        ApiRequest { payload }
    }

    // A hung API must not hang the run: the guide's client has
    // HttpClient's 100 s default; this step allows 10 s.
    #[step(when = "call external api", timeout = "10s")]
    async fn call(
        &self,
        ctx: &WorkflowContext,
        request: ApiRequest,
    ) -> Result<ApiResponse, StepError> {
        // The breaker wraps the call inside the step; open, it refuses
        // without calling (`CircuitOpen`).
        let call = async {
            self.client
                .post(format!("{}/api/process", self.base))
                .json(&request)
                .send()
                .await?
                .error_for_status()?
                .json::<ApiResponse>()
                .await
        };
        self.breaker.call(ctx, "POST /api/process", call).await
    }

    #[step(then = "successful")]
    fn successful(&self, response: &ApiResponse) -> bool {
        response.success
    }
}

/// A sku's price, as the pricing API answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// The sku.
    pub sku: String,
    /// Its price, in cents.
    pub cents: u32,
}

/// Prices a sku through the pricing API, with the guide's "serve the
/// cached price when the pricing service is down": a cache on the step
/// keeps each sku's price for `fresh_for` (answered without a call) and
/// answers with the last price while the API fails.
pub struct PricingWorkflow {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The API's base URL.
    pub base: String,
    /// The prices, kept across runs.
    pub prices: Arc<Cache<Price>>,
}

impl PricingWorkflow {
    /// Prices kept fresh for `fresh_for`, keyed by sku.
    pub fn new(client: reqwest::Client, base: impl Into<String>, fresh_for: Duration) -> Self {
        PricingWorkflow {
            client,
            base: base.into(),
            prices: Arc::new(
                Cache::fresh_for(fresh_for)
                    .or_stale_on_failure()
                    .key(|step| step.ctx().metadata::<String>(SKU).unwrap_or_default()),
            ),
        }
    }
}

/// The run's metadata key holding its sku, which the cache keys on.
const SKU: &str = "sku";

/// Fetches a sku's price, served from the cache while fresh or while the
/// API is down.
#[workflow(name = "PriceLookup")]
impl PricingWorkflow {
    #[step(given = "a sku")]
    fn sku(&self, ctx: &WorkflowContext, sku: String) -> String {
        ctx.set_metadata(SKU, sku.clone());
        sku
    }

    // The cache is written first, so it sits outside the timeout: a hung
    // API answers with the last price too.
    #[step(when = "price fetched", behaviors(self.prices.clone()), timeout = "10s")]
    async fn fetch(&self, sku: String) -> Result<Price, StepError> {
        let price = self
            .client
            .get(format!("{}/api/price/{sku}", self.base))
            .send()
            .await?
            .error_for_status()?
            .json::<Price>()
            .await?;
        Ok(price)
    }

    #[step(then = "priced")]
    fn priced(&self, price: &Price) -> bool {
        price.cents > 0
    }
}
