//! The PostgreSQL store: the journal in a database many instances share,
//! through sqlx. The same rows as the SQLite store's, under the same
//! conformance suite.

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};

use super::query::RunFilter;
use super::retention::Purge;
use super::sql;
use super::store::{
    Backend, Claimed, EventRow, FailureRow, Fence, Inserted, Redrive, RunEnd, RunRow, RunStatus,
    ScheduleRow, Sent, StepRow, Store, StoreError, Suspension, WorkflowCounts, corrupt,
    count_group, now_ms, readable,
};
use crate::behavior::BoxFuture;

/// A transaction on the store's database, as a `#[step(transactional)]`
/// step takes it: its writes and the step's journal row commit together.
pub type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// The schema, one migration per entry, applied in order on open under an
/// advisory lock, so instances starting together apply each once.
const MIGRATIONS: &[&str] = &[
    RUNS_STEPS_FAILURES,
    LEASES,
    SCHEDULES,
    CLAIMABLE_BY_LEASE,
    RUN_CODEC,
    WAITS_EVENTS,
    PARENTS,
    LISTING,
    TRACES,
    SCHEDULE_PAUSES,
];

/// 10: a recurring workflow paused across instances (its ticks pass and
/// fire nothing), and when it last fired.
const SCHEDULE_PAUSES: &str = "
    ALTER TABLE workflow_schedules ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE workflow_schedules ADD COLUMN last_tick_ms BIGINT;";

/// 9: the W3C trace context of the code that started each run.
const TRACES: &str = "ALTER TABLE workflow_runs ADD COLUMN trace TEXT;";

/// 8: listing runs newest first, by workflow, status or both: one index
/// per filter keeps a page's cost flat ([`Store::runs`]). The status index
/// it replaces lacked the id that breaks ties.
const LISTING: &str = "
    DROP INDEX workflow_runs_by_status;
    CREATE INDEX workflow_runs_listing ON workflow_runs (created_ms, id);
    CREATE INDEX workflow_runs_listing_by_workflow ON workflow_runs (workflow, created_ms, id);
    CREATE INDEX workflow_runs_listing_by_status ON workflow_runs (status, created_ms, id);
    CREATE INDEX workflow_runs_listing_by_both
        ON workflow_runs (workflow, status, created_ms, id);";

/// 7: the run that started a run as its child.
const PARENTS: &str = "ALTER TABLE workflow_runs ADD COLUMN parent TEXT;";

/// 6: suspended runs (what they wait for, until when: a suspended run's
/// lease runs until it wakes, held by nobody, so claims find due runs
/// by the lease index), cancel requests, and the events sent to runs.
const WAITS_EVENTS: &str = "
    ALTER TABLE workflow_runs
        ADD COLUMN waiting TEXT,
        ADD COLUMN wake_ms BIGINT,
        ADD COLUMN cancel TEXT,
        ADD COLUMN events BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE workflow_events (
        run_id    TEXT NOT NULL REFERENCES workflow_runs (id),
        seq       BIGINT NOT NULL,
        name      TEXT NOT NULL,
        payload   BYTEA NOT NULL,
        dedup_key TEXT,
        sent_ms   BIGINT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE UNIQUE INDEX workflow_events_by_key ON workflow_events (run_id, dedup_key)
        WHERE dedup_key IS NOT NULL;";

/// 5: the codec each run's payloads are written with (runs before it: JSON).
const RUN_CODEC: &str = "ALTER TABLE workflow_runs ADD COLUMN codec TEXT NOT NULL DEFAULT 'json';";

/// 1: runs, their completed steps, and failed attempts.
const RUNS_STEPS_FAILURES: &str = "
    CREATE TABLE workflow_runs (
        id          TEXT PRIMARY KEY,
        workflow    TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status      TEXT NOT NULL,
        input       BYTEA NOT NULL,
        output      BYTEA,
        error       TEXT,
        failed_step TEXT,
        created_ms  BIGINT NOT NULL,
        updated_ms  BIGINT NOT NULL
    );
    CREATE INDEX workflow_runs_by_status ON workflow_runs (status, created_ms);
    CREATE TABLE workflow_steps (
        run_id     TEXT NOT NULL REFERENCES workflow_runs (id),
        step_index BIGINT NOT NULL,
        title      TEXT NOT NULL,
        output     BYTEA NOT NULL,
        attempts   BIGINT NOT NULL,
        started_ms BIGINT NOT NULL,
        ended_ms   BIGINT NOT NULL,
        PRIMARY KEY (run_id, step_index)
    );
    CREATE TABLE workflow_failures (
        run_id     TEXT NOT NULL REFERENCES workflow_runs (id),
        step_index BIGINT NOT NULL,
        attempts   BIGINT NOT NULL,
        failed_ms  BIGINT NOT NULL,
        error      TEXT NOT NULL,
        PRIMARY KEY (run_id, step_index)
    );";

/// 2: leases: who holds a run, since which claim, until when.
const LEASES: &str = "
    ALTER TABLE workflow_runs
        ADD COLUMN owner TEXT,
        ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX workflow_runs_claimable ON workflow_runs (workflow, created_ms)
        WHERE status = 'running';";

/// 3: recurring workflows' next ticks.
const SCHEDULES: &str = "
    CREATE TABLE workflow_schedules (
        workflow     TEXT PRIMARY KEY,
        next_tick_ms BIGINT NOT NULL
    );";

/// 4: claims look runs up by lease end, so a poll reads the runs whose
/// lease ran out (and those never claimed, whose lease ends at 0), not
/// every leased run.
const CLAIMABLE_BY_LEASE: &str = "
    CREATE INDEX workflow_runs_by_lease ON workflow_runs (lease_until_ms, created_ms)
        WHERE status = 'running';";

/// Now by the database's clock, in ms since the Unix epoch: leases are
/// given and judged by one clock, not by each instance's. A macro, so the
/// queries that use it stay `&'static str`.
macro_rules! db_now_ms {
    () => {
        "(extract(epoch from now()) * 1000)::bigint"
    };
}

/// Connections a store keeps for claiming and renewing leases, apart from
/// the pool its steps use.
const LEASE_CONNECTIONS: u32 = 2;

/// The advisory lock migrations take: one number for this library.
const MIGRATION_LOCK: i64 = 0x776f_726b_666c_6f77; // "workflow"
/// The advisory lock one purging instance holds for its transaction.
const PURGE_LOCK: i64 = 0x776f_726b_7075_7267; // "workpurg"

/// The PostgreSQL journal. Open it with [`Store::postgres`] or
/// [`PostgresStore::open`].
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Claims, renewals and releases have connections of their own: a
    /// worker whose steps hold every connection of `pool` (transactional
    /// steps, the application's queries) still renews its leases in time,
    /// so a capacity above the pool's size never lets leases lapse.
    leases: PgPool,
    /// The URL without its password, for messages.
    name: String,
}

impl Store {
    /// Connects to the PostgreSQL database at `url` and applies the
    /// migrations it lacks.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::Store;
    /// let store = Store::postgres("postgres://app@127.0.0.1/orders").await.unwrap();
    /// # drop(store);
    /// # }
    /// ```
    pub async fn postgres(url: &str) -> Result<Store, StoreError> {
        Ok(Store::new(PostgresStore::open(url).await?))
    }

    /// The PostgreSQL store under this handle, if that is its backend.
    ///
    /// ```
    /// use workflow_runtime::durable::Store;
    /// assert!(Store::memory().as_postgres().is_none());
    /// ```
    pub fn as_postgres(&self) -> Option<&PostgresStore> {
        self.backend().as_any().downcast_ref()
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl PostgresStore {
    /// Connects (a pool of up to 16 connections) and migrates.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::{PostgresStore, Store};
    /// let pg = PostgresStore::open("postgres://app@127.0.0.1/orders").await.unwrap();
    /// let store = Store::new(pg);
    /// # drop(store);
    /// # }
    /// ```
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        // One plain connection first: a database that is not there fails
        // at once, rather than after the pool's acquire timeout.
        let probe = PgConnection::connect(url)
            .await
            .map_err(|e| StoreError::Database {
                store: redact(url),
                doing: "connecting".to_owned(),
                source: Box::new(e),
            })?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await
            .map_err(|e| StoreError::Database {
                store: redact(url),
                doing: "connecting".to_owned(),
                source: Box::new(e),
            })?;
        PostgresStore::from_pool(pool, url).await
    }

    /// A store on an existing pool (`url` names it in messages), migrated.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::PostgresStore;
    /// let url = "postgres://app@127.0.0.1/orders";
    /// let pool = sqlx::PgPool::connect(url).await.unwrap();
    /// let pg = PostgresStore::from_pool(pool, url).await.unwrap();
    /// # drop(pg);
    /// # }
    /// ```
    pub async fn from_pool(pool: PgPool, url: &str) -> Result<Self, StoreError> {
        let leases = PgPoolOptions::new()
            .max_connections(LEASE_CONNECTIONS)
            .connect_lazy_with((*pool.connect_options()).clone());
        let store = PostgresStore {
            pool,
            leases,
            name: redact(url),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The pool, for the application's own tables in the same database.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use workflow_runtime::durable::PostgresStore;
    /// let pg = PostgresStore::open("postgres://app@127.0.0.1/orders").await.unwrap();
    /// sqlx::query("SELECT 1").execute(pg.pool()).await.unwrap();
    /// # }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How PostgreSQL reads a page of runs `filter` asks for (`EXPLAIN`,
    /// one line per plan node): whether the listing indexes serve it, for
    /// an operator checking a slow page.
    ///
    /// ```no_run
    /// # use workflow_runtime::durable::{PostgresStore, RunFilter, RunStatus};
    /// # async fn f(store: PostgresStore) -> Result<(), workflow_runtime::durable::StoreError> {
    /// let plan = store.explain_runs(&RunFilter::new().status(RunStatus::Failed)).await?;
    /// assert!(plan.contains("workflow_runs_listing"), "{plan}");
    /// # Ok(()) }
    /// ```
    pub async fn explain_runs(&self, filter: &RunFilter) -> Result<String, StoreError> {
        let lines: Vec<String> = sql::list_runs::<sqlx::Postgres>("EXPLAIN ", filter)
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("explaining a page of runs", e))?;
        Ok(lines.join("\n"))
    }

    fn error(&self, doing: impl Into<String>, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            store: self.name.clone(),
            doing: doing.into(),
            source: Box::new(source),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let fail = |e| self.error("migrating the journal", e);
        let mut conn = self.pool.acquire().await.map_err(fail)?;
        let mut tx = conn.begin().await.map_err(fail)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS workflow_schema (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let version: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM workflow_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
        let version = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Unsupported {
                store: self.name.clone(),
                what: format!(
                    "schema version {version} is newer than this library's {}",
                    MIGRATIONS.len()
                ),
            });
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            sqlx::raw_sql(*migration)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(format!("applying migration {}", i + 1), e))?;
            sqlx::query("INSERT INTO workflow_schema (version) VALUES ($1)")
                .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(format!("applying migration {}", i + 1), e))?;
        }
        tx.commit().await.map_err(fail)
    }

    /// Begins a transaction for a transactional step.
    pub(crate) async fn begin(&self) -> Result<PgTx, StoreError> {
        self.pool
            .begin()
            .await
            .map_err(|e| self.error("beginning a step's transaction", e))
    }

    /// Locks the run's row in `conn`'s transaction while `fence` holds it,
    /// so no claim can take the run over before the transaction ends; a
    /// fence that no longer holds is [`StoreError::LeaseLost`].
    pub(crate) async fn hold(
        &self,
        conn: &mut PgConnection,
        run: &str,
        fence: &Fence,
    ) -> Result<(), StoreError> {
        let held = sqlx::query(
            "SELECT 1 FROM workflow_runs WHERE id = $1 AND owner = $2 AND epoch = $3 FOR SHARE",
        )
        .bind(run)
        .bind(&fence.owner)
        .bind(fence.epoch)
        .fetch_optional(conn)
        .await
        .map_err(|e| self.error(format!("checking the lease on run \"{run}\""), e))?;
        match held {
            Some(_) => Ok(()),
            None => Err(StoreError::LeaseLost {
                run: run.to_owned(),
                owner: fence.owner.clone(),
            }),
        }
    }

    /// Records a step's failed attempts through `conn`.
    async fn failure_in(
        &self,
        conn: &mut PgConnection,
        run: &str,
        failure: &FailureRow,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO workflow_failures (run_id, step_index, attempts, failed_ms, error)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (run_id, step_index) DO UPDATE SET
             attempts = excluded.attempts, failed_ms = excluded.failed_ms,
             error = excluded.error",
        )
        .bind(run)
        .bind(i64::from(failure.index))
        .bind(i64::from(failure.attempts))
        .bind(failure.failed_ms)
        .bind(&failure.error)
        .execute(conn)
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
    }

    /// Ends a running run through `conn`.
    async fn finish_in(
        &self,
        conn: &mut PgConnection,
        run: &str,
        end: &RunEnd,
    ) -> Result<bool, StoreError> {
        let (status, output, error, step) = end.columns();
        let done = sqlx::query(
            "UPDATE workflow_runs SET status = $1, output = $2, error = $3, failed_step = $4,
             updated_ms = $5, owner = NULL, waiting = NULL, wake_ms = NULL
             WHERE id = $6 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(output)
        .bind(error)
        .bind(step)
        .bind(now_ms())
        .bind(run)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.error(format!("ending run \"{run}\""), e))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        // A parent waiting for this child wakes, due at once.
        sqlx::query(
            "UPDATE workflow_runs SET wake_ms = $1, lease_until_ms = 0
             WHERE id = (SELECT parent FROM workflow_runs WHERE id = $2) AND waiting = $3",
        )
        // Due at once, by any clock.
        .bind(i64::MIN)
        .bind(run)
        .bind(super::journal::awaiting_child(run))
        .execute(conn)
        .await
        .map_err(|e| self.error(format!("waking the parent of run \"{run}\""), e))?;
        Ok(true)
    }

    /// The step's row, read inside `conn`'s transaction.
    pub(crate) async fn step_in(
        &self,
        conn: &mut PgConnection,
        run: &str,
        index: u32,
    ) -> Result<Option<StepRow>, StoreError> {
        let row = sqlx::query(
            "SELECT step_index, title, output, attempts, started_ms, ended_ms
             FROM workflow_steps WHERE run_id = $1 AND step_index = $2",
        )
        .bind(run)
        .bind(i64::from(index))
        .fetch_optional(conn)
        .await
        .map_err(|e| self.error(format!("reading step {index} of run \"{run}\""), e))?;
        row.map(|row| step_row(run, &row)).transpose()
    }

    /// Journals a step through `conn` (a transaction's, or the pool's).
    pub(crate) async fn record_step_in(
        &self,
        conn: &mut PgConnection,
        run: &str,
        step: &StepRow,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO workflow_steps
             (run_id, step_index, title, output, attempts, started_ms, ended_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run)
        .bind(i64::from(step.index))
        .bind(&step.title)
        .bind(&step.output)
        .bind(i64::from(step.attempts))
        .bind(step.started_ms)
        .bind(step.ended_ms)
        .execute(conn)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict {
                run: run.to_owned(),
                index: step.index,
            }),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(StoreError::NoSuchRun(run.to_owned()))
            }
            Err(e) => Err(self.error(
                format!("journaling step {} of run \"{run}\"", step.index),
                e,
            )),
        }
    }
}

fn count(run: &str, row: &PgRow, name: &str) -> Result<u32, StoreError> {
    let n: i64 = row.try_get(name).map_err(|e| corrupt(run, e))?;
    u32::try_from(n).map_err(|_| corrupt(run, format!("{name} {n} is out of range")))
}

fn run_row(row: &PgRow) -> Result<RunRow, StoreError> {
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
        events: count(&id, row, "events")?,
        id,
    })
}

fn step_row(run: &str, row: &PgRow) -> Result<StepRow, StoreError> {
    let get = |e: sqlx::Error| corrupt(run, e);
    Ok(StepRow {
        index: count(run, row, "step_index")?,
        title: row.try_get("title").map_err(get)?,
        output: row.try_get("output").map_err(get)?,
        attempts: count(run, row, "attempts")?,
        started_ms: row.try_get("started_ms").map_err(get)?,
        ended_ms: row.try_get("ended_ms").map_err(get)?,
    })
}

/// Inserts `run` unless a run with its id exists (a start, or a tick's
/// run inside the schedule's transaction).
async fn insert_new<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    run: &RunRow,
) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    sqlx::query(
        "INSERT INTO workflow_runs
         (id, workflow, fingerprint, status, input, created_ms, updated_ms, codec,
          waiting, wake_ms, parent, trace)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&run.id)
    .bind(&run.workflow)
    .bind(&run.fingerprint)
    .bind(run.status.as_str())
    .bind(&run.input)
    .bind(run.created_ms)
    .bind(run.updated_ms)
    .bind(&run.codec)
    .bind(&run.waiting)
    .bind(run.wake_ms)
    .bind(&run.parent)
    .bind(&run.trace)
    .execute(executor)
    .await
}

impl Backend for PostgresStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        Box::pin(async move {
            let done = insert_new(&self.pool, run)
                .await
                .map_err(|e| self.error(format!("starting run \"{}\"", run.id), e))?;
            if done.rows_affected() == 1 {
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
            let row = sqlx::query("SELECT * FROM workflow_runs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(format!("reading run \"{id}\""), e))?;
            row.as_ref().map(run_row).transpose()
        })
    }

    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT step_index, title, output, attempts, started_ms, ended_ms
                 FROM workflow_steps WHERE run_id = $1 ORDER BY step_index",
            )
            .bind(run)
            .fetch_all(&self.pool)
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
            let mut conn = self.pool.acquire().await.map_err(|e| {
                self.error(
                    format!("journaling step {} of run \"{run}\"", step.index),
                    e,
                )
            })?;
            self.record_step_in(&mut conn, run, step).await
        })
    }

    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(|e| self.error(format!("journaling a failure of run \"{run}\""), e))?;
            self.failure_in(&mut conn, run, failure).await
        })
    }

    fn record_failure_fenced<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let doing = format!("journaling a failure of run \"{run}\"");
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            self.hold(&mut tx, run, fence).await?;
            self.failure_in(&mut tx, run, failure).await?;
            tx.commit().await.map_err(|e| self.error(doing, e))
        })
    }

    fn failures<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<FailureRow>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT step_index, attempts, failed_ms, error FROM workflow_failures
                 WHERE run_id = $1 ORDER BY step_index",
            )
            .bind(run)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(format!("reading the failures of run \"{run}\""), e))?;
            rows.iter()
                .map(|row| {
                    Ok(FailureRow {
                        index: count(run, row, "step_index")?,
                        attempts: count(run, row, "attempts")?,
                        failed_ms: row.try_get("failed_ms").map_err(|e| corrupt(run, e))?,
                        error: row.try_get("error").map_err(|e| corrupt(run, e))?,
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
            let mut conn = self
                .pool
                .acquire()
                .await
                .map_err(|e| self.error(format!("ending run \"{run}\""), e))?;
            if self.finish_in(&mut conn, run, end).await? {
                return Ok(true);
            }
            match self.run(run).await? {
                Some(_) => Ok(false),
                None => Err(StoreError::NoSuchRun(run.to_owned())),
            }
        })
    }

    /// The row and the end in one transaction, fenced by `fence` when
    /// there is one: one commit, where two writes would wait for two.
    fn finish_run_with<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
        last: Option<&'a StepRow>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let doing = format!("ending run \"{run}\"");
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            if let Some(fence) = fence {
                self.hold(&mut tx, run, fence).await?;
            }
            if let Some(step) = last {
                // A row there already (an earlier drive's) is as good.
                sqlx::query(
                    "INSERT INTO workflow_steps
                     (run_id, step_index, title, output, attempts, started_ms, ended_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (run_id, step_index) DO NOTHING",
                )
                .bind(run)
                .bind(i64::from(step.index))
                .bind(&step.title)
                .bind(&step.output)
                .bind(i64::from(step.attempts))
                .bind(step.started_ms)
                .bind(step.ended_ms)
                .execute(&mut *tx)
                .await
                .map_err(|e| match e {
                    sqlx::Error::Database(e) if e.is_foreign_key_violation() => {
                        StoreError::NoSuchRun(run.to_owned())
                    }
                    e => self.error(
                        format!("journaling step {} of run \"{run}\"", step.index),
                        e,
                    ),
                })?;
            }
            let ended = self.finish_in(&mut tx, run, end).await?;
            tx.commit().await.map_err(|e| self.error(&doing, e))?;
            if ended || fence.is_some() {
                return Ok(ended);
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
            // Parked with why, so the other runs resume.
            for (id, error) in unreadable {
                sqlx::query(
                    "UPDATE workflow_runs SET status = 'stuck', error = $1, updated_ms = $2, owner = NULL
                 WHERE id = $3 AND status = 'running'",
                )
                .bind(error.to_string())
                .bind(now_ms())
                .bind(&id)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(format!("parking run \"{id}\""), e))?;
            }
            Ok(running)
        })
    }

    fn finished<'a>(
        &'a self,
        runs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT id FROM workflow_runs WHERE id = ANY($1) AND status <> 'running'",
            )
            .bind(runs)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("reading which runs ended", e))
        })
    }

    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE workflow_runs SET status = 'running', error = NULL, failed_step = NULL,
                 updated_ms = $1, owner = NULL, lease_until_ms = 0
                 WHERE id = $2 AND status IN ('stuck', 'incompatible')",
            )
            .bind(now_ms())
            .bind(run)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(format!("resuming parked run \"{run}\""), e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn suspend<'a>(
        &'a self,
        run: &'a str,
        suspension: Option<&'a Suspension>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let doing = format!("suspending run \"{run}\"");
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            if let Some(fence) = fence {
                self.hold(&mut tx, run, fence).await?;
            }
            let done = match suspension {
                // Let go, leased to nobody until it wakes: claims find it
                // by the lease index once it is due.
                // Its lease runs out when it is due by the database's clock:
                // as long from the database's now as the wake time is from
                // the runner's.
                Some(s) => sqlx::query(concat!(
                    "UPDATE workflow_runs SET waiting = $1, wake_ms = $2, updated_ms = $3,
                     owner = NULL,
                     lease_until_ms = COALESCE(",
                    db_now_ms!(),
                    " + ($2 - $6), 9223372036854775807)
                     WHERE id = $4 AND status = 'running' AND events <= $5
                       AND (cancel IS NULL OR $7)"
                ))
                .bind(&s.waiting)
                .bind(s.wake_ms)
                .bind(now_ms())
                .bind(run)
                .bind(i64::from(s.events_seen))
                .bind(s.now_ms)
                .bind(s.undoing),
                None => sqlx::query(
                    "UPDATE workflow_runs SET waiting = NULL, wake_ms = NULL
                     WHERE id = $1 AND status = 'running'",
                )
                .bind(run),
            }
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(&doing, e))?;
            tx.commit().await.map_err(|e| self.error(doing, e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn send_event<'a>(
        &'a self,
        run: &'a str,
        name: &'a str,
        payload: &'a [u8],
        key: Option<&'a str>,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Sent, StoreError>> {
        Box::pin(async move {
            let doing = format!("sending event \"{name}\" to run \"{run}\"");
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            // The run's row, locked: sends to one run take turns, so two
            // with one key add one event.
            let found: Option<(String, i64)> =
                sqlx::query_as("SELECT status, events FROM workflow_runs WHERE id = $1 FOR UPDATE")
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
                    "SELECT seq FROM workflow_events WHERE run_id = $1 AND dedup_key = $2",
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
            sqlx::query(
                "INSERT INTO workflow_events (run_id, seq, name, payload, dedup_key, sent_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(run)
            .bind(seq)
            .bind(name)
            .bind(payload)
            .bind(key)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(&doing, e))?;
            sqlx::query(
                "UPDATE workflow_runs SET events = $1,
                 wake_ms = CASE WHEN waiting = $2 THEN LEAST(COALESCE(wake_ms, $3), $3)
                     ELSE wake_ms END,
                 lease_until_ms = CASE WHEN waiting = $2 THEN 0 ELSE lease_until_ms END
                 WHERE id = $4",
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
                 WHERE run_id = $1 ORDER BY seq",
            )
            .bind(run)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(format!("reading the events of run \"{run}\""), e))?;
            rows.iter()
                .map(|row| {
                    let get = |e: sqlx::Error| corrupt(run, e);
                    Ok(EventRow {
                        seq: count(run, row, "seq")?,
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
                "UPDATE workflow_runs SET cancel = COALESCE(cancel, $1),
                 wake_ms = CASE WHEN waiting IS NOT NULL THEN LEAST(COALESCE(wake_ms, $2), $2)
                     ELSE wake_ms END,
                 lease_until_ms = CASE WHEN waiting IS NOT NULL THEN 0 ELSE lease_until_ms END
                 WHERE id = $3 AND status = 'running'",
            )
            .bind(reason)
            .bind(now_ms)
            .bind(run)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(&doing, e))?;
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM workflow_runs WHERE id = $1")
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
            sqlx::query_scalar(
                "SELECT id FROM workflow_runs
                 WHERE id = ANY($1) AND status = 'running' AND cancel IS NOT NULL",
            )
            .bind(runs)
            .fetch_all(&self.leases)
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
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            let done = sqlx::query(
                "UPDATE workflow_runs SET status = 'running', error = NULL, failed_step = NULL,
                 cancel = NULL, waiting = NULL, wake_ms = NULL, updated_ms = $1,
                 owner = NULL, lease_until_ms = 0
                 WHERE id = $2 AND status = 'failed'",
            )
            .bind(now_ms())
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(&doing, e))?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            let drop: Vec<i64> = redrive.drop.iter().map(|&i| i64::from(i)).collect();
            sqlx::query("DELETE FROM workflow_steps WHERE run_id = $1 AND step_index = ANY($2)")
                .bind(run)
                .bind(drop)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(&doing, e))?;
            sqlx::query("DELETE FROM workflow_failures WHERE run_id = $1 AND step_index >= $2")
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
            let waiting: Vec<(String, i64, Option<i64>)> = sqlx::query_as(concat!(
                "SELECT workflow, COUNT(*), MIN(created_ms) FROM workflow_runs
                 WHERE status = 'running' AND lease_until_ms < ",
                db_now_ms!(),
                "
                 GROUP BY workflow"
            ))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("counting waiting runs", e))?;
            for (workflow, n, oldest) in waiting {
                let counts = counts.entry(workflow).or_default();
                counts.waiting = u64::try_from(n).unwrap_or(0);
                counts.oldest_waiting_ms = oldest;
            }
            Ok(counts)
        })
    }

    fn runs<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<Vec<RunRow>, StoreError>> {
        Box::pin(async move {
            let rows = sql::list_runs::<sqlx::Postgres>("", filter)
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
            let fail = |e| self.error(doing, e);
            let mut tx = self.pool.begin().await.map_err(fail)?;
            // One instance purges at a time; the others find the lock
            // taken and leave the batch to it.
            let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(PURGE_LOCK)
                .fetch_one(&mut *tx)
                .await
                .map_err(fail)?;
            if !mine {
                return Ok(0);
            }
            let picked: Vec<String> = sql::purge_ids::<sqlx::Postgres>(purge)
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await
                .map_err(fail)?;
            // Locked and read again: a run redriven since the pick is
            // running, and stays; a redrive after this waits, then finds
            // the run gone.
            let ids: Vec<String> = sqlx::query_scalar(concat!(
                "SELECT id FROM workflow_runs WHERE id = ANY($1) AND status IN (",
                sql::ended!(),
                ") FOR UPDATE"
            ))
            .bind(&picked)
            .fetch_all(&mut *tx)
            .await
            .map_err(fail)?;
            for delete in sql::DELETE_RUNS {
                sqlx::query(delete)
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
            }
            tx.commit().await.map_err(fail)?;
            Ok(ids.len() as u64)
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn leases(&self) -> bool {
        true
    }

    fn claim<'a>(
        &'a self,
        owner: &'a str,
        workflows: &'a [(String, String)],
        limit: u32,
        (now_ms, until_ms): (i64, i64),
        orphans_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, StoreError>> {
        let (names, fingerprints): (Vec<&str>, Vec<&str>) = workflows
            .iter()
            .map(|(name, fingerprint)| (name.as_str(), fingerprint.as_str()))
            .unzip();
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "UPDATE workflow_runs r
                 SET owner = $1, epoch = r.epoch + 1, waiting = NULL, wake_ms = NULL,
                     lease_until_ms = ",
                db_now_ms!(),
                " + $2
                 WHERE r.id IN (
                     SELECT id FROM workflow_runs
                     WHERE status = 'running' AND lease_until_ms < ",
                db_now_ms!(),
                "
                       AND ((workflow, fingerprint) IN (SELECT * FROM unnest($3::text[], $4::text[]))
                            OR (workflow = ANY($3::text[])
                                AND GREATEST(lease_until_ms, created_ms) < ",
                db_now_ms!(),
                " - $6))
                     ORDER BY created_ms LIMIT $5
                     FOR UPDATE SKIP LOCKED)
                 RETURNING r.*"
            ))
            .bind(owner)
            .bind(until_ms - now_ms)
            .bind(names)
            .bind(fingerprints)
            .bind(i64::from(limit))
            .bind(orphans_ms)
            .fetch_all(&self.leases)
            .await
            .map_err(|e| self.error(format!("claiming runs for {owner}"), e))?;
            rows.iter().map(|row| claimed(owner, row)).collect()
        })
    }

    fn claim_run<'a>(
        &'a self,
        owner: &'a str,
        id: &'a str,
        (now_ms, until_ms): (i64, i64),
    ) -> BoxFuture<'a, Result<Option<Claimed>, StoreError>> {
        Box::pin(async move {
            // A live lease is never taken over, not even from `owner`
            // itself: its driver is running the run.
            let row = sqlx::query(concat!(
                "UPDATE workflow_runs r
                 SET owner = $1, epoch = r.epoch + 1, waiting = NULL, wake_ms = NULL,
                     lease_until_ms = ",
                db_now_ms!(),
                " + $2
                 WHERE r.id IN (
                     SELECT id FROM workflow_runs
                     WHERE id = $3 AND status = 'running' AND lease_until_ms < ",
                db_now_ms!(),
                "
                     FOR UPDATE SKIP LOCKED)
                 RETURNING r.*"
            ))
            .bind(owner)
            .bind(until_ms - now_ms)
            .bind(id)
            .fetch_optional(&self.leases)
            .await
            .map_err(|e| self.error(format!("claiming run \"{id}\" for {owner}"), e))?;
            row.map(|row| claimed(owner, &row)).transpose()
        })
    }

    fn renew<'a>(
        &'a self,
        owner: &'a str,
        runs: &'a [String],
        (now_ms, until_ms): (i64, i64),
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let held = sqlx::query_scalar(concat!(
                "UPDATE workflow_runs SET lease_until_ms = ",
                db_now_ms!(),
                " + $2
                 WHERE owner = $1 AND status = 'running' AND id = ANY($3)
                 RETURNING id"
            ))
            .bind(owner)
            .bind(until_ms - now_ms)
            .bind(runs)
            .fetch_all(&self.leases)
            .await
            .map_err(|e| self.error(format!("renewing the leases of {owner}"), e))?;
            Ok(held)
        })
    }

    fn release<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE workflow_runs SET owner = NULL, lease_until_ms = 0
                 WHERE owner = $1 AND status = 'running'",
            )
            .bind(owner)
            .execute(&self.leases)
            .await
            .map_err(|e| self.error(format!("releasing the leases of {owner}"), e))?;
            Ok(done.rows_affected())
        })
    }

    fn holders(
        &self,
        _: i64,
    ) -> BoxFuture<'_, Result<std::collections::BTreeMap<String, u64>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, i64)> = sqlx::query_as(concat!(
                "SELECT owner, COUNT(*) FROM workflow_runs
                 WHERE status = 'running' AND owner IS NOT NULL AND lease_until_ms >= ",
                db_now_ms!(),
                "
                 GROUP BY owner"
            ))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("reading who holds leases", e))?;
            Ok(rows
                .into_iter()
                .map(|(owner, n)| (owner, u64::try_from(n).unwrap_or(0)))
                .collect())
        })
    }

    fn next_tick<'a>(
        &'a self,
        workflow: &'a str,
        first: i64,
    ) -> BoxFuture<'a, Result<i64, StoreError>> {
        Box::pin(async move {
            let doing = format!("reading the next tick of {workflow}");
            sqlx::query(
                "INSERT INTO workflow_schedules (workflow, next_tick_ms) VALUES ($1, $2)
                 ON CONFLICT (workflow) DO NOTHING",
            )
            .bind(workflow)
            .bind(first)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(&doing, e))?;
            sqlx::query_scalar("SELECT next_tick_ms FROM workflow_schedules WHERE workflow = $1")
                .bind(workflow)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.error(doing, e))
        })
    }

    fn advance_tick<'a>(
        &'a self,
        workflow: &'a str,
        from: i64,
        to: i64,
        run: Option<&'a RunRow>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let doing = format!("advancing the schedule of {workflow}");
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            // A paused schedule's ticks pass and fire nothing.
            let paused: Option<bool> = sqlx::query_scalar(
                "UPDATE workflow_schedules SET next_tick_ms = $3
                 WHERE workflow = $1 AND next_tick_ms = $2 RETURNING paused",
            )
            .bind(workflow)
            .bind(from)
            .bind(to)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.error(&doing, e))?;
            let won = paused.is_some();
            if paused == Some(false)
                && let Some(run) = run
            {
                let going: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM workflow_runs WHERE workflow = $1 AND status = 'running'",
                )
                .bind(workflow)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.error(&doing, e))?;
                if going == 0 {
                    insert_new(&mut *tx, run)
                        .await
                        .map_err(|e| self.error(&doing, e))?;
                    sqlx::query(
                        "UPDATE workflow_schedules SET last_tick_ms = $2 WHERE workflow = $1",
                    )
                    .bind(workflow)
                    .bind(from)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(&doing, e))?;
                }
            }
            tx.commit().await.map_err(|e| self.error(doing, e))?;
            Ok(won)
        })
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleRow>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, i64, Option<i64>, bool)> = sqlx::query_as(
                "SELECT workflow, next_tick_ms, last_tick_ms, paused FROM workflow_schedules
                 ORDER BY workflow",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("reading the schedules", e))?;
            Ok(rows
                .into_iter()
                .map(|(workflow, next, last, paused)| ScheduleRow {
                    workflow,
                    next_tick_ms: (next != i64::MAX).then_some(next),
                    last_tick_ms: last,
                    paused,
                })
                .collect())
        })
    }

    fn pause_schedule<'a>(
        &'a self,
        workflow: &'a str,
        paused: bool,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE workflow_schedules SET paused = $2 WHERE workflow = $1")
                .bind(workflow)
                .bind(paused)
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(format!("pausing the schedule of {workflow}"), e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn record_step_fenced<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let doing = format!("journaling step {} of run \"{run}\"", step.index);
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            self.hold(&mut tx, run, fence).await?;
            self.record_step_in(&mut tx, run, step).await?;
            tx.commit().await.map_err(|e| self.error(doing, e))
        })
    }

    fn finish_run_fenced<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let doing = format!("ending run \"{run}\"");
            let mut tx = self.pool.begin().await.map_err(|e| self.error(&doing, e))?;
            self.hold(&mut tx, run, fence).await?;
            let ended = self.finish_in(&mut tx, run, end).await?;
            tx.commit().await.map_err(|e| self.error(doing, e))?;
            Ok(ended)
        })
    }
}

/// A claimed run from its row.
fn claimed(owner: &str, row: &PgRow) -> Result<Claimed, StoreError> {
    let run = run_row(row)?;
    let epoch: i64 = row.try_get("epoch").map_err(|e| corrupt(&run.id, e))?;
    Ok(Claimed {
        run,
        fence: Fence {
            owner: owner.to_owned(),
            epoch,
        },
    })
}

fn postgres_of(store: &Store) -> Result<&PostgresStore, StoreError> {
    store.as_postgres().ok_or_else(|| StoreError::Unsupported {
        store: store.describe(),
        what: "a step that takes a `PgTx` needs the PostgreSQL store".to_owned(),
    })
}

impl super::step::Transaction for PgTx {
    /// Each step's transaction is its own, on a connection of the pool's.
    type Held = Box<PgTx>;

    fn begin<'a>(
        store: &'a Store,
        run: &'a str,
        index: u32,
    ) -> BoxFuture<'a, super::step::Begun<Box<PgTx>>> {
        Box::pin(async move {
            let pg = postgres_of(store)?;
            let mut tx = Box::new(pg.begin().await?);
            let recorded = pg.step_in(&mut tx, run, index).await?;
            Ok((tx, recorded))
        })
    }

    fn commit_with<'a>(
        mut held: Box<PgTx>,
        store: &'a Store,
        run: &'a str,
        row: StepRow,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let pg = postgres_of(store)?;
            if let Some(fence) = fence {
                pg.hold(&mut held, run, fence).await?;
            }
            pg.record_step_in(&mut held, run, &row).await?;
            held.commit()
                .await
                .map_err(|e| pg.error(format!("committing step {} of run \"{run}\"", row.index), e))
        })
    }
}
