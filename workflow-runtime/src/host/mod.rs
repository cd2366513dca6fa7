//! Hosting: a tokio host for one-time and recurring workflows, the runner
//! it runs them with, and their health.

#[cfg(feature = "durable")]
mod durable_control;
#[cfg(feature = "durable")]
mod durable_runs;
#[cfg(feature = "durable")]
mod durable_views;
mod health;
mod runner;
mod tracking;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use crate::clock::Clock;
#[cfg(feature = "cron")]
pub use crate::schedule::Cron;
use crate::schedule::Ticks;
pub use crate::schedule::{Cadence, CatchUp, Schedule, ScheduleError};
#[cfg(feature = "durable")]
pub use durable_runs::{DurableHealth, DurableWorkflowHealth};
pub use health::{
    BreakerHealth, CheckHealth, CheckOutcome, HealthReport, HealthStatus, RunInfo, RunOutcome,
    WorkflowHealth,
};
pub use runner::{ContextFactory, RunError, RunStats, Runner, RunnerBuilder};

use crate::behavior::IntoBehavior;
use crate::context::WorkflowContext;
use crate::definition::WorkflowDefinition;
use crate::handlers::{Handlers, MissingHandler};
use runner::Registered;

/// The host's options.
///
/// | option | default | effect |
/// |---|---|---|
/// | `start_automatically` | `true` | run one-time workflows and start recurring ones when the host runs; `false` only serves the runner |
/// | `parallel` | `true` | run one-time workflows side by side rather than in order |
/// | `max_parallelism` | `4` | the most runs (one-time and recurring) at once |
/// | `continue_on_failure` | `true` | `false` stops the host at the first failed run |
/// | `shutdown_timeout` | 30s | how long in-flight runs get to finish once shutdown begins, before they are cancelled |
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::host::HostOptions;
/// let options = HostOptions::default().max_parallelism(2).shutdown_timeout(Duration::from_secs(5));
/// assert_eq!(options.max_parallelism, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct HostOptions {
    /// Start workflows when the host runs.
    #[cfg_attr(
        feature = "serde",
        serde(alias = "StartAutomatically", alias = "startAutomatically")
    )]
    pub start_automatically: bool,
    /// One-time workflows side by side.
    #[cfg_attr(
        feature = "serde",
        serde(
            alias = "Parallel",
            alias = "EnableParallelExecution",
            alias = "enableParallelExecution",
            alias = "enable_parallel_execution"
        )
    )]
    pub parallel: bool,
    /// The most runs at once.
    #[cfg_attr(
        feature = "serde",
        serde(alias = "MaxParallelism", alias = "maxParallelism")
    )]
    pub max_parallelism: usize,
    /// Keep going after a failed run.
    #[cfg_attr(
        feature = "serde",
        serde(alias = "ContinueOnFailure", alias = "continueOnFailure")
    )]
    pub continue_on_failure: bool,
    /// Grace for in-flight runs at shutdown.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::durations::duration")
    )]
    #[cfg_attr(
        feature = "serde",
        serde(alias = "ShutdownTimeout", alias = "shutdownTimeout")
    )]
    pub shutdown_timeout: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            start_automatically: true,
            parallel: true,
            max_parallelism: 4,
            continue_on_failure: true,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl HostOptions {
    /// Sets `start_automatically`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::host::HostOptions;
    /// let options = HostOptions::default().start_automatically(false);
    /// assert!(!options.start_automatically);
    /// ```
    pub fn start_automatically(mut self, yes: bool) -> Self {
        self.start_automatically = yes;
        self
    }
    /// Sets `parallel`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::host::HostOptions;
    /// let options = HostOptions::default().parallel(false);
    /// assert!(!options.parallel);
    /// ```
    pub fn parallel(mut self, yes: bool) -> Self {
        self.parallel = yes;
        self
    }
    /// Sets `max_parallelism` (at least 1).
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::host::HostOptions;
    /// let options = HostOptions::default().max_parallelism(0);
    /// assert_eq!(options.max_parallelism, 1, "at least one");
    /// ```
    pub fn max_parallelism(mut self, n: usize) -> Self {
        self.max_parallelism = n.max(1);
        self
    }
    /// Sets `continue_on_failure`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::host::HostOptions;
    /// let options = HostOptions::default().continue_on_failure(false);
    /// assert!(!options.continue_on_failure);
    /// ```
    pub fn continue_on_failure(mut self, yes: bool) -> Self {
        self.continue_on_failure = yes;
        self
    }
    /// Sets `shutdown_timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::host::HostOptions;
    /// let options = HostOptions::default().shutdown_timeout(Duration::from_secs(5));
    /// assert_eq!(options.shutdown_timeout, Duration::from_secs(5));
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

/// Why a host or runner could not be built.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// A workflow declares a handler nobody registered.
    MissingHandler {
        /// The workflow.
        workflow: &'static str,
        /// The handler it needs.
        missing: MissingHandler,
    },
    /// Two workflows share a name.
    DuplicateWorkflow {
        /// The name.
        name: &'static str,
    },
    /// A workflow registered as recurring has no schedule.
    NoSchedule {
        /// The workflow.
        workflow: &'static str,
    },
    /// A recurring durable workflow needs a store that instances share,
    /// with leases (PostgreSQL), so each tick runs once across them; the
    /// memory and SQLite stores have none.
    TicksNeedLeases {
        /// The workflow.
        workflow: &'static str,
        /// The store it was given, if any.
        store: Option<String>,
    },
    /// A recurring durable workflow's ticks are runs that workers claim:
    /// a host that fires them must be a worker too
    /// ([`HostBuilder::worker`]), or nobody runs them and every later tick
    /// is skipped as overlapping.
    TicksNeedWorker {
        /// The workflow.
        workflow: &'static str,
    },
    /// A value behavior registered for a type
    /// ([`RunnerBuilder::behavior_for`] with a
    /// [`Fallback`](crate::behavior::Fallback), a
    /// [`Cache`](crate::behavior::Cache) or an
    /// [`OnValue`](crate::behavior::OnValue)) would replace the value of a
    /// durable workflow's step, whose journal keeps what its body returned.
    ValueBehaviorCannotApply {
        /// The durable workflow.
        workflow: &'static str,
        /// The step's title.
        step: &'static str,
        /// The type the step hands on, as written.
        output: &'static str,
    },
    /// A retention policy ([`HostBuilder::retention`]) purges a store:
    /// the host has none.
    RetentionNeedsStore,
    /// A retry registered for a type
    /// ([`RunnerBuilder::behavior_for`]) cannot run one of that type's
    /// steps again: the step's input is not copied for each attempt, as it
    /// is not `Clone` (or the step is a durable workflow's first, not
    /// `replayable`).
    RetryCannotApply {
        /// The workflow.
        workflow: &'static str,
        /// The step's title.
        step: &'static str,
        /// The type the step hands on, as written.
        output: &'static str,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::MissingHandler { workflow, missing } => {
                write!(f, "workflow {workflow:?} needs a handler: {missing}")
            }
            HostError::DuplicateWorkflow { name } => {
                write!(f, "two workflows are named {name:?}")
            }
            HostError::NoSchedule { workflow } => write!(
                f,
                "workflow {workflow:?} is recurring but has no schedule: \
                 use `#[workflow(every = \"30s\")]` or `recurring_every`"
            ),
            HostError::TicksNeedLeases { workflow, store } => write!(
                f,
                "recurring durable workflow {workflow:?} needs a store shared with leases \
                 (`Store::postgres`), so each tick runs once; {}",
                match store {
                    Some(store) => format!("store {store} has no leases"),
                    None => "the host has no store".to_owned(),
                }
            ),
            HostError::TicksNeedWorker { workflow } => write!(
                f,
                "recurring durable workflow {workflow:?} fires ticks that workers run: \
                 make this host a worker with `.worker(capacity)`"
            ),
            HostError::RetryCannotApply {
                workflow,
                step,
                output,
            } => write!(
                f,
                "the retry registered for `{output}` (`behavior_for`) cannot run step \"{step}\" of \
                 workflow {workflow:?} again, as its input is not copied for each attempt: make \
                 the input `Clone` (a durable workflow's first step, which takes the run's input \
                 once, also needs `#[step(replayable)]`) or give the step a `retry` of its own"
            ),
            HostError::ValueBehaviorCannotApply {
                workflow,
                step,
                output,
            } => write!(
                f,
                "the value behavior registered for `{output}` (`behavior_for`) cannot replace the \
                 value of step \"{step}\" of durable workflow {workflow:?}: its journal keeps what \
                 the step's body returned, which a resumed run hands on; register it for a type \
                 no durable step makes, or handle the failure inside the step"
            ),
            HostError::RetentionNeedsStore => write!(
                f,
                "a retention policy purges finished durable runs, but the host has no store: \
                 give it one with `.store(..)`"
            ),
        }
    }
}

impl std::error::Error for HostError {}

/// What a host did, returned when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostSummary {
    /// Every run, by outcome.
    pub runs: RunStats,
    /// Whether it stopped because a run failed (`continue_on_failure` off).
    pub stopped_on_failure: bool,
    /// Whether in-flight runs outlasted the shutdown timeout and were
    /// cancelled.
    pub forced: bool,
}

/// Runs one-time workflows at start and recurring ones on their schedule,
/// until shut down (a token, ctrl-c), then gives in-flight runs the
/// shutdown timeout before cancelling them. A failing or panicking workflow
/// never stops the others unless `continue_on_failure` is off.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::host::{HostOptions, WorkflowHost};
/// use workflow_runtime::prelude::*;
///
/// struct Migrate;
/// #[workflow]
/// impl Migrate {
///     #[step(given = "schema")]
///     fn schema(&self) -> u32 { 3 }
/// }
///
/// struct Heartbeat;
/// #[workflow(every = "30s", run_immediately)]
/// impl Heartbeat {
///     #[step(given = "beat")]
///     fn beat(&self) {}
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let host = WorkflowHost::builder()
///     .one_time(Migrate)
///     .recurring(Heartbeat)
///     .options(HostOptions::default().shutdown_timeout(Duration::from_secs(5)))
///     .build()
///     .unwrap();
/// let stop = host.shutdown_token();
/// tokio::spawn(async move {
///     tokio::time::sleep(Duration::from_secs(65)).await;
///     stop.cancel();
/// });
/// let summary = host.run().await;
/// // Migrate once; Heartbeat at 0s, 30s and 60s.
/// assert_eq!(summary.runs.passed, 4);
/// # }
/// ```
pub struct WorkflowHost {
    runner: Runner,
    one_time: Vec<Arc<dyn Registered>>,
    recurring: Vec<(Arc<dyn Registered>, Schedule, Ticks)>,
    options: HostOptions,
    shutdown: CancellationToken,
    /// As a worker: how many durable runs it drives at once.
    worker: Option<usize>,
    tickers: Vec<Ticker>,
}

/// A durable recurring workflow's tick loop, started when the host runs.
type Ticker =
    Box<dyn FnOnce(Runner, CancellationToken) -> crate::behavior::BoxFuture<'static, ()> + Send>;

/// Builds a [`WorkflowHost`].
#[must_use]
pub struct HostBuilder {
    runner: RunnerBuilder,
    one_time: Vec<&'static str>,
    recurring: Vec<(&'static str, Option<Schedule>)>,
    options: HostOptions,
    worker: Option<usize>,
    tickers: Vec<Ticker>,
    /// The recurring durable workflows, whose ticks need leases and a
    /// worker.
    #[cfg(feature = "durable")]
    durable_ticks: Vec<&'static str>,
    /// The first durable recurring workflow found with no schedule:
    /// reported by `build`.
    #[cfg(feature = "durable")]
    unscheduled: Option<HostError>,
    /// Which finished durable runs the host purges, if any.
    #[cfg(feature = "durable")]
    retention: Option<crate::durable::Retention>,
}

impl HostBuilder {
    /// The wall clock the host reads for cron ticks (and its runner for
    /// leases and ages); see [`RunnerBuilder::clock`].
    ///
    /// ```
    /// use workflow_runtime::host::{Clock, WorkflowHost};
    /// let host = WorkflowHost::builder().clock(Clock::system()).build().unwrap();
    /// assert!(host.runner().clock().now_ms() > 0);
    /// ```
    pub fn clock(mut self, clock: Clock) -> Self {
        self.runner = self.runner.clock(clock);
        self
    }

    /// A workflow to run once at start (and by name through the runner).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().one_time(Ping).build().unwrap();
    /// assert_eq!(host.runner().names(), ["Ping"]);
    /// ```
    pub fn one_time<W>(mut self, workflow: W) -> Self
    where
        W: WorkflowDefinition,
        W::Input: Default,
    {
        self.one_time.push(W::NAME);
        self.runner = self.runner.register(workflow);
        self
    }

    /// A workflow to run on the schedule it declares
    /// (`#[workflow(every = "30s", run_immediately)]`).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::host::{HostError, WorkflowHost};
    /// struct Beat;
    /// #[workflow]
    /// impl Beat {
    ///     #[step(given = "beat")]
    ///     fn beat(&self) {}
    /// }
    /// // No `every` on the definition: the host says so when built.
    /// let err = WorkflowHost::builder().recurring(Beat).build().unwrap_err();
    /// assert_eq!(err, HostError::NoSchedule { workflow: "Beat" });
    /// ```
    pub fn recurring<W>(mut self, workflow: W) -> Self
    where
        W: WorkflowDefinition,
        W::Input: Default,
    {
        self.recurring.push((W::NAME, None));
        self.runner = self.runner.register(workflow);
        self
    }

    /// A workflow to run on `schedule`.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use std::time::Duration;
    /// use workflow_runtime::host::{Schedule, WorkflowHost};
    /// let host = WorkflowHost::builder()
    ///     .recurring_every(Ping, Schedule::every(Duration::from_secs(10)))
    ///     .build()
    ///     .unwrap();
    /// # drop(host);
    /// ```
    pub fn recurring_every<W>(mut self, workflow: W, schedule: Schedule) -> Self
    where
        W: WorkflowDefinition,
        W::Input: Default,
    {
        self.recurring.push((W::NAME, Some(schedule)));
        self.runner = self.runner.register(workflow);
        self
    }

    /// A workflow to run only on demand, by name.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().on_demand(Ping).build().unwrap();
    /// assert_eq!(host.runner().names(), ["Ping"]);
    /// ```
    pub fn on_demand<W>(mut self, workflow: W) -> Self
    where
        W: WorkflowDefinition,
        W::Input: Default,
    {
        self.runner = self.runner.register(workflow);
        self
    }

    /// Wraps every step of every run (host-wide, outermost).
    ///
    /// ```
    /// use workflow_runtime::behavior::Metrics;
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().behavior(Metrics).build().unwrap();
    /// # drop(host);
    /// ```
    pub fn behavior(mut self, behavior: impl IntoBehavior) -> Self {
        self.runner = self.runner.behavior(behavior);
        self
    }

    /// Wraps every step whose output is a `T`, in every run, in `behavior`
    /// (see [`RunnerBuilder::behavior_for`]).
    ///
    /// ```
    /// use workflow_runtime::behavior::Retry;
    /// use workflow_runtime::host::WorkflowHost;
    /// struct PaymentResult;
    /// let host = WorkflowHost::builder()
    ///     .behavior_for::<PaymentResult>(Retry::retries(3))
    ///     .build()
    ///     .unwrap();
    /// # drop(host);
    /// ```
    pub fn behavior_for<T: ?Sized + 'static>(
        mut self,
        behavior: impl crate::behavior::IntoBehaviorFor<T>,
    ) -> Self {
        self.runner = self.runner.behavior_for::<T>(behavior);
        self
    }

    /// The options every run starts from (see
    /// [`RunnerBuilder::workflow_options`]).
    ///
    /// ```
    /// use workflow_runtime::host::WorkflowHost;
    /// use workflow_runtime::{WorkflowContext, WorkflowOptions};
    /// let host = WorkflowHost::builder()
    ///     .workflow_options(WorkflowOptions::default().continue_on_error(true))
    ///     .build()
    ///     .unwrap();
    /// let ctx = host.runner().context(WorkflowContext::builder("W"));
    /// assert!(ctx.options().continue_on_error);
    /// ```
    pub fn workflow_options(mut self, options: crate::WorkflowOptions) -> Self {
        self.runner = self.runner.workflow_options(options);
        self
    }

    /// The journal store for durable runs; when the host runs, it first
    /// resumes the runs a stopped process left unfinished, and it waits
    /// for durable runs in flight at shutdown (within the timeout).
    ///
    /// ```
    /// use workflow_runtime::durable::Store;
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().store(Store::memory()).build().unwrap();
    /// assert!(host.runner().store().is_some());
    /// ```
    #[cfg(feature = "durable")]
    pub fn store(mut self, store: crate::durable::Store) -> Self {
        self.runner = self.runner.store(store);
        self
    }

    /// Registers a durable workflow (`#[workflow(durable)]`) with the
    /// host's runner, to start with [`Runner::start`].
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::durable::Store;
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// # drop(host);
    /// ```
    #[cfg(feature = "durable")]
    pub fn durable<W: crate::durable::Durable>(mut self, workflow: W) -> Self {
        self.runner = self.runner.durable(workflow);
        self
    }

    /// Runs a durable workflow on its schedule (`#[workflow(durable, every
    /// = "30s")]`) across every instance of a shared store: each tick
    /// fires once, whichever instance wins it (a compare-and-set on the
    /// schedule's row), as a run whose id is the workflow's name and the
    /// tick's time (`"Report@1700000000000"`); a tick whose previous run is
    /// still going is skipped, so runs never overlap; missed ticks follow
    /// the schedule's [`CatchUp`]. Worker instances run the ticks' runs.
    ///
    /// ```no_run
    /// # use workflow_runtime::prelude::*;
    /// # struct Report;
    /// # #[workflow(durable, every = "1m")] impl Report { #[step(given = "a report")] fn report(&self) -> u8 { 1 } }
    /// use workflow_runtime::durable::Store;
    /// use workflow_runtime::host::{HostError, WorkflowHost};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Store::postgres("postgres://app@127.0.0.1/jobs").await.unwrap();
    /// let host = WorkflowHost::builder()
    ///     .store(store)
    ///     .recurring_durable(Report)
    ///     .worker(8)
    ///     .build()
    ///     .unwrap();
    /// // A store of one process has no leases to fire each tick once by.
    /// let refused = WorkflowHost::builder()
    ///     .store(Store::memory())
    ///     .recurring_durable(Report)
    ///     .worker(8)
    ///     .build();
    /// assert!(matches!(refused, Err(HostError::TicksNeedLeases { .. })));
    /// # drop(host);
    /// # }
    /// ```
    #[cfg(feature = "durable")]
    pub fn recurring_durable<W>(mut self, workflow: W) -> Self
    where
        W: crate::durable::Durable,
        W::Input: Default,
    {
        let workflow_name = W::NAME;
        match W::schedule() {
            Some(schedule) => {
                let ticks = schedule.ticks();
                self.durable_ticks.push(workflow_name);
                self.tickers
                    .push(Box::new(move |runner: Runner, stop: CancellationToken| {
                        Box::pin(async move { runner.ticks::<W>(&schedule, &ticks, stop).await })
                    }))
            }
            None => {
                self.unscheduled.get_or_insert(HostError::NoSchedule {
                    workflow: workflow_name,
                });
            }
        }
        self.runner = self.runner.durable(workflow);
        self
    }

    /// Makes the host a worker of a shared store (PostgreSQL): it claims
    /// runs of its durable workflows that no instance holds (enqueued by
    /// any instance, or left by one that died), at most `capacity` at once,
    /// until it stops; at shutdown it releases its leases, so another
    /// instance takes its unfinished runs up at once.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::durable::Store;
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder()
    ///     .store(Store::memory())
    ///     .durable(Ping)
    ///     .worker(16)
    ///     .build()
    ///     .unwrap();
    /// # drop(host);
    /// ```
    #[cfg(feature = "durable")]
    pub fn worker(mut self, capacity: usize) -> Self {
        self.worker = Some(capacity.max(1));
        self
    }

    /// Purges the finished durable runs `policy` no longer keeps, every
    /// [`policy.every`](crate::durable::Retention::every) while the host
    /// runs (the first time as it starts). Instances sharing a
    /// PostgreSQL store take turns: one purges at a time.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use std::time::Duration;
    /// use workflow_runtime::durable::{Retention, Store};
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder()
    ///     .store(Store::memory())
    ///     .durable(Ping)
    ///     .retention(Retention::new().keep_for(Duration::from_secs(7 * 24 * 3600)))
    ///     .build()
    ///     .unwrap();
    /// # drop(host);
    /// ```
    #[cfg(feature = "durable")]
    pub fn retention(mut self, policy: crate::durable::Retention) -> Self {
        self.retention = Some(policy);
        self
    }

    /// The runner's settings for a shared store: this instance's name
    /// and the lease on its runs (see [`RunnerBuilder::instance`] and
    /// [`RunnerBuilder::lease`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder()
    ///     .instance("worker-1", Duration::from_secs(10))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(host.runner().instance(), "worker-1");
    /// ```
    #[cfg(feature = "durable")]
    pub fn instance(mut self, name: impl Into<String>, lease: Duration) -> Self {
        self.runner = self.runner.instance(name).lease(lease);
        self
    }

    /// Calls `factory` on every context the host makes.
    ///
    /// ```
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder()
    ///     .context_factory(|ctx| ctx.set_metadata("region", "eu".to_string()))
    ///     .build()
    ///     .unwrap();
    /// # drop(host);
    /// ```
    pub fn context_factory(
        mut self,
        factory: impl Fn(&WorkflowContext) + Send + Sync + 'static,
    ) -> Self {
        self.runner = self.runner.context_factory(factory);
        self
    }

    /// The step handlers; workflows' declared handlers are checked at build.
    ///
    /// ```
    /// use workflow_runtime::handlers::Handlers;
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().handlers(Handlers::builder().build()).build().unwrap();
    /// # drop(host);
    /// ```
    pub fn handlers(mut self, handlers: Handlers) -> Self {
        self.runner = self.runner.handlers(handlers);
        self
    }

    /// A health-check workflow, run by each
    /// [`Runner::check_health`] (see [`RunnerBuilder::health_check`]).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::host::WorkflowHost;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> bool { true } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let host = WorkflowHost::builder().health_check(Ping).build().unwrap();
    /// assert_eq!(host.runner().check_health().await.checks[0].name, "Ping");
    /// # }
    /// ```
    pub fn health_check<W>(mut self, workflow: W) -> Self
    where
        W: crate::definition::WorkflowDefinition,
        W::Input: Default,
        W::Output: CheckOutcome,
    {
        self.runner = self.runner.health_check(workflow);
        self
    }

    /// Faulted runs in a row (a step panicked or timed out) that make a
    /// workflow unhealthy; a step's own error only degrades it (see
    /// [`HealthStatus`] and [`RunnerBuilder::unhealthy_after`]).
    ///
    /// ```
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().unhealthy_after(5).build().unwrap();
    /// # drop(host);
    /// ```
    pub fn unhealthy_after(mut self, failures: u32) -> Self {
        self.runner = self.runner.unhealthy_after(failures);
        self
    }

    /// The circuit breakers the host's runs share (see
    /// [`RunnerBuilder::breakers`]): configured at start-up, say.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, Breakers};
    /// use workflow_runtime::host::WorkflowHost;
    /// let breakers = Breakers::new();
    /// breakers.breaker("bank", BreakerConfig::default());
    /// let host = WorkflowHost::builder().breakers(breakers).build().unwrap();
    /// assert!(host.runner().breakers().get("bank").is_some());
    /// ```
    pub fn breakers(mut self, breakers: crate::behavior::Breakers) -> Self {
        self.runner = self.runner.breakers(breakers);
        self
    }

    /// The host's options.
    ///
    /// ```
    /// use workflow_runtime::host::{HostOptions, WorkflowHost};
    /// let host = WorkflowHost::builder()
    ///     .options(HostOptions::default().parallel(false))
    ///     .build()
    ///     .unwrap();
    /// # drop(host);
    /// ```
    pub fn options(mut self, options: HostOptions) -> Self {
        self.options = options;
        self
    }

    /// The host, or the first problem found before anything runs.
    ///
    /// ```
    /// use workflow_runtime::host::WorkflowHost;
    /// assert!(WorkflowHost::builder().build().is_ok());
    /// ```
    pub fn build(self) -> Result<WorkflowHost, HostError> {
        let pick = |name: &'static str| self.runner.workflow(name).cloned();
        let one_time: Vec<_> = self.one_time.iter().filter_map(|n| pick(n)).collect();
        let mut recurring = Vec::new();
        for (name, schedule) in &self.recurring {
            let workflow = pick(name).expect("registered above");
            let schedule = schedule
                .clone()
                .or_else(|| workflow.schedule())
                .ok_or(HostError::NoSchedule { workflow: name })?;
            let ticks = schedule.ticks();
            recurring.push((workflow, schedule, ticks));
        }
        #[cfg(feature = "durable")]
        if let Some(error) = self.unscheduled {
            return Err(error);
        }
        #[cfg(feature = "durable")]
        if let Some(&workflow) = self.durable_ticks.first() {
            let store = self.runner.shared_store();
            if !store.is_some_and(|store| store.backend().leases()) {
                return Err(HostError::TicksNeedLeases {
                    workflow,
                    store: store.map(|store| store.describe()),
                });
            }
            if self.worker.is_none() {
                return Err(HostError::TicksNeedWorker { workflow });
            }
        }
        #[cfg(feature = "durable")]
        let mut tickers = self.tickers;
        #[cfg(not(feature = "durable"))]
        let tickers = self.tickers;
        #[cfg(feature = "durable")]
        if let Some(policy) = self.retention {
            if self.runner.shared_store().is_none() {
                return Err(HostError::RetentionNeedsStore);
            }
            tickers.push(Box::new(move |runner: Runner, stop| {
                Box::pin(async move { runner.retain_until(policy, stop.cancelled()).await })
            }));
        }
        let hard_stop = CancellationToken::new();
        let runner = self.runner.build_with(hard_stop)?;
        #[cfg(feature = "durable")]
        if self.worker.is_some() {
            runner.expect_worker();
        }
        Ok(WorkflowHost {
            runner,
            one_time,
            recurring,
            options: self.options,
            shutdown: CancellationToken::new(),
            worker: self.worker,
            tickers,
        })
    }
}

impl WorkflowHost {
    /// Starts a host.
    ///
    /// ```
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().build().unwrap();
    /// # drop(host);
    /// ```
    pub fn builder() -> HostBuilder {
        HostBuilder {
            runner: Runner::builder(),
            one_time: Vec::new(),
            recurring: Vec::new(),
            options: HostOptions::default(),
            worker: None,
            tickers: Vec::new(),
            #[cfg(feature = "durable")]
            durable_ticks: Vec::new(),
            #[cfg(feature = "durable")]
            unscheduled: None,
            #[cfg(feature = "durable")]
            retention: None,
        }
    }

    /// The host's runner, for on-demand runs (from an API, say).
    ///
    /// ```
    /// use workflow_runtime::host::WorkflowHost;
    /// let host = WorkflowHost::builder().build().unwrap();
    /// assert!(host.runner().names().is_empty());
    /// ```
    pub fn runner(&self) -> Runner {
        self.runner.clone()
    }

    /// Cancelling it begins a graceful shutdown.
    ///
    /// ```
    /// use workflow_runtime::host::WorkflowHost;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let host = WorkflowHost::builder().build().unwrap();
    /// host.shutdown_token().cancel();
    /// let summary = host.run().await;
    /// assert_eq!(summary.runs.started, 0);
    /// # }
    /// ```
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until ctrl-c (or the shutdown token).
    pub async fn run_until_ctrl_c(self) -> HostSummary {
        let token = self.shutdown.clone();
        let listener = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("ctrl-c: shutting down");
                token.cancel();
            }
        });
        let summary = self.run().await;
        listener.abort();
        summary
    }

    /// Runs until the process is asked to stop: SIGINT (ctrl-c) or
    /// SIGTERM, which containers, systemd and Kubernetes send, on Unix;
    /// ctrl-c elsewhere. Then it shuts down gracefully, as on the
    /// shutdown token.
    ///
    /// ```no_run
    /// use workflow_runtime::host::WorkflowHost;
    /// # #[tokio::main] async fn main() {
    /// let host = WorkflowHost::builder().build().unwrap();
    /// let summary = host.run_until_signal().await;
    /// println!("{} runs passed", summary.runs.passed);
    /// # }
    /// ```
    pub async fn run_until_signal(self) -> HostSummary {
        self.run_until(stop_signal()).await
    }

    /// Runs until the shutdown token is cancelled, or, when it started
    /// only one-time workflows, until they are done.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # struct Ping;
    /// # #[workflow] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// use workflow_runtime::host::WorkflowHost;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let summary = WorkflowHost::builder().one_time(Ping).build().unwrap().run().await;
    /// assert_eq!(summary.runs.passed, 1);
    /// # }
    /// ```
    pub async fn run(self) -> HostSummary {
        self.run_until(std::future::pending()).await
    }

    /// Runs until `signal` completes (or as [`run`](Self::run) would stop).
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::host::WorkflowHost;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let host = WorkflowHost::builder().build().unwrap();
    /// host.run_until(tokio::time::sleep(Duration::from_secs(1))).await;
    /// # }
    /// ```
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> HostSummary {
        let WorkflowHost {
            runner,
            one_time,
            recurring,
            options,
            shutdown,
            worker,
            tickers,
        } = self;
        let has_recurring = !recurring.is_empty();
        // At least one: options read from a file skip the setter's floor.
        let permits = Arc::new(Semaphore::new(options.max_parallelism.max(1)));
        let stopped_on_failure = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let job = Job {
            runner: runner.clone(),
            permits,
            shutdown: shutdown.clone(),
            stop_on_failure: (!options.continue_on_failure).then(|| stopped_on_failure.clone()),
        };

        if options.start_automatically {
            if options.parallel {
                for workflow in one_time {
                    let job = job.clone();
                    tasks.spawn(async move {
                        job.once(&workflow).await;
                    });
                }
            } else {
                let job = job.clone();
                tasks.spawn(async move {
                    for workflow in one_time {
                        if job.shutdown.is_cancelled() || !job.once(&workflow).await {
                            break;
                        }
                    }
                });
            }
            for (workflow, schedule, ticks) in recurring {
                let job = job.clone();
                tasks.spawn(async move { job.every(&workflow, &schedule, &ticks).await });
            }
        }

        // Durable runs a stopped process left unfinished go on first.
        #[cfg(feature = "durable")]
        let serves_durable = runner.store().is_some();
        #[cfg(not(feature = "durable"))]
        let serves_durable = false;
        #[cfg(feature = "durable")]
        if let (true, Some(capacity)) = (serves_durable, worker) {
            let runner = runner.clone();
            let stop = shutdown.clone();
            tasks.spawn(async move { runner.work_until(capacity, stop).await });
        }
        #[cfg(not(feature = "durable"))]
        let _ = worker;
        // Both stop claiming and firing when graceful shutdown begins.
        for ticker in tickers {
            tasks.spawn(ticker(runner.clone(), shutdown.clone()));
        }
        // A worker's loop claims what is left, as it has room.
        #[cfg(feature = "durable")]
        if serves_durable && worker.is_none() {
            let runner = runner.clone();
            tasks.spawn(async move {
                match runner.resume().await {
                    Ok(0) => {}
                    Ok(resumed) => tracing::info!(resumed, "resumed unfinished durable runs"),
                    Err(error) => tracing::error!(%error, "could not resume durable runs"),
                }
            });
        }

        let everything_done = async { while tasks.join_next().await.is_some() {} };
        // With recurring workflows, durable runs to serve, or nothing
        // started (the host only serves its runner), it runs until told to
        // stop.
        let endless = !options.start_automatically || has_recurring || serves_durable;
        tokio::select! {
            () = signal => {}
            () = shutdown.cancelled() => {}
            () = stopped_on_failure.cancelled() => {}
            () = everything_done, if !endless => {}
        }
        shutdown.cancel();

        // Graceful: no new runs start; in-flight ones get the timeout.
        let drained = tokio::time::timeout(options.shutdown_timeout, async {
            while tasks.join_next().await.is_some() {}
            // Durable runs belong to the runner: they get the same time,
            // and one cut short resumes when a host next opens the store.
            #[cfg(feature = "durable")]
            runner.durable_idle().await;
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(timeout = ?options.shutdown_timeout, "runs outlasted the shutdown timeout; cancelling them");
            runner.cancel_all();
            // Cancelled steps end at once; anything else is dropped here.
            if tokio::time::timeout(Duration::from_millis(100), async {
                while tasks.join_next().await.is_some() {}
            })
            .await
            .is_err()
            {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
        // Runs still unfinished go to other instances at once.
        #[cfg(feature = "durable")]
        if serves_durable && let Err(error) = runner.release_leases().await {
            tracing::warn!(%error, "could not release leases");
        }
        HostSummary {
            runs: runner.stats(),
            stopped_on_failure: stopped_on_failure.is_cancelled(),
            forced: !drained,
        }
    }
}

#[derive(Clone)]
struct Job {
    runner: Runner,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    stop_on_failure: Option<CancellationToken>,
}

impl Job {
    /// One run under a permit; false when it failed.
    async fn once(&self, workflow: &Arc<dyn Registered>) -> bool {
        let permit = tokio::select! {
            permit = self.permits.acquire() => permit.expect("the semaphore is never closed"),
            () = self.shutdown.cancelled() => return true,
        };
        let result = self.runner.run_registered(workflow).await;
        drop(permit);
        if let Err(error) = &result {
            tracing::error!(workflow = workflow.name(), %error, "workflow run failed");
            if let Some(stop) = &self.stop_on_failure {
                stop.cancel();
            }
        }
        result.is_ok()
    }

    /// Runs `workflow` on `schedule` until shutdown. The loop awaits each
    /// run, so runs never overlap; ticks that passed during a run are
    /// skipped, and the next run waits for the next tick still ahead.
    async fn every(&self, workflow: &Arc<dyn Registered>, schedule: &Schedule, ticks: &Ticks) {
        let Some(every) = schedule.interval() else {
            return self.on_the_clock(workflow, schedule, ticks).await;
        };
        // An interval runs on tokio's clock, from start, so a paused clock
        // (`tokio::time::pause`) drives it in tests.
        let every = every.max(Duration::from_nanos(1));
        let mut next = tokio::time::Instant::now();
        if !schedule.run_immediately {
            next += every;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = self.shutdown.cancelled() => return,
            }
            self.once(workflow).await;
            let now = tokio::time::Instant::now();
            next += every;
            if next < now {
                let behind = (now - next).as_nanos() / every.as_nanos();
                next += every * u32::try_from(behind + 1).unwrap_or(u32::MAX);
            }
        }
    }

    /// Runs `workflow` at the wall-clock times of `ticks` (a cron
    /// schedule) until shutdown or the schedule's last tick; ticks that
    /// pass during a run are skipped.
    async fn on_the_clock(
        &self,
        workflow: &Arc<dyn Registered>,
        schedule: &Schedule,
        ticks: &Ticks,
    ) {
        let mut fired = i64::MIN;
        if schedule.run_immediately {
            self.once(workflow).await;
        }
        loop {
            // A sleep may end a hair before its tick by the wall clock:
            // never fire the same tick twice.
            let now = self.runner.clock().now_ms().max(fired);
            let Some(next) = ticks.after(now) else {
                tracing::info!(workflow = workflow.name(), "the schedule fires no more");
                return;
            };
            // Long waits are taken a minute at a time, so a wall clock set
            // anew (or a machine that slept) is seen.
            let wait = Duration::from_millis(u64::try_from(next - now).unwrap_or(0));
            let longest = Duration::from_secs(60);
            tokio::select! {
                () = tokio::time::sleep(wait.min(longest)) => {}
                () = self.shutdown.cancelled() => return,
            }
            if wait > longest {
                continue;
            }
            fired = next;
            self.once(workflow).await;
        }
    }
}

/// Completes when the process is asked to stop: SIGINT (ctrl-c) or
/// SIGTERM on Unix, ctrl-c elsewhere. A signal that cannot be listened
/// for is logged, and the others still stop the process; when none can
/// be, it never completes, so nothing is stopped by mistake.
/// What [`WorkflowHost::run_until_signal`] waits for; hand it to a web
/// server's graceful shutdown too, so both stop on the same signal.
///
/// ```no_run
/// # async fn serve(_: impl std::future::Future<Output = ()>) {}
/// # #[tokio::main] async fn main() {
/// // e.g. axum::serve(listener, app).with_graceful_shutdown(stop_signal())
/// serve(workflow_runtime::host::stop_signal()).await;
/// # }
/// ```
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; stopping on ctrl-c alone");
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::info!("SIGINT: shutting down");
                    return;
                }
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            Ok(()) = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
    }
    #[cfg(not(unix))]
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("ctrl-c: shutting down"),
        Err(error) => {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    }
}

impl fmt::Debug for WorkflowHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowHost")
            .field("runner", &self.runner)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
