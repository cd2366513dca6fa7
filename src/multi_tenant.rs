//! The guide's multi-tenancy: the `X-Tenant` request header names a tenant
//! of the service's directory, whose id and name reach every workflow
//! context (`tenantId`, `tenantName`) through the runner's context
//! factory, and a step that meets another tenant's order fails with a
//! tenant error, which the API answers with 403 and nothing else.

use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::SqlitePool;
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;
use workflow_runtime::{StepError, WorkflowError};

tokio::task_local! {
    /// The tenant of the request being served: the guide's tenant
    /// provider, scoped to the request's task.
    static TENANT: Tenant;
}

/// A tenant of the service, as its directory knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// What requests name it by (the `X-Tenant` header).
    pub id: String,
    /// Its display name.
    pub name: String,
}

/// An order as a tenant reads it: with the tenant's name, which the
/// workflow takes from its context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderView {
    /// The order.
    #[serde(flatten)]
    pub order: TenantOrder,
    /// The name of the tenant it belongs to.
    pub tenant_name: String,
}

/// An order that belongs to a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantOrder {
    /// Its id.
    pub id: i64,
    /// Whose it is.
    pub tenant_id: String,
    /// What it says.
    pub note: String,
    /// `Pending`, or `Complete` once processed.
    pub status: String,
}

/// The order belongs to another tenant.
#[derive(Debug)]
pub struct TenantError;

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("order belongs to a different tenant")
    }
}

impl std::error::Error for TenantError {}

/// No order has that id.
#[derive(Debug)]
pub struct NotFound;

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no such order")
    }
}

impl std::error::Error for NotFound {}

/// The application state.
#[derive(Clone)]
pub struct TenantApp {
    runner: Runner,
    pool: SqlitePool,
}

#[derive(Deserialize)]
struct NewOrder {
    note: String,
}

impl TenantApp {
    /// Opens (or creates) the database at `db`, on a pool of one
    /// connection (see [`open_pool`](crate::db::open_pool)).
    pub async fn new(db: &Path) -> Result<TenantApp, sqlx::Error> {
        let pool = crate::db::open_pool(db).await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS tenant_orders (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, note TEXT NOT NULL,
                 status TEXT NOT NULL DEFAULT 'Pending');
             CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL);",
        )
        .execute(&pool)
        .await?;
        // Files made before orders had a status.
        crate::db::add_column(
            &pool,
            "tenant_orders",
            "status TEXT NOT NULL DEFAULT 'Pending'",
        )
        .await?;
        let runner = Runner::builder()
            .context_factory(|ctx| {
                let _ = TENANT.try_with(|tenant| {
                    ctx.set_metadata("tenantId", tenant.id.clone());
                    ctx.set_metadata("tenantName", tenant.name.clone());
                });
            })
            .build()
            .expect("no workflow is registered by name");
        Ok(TenantApp { runner, pool })
    }

    /// The HTTP routes: `POST /api/orders` and `GET /api/orders/{id}`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/api/orders", post(create))
            .route("/api/orders/{id}", get(read))
            .route("/api/orders/{id}/process", post(process))
            .with_state(self)
    }

    /// Adds `tenant` to the directory, or renames it.
    pub async fn add_tenant(&self, tenant: &Tenant) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO tenants (id, name) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tenant a request names, if the directory has it.
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, sqlx::Error> {
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM tenants WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(name.map(|name| Tenant {
            id: id.to_owned(),
            name,
        }))
    }

    /// The tenant named by the request's `X-Tenant` header, or the answer
    /// for a request without one (400) or with one the directory does not
    /// know (403).
    async fn tenant_of(&self, headers: &HeaderMap) -> Result<Tenant, Response> {
        let Some(id) = headers
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "the X-Tenant header is required",
            ));
        };
        match self.tenant(id).await {
            Ok(Some(tenant)) => Ok(tenant),
            Ok(None) => Err(problem(StatusCode::FORBIDDEN, "unknown tenant")),
            Err(_) => Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not read the tenant directory",
            )),
        }
    }

    /// Reads an order whatever its tenant: checking the tenant is the
    /// workflow's step, so the check shows in the run.
    async fn load(&self, id: i64) -> Result<Option<TenantOrder>, sqlx::Error> {
        let row = sqlx::query_as::<_, (i64, String, String, String)>(
            "SELECT id, tenant_id, note, status FROM tenant_orders WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, tenant_id, note, status)| TenantOrder {
            id,
            tenant_id,
            note,
            status,
        }))
    }

    /// Processes `order`: its status becomes `Complete`.
    async fn complete(&self, mut order: TenantOrder) -> Result<TenantOrder, sqlx::Error> {
        sqlx::query("UPDATE tenant_orders SET status = 'Complete' WHERE id = ?1")
            .bind(order.id)
            .execute(&self.pool)
            .await?;
        order.status = "Complete".to_owned();
        Ok(order)
    }

    /// Stores an order for `tenant`, returning its id.
    async fn insert(&self, tenant: &str, note: &str) -> Result<i64, sqlx::Error> {
        let done = sqlx::query("INSERT INTO tenant_orders (tenant_id, note) VALUES (?1, ?2)")
            .bind(tenant)
            .bind(note)
            .execute(&self.pool)
            .await?;
        Ok(done.last_insert_rowid())
    }
}

fn problem(status: StatusCode, title: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": "about:blank", "title": title, "status": status.as_u16()}).to_string(),
    )
        .into_response()
}

async fn create(
    State(app): State<TenantApp>,
    headers: HeaderMap,
    Json(order): Json<NewOrder>,
) -> Response {
    let tenant = match app.tenant_of(&headers).await {
        Ok(tenant) => tenant,
        Err(answer) => return answer,
    };
    match app.insert(&tenant.id, &order.note).await {
        Ok(id) => (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/api/orders/{id}"))],
        )
            .into_response(),
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not store the order",
        ),
    }
}

/// The guide's `TenantOrderProcessor`: order → validate tenant → process
/// → then "completed" (the status is `Complete`), the tenant read from
/// the run's context as the guide's factory put it there.
async fn process(
    State(app): State<TenantApp>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<i64>,
) -> Response {
    let tenant = match app.tenant_of(&headers).await {
        Ok(tenant) => tenant,
        Err(answer) => return answer,
    };
    let order = match app.load(id).await {
        Ok(Some(order)) => order,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "order not found"),
        Err(_) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not read the order",
            );
        }
    };
    let runner = app.runner.clone();
    let run = runner.run_fn("ProcessOrder", move |ctx| async move {
        let app = &app;
        Workflow::given(&ctx, "order", || order)
            .try_when("validate tenant", |order| {
                let tenant = ctx.metadata::<String>("tenantId");
                if tenant.as_deref() == Some(order.tenant_id.as_str()) {
                    Ok(order)
                } else {
                    Err(StepError::new(TenantError))
                }
            })
            .try_when_async(
                "process",
                move |order| async move { app.complete(order).await },
            )
            .then("completed", |order| order.status == "Complete")
            .await
    });
    match TENANT.scope(tenant, run).await {
        Ok(order) => Json(order).into_response(),
        Err(WorkflowError::Failed { error, .. })
            if error.downcast_ref::<TenantError>().is_some() =>
        {
            problem(StatusCode::FORBIDDEN, "forbidden")
        }
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not process the order",
        ),
    }
}

async fn read(
    State(app): State<TenantApp>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<i64>,
) -> Response {
    let tenant = match app.tenant_of(&headers).await {
        Ok(tenant) => tenant,
        Err(answer) => return answer,
    };
    let runner = app.runner.clone();
    let run = runner.run_fn("ReadOrder", move |ctx| async move {
        // The step is an `Fn` closure returning an `async move` future,
        // which cannot move the app out of the closure: a reference copies
        // in.
        let app = &app;
        Workflow::given(&ctx, "an order id", || id)
            .try_when_async("load order", move |id| async move {
                match app.load(id).await {
                    Ok(Some(order)) => Ok(order),
                    Ok(None) => Err(StepError::new(NotFound)),
                    Err(e) => Err(StepError::new(e)),
                }
            })
            .try_when("validate tenant", |order| {
                let tenant = ctx.metadata::<String>("tenantId");
                if tenant.as_deref() == Some(order.tenant_id.as_str()) {
                    Ok(order)
                } else {
                    Err(StepError::new(TenantError))
                }
            })
            .when("present order", |order| OrderView {
                tenant_name: ctx.metadata::<String>("tenantName").unwrap_or_default(),
                order,
            })
            .await
    });
    match TENANT.scope(tenant, run).await {
        Ok(order) => Json(order).into_response(),
        Err(WorkflowError::Failed { error, .. })
            if error.downcast_ref::<TenantError>().is_some() =>
        {
            // The answer the issue asks for: 403, and nothing of the order in the body.
            problem(StatusCode::FORBIDDEN, "forbidden")
        }
        Err(WorkflowError::Failed { error, .. }) if error.downcast_ref::<NotFound>().is_some() => {
            problem(StatusCode::NOT_FOUND, "order not found")
        }
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not read the order",
        ),
    }
}
