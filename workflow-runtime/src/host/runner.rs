//! The runner: runs workflows by name, by definition or as ad-hoc
//! closures, each under a fresh context, recording health as it goes.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::HostError;
use super::health::{Health, HealthReport};
use super::tracking::{Counters, Tracked, Tracking};
use crate::behavior::{Behaviors, BoxFuture, Breakers, IntoBehavior};
use crate::context::{ContextBuilder, WorkflowContext};
use crate::definition::WorkflowDefinition;
use crate::error::WorkflowError;
use crate::handlers::{HandlerKey, Handlers};
use crate::schedule::Schedule;

/// Adds what every context the runner makes should carry (a tenant, a
/// correlation id).
pub type ContextFactory = Arc<dyn Fn(&WorkflowContext) + Send + Sync>;

/// A registered workflow, its input made by `Default`.
pub(crate) trait Registered: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> Option<&'static str>;
    fn context(&self) -> ContextBuilder;
    fn schedule(&self) -> Option<Schedule>;
    fn handlers(&self) -> Vec<HandlerKey>;
    fn steps(&self) -> &'static [crate::step::StepMeta];
    fn run<'a>(&'a self, ctx: &'a WorkflowContext) -> BoxFuture<'a, Result<(), WorkflowError>>;
}

struct Definition<W>(W);

impl<W> Registered for Definition<W>
where
    W: WorkflowDefinition,
    W::Input: Default,
{
    fn name(&self) -> &'static str {
        W::NAME
    }
    fn description(&self) -> Option<&'static str> {
        W::DESCRIPTION
    }
    fn context(&self) -> ContextBuilder {
        W::context()
    }
    fn schedule(&self) -> Option<Schedule> {
        W::schedule()
    }
    fn handlers(&self) -> Vec<HandlerKey> {
        W::handlers()
    }
    fn steps(&self) -> &'static [crate::step::StepMeta] {
        W::STEPS
    }
    fn run<'a>(&'a self, ctx: &'a WorkflowContext) -> BoxFuture<'a, Result<(), WorkflowError>> {
        Box::pin(async move { self.0.run(ctx, W::Input::default()).await.map(drop) })
    }
}

/// A registered health check, with its output's status.
pub(crate) trait Check: Send + Sync {
    /// Runs the check under `runner`: its status and message.
    fn check<'a>(
        &'a self,
        runner: &'a Runner,
    ) -> BoxFuture<'a, Result<(super::HealthStatus, Option<String>), RunError>>;
}

impl<W> Check for Definition<W>
where
    W: WorkflowDefinition,
    W::Input: Default,
    W::Output: super::CheckOutcome,
{
    fn check<'a>(
        &'a self,
        runner: &'a Runner,
    ) -> BoxFuture<'a, Result<(super::HealthStatus, Option<String>), RunError>> {
        Box::pin(async move {
            let ctx = runner.context(W::context());
            // In the check's own box: no second one for the run.
            match runner
                .track(&ctx, || self.0.run(&ctx, W::Input::default()))
                .await
            {
                Tracked::Done(result) => result
                    .map(|output| super::CheckOutcome::outcome(&output))
                    .map_err(RunError::Failed),
                Tracked::Panicked(message) => Err(RunError::Panicked {
                    workflow: W::NAME.to_owned(),
                    message,
                }),
            }
        })
    }
}

/// Why a run by name did not happen or did not pass.
///
/// ```
/// use workflow_runtime::host::{RunError, Runner};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let runner = Runner::builder().build().unwrap();
/// let err = runner.run_named("Nope").await.unwrap_err();
/// assert_eq!(err.to_string(), r#"no workflow named "Nope"; registered: (none)"#);
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// No workflow has that name.
    UnknownWorkflow {
        /// The name asked for.
        name: String,
        /// The names registered.
        registered: Vec<&'static str>,
    },
    /// The workflow ran and failed.
    Failed(WorkflowError),
    /// The run panicked outside any step.
    Panicked {
        /// The workflow.
        workflow: String,
        /// The panic message.
        message: String,
    },
    /// A health check outlasted the check timeout and was dropped.
    CheckTimedOut {
        /// The check's workflow.
        workflow: String,
        /// The timeout.
        after: std::time::Duration,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::UnknownWorkflow { name, registered } => {
                let list = if registered.is_empty() {
                    "(none)".to_owned()
                } else {
                    registered.join(", ")
                };
                write!(f, "no workflow named {name:?}; registered: {list}")
            }
            RunError::Failed(error) => write!(f, "{error}"),
            RunError::Panicked { workflow, message } => {
                write!(f, "workflow {workflow:?} panicked: {message}")
            }
            RunError::CheckTimedOut { workflow, after } => {
                write!(
                    f,
                    "health check {workflow:?} did not finish within {after:?}"
                )
            }
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Failed(error) => Some(error),
            _ => None,
        }
    }
}

/// Counts of runs, for accounting: every started run ends in one of the
/// other three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RunStats {
    /// Runs started.
    pub started: u64,
    /// Runs that passed.
    pub passed: u64,
    /// Runs that failed or panicked.
    pub failed: u64,
    /// Runs cancelled before they ended.
    pub cancelled: u64,
}

struct Inner {
    workflows: BTreeMap<&'static str, Arc<dyn Registered>>,
    /// The health-check workflows, run by `check_health`, and how long
    /// each may take.
    checks: Vec<(&'static str, Arc<dyn Check>)>,
    check_timeout: std::time::Duration,
    behaviors: Behaviors,
    typed_behaviors: TypedBehaviors,
    options: crate::WorkflowOptions,
    factory: Option<ContextFactory>,
    handlers: Handlers,
    breakers: Breakers,
    health: Health,
    counters: Counters,
    clock: super::Clock,
    // Stopping it cancels every run's context: a host's hard stop.
    stop: Arc<crate::context::stop::RunsStop>,
    #[cfg(feature = "durable")]
    durable: Durables,
}

/// A runner's durable side: its store, its durable workflows, the runs it
/// is driving.
#[cfg(feature = "durable")]
struct Durables {
    store: Option<crate::durable::Store>,
    workflows: BTreeMap<&'static str, Arc<dyn crate::durable::driver::DurableEntry<Runner>>>,
    in_flight: Arc<crate::durable::driver::InFlight>,
    /// Runs driven elsewhere that handles here wait for.
    watched: crate::durable::driver::Watched,
    /// This instance's name in leases.
    instance: String,
    /// How long a claim holds a run without renewal.
    lease: std::time::Duration,
    /// How often an idle worker looks for runs to claim.
    poll: std::time::Duration,
    /// How long a one-process store's waker sleeps at most before it
    /// looks for what other processes sent.
    look: std::time::Duration,
    /// How often, and for how long, a run the journal failed is driven
    /// again before it is parked as stuck.
    redrive: (u32, std::time::Duration),
    /// How long a run of a registered workflow, journaled by a definition
    /// no instance claims, waits before this instance parks it.
    orphans_after: std::time::Duration,
    /// Cancelled when this runner's worker loop ends: handles wait for
    /// the runs it would take up until then.
    working: std::sync::Mutex<Option<tokio_util::sync::CancellationToken>>,
    /// Stops the lease renewals, while they run.
    renewing: std::sync::Mutex<Option<tokio_util::sync::CancellationToken>>,
    /// Per workflow: runs this instance claimed, and how many of them
    /// another instance had held before.
    claims: std::sync::Mutex<BTreeMap<String, crate::durable::driver::Claims>>,
    /// Wakes an idle worker: a run ended here, or was enqueued here.
    wake: tokio::sync::Notify,
    /// On a store without leases, the suspended runs' waker.
    sleepers: crate::durable::driver::Sleepers,
}

#[cfg(feature = "durable")]
impl Default for Durables {
    fn default() -> Self {
        Durables {
            store: None,
            workflows: BTreeMap::new(),
            in_flight: Arc::default(),
            watched: crate::durable::driver::Watched::default(),
            instance: crate::context::execution_id().to_string(),
            lease: std::time::Duration::from_secs(30),
            poll: std::time::Duration::from_millis(100),
            look: std::time::Duration::from_secs(60),
            redrive: (10, std::time::Duration::from_secs(300)),
            orphans_after: std::time::Duration::from_secs(600),
            renewing: std::sync::Mutex::new(None),
            working: std::sync::Mutex::new(None),
            claims: std::sync::Mutex::default(),
            wake: tokio::sync::Notify::new(),
            sleepers: crate::durable::driver::Sleepers::default(),
        }
    }
}

/// Runs workflows, with or without a host. Cheap to clone; share it with
/// request handlers.
///
/// ```
/// use workflow_runtime::host::Runner;
/// use workflow_runtime::prelude::*;
///
/// struct Ping;
/// #[workflow]
/// impl Ping {
///     #[step(given = "ping")]
///     fn ping(&self) -> u8 { 1 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let runner = Runner::builder()
///     .register(Ping)
///     .context_factory(|ctx| ctx.set_metadata("tenantId", "acme".to_string()))
///     .build()
///     .unwrap();
/// runner.run_named("Ping").await.unwrap();
/// assert_eq!(runner.run(&Ping, ()).await.unwrap(), 1);
/// let n = runner
///     .run_fn("AdHoc", |ctx| async move {
///         assert_eq!(ctx.metadata::<String>("tenantId").as_deref(), Some("acme"));
///         Workflow::given(&ctx, "seven", || 7).await
///     })
///     .await
///     .unwrap();
/// assert_eq!(n, 7);
/// assert_eq!(runner.stats().passed, 3);
/// # }
/// ```
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

/// Behaviors for the steps whose output is one type.
type TypedBehaviors = Vec<(std::any::TypeId, crate::behavior::ForType)>;

/// Builds a [`Runner`].
#[must_use]
pub struct RunnerBuilder {
    workflows: BTreeMap<&'static str, Arc<dyn Registered>>,
    checks: Vec<(&'static str, Arc<dyn Check>)>,
    check_timeout: std::time::Duration,
    duplicates: Vec<&'static str>,
    behaviors: Behaviors,
    typed_behaviors: TypedBehaviors,
    options: crate::WorkflowOptions,
    factory: Option<ContextFactory>,
    handlers: Handlers,
    breakers: Breakers,
    unhealthy_after: u32,
    clock: super::Clock,
    #[cfg(feature = "durable")]
    durable: Durables,
}

impl RunnerBuilder {
    /// The wall clock the runner reads (cron ticks, leases, ages): the
    /// system's unless a test gives one that follows tokio's clock.
    ///
    /// ```
    /// use workflow_runtime::host::{Clock, Runner};
    /// let runner = Runner::builder().clock(Clock::system()).build().unwrap();
    /// assert!(runner.clock().now_ms() > 0);
    /// ```
    pub fn clock(mut self, clock: super::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The journal store durable runs are recorded in.
    ///
    /// ```
    /// use workflow_runtime::durable::Store;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().store(Store::memory()).build().unwrap();
    /// assert!(runner.store().is_some());
    /// ```
    #[cfg(feature = "durable")]
    pub fn store(mut self, store: crate::durable::Store) -> Self {
        self.durable.store = Some(store);
        self
    }

    /// The store given, for a host's checks at build time.
    #[cfg(feature = "durable")]
    pub(super) fn shared_store(&self) -> Option<&crate::durable::Store> {
        self.durable.store.as_ref()
    }

    /// This instance's name in leases on a shared store (default: a fresh
    /// UUID). Names must differ between instances.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().instance("worker-1").build().unwrap();
    /// assert_eq!(runner.instance(), "worker-1");
    /// ```
    #[cfg(feature = "durable")]
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.durable.instance = name.into();
        self
    }

    /// How long a claim on a run holds without renewal (default 30s): an
    /// instance that dies (or stops answering) loses its runs to the
    /// others this long after its last renewal. Renewed every third.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().lease(Duration::from_secs(5)).build().unwrap();
    /// # drop(runner);
    /// ```
    #[cfg(feature = "durable")]
    pub fn lease(mut self, lease: std::time::Duration) -> Self {
        self.durable.lease = lease.max(std::time::Duration::from_millis(30));
        self
    }

    /// How often an idle worker looks for runs to claim (default 100ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().poll_every(Duration::from_millis(20)).build().unwrap();
    /// # drop(runner);
    /// ```
    #[cfg(feature = "durable")]
    pub fn poll_every(mut self, every: std::time::Duration) -> Self {
        self.durable.poll = every;
        self
    }

    /// How often a runner on a store of one process (memory, SQLite)
    /// looks at the store for what other processes sharing the file did:
    /// events sent, cancels asked, runs redriven from a console or a
    /// command line (default a minute). Its own sends and the wake times
    /// it knows wake it at once regardless.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().look_every(Duration::from_secs(5)).build().unwrap();
    /// # drop(runner);
    /// ```
    #[cfg(feature = "durable")]
    pub fn look_every(mut self, every: std::time::Duration) -> Self {
        self.durable.look = every;
        self
    }

    /// How far a durable run whose journal failed it (a database that
    /// does not answer, a write refused) is driven again from its journal:
    /// at most `times` more drives, within `within` of the first failure
    /// (default 10 times, 5 minutes). Past either, the run is parked
    /// [`Stuck`](crate::durable::RunStatus::Stuck) with the last error,
    /// which health shows, until [`Runner::resume_parked`] puts it back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().redrive(3, Duration::from_secs(30)).build().unwrap();
    /// # drop(runner);
    /// ```
    #[cfg(feature = "durable")]
    pub fn redrive(mut self, times: u32, within: std::time::Duration) -> Self {
        self.durable.redrive = (times, within);
        self
    }

    /// On a shared store, how long a run of one of this runner's
    /// workflows, journaled by a definition this instance does not register
    /// (a version retired in a deploy), waits for an instance that does
    /// before this one claims it and parks it
    /// [`Incompatible`](crate::durable::RunStatus::Incompatible) (default
    /// 10 minutes; [`Runner::resume_parked`] puts it back for code that
    /// registers its definition). During a rolling deploy each version's
    /// instances claim their own runs long before that.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().orphans_after(Duration::from_secs(3600)).build().unwrap();
    /// # drop(runner);
    /// ```
    #[cfg(feature = "durable")]
    pub fn orphans_after(mut self, wait: std::time::Duration) -> Self {
        self.durable.orphans_after = wait;
        self
    }

    /// Registers a durable workflow (`#[workflow(durable)]`), to start with
    /// [`Runner::start`] and resume with [`Runner::resume`].
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::durable::Store;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// # drop(runner);
    /// ```
    #[cfg(feature = "durable")]
    pub fn durable<W: crate::durable::Durable>(mut self, workflow: W) -> Self {
        let entry = Arc::new(crate::durable::driver::DurableDef(Arc::new(workflow)));
        if self.durable.workflows.insert(W::NAME, entry).is_some() {
            self.duplicates.push(W::NAME);
        }
        self
    }

    /// Registers a workflow to run by name (its input made by `Default`).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().register(Ping).build().unwrap();
    /// assert_eq!(runner.names(), ["Ping"]);
    /// ```
    pub fn register<W>(mut self, workflow: W) -> Self
    where
        W: WorkflowDefinition,
        W::Input: Default,
    {
        if self
            .workflows
            .insert(W::NAME, Arc::new(Definition(workflow)))
            .is_some()
        {
            self.duplicates.push(W::NAME);
        }
        self
    }

    /// A workflow that checks a dependency (the database, a cache),
    /// registered like any other and also run by
    /// [`Runner::check_health`] each time health is asked for; its
    /// description (`#[workflow(description = "..")]` or its doc comment)
    /// goes in the report.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::host::Runner;
    /// struct DatabaseCheck;
    /// #[workflow(description = "The orders database answers")]
    /// impl DatabaseCheck {
    ///     #[step(given = "a ping")]
    ///     async fn ping(&self) -> bool { true }
    /// }
    /// let runner = Runner::builder().health_check(DatabaseCheck).build().unwrap();
    /// assert_eq!(runner.names(), ["DatabaseCheck"]);
    /// ```
    ///
    /// What the workflow returns is its status
    /// ([`CheckOutcome`](super::CheckOutcome)): `()` or `true` is healthy,
    /// `false` unhealthy, a [`HealthStatus`](super::HealthStatus) (with a
    /// message, as `(status, String)`) says degraded too, as the guide's
    /// checks do; a failure is unhealthy.
    pub fn health_check<W>(mut self, workflow: W) -> Self
    where
        W: WorkflowDefinition,
        W::Input: Default,
        W::Output: super::CheckOutcome,
    {
        let definition = Arc::new(Definition(workflow));
        self.checks.push((W::NAME, definition.clone()));
        if self.workflows.insert(W::NAME, definition).is_some() {
            self.duplicates.push(W::NAME);
        }
        self
    }

    /// The longest a health check may take before
    /// [`Runner::check_health`] reports it unhealthy (default 10s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().health_check_timeout(Duration::from_secs(2)).build().unwrap();
    /// # drop(runner);
    /// ```
    pub fn health_check_timeout(mut self, limit: std::time::Duration) -> Self {
        self.check_timeout = limit;
        self
    }

    /// Wraps every step of every run in `behavior` (host-wide: outside the
    /// workflow's own).
    ///
    /// ```
    /// use workflow_runtime::behavior::Tracing;
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().behavior(Tracing).build().unwrap();
    /// # drop(runner);
    /// ```
    pub fn behavior(mut self, behavior: impl IntoBehavior) -> Self {
        self.behaviors.push(behavior.into_behavior());
        self
    }

    /// Wraps every step whose output is a `T`, in every run, in
    /// `behavior`: the guide's service-wide `AddRetryBehavior<T>`. These
    /// sit inside every untyped behavior (the runner's, then the
    /// definition's `behaviors(..)`) and outside a context's own typed
    /// ones. A retry runs a step's body again only if the step
    /// allows it (`#[step(replayable)]`, or a `retry` of its own): its
    /// input is copied for each attempt.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use workflow_runtime::behavior::Retry;
    /// use workflow_runtime::host::Runner;
    /// # #[derive(Clone, Debug)] struct PaymentResult;
    /// # #[derive(Debug)] struct Declined;
    /// # impl std::fmt::Display for Declined { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("declined") } }
    /// # impl std::error::Error for Declined {}
    /// struct Pay { calls: AtomicU32 }
    /// #[workflow]
    /// impl Pay {
    ///     #[step(given = "a payment", replayable)]
    ///     async fn pay(&self) -> Result<PaymentResult, Declined> {
    ///         self.calls.fetch_add(1, Ordering::SeqCst);
    ///         Err(Declined)
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let runner = Runner::builder()
    ///     .behavior_for::<PaymentResult>(Retry::max_attempts(3))
    ///     .build()
    ///     .unwrap();
    /// let pay = Pay { calls: AtomicU32::new(0) };
    /// assert!(runner.run(&pay, ()).await.is_err());
    /// assert_eq!(pay.calls.load(Ordering::SeqCst), 3);
    /// # }
    /// ```
    pub fn behavior_for<T: ?Sized + 'static>(
        mut self,
        behavior: impl crate::behavior::IntoBehaviorFor<T>,
    ) -> Self {
        self.typed_behaviors
            .push((std::any::TypeId::of::<T>(), behavior.into_behavior_for()));
        self
    }

    /// The options every run starts from (the guide's
    /// `DefaultWorkflowOptions`). A definition's own settings
    /// (`#[workflow(step_timeout = "30s")]`) apply on top of them, and
    /// options a caller sets on a context replace them.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use std::time::Duration;
    /// use workflow_runtime::host::Runner;
    /// use workflow_runtime::WorkflowOptions;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// let runner = Runner::builder()
    ///     .workflow_options(WorkflowOptions::default().step_timeout(Duration::from_secs(30)))
    ///     .build()
    ///     .unwrap();
    /// let ctx = runner.context(Ping::context());
    /// assert_eq!(ctx.options().step_timeout, Some(Duration::from_secs(30)));
    /// ```
    pub fn workflow_options(mut self, options: crate::WorkflowOptions) -> Self {
        self.options = options;
        self
    }

    /// Calls `factory` on every context the runner makes.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// use workflow_runtime::WorkflowContext;
    /// let runner = Runner::builder()
    ///     .context_factory(|ctx| ctx.set_metadata("correlationId", 42u64))
    ///     .build()
    ///     .unwrap();
    /// let ctx = runner.context(WorkflowContext::builder("W"));
    /// assert_eq!(ctx.metadata::<u64>("correlationId"), Some(42));
    /// ```
    pub fn context_factory(
        mut self,
        factory: impl Fn(&WorkflowContext) + Send + Sync + 'static,
    ) -> Self {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// The handlers workflows may use; each registered workflow's declared
    /// handlers are checked against them when the runner is built.
    ///
    /// ```
    /// use workflow_runtime::handlers::Handlers;
    /// use workflow_runtime::host::Runner;
    /// let handlers = Handlers::builder()
    ///     .register(|n: u32| async move { Ok::<u64, std::fmt::Error>(u64::from(n)) })
    ///     .build();
    /// let runner = Runner::builder().handlers(handlers).build().unwrap();
    /// assert_eq!(runner.handlers().keys().len(), 1);
    /// ```
    pub fn handlers(mut self, handlers: Handlers) -> Self {
        self.handlers = handlers;
        self
    }

    /// The circuit breakers its runs share by name (default: a set of the
    /// runner's own). Give two runners one set to share breakers.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, Breakers};
    /// use workflow_runtime::host::Runner;
    /// use workflow_runtime::WorkflowContext;
    ///
    /// let shared = Breakers::new();
    /// let a = Runner::builder().breakers(shared.clone()).build().unwrap();
    /// let b = Runner::builder().breakers(shared).build().unwrap();
    /// // A step run by `a` makes the breaker; `b`'s runs and health see it.
    /// let ctx = a.context(WorkflowContext::builder("W"));
    /// let bank = ctx.breakers().breaker("bank", BreakerConfig::default());
    /// assert!(std::sync::Arc::ptr_eq(&b.breakers().get("bank").unwrap(), &bank));
    /// assert_eq!(b.health().breakers[0].name, "bank");
    /// ```
    pub fn breakers(mut self, breakers: Breakers) -> Self {
        self.breakers = breakers;
        self
    }

    /// Faulted runs in a row (a step panicked or timed out, or the run
    /// panicked) that make a workflow unhealthy (default 3). A run that
    /// fails on its own terms (a step's error, an assertion) only degrades
    /// it: a few bad requests must not take a service out of its balancer.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().unhealthy_after(5).build().unwrap();
    /// # drop(runner);
    /// ```
    pub fn unhealthy_after(mut self, failures: u32) -> Self {
        self.unhealthy_after = failures;
        self
    }

    /// The runner, or the first problem found: a duplicate name, a missing
    /// handler.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::{HostError, Runner};
    /// let err = Runner::builder().register(Ping).register(Ping).build().unwrap_err();
    /// assert_eq!(err, HostError::DuplicateWorkflow { name: "Ping" });
    /// ```
    pub fn build(self) -> Result<Runner, HostError> {
        self.build_with(CancellationToken::new())
    }

    pub(crate) fn build_with(self, cancel: CancellationToken) -> Result<Runner, HostError> {
        if let Some(name) = self.duplicates.first() {
            return Err(HostError::DuplicateWorkflow { name });
        }
        for (name, workflow) in &self.workflows {
            for key in workflow.handlers() {
                self.handlers
                    .check(key)
                    .map_err(|missing| HostError::MissingHandler {
                        workflow: name,
                        missing,
                    })?;
            }
        }
        self.check_type_wide_retries()?;
        self.check_type_wide_values()?;
        Ok(Runner {
            inner: Arc::new(Inner {
                workflows: self.workflows,
                checks: self.checks,
                check_timeout: self.check_timeout,
                behaviors: self.behaviors,
                typed_behaviors: self.typed_behaviors,
                options: self.options,
                factory: self.factory,
                handlers: self.handlers,
                breakers: self.breakers,
                health: Health::new(self.unhealthy_after),
                counters: Counters::default(),
                clock: self.clock,
                stop: Arc::new(crate::context::stop::RunsStop::new(cancel)),
                #[cfg(feature = "durable")]
                durable: self.durable,
            }),
        })
    }

    pub(crate) fn workflow(&self, name: &str) -> Option<&Arc<dyn Registered>> {
        self.workflows.get(name)
    }

    /// A behavior registered for a type that runs steps again (a retry)
    /// can only do so for a step whose input is copied for each attempt:
    /// one registered workflow's step it cannot run again is an error
    /// now, naming the step, rather than a warning at each run.
    fn check_type_wide_retries(&self) -> Result<(), HostError> {
        let again: Vec<std::any::TypeId> = self
            .typed_behaviors
            .iter()
            .filter(|(_, behavior)| behavior.runs_again())
            .map(|(id, _)| *id)
            .collect();
        if again.is_empty() {
            return Ok(());
        }
        let registered = self.workflows.iter().map(|(name, w)| (*name, w.steps()));
        #[cfg(feature = "durable")]
        let registered = registered.chain(
            self.durable
                .workflows
                .iter()
                .map(|(name, entry)| (*name, entry.steps())),
        );
        for (workflow, steps) in registered {
            let stuck = steps.iter().find(|step| {
                !step.replayable && step.output_type().is_some_and(|t| again.contains(&t))
            });
            if let Some(step) = stuck {
                return Err(HostError::RetryCannotApply {
                    workflow,
                    step: step.title,
                    output: step.output,
                });
            }
        }
        Ok(())
    }
}

impl RunnerBuilder {
    /// A value behavior registered for a type (a fallback, a cache)
    /// replaces a step's value, but a durable step's journal keeps what its
    /// body returned, and a resumed run would hand that on: one registered
    /// durable workflow's step of that type is an error now, naming it.
    fn check_type_wide_values(&self) -> Result<(), HostError> {
        #[cfg(feature = "durable")]
        for (id, behavior) in &self.typed_behaviors {
            if behavior.value_type().is_none() {
                continue;
            }
            for (workflow, entry) in &self.durable.workflows {
                let steps = entry.steps();
                if let Some(step) = steps.iter().find(|step| step.output_type() == Some(*id)) {
                    return Err(HostError::ValueBehaviorCannotApply {
                        workflow,
                        step: step.title,
                        output: step.output,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Runner {
    /// Starts a runner.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().build().unwrap();
    /// assert!(runner.names().is_empty());
    /// ```
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder {
            workflows: BTreeMap::new(),
            checks: Vec::new(),
            check_timeout: std::time::Duration::from_secs(10),
            duplicates: Vec::new(),
            behaviors: Vec::new(),
            typed_behaviors: Vec::new(),
            options: crate::WorkflowOptions::default(),
            factory: None,
            handlers: Handlers::default(),
            breakers: Breakers::new(),
            unhealthy_after: 3,
            clock: super::Clock::system(),
            #[cfg(feature = "durable")]
            durable: Durables::default(),
        }
    }

    /// The handlers registered with the runner.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// assert!(Runner::builder().build().unwrap().handlers().keys().is_empty());
    /// ```
    pub fn handlers(&self) -> &Handlers {
        &self.inner.handlers
    }

    /// The registered workflows' names.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::Runner;
    /// assert_eq!(Runner::builder().register(Ping).build().unwrap().names(), ["Ping"]);
    /// ```
    pub fn names(&self) -> Vec<&'static str> {
        self.inner.workflows.keys().copied().collect()
    }

    /// A fresh context as the runner makes them: the host's behaviors, its
    /// cancellation, and the factory's metadata.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// use workflow_runtime::WorkflowContext;
    /// let runner = Runner::builder().build().unwrap();
    /// let a = runner.context(WorkflowContext::builder("W"));
    /// let b = runner.context(WorkflowContext::builder("W"));
    /// assert_ne!(a.execution_id(), b.execution_id());
    /// ```
    #[inline]
    pub fn context(&self, mut builder: ContextBuilder) -> WorkflowContext {
        let inner = &self.inner;
        builder.under_runner(
            inner.stop.clone(),
            inner.breakers.clone(),
            inner.clock,
            &inner.options,
        );
        // Host-wide behaviors sit outside the workflow's own: prepend them.
        builder.behaviors_first(&inner.behaviors);
        builder.typed_behaviors_first(&inner.typed_behaviors);
        let ctx = builder.build();
        if let Some(factory) = &self.inner.factory {
            factory(&ctx);
        }
        ctx
    }

    /// The wall clock it reads (see [`RunnerBuilder::clock`]).
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// assert!(Runner::builder().build().unwrap().clock().now_ms() > 0);
    /// ```
    pub fn clock(&self) -> super::Clock {
        self.inner.clock
    }

    /// Runs `workflow` on `input` under a fresh context. A panic outside
    /// any step (steps' own are caught) is recorded as a failed run, then
    /// resumed, as the caller asked for a typed result.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::Runner;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().build().unwrap();
    /// assert_eq!(runner.run(&Ping, ()).await.unwrap(), 1);
    /// # }
    /// ```
    pub async fn run<W: WorkflowDefinition>(
        &self,
        workflow: &W,
        input: W::Input,
    ) -> Result<W::Output, WorkflowError> {
        let ctx = self.context(W::context());
        self.run_in(workflow, &ctx, input).await
    }

    /// Runs `workflow` under a context made by [`context`](Self::context)
    /// (so the caller can add to it first).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::Runner;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().build().unwrap();
    /// let ctx = runner.context(Ping::context());
    /// ctx.set_metadata("tenantId", "acme".to_string());
    /// runner.run_in(&Ping, &ctx, ()).await.unwrap();
    /// assert!(ctx.all_passed());
    /// # }
    /// ```
    pub async fn run_in<W: WorkflowDefinition>(
        &self,
        workflow: &W,
        ctx: &WorkflowContext,
        input: W::Input,
    ) -> Result<W::Output, WorkflowError> {
        // Boxed here with what tracks it, before anything holds it, and
        // made in the box at its first poll: every future around it (this
        // one, a task spawned on it) holds a pointer, not kilobytes that
        // tokio would copy as it spawns, stores and completes the task.
        let run = Box::pin(self.track(ctx, move || workflow.run(ctx, input)));
        match run.await {
            Tracked::Done(result) => result,
            Tracked::Panicked(message) => resume(message),
        }
    }

    /// Runs the workflow registered as `name`; the run's context, as the
    /// guide's `RunAsync` returns it: its execution id, metadata and
    /// step records.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::Runner;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().register(Ping).build().unwrap();
    /// let ctx = runner.run_named("Ping").await.unwrap();
    /// assert!(ctx.all_passed());
    /// assert_eq!(ctx.steps()[0].title, "ping");
    /// assert!(runner.run_named("Pong").await.is_err());
    /// # }
    /// ```
    pub async fn run_named(&self, name: &str) -> Result<WorkflowContext, RunError> {
        let Some(workflow) = self.inner.workflows.get(name).cloned() else {
            return Err(RunError::UnknownWorkflow {
                name: name.to_owned(),
                registered: self.names(),
            });
        };
        self.run_registered(&workflow).await
    }

    pub(crate) async fn run_registered(
        &self,
        workflow: &Arc<dyn Registered>,
    ) -> Result<WorkflowContext, RunError> {
        let ctx = self.context(workflow.context());
        match self.track(&ctx, || workflow.run(&ctx)).await {
            Tracked::Done(result) => result.map(|()| ctx).map_err(RunError::Failed),
            Tracked::Panicked(message) => Err(RunError::Panicked {
                workflow: workflow.name().to_owned(),
                message,
            }),
        }
    }

    /// Runs `body` under a fresh context named `name`; `#[step]` functions
    /// it calls record into that context.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// # use workflow_runtime::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().build().unwrap();
    /// let n = runner
    ///     .run_fn("HealthCheck", |ctx| async move { Workflow::given(&ctx, "probe", || 3).await })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(n, 3);
    /// # }
    /// ```
    pub async fn run_fn<T, F, Fut>(&self, name: &str, body: F) -> Result<T, WorkflowError>
    where
        F: FnOnce(WorkflowContext) -> Fut,
        Fut: Future<Output = Result<T, WorkflowError>>,
    {
        let ctx = self.context(WorkflowContext::builder(name));
        let run = Box::pin(self.track(&ctx, || ctx.scope(body(ctx.clone()))));
        match run.await {
            Tracked::Done(result) => result,
            Tracked::Panicked(message) => resume(message),
        }
    }

    /// Counts of runs so far.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// assert_eq!(Runner::builder().build().unwrap().stats().started, 0);
    /// ```
    pub fn stats(&self) -> RunStats {
        let c = &self.inner.counters;
        RunStats {
            started: c.started.load(Ordering::Relaxed),
            passed: c.passed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
        }
    }

    /// Each workflow's health, the breakers', and the verdict.
    ///
    /// ```
    /// use workflow_runtime::host::{HealthStatus, Runner};
    /// assert_eq!(Runner::builder().build().unwrap().health().status, HealthStatus::Healthy);
    /// ```
    pub fn health(&self) -> HealthReport {
        self.inner.health.report(&self.inner.breakers)
    }

    /// Runs every health-check workflow now (the guide's `IHealthCheck`,
    /// run when `/health` is asked), side by side, each within the check
    /// timeout (10s unless [`RunnerBuilder::health_check_timeout`] says),
    /// and gives the report with their results beside the passive one: a
    /// check that fails or times out makes the report unhealthy, with its
    /// message. Checks are runs like any other: they count in the runner's
    /// stats and in the passive report, and behaviors wrap their steps.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::host::{HealthStatus, Runner};
    /// # #[derive(Debug)] struct Down;
    /// # impl std::fmt::Display for Down { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("connection refused") } }
    /// # impl std::error::Error for Down {}
    /// struct CacheCheck;
    /// /// The cache answers.
    /// #[workflow]
    /// impl CacheCheck {
    ///     #[step(given = "a ping")]
    ///     async fn ping(&self) -> Result<(), Down> { Err(Down) }
    /// }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().health_check(CacheCheck).build().unwrap();
    /// let report = runner.check_health().await;
    /// assert_eq!(report.status, HealthStatus::Unhealthy);
    /// assert_eq!(report.checks[0].description.as_deref(), Some("The cache answers."));
    /// assert!(report.checks[0].message.as_deref().unwrap().ends_with("connection refused"));
    /// # }
    /// ```
    pub async fn check_health(&self) -> HealthReport {
        // Side by side, so a slow check does not hold up the others.
        let mut running = tokio::task::JoinSet::new();
        for (index, (name, check)) in self.inner.checks.iter().cloned().enumerate() {
            let runner = self.clone();
            let limit = self.inner.check_timeout;
            running.spawn(
                async move {
                    let started = std::time::Instant::now();
                    let result = tokio::time::timeout(limit, check.check(&runner))
                        .await
                        .unwrap_or_else(|_| {
                            Err(RunError::CheckTimedOut {
                                workflow: name.to_owned(),
                                after: limit,
                            })
                        });
                    (index, name, result, started.elapsed())
                }
                .in_current_span(),
            );
        }
        let mut checks = Vec::with_capacity(self.inner.checks.len());
        while let Some(done) = running.join_next().await {
            // A check's panic is caught by its run; a task fails only if
            // the runtime is shutting down. Each task's result carries its
            // index, so a lost one is found among those not reported.
            let Ok((index, name, result, elapsed)) = done else {
                continue;
            };
            let (status, message) = match result {
                Ok(outcome) => outcome,
                Err(error) => (super::HealthStatus::Unhealthy, Some(error.to_string())),
            };
            let description = self
                .inner
                .workflows
                .get(name)
                .and_then(|w| w.description())
                .map(str::to_owned);
            checks.push((
                index,
                super::health::CheckHealth {
                    name: name.to_owned(),
                    description,
                    status,
                    message,
                    duration_ms: elapsed.as_secs_f64() * 1000.0,
                },
            ));
        }
        // A check whose task was lost (the runtime is stopping) is
        // unhealthy, never missing from the report.
        for (index, (name, _)) in self.inner.checks.iter().enumerate() {
            if !checks.iter().any(|(at, _)| *at == index) {
                checks.push((
                    index,
                    super::health::CheckHealth {
                        name: (*name).to_owned(),
                        description: None,
                        status: super::HealthStatus::Unhealthy,
                        message: Some("the check did not finish: the runtime is stopping".into()),
                        duration_ms: 0.0,
                    },
                ));
            }
        }
        checks.sort_by_key(|(index, _)| *index);
        let checks: Vec<_> = checks.into_iter().map(|(_, check)| check).collect();
        let mut report = self.health();
        report.status = checks
            .iter()
            .map(|c| c.status)
            .fold(report.status, std::cmp::Ord::max);
        report.checks = checks;
        report
    }

    /// The circuit breakers this runner's runs share; its health report
    /// shows these and no others.
    ///
    /// ```
    /// use workflow_runtime::behavior::BreakerConfig;
    /// use workflow_runtime::host::Runner;
    /// use workflow_runtime::WorkflowContext;
    ///
    /// let runner = Runner::builder().build().unwrap();
    /// let ctx = runner.context(WorkflowContext::builder("W"));
    /// ctx.breakers().breaker("bank", BreakerConfig::default());
    /// assert_eq!(runner.health().breakers[0].name, "bank");
    /// ```
    pub fn breakers(&self) -> &Breakers {
        &self.inner.breakers
    }

    /// The store durable runs are journaled in, if the runner has one.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// assert!(Runner::builder().build().unwrap().store().is_none());
    /// ```
    #[cfg(feature = "durable")]
    pub fn store(&self) -> Option<&crate::durable::Store> {
        self.inner.durable.store.as_ref()
    }

    #[cfg(feature = "durable")]
    pub(super) fn durable_entry(
        &self,
        name: &str,
    ) -> Option<Arc<dyn crate::durable::driver::DurableEntry<Runner>>> {
        self.inner.durable.workflows.get(name).cloned()
    }

    #[cfg(feature = "durable")]
    pub(super) fn watched(&self) -> &crate::durable::driver::Watched {
        &self.inner.durable.watched
    }

    #[cfg(feature = "durable")]
    pub(super) fn in_flight(&self) -> &Arc<crate::durable::driver::InFlight> {
        &self.inner.durable.in_flight
    }

    /// This instance's name in leases.
    ///
    /// ```
    /// use workflow_runtime::host::Runner;
    /// let runner = Runner::builder().build().unwrap();
    /// assert_eq!(runner.instance().len(), 36);
    /// ```
    #[cfg(feature = "durable")]
    pub fn instance(&self) -> &str {
        &self.inner.durable.instance
    }

    #[cfg(feature = "durable")]
    pub(super) fn lease_ms(&self) -> i64 {
        i64::try_from(self.inner.durable.lease.as_millis()).unwrap_or(i64::MAX)
    }

    #[cfg(feature = "durable")]
    pub(super) fn poll_every(&self) -> std::time::Duration {
        self.inner.durable.poll
    }

    #[cfg(feature = "durable")]
    pub(super) fn look_every(&self) -> std::time::Duration {
        self.inner.durable.look
    }

    #[cfg(feature = "durable")]
    pub(super) fn redrive_limit(&self) -> (u32, std::time::Duration) {
        self.inner.durable.redrive
    }

    #[cfg(feature = "durable")]
    pub(super) fn orphans_after_ms(&self) -> i64 {
        i64::try_from(self.inner.durable.orphans_after.as_millis()).unwrap_or(i64::MAX)
    }

    /// Each durable workflow registered, with its definition's fingerprint.
    #[cfg(feature = "durable")]
    pub(super) fn durable_versions(&self) -> Vec<(String, String)> {
        self.inner
            .durable
            .workflows
            .iter()
            .map(|(name, entry)| ((*name).to_owned(), entry.fingerprint().to_owned()))
            .collect()
    }

    /// Each durable workflow's name, fingerprint and steps, by name.
    #[cfg(feature = "console")]
    pub(crate) fn durable_definitions(
        &self,
    ) -> Vec<(&'static str, &'static str, &'static [crate::step::StepMeta])> {
        let mut all: Vec<_> = self
            .inner
            .durable
            .workflows
            .iter()
            .map(|(name, entry)| (*name, entry.fingerprint(), entry.steps()))
            .collect();
        all.sort_by_key(|d| d.0);
        all
    }

    /// The schedule of the registered workflow `name`, if it recurs.
    #[cfg(feature = "console")]
    pub(crate) fn schedule_of(&self, name: &str) -> Option<super::Schedule> {
        self.inner.workflows.get(name).and_then(|w| w.schedule())
    }

    #[cfg(feature = "durable")]
    pub(super) fn durable_names(&self) -> Vec<String> {
        self.inner
            .durable
            .workflows
            .keys()
            .map(|name| (*name).to_owned())
            .collect()
    }

    /// The token that stops the renewals, when none run yet: the caller
    /// starts them.
    #[cfg(feature = "durable")]
    pub(super) fn start_renewing(&self) -> Option<tokio_util::sync::CancellationToken> {
        let mut renewing = self
            .inner
            .durable
            .renewing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if renewing.is_some() {
            return None;
        }
        let stop = tokio_util::sync::CancellationToken::new();
        *renewing = Some(stop.clone());
        Some(stop)
    }

    /// Marks this runner's worker loop as running until the guard drops.
    #[cfg(feature = "durable")]
    pub(super) fn start_working(&self) -> tokio_util::sync::DropGuard {
        let mut working = self
            .inner
            .durable
            .working
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let token = working
            .clone()
            .filter(|token| !token.is_cancelled())
            .unwrap_or_default();
        *working = Some(token.clone());
        token.drop_guard()
    }

    /// Says a worker loop will run (a host built with one): handles made
    /// before it starts wait for it.
    #[cfg(feature = "durable")]
    pub(super) fn expect_worker(&self) {
        self.inner
            .durable
            .working
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(tokio_util::sync::CancellationToken::new);
    }

    /// The token cancelled when the worker loop ends, while one runs.
    #[cfg(feature = "durable")]
    pub(super) fn working(&self) -> Option<tokio_util::sync::CancellationToken> {
        self.inner
            .durable
            .working
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|token| !token.is_cancelled())
    }

    /// Stops the renewals, if they run: the leases were let go.
    #[cfg(feature = "durable")]
    pub(super) fn stop_renewing(&self) {
        let stop = self
            .inner
            .durable
            .renewing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(stop) = stop {
            stop.cancel();
        }
    }

    /// Counts a claim of a run of `workflow`; a takeover when an earlier
    /// claim existed.
    #[cfg(feature = "durable")]
    pub(super) fn count_claim(&self, workflow: &str, epoch: i64) {
        let mut claims = self
            .inner
            .durable
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let claims = match claims.get_mut(workflow) {
            Some(claims) => claims,
            None => claims.entry(workflow.to_owned()).or_default(),
        };
        claims.claimed += 1;
        if epoch > 1 {
            claims.takeovers += 1;
        }
    }

    /// Runs claimed, and takeovers among them, per workflow.
    #[cfg(feature = "durable")]
    pub(super) fn claims(&self) -> BTreeMap<String, crate::durable::driver::Claims> {
        self.inner
            .durable
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    #[cfg(feature = "durable")]
    pub(super) fn wake_worker(&self) {
        self.inner.durable.wake.notify_waiters();
    }

    #[cfg(feature = "durable")]
    pub(super) fn sleepers(&self) -> &crate::durable::driver::Sleepers {
        &self.inner.durable.sleepers
    }

    #[cfg(feature = "durable")]
    pub(super) fn worker_wake(&self) -> &tokio::sync::Notify {
        &self.inner.durable.wake
    }

    /// [`run_in`](Self::run_in), with a panic outside any step returned
    /// as its message rather than resumed.
    #[cfg(feature = "durable")]
    pub(super) async fn run_caught<W: WorkflowDefinition>(
        &self,
        workflow: &W,
        ctx: &WorkflowContext,
        input: W::Input,
    ) -> Result<Result<W::Output, WorkflowError>, String> {
        let run = Box::pin(self.track(ctx, move || workflow.run(ctx, input)));
        match run.await {
            Tracked::Done(result) => Ok(result),
            Tracked::Panicked(message) => Err(message),
        }
    }

    /// Cancelled when the runner's host stops for good: for waiting on,
    /// never for cancelling, which is `cancel_all`'s (it sets the flag
    /// the runs read as well).
    #[cfg(feature = "durable")]
    pub(super) fn stopping(&self) -> &CancellationToken {
        self.inner.stop.token()
    }

    pub(crate) fn cancel_all(&self) {
        self.inner.stop.cancel();
    }

    /// The run `make` makes, tracked: made at its first poll and polled in
    /// the workflow's span with its panics caught, and counted and
    /// recorded as it ends; a run dropped before it ends counts as
    /// cancelled.
    #[inline(always)]
    fn track<'r, M, F>(&'r self, ctx: &'r WorkflowContext, make: M) -> Tracking<'r, M, F>
    where
        M: FnOnce() -> F,
    {
        Tracking::new(&self.inner.counters, &self.inner.health, ctx, make)
    }
}

fn resume<T>(message: String) -> T {
    std::panic::resume_unwind(Box::new(message))
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("workflows", &self.names())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
