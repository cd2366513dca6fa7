//! Retention: which finished runs a store removes, so the journal does not
//! grow forever. Unfinished and parked runs are never removed, nor the
//! ended children of runs still going.

use super::store::{RunRow, RunStatus};

/// The statuses a purge removes: runs that ended. Running runs are owed
/// work and parked ones wait for a person.
pub(crate) const PURGEABLE: [RunStatus; 4] = [
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::CompensationFailed,
    RunStatus::Cancelled,
];

pub(crate) fn purgeable(status: RunStatus) -> bool {
    PURGEABLE.contains(&status)
}

/// Which runs a retention policy removes: finished runs older than a
/// while, and finished runs past the newest so many of each workflow.
/// Running and parked runs are never removed, nor a child whose parent
/// still runs. A removed run's id is free again: keep runs at least as
/// long as a caller may retry a start with the same id (an idempotency
/// key), or the retry starts a new run.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::durable::Retention;
/// let policy = Retention::new()
///     .keep_for(Duration::from_secs(30 * 24 * 3600))
///     .keep_at_most(10_000);
/// # drop(policy);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Finished runs that ended longer ago than this are removed.
    pub keep_for: Option<std::time::Duration>,
    /// Of each workflow's finished runs, only this many of the newest are
    /// kept.
    pub keep_at_most: Option<u64>,
    /// How often a host (or [`Runner::retain_until`](crate::host::Runner::retain_until))
    /// purges (default hourly); a single purge ignores it.
    pub every: std::time::Duration,
    /// How many runs one purge transaction removes at most (default 500):
    /// a purge never holds the journal long.
    pub batch: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_for: None,
            keep_at_most: None,
            every: std::time::Duration::from_secs(3600),
            batch: 500,
        }
    }
}

impl Retention {
    /// A policy that keeps everything until told otherwise.
    ///
    /// ```
    /// # use workflow_runtime::durable::Retention;
    /// let keep_all = Retention::new();
    /// assert_eq!((keep_all.keep_for, keep_all.keep_at_most), (None, None));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes finished runs that ended more than `age` ago.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::durable::Retention;
    /// let week = Retention::new().keep_for(Duration::from_secs(7 * 86_400));
    /// assert_eq!(week.keep_for, Some(Duration::from_secs(604_800)));
    /// ```
    pub fn keep_for(mut self, age: std::time::Duration) -> Self {
        self.keep_for = Some(age);
        self
    }

    /// Keeps only the newest `n` finished runs of each workflow.
    ///
    /// ```
    /// # use workflow_runtime::durable::Retention;
    /// assert_eq!(Retention::new().keep_at_most(100).keep_at_most, Some(100));
    /// ```
    pub fn keep_at_most(mut self, n: u64) -> Self {
        self.keep_at_most = Some(n);
        self
    }

    /// Purges every `every` (default hourly).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::durable::Retention;
    /// assert_eq!(Retention::new().every(Duration::from_secs(60)).every, Duration::from_secs(60));
    /// ```
    pub fn every(mut self, every: std::time::Duration) -> Self {
        self.every = every;
        self
    }

    /// Removes at most `n` runs per transaction (default 500).
    ///
    /// ```
    /// # use workflow_runtime::durable::Retention;
    /// assert_eq!(Retention::new().batch(0).batch, 1, "at least one");
    /// ```
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// The batch this policy asks of a store at `now_ms` (ms since the
    /// Unix epoch), for [`Backend::purge`](super::Backend::purge).
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::durable::Retention;
    /// let purge = Retention::new().keep_for(Duration::from_secs(60)).purge_at(100_000);
    /// assert_eq!(purge.ended_before_ms, Some(40_000));
    /// ```
    pub fn purge_at(&self, now_ms: i64) -> Purge {
        Purge {
            ended_before_ms: self.keep_for.map(|age| {
                now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
            }),
            keep_at_most: self.keep_at_most,
            batch: self.batch.max(1),
        }
    }
}

/// One batch of a retention policy, as a store carries it out: see
/// [`Backend::purge`](super::Backend::purge).
///
/// ```
/// use workflow_runtime::durable::Retention;
/// let purge = Retention::new().keep_at_most(3).batch(100).purge_at(0);
/// assert_eq!((purge.keep_at_most, purge.batch, purge.ended_before_ms), (Some(3), 100, None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purge {
    /// Remove finished runs whose row last changed before this.
    pub ended_before_ms: Option<i64>,
    /// Remove finished runs past each workflow's newest this many.
    pub keep_at_most: Option<u64>,
    /// Remove at most this many runs.
    pub batch: usize,
}

impl Purge {
    /// Finished runs to remove, at most a batch of them: the memory
    /// store's reading of the policy (the databases say it in SQL).
    pub(crate) fn pick(&self, runs: &[&RunRow]) -> Vec<String> {
        let running: std::collections::HashSet<&str> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Running)
            .map(|r| r.id.as_str())
            .collect();
        let mut ended: Vec<&RunRow> = runs
            .iter()
            .copied()
            .filter(|r| purgeable(r.status))
            .collect();
        ended.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        let mut seen = std::collections::HashMap::<&str, u64>::new();
        let mut doomed = Vec::new();
        for run in ended {
            let rank = seen.entry(run.workflow.as_str()).or_default();
            *rank += 1;
            // A running parent reads its child's result when it wakes.
            if run.parent.as_deref().is_some_and(|p| running.contains(p)) {
                continue;
            }
            let too_old = self.ended_before_ms.is_some_and(|t| run.updated_ms < t);
            let too_many = self.keep_at_most.is_some_and(|n| *rank > n);
            if too_old || too_many {
                doomed.push(run.id.clone());
                if doomed.len() == self.batch {
                    break;
                }
            }
        }
        doomed
    }
}
