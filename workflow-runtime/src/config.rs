//! Settings from a configuration file (feature `serde`): `WorkflowOptions`,
//! `HostOptions`, `BreakerConfig` and [`RetrySettings`] deserialize from
//! any serde format, the way the .NET guide binds them from
//! `appsettings.json`: keys in snake_case or as the guide writes them
//! (`StepTimeout`, `MaxRetries`, `FailureThreshold`, `OpenDuration`,
//! `EnableParallelExecution`, camelCase too), durations as text (`"30s"`,
//! `"100ms"`) or as a .NET `TimeSpan` (`"00:00:30"`, `"1.00:00:00"`). A
//! key a struct does not know is an error naming it; a key left out keeps
//! its default. Layer sources (a file, then environment variables) with a
//! crate such as `figment`, whose errors name the key a bad value sits at:
//! the worker example does.
//!
//! ```
//! use serde::Deserialize;
//! use workflow_runtime::WorkflowOptions;
//! use workflow_runtime::behavior::BreakerConfig;
//! use workflow_runtime::config::RetrySettings;
//!
//! #[derive(Deserialize)]
//! struct Service {
//!     workflow: WorkflowOptions,
//!     payments: RetrySettings,
//!     bank: BreakerConfig,
//! }
//!
//! let service: Service = serde_json::from_str(r#"{
//!     "workflow": { "step_timeout": "30s" },
//!     "payments": { "retries": 3, "backoff": "200ms" },
//!     "bank": { "failures": 5, "open_for": "1m" }
//! }"#).unwrap();
//! assert_eq!(service.workflow.step_timeout, Some(std::time::Duration::from_secs(30)));
//! assert_eq!(service.payments.retry().attempt_limit(), 4);
//! assert_eq!(service.bank.open_for, std::time::Duration::from_secs(60));
//!
//! // As the guide's appsettings.json writes them.
//! let guide: Service = serde_json::from_str(r#"{
//!     "workflow": { "StepTimeout": "00:00:30", "ContinueOnError": false },
//!     "payments": { "MaxRetries": 3 },
//!     "bank": { "FailureThreshold": 5, "OpenDuration": "00:01:00" }
//! }"#).unwrap();
//! assert_eq!(guide.workflow.step_timeout, Some(std::time::Duration::from_secs(30)));
//! assert_eq!(guide.payments.retry().attempt_limit(), 4);
//! assert_eq!(guide.bank.failures, 5);
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::behavior::Retry;

pub use crate::durations::{
    DurationError, duration, optional_duration, parse_duration, positive_duration,
};

/// Retry settings from a configuration file: exactly one of
/// `max_attempts` (attempts in all) or `retries` (after the first, as the
/// guide's `maxRetries`), and optionally `backoff`, `factor`, `max_delay`
/// and `jitter`. [`retry`](Self::retry) makes the behavior.
///
/// ```
/// use workflow_runtime::config::RetrySettings;
/// let err = serde_json::from_str::<RetrySettings>(r#"{ "max": 3 }"#).unwrap_err();
/// assert!(err.to_string().contains("unknown field `max`"), "{err}");
/// let err = serde_json::from_str::<RetrySettings>(r#"{ "backoff": "1s" }"#).unwrap_err();
/// assert!(err.to_string().contains("give `max_attempts`"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawRetry")]
pub struct RetrySettings {
    attempts: u32,
    backoff: Option<Duration>,
    factor: Option<f64>,
    max_delay: Option<Duration>,
    jitter: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    #[serde(alias = "MaxAttempts", alias = "maxAttempts")]
    max_attempts: Option<u32>,
    #[serde(
        alias = "Retries",
        alias = "MaxRetries",
        alias = "maxRetries",
        alias = "max_retries"
    )]
    retries: Option<u32>,
    #[serde(
        default,
        deserialize_with = "optional_duration",
        alias = "Backoff",
        alias = "Delay",
        alias = "delay"
    )]
    backoff: Option<Duration>,
    #[serde(
        alias = "Factor",
        alias = "BackoffMultiplier",
        alias = "backoffMultiplier"
    )]
    factor: Option<f64>,
    #[serde(
        default,
        deserialize_with = "optional_duration",
        alias = "MaxDelay",
        alias = "maxDelay"
    )]
    max_delay: Option<Duration>,
    #[serde(default, alias = "Jitter")]
    jitter: bool,
}

impl TryFrom<RawRetry> for RetrySettings {
    type Error = String;

    fn try_from(raw: RawRetry) -> Result<Self, String> {
        let attempts = match (raw.max_attempts, raw.retries) {
            (Some(n), None) if n > 0 => n,
            (None, Some(n)) if n > 0 => n.saturating_add(1),
            (Some(_), None) => return Err("`max_attempts` must be at least 1".into()),
            (None, Some(_)) => {
                return Err("`retries` must be at least 1; leave the retry out to run once".into());
            }
            (Some(_), Some(_)) => {
                return Err(
                    "give `max_attempts` or `retries`, not both: they count the same \
                            attempts"
                        .into(),
                );
            }
            (None, None) => {
                return Err(
                    "give `max_attempts` (attempts in all) or `retries` (after the \
                            first attempt)"
                        .into(),
                );
            }
        };
        if let Some(factor) = raw.factor.filter(|f| !(f.is_finite() && *f >= 1.0)) {
            return Err(format!("`factor` must be at least 1, not {factor}"));
        }
        Ok(RetrySettings {
            attempts,
            backoff: raw.backoff,
            factor: raw.factor,
            max_delay: raw.max_delay,
            jitter: raw.jitter,
        })
    }
}

impl RetrySettings {
    /// The retry these settings describe.
    ///
    /// ```
    /// use workflow_runtime::config::RetrySettings;
    /// let settings: RetrySettings = serde_json::from_str(r#"{ "max_attempts": 2 }"#).unwrap();
    /// assert_eq!(settings.retry().attempt_limit(), 2);
    /// ```
    pub fn retry(&self) -> Retry {
        let mut retry = Retry::max_attempts(self.attempts).jitter(self.jitter);
        if let Some(backoff) = self.backoff {
            retry = retry.backoff(backoff);
        }
        if let Some(factor) = self.factor {
            retry = retry.factor(factor);
        }
        if let Some(max_delay) = self.max_delay {
            retry = retry.max_delay(max_delay);
        }
        retry
    }
}
