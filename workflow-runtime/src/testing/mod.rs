//! Helpers for testing workflows (feature `testing`).
//!
//! Virtual time needs no helper of its own: run the test on tokio's paused
//! clock (`#[tokio::test(start_paused = true)]`) and give the runner or host
//! a wall clock that follows it,
//! [`Clock::following_tokio`](crate::Clock::following_tokio). Retry
//! waits, timeouts, step timeouts and breakers run on tokio's clock; cron
//! and interval ticks, leases, journal timestamps, a resumed retry's
//! backoff and the ages health reports read the runner's clock; so all of
//! them move together when tokio's time moves, and a test sees the exact
//! schedule without sleeping.
//!
//! | item | for |
//! |---|---|
//! | [`assert_steps!`](crate::assert_steps) | a run's steps against the expected ones, failing with the whole table |
//! | [`CrashingStore`], [`Crash`] | a memory store that dies before or after a chosen journal write, to recover the run in the same test |
//! | [`TempPostgres`] | a throwaway PostgreSQL server started from the machine's binaries |

#[cfg(feature = "durable")]
mod crash;
mod postgres;
mod steps;

#[cfg(feature = "durable")]
pub use crash::{Crash, CrashingStore};
pub use postgres::TempPostgres;
#[doc(hidden)]
pub use steps::{Expected, ExpectedStep, check_steps};
