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
    /// What a durable recurring workflow does with ticks missed while no
    /// instance ran.
    pub catch_up: CatchUp,
}

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

impl Schedule {
    /// Every `every`, first one interval after start.
    pub const fn every(every: Duration) -> Self {
        Schedule {
            every,
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
}
