//! Health: each workflow's last run, last failure and failures in a row,
//! the circuit breakers' states, and one verdict.
//!
//! A run that fails on its own terms (a step's error, such as a declined
//! card) is the business working: it degrades the verdict while it is the
//! latest, and is counted, but only faults (panics, timeouts) in a row make
//! a workflow unhealthy. Otherwise any client could take a service out of
//! its load balancer with a few bad requests.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::behavior::{Breakers, CircuitState};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RunOutcome {
    /// Every step passed.
    Passed,
    /// A step failed, or the run panicked.
    Failed,
    /// The run was cancelled (a host shutting down).
    Cancelled,
}

/// The overall verdict.
///
/// - `Unhealthy`: a workflow faulted (a step panicked or timed out)
///   `unhealthy_after` runs in a row (default 3), or a circuit breaker is
///   open;
/// - `Degraded`: a workflow's last run failed, however it failed (a step's
///   own error, such as a declined card, included), or a breaker is
///   half-open;
/// - `Healthy`: otherwise (and before anything ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum HealthStatus {
    /// All well.
    Healthy,
    /// Something failed lately.
    Degraded,
    /// Something keeps failing.
    Unhealthy,
}

/// What a health check's workflow returns
/// ([`RunnerBuilder::health_check`](super::RunnerBuilder::health_check)):
/// its status and, if it says one, why. A check that fails (an error, a
/// panic, a timeout) is unhealthy, with the failure as its message.
///
/// ```
/// use workflow_runtime::host::{CheckOutcome, HealthStatus};
/// assert_eq!(().outcome(), (HealthStatus::Healthy, None));
/// assert_eq!(false.outcome().0, HealthStatus::Unhealthy);
/// let slow = (HealthStatus::Degraded, "replica lag 40s".to_owned());
/// assert_eq!(slow.outcome().1.as_deref(), Some("replica lag 40s"));
/// ```
#[diagnostic::on_unimplemented(
    message = "a health check returns `()`, `bool`, `HealthStatus` or `(HealthStatus, String)`, not `{Self}`",
    label = "what the check's last step returns",
    note = "return the check's status from its last step"
)]
pub trait CheckOutcome {
    /// The check's status and message.
    fn outcome(&self) -> (HealthStatus, Option<String>);
}

impl CheckOutcome for () {
    fn outcome(&self) -> (HealthStatus, Option<String>) {
        (HealthStatus::Healthy, None)
    }
}

impl CheckOutcome for bool {
    fn outcome(&self) -> (HealthStatus, Option<String>) {
        match self {
            true => (HealthStatus::Healthy, None),
            false => (
                HealthStatus::Unhealthy,
                Some("the check said no".to_owned()),
            ),
        }
    }
}

impl CheckOutcome for HealthStatus {
    fn outcome(&self) -> (HealthStatus, Option<String>) {
        (*self, None)
    }
}

impl CheckOutcome for (HealthStatus, String) {
    fn outcome(&self) -> (HealthStatus, Option<String>) {
        (self.0, Some(self.1.clone()))
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One run, as health reports it.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RunInfo {
    /// When it started, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// How it ended.
    pub outcome: RunOutcome,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// One workflow's health.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct WorkflowHealth {
    /// The workflow's name.
    pub name: String,
    /// Its latest run.
    pub last_run: Option<RunInfo>,
    /// Its latest failed run.
    pub last_failure: Option<RunInfo>,
    /// Failed runs since the last one that passed.
    pub consecutive_failures: u32,
    /// Faulted runs (a step panicked or timed out) since the last run that
    /// did not fault: what makes the workflow unhealthy. A run that failed
    /// on its own terms, a step returning its error, ends the streak: the
    /// system did its job.
    pub consecutive_faults: u32,
    /// Runs so far.
    pub runs: u64,
    /// Failed runs so far.
    pub failures: u64,
}

/// A circuit breaker's state, as health reports it.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BreakerHealth {
    /// The breaker's name.
    pub name: String,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// State changes so far.
    pub transitions: u64,
}

/// The whole report, ready to serve from a health endpoint.
///
/// ```
/// use workflow_runtime::host::{HealthStatus, Runner};
/// let report = Runner::builder().build().unwrap().health();
/// assert_eq!(report.status, HealthStatus::Healthy);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HealthReport {
    /// The verdict.
    pub status: HealthStatus,
    /// Each workflow that ran, by name.
    pub workflows: Vec<WorkflowHealth>,
    /// Every shared circuit breaker, by name.
    pub breakers: Vec<BreakerHealth>,
    /// The health-check workflows run for this report
    /// ([`Runner::check_health`](super::Runner::check_health)); empty in
    /// the passive report.
    pub checks: Vec<CheckHealth>,
}

/// A health-check workflow's run, made when the report was asked for.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CheckHealth {
    /// The check's name (its workflow's).
    pub name: String,
    /// What it checks (its workflow's description).
    pub description: Option<String>,
    /// Healthy when it passed, unhealthy when it failed.
    pub status: HealthStatus,
    /// Why it failed.
    pub message: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
}

/// Where runs are recorded.
#[derive(Clone)]
pub(crate) struct Health {
    workflows: Arc<Mutex<BTreeMap<String, WorkflowHealth>>>,
    unhealthy_after: u32,
}

impl Health {
    pub(crate) fn new(unhealthy_after: u32) -> Self {
        Health {
            workflows: Arc::default(),
            unhealthy_after: unhealthy_after.max(1),
        }
    }

    pub(crate) fn record(
        &self,
        name: &str,
        started: SystemTime,
        duration: Duration,
        outcome: RunOutcome,
        error: Option<String>,
        fault: bool,
    ) {
        let run = RunInfo {
            at_unix_ms: started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            outcome,
            duration_ms: duration.as_secs_f64() * 1e3,
            error,
        };
        let mut all = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Looked up by `&str`, once: a workflow's name is copied (and
        // searched for a second time) only the first time it runs.
        let entry = match all.get_mut(name) {
            Some(entry) => entry,
            None => all
                .entry(name.to_owned())
                .or_insert_with(|| WorkflowHealth {
                    name: name.to_owned(),
                    last_run: None,
                    last_failure: None,
                    consecutive_failures: 0,
                    consecutive_faults: 0,
                    runs: 0,
                    failures: 0,
                }),
        };
        entry.runs += 1;
        match outcome {
            RunOutcome::Passed => {
                entry.consecutive_failures = 0;
                entry.consecutive_faults = 0;
            }
            RunOutcome::Failed => {
                entry.failures += 1;
                entry.consecutive_failures += 1;
                entry.consecutive_faults = if fault {
                    entry.consecutive_faults + 1
                } else {
                    0
                };
                entry.last_failure = Some(run.clone());
            }
            RunOutcome::Cancelled => {}
        }
        entry.last_run = Some(run);
    }

    pub(crate) fn report(&self, breakers: &Breakers) -> HealthReport {
        let breakers_now = breakers.all();
        let workflows: Vec<_> = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let breakers: Vec<_> = breakers_now
            .iter()
            .map(|b| {
                let s = b.snapshot();
                BreakerHealth {
                    name: s.name.to_string(),
                    state: s.state.to_string(),
                    consecutive_failures: s.consecutive_failures,
                    transitions: s.transitions,
                }
            })
            .collect();
        let workflow_status = workflows.iter().map(|w| {
            if w.consecutive_faults >= self.unhealthy_after {
                HealthStatus::Unhealthy
            } else if w.consecutive_failures > 0 {
                HealthStatus::Degraded
            } else {
                HealthStatus::Healthy
            }
        });
        let breaker_status = breakers_now.iter().map(|b| match b.state() {
            CircuitState::Closed => HealthStatus::Healthy,
            CircuitState::HalfOpen => HealthStatus::Degraded,
            CircuitState::Open => HealthStatus::Unhealthy,
        });
        let status = workflow_status
            .chain(breaker_status)
            .max()
            .unwrap_or(HealthStatus::Healthy);
        HealthReport {
            status,
            workflows,
            breakers,
            checks: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{StepError, StepInfo, StepKind, WorkflowError};

    fn step(title: &'static str) -> StepInfo {
        StepInfo::new("Orders", StepKind::When, title)
    }

    fn declined() -> WorkflowError {
        WorkflowError::Failed {
            step: step("charge card"),
            error: StepError::new(std::io::Error::other("card declined")),
        }
    }

    fn panicked() -> WorkflowError {
        WorkflowError::Panicked {
            step: step("charge card"),
            message: Arc::from("index out of bounds"),
        }
    }

    fn timed_out() -> WorkflowError {
        WorkflowError::TimedOut {
            step: step("charge card"),
            after: Duration::from_secs(2),
        }
    }

    /// Records one run of "Orders" and returns the verdict after it.
    fn run(health: &Health, outcome: Result<(), WorkflowError>) -> HealthStatus {
        let (outcome, error, fault) = match outcome {
            Ok(()) => (RunOutcome::Passed, None, false),
            Err(e) => (RunOutcome::Failed, Some(e.to_string()), e.is_fault()),
        };
        health.record(
            "Orders",
            SystemTime::now(),
            Duration::ZERO,
            outcome,
            error,
            fault,
        );
        health.report(&Breakers::new()).status
    }

    #[test]
    fn business_failures_in_a_row_degrade_but_never_make_a_workflow_unhealthy() {
        let health = Health::new(3);
        let verdicts: Vec<_> = (0..5).map(|_| run(&health, Err(declined()))).collect();
        assert_eq!(verdicts, [HealthStatus::Degraded; 5]);
        let report = health.report(&Breakers::new());
        let orders = &report.workflows[0];
        assert_eq!(
            (
                orders.failures,
                orders.consecutive_failures,
                orders.consecutive_faults
            ),
            (5, 5, 0)
        );
        assert_eq!(run(&health, Ok(())), HealthStatus::Healthy);
    }

    #[test]
    fn faults_in_a_row_make_a_workflow_unhealthy_until_a_run_does_not_fault() {
        let health = Health::new(3);
        assert_eq!(run(&health, Err(panicked())), HealthStatus::Degraded);
        assert_eq!(run(&health, Err(timed_out())), HealthStatus::Degraded);
        // The system did its job on this one: the streak starts again.
        assert_eq!(run(&health, Err(declined())), HealthStatus::Degraded);
        let verdicts: Vec<_> = [panicked(), timed_out(), panicked()]
            .into_iter()
            .map(|e| run(&health, Err(e)))
            .collect();
        use HealthStatus::*;
        assert_eq!(verdicts, [Degraded, Degraded, Unhealthy]);
        assert_eq!(
            health.report(&Breakers::new()).workflows[0].consecutive_faults,
            3
        );
        assert_eq!(run(&health, Ok(())), Healthy);
        assert_eq!(
            health.report(&Breakers::new()).workflows[0].consecutive_faults,
            0
        );
    }

    #[test]
    fn a_fault_is_a_panic_or_a_timeout_and_a_failed_compensation_is_judged_by_its_cause() {
        assert!(!declined().is_fault());
        assert!(!WorkflowError::Assertion { step: step("paid") }.is_fault());
        assert!(panicked().is_fault());
        assert!(timed_out().is_fault());
        let compensation = |cause: WorkflowError| WorkflowError::CompensationFailed {
            cause: Box::new(cause),
            failure: Box::new(panicked()),
        };
        assert!(!compensation(declined()).is_fault());
        assert!(compensation(timed_out()).is_fault());
    }
}
