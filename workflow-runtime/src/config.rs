//! Settings from a configuration file (feature `serde`): `WorkflowOptions`,
//! `HostOptions`, `BreakerConfig` and [`RetrySettings`] deserialize from
//! any serde format, durations written as text (`"30s"`, `"100ms"`), the
//! way the .NET guide binds them from `appsettings.json`. A key a struct
//! does not know is an error naming it; a key left out keeps its default.
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
//! ```

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::behavior::Retry;

const UNITS: [(&str, f64); 7] = [
    ("ns", 1e-9),
    ("us", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86_400.0),
];

/// A duration as people write it in a configuration file: a number and a
/// unit, `ns`, `us`, `ms`, `s`, `m`, `h` or `d` (`"30s"`, `"1.5m"`).
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::config::parse_duration;
/// assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("30 sec").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale = UNITS
        .iter()
        .find(|(u, _)| *u == unit.trim())
        .map(|(_, s)| *s);
    let error = || DurationError(text.to_owned());
    let (Ok(number), Some(scale)) = (number.parse::<f64>(), scale) else {
        return Err(error());
    };
    Duration::try_from_secs_f64(number * scale).map_err(|_| error())
}

/// Text that is not a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a duration: write a number and a unit (ns, us, ms, s, m, h, d), \
             such as \"30s\"",
            self.0
        )
    }
}

impl std::error::Error for DurationError {}

/// A `Duration` written as text, for `#[serde(deserialize_with =
/// "workflow_runtime::config::duration")]` in an application's own
/// settings.
///
/// ```
/// use std::time::Duration;
/// #[derive(serde::Deserialize)]
/// struct Poll {
///     #[serde(deserialize_with = "workflow_runtime::config::duration")]
///     every: Duration,
/// }
/// let poll: Poll = serde_json::from_str(r#"{ "every": "250ms" }"#).unwrap();
/// assert_eq!(poll.every, Duration::from_millis(250));
/// ```
pub fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// A `Duration` written as text that must be more than zero (an interval,
/// a time limit).
///
/// ```
/// #[derive(serde::Deserialize, Debug)]
/// struct Poll {
///     #[serde(deserialize_with = "workflow_runtime::config::positive_duration")]
///     every: std::time::Duration,
/// }
/// let err = serde_json::from_str::<Poll>(r#"{ "every": "0s" }"#).unwrap_err();
/// assert!(err.to_string().contains("more than zero"), "{err}");
/// ```
pub fn positive_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let duration = duration(d)?;
    if duration.is_zero() {
        return Err(serde::de::Error::custom(
            "the duration must be more than zero",
        ));
    }
    Ok(duration)
}

/// An optional time limit written as text: more than zero when given.
pub(crate) fn optional_limit<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    match optional_duration(d)? {
        Some(limit) if limit.is_zero() => Err(serde::de::Error::custom(
            "the time limit must be more than zero",
        )),
        limit => Ok(limit),
    }
}

/// The same for an optional `Duration` (with `#[serde(default)]`, a
/// missing key is `None`).
pub fn optional_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| parse_duration(&text).map_err(serde::de::Error::custom))
        .transpose()
}

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
    max_attempts: Option<u32>,
    retries: Option<u32>,
    #[serde(default, deserialize_with = "optional_duration")]
    backoff: Option<Duration>,
    factor: Option<f64>,
    #[serde(default, deserialize_with = "optional_duration")]
    max_delay: Option<Duration>,
    #[serde(default)]
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
