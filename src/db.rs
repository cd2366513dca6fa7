//! How the examples open their SQLite files, in one place so every store
//! gets the same settings.

use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

/// Opens (or creates) the SQLite file at `path` as a pool of one
/// connection.
///
/// SQLite allows one writer per file: with a single connection this
/// process's calls queue in the pool instead of racing for the write lock,
/// so `SQLITE_BUSY` never reaches a caller. WAL lets other processes read
/// while this one writes, and the busy timeout covers the moments another
/// process holds the lock.
pub async fn open_pool(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
}

/// Adds `column` (`"name TYPE .."`) to `table` unless a file made before it
/// has it already: the examples' schemas grow by these.
pub async fn add_column(pool: &SqlitePool, table: &str, column: &str) -> Result<(), sqlx::Error> {
    let added = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {table} ADD COLUMN {column}"
    )))
    .execute(pool)
    .await;
    match added {
        Err(sqlx::Error::Database(e)) if e.message().contains("duplicate column") => Ok(()),
        other => other.map(drop),
    }
}
