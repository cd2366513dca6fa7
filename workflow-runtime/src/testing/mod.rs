//! Helpers for testing workflows (feature `testing`).
//!
//! | item | for |
//! |---|---|
//! | [`TempPostgres`] | a throwaway PostgreSQL server started from the machine's binaries |

mod postgres;

pub use postgres::TempPostgres;
