//! A web console over durable runs: an axum [`Router`] a service mounts in
//! its own app. Server-rendered HTML, no script of its own: the runs with
//! filters and pages, one run's timeline, the workflows with their health
//! and the instances holding leases, and, when the app authorizes them,
//! actions on runs (cancel, redrive, send an event), each confirmed first.
//!
//! ```
//! use axum::Router;
//! use workflow_runtime::console::Console;
//! # use workflow_runtime::durable::Store;
//! # use workflow_runtime::host::Runner;
//! # let runner = Runner::builder().store(Store::memory()).build().unwrap();
//! // Read-only: anyone who reaches the page sees runs, nobody acts.
//! let app: Router = Router::new().nest("/workflows", workflow_runtime::console::router(runner.clone()));
//! // Actions for whoever the app says may act (here: a header its
//! // authenticating proxy sets); everyone else gets 403.
//! let console = Console::new(runner).authorize(|request| {
//!     let user = request.headers.get("x-authenticated-user")?;
//!     Some(user.to_str().ok()?.to_owned())
//! });
//! let app: Router = Router::new().nest("/workflows", console.router());
//! # drop(app);
//! ```
//!
//! **Security.** Everything a run holds is escaped as it is written into
//! the page, and the page forbids scripts (a `Content-Security-Policy`
//! without `script-src`; with [`Console::mermaid`], a run's page allows
//! the console's script and the Mermaid module, nothing else). An action is a POST that must come from the
//! console's own page: its origin is checked, and it carries a token that
//! matches a cookie only that page could read (double submit). Then the
//! app's authorization hook decides; its answer names who acted, and the
//! action is logged with that name (`workflow_runtime::console`, info).

mod actions;
mod guard;
mod layout;
mod run_page;
mod runs_page;
mod timeline;
mod workflows_page;

use std::sync::Arc;

use axum::Router;
use axum::http::request::Parts;
use axum::routing::{get, post};

use crate::host::Runner;

/// Who may act, as the app decides from the request: `Some(name)` lets
/// the action through and logs `name` with it.
type Authorize = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// The console's settings; [`router`](Console::router) makes its routes.
///
/// ```
/// use workflow_runtime::console::Console;
/// # use workflow_runtime::durable::Store;
/// # use workflow_runtime::host::Runner;
/// # let runner = Runner::builder().store(Store::memory()).build().unwrap();
/// let router: axum::Router = Console::new(runner).router();
/// # drop(router);
/// ```
#[must_use]
#[derive(Clone)]
pub struct Console {
    runner: Runner,
    authorize: Option<Arc<Authorize>>,
    origin: Option<String>,
    mermaid: Option<String>,
}

impl Console {
    /// A read-only console over `runner`'s store and workflows.
    pub fn new(runner: Runner) -> Self {
        Console {
            runner,
            authorize: None,
            origin: None,
            mermaid: None,
        }
    }

    /// Lets the requests `authorize` approves act on runs: it sees the
    /// request's head (headers, extensions an auth layer put there) and
    /// returns who is acting, or `None` to refuse (403). Without it
    /// every action is refused.
    ///
    /// ```
    /// use workflow_runtime::console::Console;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # let runner = Runner::builder().store(Store::memory()).build().unwrap();
    /// #[derive(Clone)]
    /// struct Operator(String);
    /// // An auth layer in front of the console put the operator in the
    /// // request's extensions.
    /// let console = Console::new(runner)
    ///     .authorize(|request| request.extensions.get::<Operator>().map(|op| op.0.clone()));
    /// # drop(console);
    /// ```
    pub fn authorize<F>(mut self, authorize: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(authorize));
        self
    }

    /// The origin browsers reach the console at
    /// (`"https://ops.example.com"`), when a proxy in front of the app
    /// rewrites the `Host` header: an action's `Origin` must be this one.
    /// Without it, the request's own `Host` (or HTTP/2 authority) is.
    ///
    /// ```
    /// use workflow_runtime::console::Console;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # let runner = Runner::builder().store(Store::memory()).build().unwrap();
    /// let console = Console::new(runner).origin("https://ops.example.com");
    /// # drop(console);
    /// ```
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Draws each run's definition as a diagram with the Mermaid module at
    /// `url` (an ES module the app serves or trusts, such as
    /// `"/static/mermaid.esm.min.mjs"` or a CDN's): the run pages then load
    /// the console's own script, which imports it, and their policy allows
    /// those two scripts. Without it the pages carry no script and show
    /// the diagram's Mermaid text.
    ///
    /// ```
    /// use workflow_runtime::console::Console;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # let runner = Runner::builder().store(Store::memory()).build().unwrap();
    /// let console = Console::new(runner)
    ///     .mermaid("https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs");
    /// # drop(console);
    /// ```
    pub fn mermaid(mut self, url: impl Into<String>) -> Self {
        self.mermaid = Some(url.into());
        self
    }

    /// The console's routes, to mount with `Router::nest` at a fixed path
    /// (links follow the path it is mounted at) or to serve alone. It
    /// keeps its own state, so it nests into a router of any state `S`.
    /// Reading is open to whoever reaches the routes: to restrict it, wrap
    /// them in the app's own auth layer (`.layer(..)`).
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let state = Shared(Arc::new(self));
        Router::new()
            .route("/", get(runs_page::show))
            .route("/run", get(run_page::show))
            .route("/workflows", get(workflows_page::show))
            .route("/confirm", get(actions::confirm))
            .route("/act", post(actions::act))
            .route("/console.css", get(layout::stylesheet))
            .route("/console.js", get(script))
            .with_state(state)
    }
}

/// A read-only console over `runner`: [`Console::new`]`(runner).router()`.
///
/// ```
/// # use workflow_runtime::durable::Store;
/// # use workflow_runtime::host::Runner;
/// # let runner = Runner::builder().store(Store::memory()).build().unwrap();
/// let app: axum::Router = axum::Router::new().nest("/workflows", workflow_runtime::console::router(runner));
/// # drop(app);
/// ```
pub fn router<S: Clone + Send + Sync + 'static>(runner: Runner) -> Router<S> {
    Console::new(runner).router()
}

/// The console's script, when it draws diagrams; 404 otherwise.
async fn script(
    axum::extract::State(console): axum::extract::State<Shared>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match &console.0.mermaid {
        Some(url) => layout::drawing_script(url),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The console as every handler sees it.
#[derive(Clone)]
struct Shared(Arc<Console>);

impl Shared {
    fn runner(&self) -> &Runner {
        &self.0.runner
    }

    fn actions_on(&self) -> bool {
        self.0.authorize.is_some()
    }

    fn mermaid(&self) -> Option<&str> {
        self.0.mermaid.as_deref()
    }
}
