//! Health: each workflow's last run, last failure and failures in a row,
//! the circuit breakers' states, and one verdict.

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
/// - `Unhealthy`: a workflow failed `unhealthy_after` runs in a row
///   (default 3), or a circuit breaker is open;
/// - `Degraded`: a workflow's last run failed, or a breaker is half-open;
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
        // Looked up by `&str` first: a workflow's name is copied only the
        // first time it runs, not at every run.
        if !all.contains_key(name) {
            all.insert(
                name.to_owned(),
                WorkflowHealth {
                    name: name.to_owned(),
                    last_run: None,
                    last_failure: None,
                    consecutive_failures: 0,
                    runs: 0,
                    failures: 0,
                },
            );
        }
        let Some(entry) = all.get_mut(name) else {
            unreachable!("inserted above");
        };
        entry.runs += 1;
        match outcome {
            RunOutcome::Passed => entry.consecutive_failures = 0,
            RunOutcome::Failed => {
                entry.failures += 1;
                entry.consecutive_failures += 1;
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
        let workflow_status = workflows.iter().map(|w| match w.consecutive_failures {
            0 => HealthStatus::Healthy,
            n if n >= self.unhealthy_after => HealthStatus::Unhealthy,
            _ => HealthStatus::Degraded,
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
