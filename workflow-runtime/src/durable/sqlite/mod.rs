//! The SQLite store: the journal in a file, through sqlx. One connection
//! writes, so writers queue in the pool rather than meeting `SQLITE_BUSY`;
//! WAL keeps readers of the file (the `sqlite3` tool) out of its way.
//! Concurrent runs' starts, steps and ends share transactions
//! ([`group_commit`]).

mod group_commit;
mod lend;
mod lend_watch;
mod statements;

pub use group_commit::Commits;
pub use lend::LentTx;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};

use super::query::RunFilter;
use super::retention::Purge;
use super::sql;
use super::store::{
    Backend, EventRow, FailureRow, Fence, Inserted, Redrive, RunEnd, RunRow, RunStatus, Sent,
    StepRow, Store, StoreError, Suspension, WorkflowCounts, corrupt, count_group, now_ms, readable,
};
use crate::behavior::BoxFuture;
use group_commit::Write;

/// A transaction on the store's database, as a `#[step(transactional)]`
/// step takes it: its writes and the step's journal row commit together.
pub type SqliteTx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// The schema, one migration per entry, applied in order on open; the
/// version reached is kept in `workflow_schema`.
const MIGRATIONS: &[&str] = &[
    RUNS_AND_STEPS,
    FAILURES,
    FAILED_STEP,
    RUN_CODEC,
    WAITS_EVENTS,
    PARENTS,
    LISTING,
    TRACES,
];

/// 8: the W3C trace context of the code that started each run.
const TRACES: &str = "ALTER TABLE workflow_runs ADD COLUMN trace TEXT;";

/// 7: listing runs newest first, by workflow, status or both: one index
/// per filter keeps a page's cost flat ([`Store::runs`]). The status index
/// it replaces lacked the id that breaks ties.
const LISTING: &str = "
    DROP INDEX workflow_runs_by_status;
    CREATE INDEX workflow_runs_listing ON workflow_runs (created_ms, id);
    CREATE INDEX workflow_runs_listing_by_workflow ON workflow_runs (workflow, created_ms, id);
    CREATE INDEX workflow_runs_listing_by_status ON workflow_runs (status, created_ms, id);
    CREATE INDEX workflow_runs_listing_by_both
        ON workflow_runs (workflow, status, created_ms, id);";

/// 6: the run that started a run as its child.
const PARENTS: &str = "ALTER TABLE workflow_runs ADD COLUMN parent TEXT;";

/// 1: runs and their completed steps.
const RUNS_AND_STEPS: &str = "
    CREATE TABLE workflow_runs (
        id          TEXT PRIMARY KEY,
        workflow    TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status      TEXT NOT NULL,
        input       BLOB NOT NULL,
        output      BLOB,
        error       TEXT,
        created_ms  INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL
    );
    CREATE INDEX workflow_runs_by_status ON workflow_runs (status, created_ms);
    CREATE TABLE workflow_steps (
        run_id     TEXT NOT NULL REFERENCES workflow_runs (id),
        step_index INTEGER NOT NULL,
        title      TEXT NOT NULL,
        output     BLOB NOT NULL,
        attempts   INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms   INTEGER NOT NULL,
        PRIMARY KEY (run_id, step_index)
    );";

/// 2: failed attempts of steps not yet completed, for resumed retries.
const FAILURES: &str = "
    CREATE TABLE workflow_failures (
        run_id     TEXT NOT NULL REFERENCES workflow_runs (id),
        step_index INTEGER NOT NULL,
        attempts   INTEGER NOT NULL,
        failed_ms  INTEGER NOT NULL,
        error      TEXT NOT NULL,
        PRIMARY KEY (run_id, step_index)
    );";

/// 3: the step a failed run failed at.
const FAILED_STEP: &str = "ALTER TABLE workflow_runs ADD COLUMN failed_step TEXT;";

/// 4: the codec each run's payloads are written with (runs before it: JSON).
const RUN_CODEC: &str = "ALTER TABLE workflow_runs ADD COLUMN codec TEXT NOT NULL DEFAULT 'json';";

/// 5: suspended runs (what they wait for, until when), cancel requests,
/// and the events sent to runs.
const WAITS_EVENTS: &str = "
    ALTER TABLE workflow_runs ADD COLUMN waiting TEXT;
    ALTER TABLE workflow_runs ADD COLUMN wake_ms INTEGER;
    ALTER TABLE workflow_runs ADD COLUMN cancel TEXT;
    ALTER TABLE workflow_runs ADD COLUMN events INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE workflow_events (
        run_id    TEXT NOT NULL REFERENCES workflow_runs (id),
        seq       INTEGER NOT NULL,
        name      TEXT NOT NULL,
        payload   BLOB NOT NULL,
        dedup_key TEXT,
        sent_ms   INTEGER NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE UNIQUE INDEX workflow_events_by_key ON workflow_events (run_id, dedup_key)
        WHERE dedup_key IS NOT NULL;
    CREATE INDEX workflow_runs_awake ON workflow_runs (created_ms)
        WHERE status = 'running' AND waiting IS NULL;
    CREATE INDEX workflow_runs_asleep ON workflow_runs (wake_ms)
        WHERE status = 'running' AND waiting IS NOT NULL;";

/// How the file is synced on commit.
///
/// ```
/// use workflow_runtime::durable::{SqliteOptions, Synchronous};
/// let options = SqliteOptions::new("runs.db").sync(Synchronous::Normal);
/// # drop(options);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=FULL`: a commit is on disk when it returns (default).
    #[default]
    Full,
    /// `synchronous=NORMAL`: in WAL mode, a power cut may lose the last
    /// commits (never corrupt the file); a process crash loses nothing.
    Normal,
}

/// Where and how to open a SQLite store.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::durable::SqliteOptions;
/// let options = SqliteOptions::new("runs.db").busy_timeout(Duration::from_secs(1));
/// # drop(options);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SqliteOptions {
    path: PathBuf,
    sync: Synchronous,
    busy_timeout: Duration,
    acquire_timeout: Duration,
}

impl SqliteOptions {
    /// The file, created if missing.
    ///
    /// ```
    /// # use workflow_runtime::durable::SqliteOptions;
    /// let options = SqliteOptions::new("runs.db");
    /// # drop(options);
    /// ```
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteOptions {
            path: path.as_ref().to_owned(),
            sync: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
        }
    }

    /// How commits are synced.
    ///
    /// ```
    /// # use workflow_runtime::durable::{SqliteOptions, Synchronous};
    /// let options = SqliteOptions::new("runs.db").sync(Synchronous::Full);
    /// # drop(options);
    /// ```
    pub fn sync(mut self, sync: Synchronous) -> Self {
        self.sync = sync;
        self
    }

    /// How long to wait on another process's lock before failing.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::durable::SqliteOptions;
    /// let options = SqliteOptions::new("runs.db").busy_timeout(Duration::from_millis(200));
    /// # drop(options);
    /// ```
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long a query waits for the store's one connection (30 seconds
    /// by default) before it fails. A test on tokio's paused clock, whose
    /// time jumps while a query waits on SQLite's thread, gives it a
    /// long one.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::durable::SqliteOptions;
    /// let options = SqliteOptions::new("runs.db").acquire_timeout(Duration::from_secs(5));
    /// # drop(options);
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

/// The SQLite journal. Open it with [`Store::sqlite`] or
/// [`SqliteStore::open`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Read-only connections for the journal reads a drive makes (a run,
    /// its steps, failures and events): in WAL mode they read the last
    /// commit while the writer syncs the next, rather than queue behind it.
    reader: SqlitePool,
    path: PathBuf,
    queue: Arc<group_commit::Queue>,
}

impl Store {
    /// Opens (or creates) the SQLite store in `path` with the defaults:
    /// WAL, `synchronous=FULL`, migrations applied.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::Store;
    /// let dir = std::env::temp_dir().join(format!("wf-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let store = Store::sqlite(dir.join("runs.db")).await.unwrap();
    /// assert!(store.describe().ends_with("runs.db"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub async fn sqlite(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Ok(Store::new(
            SqliteStore::open(SqliteOptions::new(path)).await?,
        ))
    }

    /// The SQLite store under this handle, if that is its backend: its
    /// pool, for the application's own tables in the same file.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::Store;
    /// let dir = std::env::temp_dir().join(format!("wf-doc-as-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let store = Store::sqlite(dir.join("runs.db")).await.unwrap();
    /// assert!(store.as_sqlite().is_some());
    /// assert!(Store::memory().as_sqlite().is_none());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        self.backend().as_any().downcast_ref()
    }
}

impl SqliteStore {
    /// Opens the store: creates the file if missing, checks it is a SQLite
    /// database, applies the migrations it lacks.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::{SqliteOptions, SqliteStore, Store, Synchronous};
    /// let dir = std::env::temp_dir().join(format!("wf-doc-open-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let sqlite = SqliteStore::open(SqliteOptions::new(dir.join("runs.db")).sync(Synchronous::Normal))
    ///     .await
    ///     .unwrap();
    /// let store = Store::new(sqlite);
    /// # drop(store); std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub async fn open(options: SqliteOptions) -> Result<Self, StoreError> {
        let path = options.path;
        let fail = |doing: &str, source: sqlx::Error| StoreError::Database {
            store: path.display().to_string(),
            doing: doing.to_owned(),
            source: Box::new(source),
        };
        let connect = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| fail("reading options", e))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.sync {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            // A file's connection does not go stale, and the ping would
            // be one more crossing to SQLite's thread per batch.
            .test_before_acquire(false)
            // A connection released still counting a transaction is
            // closed, not reused: its next `begin` would open a savepoint
            // and its commits would release it without committing. sqlx
            // 0.9.1 recounts where SQLite ended the transaction itself (a
            // full disk, an I/O error, a statement's `OR ROLLBACK`), which
            // 0.9.0 did not; what is left is a connection released with
            // its rollback still queued, which only costs a reconnect
            // after a failure: no ping here, on every batch.
            .after_release(|conn, _| {
                let counted = sqlx::Connection::is_in_transaction(conn);
                Box::pin(async move { Ok(!counted) })
            })
            .connect_with(connect.clone())
            .await
            .map_err(|e| fail("opening the database", e))?;
        let mut store = SqliteStore {
            reader: pool.clone(),
            pool,
            path,
            queue: Arc::default(),
        };
        store.migrate().await?;
        // Opened once the schema is there: a read-only connection cannot
        // create it.
        store.reader = SqlitePoolOptions::new()
            .max_connections(2)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await
            .map_err(|e| store.error("opening the database for reading", e))?;
        Ok(store)
    }

    /// The pool on the store's file (one connection: the one writer).
    /// The application may use it for its own tables, which lets a
    /// transactional step's writes commit with its journal row.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use workflow_runtime::durable::{SqliteOptions, SqliteStore};
    /// # let dir = std::env::temp_dir().join(format!("wf-doc-pool-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let store = SqliteStore::open(SqliteOptions::new(dir.join("runs.db"))).await.unwrap();
    /// sqlx::query("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
    ///     .execute(store.pool())
    ///     .await
    ///     .unwrap();
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The file.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use workflow_runtime::durable::{SqliteOptions, SqliteStore};
    /// # let dir = std::env::temp_dir().join(format!("wf-doc-path-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let store = SqliteStore::open(SqliteOptions::new(dir.join("runs.db"))).await.unwrap();
    /// assert!(store.path().ends_with("runs.db"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How SQLite reads a page of runs `filter` asks for
    /// (`EXPLAIN QUERY PLAN`, one line per step): whether the listing
    /// indexes serve it, for an operator checking a slow page.
    ///
    /// ```
    /// # use workflow_runtime::durable::{RunFilter, RunStatus, SqliteOptions, SqliteStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let dir = std::env::temp_dir().join(format!("explain-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let store = SqliteStore::open(SqliteOptions::new(dir.join("runs.db"))).await.unwrap();
    /// let plan = store.explain_runs(&RunFilter::new().status(RunStatus::Failed)).await.unwrap();
    /// assert!(plan.contains("workflow_runs_listing_by_status"), "{plan}");
    /// # }
    /// ```
    pub async fn explain_runs(&self, filter: &RunFilter) -> Result<String, StoreError> {
        let rows = sql::list_runs::<sqlx::Sqlite>("EXPLAIN QUERY PLAN ", filter)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("explaining a page of runs", e))?;
        Ok(rows
            .iter()
            .filter_map(|row| row.try_get::<String, _>("detail").ok())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn error(&self, doing: impl Into<String>, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            store: self.path.display().to_string(),
            doing: doing.into(),
            source: Box::new(source),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| self.error("opening the database", e))?;
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| self.error("reading the schema version", e))?;
        sqlx::query("CREATE TABLE IF NOT EXISTS workflow_schema (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error("reading the schema version", e))?;
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM workflow_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.error("reading the schema version", e))?;
        let version = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Corrupt {
                run: String::new(),
                detail: format!(
                    "{}: schema version {version} is newer than this library's {}",
                    self.path.display(),
                    MIGRATIONS.len()
                ),
            });
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            sqlx::raw_sql(*migration)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(format!("applying migration {}", i + 1), e))?;
            sqlx::query("INSERT INTO workflow_schema (version) VALUES (?)")
                .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(format!("applying migration {}", i + 1), e))?;
        }
        tx.commit()
            .await
            .map_err(|e| self.error("applying migrations", e))
    }

    /// Parks the runs whose rows do not read back, with why, so the other
    /// runs resume.
    async fn park(&self, unreadable: Vec<(String, StoreError)>) -> Result<(), StoreError> {
        for (id, error) in unreadable {
            sqlx::query(
                "UPDATE workflow_runs SET status = 'stuck', error = ?, updated_ms = ?
                 WHERE id = ? AND status = 'running'",
            )
            .bind(error.to_string())
            .bind(now_ms())
            .bind(&id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(format!("parking run \"{id}\""), e))?;
        }
        Ok(())
    }

    /// Journals a step inside `conn`'s transaction.
    pub(crate) async fn record_step_in(
        &self,
        conn: &mut SqliteConnection,
        run: &str,
        step: &StepRow,
    ) -> Result<(), StoreError> {
        let inserted = payload(
            sqlx::query(
                "INSERT INTO workflow_steps
                 (run_id, step_index, title, output, attempts, started_ms, ended_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run)
            .bind(i64::from(step.index))
            .bind(&step.title),
            &step.output,
        )
        .bind(i64::from(step.attempts))
        .bind(step.started_ms)
        .bind(step.ended_ms)
        .execute(conn)
        .await;
        inserted
            .map(drop)
            .map_err(|e| self.step_refused(run, step.index, e))
    }

    /// Why step `index` of `run` was not journaled: a second writer, a run
    /// that is gone, or the database's own error.
    fn step_refused(&self, run: &str, index: u32, error: sqlx::Error) -> StoreError {
        match error {
            sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::Conflict {
                run: run.to_owned(),
                index,
            },
            sqlx::Error::Database(e) if e.is_foreign_key_violation() => {
                StoreError::NoSuchRun(run.to_owned())
            }
            e => self.error(format!("journaling step {index} of run \"{run}\""), e),
        }
    }
}

/// Binds a payload as text when it is UTF-8 (JSON reads as itself in the
/// `sqlite3` tool), as a blob otherwise.
fn payload<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    bytes: &'q [u8],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    match std::str::from_utf8(bytes) {
        Ok(text) => query.bind(text),
        Err(_) => query.bind(bytes),
    }
}

fn run_row(row: &SqliteRow) -> Result<RunRow, StoreError> {
    let id: String = row.try_get("id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&id, e);
    let status: String = row.try_get("status").map_err(get)?;
    Ok(RunRow {
        workflow: row.try_get("workflow").map_err(get)?,
        fingerprint: row.try_get("fingerprint").map_err(get)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| corrupt(&id, format!("unknown status \"{status}\"")))?,
        input: row.try_get("input").map_err(get)?,
        output: row.try_get("output").map_err(get)?,
        error: row.try_get("error").map_err(get)?,
        failed_step: row.try_get("failed_step").map_err(get)?,
        created_ms: row.try_get("created_ms").map_err(get)?,
        updated_ms: row.try_get("updated_ms").map_err(get)?,
        codec: row.try_get("codec").map_err(get)?,
        waiting: row.try_get("waiting").map_err(get)?,
        wake_ms: row.try_get("wake_ms").map_err(get)?,
        cancel: row.try_get("cancel").map_err(get)?,
        parent: row.try_get("parent").map_err(get)?,
        trace: row.try_get("trace").map_err(get)?,
        events: {
            let n: i64 = row.try_get("events").map_err(get)?;
            u32::try_from(n).map_err(|_| corrupt(&id, format!("events {n} is out of range")))?
        },
        id,
    })
}

fn step_row(run: &str, row: &SqliteRow) -> Result<StepRow, StoreError> {
    let get = |e: sqlx::Error| corrupt(run, e);
    let count = |name: &str| -> Result<u32, StoreError> {
        let n: i64 = row.try_get(name).map_err(get)?;
        u32::try_from(n).map_err(|_| corrupt(run, format!("{name} {n} is out of range")))
    };
    Ok(StepRow {
        index: count("step_index")?,
        title: row.try_get("title").map_err(get)?,
        output: row.try_get("output").map_err(get)?,
        attempts: count("attempts")?,
        started_ms: row.try_get("started_ms").map_err(get)?,
        ended_ms: row.try_get("ended_ms").map_err(get)?,
    })
}

impl Backend for SqliteStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        Box::pin(async move {
            if self.write(Write::Start(run.clone())).await? == 1 {
                return Ok(Inserted::New);
            }
            match self.run(&run.id).await? {
                Some(existing) => Ok(Inserted::Existing(existing)),
                None => Err(StoreError::NoSuchRun(run.id.clone())),
            }
        })
    }

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM workflow_runs WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await
                .map_err(|e| self.error(format!("reading run \"{id}\""), e))?;
            row.as_ref().map(run_row).transpose()
        })
    }

    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT step_index, title, output, attempts, started_ms, ended_ms
                 FROM workflow_steps WHERE run_id = ? ORDER BY step_index",
            )
            .bind(run)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.error(format!("reading the steps of run \"{run}\""), e))?;
            rows.iter().map(|row| step_row(run, row)).collect()
        })
    }

    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Write::Step {
                run: run.to_owned(),
                row: step.clone(),
            })
            .await
            .map(drop)
        })
    }

    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO workflow_failures (run_id, step_index, attempts, failed_ms, error)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (run_id, step_index) DO UPDATE SET
                 attempts = excluded.attempts, failed_ms = excluded.failed_ms,
                 error = excluded.error",
            )
            .bind(run)
            .bind(i64::from(failure.index))
            .bind(i64::from(failure.attempts))
            .bind(failure.failed_ms)
            .bind(&failure.error)
            .execute(&self.pool)
            .await;
            match done {
                Ok(_) => Ok(()),
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                    Err(StoreError::NoSuchRun(run.to_owned()))
                }
                Err(e) => Err(self.error(
                    format!(
                        "journaling a failure of step {} of run \"{run}\"",
                        failure.index
                    ),
                    e,
                )),
            }
        })
    }

    fn failures<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<FailureRow>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT step_index, attempts, failed_ms, error FROM workflow_failures
                 WHERE run_id = ? ORDER BY step_index",
            )
            .bind(run)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.error(format!("reading the failures of run \"{run}\""), e))?;
            rows.iter()
                .map(|row| {
                    let get = |e: sqlx::Error| corrupt(run, e);
                    let count = |name: &str| -> Result<u32, StoreError> {
                        let n: i64 = row.try_get(name).map_err(get)?;
                        u32::try_from(n)
                            .map_err(|_| corrupt(run, format!("{name} {n} is out of range")))
                    };
                    Ok(FailureRow {
                        index: count("step_index")?,
                        attempts: count("attempts")?,
                        failed_ms: row.try_get("failed_ms").map_err(get)?,
                        error: row.try_get("error").map_err(get)?,
                    })
                })
                .collect()
        })
    }

    fn finish_run<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let finish = Write::Finish {
                run: run.to_owned(),
                end: end.clone(),
                now_ms: now_ms(),
            };
            if self.write(finish).await? == 1 {
                return Ok(true);
            }
            match self.run(run).await? {
                Some(_) => Ok(false),
                None => Err(StoreError::NoSuchRun(run.to_owned())),
            }
        })
    }

    /// The row and the end go in one batch: one commit, where two writes
    /// would wait for two. A batch that fails fails both.
    fn finish_run_with<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
        last: Option<&'a StepRow>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let Some(row) = last else {
            return match fence {
                Some(fence) => self.finish_run_fenced(run, end, fence),
                None => self.finish_run(run, end),
            };
        };
        Box::pin(async move {
            let [step, finish] = self.enqueue_all([
                Write::Step {
                    run: run.to_owned(),
                    row: row.clone(),
                },
                Write::Finish {
                    run: run.to_owned(),
                    end: end.clone(),
                    now_ms: now_ms(),
                },
            ]);
            let (step, finish) = (self.outcome(step).await, self.outcome(finish).await);
            match step {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                // Refused alone: the end, made or not, says how the run
                // stands (a run that is gone is `NoSuchRun` from it), and
                // a row that cannot be written is not tried forever.
                Err(error) => {
                    tracing::error!(run, %error, "the row of a run's last step was refused beside its end");
                }
            }
            if finish? == 1 {
                return Ok(true);
            }
            match self.run(run).await? {
                Some(_) => Ok(false),
                None => Err(StoreError::NoSuchRun(run.to_owned())),
            }
        })
    }

    fn running(&self) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM workflow_runs WHERE status = 'running' ORDER BY created_ms, id",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("listing running runs", e))?;
            let (running, unreadable) =
                readable(&rows, run_row, |row| row.try_get::<String, _>("id").ok());
            self.park(unreadable).await?;
            Ok(running)
        })
    }

    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE workflow_runs SET status = 'running', error = NULL, failed_step = NULL,
                 updated_ms = ? WHERE id = ? AND status IN ('stuck', 'incompatible')",
            )
            .bind(now_ms())
            .bind(run)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(format!("resuming parked run \"{run}\""), e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn due(&self, now_ms: i64, limit: usize) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        Box::pin(async move {
            // Two halves, each read by its own partial index: thousands of
            // sleeping runs cost a worker's look nothing.
            let rows = sqlx::query(
                "SELECT * FROM (
                     SELECT * FROM workflow_runs WHERE status = 'running' AND waiting IS NULL
                     UNION ALL
                     SELECT * FROM workflow_runs
                     WHERE status = 'running' AND waiting IS NOT NULL AND wake_ms <= ?)
                 ORDER BY created_ms, id LIMIT ?",
            )
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("listing due runs", e))?;
            let (due, unreadable) =
                readable(&rows, run_row, |row| row.try_get::<String, _>("id").ok());
            self.park(unreadable).await?;
            Ok(due)
        })
    }

    fn woken(&self, now_ms: i64, limit: usize) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        Box::pin(async move {
            // The sleepers' index alone: the awake runs are not read.
            let rows = sqlx::query(
                "SELECT * FROM workflow_runs
                 WHERE status = 'running' AND waiting IS NOT NULL AND wake_ms <= ?
                 ORDER BY created_ms, id LIMIT ?",
            )
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("listing woken runs", e))?;
            let (woken, unreadable) =
                readable(&rows, run_row, |row| row.try_get::<String, _>("id").ok());
            self.park(unreadable).await?;
            Ok(woken)
        })
    }

    fn next_wake(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT MIN(wake_ms) FROM workflow_runs
                 WHERE status = 'running' AND waiting IS NOT NULL",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error("reading when the next run wakes", e))
        })
    }

    fn suspend<'a>(
        &'a self,
        run: &'a str,
        suspension: Option<&'a Suspension>,
        _: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let query = match suspension {
                Some(s) => sqlx::query(
                    "UPDATE workflow_runs SET waiting = ?, wake_ms = ?, updated_ms = ?
                     WHERE id = ? AND status = 'running' AND events <= ?
                       AND (cancel IS NULL OR ?)",
                )
                .bind(&s.waiting)
                .bind(s.wake_ms)
                .bind(now_ms())
                .bind(run)
                .bind(i64::from(s.events_seen))
                .bind(s.undoing),
                None => sqlx::query(
                    "UPDATE workflow_runs SET waiting = NULL, wake_ms = NULL
                     WHERE id = ? AND status = 'running'",
                )
                .bind(run),
            };
            let done = query
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(format!("suspending run \"{run}\""), e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn send_event<'a>(
        &'a self,
        run: &'a str,
        name: &'a str,
        value: &'a [u8],
        key: Option<&'a str>,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Sent, StoreError>> {
        Box::pin(async move {
            let doing = format!("sending event \"{name}\" to run \"{run}\"");
            // Immediate: it reads then writes, and another process may be
            // writing the file.
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| self.error(&doing, e))?;
            let found: Option<(String, i64)> =
                sqlx::query_as("SELECT status, events FROM workflow_runs WHERE id = ?")
                    .bind(run)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.error(&doing, e))?;
            let Some((status, events)) = found else {
                return Err(StoreError::NoSuchRun(run.to_owned()));
            };
            let status = RunStatus::parse(&status)
                .ok_or_else(|| corrupt(run, format!("unknown status \"{status}\"")))?;
            if status != RunStatus::Running {
                return Ok(Sent::Finished(status));
            }
            if let Some(key) = key {
                let earlier: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM workflow_events WHERE run_id = ? AND dedup_key = ?",
                )
                .bind(run)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.error(&doing, e))?;
                if let Some(seq) = earlier {
                    return Ok(Sent::Duplicate(u32::try_from(seq).unwrap_or(0)));
                }
            }
            let seq = events + 1;
            payload(
                sqlx::query(
                    "INSERT INTO workflow_events (run_id, seq, name, payload, dedup_key, sent_ms)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(run)
                .bind(seq)
                .bind(name),
                value,
            )
            .bind(key)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(&doing, e))?;
            sqlx::query(
                "UPDATE workflow_runs SET events = ?1,
                 wake_ms = CASE WHEN waiting = ?2 THEN MIN(COALESCE(wake_ms, ?3), ?3) ELSE wake_ms END
                 WHERE id = ?4",
            )
            .bind(seq)
            .bind(super::journal::awaiting(name))
            .bind(now_ms)
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(&doing, e))?;
            tx.commit().await.map_err(|e| self.error(doing, e))?;
            Ok(Sent::Delivered(u32::try_from(seq).unwrap_or(u32::MAX)))
        })
    }

    fn events<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<EventRow>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT seq, name, payload, dedup_key, sent_ms FROM workflow_events
                 WHERE run_id = ? ORDER BY seq",
            )
            .bind(run)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.error(format!("reading the events of run \"{run}\""), e))?;
            rows.iter()
                .map(|row| {
                    let get = |e: sqlx::Error| corrupt(run, e);
                    let seq: i64 = row.try_get("seq").map_err(get)?;
                    Ok(EventRow {
                        seq: u32::try_from(seq)
                            .map_err(|_| corrupt(run, format!("event {seq} is out of range")))?,
                        name: row.try_get("name").map_err(get)?,
                        payload: row.try_get("payload").map_err(get)?,
                        key: row.try_get("dedup_key").map_err(get)?,
                        sent_ms: row.try_get("sent_ms").map_err(get)?,
                    })
                })
                .collect()
        })
    }

    fn request_cancel<'a>(
        &'a self,
        run: &'a str,
        reason: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        Box::pin(async move {
            let doing = format!("cancelling run \"{run}\"");
            sqlx::query(
                "UPDATE workflow_runs SET cancel = COALESCE(cancel, ?1),
                 wake_ms = CASE WHEN waiting IS NOT NULL
                     THEN MIN(COALESCE(wake_ms, ?2), ?2) ELSE wake_ms END
                 WHERE id = ?3 AND status = 'running'",
            )
            .bind(reason)
            .bind(now_ms)
            .bind(run)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(&doing, e))?;
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM workflow_runs WHERE id = ?")
                    .bind(run)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.error(&doing, e))?;
            let status = status.ok_or_else(|| StoreError::NoSuchRun(run.to_owned()))?;
            RunStatus::parse(&status)
                .ok_or_else(|| corrupt(run, format!("unknown status \"{status}\"")))
        })
    }

    fn cancelling<'a>(
        &'a self,
        runs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let ids = serde_json::to_string(runs).unwrap_or_else(|_| "[]".to_owned());
            sqlx::query_scalar(
                "SELECT id FROM workflow_runs WHERE status = 'running' AND cancel IS NOT NULL
                 AND id IN (SELECT value FROM json_each(?))",
            )
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("reading which runs are cancelled", e))
        })
    }

    fn redrive<'a>(
        &'a self,
        run: &'a str,
        redrive: &'a Redrive,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let doing = format!("redriving run \"{run}\"");
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| self.error(&doing, e))?;
            let done = sqlx::query(
                "UPDATE workflow_runs SET status = 'running', error = NULL, failed_step = NULL,
                 cancel = NULL, waiting = NULL, wake_ms = NULL, updated_ms = ?
                 WHERE id = ? AND status = 'failed'",
            )
            .bind(now_ms())
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(&doing, e))?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            for index in &redrive.drop {
                sqlx::query("DELETE FROM workflow_steps WHERE run_id = ? AND step_index = ?")
                    .bind(run)
                    .bind(i64::from(*index))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(&doing, e))?;
            }
            sqlx::query("DELETE FROM workflow_failures WHERE run_id = ? AND step_index >= ?")
                .bind(run)
                .bind(i64::from(redrive.from))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(&doing, e))?;
            for note in &redrive.notes {
                self.record_step_in(&mut tx, run, note).await?;
            }
            tx.commit().await.map_err(|e| self.error(doing, e))?;
            Ok(true)
        })
    }

    fn counts_by_workflow(&self, _: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>> {
        Box::pin(async move {
            let groups: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
                "SELECT workflow, status, COUNT(*), MIN(created_ms)
                 FROM workflow_runs GROUP BY workflow, status",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("counting runs", e))?;
            let mut counts = WorkflowCounts::new();
            for group in groups {
                count_group(&mut counts, group)?;
            }
            Ok(counts)
        })
    }

    fn runs<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<Vec<RunRow>, StoreError>> {
        Box::pin(async move {
            let rows = sql::list_runs::<sqlx::Sqlite>("", filter)
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error("listing runs", e))?;
            rows.iter().map(run_row).collect()
        })
    }

    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let doing = "purging finished runs";
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| self.error(doing, e))?;
            let ids: Vec<String> = sql::purge_ids::<sqlx::Sqlite>(purge)
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.error(doing, e))?;
            for delete in sql::DELETE_RUN {
                for id in &ids {
                    sqlx::query(delete)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.error(doing, e))?;
                }
            }
            tx.commit().await.map_err(|e| self.error(doing, e))?;
            Ok(ids.len() as u64)
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn sqlite_of(store: &Store) -> Result<&SqliteStore, StoreError> {
    store
        .backend()
        .as_any()
        .downcast_ref::<SqliteStore>()
        .ok_or_else(|| StoreError::Unsupported {
            store: store.describe(),
            what: "a step that takes a `SqliteTx` needs the SQLite store".to_owned(),
        })
}

impl super::step::Transaction for SqliteTx {
    /// Lent by the batch that commits the step's writes with the other
    /// runs' journal writes (see [`LentTx`]).
    type Held = LentTx;

    fn begin<'a>(
        store: &'a Store,
        run: &'a str,
        index: u32,
    ) -> BoxFuture<'a, super::step::Begun<LentTx>> {
        Box::pin(async move { sqlite_of(store)?.lend(run, index).await })
    }

    fn commit_with<'a>(
        held: LentTx,
        store: &'a Store,
        run: &'a str,
        row: StepRow,
        // One process owns a SQLite file: nothing to fence.
        _fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let sqlite = sqlite_of(store)?;
            let doing = format!("committing step {} of run \"{run}\"", row.index);
            held.keep(sqlite, row, doing).await
        })
    }
}
