//! Group commit: the journal writes of concurrent runs share one
//! transaction, so one sync of the file.
//!
//! A write joins the store's queue; the first to find no batch being
//! written spawns the task that writes batches until the queue is empty.
//! While one batch syncs, the next gathers. A batch is a handful of
//! statements however many runs it holds, sent together
//! ([`super::statements`]): each crossing to sqlx's SQLite thread and
//! back, more than the sync, is what a statement per row would pay.
//!
//! Each waiter wakes after the COMMIT that holds its row, with its own
//! outcome, so a step's row is durable before its `.await` returns, as
//! with a transaction per write. The batch is written by a spawned task,
//! not by the waiter that started it: a waiter dropped mid-commit (a
//! timeout, a cancelled run) leaves the others' writes whole.
//!
//! A transactional step's writes share the batch too: the writer lends
//! it the batch's transaction ([`super::lend`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use tokio::sync::oneshot;

use super::SqliteStore;
use super::lend::{self, LendTo};
use super::statements::{self, Done};
use crate::durable::store::{RunEnd, RunRow, StepRow, StoreError};

/// Most writes in one transaction (one more where it would split writes
/// queued to commit together). It bounds each statement's parameters
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
    /// the batch lends it; `1` if the step kept its writes and its row was
    /// written beside them.
    Lend(Option<LendTo>),
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
pub(super) type Outcome = Result<u64, StoreError>;

struct Pending {
    write: Write,
    done: oneshot::Sender<Outcome>,
    /// Whether the write after it must share its batch.
    joined: bool,
}

/// The writes waiting for the next batch, and whether a task is writing.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
    pub(super) lends: super::lend_watch::LendWatch,
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
pub(super) struct State {
    pending: Vec<Pending>,
    writing: bool,
    /// The task holding the batch's transaction, lent: a journal write it
    /// makes would queue for the batch after, which waits for it.
    pub(super) lent_to: Option<tokio::task::Id>,
}

impl Queue {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
pub(super) fn fails_alone(error: &sqlx::Error) -> bool {
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
    pub(super) fn enqueue(&self, write: Write) -> oneshot::Receiver<Outcome> {
        let [outcome] = self.enqueue_all([write]);
        outcome
    }

    /// Queues `writes` side by side, in order, as [`enqueue`](Self::enqueue)
    /// queues one: the batch that takes the first takes the others too
    /// (past its limit if it must), so they share its commit.
    pub(super) fn enqueue_all<const N: usize>(
        &self,
        writes: [Write; N],
    ) -> [oneshot::Receiver<Outcome>; N] {
        let queued = writes.map(|write| (write, oneshot::channel()));
        let mut state = self.queue.lock();
        let here = tokio::task::try_id();
        if here.is_some() && state.lent_to == here {
            drop(state);
            return queued.map(|(write, (done, outcome))| {
                let _ = done.send(Err(StoreError::Unsupported {
                    store: self.path.display().to_string(),
                    what: format!(
                        "{} from inside a transactional step, whose transaction the store's \
                         next batch would wait for: write through the step's `tx`",
                        write.doing()
                    ),
                }));
                outcome
            });
        }
        let mut left = N;
        let outcomes = queued.map(|(write, (done, outcome))| {
            left -= 1;
            state.pending.push(Pending {
                write,
                done,
                joined: left > 0,
            });
            outcome
        });
        let lead = !std::mem::replace(&mut state.writing, true);
        drop(state);
        if lead {
            let writing = Writing {
                store: self.clone(),
                finished: false,
            };
            tokio::spawn(writing.drain());
        }
        outcomes
    }

    /// A queued write's outcome.
    pub(super) async fn outcome(&self, outcome: oneshot::Receiver<Outcome>) -> Outcome {
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
                let mut n = state.pending.len().min(MOST);
                // Writes queued to commit together are not split.
                while n < state.pending.len() && state.pending[n - 1].joined {
                    n += 1;
                }
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
        // A lend is answered once the step gives the transaction back.
        let mut outcomes: Vec<Option<Outcome>> = writes
            .iter()
            .map(|write| matches!(write, Write::Lend(_)).then_some(Ok(0)))
            .collect();
        // Alone, a write that is one statement is its own transaction:
        // no BEGIN and COMMIT to send across (an end may wake a parent
        // too, so it keeps them).
        if let [Write::Start(_) | Write::Step { .. } | Write::Execute(_)] = writes {
            let mut conn = self.pool.acquire().await?;
            self.app_writes(&mut conn, writes, &mut outcomes).await?;
            let journal = statements::journal_parts(writes);
            statements::write(self, &mut conn, &journal, &mut Done::new(&mut outcomes)).await?;
            return Ok(self.outcomes(outcomes, writes));
        }
        let mut tx = self.pool.begin().await?;
        self.app_writes(&mut tx, writes, &mut outcomes).await?;
        let lends: Vec<(usize, LendTo)> = writes
            .iter_mut()
            .enumerate()
            .filter_map(|(i, write)| match write {
                Write::Lend(to) => to.take().map(|to| (i, to)),
                _ => None,
            })
            .collect();
        let writes = &*writes;
        let journal = statements::journal_parts(writes);
        let tx = lend::write_and_lend(self, tx, journal, lends, &mut outcomes).await?;
        tx.commit().await?;
        Ok(self.outcomes(outcomes, writes))
    }

    /// Each write's outcome; one no statement wrote is a defect, told as
    /// such rather than as a success.
    fn outcomes(&self, outcomes: Vec<Option<Outcome>>, writes: &[Write]) -> Vec<Outcome> {
        outcomes
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
            .collect()
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
}
