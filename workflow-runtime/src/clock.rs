//! The wall clock a runner reads, and the contexts it makes: for cron
//! ticks, leases, journal timestamps, a resumed retry's backoff, the ages
//! health reports. The system's by default; a test gives its runner one that
//! follows tokio's clock, so with tokio's clock paused every time-based
//! part of the crate moves together on `tokio::time::advance`: retry
//! waits, timeouts and breakers (on tokio's clock already), and these.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a [`Runner`](crate::host::Runner), a
/// [`WorkflowHost`](crate::host::WorkflowHost) and the contexts they make
/// read the wall clock.
///
/// ```
/// use workflow_runtime::host::Clock;
/// let now = Clock::system().now_ms();
/// assert!(now > 1_700_000_000_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock(Source);

#[derive(Clone, Copy, Debug, Default)]
enum Source {
    #[default]
    System,
    /// `start_ms` when tokio's clock read `at`, moving with tokio's clock.
    Tokio {
        start_ms: i64,
        at: tokio::time::Instant,
    },
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Clock(Source::System)
    }

    /// A wall clock that reads `start` now and then moves with tokio's
    /// clock: paused (`#[tokio::test(start_paused = true)]`,
    /// `tokio::time::pause`), it stands still until tokio's time is
    /// advanced, by `tokio::time::advance` or by a runtime with nothing
    /// else to do. Call it inside the runtime.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use workflow_runtime::host::Clock;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let clock = Clock::following_tokio(UNIX_EPOCH + Duration::from_secs(1_000));
    /// tokio::time::advance(Duration::from_secs(90)).await;
    /// assert_eq!(clock.now_ms(), 1_090_000);
    /// # }
    /// ```
    pub fn following_tokio(start: SystemTime) -> Self {
        Clock(Source::Tokio {
            start_ms: ms_since_epoch(start),
            at: tokio::time::Instant::now(),
        })
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self.0 {
            Source::System => ms_since_epoch(SystemTime::now()),
            Source::Tokio { start_ms, at } => {
                let gone = tokio::time::Instant::now().saturating_duration_since(at);
                start_ms.saturating_add(i64::try_from(gone.as_millis()).unwrap_or(i64::MAX))
            }
        }
    }

    /// The time now.
    ///
    /// ```
    /// use workflow_runtime::host::Clock;
    /// assert!(Clock::system().now() > std::time::UNIX_EPOCH);
    /// ```
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.now_ms()).unwrap_or(0))
    }
}

fn ms_since_epoch(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
