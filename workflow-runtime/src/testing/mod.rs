//! Helpers for testing workflows (feature `testing`).
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
