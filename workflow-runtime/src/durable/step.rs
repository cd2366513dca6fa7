//! The step bodies of a durable workflow: each takes what the journal
//! holds when its run is resumed, and journals what it produces when it
//! completes; a transactional one commits its own writes with that row.
//!
//! `#[workflow(durable)]` builds them through two chain verbs,
//! [`Workflow::journaled`] and [`Workflow::transacted`], which know the
//! previous step's type, so the step's closure is checked against it.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::DerefMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::codec::ValueCodec;
use super::journal::{COMPENSATIONS, Journal, fault};
use super::step_ctx::StepCtx;
use super::store::{Fence, StepRow, Store, StoreError};
use crate::behavior::BoxFuture;
use crate::chain::sealed::Sealed;
use crate::chain::{CallAgain, Compensation, Failed, Stage, Step, StepFn, StepResult, Workflow};
use crate::context::WorkflowContext;
use crate::error::{StepError, WorkflowError};
use crate::step::StepKind;

/// Where a step is in its workflow, as the journal keys it.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    /// From 0.
    pub index: u32,
    /// The step's title.
    pub title: &'static str,
}

impl<'c, S: Stage<'c>> Workflow<'c, S> {
    /// A journaled step: `body(step, input)` runs unless the run's
    /// journal already holds its output. What `#[workflow(durable)]`
    /// generates; not for hand-written chains.
    #[doc(hidden)]
    pub fn journaled<C, Fut, O>(
        self,
        kind: StepKind,
        place: Place,
        codec: ValueCodec<O>,
        body: C,
    ) -> Workflow<'c, Step<S, Journaled<'c, C, O>>>
    where
        C: Fn(StepCtx, S::Output) -> Fut,
        Fut: Future<Output = Result<O, StepError>> + Send + 'c,
        O: Send + 'c,
    {
        // The `Fn` bound is what tells the compiler the closure may run
        // again (a retry needs that); the step is built the same way.
        self.journaled_once(kind, place, codec, body)
    }

    /// [`journaled`](Self::journaled), for a body that runs once: a first
    /// step that owns the workflow's input and is not retried.
    #[doc(hidden)]
    pub fn journaled_once<C, Fut, O>(
        self,
        kind: StepKind,
        place: Place,
        codec: ValueCodec<O>,
        body: C,
    ) -> Workflow<'c, Step<S, Journaled<'c, C, O>>>
    where
        C: FnOnce(StepCtx, S::Output) -> Fut,
        Fut: Future<Output = Result<O, StepError>> + Send + 'c,
        O: Send + 'c,
    {
        let ctx = self.context();
        self.step(
            kind,
            place.title,
            Journaled {
                ctx,
                place,
                codec,
                attempts: AtomicU32::new(0),
                body,
            },
        )
    }

    /// A transactional step: `body(step, tx, input)` runs in a
    /// transaction of the store's database, committed with its journal
    /// row. What `#[workflow(durable)]` generates.
    #[doc(hidden)]
    pub fn transacted<X, C, Fut, O>(
        self,
        kind: StepKind,
        place: Place,
        codec: ValueCodec<O>,
        body: C,
    ) -> Workflow<'c, Step<S, Transacted<'c, X, C, O>>>
    where
        X: Transaction,
        C: Fn(StepCtx, X::Held, S::Output) -> Fut + Send + 'c,
        Fut: Future<Output = (X::Held, Result<O, StepError>)> + Send + 'c,
        O: Send + 'c,
        S::Output: Send + 'c,
    {
        self.transacted_once(kind, place, codec, body)
    }

    /// [`transacted`](Self::transacted), for a body that runs once.
    #[doc(hidden)]
    pub fn transacted_once<X, C, Fut, O>(
        self,
        kind: StepKind,
        place: Place,
        codec: ValueCodec<O>,
        body: C,
    ) -> Workflow<'c, Step<S, Transacted<'c, X, C, O>>>
    where
        X: Transaction,
        C: FnOnce(StepCtx, X::Held, S::Output) -> Fut + Send + 'c,
        Fut: Future<Output = (X::Held, Result<O, StepError>)> + Send + 'c,
        O: Send + 'c,
        S::Output: Send + 'c,
    {
        let ctx = self.context();
        self.step(
            kind,
            place.title,
            Transacted {
                ctx,
                place,
                codec,
                attempts: AtomicU32::new(0),
                body,
                tx: PhantomData,
            },
        )
    }
}

/// The step's view of itself for its next attempt: numbered on from the
/// attempts a resumed run's journal holds. The second number is the
/// attempt's number in this process.
fn next_attempt(ctx: &WorkflowContext, place: Place, attempts: &AtomicU32) -> (StepCtx, u32) {
    let here = attempts.fetch_add(1, Ordering::Relaxed) + 1;
    let journal = ctx.shared_journal();
    let (run, before): (Arc<str>, u32) = match &journal {
        Some(journal) => (
            journal.run_id().clone(),
            journal.resumed(place.index).map_or(0, |r| r.attempts),
        ),
        None => (ctx.execution_id().to_string().into(), 0),
    };
    let step = StepCtx::new(run, place.index, before + here).journaled(journal);
    (step, here)
}

fn resumed(ctx: &WorkflowContext, place: Place) -> Option<crate::behavior::Resumed> {
    ctx.journal()?.resumed(place.index)
}

fn replayed<O>(ctx: &WorkflowContext, place: Place, codec: ValueCodec<O>) -> Option<StepResult<O>> {
    let journal = ctx.journal()?;
    Some(journal.replayed(place.index, codec)?.map_err(fault))
}

/// A durable step's body, `(step, input) -> Result<output, error>`, with
/// its output journaled when it completes: committed before the next step
/// starts, or, for the run's last journaled step, with the run's end (see
/// the journal's `deferrable`).
pub struct Journaled<'c, C, O> {
    ctx: &'c WorkflowContext,
    place: Place,
    codec: ValueCodec<O>,
    attempts: AtomicU32,
    body: C,
}

impl<C, O> Sealed for Journaled<'_, C, O> {}

impl<'c, C, O: Send + 'c> Journaled<'c, C, O> {
    /// Runs one attempt's work, then journals its output. An attempt after
    /// the first in this process looks for the row first: the one before
    /// may have committed it and then been cut short.
    fn attempt<Fut>(
        ctx: &'c WorkflowContext,
        place: Place,
        codec: ValueCodec<O>,
        (step, here): (StepCtx, u32),
        work: Fut,
    ) -> BoxFuture<'c, StepResult<O>>
    where
        Fut: Future<Output = Result<O, StepError>> + Send + 'c,
    {
        let journal = ctx.shared_journal();
        let started = ctx.clock().now_ms();
        Box::pin(async move {
            if here > 1
                && let Some(journal) = &journal
            {
                let row = match journal.deferred(place.index) {
                    Some(row) => Some(row),
                    None => journal.stored(place.index).await.map_err(fault)?,
                };
                if let Some(row) = row {
                    return journal.decode(&row, codec).map_err(fault);
                }
            }
            let value = match work.await {
                Ok(value) => value,
                Err(error) => {
                    if let Some(journal) = journal {
                        journal
                            .failed(place.index, step.attempt(), error.to_string())
                            .await;
                    }
                    return Err(Failed::error(error));
                }
            };
            match journal {
                Some(journal) => {
                    let row = journal
                        .row(
                            place.index,
                            place.title,
                            &value,
                            codec,
                            step.attempt(),
                            started,
                        )
                        .map_err(Failed::error)?;
                    if journal.defers(place.index) {
                        journal.defer(row);
                        return Ok(value);
                    }
                    journal.commit(&row, value, codec).await.map_err(fault)
                }
                None => Ok(value),
            }
        })
    }
}

impl<'c, C, In, O, Fut> StepFn<In> for Journaled<'c, C, O>
where
    C: FnOnce(StepCtx, In) -> Fut,
    Fut: Future<Output = Result<O, StepError>> + Send + 'c,
    O: Send + 'c,
{
    type Output = O;
    type Future = BoxFuture<'c, StepResult<O>>;
    fn call(self, input: In) -> Self::Future {
        let (step, here) = next_attempt(self.ctx, self.place, &self.attempts);
        let work = (self.body)(step.clone(), input);
        Self::attempt(self.ctx, self.place, self.codec, (step, here), work)
    }
    fn recorded(&self) -> Option<StepResult<O>> {
        replayed(self.ctx, self.place, self.codec)
    }
    fn resumed(&self) -> Option<crate::behavior::Resumed> {
        resumed(self.ctx, self.place)
    }
}

impl<'c, C, In, O, Fut> CallAgain<In> for Journaled<'c, C, O>
where
    C: Fn(StepCtx, In) -> Fut,
    Fut: Future<Output = Result<O, StepError>> + Send + 'c,
    O: Send + 'c,
{
    fn call_again(&self, input: In) -> Self::Future {
        let (step, here) = next_attempt(self.ctx, self.place, &self.attempts);
        let work = (self.body)(step.clone(), input);
        Self::attempt(self.ctx, self.place, self.codec, (step, here), work)
    }
}

/// A step's transaction as [`Transaction::begin`] hands it over, held,
/// with the step's row as it sees it; or why it could not begin.
pub type Begun<H> = Result<(H, Option<StepRow>), StoreError>;

/// A transaction on the store's database that a step's writes and its
/// journal row commit in together. Implemented for `SqliteTx`
/// (`sqlite` feature) and `PgTx` (`postgres` feature).
pub trait Transaction: Send + Sized + 'static {
    /// What a step holds while its body runs: the transaction, or where
    /// the store's writer lends the step its own (SQLite's, so the steps
    /// of concurrent runs share one commit), a handle that gives it back
    /// however the step ends, even dropped midway.
    type Held: DerefMut<Target = Self> + Send + 'static;
    /// Begins one on `store`'s database for step `index` of `run`, with
    /// the step's row as the transaction sees it: an earlier attempt may
    /// have committed.
    fn begin<'a>(store: &'a Store, run: &'a str, index: u32) -> BoxFuture<'a, Begun<Self::Held>>;
    /// Writes the step's row and commits (or, for a lent transaction,
    /// gives it back kept, with the row for the batch to write, and waits
    /// for the commit that holds them), if
    /// `fence` (when there is one) still holds the run; otherwise
    /// [`StoreError::LeaseLost`], and the step's writes roll back.
    fn commit_with<'a>(
        held: Self::Held,
        store: &'a Store,
        run: &'a str,
        row: StepRow,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// A transactional step's body, `(step, tx, input) -> (tx, result)`: its
/// writes through `tx` and its journal row commit together or not at all.
pub struct Transacted<'c, X, C, O> {
    ctx: &'c WorkflowContext,
    place: Place,
    codec: ValueCodec<O>,
    attempts: AtomicU32,
    body: C,
    tx: PhantomData<fn() -> X>,
}

impl<X, C, O> Sealed for Transacted<'_, X, C, O> {}

/// A transactional step run with no store to take a transaction from.
#[derive(Debug)]
struct NoStore {
    title: &'static str,
}

impl std::fmt::Display for NoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step \"{}\" is transactional: it runs only in a durable run of a runner with a \
             SQL store (`Runner::builder().store(..)`, `Runner::start`)",
            self.title
        )
    }
}

impl std::error::Error for NoStore {}

impl<'c, X: Transaction, C, O: Send + 'c> Transacted<'c, X, C, O> {
    /// Begins the transaction, runs `body` in it unless an earlier attempt
    /// committed, and commits its writes with the journal row.
    fn attempt<In, Fut>(
        ctx: &'c WorkflowContext,
        place: Place,
        codec: ValueCodec<O>,
        step: StepCtx,
        body: C,
        input: In,
    ) -> BoxFuture<'c, StepResult<O>>
    where
        C: FnOnce(StepCtx, X::Held, In) -> Fut + Send + 'c,
        Fut: Future<Output = (X::Held, Result<O, StepError>)> + Send + 'c,
        In: Send + 'c,
    {
        let journal: Option<Arc<Journal>> = ctx.shared_journal();
        Box::pin(async move {
            let Some(journal) = journal else {
                return Err(Failed::error(NoStore { title: place.title }));
            };
            let attempt = step.attempt();
            let started = journal.now_ms();
            let (store, run) = (journal.store(), journal.run_id().clone());
            let (tx, recorded) = X::begin(store, &run, place.index).await.map_err(fault)?;
            // An earlier attempt may have committed and then been cut short
            // (a timeout that fired during the commit): its row is the
            // step's result, and the effect must not happen twice.
            if let Some(row) = recorded {
                return journal.decode(&row, codec).map_err(fault);
            }
            let (tx, result) = body(step, tx, input).await;
            let value = match result {
                Ok(value) => value,
                Err(error) => {
                    // Rolled back before the failure is journaled: the
                    // store's one writer is free again.
                    drop(tx);
                    journal
                        .failed(place.index, attempt, error.to_string())
                        .await;
                    return Err(Failed::error(error));
                }
            };
            let row = journal
                .row(place.index, place.title, &value, codec, attempt, started)
                .map_err(Failed::error)?;
            X::commit_with(tx, store, &run, row, journal.fence())
                .await
                .map_err(fault)?;
            Ok(value)
        })
    }
}

impl<'c, X, C, In, O, Fut> StepFn<In> for Transacted<'c, X, C, O>
where
    X: Transaction,
    C: FnOnce(StepCtx, X::Held, In) -> Fut + Send + 'c,
    Fut: Future<Output = (X::Held, Result<O, StepError>)> + Send + 'c,
    O: Send + 'c,
    In: Send + 'c,
{
    type Output = O;
    type Future = BoxFuture<'c, StepResult<O>>;
    fn call(self, input: In) -> Self::Future {
        let (step, _) = next_attempt(self.ctx, self.place, &self.attempts);
        Self::attempt(self.ctx, self.place, self.codec, step, self.body, input)
    }
    fn recorded(&self) -> Option<StepResult<O>> {
        replayed(self.ctx, self.place, self.codec)
    }
    fn resumed(&self) -> Option<crate::behavior::Resumed> {
        resumed(self.ctx, self.place)
    }
}

impl<'c, X, C, In, O, Fut> CallAgain<In> for Transacted<'c, X, C, O>
where
    X: Transaction,
    C: Fn(StepCtx, X::Held, In) -> Fut + Clone + Send + 'c,
    Fut: Future<Output = (X::Held, Result<O, StepError>)> + Send + 'c,
    O: Send + 'c,
    In: Send + 'c,
{
    fn call_again(&self, input: In) -> Self::Future {
        let (step, _) = next_attempt(self.ctx, self.place, &self.attempts);
        let body = self.body.clone();
        Self::attempt(self.ctx, self.place, self.codec, step, body, input)
    }
}

/// A durable workflow's compensation: journaled once done, so a resumed
/// run does not undo twice. The run's failure for good is journaled before
/// any compensation runs, so a run resumed mid-compensation fails its step
/// again rather than running it. What `#[workflow(durable)]` generates for
/// `#[step(compensate = ..)]`.
#[doc(hidden)]
pub struct JournaledUndo<'c, C> {
    ctx: &'c WorkflowContext,
    place: Place,
    undo: C,
}

impl<'c, C> JournaledUndo<'c, C> {
    /// The compensation of the step at `place`.
    pub fn new(ctx: &'c WorkflowContext, place: Place, undo: C) -> Self {
        JournaledUndo { ctx, place, undo }
    }
}

impl<C> Sealed for JournaledUndo<'_, C> {}

impl<'c, C, O, Fut> Compensation<'c, O> for JournaledUndo<'c, C>
where
    C: Fn(StepCtx, O) -> Fut,
    Fut: Future<Output = Result<(), StepError>> + Send + 'c,
{
    type Step = JournaledUndoStep<'c, C, O>;
    fn undo(
        self,
        _: &'c WorkflowContext,
        value: O,
        keep: fn(&O) -> O,
        _: &WorkflowError,
    ) -> Self::Step {
        JournaledUndoStep {
            ctx: self.ctx,
            place: self.place,
            undo: self.undo,
            value,
            keep,
            attempts: AtomicU32::new(0),
        }
    }
}

/// The body of a [`JournaledUndo`], with the value it undoes.
#[doc(hidden)]
pub struct JournaledUndoStep<'c, C, O> {
    ctx: &'c WorkflowContext,
    place: Place,
    undo: C,
    value: O,
    keep: fn(&O) -> O,
    attempts: AtomicU32,
}

impl<C, O> Sealed for JournaledUndoStep<'_, C, O> {}

impl<'c, C, O, Fut> JournaledUndoStep<'c, C, O>
where
    C: Fn(StepCtx, O) -> Fut,
    Fut: Future<Output = Result<(), StepError>> + Send + 'c,
{
    fn attempt(&self, value: O) -> BoxFuture<'c, StepResult<()>> {
        let step_index = self.place.index;
        let index = COMPENSATIONS + step_index;
        let (step, here) = next_attempt(
            self.ctx,
            Place {
                index,
                title: self.place.title,
            },
            &self.attempts,
        );
        let journal = self.ctx.shared_journal();
        let title = self.place.title;
        let work = (self.undo)(step.clone(), value);
        Box::pin(async move {
            let Some(journal) = journal else {
                return work.await.map_err(Failed::error);
            };
            // An attempt after the first in this process: the one before may
            // have undone and journaled it, then been cut short.
            if here > 1 && journal.stored(index).await.map_err(fault)?.is_some() {
                return Ok(());
            }
            let started = journal.now_ms();
            match work.await {
                Ok(()) => journal
                    .compensation_done(step_index, title, step.attempt(), started)
                    .await
                    .map_err(fault),
                Err(error) => {
                    journal
                        .failed(index, step.attempt(), error.to_string())
                        .await;
                    Err(Failed::error(error))
                }
            }
        })
    }
}

impl<'c, C, O, Fut> StepFn<()> for JournaledUndoStep<'c, C, O>
where
    C: Fn(StepCtx, O) -> Fut,
    Fut: Future<Output = Result<(), StepError>> + Send + 'c,
{
    type Output = ();
    type Future = BoxFuture<'c, StepResult<()>>;
    fn call(self, (): ()) -> Self::Future {
        let value = (self.keep)(&self.value);
        self.attempt(value)
    }
    fn replay(&self, (): &()) -> Option<Self::Future> {
        Some(self.attempt((self.keep)(&self.value)))
    }
    fn can_replay(&self) -> bool {
        true
    }
    fn recorded(&self) -> Option<StepResult<()>> {
        self.ctx
            .journal()?
            .compensated(self.place.index)
            .then_some(Ok(()))
    }
    fn resumed(&self) -> Option<crate::behavior::Resumed> {
        self.ctx
            .journal()?
            .resumed(COMPENSATIONS + self.place.index)
    }
}
