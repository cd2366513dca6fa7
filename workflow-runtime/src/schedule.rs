//! When a recurring workflow runs.

use std::time::Duration;

/// Every `every`, first right away when `run_immediately`; a run never
/// overlaps the previous run of the same workflow, and ticks missed while a
/// run outlasts its interval are skipped, not queued.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::host::Schedule;
/// let schedule = Schedule::every(Duration::from_secs(30)).run_immediately(true);
/// assert!(schedule.run_immediately);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The interval.
    pub every: Duration,
    /// Whether the first run is at start rather than one interval in.
    pub run_immediately: bool,
}

impl Schedule {
    /// Every `every`, first one interval after start.
    pub const fn every(every: Duration) -> Self {
        Schedule {
            every,
            run_immediately: false,
        }
    }

    /// Sets whether the first run is at start.
    pub const fn run_immediately(mut self, yes: bool) -> Self {
        self.run_immediately = yes;
        self
    }
}
