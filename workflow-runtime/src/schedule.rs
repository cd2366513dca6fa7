//! When a recurring workflow runs: every interval, or at the times a cron
//! expression names (feature `cron`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When a recurring workflow runs, first right away when
/// `run_immediately`; a run never overlaps the previous run of the same
/// workflow, and ticks missed while a run outlasts its interval are
/// skipped, not queued.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::host::{Cadence, Schedule};
/// let schedule = Schedule::every(Duration::from_secs(30)).run_immediately(true);
/// assert!(schedule.run_immediately);
/// assert_eq!(schedule.cadence, Cadence::Every(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// How ticks are spaced.
    pub cadence: Cadence,
    /// Whether the first run is at start rather than at the first tick
    /// ahead.
    pub run_immediately: bool,
    /// What a durable recurring workflow does with ticks missed while no
    /// instance ran.
    pub catch_up: CatchUp,
}

/// How a schedule's ticks are spaced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cadence {
    /// Every interval. On a shared store the ticks sit on a grid of the
    /// interval from the Unix epoch, so every instance computes the same.
    Every(Duration),
    /// At the times a cron expression names, in its time zone.
    #[cfg(feature = "cron")]
    Cron(Cron),
}

/// A cron expression (seconds first: `sec min hour day-of-month month
/// day-of-week [year]`) checked when made, and the time zone it is read
/// in (an IANA name such as `"Europe/Paris"`, or UTC).
///
/// ```
/// use workflow_runtime::host::{Cadence, Schedule};
/// let schedule = Schedule::cron_in("0 0 9 * * Mon-Fri", "Europe/Paris").unwrap();
/// let Cadence::Cron(cron) = &schedule.cadence else { unreachable!() };
/// assert_eq!((cron.expression(), cron.zone()), ("0 0 9 * * Mon-Fri", Some("Europe/Paris")));
/// ```
#[cfg(feature = "cron")]
#[derive(Clone, Debug)]
pub struct Cron {
    expression: String,
    zone_name: Option<String>,
    parsed: Box<cron::Schedule>,
    zone: chrono_tz::Tz,
}

#[cfg(feature = "cron")]
impl Cron {
    /// The expression, as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's name; `None` for UTC.
    pub fn zone(&self) -> Option<&str> {
        self.zone_name.as_deref()
    }
}

/// Two cron schedules are equal when they are written the same.
#[cfg(feature = "cron")]
impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        (&self.expression, &self.zone_name) == (&other.expression, &other.zone_name)
    }
}

#[cfg(feature = "cron")]
impl Eq for Cron {}

/// Ticks of a durable recurring workflow missed while no instance ran (a
/// deploy, an outage).
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::host::{CatchUp, Schedule};
/// let schedule = Schedule::every(Duration::from_secs(60)).catch_up(CatchUp::Latest);
/// assert_eq!(schedule.catch_up, CatchUp::Latest);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatchUp {
    /// Skip them: the next run is at the next tick ahead (default).
    #[default]
    Skip,
    /// Run the latest of them once, then go on from there.
    Latest,
}

/// A schedule that cannot run: a cron expression that does not parse or
/// never fires, or a time zone that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression is not one.
    Cron {
        /// The expression.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The time zone is not an IANA name.
    Zone {
        /// The name given.
        zone: String,
    },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::Cron { expression, reason } => {
                write!(f, "cron expression \"{expression}\": {reason}")
            }
            ScheduleError::Zone { zone } => write!(
                f,
                "unknown time zone \"{zone}\": expected an IANA name such as \"Europe/Paris\""
            ),
        }
    }
}

impl std::error::Error for ScheduleError {}

impl Schedule {
    /// Every `every`, first one interval after start.
    pub const fn every(every: Duration) -> Self {
        Schedule {
            cadence: Cadence::Every(every),
            run_immediately: false,
            catch_up: CatchUp::Skip,
        }
    }

    /// At the times `expression` names, in UTC: six or seven fields,
    /// seconds first (`"0 */5 * * * *"` is every five minutes); an
    /// expression that does not parse, or matches no time, is an error
    /// saying why.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use workflow_runtime::host::Schedule;
    /// let five_minutes = Schedule::cron("0 */5 * * * *").unwrap();
    /// let noon = UNIX_EPOCH + Duration::from_secs(12 * 3600);
    /// assert_eq!(five_minutes.next_after(noon), Some(noon + Duration::from_secs(300)));
    /// assert!(Schedule::cron("0 */5 * * *").is_err()); // five fields
    /// ```
    #[cfg(feature = "cron")]
    pub fn cron(expression: &str) -> Result<Self, ScheduleError> {
        Ok(Schedule::on(Cron {
            expression: expression.to_owned(),
            zone_name: None,
            parsed: Box::new(parse_cron(expression)?),
            zone: chrono_tz::UTC,
        }))
    }

    /// At the times `expression` names in the time zone `zone` (an IANA
    /// name): `"0 0 9 * * Mon-Fri"` in `"Europe/Paris"` is nine o'clock
    /// there, summer and winter.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use workflow_runtime::host::Schedule;
    /// let nine = Schedule::cron_in("0 0 9 * * *", "Asia/Tokyo").unwrap();
    /// let midnight_utc = UNIX_EPOCH + Duration::from_secs(20_000 * 86_400);
    /// // Nine in Tokyo is midnight UTC.
    /// assert_eq!(nine.next_after(midnight_utc - Duration::from_secs(1)), Some(midnight_utc));
    /// assert!(Schedule::cron_in("0 0 9 * * *", "Mars/Olympus").is_err());
    /// ```
    #[cfg(feature = "cron")]
    pub fn cron_in(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        let parsed = parse_cron(expression)?;
        let zone_name = zone;
        let zone = zone_name.parse().map_err(|_| ScheduleError::Zone {
            zone: zone_name.to_owned(),
        })?;
        Ok(Schedule::on(Cron {
            expression: expression.to_owned(),
            zone_name: Some(zone_name.to_owned()),
            parsed: Box::new(parsed),
            zone,
        }))
    }

    #[cfg(feature = "cron")]
    fn on(cron: Cron) -> Self {
        Schedule {
            cadence: Cadence::Cron(cron),
            run_immediately: false,
            catch_up: CatchUp::Skip,
        }
    }

    /// Sets what to do with missed ticks (durable recurring workflows).
    pub const fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Sets whether the first run is at start.
    pub const fn run_immediately(mut self, yes: bool) -> Self {
        self.run_immediately = yes;
        self
    }

    /// The first tick strictly after `after`, or `None` when the schedule
    /// fires no more (a cron expression limited to past years, say). An
    /// interval's ticks sit on its grid from the Unix epoch, as on a
    /// shared store.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use workflow_runtime::host::Schedule;
    /// let minute = Schedule::every(Duration::from_secs(60));
    /// let at = UNIX_EPOCH + Duration::from_secs(90);
    /// assert_eq!(minute.next_after(at), Some(UNIX_EPOCH + Duration::from_secs(120)));
    /// ```
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let ms = match after.duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        let tick = self.ticks().after(ms)?;
        let magnitude = Duration::from_millis(tick.unsigned_abs());
        if tick >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        }
    }

    /// The interval, for a schedule that has one.
    pub(crate) fn interval(&self) -> Option<Duration> {
        match self.cadence {
            Cadence::Every(every) => Some(every),
            #[cfg(feature = "cron")]
            Cadence::Cron(_) => None,
        }
    }

    /// The ticks the schedule fires at.
    pub(crate) fn ticks(&self) -> Ticks {
        match &self.cadence {
            Cadence::Every(every) => {
                Ticks::Every(i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1))
            }
            #[cfg(feature = "cron")]
            Cadence::Cron(cron) => Ticks::Cron(cron.parsed.clone(), cron.zone),
        }
    }
}

/// Parses `expression`, refusing one that never fires, with a reason a
/// person can act on (the crate's own points at a column).
#[cfg(feature = "cron")]
fn parse_cron(expression: &str) -> Result<cron::Schedule, ScheduleError> {
    use std::str::FromStr;
    let error = |reason: String| ScheduleError::Cron {
        expression: expression.to_owned(),
        reason,
    };
    let fields = expression.split_whitespace().count();
    if !expression.trim_start().starts_with('@') && !(6..=7).contains(&fields) {
        return Err(error(format!(
            "{fields} fields; expected 6 or 7, seconds first: \
             sec min hour day-of-month month day-of-week [year] \
             (\"0 */5 * * * *\" is every five minutes)"
        )));
    }
    let cron = cron::Schedule::from_str(expression).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty() && !line.starts_with('^') && *line != expression.trim())
            .unwrap_or("it does not parse")
            .to_owned();
        error(reason)
    })?;
    // Only an expression that matches no time at all is refused: one
    // whose years have passed is ended, which a running host handles, not
    // a mistake that should stop a deployed service from starting.
    if cron.after(&chrono::DateTime::UNIX_EPOCH).next().is_none() {
        return Err(error("it matches no time".to_owned()));
    }
    Ok(cron)
}

/// Milliseconds since the Unix epoch: how ticks and rows tell time.
#[cfg(any(feature = "durable", all(test, feature = "cron")))]
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A schedule's ticks, in milliseconds since the Unix epoch.
#[derive(Clone, Debug)]
pub(crate) enum Ticks {
    /// Every this many milliseconds, from the epoch.
    Every(i64),
    #[cfg(feature = "cron")]
    Cron(Box<cron::Schedule>, chrono_tz::Tz),
}

impl Ticks {
    /// The first tick strictly after `ms`.
    pub(crate) fn after(&self, ms: i64) -> Option<i64> {
        match self {
            Ticks::Every(every) => (ms - ms.rem_euclid(*every)).checked_add(*every),
            // The crate walks local times and maps one that occurs twice
            // (the hour repeated when clocks go back) to its first
            // instant: each local time fires once, and from inside the
            // repeated hour the next tick is the first one after `ms`.
            #[cfg(feature = "cron")]
            Ticks::Cron(cron, zone) => cron
                .after(&at(ms, zone)?)
                .map(|t| t.timestamp_millis())
                .find(|&tick| tick > ms),
        }
    }

    /// The last tick at or before `ms`.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(crate) fn at_or_before(&self, ms: i64) -> Option<i64> {
        match self {
            Ticks::Every(every) => Some(ms - ms.rem_euclid(*every)),
            // Walking back, the crate maps a local time that occurs twice
            // to its later instant: take the earlier one when that is
            // after `ms`.
            #[cfg(feature = "cron")]
            Ticks::Cron(cron, zone) => {
                cron.after(&at(ms.checked_add(1)?, zone)?)
                    .rev()
                    .find_map(|t| {
                        use chrono::TimeZone;
                        let earlier = zone.from_local_datetime(&t.naive_local()).earliest()?;
                        [t.timestamp_millis(), earlier.timestamp_millis()]
                            .into_iter()
                            .find(|&tick| tick <= ms)
                    })
            }
        }
    }

    /// Which tick to fire now that tick `due` has come (`now` ≥ `due`),
    /// and the one after it: `due` itself unless a later tick has come
    /// too (ticks were missed while no instance ran), when `catch_up`
    /// fires the latest of them or none.
    #[cfg_attr(not(feature = "durable"), allow(dead_code))]
    pub(crate) fn plan(&self, due: i64, now: i64, catch_up: CatchUp) -> (Option<i64>, Option<i64>) {
        match self.after(due) {
            Some(after) if after <= now => {
                let latest = self.at_or_before(now).unwrap_or(due).max(due);
                match catch_up {
                    CatchUp::Latest => (Some(latest), self.after(latest)),
                    CatchUp::Skip => (None, self.after(now)),
                }
            }
            after => (Some(due), after),
        }
    }
}

#[cfg(feature = "cron")]
fn at(ms: i64, zone: &chrono_tz::Tz) -> Option<chrono::DateTime<chrono_tz::Tz>> {
    use chrono::TimeZone;
    Some(
        chrono::Utc
            .timestamp_millis_opt(ms)
            .single()?
            .with_timezone(zone),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_ticks_on_its_grid() {
        let ticks = Schedule::every(Duration::from_millis(250)).ticks();
        assert_eq!(ticks.after(1_000), Some(1_250));
        assert_eq!(ticks.after(1_001), Some(1_250));
        assert_eq!(ticks.at_or_before(1_000), Some(1_000));
        assert_eq!(ticks.at_or_before(1_249), Some(1_000));
    }

    #[cfg(feature = "cron")]
    #[test]
    fn a_cron_expression_ticks_at_its_times_in_its_zone() {
        let ticks = Schedule::cron("*/5 * * * * *").unwrap().ticks();
        assert_eq!(ticks.after(1_000_000_000_000), Some(1_000_000_005_000));
        assert_eq!(ticks.after(1_000_000_004_999), Some(1_000_000_005_000));
        assert_eq!(
            ticks.at_or_before(1_000_000_005_000),
            Some(1_000_000_005_000)
        );
        assert_eq!(
            ticks.at_or_before(1_000_000_004_999),
            Some(1_000_000_000_000)
        );

        // Nine in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
        let nine = Schedule::cron_in("0 0 9 * * *", "Europe/Paris")
            .unwrap()
            .ticks();
        let day = 86_400_000;
        let jan_1_2026 = 20_454 * day;
        let jul_1_2026 = 20_635 * day;
        assert_eq!(nine.after(jan_1_2026), Some(jan_1_2026 + 8 * 3_600_000));
        assert_eq!(nine.after(jul_1_2026), Some(jul_1_2026 + 7 * 3_600_000));
    }

    #[test]
    fn missed_ticks_are_skipped_or_the_latest_fired() {
        let ticks = Schedule::every(Duration::from_millis(100)).ticks();
        // On time: the due tick, then the next.
        assert_eq!(
            ticks.plan(1_000, 1_050, CatchUp::Skip),
            (Some(1_000), Some(1_100))
        );
        // Three ticks late: skip them all, or fire the latest.
        assert_eq!(ticks.plan(1_000, 1_350, CatchUp::Skip), (None, Some(1_400)));
        assert_eq!(
            ticks.plan(1_000, 1_350, CatchUp::Latest),
            (Some(1_300), Some(1_400))
        );
    }

    #[cfg(feature = "cron")]
    #[test]
    fn a_cron_schedule_fires_each_local_time_once_across_clock_changes() {
        let five = Schedule::cron_in("0 */5 * * * *", "Europe/Paris")
            .unwrap()
            .ticks();
        let (minute, hour) = (60_000, 3_600_000);
        // 25 October 2026 (at 01:00 UTC Paris goes from 03:00 CEST back to
        // 02:00 CET: 02:00-02:59 local happens twice) and 29 March 2026
        // (at 01:00 UTC it skips from 02:00 to 03:00). Minute by minute
        // around each change, the next tick is after now and the last one
        // at or before it, never more than an hour away: a host never
        // fires a tick from the past, nor goes quiet for the day.
        for change in [20_751 * 86_400_000 + hour, 20_541 * 86_400_000 + hour] {
            for now in (change - 2 * hour..change + 2 * hour).step_by(minute as usize) {
                let next = five.after(now).unwrap();
                assert!(
                    next > now && next - now <= hour + 5 * minute,
                    "{now} -> {next}"
                );
                let last = five.at_or_before(now).unwrap();
                assert!(
                    last <= now && now - last <= hour + 5 * minute,
                    "{now} <- {last}"
                );
                let (fire, following) = five.plan(last, now, CatchUp::Latest);
                assert!(fire.is_some_and(|f| f <= now), "{now}: fires {fire:?}");
                assert!(
                    following.is_some_and(|f| f > now),
                    "{now}: then {following:?}"
                );
            }
        }
    }

    #[cfg(feature = "cron")]
    #[test]
    fn an_ended_cron_schedule_is_not_a_mistake() {
        let ended = Schedule::cron("0 0 0 1 1 * 2020").unwrap().ticks();
        assert_eq!(ended.after(super::now_ms()), None);
        assert_eq!(ended.at_or_before(super::now_ms()), Some(1_577_836_800_000));
    }

    #[cfg(feature = "cron")]
    #[test]
    fn a_bad_cron_schedule_says_what_is_wrong() {
        let error = |s: Result<Schedule, ScheduleError>| s.err().unwrap().to_string();
        assert_eq!(
            error(Schedule::cron("0 */5 * * *")),
            "cron expression \"0 */5 * * *\": 5 fields; expected 6 or 7, seconds first: \
             sec min hour day-of-month month day-of-week [year] \
             (\"0 */5 * * * *\" is every five minutes)"
        );
        assert_eq!(
            error(Schedule::cron("61 * * * * *")),
            "cron expression \"61 * * * * *\": Seconds must be less than 59. ('61' specified.)"
        );
        assert_eq!(
            error(Schedule::cron("0 0 0 31 2 *")),
            "cron expression \"0 0 0 31 2 *\": it matches no time"
        );
        assert_eq!(
            error(Schedule::cron_in("0 * * * * *", "Europe/Pariss")),
            "unknown time zone \"Europe/Pariss\": expected an IANA name such as \"Europe/Paris\""
        );
    }
}
