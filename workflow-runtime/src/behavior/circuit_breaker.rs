//! Circuit breaker: stop calling a failing dependency for a while, then let
//! exactly one trial call through.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};
use crate::error::{StepError, StepFailure};

/// A breaker's state.
///
/// ```
/// use workflow_runtime::behavior::CircuitState;
/// assert_eq!(CircuitState::HalfOpen.to_string(), "half-open");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are rejected until the open period ends.
    Open,
    /// One trial call is let through; its outcome closes or reopens.
    HalfOpen,
}

impl CircuitState {
    /// The state as the `workflow_circuit_state` gauge reports it.
    ///
    /// ```
    /// use workflow_runtime::behavior::CircuitState;
    /// assert_eq!(CircuitState::Open.gauge(), 2.0);
    /// ```
    pub fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        })
    }
}

/// When a breaker trips and for how long.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::BreakerConfig;
/// let config = BreakerConfig::new(5, Duration::from_secs(60));
/// assert_eq!(config.failures, 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    #[cfg_attr(
        feature = "serde",
        serde(
            alias = "Failures",
            alias = "FailureThreshold",
            alias = "failureThreshold",
            alias = "failure_threshold"
        )
    )]
    pub failures: u32,
    /// How long it stays open before a trial call.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::durations::duration")
    )]
    #[cfg_attr(
        feature = "serde",
        serde(
            alias = "OpenFor",
            alias = "OpenDuration",
            alias = "openDuration",
            alias = "open_duration"
        )
    )]
    pub open_for: Duration,
}

impl BreakerConfig {
    /// Opens after `failures` consecutive failures, for `open_for`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::BreakerConfig;
    /// assert_eq!(BreakerConfig::new(0, Duration::from_secs(1)).failures, 1, "at least one");
    /// ```
    pub fn new(failures: u32, open_for: Duration) -> Self {
        BreakerConfig {
            failures: failures.max(1),
            open_for,
        }
    }
}

impl Default for BreakerConfig {
    /// 5 failures, 30 seconds.
    fn default() -> Self {
        BreakerConfig::new(5, Duration::from_secs(30))
    }
}

/// The error a step gets while its breaker is open.
///
/// ```
/// use workflow_runtime::behavior::CircuitOpen;
/// let err = CircuitOpen { breaker: "payments".into() };
/// assert_eq!(err.to_string(), r#"circuit "payments" is open"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    /// The breaker's name.
    pub breaker: Arc<str>,
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit {:?} is open", self.breaker)
    }
}

impl std::error::Error for CircuitOpen {}

/// One change of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
    /// When (wall clock, for reports).
    pub at: SystemTime,
}

/// A breaker's state for health reports.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: Arc<str>,
    /// Its state now.
    pub state: CircuitState,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// How many times it changed state.
    pub transitions: u64,
    /// The latest changes, oldest first (at most 32).
    pub recent: Vec<Transition>,
}

const HISTORY: usize = 32;

enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { trial_running: bool },
}

impl Phase {
    fn state(&self) -> CircuitState {
        match self {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

struct Inner {
    phase: Phase,
    consecutive_failures: u32,
    transitions: u64,
    recent: VecDeque<Transition>,
}

/// Trips after `failures` consecutive failures, rejects calls with
/// [`CircuitOpen`] for `open_for`, then lets exactly one trial call
/// through, however many callers race: success closes the circuit, failure
/// reopens it, and a cancelled trial lets the next caller try.
///
/// Shared by name through a [`Breakers`](super::Breakers) set: a runner's
/// gives every step that names `"payments"` the same breaker.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker, CircuitState};
///
/// let breaker = CircuitBreaker::new("payments", BreakerConfig::new(5, Duration::from_secs(60)));
/// assert_eq!(breaker.state(), CircuitState::Closed);
/// ```
pub struct CircuitBreaker {
    name: Arc<str>,
    config: BreakerConfig,
    inner: Mutex<Inner>,
    /// Closed with no failure counted, as of the last time the lock was
    /// released: then admitting a call and ending it well change nothing,
    /// and skip the lock every call on every worker would take.
    healthy: AtomicBool,
}

impl CircuitBreaker {
    /// A breaker; share it by name through a [`Breakers`](super::Breakers)
    /// set, or by its `Arc`.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker};
    /// let breaker = CircuitBreaker::new("mail", BreakerConfig::default());
    /// assert_eq!(breaker.name(), "mail");
    /// ```
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Arc<Self> {
        Arc::new(CircuitBreaker {
            name: name.into(),
            config,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                consecutive_failures: 0,
                transitions: 0,
                recent: VecDeque::new(),
            }),
            healthy: AtomicBool::new(true),
        })
    }

    /// The breaker's name: what its `CircuitOpen` error and health entry say.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker};
    /// use workflow_runtime::prelude::*;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bank = CircuitBreaker::new("bank", BreakerConfig::new(1, Duration::from_secs(60)));
    /// let ctx = WorkflowContext::new("Pay");
    /// for _ in 0..2 {
    ///     let err = Workflow::given(&ctx, "n", || 1u8)
    ///         .try_when("declined", |n| u8::try_from(300 + u32::from(n)))
    ///         .circuit_breaker(bank.clone())
    ///         .await
    ///         .unwrap_err();
    ///     println!("{err}");
    /// }
    /// // The second run never reached the step: the open breaker named itself.
    /// let last = ctx.steps().last().unwrap().outcome.to_string();
    /// assert!(last.contains(bank.name()), "{last}");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its configuration.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker};
    /// let breaker = CircuitBreaker::new("bank", BreakerConfig::default());
    /// assert_eq!(breaker.config(), BreakerConfig::default());
    /// ```
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    fn lock(&self) -> Locked<'_> {
        Locked {
            inner: self.inner.lock().unwrap_or_else(PoisonError::into_inner),
            healthy: &self.healthy,
        }
    }

    /// The state now. An open circuit whose time is up reports half-open:
    /// the next call is its trial.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker, CircuitState};
    /// assert_eq!(CircuitBreaker::new("b", BreakerConfig::default()).state(), CircuitState::Closed);
    /// ```
    pub fn state(&self) -> CircuitState {
        match self.lock().phase {
            Phase::Open { until } if Instant::now() >= until => CircuitState::HalfOpen,
            ref phase => phase.state(),
        }
    }

    /// State, counts and recent transitions.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker};
    /// let snapshot = CircuitBreaker::new("b", BreakerConfig::default()).snapshot();
    /// assert_eq!((snapshot.transitions, snapshot.consecutive_failures), (0, 0));
    /// ```
    pub fn snapshot(&self) -> BreakerSnapshot {
        let state = self.state();
        let inner = self.lock();
        BreakerSnapshot {
            name: self.name.clone(),
            state,
            consecutive_failures: inner.consecutive_failures,
            transitions: inner.transitions,
            recent: inner.recent.iter().copied().collect(),
        }
    }

    fn enter(&self, inner: &mut Inner, phase: Phase) {
        let from = inner.phase.state();
        let to = phase.state();
        inner.phase = phase;
        if from != to {
            inner.transitions += 1;
            if inner.recent.len() == HISTORY {
                inner.recent.pop_front();
            }
            inner.recent.push_back(Transition {
                from,
                to,
                at: SystemTime::now(),
            });
            metrics::gauge!("workflow_circuit_state", "breaker" => self.name.to_string())
                .set(to.gauge());
            tracing::info!(breaker = %self.name, %from, %to, "circuit breaker changed state");
        }
    }

    /// Asks to make a call: a permit, or the rejection.
    fn acquire(&self) -> Result<Permit<'_>, CircuitOpen> {
        let trial = self.admit()?;
        Ok(Permit {
            breaker: self,
            trial,
            done: false,
        })
    }

    /// Admits a call, or refuses it: whether it is the half-open
    /// circuit's trial. Each admitted call ends with
    /// [`finish`](Self::finish) or [`abandon`](Self::abandon).
    #[inline]
    pub(super) fn admit(&self) -> Result<bool, CircuitOpen> {
        // Closed: a call is let in, not as a trial, and nothing changes. A
        // failure counted meanwhile orders after this call's admission.
        if self.healthy.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.admit_locked()
    }

    fn admit_locked(&self) -> Result<bool, CircuitOpen> {
        let mut inner = self.lock();
        let trial = match inner.phase {
            Phase::Closed => false,
            Phase::Open { until } if Instant::now() >= until => {
                self.enter(
                    &mut inner,
                    Phase::HalfOpen {
                        trial_running: true,
                    },
                );
                true
            }
            Phase::HalfOpen {
                trial_running: false,
            } => {
                inner.phase = Phase::HalfOpen {
                    trial_running: true,
                };
                true
            }
            Phase::Open { .. } | Phase::HalfOpen { .. } => {
                return Err(CircuitOpen {
                    breaker: self.name.clone(),
                });
            }
        };
        Ok(trial)
    }

    /// Ends an admitted call.
    #[inline]
    pub(super) fn finish(&self, trial: bool, success: bool) {
        // Success on a closed circuit with no failures counted leaves it so.
        if success && !trial && self.healthy.load(Ordering::Acquire) {
            return;
        }
        self.finish_locked(trial, success);
    }

    fn finish_locked(&self, trial: bool, success: bool) {
        let mut inner = self.lock();
        if success {
            inner.consecutive_failures = 0;
            if trial {
                self.enter(&mut inner, Phase::Closed);
            }
            return;
        }
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        let trips = trial
            || (matches!(inner.phase, Phase::Closed)
                && inner.consecutive_failures >= self.config.failures);
        if trips {
            let open = Phase::Open {
                until: Instant::now() + self.config.open_for,
            };
            self.enter(&mut inner, open);
        }
    }

    /// Ends an admitted call that did not finish (cancelled, or dropped by
    /// a timeout outside it): it counts for nothing and frees a trial slot.
    pub(super) fn abandon(&self, trial: bool) {
        if trial {
            let mut inner = self.lock();
            if let Phase::HalfOpen { .. } = inner.phase {
                inner.phase = Phase::HalfOpen {
                    trial_running: false,
                };
            }
        }
    }
}

/// The breaker's state, locked; released, it says whether the circuit is
/// healthy (closed, no failure counted) for the calls that skip the lock.
struct Locked<'a> {
    inner: MutexGuard<'a, Inner>,
    healthy: &'a AtomicBool,
}

impl Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let healthy =
            matches!(self.inner.phase, Phase::Closed) && self.inner.consecutive_failures == 0;
        // Under the lock still, so the flag follows the state's changes in
        // their order; written only when it changes, as every call on every
        // worker reads it.
        if self.healthy.load(Ordering::Relaxed) != healthy {
            self.healthy.store(healthy, Ordering::Release);
        }
    }
}

/// One admitted call; dropped unfinished (cancelled), it counts for
/// nothing and frees a trial slot.
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
    done: bool,
}

impl Permit<'_> {
    fn finish(mut self, success: bool) {
        self.done = true;
        self.breaker.finish(self.trial, success);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.abandon(self.trial);
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("state", &self.state())
            .finish()
    }
}

impl Behavior for CircuitBreaker {
    fn around<'a>(&'a self, _step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            let permit = self
                .acquire()
                .map_err(|open| StepFailure::Error(StepError::new(open)))?;
            let result = next.run().await;
            permit.finish(result.is_ok());
            result
        })
    }
}
