//! Crash injection for durable runs: a memory store that "dies" at a
//! chosen journal write, before or after it lands. From then on every call
//! on it waits forever, as a killed process does nothing more; a new runner
//! on the memory store underneath recovers the run in the same test.

use std::future::{Future, pending};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::behavior::BoxFuture;
use crate::durable::{
    Backend, EventRow, FailureRow, Fence, Inserted, MemoryStore, Redrive, RunEnd, RunRow,
    RunStatus, Sent, StepRow, StoreError, Suspension, WorkflowCounts,
};

/// Where the process dies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Crash {
    /// Before the journal row of the step (or compensation) titled so is
    /// written: the step did its work, and the journal does not know.
    Before(String),
    /// Right after that row is written: the journal knows, and nothing
    /// after it happens. For a last step whose row is written with the
    /// run's end (see [`BeforeEnd`](Self::BeforeEnd)), the run has ended.
    After(String),
    /// Before the run's end is written: every step before the last
    /// journaled one is journaled. That one's row is written with the end
    /// when only `then` steps (or a `finally` that takes nothing) follow
    /// it and it is not transactional, as the stores do, so it runs again
    /// after this crash; otherwise it is journaled too.
    BeforeEnd,
}

impl Crash {
    /// Before the row of the step titled `title`.
    ///
    /// ```
    /// use workflow_runtime::testing::Crash;
    /// assert_eq!(Crash::before("charge card"), Crash::Before("charge card".into()));
    /// ```
    pub fn before(title: impl Into<String>) -> Self {
        Crash::Before(title.into())
    }

    /// Right after the row of the step titled `title`.
    ///
    /// ```
    /// use workflow_runtime::testing::Crash;
    /// assert_eq!(Crash::after("ship"), Crash::After("ship".into()));
    /// ```
    pub fn after(title: impl Into<String>) -> Self {
        Crash::After(title.into())
    }
}

struct Plan {
    at: Crash,
    dead: AtomicBool,
    died: Notify,
}

/// A [`MemoryStore`] that dies at a [`Crash`] point. Give a runner this
/// store, start a run, wait for [`crashed`](Self::crashed), then recover
/// with a runner on the memory store underneath.
///
/// ```
/// use workflow_runtime::durable::{Durable, MemoryStore, Store};
/// use workflow_runtime::host::Runner;
/// use workflow_runtime::prelude::*;
/// use workflow_runtime::testing::{Crash, CrashingStore};
///
/// struct Pay;
/// #[workflow(durable)]
/// impl Pay {
///     #[step(given = "an order")]
///     fn order(&self, cents: u32) -> u32 { cents }
///     #[step(when = "charge card")]
///     fn charge(&self, cents: u32) -> String { format!("charged {cents}") }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let memory = MemoryStore::new();
/// let dying = CrashingStore::new(memory.clone(), Crash::after("an order"));
/// let first = Runner::builder().store(Store::new(dying.clone())).durable(Pay).build().unwrap();
/// let _ = first.start(&Pay::ID, "pay-1", 250).await.unwrap();
/// dying.crashed().await;
///
/// // The next process: the run resumes from its journal.
/// let second = Runner::builder().store(Store::new(memory)).durable(Pay).build().unwrap();
/// assert_eq!(second.resume().await.unwrap(), 1);
/// let run = second.start(&Pay::ID, "pay-1", 250).await.unwrap();
/// assert_eq!(run.result().await.unwrap(), "charged 250");
/// # }
/// ```
#[derive(Clone)]
pub struct CrashingStore {
    inner: MemoryStore,
    plan: Arc<Plan>,
}

impl CrashingStore {
    /// `inner`, dying at `at`.
    pub fn new(inner: MemoryStore, at: Crash) -> Self {
        CrashingStore {
            inner,
            plan: Arc::new(Plan {
                at,
                dead: AtomicBool::new(false),
                died: Notify::new(),
            }),
        }
    }

    /// Waits until the crash point was reached.
    pub async fn crashed(&self) {
        loop {
            let died = self.plan.died.notified();
            if self.is_dead() {
                return;
            }
            died.await;
        }
    }

    /// Whether the crash point was reached.
    ///
    /// ```
    /// use workflow_runtime::durable::MemoryStore;
    /// use workflow_runtime::testing::{Crash, CrashingStore};
    /// assert!(!CrashingStore::new(MemoryStore::new(), Crash::BeforeEnd).is_dead());
    /// ```
    pub fn is_dead(&self) -> bool {
        self.plan.dead.load(Ordering::SeqCst)
    }

    fn die(&self) {
        self.plan.dead.store(true, Ordering::SeqCst);
        self.plan.died.notify_waiters();
    }

    /// Makes the call unless the store is dead; a dead store never
    /// answers. The call is made only then: a store may do its work when
    /// called, before its future is polled.
    fn alive<'a, T: Send + 'a, F>(
        &'a self,
        call: impl FnOnce() -> F + Send + 'a,
    ) -> BoxFuture<'a, Result<T, StoreError>>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'a,
    {
        Box::pin(async move {
            if self.is_dead() {
                pending::<()>().await;
            }
            call().await
        })
    }

    /// A write that may be the crash point.
    fn write<'a, T: Send + 'a, F>(
        &'a self,
        here: bool,
        before: bool,
        call: impl FnOnce() -> F + Send + 'a,
    ) -> BoxFuture<'a, Result<T, StoreError>>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'a,
    {
        Box::pin(async move {
            if self.is_dead() || (here && before) {
                self.die();
                pending::<()>().await;
            }
            let written = call().await;
            if here {
                self.die();
                pending::<()>().await;
            }
            written
        })
    }

    fn at_step(&self, title: &str) -> (bool, bool) {
        match &self.plan.at {
            Crash::Before(at) => (at == title, true),
            Crash::After(at) => (at == title, false),
            Crash::BeforeEnd => (false, false),
        }
    }
}

impl Backend for CrashingStore {
    fn describe(&self) -> String {
        format!("{} (crashing at {:?})", self.inner.describe(), self.plan.at)
    }
    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        self.alive(move || self.inner.insert_run(run))
    }
    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>> {
        self.alive(move || self.inner.run(id))
    }
    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        self.alive(move || self.inner.steps(run))
    }
    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (here, before) = self.at_step(&step.title);
        self.write(here, before, move || self.inner.record_step(run, step))
    }
    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.alive(move || self.inner.record_failure(run, failure))
    }
    fn failures<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<FailureRow>, StoreError>> {
        self.alive(move || self.inner.failures(run))
    }
    fn finish_run<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let here = self.plan.at == Crash::BeforeEnd;
        self.write(here, true, move || self.inner.finish_run(run, end))
    }
    // One write, as the stores make it: a crash before the last step's
    // row is a crash before the end, and one after it follows the end.
    fn finish_run_with<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
        last: Option<&'a StepRow>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (at_step, before) = last.map_or((false, true), |row| self.at_step(&row.title));
        let (here, before) = match self.plan.at == Crash::BeforeEnd {
            true => (true, true),
            false => (at_step, before),
        };
        self.write(here, before, move || {
            self.inner.finish_run_with(run, end, last, fence)
        })
    }
    fn running(&self) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        self.alive(move || self.inner.running())
    }
    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.alive(move || self.inner.unpark(run))
    }
    fn counts_by_workflow(&self, now_ms: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>> {
        self.alive(move || self.inner.counts_by_workflow(now_ms))
    }
    fn suspend<'a>(
        &'a self,
        run: &'a str,
        suspension: Option<&'a Suspension>,
        fence: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.alive(move || self.inner.suspend(run, suspension, fence))
    }
    fn send_event<'a>(
        &'a self,
        run: &'a str,
        name: &'a str,
        payload: &'a [u8],
        key: Option<&'a str>,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Sent, StoreError>> {
        self.alive(move || self.inner.send_event(run, name, payload, key, now_ms))
    }
    fn events<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<EventRow>, StoreError>> {
        self.alive(move || self.inner.events(run))
    }
    fn request_cancel<'a>(
        &'a self,
        run: &'a str,
        reason: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.alive(move || self.inner.request_cancel(run, reason, now_ms))
    }
    fn redrive<'a>(
        &'a self,
        run: &'a str,
        redrive: &'a Redrive,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.alive(move || self.inner.redrive(run, redrive))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
