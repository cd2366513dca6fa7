//! Group commit: the journal writes of concurrent runs share one
//! transaction, so one sync of the file.
//!
//! A write joins the store's queue; the first to find no batch being
//! written spawns the task that writes batches until the queue is empty.
//! While one batch syncs, the next gathers. A batch is a handful of
//! statements however many runs it holds (one multi-row INSERT for new
//! runs, one for steps, one UPDATE for ends, one for the parents they
//! wake): each statement crosses to sqlx's SQLite thread and back, and
//! that hand-off, more than the sync, is what a statement per row pays.
//!
//! Each waiter wakes after the COMMIT that holds its row, with its own
//! outcome, so a step's row is durable before its `.await` returns, as
//! with a transaction per write. The batch is written by a spawned task,
//! not by the waiter that started it: a waiter dropped mid-commit (a
//! timeout, a cancelled run) leaves the others' writes whole.
//!
//! A transactional step's writes share the batch too. The step asks for
//! the batch's transaction ([`Write::Lend`]); once the batch's own writes
//! are made, the writer lends it, under a `SAVEPOINT`, to each step that
//! asked, in turn. The step's body writes through it, the step adds its
//! row, and gives it back ([`LentTx`]): kept, the savepoint is released
//! into the batch; given back any other way (the body failed, or the step
//! was dropped midway), it is rolled back to the savepoint, and the
//! others' writes stand. Then one COMMIT holds them all.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{QueryBuilder, Row, Sqlite};
use tokio::sync::oneshot;

use super::SqliteStore;
use crate::durable::journal::awaiting_child;
use crate::durable::store::{RunEnd, RunRow, StepRow, StoreError};

/// Most writes in one transaction. It bounds each statement's parameters
/// (12 per run row: 3,072, far under SQLite's 32,766) and how long a
/// reader waits for the one connection behind a batch.
const MOST: usize = 256;

/// One journal write that may share a transaction with others.
// Moved into the queue once and out into its batch, never kept: boxing
// the run row would cost each start an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Write {
    /// A new run's row; `true` if written, `false` if its id was taken.
    Start(RunRow),
    /// A completed step's row.
    Step { run: String, row: StepRow },
    /// A run's end; `true` if it was running and is now ended.
    Finish {
        run: String,
        end: RunEnd,
        now_ms: i64,
    },
    /// A statement of the application's own ([`SqliteStore::execute`]),
    /// taken when its batch runs it.
    Execute(Option<AppWrite>),
    /// A transactional step's turn at the batch's transaction, taken when
    /// the batch lends it; `1` if the step kept its writes.
    Lend(Option<oneshot::Sender<LentTx>>),
}

/// A statement of the application's own, with its arguments bound.
type AppWrite = Query<'static, Sqlite, SqliteArguments>;

impl Write {
    /// What the write was doing, for its error.
    fn doing(&self) -> String {
        match self {
            Write::Start(row) => format!("starting run \"{}\"", row.id),
            Write::Step { run, row } => format!("journaling step {} of run \"{run}\"", row.index),
            Write::Finish { run, .. } => format!("ending run \"{run}\""),
            Write::Execute(_) => "executing a write of the application's".to_owned(),
            Write::Lend(_) => "lending the store's transaction to a transactional step".to_owned(),
        }
    }
}

/// What one write came to: the rows it wrote (for a start or an end, 1
/// if it took).
type Outcome = Result<u64, StoreError>;

struct Pending {
    write: Write,
    done: oneshot::Sender<Outcome>,
}

/// The writes waiting for the next batch, and whether a task is writing.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
    lends: super::lend_watch::LendWatch,
    transactions: AtomicU64,
    writes: AtomicU64,
}

/// How the store's journal writes were grouped: transactions committed,
/// and the writes they held (new runs, steps, ends, the application's
/// statements given to [`SqliteStore::execute`], and the transactional
/// steps each lent its transaction, kept or not). Writes over
/// transactions is how many writes shared each sync.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use workflow_runtime::durable::{Backend, RunRow, SqliteOptions, SqliteStore};
/// let dir = std::env::temp_dir().join(format!("wf-doc-commits-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::open(SqliteOptions::new(dir.join("runs.db"))).await.unwrap();
/// let (a, b) = (RunRow::new("a", "Pay", "f", b"1".to_vec()), RunRow::new("b", "Pay", "f", b"2".to_vec()));
/// let (first, second) = tokio::join!(store.insert_run(&a), store.insert_run(&b));
/// first.unwrap();
/// second.unwrap();
/// let commits = store.commits();
/// assert_eq!((commits.transactions, commits.writes), (1, 2));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Commits {
    /// Journal transactions committed.
    pub transactions: u64,
    /// Writes they held.
    pub writes: u64,
}

#[derive(Default)]
struct State {
    pending: Vec<Pending>,
    writing: bool,
    /// The task holding the batch's transaction, lent: a journal write it
    /// makes would queue for the batch after, which waits for it.
    lent_to: Option<tokio::task::Id>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned queue is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Queue")
            .field("pending", &state.pending.len())
            .field("writing", &state.writing)
            .finish()
    }
}

/// The task writing the queue's batches, as it is spawned. However it
/// ends, it marks the queue idle; cut short (its runtime shut down, even
/// before it first ran), it answers what is left with that, so no waiter
/// waits forever and the next write starts a writer anew.
struct Writing {
    store: SqliteStore,
    finished: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.finished {
            let left = {
                let mut state = self.store.queue.lock();
                state.writing = false;
                std::mem::take(&mut state.pending)
            };
            drop(Batch::of(left, &self.store.path));
        }
    }
}

/// Writes taken from the queue, each answered once: with its outcome by
/// [`SqliteStore::answer`], or, dropped unanswered (the task writing it
/// cut short), with an error saying it was never known to be made. So a
/// write's context is built only when it fails.
struct Batch<'a> {
    writes: Vec<Write>,
    waiters: Vec<oneshot::Sender<Outcome>>,
    path: &'a std::path::Path,
}

impl<'a> Batch<'a> {
    fn of(pending: Vec<Pending>, path: &'a std::path::Path) -> Self {
        let (writes, waiters) = pending.into_iter().map(|p| (p.write, p.done)).unzip();
        Batch {
            writes,
            waiters,
            path,
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        for (write, waiter) in self.writes.iter().zip(self.waiters.drain(..)) {
            let _ = waiter.send(Err(StoreError::Database {
                store: self.path.display().to_string(),
                doing: write.doing(),
                source: "the store's writer stopped (its runtime shut down, or it panicked) \
                         before the write was known to be committed"
                    .into(),
            }));
        }
    }
}

/// A batch's failure, handed to each of its writes' errors.
#[derive(Clone, Debug)]
struct Shared(Arc<sqlx::Error>);

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Whether `error` failed its own statement and left the transaction as it
/// was: a constraint, a trigger's `RAISE(ABORT)`, a type or a missing
/// table. SQLite undoes only that statement, and the batch goes on. The
/// errors after which SQLite may have rolled the whole transaction back
/// (a full disk, an I/O error, no memory, a busy or interrupted database,
/// a corrupt file), and errors not from the database, fail the batch.
fn fails_alone(error: &sqlx::Error) -> bool {
    const BUSY: i32 = 5;
    const NOMEM: i32 = 7;
    const INTERRUPT: i32 = 9;
    const IOERR: i32 = 10;
    const CORRUPT: i32 = 11;
    const FULL: i32 = 13;
    let sqlx::Error::Database(e) = error else {
        return false;
    };
    // Extended result codes keep the primary code in their low byte.
    match e.code().and_then(|code| code.parse::<i32>().ok()) {
        Some(code) => !matches!(
            code & 0xff,
            BUSY | NOMEM | INTERRUPT | IOERR | CORRUPT | FULL
        ),
        None => false,
    }
}

/// Binds a payload as text when it is UTF-8, as a blob otherwise (as
/// [`super::payload`] does for one row).
fn bind_payload(
    values: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    bytes: &[u8],
) {
    match std::str::from_utf8(bytes) {
        Ok(text) => values.push_bind(text.to_owned()),
        Err(_) => values.push_bind(bytes.to_vec()),
    };
}

impl SqliteStore {
    /// How the journal writes made so far were grouped into the writer's
    /// transactions, a `#[step(transactional)]` step lent one counting as
    /// one of its writes (the application's own use of
    /// [`pool`](SqliteStore::pool) is not counted).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::{SqliteOptions, SqliteStore};
    /// # let dir = std::env::temp_dir().join(format!("wf-doc-commits0-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let store = SqliteStore::open(SqliteOptions::new(dir.join("runs.db"))).await.unwrap();
    /// assert_eq!(store.commits().transactions, 0);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub fn commits(&self) -> Commits {
        Commits {
            transactions: self.queue.transactions.load(Ordering::Relaxed),
            writes: self.queue.writes.load(Ordering::Relaxed),
        }
    }

    /// Executes `query`, a write of the application's own tables in the
    /// store's file, in the journal's next transaction: it shares its sync
    /// with the concurrent runs' journal writes, and is durable when this
    /// returns; the rows it changed. A statement that fails (a constraint,
    /// a trigger's abort, a missing table) fails alone, and the batch goes
    /// on; a failure that may have rolled the transaction back (a full
    /// disk, an I/O error) fails the batch, each write with its context.
    ///
    /// Unlike a `#[step(transactional)]` step's transaction, it is one
    /// statement, run when its batch is written, after the `.await` that
    /// made it: a write that must commit with a step's journal row belongs
    /// in that step's transaction. Once called, it is made even if the
    /// caller stops waiting for it.
    ///
    /// Never inside a transactional step: the batch that lent the step its
    /// transaction waits for the step, so the write, which would queue for
    /// the batch after, is refused; write through its `tx`. And the
    /// statement must not end the transaction it shares with other runs
    /// (`OR ROLLBACK`, a trigger's `RAISE(ROLLBACK)`, `COMMIT`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use workflow_runtime::durable::{SqliteOptions, SqliteStore};
    /// # let dir = std::env::temp_dir().join(format!("wf-doc-execute-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let store = SqliteStore::open(SqliteOptions::new(dir.join("runs.db"))).await.unwrap();
    /// sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")
    ///     .execute(store.pool())
    ///     .await
    ///     .unwrap();
    /// let paid = sqlx::query("INSERT INTO orders (id, status) VALUES (?, 'paid')").bind(7_i64);
    /// assert_eq!(store.execute(paid).await.unwrap(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # }
    /// ```
    pub async fn execute(
        &self,
        query: Query<'static, Sqlite, SqliteArguments>,
    ) -> Result<u64, StoreError> {
        self.write(Write::Execute(Some(query))).await
    }

    /// Makes `write` in the next batch; returns once that batch has
    /// committed (or failed).
    pub(super) async fn write(&self, write: Write) -> Outcome {
        let outcome = self.enqueue(write);
        self.outcome(outcome).await
    }

    /// Queues `write` for the next batch, starting the writer if none is
    /// writing: how it went, once that batch has committed (or failed).
    fn enqueue(&self, write: Write) -> oneshot::Receiver<Outcome> {
        let (done, outcome) = oneshot::channel();
        let lead = {
            let mut state = self.queue.lock();
            let here = tokio::task::try_id();
            if here.is_some() && state.lent_to == here {
                drop(state);
                let _ = done.send(Err(StoreError::Unsupported {
                    store: self.path.display().to_string(),
                    what: format!(
                        "{} from inside a transactional step, whose transaction the store's \
                         next batch would wait for: write through the step's `tx`",
                        write.doing()
                    ),
                }));
                return outcome;
            }
            state.pending.push(Pending { write, done });
            !std::mem::replace(&mut state.writing, true)
        };
        if lead {
            let writing = Writing {
                store: self.clone(),
                finished: false,
            };
            tokio::spawn(writing.drain());
        }
        outcome
    }

    /// A queued write's outcome.
    async fn outcome(&self, outcome: oneshot::Receiver<Outcome>) -> Outcome {
        // Every write is answered (see `Batch`); a sender gone unanswered
        // would be a panic between taking a batch and answering it.
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Database {
                store: self.path.display().to_string(),
                doing: "journaling".to_owned(),
                source: "the store's writer failed before it answered".into(),
            })
        })
    }

    /// The next batch's transaction, for a transactional step: lent once
    /// the batch's own writes are made, under a savepoint of the step's.
    pub(super) async fn lend(&self) -> Result<LentTx, StoreError> {
        let (to, lent) = oneshot::channel();
        let done = self.enqueue(Write::Lend(Some(to)));
        match lent.await {
            Ok(mut lent) => {
                lent.done = Some(done);
                if let Some(here) = tokio::task::try_id() {
                    self.queue.lock().lent_to = Some(here);
                    lent.held_by = Some((self.queue.clone(), here));
                }
                Ok(lent)
            }
            // The batch failed before the step's turn: its error says why.
            Err(_) => Err(match self.outcome(done).await {
                Err(error) => error,
                Ok(_) => StoreError::Database {
                    store: self.path.display().to_string(),
                    doing: "beginning a step's transaction".to_owned(),
                    source: "the store's writer ended its batch without lending it".into(),
                },
            }),
        }
    }
}

/// The store's transaction, lent to a transactional step by the batch
/// that holds its writes: the step's body writes through it as through
/// any `SqliteTx` (it derefs to one), and however the step ends, the
/// transaction goes back to the batch, which commits the step's writes
/// with the others' only if the step kept them. So the transactional
/// steps of concurrent runs share one commit, and one sync of the file.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use workflow_runtime::prelude::*;
/// use workflow_runtime::durable::{SqliteOptions, SqliteStore, SqliteTx, Store};
/// use workflow_runtime::host::Runner;
///
/// struct Pay;
///
/// #[workflow(durable)]
/// impl Pay {
///     #[step(given = "paid", transactional)]
///     async fn pay(&self, tx: &mut SqliteTx, cents: i64) -> Result<i64, sqlx::Error> {
///         sqlx::query("INSERT INTO payments (cents) VALUES (?)")
///             .bind(cents)
///             .execute(&mut **tx)
///             .await?;
///         Ok(cents)
///     }
/// }
///
/// let dir = std::env::temp_dir().join(format!("wf-doc-lent-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let sqlite = SqliteStore::open(SqliteOptions::new(dir.join("runs.db"))).await.unwrap();
/// sqlx::query("CREATE TABLE payments (cents INTEGER)")
///     .execute(sqlite.pool())
///     .await
///     .unwrap();
/// let runner = Runner::builder()
///     .store(Store::new(sqlite.clone()))
///     .durable(Pay)
///     .build()
///     .unwrap();
/// let (a, b) = tokio::join!(
///     runner.start(&Pay::ID, "pay-a", 5),
///     runner.start(&Pay::ID, "pay-b", 7),
/// );
/// assert_eq!(a.unwrap().result().await.unwrap(), 5);
/// assert_eq!(b.unwrap().result().await.unwrap(), 7);
/// let total: i64 = sqlx::query_scalar("SELECT SUM(cents) FROM payments")
///     .fetch_one(sqlite.pool())
///     .await
///     .unwrap();
/// assert_eq!(total, 12);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
pub struct LentTx {
    tx: Option<super::SqliteTx>,
    back: Option<oneshot::Sender<Returned>>,
    done: Option<oneshot::Receiver<Outcome>>,
    /// The queue, and the task it knows holds this transaction.
    held_by: Option<(Arc<Queue>, tokio::task::Id)>,
}

/// A lent transaction, back with the batch.
struct Returned {
    tx: super::SqliteTx,
    kept: bool,
}

impl fmt::Debug for LentTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LentTx").finish_non_exhaustive()
    }
}

impl std::ops::Deref for LentTx {
    type Target = super::SqliteTx;
    fn deref(&self) -> &super::SqliteTx {
        self.tx
            .as_ref()
            .expect("a lent transaction is held until given back")
    }
}

impl std::ops::DerefMut for LentTx {
    fn deref_mut(&mut self) -> &mut super::SqliteTx {
        self.tx
            .as_mut()
            .expect("a lent transaction is held until given back")
    }
}

impl Drop for LentTx {
    /// Given back without being kept: the batch rolls the step's writes
    /// back to its savepoint, and commits the others'. Sent, not dropped,
    /// since dropping it would roll the whole batch back.
    fn drop(&mut self) {
        self.let_go();
        if let (Some(tx), Some(back)) = (self.tx.take(), self.back.take()) {
            let _ = back.send(Returned { tx, kept: false });
        }
    }
}

impl LentTx {
    /// The holding task's journal writes queue again, as the batch is
    /// about to have its transaction back.
    fn let_go(&mut self) {
        if let Some((queue, task)) = self.held_by.take() {
            let mut state = queue.lock();
            if state.lent_to == Some(task) {
                state.lent_to = None;
            }
        }
    }

    /// Gives the transaction back with the step's writes kept: `Ok` once
    /// the batch that holds them has committed.
    pub(super) async fn keep(
        mut self,
        store: &SqliteStore,
        doing: String,
    ) -> Result<(), StoreError> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Database {
            store: store.path.display().to_string(),
            doing: doing.clone(),
            source,
        };
        self.let_go();
        let (Some(tx), Some(back), Some(done)) =
            (self.tx.take(), self.back.take(), self.done.take())
        else {
            return Err(failed(
                "the step's transaction was given back already".into(),
            ));
        };
        if back.send(Returned { tx, kept: true }).is_err() {
            return Err(failed(
                "the store's writer stopped while the step held its transaction".into(),
            ));
        }
        match store.outcome(done).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(failed("the batch rolled the step's writes back".into())),
            Err(StoreError::Database { source, .. }) => Err(failed(source)),
            Err(other) => Err(other),
        }
    }
}

impl Writing {
    /// Writes batches until the queue is empty.
    async fn drain(mut self) {
        let store = &self.store;
        loop {
            // Tasks woken by the last commit get to queue their next
            // writes first, while the queue grows: a batch a moment later
            // is a batch fuller, and its statements cost the same.
            let mut queued = store.queue.lock().pending.len();
            for _ in 0..4 {
                tokio::task::yield_now().await;
                let now = store.queue.lock().pending.len();
                if now == queued {
                    break;
                }
                queued = now;
            }
            let batch: Vec<Pending> = {
                let mut state = store.queue.lock();
                if state.pending.is_empty() {
                    state.writing = false;
                    self.finished = true;
                    return;
                }
                let n = state.pending.len().min(MOST);
                state.pending.drain(..n).collect()
            };
            let mut batch = Batch::of(batch, &store.path);
            let committed = store.commit(&mut batch.writes).await.map_err(Arc::new);
            store.answer(&mut batch, committed);
        }
    }
}

impl SqliteStore {
    /// Wakes each waiter with its write's outcome, or with why the
    /// transaction that held it failed.
    fn answer(&self, batch: &mut Batch<'_>, committed: Result<Vec<Outcome>, Arc<sqlx::Error>>) {
        let (writes, waiters) = (&batch.writes, std::mem::take(&mut batch.waiters));
        let outcomes = match committed {
            Ok(outcomes) => {
                self.queue.transactions.fetch_add(1, Ordering::Relaxed);
                self.queue
                    .writes
                    .fetch_add(writes.len() as u64, Ordering::Relaxed);
                outcomes
            }
            Err(error) => {
                let error = Shared(error);
                writes
                    .iter()
                    .map(|write| {
                        Err(StoreError::Database {
                            store: self.path.display().to_string(),
                            doing: write.doing(),
                            source: Box::new(error.clone()),
                        })
                    })
                    .collect()
            }
        };
        for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
            // A waiter that left (its run cancelled) needs no answer.
            let _ = waiter.send(outcome);
        }
    }

    /// Writes `writes` in one transaction: each write's outcome, or why
    /// none of them was made.
    async fn commit(&self, writes: &mut [Write]) -> Result<Vec<Outcome>, sqlx::Error> {
        // Alone, a write that is one statement is its own transaction:
        // no BEGIN and COMMIT to send across (an end may wake a parent
        // too, so it keeps them).
        if let [Write::Start(_) | Write::Step { .. } | Write::Execute(_)] = writes {
            let mut conn = self.pool.acquire().await?;
            return self.write_into(&mut conn, writes).await;
        }
        let mut tx = self.pool.begin().await?;
        let mut outcomes = self.write_into(&mut tx, writes).await?;
        let limit = self.pool.options().get_acquire_timeout();
        for (write, outcome) in writes.iter_mut().zip(&mut outcomes) {
            if let Write::Lend(to) = write
                && let Some(to) = to.take()
            {
                let kept;
                (tx, kept) = lend_to(tx, to, &self.queue.lends, limit).await?;
                *outcome = Ok(u64::from(kept));
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Writes `writes` in `conn`'s transaction: each write's outcome once
    /// it commits, or why none of them can be made.
    async fn write_into(
        &self,
        conn: &mut SqliteConnection,
        writes: &mut [Write],
    ) -> Result<Vec<Outcome>, sqlx::Error> {
        // A lend is answered once the step gives the transaction back.
        let mut outcomes: Vec<Option<Outcome>> = writes
            .iter()
            .map(|write| matches!(write, Write::Lend(_)).then_some(Ok(0)))
            .collect();
        self.app_writes(conn, writes, &mut outcomes).await?;
        let writes = &*writes;
        self.start_runs(conn, writes, &mut outcomes).await?;
        self.add_steps(conn, writes, &mut outcomes).await?;
        end_runs(conn, writes, &mut outcomes).await?;
        Ok(outcomes
            .into_iter()
            .zip(writes)
            .map(|(outcome, write)| {
                outcome.unwrap_or_else(|| {
                    Err(StoreError::Unsupported {
                        store: self.path.display().to_string(),
                        what: format!("{}: no statement wrote it", write.doing()),
                    })
                })
            })
            .collect())
    }

    /// The application's statements, one by one.
    async fn app_writes(
        &self,
        conn: &mut SqliteConnection,
        writes: &mut [Write],
        outcomes: &mut [Option<Outcome>],
    ) -> Result<(), sqlx::Error> {
        for (i, write) in writes.iter_mut().enumerate() {
            let Write::Execute(query) = write else {
                continue;
            };
            let Some(query) = query.take() else { continue };
            outcomes[i] = Some(match query.execute(&mut *conn).await {
                Ok(done) => Ok(done.rows_affected()),
                Err(error) if fails_alone(&error) => Err(self.error(write.doing(), error)),
                Err(error) => return Err(error),
            });
        }
        Ok(())
    }

    /// The new runs, in one INSERT; an id already taken (by an earlier
    /// run, or earlier in this batch) is not written.
    async fn start_runs(
        &self,
        conn: &mut SqliteConnection,
        writes: &[Write],
        outcomes: &mut [Option<Outcome>],
    ) -> Result<(), sqlx::Error> {
        let starts: Vec<(usize, &RunRow)> = writes
            .iter()
            .enumerate()
            .filter_map(|(i, write)| match write {
                Write::Start(row) => Some((i, row)),
                _ => None,
            })
            .collect();
        if starts.is_empty() {
            return Ok(());
        }
        let inserted = match insert_runs(conn, starts.iter().map(|(_, row)| *row)).await {
            Ok(inserted) => inserted,
            Err(error) if fails_alone(&error) => {
                for (i, row) in starts {
                    outcomes[i] = Some(match insert_runs(conn, [row]).await {
                        Ok(ids) => Ok(u64::from(!ids.is_empty())),
                        Err(e) if fails_alone(&e) => {
                            Err(self.error(format!("starting run \"{}\"", row.id), e))
                        }
                        Err(e) => return Err(e),
                    });
                }
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        // Rows go in in order: of two starts of one id, the first wrote it.
        let mut first = HashSet::new();
        for (i, row) in starts {
            outcomes[i] = Some(Ok(u64::from(
                inserted.contains(&row.id) && first.insert(row.id.as_str()),
            )));
        }
        Ok(())
    }

    /// The steps' rows, in one INSERT. A row refused (a second writer of
    /// a step, a run that is gone) sends the batch's steps one by one, so
    /// that only its own write fails.
    async fn add_steps(
        &self,
        conn: &mut SqliteConnection,
        writes: &[Write],
        outcomes: &mut [Option<Outcome>],
    ) -> Result<(), sqlx::Error> {
        let steps: Vec<(usize, &str, &StepRow)> = writes
            .iter()
            .enumerate()
            .filter_map(|(i, write)| match write {
                Write::Step { run, row } => Some((i, run.as_str(), row)),
                _ => None,
            })
            .collect();
        if steps.is_empty() {
            return Ok(());
        }
        match insert_steps(conn, steps.iter().map(|&(_, run, row)| (run, row))).await {
            Ok(()) => {
                for (i, ..) in steps {
                    outcomes[i] = Some(Ok(1));
                }
            }
            Err(error) if fails_alone(&error) => {
                for (i, run, row) in steps {
                    outcomes[i] = Some(match insert_steps(conn, [(run, row)]).await {
                        Ok(()) => Ok(1),
                        Err(e) if fails_alone(&e) => Err(self.step_refused(run, row.index, e)),
                        Err(e) => return Err(e),
                    });
                }
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }
}

/// Lends `tx` to the step waiting on `to` under a savepoint, and takes
/// it back: with the step's writes released into it if the step kept
/// them, rolled back to the savepoint otherwise. A journal write the
/// step makes meanwhile, which would wait for this batch, is refused
/// (`SqliteStore::enqueue`); one made on another task the step waits for
/// cannot be told apart, so the batch waits no longer than `limit`, the
/// store's acquire timeout ([`super::lend_watch`]), then fails.
async fn lend_to(
    mut tx: super::SqliteTx,
    to: oneshot::Sender<LentTx>,
    lends: &super::lend_watch::LendWatch,
    limit: std::time::Duration,
) -> Result<(super::SqliteTx, bool), sqlx::Error> {
    // The step left before its turn.
    if to.is_closed() {
        return Ok((tx, false));
    }
    sqlx::query("SAVEPOINT lent").execute(&mut *tx).await?;
    let (back, returned) = oneshot::channel();
    let lent = LentTx {
        tx: Some(tx),
        back: Some(back),
        done: None,
        held_by: None,
    };
    let Returned { mut tx, kept } = match to.send(lent) {
        Ok(()) => {
            let mut watching = lends.start(limit);
            tokio::select! {
                returned = returned => returned.map_err(|_| {
                    // A lent transaction's drop sends it back: gone
                    // unsent, the batch cannot commit without it.
                    sqlx::Error::Protocol(
                        "a transactional step's transaction went without being given back".into(),
                    )
                })?,
                _ = &mut watching.fired => {
                    return Err(sqlx::Error::Protocol(format!(
                        "a transactional step held the batch's transaction for more than \
                         {limit:?} (the store's acquire timeout)"
                    )));
                }
            }
        }
        // The step left before its turn (its run was cancelled, or a
        // timeout around it fired).
        Err(mut lent) => {
            lent.back = None;
            let tx = lent
                .tx
                .take()
                .expect("an unsent lend holds its transaction");
            Returned { tx, kept: false }
        }
    };
    if !kept {
        sqlx::query("ROLLBACK TO SAVEPOINT lent")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("RELEASE SAVEPOINT lent")
        .execute(&mut *tx)
        .await?;
    Ok((tx, kept))
}

/// Inserts `rows` unless their ids are taken; the ids written.
async fn insert_runs<'r>(
    conn: &mut SqliteConnection,
    rows: impl IntoIterator<Item = &'r RunRow>,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "INSERT INTO workflow_runs
         (id, workflow, fingerprint, status, input, created_ms, updated_ms, codec,
          waiting, wake_ms, parent, trace) ",
    );
    let mut n = 0;
    query.push_values(rows, |mut values, run| {
        n += 1;
        values
            .push_bind(run.id.clone())
            .push_bind(run.workflow.clone())
            .push_bind(run.fingerprint.clone())
            .push_bind(run.status.as_str());
        bind_payload(&mut values, &run.input);
        values
            .push_bind(run.created_ms)
            .push_bind(run.updated_ms)
            .push_bind(run.codec.clone())
            .push_bind(run.waiting.clone())
            .push_bind(run.wake_ms)
            .push_bind(run.parent.clone())
            .push_bind(run.trace.clone());
    });
    query.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
    // One shape per batch size: only the single row's is worth caching.
    let rows = query.build().persistent(n == 1).fetch_all(conn).await?;
    rows.iter().map(|row| row.try_get::<String, _>(0)).collect()
}

/// Inserts the step rows `rows` of their runs.
async fn insert_steps<'r>(
    conn: &mut SqliteConnection,
    rows: impl IntoIterator<Item = (&'r str, &'r StepRow)>,
) -> Result<(), sqlx::Error> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "INSERT INTO workflow_steps
         (run_id, step_index, title, output, attempts, started_ms, ended_ms) ",
    );
    let mut n = 0;
    query.push_values(rows, |mut values, (run, step)| {
        n += 1;
        values
            .push_bind(run.to_owned())
            .push_bind(i64::from(step.index))
            .push_bind(step.title.clone());
        bind_payload(&mut values, &step.output);
        values
            .push_bind(i64::from(step.attempts))
            .push_bind(step.started_ms)
            .push_bind(step.ended_ms);
    });
    query.build().persistent(n == 1).execute(conn).await?;
    Ok(())
}

/// Ends the runs that are still running, in one UPDATE, then wakes the
/// parents waiting for them. A run ended twice in one batch (two drivers
/// racing) is ended by the first; the second finds it ended.
async fn end_runs(
    conn: &mut SqliteConnection,
    writes: &[Write],
    outcomes: &mut [Option<Outcome>],
) -> Result<(), sqlx::Error> {
    let mut ids = HashSet::new();
    let (mut first, mut again) = (Vec::new(), Vec::new());
    for (i, write) in writes.iter().enumerate() {
        if let Write::Finish { run, end, now_ms } = write {
            let end = (i, run.as_str(), end, *now_ms);
            if ids.insert(run.as_str()) {
                first.push(end);
            } else {
                again.push(end);
            }
        }
    }
    end_some(conn, &first, outcomes).await?;
    // One at a time: each row of an UPDATE … FROM must meet a run once.
    for end in again {
        end_some(conn, &[end], outcomes).await?;
    }
    Ok(())
}

/// Ends the distinct runs `ends`, setting each one's outcome, and wakes
/// their waiting parents.
async fn end_some(
    conn: &mut SqliteConnection,
    ends: &[(usize, &str, &RunEnd, i64)],
    outcomes: &mut [Option<Outcome>],
) -> Result<(), sqlx::Error> {
    if ends.is_empty() {
        return Ok(());
    }
    let mut query = QueryBuilder::<Sqlite>::new(
        "UPDATE workflow_runs SET status = v.column2, output = v.column3, error = v.column4,
         failed_step = v.column5, updated_ms = v.column6, waiting = NULL, wake_ms = NULL
         FROM (",
    );
    query.push_values(ends, |mut values, &(_, run, end, now_ms)| {
        let (status, output, error, step) = end.columns();
        values.push_bind(run.to_owned()).push_bind(status.as_str());
        match output {
            Some(bytes) => bind_payload(&mut values, bytes),
            None => {
                values.push_bind(None::<Vec<u8>>);
            }
        }
        values
            .push_bind(error.map(str::to_owned))
            .push_bind(step.map(str::to_owned))
            .push_bind(now_ms);
    });
    query.push(
        ") AS v WHERE workflow_runs.id = v.column1 AND workflow_runs.status = 'running'
         RETURNING workflow_runs.id, workflow_runs.parent",
    );
    let ended = query
        .build()
        .persistent(ends.len() == 1)
        .fetch_all(&mut *conn)
        .await?;
    let mut wakes = Vec::new();
    let mut done = HashSet::new();
    for row in &ended {
        let id: String = row.try_get(0)?;
        if let Some(parent) = row.try_get::<Option<String>, _>(1)? {
            wakes.push((parent, awaiting_child(&id)));
        }
        done.insert(id);
    }
    for &(i, run, ..) in ends {
        outcomes[i] = Some(Ok(u64::from(done.contains(run))));
    }
    if wakes.is_empty() {
        return Ok(());
    }
    // A parent waiting for a child ended here wakes, after the child's end
    // is written: a parent that looks at the child after suspending itself
    // sees one or the other.
    let mut query = QueryBuilder::<Sqlite>::new("UPDATE workflow_runs SET wake_ms = ");
    // Due at once, by any clock.
    query.push_bind(i64::MIN).push(" FROM (");
    query.push_values(&wakes, |mut values, (parent, waiting)| {
        values.push_bind(parent.clone()).push_bind(waiting.clone());
    });
    query.push(") AS v WHERE workflow_runs.id = v.column1 AND workflow_runs.waiting = v.column2");
    query
        .build()
        .persistent(wakes.len() == 1)
        .execute(conn)
        .await?;
    Ok(())
}
