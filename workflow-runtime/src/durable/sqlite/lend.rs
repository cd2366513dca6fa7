//! A transactional step's turn at its batch's transaction. The step asks
//! for it ([`LendTo`]); once the batch's own writes are made, the writer
//! lends the transaction, under a savepoint, to each step that asked, in
//! turn. The step's body writes through it, and gives it back
//! ([`LentTx`]): kept, with the step's row, which the writer inserts
//! beside the body's writes; given back any other way (the body failed,
//! or the step was dropped midway), rolled back to the savepoint, and the
//! others' writes stand. Then one COMMIT holds them all.
//!
//! Each lend costs the batch one crossing to sqlx's SQLite thread besides
//! the body's statements: the previous step's row (or its rollback), the
//! savepoint and the read of the step's row go as one script (the first
//! lend's with the batch's own statements), and the last step's row goes
//! alone.

use std::fmt;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::SqliteStore;
use super::group_commit::{Outcome, Queue, Write};
use super::statements::{self, Done, Part};
use crate::durable::store::{StepRow, StoreError};

/// Where to lend the batch's transaction, and the step it is for, whose
/// row is read as the transaction sees it before the step's turn.
pub(super) struct LendTo {
    to: oneshot::Sender<LentTx>,
    run: String,
    index: u32,
}

impl SqliteStore {
    /// The next batch's transaction, for step `index` of `run`, which is
    /// transactional: lent once the batch's own writes are made, under a
    /// savepoint of the step's, with the step's row as the transaction
    /// sees it (an earlier attempt may have committed).
    pub(super) async fn lend(
        &self,
        run: &str,
        index: u32,
    ) -> Result<(LentTx, Option<StepRow>), StoreError> {
        let (to, lent) = oneshot::channel();
        let done = self.enqueue(Write::Lend(Some(LendTo {
            to,
            run: run.to_owned(),
            index,
        })));
        match lent.await {
            Ok(mut lent) => {
                lent.done = Some(done);
                if let Some(here) = tokio::task::try_id() {
                    self.queue.lock().lent_to = Some(here);
                    lent.held_by = Some((self.queue.clone(), here));
                }
                // Read, and unreadable, before the step's turn: given back
                // unkept, dropped.
                let recorded = lent.recorded.take().unwrap_or(Ok(None))?;
                Ok((lent, recorded))
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
    /// The step's row as the transaction saw it when lent.
    recorded: Option<Result<Option<StepRow>, StoreError>>,
}

/// A lent transaction, back with the batch, and the row of the step that
/// kept its writes, for the batch to write beside them.
struct Returned {
    tx: super::SqliteTx,
    kept: Option<StepRow>,
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
            let _ = back.send(Returned { tx, kept: None });
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

    /// Gives the transaction back with the step's writes kept, and `row`,
    /// the step's row, for the batch to write beside them (with the next
    /// statements it sends): `Ok` once the batch that holds them has
    /// committed. A row refused (another writer journaled the step) takes
    /// the step's writes with it.
    pub(super) async fn keep(
        mut self,
        store: &SqliteStore,
        row: StepRow,
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
        if back
            .send(Returned {
                tx,
                kept: Some(row),
            })
            .is_err()
        {
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

/// What a lend left in the batch's transaction, for the statements sent
/// before the next.
enum Left {
    /// Nothing: the step left before its turn, or none was lent yet.
    Nothing,
    /// Writes the step gave back unkept: to be rolled back.
    Unkept,
    /// The row of the step lent the transaction as write `.0`, of run
    /// `.1`, which kept its writes: to be inserted beside them.
    Kept(usize, String, StepRow),
}

impl Left {
    /// The statements that settle what the lend left, and open the next
    /// lend's savepoint.
    fn settle<'a>(&'a self, parts: &mut Vec<Part<'a>>, then_savepoint: bool) {
        match self {
            Left::Nothing => {}
            Left::Unkept => parts.push(Part::RollBack),
            Left::Kept(i, run, row) => parts.push(Part::Lent(*i, run, row)),
        }
        // A rolled-back savepoint stays, empty, for the next lend.
        if then_savepoint && !matches!(self, Left::Unkept) {
            parts.push(Part::Savepoint);
        }
    }
}

/// Writes `journal`, the batch's own statements, in `tx` and lends `tx`
/// to the steps `lends` asked for it, by write index, in turn: `tx` back,
/// with each lend's outcome in `outcomes` (`1` if its step kept its
/// writes). The statements go as few scripts as they can: the journal's
/// with the first lend's savepoint and read, each kept row with the next
/// lend's.
pub(super) async fn write_and_lend(
    store: &SqliteStore,
    mut tx: super::SqliteTx,
    journal: Vec<Part<'_>>,
    lends: Vec<(usize, LendTo)>,
    outcomes: &mut [Option<Outcome>],
) -> Result<super::SqliteTx, sqlx::Error> {
    let limit = store.pool.options().get_acquire_timeout();
    let mut journal = Some(journal);
    let mut left = Left::Nothing;
    for (i, lend) in lends {
        // The step left before its turn.
        if lend.to.is_closed() {
            continue;
        }
        let mut parts = journal.take().unwrap_or_default();
        left.settle(&mut parts, true);
        parts.push(Part::Recorded(&lend.run, lend.index));
        let mut done = Done::new(outcomes);
        statements::write(store, &mut tx, &parts, &mut done).await?;
        let rows = done.recorded.take().unwrap_or_default();
        let recorded = rows
            .first()
            .map(|row| super::step_row(&lend.run, row))
            .transpose();
        let back;
        (tx, back) = lend_to(tx, lend.to, recorded, &store.queue, limit).await?;
        // A lend's outcome is `0` until its kept row is written.
        left = match back {
            None => Left::Nothing,
            Some(None) => Left::Unkept,
            Some(Some(row)) => Left::Kept(i, lend.run, row),
        };
    }
    let mut parts = journal.take().unwrap_or_default();
    left.settle(&mut parts, false);
    statements::write(store, &mut tx, &parts, &mut Done::new(outcomes)).await?;
    Ok(tx)
}

/// Lends `tx`, under the savepoint just opened, to the step waiting on
/// `to`, with `recorded`, its row as `tx` sees it, and takes it back: the
/// step's row if it kept its writes, `None` if it gave them back unkept,
/// or nothing if it was never lent (the step left before its turn). A
/// journal write the step makes meanwhile, which would wait for this
/// batch, is refused (`SqliteStore::enqueue`); one made on another task
/// the step waits for cannot be told apart, so the batch waits no longer
/// than `limit`, the store's acquire timeout ([`super::lend_watch`]),
/// then fails.
async fn lend_to(
    tx: super::SqliteTx,
    to: oneshot::Sender<LentTx>,
    recorded: Result<Option<StepRow>, StoreError>,
    queue: &Queue,
    limit: std::time::Duration,
) -> Result<(super::SqliteTx, Option<Option<StepRow>>), sqlx::Error> {
    let (back, returned) = oneshot::channel();
    let lent = LentTx {
        tx: Some(tx),
        back: Some(back),
        done: None,
        held_by: None,
        recorded: Some(recorded),
    };
    let Returned { tx, kept } = match to.send(lent) {
        Ok(()) => {
            let mut watching = queue.lends.start(limit);
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
        // timeout around it fired): nothing written.
        Err(mut lent) => {
            lent.back = None;
            let tx = lent
                .tx
                .take()
                .expect("an unsent lend holds its transaction");
            return Ok((tx, None));
        }
    };
    Ok((tx, Some(kept)))
}
