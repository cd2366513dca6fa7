//! The host, the runner, handlers and health, on tokio's paused clock.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::Declined;
use workflow_runtime::handlers::{HandlerKey, Handlers};
use workflow_runtime::host::{
    HealthStatus, HostError, HostOptions, RunError, RunOutcome, Runner, Schedule, ScheduleError,
    WorkflowHost,
};
use workflow_runtime::prelude::*;
use workflow_runtime::{StepMeta, WorkflowContext};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// When runs started, how many ran at once at most.
#[derive(Clone, Default)]
struct Probe {
    starts: Arc<Mutex<Vec<Duration>>>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Probe {
    async fn run(&self, origin: Instant, takes: Duration) {
        self.starts.lock().unwrap().push(origin.elapsed());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(takes).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
    fn starts(&self) -> Vec<Duration> {
        self.starts.lock().unwrap().clone()
    }
}

/// A workflow written by hand, to control exactly what a run does.
struct Manual {
    name: &'static str,
    probe: Probe,
    origin: Instant,
    takes: Duration,
    panics: bool,
}

impl WorkflowDefinition for Manual {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "Manual";
    const STEPS: &'static [StepMeta] = &[];

    async fn run(&self, ctx: &WorkflowContext, (): ()) -> Result<(), WorkflowError> {
        assert_eq!(ctx.name(), "Manual");
        if self.panics {
            panic!("{} exploded outside any step", self.name);
        }
        let (probe, origin, takes) = (self.probe.clone(), self.origin, self.takes);
        Workflow::given_async(ctx, "work", move || async move {
            probe.run(origin, takes).await
        })
        .await
    }
}

fn manual(probe: &Probe, takes: Duration) -> Manual {
    Manual {
        name: "manual",
        probe: probe.clone(),
        origin: Instant::now(),
        takes,
        panics: false,
    }
}

async fn run_host_for(host: WorkflowHost, for_: Duration) -> workflow_runtime::host::HostSummary {
    host.run_until(tokio::time::sleep(for_)).await
}

#[tokio::test(start_paused = true)]
async fn recurring_runs_on_the_interval_and_optionally_at_start() {
    for (immediately, expected) in [(false, vec![10, 20, 30]), (true, vec![0, 10, 20, 30])] {
        let probe = Probe::default();
        let host = WorkflowHost::builder()
            .recurring_every(
                manual(&probe, secs(1)),
                Schedule::every(secs(10)).run_immediately(immediately),
            )
            .build()
            .unwrap();
        let summary = run_host_for(host, secs(35)).await;
        let expected: Vec<_> = expected.into_iter().map(secs).collect();
        assert_eq!(probe.starts(), expected, "run_immediately = {immediately}");
        assert_eq!(summary.runs.passed, expected.len() as u64);
        assert!(!summary.forced);
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_that_outlasts_its_interval_is_not_overlapped_and_missed_ticks_are_skipped() {
    let probe = Probe::default();
    let host = WorkflowHost::builder()
        .recurring_every(
            manual(&probe, secs(25)),
            Schedule::every(secs(10)).run_immediately(true),
        )
        .build()
        .unwrap();
    run_host_for(host, secs(59)).await;
    // 0..25, then the ticks at 10 and 20 are skipped: next at 30..55.
    assert_eq!(probe.starts(), [secs(0), secs(30)]);
    assert_eq!(probe.most.load(Ordering::SeqCst), 1);
}

macro_rules! sleepers {
    ($($name:ident),*) => {$(
        struct $name(Probe, Instant);
        impl WorkflowDefinition for $name {
            type Input = ();
            type Output = ();
            const NAME: &'static str = stringify!($name);
            const STEPS: &'static [StepMeta] = &[];
            async fn run(&self, ctx: &WorkflowContext, (): ()) -> Result<(), WorkflowError> {
                let (probe, origin) = (self.0.clone(), self.1);
                Workflow::given_async(ctx, "sleep", move || async move { probe.run(origin, secs(1)).await }).await
            }
        }
    )*};
}

sleepers!(S1, S2, S3, S4, S5, S6, S7);

#[tokio::test(start_paused = true)]
async fn one_time_runs_never_exceed_the_parallelism_limit() {
    let probe = Probe::default();
    let now = Instant::now();
    let host = WorkflowHost::builder()
        .one_time(S1(probe.clone(), now))
        .one_time(S2(probe.clone(), now))
        .one_time(S3(probe.clone(), now))
        .one_time(S4(probe.clone(), now))
        .one_time(S5(probe.clone(), now))
        .one_time(S6(probe.clone(), now))
        .one_time(S7(probe.clone(), now))
        .options(HostOptions::default().max_parallelism(3))
        .build()
        .unwrap();
    let summary = host.run().await;
    assert_eq!(summary.runs.passed, 7);
    assert_eq!(probe.most.load(Ordering::SeqCst), 3);
    assert_eq!(now.elapsed(), secs(3), "7 one-second runs, 3 at a time");

    // In sequence, one at a time.
    let probe = Probe::default();
    let now = Instant::now();
    let host = WorkflowHost::builder()
        .one_time(S1(probe.clone(), now))
        .one_time(S2(probe.clone(), now))
        .options(HostOptions::default().parallel(false))
        .build()
        .unwrap();
    host.run().await;
    assert_eq!(probe.starts(), [secs(0), secs(1)]);
}

struct Failing;

#[workflow]
impl Failing {
    #[step(given = "a bad number")]
    fn parse(&self) -> Result<u8, std::num::ParseIntError> {
        "x".parse()
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_stops_the_host_only_when_asked_to() {
    let probe = Probe::default();
    let host = WorkflowHost::builder()
        .one_time(Failing)
        .recurring_every(manual(&probe, secs(1)), Schedule::every(secs(10)))
        .build()
        .unwrap();
    let summary = run_host_for(host, secs(25)).await;
    assert_eq!((summary.runs.failed, summary.runs.passed), (1, 2));
    assert!(!summary.stopped_on_failure);

    let probe = Probe::default();
    let started = Instant::now();
    let host = WorkflowHost::builder()
        .one_time(Failing)
        .recurring_every(manual(&probe, secs(1)), Schedule::every(secs(10)))
        .options(HostOptions::default().continue_on_failure(false))
        .build()
        .unwrap();
    let summary = run_host_for(host, secs(25)).await;
    assert!(summary.stopped_on_failure);
    assert_eq!(summary.runs.passed, 0);
    assert_eq!(started.elapsed(), secs(0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_the_timeout_then_cancels_and_records_in_flight_runs() {
    let probe = Probe::default();
    let host = WorkflowHost::builder()
        .recurring_every(
            manual(&probe, secs(100)),
            Schedule::every(secs(10)).run_immediately(true),
        )
        .options(HostOptions::default().shutdown_timeout(secs(2)))
        .build()
        .unwrap();
    let runner = host.runner();
    let stop = host.shutdown_token();
    let started = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(secs(5)).await;
        stop.cancel();
    });
    let summary = host.run().await;
    assert!(summary.forced);
    assert_eq!(summary.runs.cancelled, 1);
    assert_eq!(started.elapsed(), secs(7));
    let health = runner.health();
    let manual = &health.workflows[0];
    assert_eq!(
        manual.last_run.as_ref().unwrap().outcome,
        RunOutcome::Cancelled
    );
    assert_eq!(manual.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_workflow_is_contained() {
    let probe = Probe::default();
    let bomb = Manual {
        panics: true,
        ..manual(&probe, secs(1))
    };
    let host = WorkflowHost::builder()
        .one_time(bomb)
        .one_time(S1(probe.clone(), Instant::now()))
        .build()
        .unwrap();
    let runner = host.runner();
    let summary = host.run().await;
    assert_eq!((summary.runs.failed, summary.runs.passed), (1, 1));
    let health = runner.health();
    let failure = health
        .workflows
        .iter()
        .find(|w| w.name == "Manual")
        .unwrap();
    assert_eq!(
        failure.last_failure.as_ref().unwrap().error.as_deref(),
        Some("panicked: manual exploded outside any step")
    );
}

/// A run's future is made at its first poll, in the run's span: a body
/// that panics as it is called, before it hands back a future, is a run
/// that started and failed, not a panic the runner never saw.
#[tokio::test]
async fn a_run_fn_body_that_panics_as_it_is_called_counts_as_a_failed_run() {
    let runner = Runner::builder().build().unwrap();
    let caller = runner.clone();
    let panicked = tokio::spawn(async move {
        caller
            .run_fn(
                "Eager",
                |_ctx| -> std::future::Ready<Result<(), WorkflowError>> {
                    panic!("eager body exploded")
                },
            )
            .await
    })
    .await
    .unwrap_err();
    assert!(panicked.is_panic());
    let message = panicked.into_panic();
    assert_eq!(
        message.downcast_ref::<String>().map(String::as_str),
        Some("eager body exploded"),
        "the run's panic is resumed to the caller"
    );
    let stats = runner.stats();
    assert_eq!((stats.started, stats.failed), (1, 1));
    let health = runner.health();
    let eager = &health.workflows[0];
    assert_eq!(eager.name, "Eager");
    assert_eq!(
        eager.last_failure.as_ref().unwrap().error.as_deref(),
        Some("panicked: eager body exploded")
    );
}

/// A workflow whose `run` panics as it is called, before it hands back a
/// future: what a hand-written definition that does work up front does
/// when that work fails.
struct EagerBomb;

impl WorkflowDefinition for EagerBomb {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "EagerBomb";
    const STEPS: &'static [StepMeta] = &[];

    #[allow(clippy::manual_async_fn)]
    fn run<'a>(
        &'a self,
        _: &'a WorkflowContext,
        (): (),
    ) -> impl std::future::Future<Output = Result<(), WorkflowError>> + Send + 'a {
        // Always true; written as a condition so the future below stays
        // reachable and the signature is a real definition's.
        if Self::NAME.starts_with("Eager") {
            panic!("exploded before its future");
        }
        async { Ok(()) }
    }
}

/// A run whose `run` panics as it is called is a run that failed, by
/// every way of running it: `run` resumes the panic's message to the
/// caller, `run_named` reports it as `RunError::Panicked`, and both count.
#[tokio::test]
async fn a_run_that_panics_as_it_is_made_is_counted_as_failed_every_way() {
    let runner = Runner::builder().register(EagerBomb).build().unwrap();
    let caller = runner.clone();
    let panicked = tokio::spawn(async move { caller.run(&EagerBomb, ()).await })
        .await
        .unwrap_err();
    let message = panicked.into_panic();
    assert_eq!(
        message.downcast_ref::<String>().map(String::as_str),
        Some("exploded before its future")
    );
    assert_eq!((runner.stats().started, runner.stats().failed), (1, 1));

    let err = runner.run_named("EagerBomb").await.unwrap_err();
    assert!(
        matches!(&err, RunError::Panicked { workflow, message }
            if workflow == "EagerBomb" && message == "exploded before its future"),
        "{err:?}"
    );
    assert_eq!((runner.stats().started, runner.stats().failed), (2, 2));
}

#[tokio::test]
async fn unknown_names_list_the_registered_ones() {
    let runner = Runner::builder().register(Failing).build().unwrap();
    let err = runner.run_named("Failng").await.unwrap_err();
    assert!(matches!(err, RunError::UnknownWorkflow { .. }));
    assert_eq!(
        err.to_string(),
        r#"no workflow named "Failng"; registered: Failing"#
    );
    let err = runner.run_named("Failing").await.unwrap_err();
    assert!(matches!(
        err,
        RunError::Failed(WorkflowError::Failed { .. })
    ));
}

/// Two steps that pass, read back from the context `run_named` returns.
struct Greeting;

#[workflow]
impl Greeting {
    #[step(given = "a name")]
    fn name(&self) -> String {
        "ada".to_owned()
    }

    // A `then` step takes the value by reference: a `String` here.
    #[allow(clippy::ptr_arg)]
    #[step(then = "it is not empty")]
    fn not_empty(&self, name: &String) -> bool {
        !name.is_empty()
    }
}

/// Issue 25, point 9: `run_named` returned `()`, so a caller could not
/// read the run it asked for; the guide's `RunAsync` returns the context.
#[tokio::test]
async fn run_named_returns_the_runs_context() {
    let runner = Runner::builder().register(Greeting).build().unwrap();
    let first = runner.run_named("Greeting").await.unwrap();
    let second = runner.run_named("Greeting").await.unwrap();
    assert!(first.all_passed());
    let titles: Vec<_> = first.steps().iter().map(|s| s.title.to_string()).collect();
    assert_eq!(titles, ["a name", "it is not empty"]);
    assert_ne!(first.execution_id(), second.execution_id());
}

struct CreateOrder(u32);
#[derive(Debug, PartialEq)]
struct Order(u32);

struct Orders;

#[workflow(handlers(CreateOrder => Order))]
impl Orders {
    #[step(given = "an id")]
    fn id(&self) -> u32 {
        7
    }
}

#[tokio::test]
async fn a_missing_handler_is_reported_when_the_host_is_built() {
    let err = WorkflowHost::builder()
        .one_time(Orders)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "workflow \"Orders\" needs a handler: no handler registered for request \
         `host::CreateOrder` and response `host::Order`"
    );
    assert!(matches!(
        err,
        HostError::MissingHandler {
            workflow: "Orders",
            ..
        }
    ));
    assert_eq!(Orders::handlers(), [HandlerKey::of::<CreateOrder, Order>()]);

    let handlers = Handlers::builder()
        .register(|req: CreateOrder| async move { Ok::<_, std::fmt::Error>(Order(req.0)) })
        .build();
    let host = WorkflowHost::builder()
        .one_time(Orders)
        .handlers(handlers)
        .build()
        .unwrap();
    let runner = host.runner();
    let order: Order = runner
        .run_fn("CreateOrder", |ctx| {
            let handlers = runner.handlers().clone();
            async move {
                Workflow::given(&ctx, "id", || 3)
                    .handle("create order", &handlers, CreateOrder)
                    .await
            }
        })
        .await
        .unwrap();
    assert_eq!(order, Order(3));
}

/// Faults (panics) on its first four runs: the system failing.
struct Flaky(Arc<AtomicU32>);

#[workflow]
impl Flaky {
    #[step(given = "a try")]
    fn attempt(&self) -> u32 {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0..=3 => panic!("the try fell over"),
            n => n,
        }
    }
}

#[tokio::test]
async fn health_degrades_then_turns_unhealthy_and_recovers() {
    let runner = Runner::builder()
        .register(Flaky(Arc::default()))
        .unhealthy_after(3)
        .build()
        .unwrap();
    let mut verdicts = Vec::new();
    for _ in 0..5 {
        let _ = runner.run_named("Flaky").await;
        verdicts.push(runner.health().status);
    }
    use HealthStatus::*;
    assert_eq!(
        verdicts,
        [Degraded, Degraded, Unhealthy, Unhealthy, Healthy]
    );
    let report = runner.health();
    let flaky = &report.workflows[0];
    assert_eq!(
        (flaky.runs, flaky.failures, flaky.consecutive_failures),
        (5, 4, 0)
    );
    assert_eq!(flaky.last_run.as_ref().unwrap().outcome, RunOutcome::Passed);
    assert!(
        flaky
            .last_failure
            .as_ref()
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("a try")
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["status"], "healthy");
    assert_eq!(json["workflows"][0]["consecutive_failures"], 0);
    assert_eq!(json["workflows"][0]["consecutive_faults"], 0);
}

/// Refuses its first four runs with a step error: the business saying no.
struct Refusing(Arc<AtomicU32>);

#[workflow]
impl Refusing {
    #[step(given = "a card")]
    fn charge(&self) -> Result<u32, Declined> {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0..=3 => Err(Declined),
            n => Ok(n),
        }
    }
}

#[tokio::test]
async fn step_errors_in_a_row_degrade_health_but_never_make_it_unhealthy() {
    let runner = Runner::builder()
        .register(Refusing(Arc::default()))
        .unhealthy_after(3)
        .build()
        .unwrap();
    let mut verdicts = Vec::new();
    for _ in 0..5 {
        let _ = runner.run_named("Refusing").await;
        verdicts.push(runner.health().status);
    }
    use HealthStatus::*;
    assert_eq!(verdicts, [Degraded, Degraded, Degraded, Degraded, Healthy]);
    let report = runner.health();
    let refusing = &report.workflows[0];
    // Counted all the same.
    assert_eq!((refusing.runs, refusing.failures), (5, 4));
    let declined = refusing.last_failure.as_ref().unwrap();
    assert!(
        declined
            .error
            .as_deref()
            .unwrap()
            .ends_with("card declined")
    );
}

// ---- ten thousand runs --------------------------------------------------

struct Pipeline;

#[derive(Debug)]
struct Unlucky;
impl std::fmt::Display for Unlucky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unlucky draw")
    }
}
impl std::error::Error for Unlucky {}

/// A seeded draw per run and step: fails one time in ten.
fn unlucky(seed: u64, step: u64) -> bool {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    (x >> 33) % 100 < 10 / 3 + u64::from(step == 0)
}

#[workflow]
impl Pipeline {
    #[step(given = "a seed")]
    fn seed(&self, seed: u64) -> u64 {
        seed
    }

    #[step(when = "first draw")]
    async fn first(&self, seed: u64) -> Result<u64, Unlucky> {
        tokio::task::yield_now().await;
        if unlucky(seed, 0) {
            Err(Unlucky)
        } else {
            Ok(seed)
        }
    }

    #[step(and = "second draw")]
    fn second(&self, seed: u64) -> Result<u64, Unlucky> {
        if unlucky(seed, 1) {
            Err(Unlucky)
        } else {
            Ok(seed)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_runs_are_all_accounted_for() {
    let runner = Runner::builder().build().unwrap();
    let expected_failures = (0..10_000u64)
        .filter(|&seed| unlucky(seed, 0) || unlucky(seed, 1))
        .count() as u64;
    let mut runs = tokio::task::JoinSet::new();
    for seed in 0..10_000u64 {
        let runner = runner.clone();
        runs.spawn(async move { runner.run(&Pipeline, seed).await.is_ok() });
    }
    let (mut passed, mut failed) = (0u64, 0u64);
    while let Some(result) = runs.join_next().await {
        if result.unwrap() {
            passed += 1
        } else {
            failed += 1
        }
    }
    assert_eq!(passed + failed, 10_000);
    assert_eq!(failed, expected_failures);
    assert!(
        (700..1_300).contains(&failed),
        "about one in ten fails: {failed}"
    );
    let stats = runner.stats();
    assert_eq!(
        (stats.started, stats.passed, stats.failed, stats.cancelled),
        (10_000, passed, failed, 0)
    );
    let health = runner.health();
    assert_eq!(health.workflows[0].runs, 10_000);
    assert_eq!(health.workflows[0].failures, failed);
    // Finished tasks leave the runtime's books a moment after their output.
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..1_000 {
        if metrics.num_alive_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(metrics.num_alive_tasks(), 0, "no task left running");
}

/// A run's future dropped while a step waits (a `select!`, a timeout
/// around it) counts once, as cancelled, with its step recorded cancelled;
/// a `run` future dropped before its first poll never started a run, and
/// counts nothing.
#[tokio::test(start_paused = true)]
async fn a_run_dropped_mid_step_counts_as_cancelled_and_one_never_polled_not_at_all() {
    let runner = Runner::builder().build().unwrap();
    let probe = Probe::default();

    drop(runner.run(&manual(&probe, secs(60)), ()));
    let stats = runner.stats();
    assert_eq!((stats.started, stats.cancelled), (0, 0), "never polled");
    assert!(runner.health().workflows.is_empty());
    assert!(probe.starts().is_empty(), "its step never ran");

    let ctx = runner.context(WorkflowContext::builder("Manual"));
    let slow = manual(&probe, secs(60));
    let timed_out = tokio::time::timeout(secs(1), runner.run_in(&slow, &ctx, ())).await;
    assert!(timed_out.is_err(), "the step waits a minute");
    let stats = runner.stats();
    assert_eq!(
        (stats.started, stats.passed, stats.failed, stats.cancelled),
        (1, 0, 0, 1)
    );
    let health = runner.health();
    let last = health.workflows[0].last_run.as_ref().unwrap();
    assert_eq!(last.outcome, RunOutcome::Cancelled);
    assert_eq!(last.error.as_deref(), Some("cancelled"));
    assert_eq!(probe.starts().len(), 1, "its step started once");
    let records = ctx.steps();
    assert_eq!(records.len(), 1);
    assert!(matches!(records[0].outcome, StepOutcome::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn a_host_that_starts_nothing_serves_its_runner_until_shut_down() {
    let host = WorkflowHost::builder()
        .on_demand(Failing)
        .options(HostOptions::default().start_automatically(false))
        .build()
        .unwrap();
    let runner = host.runner();
    let started = Instant::now();
    let serving = tokio::spawn(host.run_until(tokio::time::sleep(secs(60))));
    tokio::time::sleep(secs(1)).await;
    assert!(!serving.is_finished());
    assert!(runner.run_named("Failing").await.is_err());
    let summary = serving.await.unwrap();
    assert_eq!(started.elapsed(), secs(60));
    assert_eq!(summary.runs.failed, 1);
}

/// Charges through a breaker named "bank" that opens on the first failure.
struct Charge;

#[workflow]
impl Charge {
    #[step(given = "an amount")]
    fn amount(&self, cents: u64) -> u64 {
        cents
    }

    #[step(
        when = "charged",
        circuit_breaker(name = "bank", failures = 1, open_for = "60s")
    )]
    async fn charge(&self, cents: u64) -> Result<u64, Declined> {
        if cents > 100 {
            Err(Declined)
        } else {
            Ok(cents)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn two_runners_in_one_process_do_not_share_breakers() {
    let tripped = Runner::builder().build().unwrap();
    let other = Runner::builder().build().unwrap();
    assert!(tripped.run(&Charge, 500).await.is_err());

    // The first runner's breaker is open: its next run is rejected.
    let bank = tripped.breakers().get("bank").expect("made by the run");
    assert_eq!(bank.state(), workflow_runtime::behavior::CircuitState::Open);
    let rejected = tripped.run(&Charge, 10).await.unwrap_err();
    assert!(rejected.to_string().contains("circuit"), "{rejected}");
    assert_eq!(tripped.health().status, HealthStatus::Unhealthy);
    assert_eq!(tripped.health().breakers.len(), 1);

    // The other runner never saw it: its breaker is its own, and closed.
    assert!(other.breakers().get("bank").is_none());
    assert_eq!(other.health().status, HealthStatus::Healthy);
    assert!(other.health().breakers.is_empty());
    assert_eq!(other.run(&Charge, 10).await.unwrap(), 10);
    let own = other.breakers().get("bank").unwrap();
    assert!(!Arc::ptr_eq(&own, &bank));
    assert_eq!(
        own.state(),
        workflow_runtime::behavior::CircuitState::Closed
    );
}

/// Every five minutes by a cron expression: notes when each run began, by
/// the host's clock.
struct Stamp {
    clock: workflow_runtime::host::Clock,
    at: Arc<Mutex<Vec<i64>>>,
}

#[workflow(cron = "0 */5 * * * *")]
impl Stamp {
    #[step(given = "a stamp")]
    fn stamp(&self) -> usize {
        let mut at = self.at.lock().unwrap();
        at.push(self.clock.now_ms());
        at.len()
    }
}

// A cron schedule follows the host's wall clock: one that follows tokio's
// paused clock runs twenty minutes of ticks at once, each exactly on time.
#[tokio::test(start_paused = true)]
async fn a_cron_schedule_runs_at_its_wall_clock_ticks_once_each() {
    use workflow_runtime::host::Clock;
    // 2026-01-01 00:03:00 UTC.
    let start = 1_767_225_780_000;
    let clock = Clock::following_tokio(
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(start).unwrap()),
    );
    let at = Arc::new(Mutex::new(Vec::new()));
    let host = WorkflowHost::builder()
        .clock(clock)
        .recurring(Stamp {
            clock,
            at: at.clone(),
        })
        .build()
        .unwrap();
    let summary = host
        .run_until(async {
            while at.lock().unwrap().len() < 4 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
        .await;
    let at = at.lock().unwrap().clone();
    assert_eq!(summary.runs.passed, 4);
    let minute = 60_000;
    let ticks = [5, 10, 15, 20].map(|m| start - 3 * minute + m * minute);
    for (stamp, tick) in at.iter().zip(ticks) {
        assert!(
            (tick..tick + 5).contains(stamp),
            "{at:?}, expected {ticks:?}"
        );
    }
}

#[test]
fn a_cron_schedule_that_cannot_run_says_why() {
    assert_eq!(
        Schedule::cron("0 */5 * * *").unwrap_err().to_string(),
        "cron expression \"0 */5 * * *\": 5 fields; expected 6 or 7, seconds first: \
         sec min hour day-of-month month day-of-week [year] \
         (\"0 */5 * * * *\" is every five minutes)"
    );
    assert!(matches!(
        Schedule::cron_in("0 0 9 * * *", "Nowhere/Atlantis"),
        Err(ScheduleError::Zone { zone }) if zone == "Nowhere/Atlantis"
    ));
}

/// A health check whose dependency can be made to fail.
struct CacheCheck {
    down: Arc<std::sync::atomic::AtomicBool>,
}

/// The cache answers.
#[workflow]
impl CacheCheck {
    #[step(given = "a ping")]
    async fn ping(&self) -> Result<(), Declined> {
        if self.down.load(Ordering::SeqCst) {
            Err(Declined)
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn health_checks_run_when_asked_and_report_their_failure() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runner = Runner::builder()
        .health_check(CacheCheck { down: down.clone() })
        .unhealthy_after(5)
        .build()
        .unwrap();
    // The passive report runs nothing.
    assert!(runner.health().checks.is_empty());
    let report = runner.check_health().await;
    assert_eq!(report.status, HealthStatus::Healthy);
    assert_eq!(report.checks.len(), 1);
    assert_eq!(report.checks[0].name, "CacheCheck");
    assert_eq!(
        report.checks[0].description.as_deref(),
        Some("The cache answers.")
    );
    assert_eq!(report.checks[0].message, None);

    down.store(true, Ordering::SeqCst);
    let report = runner.check_health().await;
    assert_eq!(report.status, HealthStatus::Unhealthy, "a failed check now");
    assert_eq!(report.checks[0].status, HealthStatus::Unhealthy);
    let message = report.checks[0].message.clone().unwrap();
    assert!(message.contains("declined"), "{message}");
    // The check's runs count in the passive report too: one failure of
    // five allowed in a row is degraded there.
    assert_eq!(runner.health().status, HealthStatus::Degraded);

    down.store(false, Ordering::SeqCst);
    assert_eq!(runner.check_health().await.status, HealthStatus::Healthy);
}

/// Never answers.
struct HungCheck;

#[workflow]
impl HungCheck {
    #[step(given = "a ping that hangs")]
    async fn ping(&self) -> bool {
        std::future::pending().await
    }
}

/// A replica that answers, but late.
struct ReplicaCheck;

#[workflow]
impl ReplicaCheck {
    #[step(given = "the replica's lag")]
    fn lag(&self) -> (HealthStatus, String) {
        (HealthStatus::Degraded, "replica lag 40s".to_owned())
    }
}

/// A queue that is gone.
struct QueueCheck;

#[workflow]
impl QueueCheck {
    #[step(given = "a ping")]
    fn ping(&self) -> bool {
        false
    }
}

/// Issue 25, point 6: a check was pass or fail only; the guide's checks
/// report Healthy, Degraded or Unhealthy with a message.
#[tokio::test]
async fn a_health_check_reports_the_status_it_returns() {
    let runner = Runner::builder()
        .health_check(ReplicaCheck)
        .build()
        .unwrap();
    let report = runner.check_health().await;
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(report.checks[0].status, HealthStatus::Degraded);
    assert_eq!(report.checks[0].message.as_deref(), Some("replica lag 40s"));

    let runner = Runner::builder()
        .health_check(ReplicaCheck)
        .health_check(QueueCheck)
        .build()
        .unwrap();
    let report = runner.check_health().await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.checks[1].status, HealthStatus::Unhealthy);
}

#[tokio::test(start_paused = true)]
async fn a_health_check_that_hangs_is_reported_unhealthy_at_its_timeout() {
    let runner = Runner::builder()
        .health_check(HungCheck)
        .health_check_timeout(secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let report = runner.check_health().await;
    assert_eq!(started.elapsed(), secs(2));
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(
        report.checks[0].message.as_deref(),
        Some("health check \"HungCheck\" did not finish within 2s")
    );
}
