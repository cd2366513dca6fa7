//! A durable run as its starter sees it: its id, and its result once the
//! runner that owns it finishes it (or already had).

use std::fmt;

use tokio::sync::watch;

use super::codec::{Codec, CodecError, ValueCodec};
use super::driver::{Flight, Written};
use super::store::{RunEnd, RunStatus, Store, StoreError};

/// Why a durable run could not be started, or did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum DurableError {
    /// The runner has no store (`Runner::builder().store(..)`).
    NoStore,
    /// The workflow is not registered with the runner
    /// (`Runner::builder().durable(..)`).
    NotRegistered {
        /// Its name.
        workflow: String,
    },
    /// The run id belongs to a run of another workflow.
    OtherWorkflow {
        /// The run.
        run: String,
        /// The workflow that owns it.
        owner: String,
    },
    /// The input could not be encoded.
    Encode {
        /// The run.
        run: String,
        /// Why.
        source: CodecError,
    },
    /// The run id exists with another input: starting it again must be
    /// the same request (an idempotency key reused for another body).
    InputMismatch {
        /// The run.
        run: String,
    },
    /// The store failed.
    Store(StoreError),
    /// The run failed; the journal holds why.
    Failed {
        /// The run.
        run: String,
        /// The title of the step it failed at, when a step failed it.
        step: Option<String>,
        /// Its error, as recorded.
        error: String,
    },
    /// The run failed, and then a compensation failed too: what it should
    /// have undone may still stand.
    CompensationFailed {
        /// The run.
        run: String,
        /// The title of the step it failed at.
        step: Option<String>,
        /// Both failures, as recorded.
        error: String,
    },
    /// The run is parked: the code no longer matches its journal.
    Incompatible {
        /// The run.
        run: String,
        /// Why.
        reason: String,
    },
    /// The run is parked: nobody could make progress on it (its journal
    /// failed it past the runner's bound, or a row does not read back).
    /// [`Runner::resume_parked`](crate::host::Runner::resume_parked) puts
    /// it back once the cause is fixed.
    Stuck {
        /// The run.
        run: String,
        /// Why.
        reason: String,
    },
    /// The run was cancelled by id: it stopped, and what it had done was
    /// undone.
    Cancelled {
        /// The run.
        run: String,
        /// Who or why, as the canceller said.
        reason: String,
    },
    /// The run is not running, so it cannot be acted on as asked (a
    /// cancel of a finished run, a redrive of one that did not fail).
    NotRunning {
        /// The run.
        run: String,
        /// Its status.
        status: RunStatus,
        /// What was asked.
        asked: &'static str,
    },
    /// The runner stopped (shut down) before the run ended; the run is
    /// still in the journal and resumes when a runner opens the store.
    Stopped {
        /// The run.
        run: String,
    },
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurableError::NoStore => {
                f.write_str("the runner has no store: build it with `Runner::builder().store(..)`")
            }
            DurableError::NotRegistered { workflow } => write!(
                f,
                "workflow \"{workflow}\" is not registered: add it with \
                 `Runner::builder().durable(..)`"
            ),
            DurableError::OtherWorkflow { run, owner } => {
                write!(f, "run \"{run}\" is a run of workflow \"{owner}\"")
            }
            DurableError::Encode { run, source } => {
                write!(f, "run \"{run}\": the input does not encode: {source}")
            }
            DurableError::InputMismatch { run } => write!(
                f,
                "run \"{run}\" exists with another input; a run id names one request"
            ),
            DurableError::Store(e) => fmt::Display::fmt(e, f),
            DurableError::Failed { run, error, .. } => {
                write!(f, "run \"{run}\" failed: {error}")
            }
            DurableError::CompensationFailed { run, error, .. } => {
                write!(f, "run \"{run}\" failed and could not be undone: {error}")
            }
            DurableError::Incompatible { run, reason } => {
                write!(f, "run \"{run}\" is incompatible with this code: {reason}")
            }
            DurableError::Stuck { run, reason } => {
                write!(f, "run \"{run}\" is parked as stuck: {reason}")
            }
            DurableError::Cancelled { run, reason } => {
                write!(f, "run \"{run}\" was cancelled: {reason}")
            }
            DurableError::NotRunning { run, status, asked } => {
                write!(f, "cannot {asked} run \"{run}\": it is {status}")
            }
            DurableError::Stopped { run } => write!(
                f,
                "run \"{run}\" did not end before its runner stopped; it resumes when a \
                 runner opens the store"
            ),
        }
    }
}

impl std::error::Error for DurableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DurableError::Encode { source, .. } => Some(source),
            DurableError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for DurableError {
    fn from(e: StoreError) -> Self {
        DurableError::Store(e)
    }
}

/// A started durable run. The run belongs to the runner, not to this
/// handle: dropping the handle (or the future awaiting it) leaves the run
/// going.
#[must_use = "a run goes on without its handle; keep it to read the result"]
pub struct RunHandle<T> {
    id: String,
    /// `None` for a handle from a runner without a store: its result says
    /// so rather than read an empty store.
    store: Option<Store>,
    /// The run's drive in this process, when there was one as the handle
    /// was made: the handle waits for it, and takes the end it wrote.
    flight: Option<Flight>,
    output: ValueCodec<T>,
    /// How long a running run not driven here is waited for.
    elsewhere: Elsewhere,
}

/// Whether a run that is running but not driven in this process will
/// end: on a shared store another instance drives it; on a store of one
/// process, this process's worker takes it up while it works.
#[derive(Clone, Debug)]
pub(crate) enum Elsewhere {
    /// This process's runner will, if the run is suspended (its waker
    /// drives it when it is due) or in flight again, until `stopped` says
    /// the runner stopped; nobody will otherwise.
    Waker {
        stopped: tokio_util::sync::CancellationToken,
        in_flight: std::sync::Arc<super::driver::InFlight>,
    },
    /// Another instance will: this flag, set by the runner's one watcher
    /// of runs elsewhere, says when it has.
    Instance(watch::Receiver<bool>),
    /// This process's worker will, until this token says it stopped.
    Worker(tokio_util::sync::CancellationToken),
}

impl<T> RunHandle<T> {
    pub(crate) fn new(
        id: String,
        store: Option<Store>,
        flight: Option<Flight>,
        output: ValueCodec<T>,
        elsewhere: Elsewhere,
    ) -> Self {
        RunHandle {
            id,
            store,
            flight,
            output,
            elsewhere,
        }
    }

    /// The run's id.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// let run = runner.start(&Ping::ID, "ping-1", ()).await.unwrap();
    /// assert_eq!(run.id(), "ping-1");
    /// # }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<T> RunHandle<T> {
    /// Waits for the run to end (if this process runs it) and reads its
    /// result from the journal.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// let run = runner.start(&Ping::ID, "ping-1", ()).await.unwrap();
    /// assert_eq!(run.result().await.unwrap(), 1);
    /// # }
    /// ```
    pub async fn result(mut self) -> Result<T, DurableError> {
        let store = self.store.clone().ok_or(DurableError::NoStore)?;
        if let Some(Flight { mut ended, end }) = self.flight.take() {
            // An error means the task is gone: the row says how it ended.
            let _ = ended.wait_for(|ended| *ended).await;
            // Ended by that drive: the end it wrote is the run's, with
            // nothing to read back.
            if let Some(Written { end, codec }) = end.get() {
                return self.outcome(end.clone(), || Ok(&**codec));
            }
        }
        let store = &store;
        // Waiting for this process's worker, reads grow apart (25ms,
        // doubling, up to a second).
        let mut pause = std::time::Duration::from_millis(25);
        // Reads of a run neither suspended nor driven here, in a row.
        let mut missed = 0;
        let run = loop {
            let run = store
                .run(&self.id)
                .await?
                .ok_or_else(|| StoreError::NoSuchRun(self.id.clone()))?;
            if run.status != RunStatus::Running {
                break run;
            }
            // Driven by another instance of a shared store: the runner's
            // watcher says when it ended (one query for every waiter). A
            // watcher gone (the runner stopped) leaves the run as it is.
            // Waiting for this process's worker: read until the run ends.
            // Otherwise a running run not driven here is one its runner
            // stopped.
            match &mut self.elsewhere {
                // Said ended, yet running (put back since): read at
                // growing intervals rather than in a loop.
                Elsewhere::Instance(ended) if *ended.borrow() => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                }
                Elsewhere::Instance(ended) => {
                    if ended.wait_for(|ended| *ended).await.is_err() {
                        break run;
                    }
                }
                Elsewhere::Worker(stopped) if !stopped.is_cancelled() => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                }
                // Woken and driven here again: wait for that drive. A
                // driver is in flight before it clears the run's wait, and
                // a run suspends before its driver leaves.
                Elsewhere::Waker { stopped, in_flight } if !stopped.is_cancelled() => {
                    if let Some(mut ended) = in_flight.ended(&self.id) {
                        let _ = ended.wait_for(|ended| *ended).await;
                        missed = 0;
                    } else if run.waiting.is_some() {
                        // Suspended: read until the waker drives it.
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(std::time::Duration::from_secs(1));
                        missed = 0;
                    } else if missed == 0 {
                        // Neither: read once more, as it may have ended or
                        // suspended since.
                        missed += 1;
                    } else {
                        break run;
                    }
                }
                _ => break run,
            }
        };
        let Some(end) = run.end() else {
            return Err(DurableError::Stopped { run: self.id });
        };
        self.outcome(end, || store.codec_of(&run))
    }

    /// The result a run that ended with `end` gives, its output decoded
    /// with the run's codec.
    fn outcome<'c>(
        self,
        end: RunEnd,
        codec: impl FnOnce() -> Result<&'c dyn Codec, StoreError>,
    ) -> Result<T, DurableError> {
        match end {
            RunEnd::Completed(bytes) => self.output.decode(codec()?, &bytes).map_err(|e| {
                DurableError::Store(StoreError::Corrupt {
                    run: self.id.clone(),
                    detail: format!("the output does not decode: {e}"),
                })
            }),
            RunEnd::Failed { error, step } => Err(DurableError::Failed {
                run: self.id,
                step,
                error,
            }),
            RunEnd::CompensationFailed { error, step } => Err(DurableError::CompensationFailed {
                run: self.id,
                step,
                error,
            }),
            RunEnd::Incompatible(reason) => Err(DurableError::Incompatible {
                run: self.id,
                reason,
            }),
            RunEnd::Stuck(reason) => Err(DurableError::Stuck {
                run: self.id,
                reason,
            }),
            RunEnd::Cancelled { reason, .. } => Err(DurableError::Cancelled {
                run: self.id,
                reason,
            }),
        }
    }
}

impl<T> fmt::Debug for RunHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHandle").field("id", &self.id).finish()
    }
}
