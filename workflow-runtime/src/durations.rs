//! Durations written as text (`"30s"`, `"100ms"`), as configuration files
//! hold them: parsing, and the serde helpers the settings use. Public
//! through [`config`](crate::config).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

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
/// unit, `ns`, `us`, `ms`, `s`, `m`, `h` or `d` (`"30s"`, `"1.5m"`), or as
/// .NET writes a `TimeSpan` (`[d.]hh:mm[:ss[.fffffff]]`: `"00:00:30"`,
/// `"1.02:03:04.5"`), as the guide's `appsettings.json` holds them.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::config::parse_duration;
/// assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("00:00:30"), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_duration("1.02:03:04.5"), Ok(Duration::from_millis(93_784_500)));
/// assert!(parse_duration("30 sec").is_err());
/// assert!(parse_duration("00:61:00").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.contains(':') {
        return time_span(trimmed).ok_or_else(|| DurationError(text.to_owned()));
    }
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

/// A .NET `TimeSpan`'s text, `[d.]hh:mm[:ss[.fffffff]]`, with hours below
/// 24, minutes and seconds below 60 (as .NET requires); never negative.
fn time_span(text: &str) -> Option<Duration> {
    let mut parts = text.split(':');
    let (days_hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next());
    if parts.next().is_some() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (days, hours) = match days_hours.split_once('.') {
        Some((d, h)) => (d, h),
        None => ("0", days_hours),
    };
    if ![days, hours, minutes].iter().all(|s| digits(s)) {
        return None;
    }
    let (days, hours, minutes): (u64, u64, u64) = (
        days.parse().ok()?,
        hours.parse().ok()?,
        minutes.parse().ok()?,
    );
    let (whole, fraction) = match seconds {
        Some(seconds) => match seconds.split_once('.') {
            Some((s, f)) if digits(s) && digits(f) && f.len() <= 7 => (s, f),
            None if digits(seconds) => (seconds, ""),
            _ => return None,
        },
        None => ("0", ""),
    };
    let secs: u64 = whole.parse().ok()?;
    if hours >= 24 || minutes >= 60 || secs >= 60 {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse::<u32>().ok()?
    };
    let total = days
        .checked_mul(86_400)?
        .checked_add(hours * 3600 + minutes * 60 + secs)?;
    Some(Duration::new(total, nanos))
}

/// Text that is not a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a duration: write a number and a unit (ns, us, ms, s, m, h, d), \
             such as \"30s\", or a TimeSpan such as \"00:00:30\"",
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
