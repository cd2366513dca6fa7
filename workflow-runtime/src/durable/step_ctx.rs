//! What a durable step may know of itself (the run, its place, its
//! attempt) and do with its run: sleep, and wait for events, durably.

use std::fmt;
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::codec::Codec;
use super::journal::Journal;
use crate::behavior::BoxFuture;

/// Handed to a step that takes `&StepCtx` before its input. Its
/// [`key`](Self::key) is the same in every attempt and after every
/// restart, so an external API that takes an idempotency key sees one
/// operation, however often the step runs.
///
/// ```
/// use workflow_runtime::durable::StepCtx;
/// let step = StepCtx::new("order-42", 1, 2);
/// assert_eq!(step.key(), "order-42/1");
/// assert_eq!(step.attempt(), 2);
/// assert_eq!(step.run_id(), "order-42");
/// ```
pub struct StepCtx {
    run: Arc<str>,
    index: u32,
    attempt: u32,
    /// The run's journal, in a durable run.
    journal: Option<Arc<Journal>>,
    /// The attempt's waits so far: each sleep and event wait is numbered
    /// in the order the attempt reaches it, the same in every process. A
    /// clone counts on from where it was made (no allocation per attempt).
    waits: AtomicU32,
}

impl Clone for StepCtx {
    fn clone(&self) -> Self {
        StepCtx {
            run: self.run.clone(),
            index: self.index,
            attempt: self.attempt,
            journal: self.journal.clone(),
            waits: AtomicU32::new(self.waits.load(Ordering::Relaxed)),
        }
    }
}

impl PartialEq for StepCtx {
    fn eq(&self, other: &Self) -> bool {
        (&self.run, self.index, self.attempt) == (&other.run, other.index, other.attempt)
    }
}

impl Eq for StepCtx {}

impl std::hash::Hash for StepCtx {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.run, self.index, self.attempt).hash(state);
    }
}

impl StepCtx {
    /// A step's view of itself: for tests of step methods.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// assert_eq!(StepCtx::new("r", 0, 1).index(), 0);
    /// ```
    pub fn new(run: impl Into<Arc<str>>, index: u32, attempt: u32) -> Self {
        StepCtx {
            run: run.into(),
            index,
            attempt,
            journal: None,
            waits: AtomicU32::new(0),
        }
    }

    /// A durable step's view, its waits journaled in `journal`.
    pub(crate) fn journaled(mut self, journal: Option<Arc<Journal>>) -> Self {
        self.journal = journal;
        self
    }

    /// The next wait's place: the step's index and the wait's number.
    fn next_wait(&self) -> (u32, u32) {
        (self.index, self.waits.fetch_add(1, Ordering::Relaxed))
    }

    /// Sleeps for `duration`, durably: the wake time is journaled the
    /// first time the step gets here, and a long sleep suspends the run
    /// (it holds no task and no worker slot; a worker takes it up when it
    /// is due, after a crash or a restart too, at the original time).
    /// A run woken runs the step again from its start: its work before
    /// the sleep runs again, and the sleep, journaled, returns at once.
    /// Outside a durable run it is `tokio::time::sleep`.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let step = StepCtx::new("r", 0, 1);
    /// step.sleep(Duration::from_secs(3_600)).await; // on tokio's paused clock
    /// # }
    /// ```
    pub async fn sleep(&self, duration: Duration) {
        let place = self.next_wait();
        match &self.journal {
            Some(journal) => {
                let wake = journal
                    .now_ms()
                    .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
                journal.sleep(place, wake).await;
            }
            None => tokio::time::sleep(duration).await,
        }
    }

    /// Sleeps until `at` (wall-clock time), durably, as
    /// [`sleep`](Self::sleep) does.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// # use std::time::{Duration, SystemTime};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let step = StepCtx::new("r", 0, 1);
    /// step.sleep_until(SystemTime::now() - Duration::from_secs(1)).await; // already past
    /// # }
    /// ```
    pub async fn sleep_until(&self, at: SystemTime) {
        let wake = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let place = self.next_wait();
        match &self.journal {
            Some(journal) => journal.sleep(place, wake).await,
            None => {
                let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::time::sleep(left).await;
            }
        }
    }

    /// Waits for the next event named `name` sent to this run
    /// ([`Runner::send`](crate::host::Runner::send)), as a `T`: an event
    /// sent before the step got here is waiting for it; each event is
    /// consumed once, by one wait, journaled with it. Await it for
    /// `Option<T>`: `None` when [`within`](EventWait::within) set a
    /// deadline that passed first (journaled too). While nothing is
    /// there, the run is suspended: it holds no task and no worker slot.
    /// An event whose value is not a `T` is logged and passed over.
    /// Woken, the step runs again from its start, as after a sleep: its
    /// work before the wait runs again, and the wait, journaled, hands on
    /// the same event at once. Outside a durable run nothing is ever
    /// sent: it waits for the deadline.
    ///
    /// A step's waits run one after another: two raced in one step
    /// (`select!`, `join!`) are not supported.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let step = StepCtx::new("r", 0, 1);
    /// let approved: Option<bool> = step.event("approval").within(Duration::from_secs(60)).await;
    /// assert_eq!(approved, None);
    /// # }
    /// ```
    pub fn event<T>(&self, name: impl Into<String>) -> EventWait<'_, T>
    where
        T: serde::de::DeserializeOwned + Send,
    {
        EventWait {
            step: self,
            name: name.into(),
            within: None,
            value: PhantomData,
        }
    }

    /// `"{run id}/{step index}"`: stable across attempts and restarts.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// assert_eq!(StepCtx::new("r", 3, 1).key(), "r/3");
    /// ```
    pub fn key(&self) -> String {
        format!("{}/{}", self.run, self.index)
    }

    /// The run's id: the caller's, for a durable run; the context's
    /// execution id otherwise.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// assert_eq!(StepCtx::new("order-7", 0, 1).run_id(), "order-7");
    /// ```
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// The step's place in its workflow, from 0.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// assert_eq!(StepCtx::new("r", 2, 1).index(), 2);
    /// ```
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Which attempt this is, from 1, counting the attempts journaled
    /// before a restart.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// assert_eq!(StepCtx::new("r", 2, 3).attempt(), 3);
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl fmt::Debug for StepCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepCtx")
            .field("key", &self.key())
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl StepCtx {
    /// Runs another durable workflow as this run's child, and waits for
    /// its output: the child's run id is derived from this step's place
    /// (`"{run}/{step}/{n}"`), so a parent resumed after a crash waits for
    /// the same child rather than start another. While the child runs,
    /// the parent is suspended (no task, no worker slot) and woken when
    /// the child ends; cancelling the parent cancels the child. The child
    /// workflow must be registered with the runner (on a store shared by
    /// instances, with some worker's). Its failure is the
    /// [`DurableError`](super::DurableError) its handle would give. Woken,
    /// the parent's step runs again from its start, and the journaled
    /// child hands on its result at once; a redriven parent starts its
    /// children afresh (`"{run}/{step}/{n}~{redrives}"`).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{DurableError, Store, StepCtx};
    /// # use workflow_runtime::host::Runner;
    /// struct Ship;
    ///
    /// #[workflow(durable)]
    /// impl Ship {
    ///     #[step(given = "a parcel")]
    ///     fn label(&self, order: u32) -> String { format!("parcel {order}") }
    /// }
    ///
    /// struct Order;
    ///
    /// #[workflow(durable)]
    /// impl Order {
    ///     #[step(given = "an order")]
    ///     async fn ship(&self, step: &StepCtx, id: u32) -> Result<String, DurableError> {
    ///         step.child(&Ship::ID, id).await
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Order).durable(Ship).build().unwrap();
    /// let run = runner.start(&Order::ID, "order-9", 9).await.unwrap();
    /// assert_eq!(run.result().await.unwrap(), "parcel 9");
    /// let child = runner.status("order-9/0/0").await.unwrap();
    /// assert_eq!(child.parent.as_deref(), Some("order-9"));
    /// # }
    /// ```
    pub async fn child<W: super::Durable>(
        &self,
        workflow: &super::WorkflowId<W>,
        input: W::Input,
    ) -> Result<W::Output, super::DurableError> {
        use super::{DurableError, RunStatus};
        let (step, wait) = self.next_wait();
        let Some(journal) = &self.journal else {
            // Outside a durable run there is no journal to start it in.
            return Err(DurableError::NoStore);
        };
        // A redriven parent starts its children afresh.
        let id = match journal.redrives() {
            0 => format!("{}/{step}/{wait}", self.run),
            n => format!("{}/{step}/{wait}~{n}", self.run),
        };
        let bytes =
            W::INPUT
                .encode(journal.codec(), &input)
                .map_err(|source| DurableError::Encode {
                    run: id.clone(),
                    source,
                })?;
        let mut row = super::RunRow::new(&id, workflow.name(), W::FINGERPRINT, bytes);
        let now = journal.now_ms();
        (row.created_ms, row.updated_ms) = (now, now);
        row.codec = journal.codec().name().to_owned();
        row.parent = Some(self.run.to_string());
        // The child joins the trace of the step that started it.
        row.trace = super::trace::current();
        // Due at once, as a run woken: whoever wakes runs takes it up.
        (row.waiting, row.wake_ms) = (Some("start".to_owned()), Some(now));
        match journal.child((step, wait), row).await {
            super::journal::ChildEnd::Completed(bytes) => {
                W::OUTPUT.decode(journal.codec(), &bytes).map_err(|e| {
                    DurableError::Store(super::StoreError::Corrupt {
                        run: id,
                        detail: format!("the child's output does not decode: {e}"),
                    })
                })
            }
            super::journal::ChildEnd::Ended {
                status,
                step,
                error,
            } => Err(match status {
                RunStatus::CompensationFailed => DurableError::CompensationFailed {
                    run: id,
                    step,
                    error,
                },
                RunStatus::Cancelled => DurableError::Cancelled {
                    run: id,
                    reason: error,
                },
                RunStatus::Incompatible => DurableError::Incompatible {
                    run: id,
                    reason: error,
                },
                RunStatus::Stuck => DurableError::Stuck {
                    run: id,
                    reason: error,
                },
                _ => DurableError::Failed {
                    run: id,
                    step,
                    error,
                },
            }),
        }
    }
}

/// A step's wait for an event: [`StepCtx::event`]. Await it.
#[must_use = "an event wait does nothing unless awaited"]
pub struct EventWait<'a, T> {
    step: &'a StepCtx,
    name: String,
    within: Option<Duration>,
    value: PhantomData<fn() -> T>,
}

impl<T> EventWait<'_, T> {
    /// Gives up `within` after the step first gets here (journaled: a
    /// resumed run keeps the original deadline); the wait is then `None`.
    ///
    /// ```
    /// # use workflow_runtime::durable::StepCtx;
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let step = StepCtx::new("r", 0, 1);
    /// let paid: Option<u64> = step.event("paid").within(Duration::from_secs(1)).await;
    /// assert!(paid.is_none());
    /// # }
    /// ```
    pub fn within(mut self, within: Duration) -> Self {
        self.within = Some(within);
        self
    }
}

impl<T> fmt::Debug for EventWait<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("name", &self.name)
            .field("within", &self.within)
            .finish()
    }
}

impl<'a, T> IntoFuture for EventWait<'a, T>
where
    T: serde::de::DeserializeOwned + Send + 'a,
{
    type Output = Option<T>;
    type IntoFuture = BoxFuture<'a, Option<T>>;

    fn into_future(self) -> Self::IntoFuture {
        let place = self.step.next_wait();
        Box::pin(async move {
            let Some(journal) = &self.step.journal else {
                match self.within {
                    Some(within) => tokio::time::sleep(within).await,
                    None => std::future::pending().await,
                }
                return None;
            };
            let accept = |codec: &dyn Codec, bytes: &[u8]| {
                super::codec::decode::<T>(codec, bytes)
                    .map(drop)
                    .map_err(|e| format!("not a `{}`: {e}", std::any::type_name::<T>()))
            };
            let bytes = journal
                .event(place, &self.name, self.within, &accept)
                .await?;
            // Accepted as a `T` before it was journaled.
            journal.decode_value::<T>(&bytes).ok()
        })
    }
}
