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
//! without `script-src`). An action is a POST that must come from the
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
pub struct Console {
    runner: Runner,
    authorize: Option<Arc<Authorize>>,
}

impl Console {
    /// A read-only console over `runner`'s store and workflows.
    pub fn new(runner: Runner) -> Self {
        Console {
            runner,
            authorize: None,
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

    /// The console's routes, to mount with `Router::nest` (links follow
    /// the path it is mounted at) or to serve alone. It keeps its own
    /// state, so it nests into a router of any state `S`.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let state = Shared(Arc::new(self));
        Router::new()
            .route("/", get(runs_page::show))
            .route("/run", get(run_page::show))
            .route("/workflows", get(workflows_page::show))
            .route("/confirm", get(actions::confirm))
            .route("/act", post(actions::act))
            .route("/console.css", get(layout::stylesheet))
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
}
