//! Driving one durable run to its end, whoever hosts it: resumed from its
//! journal, driven again (a bounded number of times) when the journal
//! fails it, parked when nobody can make progress, stopped when its lease
//! is found gone; and the bookkeeping a host keeps of the runs it drives
//! (in flight, watched elsewhere, claimed). The host gives the driver what
//! only it has, running a workflow under its behaviors and health, through
//! [`Drives`]: the host uses this module, never the other way round.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::journal::{Cancelled, Halt};
use super::{
    Codec, Durable, Fence, Journal, JournalFailure, RunEnd, RunRow, RunStatus, StepRow, Store,
    StoreError,
};
use crate::behavior::BoxFuture;
use crate::context::{ContextBuilder, WorkflowContext};
use crate::error::WorkflowError;

/// What a host gives the driver: its store, clock and name in leases, when
/// it stops, how far a run is driven again, and running a workflow.
pub(crate) trait Drives: Clone + Send + Sync + 'static {
    /// The journal's store.
    fn store(&self) -> Option<&Store>;
    /// The clock rows are stamped by.
    fn clock(&self) -> crate::Clock;
    /// This instance's name in leases.
    fn instance(&self) -> &str;
    /// Cancelled when the host stops.
    fn stopping(&self) -> &CancellationToken;
    /// At most how many more drives, within how long, before a run the
    /// journal keeps failing is parked.
    fn redrive_limit(&self) -> (u32, Duration);
    /// A run's context, with the host's behaviors and settings.
    fn context(&self, builder: ContextBuilder) -> WorkflowContext;
    /// A run driven here suspended itself, or ended (a parent waiting for
    /// it is due): whoever wakes runs on this store looks again.
    fn look_again(&self);
    /// Runs `workflow` in `ctx`, a panic caught as its message.
    fn run_caught<'a, W: Durable>(
        &'a self,
        workflow: &'a W,
        ctx: &'a WorkflowContext,
        input: W::Input,
    ) -> impl Future<Output = Result<Result<W::Output, WorkflowError>, String>> + Send + 'a;
}

/// A registered durable workflow, with its types erased.
pub(crate) trait DurableEntry<R>: Send + Sync {
    /// The fingerprint of the definition registered.
    fn fingerprint(&self) -> &'static str;

    /// The definition's steps, by index.
    fn steps(&self) -> &'static [crate::step::StepMeta];

    /// Runs (or resumes) `row` to its end under `runner`, its writes
    /// fenced by `fence` on a store with leases; `signals.lost` is
    /// cancelled when the lease is found gone, and the run stops at its
    /// next await; `signals.cancel` when the run is asked to stop, and it
    /// is undone. `from` says whether `row` may be trusted as the run's
    /// whole journal.
    fn drive(
        &self,
        runner: R,
        row: RunRow,
        fence: Option<Fence>,
        signals: Signals,
        from: RowSource,
    ) -> BoxFuture<'static, ()>;
}

/// Where a driver's row came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowSource {
    /// Written by this process a moment ago, and held in flight here since
    /// before it was written: the run has no step, failure or event yet,
    /// and nobody else has touched it. Its first drive reads nothing back.
    Written,
    /// Read from the store, maybe some time ago: the first drive reads the
    /// run afresh.
    Store,
}

pub(crate) struct DurableDef<W>(pub(crate) Arc<W>);

/// What tells a driver to stop its run where it is: its lease found gone
/// (it stops), or a cancel asked for (it is undone); and where it leaves
/// the end it wrote, for the run's handles here.
#[derive(Clone, Default)]
pub(crate) struct Signals {
    pub(crate) lost: CancellationToken,
    pub(crate) cancel: CancellationToken,
    pub(crate) end: Arc<OnceLock<Written>>,
}

/// The end a driver wrote to the store: the run's handles in this process
/// take its outcome from here rather than read it back.
pub(crate) struct Written {
    pub(crate) end: RunEnd,
    /// The codec of its output: the run's.
    pub(crate) codec: Arc<dyn Codec>,
}

/// A run in flight here, as its handles see it: the flag set when its
/// driver leaves, and the end it wrote, if it wrote one.
#[derive(Clone)]
pub(crate) struct Flight {
    pub(crate) ended: watch::Receiver<bool>,
    pub(crate) end: Arc<OnceLock<Written>>,
}

impl<W: Durable, R: Drives> DurableEntry<R> for DurableDef<W> {
    fn fingerprint(&self) -> &'static str {
        W::FINGERPRINT
    }

    fn steps(&self) -> &'static [crate::step::StepMeta] {
        W::STEPS
    }

    fn drive(
        &self,
        runner: R,
        row: RunRow,
        fence: Option<Fence>,
        signals: Signals,
        mut from: RowSource,
    ) -> BoxFuture<'static, ()> {
        let workflow = self.0.clone();
        Box::pin(async move {
            let Some(store) = runner.store().cloned() else {
                return;
            };
            let mut pause = Pause::new();
            // A run the store could not read or write goes on being driven
            // (after a pause) rather than be left running with nobody on it.
            let (end, last) = loop {
                let at = Claim {
                    fence: fence.as_ref(),
                    signals: &signals,
                };
                // Only the first drive: one driven again has a journal.
                let known = std::mem::replace(&mut from, RowSource::Store);
                let known = (known == RowSource::Written).then_some(&row);
                match run_to_end(&runner, &*workflow, &store, (&row.id, known), at).await {
                    Driven::End(end) => break (end, None),
                    Driven::EndWith(end, row) => break (end, Some(row)),
                    Driven::Stopped => return,
                    Driven::Suspended(wake_ms) => {
                        tracing::debug!(run = %row.id, workflow = W::NAME, ?wake_ms, "durable run suspended");
                        runner.look_again();
                        return;
                    }
                    // Stopped where it was: driven again, it is undone.
                    Driven::Cancelling => continue,
                    Driven::Again(why) => {
                        if let Some(spent) = pause.spent(&runner) {
                            tracing::error!(run = %row.id, workflow = W::NAME, %why, "{spent}: parking the run as stuck");
                            break (RunEnd::Stuck(format!("{spent}; last: {why}")), None);
                        }
                        tracing::warn!(run = %row.id, workflow = W::NAME, %why, "durable run interrupted; driving it again");
                        if !pause.wait(&runner).await {
                            return;
                        }
                    }
                }
            };
            loop {
                let finished = store
                    .backend()
                    .finish_run_with(&row.id, &end, last.as_ref(), fence.as_ref())
                    .await;
                let error = match finished {
                    Ok(ended) => {
                        if let RunEnd::Cancelled { reason, .. } = &end {
                            cancel_children(&store, &row.id, reason, runner.clock().now_ms()).await;
                        }
                        // This end, and no other driver's, is the run's.
                        if ended && let Ok(codec) = store.shared_codec_of(&row) {
                            let _ = signals.end.set(Written { end, codec });
                        }
                        runner.look_again();
                        return;
                    }
                    // Another instance took the run over: its end is theirs.
                    Err(lost @ StoreError::LeaseLost { .. }) => {
                        tracing::warn!(run = %row.id, workflow = W::NAME, instance = runner.instance(), %lost, "lease lost: this instance's end of the run was refused");
                        return;
                    }
                    Err(error) => error,
                };
                tracing::error!(run = %row.id, workflow = W::NAME, %error, "could not record the end of a durable run; trying again");
                if !pause.wait(&runner).await {
                    return;
                }
            }
        })
    }
}

/// Asks the children run `id` started (found in its journal) to stop:
/// it was cancelled, and a child started as the cancel arrived would
/// otherwise run on. Each, when driven, does the same for its own.
async fn cancel_children(store: &Store, id: &str, reason: &str, now_ms: i64) {
    let rows = match store.backend().steps(id).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(run = id, %error, "could not read a cancelled run's children");
            return;
        }
    };
    let why = format!("its parent {id} was cancelled: {reason}");
    for child in super::journal::children(&rows) {
        if let Err(error) = store.backend().request_cancel(&child, &why, now_ms).await {
            tracing::warn!(run = id, %child, %error, "could not cancel a child run");
        }
    }
}

/// Growing waits between attempts to drive a run again, cut short when the
/// runner stops, and bounded: past the runner's limit the run is parked.
pub(crate) struct Pause {
    wait: std::time::Duration,
    again: u32,
    since: Option<tokio::time::Instant>,
}

impl Pause {
    pub(crate) fn new() -> Self {
        Pause {
            wait: std::time::Duration::from_millis(50),
            again: 0,
            since: None,
        }
    }

    /// Counts one more drive the journal failed: why the run is parked
    /// when that is past the runner's limit, in count and in time both (a
    /// database failover of a few seconds parks nothing).
    fn spent(&mut self, runner: &impl Drives) -> Option<String> {
        let (times, within) = runner.redrive_limit();
        let since = *self.since.get_or_insert_with(tokio::time::Instant::now);
        self.again += 1;
        (self.again > times && since.elapsed() > within).then(|| {
            format!(
                "driven again {} times over {:?} without getting past the journal's failure",
                self.again - 1,
                since.elapsed()
            )
        })
    }

    /// Waits; false when the runner is stopping instead.
    pub(crate) async fn wait(&mut self, runner: &impl Drives) -> bool {
        let wait = self.wait;
        self.wait = (self.wait * 2).min(std::time::Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = runner.stopping().cancelled() => false,
        }
    }
}

/// How driving a run went.
enum Driven {
    /// It ended: record this.
    End(RunEnd),
    /// It ended, and the row of its last journaled step waited for the
    /// end: record both, in one write where the store can.
    EndWith(RunEnd, StepRow),
    /// The runner is stopping, or the run is not this driver's to end (it
    /// ended meanwhile): leave it as it is.
    Stopped,
    /// A step suspended it until then (`None`: until an event): a worker
    /// takes it up when it is due.
    Suspended(Option<i64>),
    /// It was asked to stop, and stopped where it was: drive it again to
    /// undo it.
    Cancelling,
    /// The store failed, or a step failed after its row was written (a
    /// commit cut short): drive it again from the journal.
    Again(String),
}

/// What a driver holds its run by: on a store with leases, its claim, and
/// the token cancelled when that claim is found gone.
#[derive(Clone, Copy)]
struct Claim<'a> {
    fence: Option<&'a Fence>,
    signals: &'a Signals,
}

/// Runs the run `id`, resumed from its journal, or from `written`, its
/// row as this process wrote it, when nothing else is in its journal.
async fn run_to_end<W: Durable, R: Drives>(
    runner: &R,
    workflow: &W,
    store: &Store,
    (id, written): (&str, Option<&RunRow>),
    Claim { fence, signals }: Claim<'_>,
) -> Driven {
    let lost = &signals.lost;
    // Its lease found gone: another instance owns it.
    if lost.is_cancelled() {
        return Driven::Stopped;
    }
    // Before the row is read: a cancel asked for after this is one the
    // row may not show, and the run stops for it at its next await.
    let cancel_seen = signals.cancel.is_cancelled();
    // Asked to stop since it was written (it was in flight here all
    // along): the row in the store says so, the written one does not.
    let written = written.filter(|_| !cancel_seen);
    // Read afresh: a driver that ended the run may have left just before
    // this one was started from an older copy of its row.
    let row: Cow<'_, RunRow> = match written {
        Some(row) => Cow::Borrowed(row),
        None => match store.backend().run(id).await {
            Ok(Some(row)) if row.status == RunStatus::Running => Cow::Owned(row),
            Ok(_) => return Driven::Stopped,
            Err(error) => return Driven::Again(error.to_string()),
        },
    };
    // Suspended again since it was found due (another driver had it);
    // one asked to stop is undone now, whatever it waits for.
    if !row.due(runner.clock().now_ms()) && row.cancel.is_none() {
        return Driven::Stopped;
    }
    // Awake: it waits for nothing while it is driven.
    if row.waiting.is_some()
        && let Err(error) = store.backend().suspend(&row.id, None, fence).await
    {
        return Driven::Again(error.to_string());
    }
    if row.fingerprint != W::FINGERPRINT {
        return Driven::End(RunEnd::Incompatible(format!(
            "its journal was written by definition {} of \"{}\", the code is {}{}",
            row.fingerprint,
            W::NAME,
            W::FINGERPRINT,
            W::VERSION.map(|v| format!(" ({v})")).unwrap_or_default()
        )));
    }
    // The codec the run started with, though the store may have another now.
    let codec = match store.shared_codec_of(&row) {
        Ok(codec) => codec,
        Err(error) => return Driven::End(RunEnd::Stuck(error.to_string())),
    };
    let input: W::Input = match W::INPUT.decode(&*codec, &row.input) {
        Ok(input) => input,
        Err(e) => {
            return Driven::End(RunEnd::Incompatible(format!(
                "in {}: its input does not decode as `{}`: {e}",
                store.describe(),
                std::any::type_name::<W::Input>()
            )));
        }
    };
    let journaled = match written {
        Some(_) => (Ok(Vec::new()), Ok(Vec::new())),
        None => (
            store.backend().steps(&row.id).await,
            store.backend().failures(&row.id).await,
        ),
    };
    let (done, failed) = match journaled {
        (Ok(done), Ok(failed)) => (done, failed),
        // A row that does not read back will not on the next drive either.
        (Err(error @ StoreError::Corrupt { .. }), _)
        | (_, Err(error @ StoreError::Corrupt { .. })) => {
            return Driven::End(RunEnd::Stuck(format!("in {}: {error}", store.describe())));
        }
        (Err(error), _) | (_, Err(error)) => return Driven::Again(error.to_string()),
    };
    let journal = Arc::new(
        Journal::new(
            (store.clone(), codec.clone()),
            row.id.as_str().into(),
            W::STEPS,
            (done, failed),
            fence.cloned(),
            lost.clone(),
            runner.clock(),
        )
        .cancelling(row.cancel.clone()),
    );
    // Its undoing ended with a compensation failed for good: journaled,
    // so that compensation does not run again.
    if let Some((title, failure)) = journal.undo_failed() {
        return Driven::End(RunEnd::CompensationFailed {
            error: failure,
            step: Some(title),
        });
    }
    let driven = async {
        let ctx = runner.context(W::context().journal(journal.clone()));
        // Unless the runner's context factory gave one, a durable run's
        // correlation id is its run id: journaled, so every process that
        // drives the run, before a crash or after, logs the same id.
        if let Err(crate::context::MetadataError::Missing { .. }) =
            ctx.try_metadata::<String>(crate::behavior::logging::CORRELATION_ID)
        {
            ctx.set_metadata(
                crate::behavior::logging::CORRELATION_ID,
                row.id.as_str().to_owned(),
            );
        }
        // A lease found gone (a refused write, a renewal that did not renew)
        // stops the run at its next await: nothing more of it runs here.
        let run = runner
            .run_caught(workflow, &ctx, input)
            .instrument(super::trace::drive_span(&row).unwrap_or_else(tracing::Span::none));
        tokio::pin!(run);
        let ran = tokio::select! {
            ran = &mut run => ran,
            () = lost.cancelled() => {
                ctx.cancel();
                run.await
            }
            // A wait suspended the run (or could not reach the journal): the
            // run is let go here, its future dropped where it waits.
            () = journal.halted().cancelled() => {
                return match journal.halt() {
                    Some(Halt::Suspended(wake)) => Driven::Suspended(wake),
                    Some(Halt::Cancelled) => Driven::Cancelling,
                    // Another instance owns the run now.
                    Some(Halt::Fault(StoreError::LeaseLost { .. })) => Driven::Stopped,
                    Some(Halt::Fault(error)) => Driven::Again(error.to_string()),
                    None => Driven::Again("a wait stopped the run".to_owned()),
                };
            }
            // Asked to stop while it runs: stopped at its next await, then
            // driven again to be undone. Once: a token already cancelled when
            // the row read shows no cancel would fire at once, in a loop.
            () = signals.cancel.cancelled(), if row.cancel.is_none() && !cancel_seen => {
                ctx.cancel();
                drop(run.await);
                return Driven::Cancelling;
            }
        };
        if lost.is_cancelled() {
            tracing::warn!(run = %row.id, workflow = W::NAME, instance = runner.instance(), "lease lost: this instance stopped the run; another owns it");
            return Driven::Stopped;
        }
        let error = match ran {
            Ok(Ok(output)) => {
                return Driven::End(match W::OUTPUT.encode(&*codec, &output) {
                    Ok(bytes) => RunEnd::Completed(bytes),
                    Err(e) => RunEnd::Failed {
                        error: format!("the output does not encode: {e}"),
                        step: None,
                    },
                });
            }
            Ok(Err(error)) => error,
            Err(panic) => {
                return Driven::End(RunEnd::Failed {
                    error: format!("panicked: {panic}"),
                    step: None,
                });
            }
        };
        if let WorkflowError::Cancelled { .. } = error
            && runner.stopping().is_cancelled()
        {
            return Driven::Stopped;
        }
        match journal_error(&error) {
            // Another instance owns the run now; this one stops here, and says
            // so: the step's work here was done for nothing.
            Some(lost @ StoreError::LeaseLost { .. }) => {
                tracing::warn!(run = %row.id, workflow = W::NAME, instance = runner.instance(), %lost, "lease lost: this instance's step result was refused");
                return Driven::Stopped;
            }
            // The step did its work, or may have; the journal could not say so.
            Some(
                StoreError::Database { .. } | StoreError::NoSuchRun(_) | StoreError::Conflict { .. },
            ) => {
                return Driven::Again(error.to_string());
            }
            // A row that does not read back, a store that cannot do what the
            // step asks: driving it again changes nothing, and it was not the
            // step's failure to undo. Parked, with why.
            Some(fault) => {
                return Driven::End(RunEnd::Stuck(format!("in {}: {fault}", store.describe())));
            }
            None => {}
        }
        if let WorkflowError::CompensationFailed { .. } = error {
            return Driven::End(RunEnd::CompensationFailed {
                error: error.to_string(),
                step: Some(error.step().title.to_string()),
            });
        }
        // Failed with the cancel it was asked for (here, or journaled before
        // a restart), and undone.
        if let Some(reason) = &row.cancel
            && error.reason() == Cancelled::reason_of(reason)
        {
            return Driven::End(RunEnd::Cancelled {
                reason: reason.clone(),
                step: Some(error.step().title.to_string()),
            });
        }
        Driven::End(RunEnd::Failed {
            error: error.to_string(),
            step: Some(error.step().title.to_string()),
        })
    }
    .await;
    settled(&journal, driven, lost).await
}

/// What the driver does with `driven`: an end takes the row of the last
/// step, deferred to it, along; any other outcome leaves the run for a
/// later drive, which reads the journal, so the deferred row is written
/// first (if this process still holds the run).
async fn settled(journal: &Journal, driven: Driven, lost: &CancellationToken) -> Driven {
    match driven {
        Driven::End(end) => match journal.take_deferred() {
            Some(row) => Driven::EndWith(end, row),
            None => Driven::End(end),
        },
        Driven::Stopped if lost.is_cancelled() => Driven::Stopped,
        driven => match (journal.settle().await, driven) {
            (Ok(()), driven) => driven,
            (Err(_), Driven::Stopped) => Driven::Stopped,
            (Err(error), Driven::Again(why)) => {
                Driven::Again(format!("{why}; the last step's row: {error}"))
            }
            (Err(error), _) => Driven::Again(format!("the last step's row: {error}")),
        },
    }
}

/// The journal error a step failed with, if that is why it failed.
fn journal_error(error: &WorkflowError) -> Option<&StoreError> {
    match error {
        WorkflowError::Failed { error, .. } => error
            .downcast_ref::<JournalFailure>()
            .map(|JournalFailure(error)| error),
        // A compensation that could not journal itself did not fail: it
        // runs again.
        WorkflowError::CompensationFailed { failure, .. } => journal_error(failure),
        _ => None,
    }
}

/// The runs this process is driving, by id: each with the flag its
/// handles wait on, and the token that stops it when its lease is gone.
#[derive(Default)]
pub(crate) struct InFlight {
    runs: Mutex<HashMap<String, Driving>>,
    // Told whenever a run leaves, for a host draining at shutdown.
    left: Notify,
}

/// A run in flight here.
#[derive(Clone)]
pub(crate) struct Driving {
    pub(crate) ended: watch::Receiver<bool>,
    pub(crate) signals: Signals,
}

impl Driving {
    pub(crate) fn flight(&self) -> Flight {
        Flight {
            ended: self.ended.clone(),
            end: self.signals.end.clone(),
        }
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("runs", &self.len())
            .finish()
    }
}

impl InFlight {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, Driving>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The ids of the runs in flight.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The flag run `id`'s handles wait on, if it is in flight here.
    pub(crate) fn ended(&self, id: &str) -> Option<watch::Receiver<bool>> {
        self.lock().get(id).map(|driving| driving.ended.clone())
    }

    /// Run `id`'s flight, if it is in flight here.
    pub(crate) fn flight(&self, id: &str) -> Option<Flight> {
        self.lock().get(id).map(Driving::flight)
    }

    /// Stops the runs among `ids` still in flight here: their leases are
    /// gone.
    pub(crate) fn lost(&self, ids: &[String]) {
        let runs = self.lock();
        for id in ids {
            if let Some(driving) = runs.get(id) {
                driving.signals.lost.cancel();
            }
        }
    }

    /// Stops the runs among `ids` still in flight here, to be undone: they
    /// were asked to stop.
    pub(crate) fn cancel(&self, ids: &[String]) {
        let runs = self.lock();
        for id in ids {
            if let Some(driving) = runs.get(id) {
                driving.signals.cancel.cancel();
            }
        }
    }

    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
        self.left.notify_waiters();
    }

    /// Waits until no run is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            // Registered before the check, so a run leaving in between
            // still wakes this.
            left.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            left.await;
        }
    }
}

/// Runs driven elsewhere that handles here wait for, each with the flag
/// its handles watch, and whether the watcher runs. One lock for both, so
/// a run watched as the watcher leaves still gets one.
#[derive(Default)]
pub(crate) struct Watched {
    state: Mutex<(HashMap<String, watch::Sender<bool>>, bool)>,
}

/// The watched runs, locked, with the watcher's flag.
pub(crate) struct WatchedGuard<'a>(MutexGuard<'a, (HashMap<String, watch::Sender<bool>>, bool)>);

impl Watched {
    pub(crate) fn lock(&self) -> WatchedGuard<'_> {
        WatchedGuard(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl std::ops::Deref for WatchedGuard<'_> {
    type Target = HashMap<String, watch::Sender<bool>>;
    fn deref(&self) -> &Self::Target {
        &self.0.0
    }
}

impl std::ops::DerefMut for WatchedGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0.0
    }
}

impl WatchedGuard<'_> {
    pub(crate) fn polling(&mut self) -> &mut bool {
        &mut self.0.1
    }
}

/// Runs of one workflow an instance claimed, and takeovers among them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Claims {
    pub(crate) claimed: u64,
    pub(crate) takeovers: u64,
}

/// A one-process store's suspended runs, as the runner that owns it wakes
/// them: whether its waker runs, and what tells it to look again (a run
/// suspended here, an event or cancel sent here).
#[derive(Default)]
pub(crate) struct Sleepers {
    pub(crate) waking: Mutex<bool>,
    pub(crate) look: Notify,
}
