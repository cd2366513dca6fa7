//! Retry: run the step again after a failure, with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use metrics::SharedString;

use super::{Attempted, Behavior, BoxFuture, Next, StepScope};
use crate::context::{JournalFault, WorkflowContext};
use crate::error::StepFailure;
use crate::mix::splitmix64;

type Filter = Arc<dyn Fn(&StepFailure) -> bool + Send + Sync>;

/// Runs a failed step again, up to `max_attempts` attempts in all, waiting
/// `base × factorⁿ` (capped at `max_delay`) between them; with jitter, each
/// wait is drawn from `[delay / 2, delay]`.
///
/// Retries every failure but a false assertion, unless a
/// [`filter`](Self::filter) says otherwise.
///
/// One rule decides whether a step can run again: it must be declared
/// with `retry` itself (`#[step(retry(..))]` or the chain's `.retry(..)`)
/// or made `.replayable()`, which the compiler accepts only when its input
/// is `Clone` and its body callable more than once. A `Retry` added for the
/// whole context or for an output type also reaches steps declared without
/// it; those run once, and their failure stands, with a warning in the log.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::Retry;
///
/// let retry = Retry::max_attempts(4).backoff(Duration::from_millis(100)).max_delay(Duration::from_millis(250));
/// assert_eq!(retry.delay(1), Duration::from_millis(100));
/// assert_eq!(retry.delay(2), Duration::from_millis(200));
/// assert_eq!(retry.delay(3), Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct Retry {
    max_attempts: u32,
    base: Duration,
    factor: f64,
    /// `None`: 30s, or the backoff itself when that is longer.
    max_delay: Option<Duration>,
    jitter: bool,
    filter: Option<Filter>,
}

impl std::fmt::Debug for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("base", &self.base)
            .field("factor", &self.factor)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

impl Retry {
    /// At most `max_attempts` attempts in all, the first included (the
    /// .NET guide's `maxRetries: 3` is [`retries(3)`](Self::retries), four
    /// attempts); backoff 100ms, factor 2, capped at 30s, no jitter.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use workflow_runtime::behavior::Retry;
    /// use workflow_runtime::prelude::*;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let calls = AtomicU32::new(0);
    /// let ctx = WorkflowContext::new("Flaky");
    /// let err = Workflow::given(&ctx, "n", || 1u8)
    ///     .try_when("always fails", |n| {
    ///         calls.fetch_add(1, Ordering::SeqCst);
    ///         u8::try_from(300 + u32::from(n))
    ///     })
    ///     .retry(Retry::max_attempts(3))
    ///     .await;
    /// assert!(err.is_err());
    /// assert_eq!(calls.load(Ordering::SeqCst), 3, "three attempts in all");
    /// assert_eq!(ctx.steps()[1].attempts, 3);
    /// # }
    /// ```
    #[inline]
    pub fn max_attempts(max_attempts: u32) -> Self {
        Retry {
            max_attempts: max_attempts.max(1),
            base: Duration::from_millis(100),
            factor: 2.0,
            max_delay: None,
            jitter: false,
            filter: None,
        }
    }

    /// `retries` retries after the first attempt: `retries + 1` attempts
    /// in all, as the guide's `maxRetries` counts them.
    ///
    /// ```
    /// use workflow_runtime::behavior::Retry;
    /// assert_eq!(Retry::retries(3).attempt_limit(), 4);
    /// ```
    #[inline]
    pub fn retries(retries: u32) -> Self {
        Retry::max_attempts(retries.saturating_add(1))
    }

    /// The wait before the first retry. Unless [`max_delay`](Self::max_delay)
    /// sets the cap on waits, it is 30s or the backoff itself, whichever is
    /// longer: a 10-minute backoff waits 10 minutes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::behavior::Retry;
    /// assert_eq!(Retry::max_attempts(2).backoff(Duration::from_secs(1)).delay(1), Duration::from_secs(1));
    /// let long = Retry::max_attempts(3).backoff(Duration::from_secs(600));
    /// assert_eq!(long.delay(2), Duration::from_secs(600));
    /// ```
    #[inline]
    pub fn backoff(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// How much each wait grows over the one before.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::behavior::Retry;
    /// let retry = Retry::max_attempts(3).backoff(Duration::from_secs(1)).factor(3.0);
    /// assert_eq!(retry.delay(2), Duration::from_secs(3));
    /// ```
    #[inline]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor.max(1.0);
        self
    }

    /// The longest wait.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::behavior::Retry;
    /// let retry = Retry::max_attempts(9).max_delay(Duration::from_millis(150));
    /// assert_eq!(retry.delay(8), Duration::from_millis(150));
    /// ```
    #[inline]
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = Some(max_delay);
        self
    }

    /// Draws each wait from `[delay / 2, delay]`, so many callers failing
    /// together do not retry together.
    ///
    /// ```
    /// # use workflow_runtime::behavior::Retry;
    /// let retry = Retry::max_attempts(3).jitter(true);
    /// # drop(retry);
    /// ```
    #[inline]
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Retries only the failures `filter` accepts.
    ///
    /// ```
    /// use workflow_runtime::StepFailure;
    /// use workflow_runtime::behavior::Retry;
    /// let only_timeouts = Retry::max_attempts(3).filter(|f| matches!(f, StepFailure::TimedOut(_)));
    /// # drop(only_timeouts);
    /// ```
    pub fn filter(mut self, filter: impl Fn(&StepFailure) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// The most attempts, the first included.
    ///
    /// ```
    /// use workflow_runtime::behavior::Retry;
    /// assert_eq!(Retry::max_attempts(0).attempt_limit(), 1, "at least one");
    /// ```
    pub fn attempt_limit(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before retry number `retry` (1 for the first), before
    /// jitter.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::behavior::Retry;
    /// assert_eq!(Retry::max_attempts(3).delay(2), Duration::from_millis(200));
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(64) as i32;
        let grown = self.base.as_secs_f64() * self.factor.powi(exponent);
        let cap = self
            .max_delay
            .unwrap_or_else(|| self.base.max(Duration::from_secs(30)));
        if grown >= cap.as_secs_f64() {
            cap
        } else {
            Duration::from_secs_f64(grown)
        }
    }

    /// The wait actually taken: [`delay`](Self::delay), with jitter drawn
    /// from `seed` when it is on.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use workflow_runtime::behavior::Retry;
    /// let retry = Retry::max_attempts(3).jitter(true);
    /// let wait = retry.jittered_delay(1, 42);
    /// assert!(wait >= Duration::from_millis(50) && wait <= Duration::from_millis(100));
    /// assert_eq!(wait, retry.jittered_delay(1, 42), "the same seed, the same wait");
    /// ```
    pub fn jittered_delay(&self, retry: u32, seed: u64) -> Duration {
        let delay = self.delay(retry);
        if !self.jitter {
            return delay;
        }
        // Uniform in [0.5, 1.0]: the top 53 bits of a mixed seed.
        let unit = (splitmix64(seed ^ u64::from(retry)) >> 11) as f64 / (1u64 << 53) as f64;
        delay.mul_f64(0.5 + unit / 2.0)
    }

    fn retries_on(&self, failure: &StepFailure, ctx: &WorkflowContext) -> bool {
        // A durable run whose lease another instance took is theirs now:
        // no attempt of this instance's may run again.
        if let (StepFailure::Error(error), Some(journal)) = (failure, ctx.run_journal())
            && journal.fault(error) == Some(JournalFault::LeaseLost)
        {
            return false;
        }
        match &self.filter {
            Some(filter) => filter(failure),
            None => !matches!(failure, StepFailure::Assertion),
        }
    }
}

/// Jitter differs per run and per step, and repeats for the same ones.
/// The jitter's seed: the run and the step, so a resumed durable run
/// (a new execution, the same run id, maybe a newer build) waits the same
/// jittered backoff. FNV-1a, spelled out: std's `DefaultHasher` may change
/// between Rust releases, and a journaled run outlives a build.
fn seed(ctx: &WorkflowContext, title: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let run = match ctx.run_journal() {
        Some(journal) => journal.run_id().to_owned(),
        None => ctx.execution_id().to_string(),
    };
    // A separator no UTF-8 text holds, so ("ab", "c") and ("a", "bc")
    // differ.
    run.bytes()
        .chain([0xff])
        .chain(title.bytes())
        .fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

/// The step a retry runs in, as the stack or the inline runner sees it.
pub(super) struct Site<'a> {
    pub(super) ctx: &'a WorkflowContext,
    pub(super) title: &'a str,
    /// A call inside a step's body ([`Around`](crate::chain::Around)), whose
    /// advice on running again differs from a step's.
    pub(super) call: bool,
}

impl Retry {
    /// After attempt `attempt` failed with `failure`: the wait before the
    /// next attempt, or `None` when the failure stands (no attempt left,
    /// a failure it does not retry, or a body that runs once, which it
    /// warns about).
    pub(super) fn again(
        &self,
        attempt: u32,
        failure: &StepFailure,
        can_replay: bool,
        site: &Site<'_>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts || !self.retries_on(failure, site.ctx) {
            return None;
        }
        if !can_replay {
            if site.call {
                tracing::warn!(
                    workflow.name = site.ctx.name(),
                    step.title = site.title,
                    "retry skipped: a future runs once; `run_again` (`call_again`) takes a closure that starts the call for each attempt"
                );
            } else {
                tracing::warn!(
                    workflow.name = site.ctx.name(),
                    step.title = site.title,
                    "retry skipped: the step runs once, as nothing copies its input for another attempt; make its input `Clone` (in a `#[workflow]`), give the step a `retry` of its own, or make it `.replayable()`"
                );
            }
            return None;
        }
        let workflow = site.ctx.name_label();
        let title = SharedString::from_owned(site.title.to_owned());
        metrics::counter!("workflow_retries_total", "workflow" => workflow, "step" => title)
            .increment(1);
        Some(self.jittered_delay(attempt, seed(site.ctx, site.title)))
    }
}

impl Behavior for Retry {
    fn runs_again(&self) -> bool {
        self.max_attempts > 1
    }

    fn around<'a>(&'a self, step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            let site = Site {
                ctx: step.ctx(),
                title: step.title(),
                call: step.is_call(),
            };
            let mut attempt = 1;
            // A resumed durable run goes on from its journaled attempts:
            // their count, and the backoff after the last one, measured
            // from when it failed (not from now).
            if let Some(earlier) = step.resumed() {
                if earlier.attempts >= self.max_attempts {
                    return Err(earlier.failure());
                }
                let due = earlier.last_failed
                    + self.jittered_delay(earlier.attempts, seed(site.ctx, site.title));
                let wait = due
                    .duration_since(step.ctx().clock().now())
                    .unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait).await;
                attempt = earlier.attempts + 1;
            }
            loop {
                let failure = match next.run().await {
                    Ok(()) => return Ok(()),
                    Err(failure) => failure,
                };
                match self.again(attempt, &failure, next.can_replay(), &site) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(failure),
                }
                attempt += 1;
            }
        })
    }
}
