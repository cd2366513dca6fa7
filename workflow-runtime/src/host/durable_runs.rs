//! Durable runs on a runner: starting them (idempotently, by run id),
//! handing them to the durable driver on tasks the runner owns, claiming
//! and leasing them on a shared store, resuming the ones a stopped process
//! left unfinished, and the durable side of health. The driving itself is
//! [`crate::durable::driver`]'s; the runner gives it what it needs through
//! [`Drives`].

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::runner::Runner;
use crate::context::{ContextBuilder, WorkflowContext};
use crate::durable::driver::{Drives, Driving, DurableEntry, Flight, Pause, RowSource, Signals};
use crate::durable::{
    Claimed, Durable, DurableError, Elsewhere, Fence, Inserted, RunCounts, RunHandle, RunRow,
    RunStatus, Store, StoreError, WorkflowId,
};
use crate::error::WorkflowError;

/// The durable driver's view of a runner.
impl Drives for Runner {
    fn store(&self) -> Option<&Store> {
        Runner::store(self)
    }
    fn clock(&self) -> crate::Clock {
        Runner::clock(self)
    }
    fn instance(&self) -> &str {
        Runner::instance(self)
    }
    fn stopping(&self) -> &CancellationToken {
        Runner::stopping(self)
    }
    fn redrive_limit(&self) -> (u32, std::time::Duration) {
        Runner::redrive_limit(self)
    }
    fn look_again(&self) {
        self.wake_sleepers();
    }
    fn context(&self, builder: ContextBuilder) -> WorkflowContext {
        Runner::context(self, builder)
    }
    fn run_caught<'a, W: Durable>(
        &'a self,
        workflow: &'a W,
        ctx: &'a WorkflowContext,
        input: W::Input,
    ) -> impl std::future::Future<Output = Result<Result<W::Output, WorkflowError>, String>> + Send + 'a
    {
        Runner::run_caught(self, workflow, ctx, input)
    }
}

/// How many runs [`Runner::resume`] claims at once from a shared store.
const RESUME_BATCH: u32 = 64;

/// Durable runs as a health check sees them: the journal's counts, the
/// oldest unfinished run's age, and what this process is driving.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DurableHealth {
    /// Healthy; degraded when runs are parked (incompatible or stuck) or their
    /// compensation failed (they wait for a person); unhealthy when the
    /// store cannot be read.
    pub status: super::HealthStatus,
    /// Runs per status in the store.
    pub counts: RunCounts,
    /// How long the oldest unfinished run has been going.
    pub oldest_running_age: Option<std::time::Duration>,
    /// Runs this process is driving now.
    pub in_flight: usize,
    /// This instance's name in leases.
    pub instance: String,
    /// Runs this instance claimed from a shared store.
    pub claimed: u64,
    /// Of those, runs claimed before (by an instance that died, paused
    /// past its lease or shut down, or by this instance before a restart).
    pub takeovers: u64,
    /// How long the oldest run waiting for a worker has waited.
    pub oldest_waiting_age: Option<std::time::Duration>,
    /// The same, workflow by workflow: each with runs in the store or
    /// registered here.
    pub workflows: BTreeMap<String, DurableWorkflowHealth>,
    /// On a shared store, every instance that holds live leases (this
    /// one too), with how many runs it holds: who is working, seen from
    /// any instance.
    pub instances: BTreeMap<String, u64>,
    /// Why the store could not be read, when it could not.
    pub error: Option<String>,
}

/// One durable workflow's runs as a health check sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DurableWorkflowHealth {
    /// Its runs per status in the store; `waiting` is its queue depth.
    pub counts: RunCounts,
    /// How long its oldest unfinished run has been going.
    pub oldest_running_age: Option<std::time::Duration>,
    /// How long its oldest run waiting for a worker has waited.
    pub oldest_waiting_age: Option<std::time::Duration>,
    /// Its runs this instance claimed from a shared store.
    pub claimed: u64,
    /// Of those, runs claimed before (see [`DurableHealth::takeovers`]).
    pub takeovers: u64,
}

/// The longest a tick loop sleeps before it looks at the clock and the
/// schedule again.
const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Runner {
    /// Starts a durable run of `W` with id `run_id`, or finds the one that
    /// has it: starting an id twice is one run, whose result both handles
    /// read (the same id with another input is
    /// [`DurableError::InputMismatch`]). The run belongs to the runner: it
    /// goes on if the caller (an HTTP handler whose client left, say) drops
    /// the handle.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Double;
    /// # #[workflow(durable)] impl Double { #[step(given = "n")] fn n(&self, n: u32) -> u32 { n * 2 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Double).build().unwrap();
    /// let first = runner.start(&Double::ID, "d-1", 21).await.unwrap();
    /// // Same id, same input: the same run.
    /// let second = runner.start(&Double::ID, "d-1", 21).await.unwrap();
    /// assert_eq!(first.result().await.unwrap(), 42);
    /// assert_eq!(second.result().await.unwrap(), 42);
    /// // Same id, another input: another request, refused.
    /// assert!(runner.start(&Double::ID, "d-1", 0).await.is_err());
    /// # }
    /// ```
    pub async fn start<W: Durable>(
        &self,
        workflow: &WorkflowId<W>,
        run_id: impl Into<String>,
        input: W::Input,
    ) -> Result<RunHandle<W::Output>, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let name = workflow.name();
        let entry = self
            .durable_entry(name)
            .ok_or_else(|| DurableError::NotRegistered {
                workflow: name.to_owned(),
            })?;
        let row = new_row(
            store,
            workflow,
            run_id.into(),
            &input,
            self.clock().now_ms(),
        )?;
        let id = row.id.clone();
        // The row is written, and its driver started, on a task of the
        // runner's: a caller dropped while the row is being written (a
        // client that left) must not leave a run that nobody drives.
        let runner = self.clone();
        let started = tokio::spawn(async move { runner.insert_and_drive(entry, row).await });
        let flight = match started.await {
            Ok(flight) => flight?,
            Err(panic) => {
                return Err(DurableError::Store(StoreError::Database {
                    store: store.describe(),
                    doing: format!("starting run \"{id}\""),
                    source: Box::new(panic),
                }));
            }
        };
        let elsewhere = self.elsewhere(&id);
        Ok(RunHandle::new(
            id,
            Some(store.clone()),
            flight,
            W::OUTPUT,
            elsewhere,
        ))
    }

    /// Resumes every unfinished run in the store of a workflow registered
    /// with this runner, each from its first unfinished step, and says how
    /// many it took up. A host calls it when it starts. On a store shared
    /// by instances (leases), it claims only runs no live lease holds, at
    /// most 64; a worker ([`work`](Self::work)) claims the rest as it has
    /// room.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// assert_eq!(runner.resume().await.unwrap(), 0);
    /// # }
    /// ```
    pub async fn resume(&self) -> Result<usize, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        if store.backend().leases() {
            // Shared with other instances: only runs no live lease holds,
            // a bounded batch; workers claim the rest as they have room.
            return self.claim_some(RESUME_BATCH).await;
        }
        // Runs a process left suspended wake when they are due.
        self.wake_sleepers();
        self.resume_some(usize::MAX).await
    }

    /// Puts a parked run back to work once its cause is fixed: a run
    /// parked [`Stuck`](RunStatus::Stuck) (its journal failed it past the
    /// runner's bound, a row did not read back) or
    /// [`Incompatible`](RunStatus::Incompatible) (journaled by a definition
    /// this runner now registers again). It resumes from its journal, here
    /// or, on a shared store, on whichever worker claims it. False when
    /// the run was not parked.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// runner.start(&Ping::ID, "p-1", ()).await.unwrap().result().await.unwrap();
    /// // Completed runs are not parked: nothing to put back.
    /// assert!(!runner.resume_parked("p-1").await.unwrap());
    /// # }
    /// ```
    pub async fn resume_parked(&self, run_id: &str) -> Result<bool, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let row = store
            .backend()
            .run(run_id)
            .await?
            .ok_or_else(|| DurableError::Store(StoreError::NoSuchRun(run_id.to_owned())))?;
        if !matches!(row.status, RunStatus::Stuck | RunStatus::Incompatible) {
            return Ok(false);
        }
        let refused = |reason: String| DurableError::Incompatible {
            run: row.id.clone(),
            reason,
        };
        let Some(entry) = self.durable_entry(&row.workflow) else {
            return Err(DurableError::NotRegistered {
                workflow: row.workflow.clone(),
            });
        };
        if row.fingerprint != entry.fingerprint() {
            return Err(refused(format!(
                "its journal was written by definition {} of \"{}\", this runner registers {}",
                row.fingerprint,
                row.workflow,
                entry.fingerprint()
            )));
        }
        if !store.backend().unpark(run_id).await? {
            return Ok(false);
        }
        if store.backend().leases() {
            self.wake_worker();
        } else if let Some(row) = store.backend().run(run_id).await? {
            drop(self.drive(entry, row, None));
        }
        Ok(true)
    }

    /// How many durable runs this process is driving now.
    ///
    /// ```
    /// # use workflow_runtime::host::Runner;
    /// assert_eq!(Runner::builder().build().unwrap().durable_in_flight(), 0);
    /// ```
    pub fn durable_in_flight(&self) -> usize {
        self.in_flight().len()
    }

    /// The durable side of health: the store's run counts, the oldest
    /// unfinished run's age, the runs in flight here.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::{HealthStatus, Runner};
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// runner.start(&Ping::ID, "p-1", ()).await.unwrap().result().await.unwrap();
    /// let health = runner.durable_health().await.unwrap();
    /// assert_eq!(health.status, HealthStatus::Healthy);
    /// assert_eq!(health.counts.completed, 1);
    /// # }
    /// ```
    pub async fn durable_health(&self) -> Result<DurableHealth, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let in_flight = self.durable_in_flight();
        let claims = self.claims();
        let age = |started: i64| {
            let age = self.clock().now_ms().saturating_sub(started);
            std::time::Duration::from_millis(u64::try_from(age).unwrap_or(0))
        };
        let (status, by_workflow, error) = match store
            .backend()
            .counts_by_workflow(self.clock().now_ms())
            .await
        {
            Ok(counts) => {
                // Parked runs and failed compensations wait for a person.
                let parked = counts
                    .values()
                    .any(|c| c.incompatible > 0 || c.stuck > 0 || c.compensation_failed > 0);
                let status = if parked {
                    super::HealthStatus::Degraded
                } else {
                    super::HealthStatus::Healthy
                };
                (status, counts, None)
            }
            Err(error) => (
                super::HealthStatus::Unhealthy,
                Default::default(),
                Some(error.to_string()),
            ),
        };
        let (instances, error) = match (error, store.backend().holders(self.clock().now_ms()).await)
        {
            (None, Ok(instances)) => (instances, None),
            (error, Ok(_)) => (BTreeMap::new(), error),
            (error, Err(holders)) => (BTreeMap::new(), error.or(Some(holders.to_string()))),
        };
        let status = if error.is_some() {
            super::HealthStatus::Unhealthy
        } else {
            status
        };
        let names = self.durable_names().into_iter();
        let names: std::collections::BTreeSet<String> = names
            .chain(by_workflow.keys().cloned())
            .chain(claims.keys().cloned())
            .collect();
        let mut total = RunCounts::default();
        let workflows: BTreeMap<String, DurableWorkflowHealth> = names
            .into_iter()
            .map(|name| {
                let counts = by_workflow.get(&name).cloned().unwrap_or_default();
                let claims = claims.get(&name).copied().unwrap_or_default();
                total.merge(&counts);
                let health = DurableWorkflowHealth {
                    oldest_running_age: counts.oldest_running_ms.map(age),
                    oldest_waiting_age: counts.oldest_waiting_ms.map(age),
                    counts,
                    claimed: claims.claimed,
                    takeovers: claims.takeovers,
                };
                (name, health)
            })
            .collect();
        Ok(DurableHealth {
            status,
            oldest_running_age: total.oldest_running_ms.map(age),
            oldest_waiting_age: total.oldest_waiting_ms.map(age),
            counts: total,
            in_flight,
            instance: self.instance().to_owned(),
            claimed: workflows.values().map(|w| w.claimed).sum(),
            takeovers: workflows.values().map(|w| w.takeovers).sum(),
            workflows,
            instances,
            error,
        })
    }

    /// Waits until this process drives no durable run.
    pub(crate) async fn durable_idle(&self) {
        self.in_flight().idle().await;
    }

    /// Writes `row` unless its run exists, and drives the run if it is
    /// unfinished; the flag that says when it ended, if it is running.
    async fn insert_and_drive(
        &self,
        entry: Arc<dyn DurableEntry<Runner>>,
        row: RunRow,
    ) -> Result<Option<Flight>, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        // Held in flight here before its row is written, on a store
        // without leases: no worker or waker of this runner takes the run
        // up between the write and the drive, so a run this call writes is
        // driven from the row it wrote, with nothing read back.
        let reserved = if store.backend().leases() {
            None
        } else {
            self.reserve(&row.id)
        };
        let (row, new) = match admit(store, row).await {
            Ok(admitted) => admitted,
            Err(error) => {
                // Out of flight: a waker that passed the run over while it
                // was held here looks again.
                if reserved.is_some() {
                    drop(reserved);
                    self.wake_sleepers();
                }
                return Err(error);
            }
        };
        if row.status != RunStatus::Running {
            return Ok(None);
        }
        if !store.backend().leases() {
            let Some(reserved) = reserved else {
                if let Some(flight) = self.in_flight().flight(&row.id) {
                    return Ok(Some(flight));
                }
                // Left this process since: as a run found anew.
                return Ok(self.drive_if_due(entry, row));
            };
            if !row.due(self.clock().now_ms()) {
                // Out of flight before its waker looks.
                drop(reserved);
                self.wake_sleepers();
                return Ok(None);
            }
            let from = if new {
                RowSource::Written
            } else {
                RowSource::Store
            };
            return Ok(Some(self.drive_reserved(reserved, entry, row, None, from)));
        }
        if let Some(flight) = self.in_flight().flight(&row.id) {
            return Ok(Some(flight));
        }
        // Journaled by another version of the workflow: left to an
        // instance that runs that version; the handle reads the store.
        if row.fingerprint != entry.fingerprint() {
            return Ok(None);
        }
        // Shared: drive it here if no other instance holds it; otherwise
        // its handle reads the store until the holder ends it.
        self.keep_leases();
        let now = self.clock().now_ms();
        let until = now + self.lease_ms();
        Ok(
            match store
                .backend()
                .claim_run(self.instance(), &row.id, (now, until))
                .await?
            {
                Some(claimed) => {
                    self.count_claim(&claimed.run.workflow, claimed.fence.epoch);
                    Some(self.drive(entry, claimed.run, Some(claimed.fence)))
                }
                None => None,
            },
        )
    }

    /// Who drives run `id`, running and not in flight here.
    fn elsewhere(&self, id: &str) -> Elsewhere {
        match self.store() {
            Some(store) if store.backend().leases() => Elsewhere::Instance(self.watch(id)),
            _ => match self.working() {
                Some(stopped) => Elsewhere::Worker(stopped),
                None => Elsewhere::Waker {
                    stopped: self.stopping().clone(),
                    in_flight: self.in_flight().clone(),
                },
            },
        }
    }

    /// The flag that says run `id`, driven elsewhere, ended: set by this
    /// runner's one watcher, which asks the store about every watched run
    /// at once, every poll interval, while any is watched.
    fn watch(&self, id: &str) -> watch::Receiver<bool> {
        let mut runs = self.watched().lock();
        let ended = runs
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe();
        if !std::mem::replace(runs.polling(), true) {
            let runner = self.clone();
            tokio::spawn(async move { runner.watch_runs().await });
        }
        drop(runs);
        ended
    }

    /// The watcher: until no run is watched or the runner stops.
    async fn watch_runs(&self) {
        let Some(store) = self.store().cloned() else {
            return;
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.poll_every()) => {}
                () = self.stopping().cancelled() => {
                    let mut runs = self.watched().lock();
                    runs.clear();
                    *runs.polling() = false;
                    return;
                }
            }
            let ids: Vec<String> = {
                let mut runs = self.watched().lock();
                // Handles dropped: nobody waits for those.
                runs.retain(|_, ended| ended.receiver_count() > 0);
                if runs.is_empty() {
                    *runs.polling() = false;
                    return;
                }
                runs.keys().cloned().collect()
            };
            match store.backend().finished(&ids).await {
                Ok(finished) => {
                    let mut runs = self.watched().lock();
                    for id in finished {
                        if let Some(ended) = runs.remove(&id) {
                            let _ = ended.send(true);
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "could not read which runs ended"),
            }
        }
    }

    /// Drives up to `room` of the store's running runs not in flight here
    /// (a store of one process, without leases): how many it took up.
    async fn resume_some(&self, room: usize) -> Result<usize, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        if room == 0 {
            return Ok(0);
        }
        let in_flight: std::collections::HashSet<String> =
            self.in_flight().ids().into_iter().collect();
        let mut resumed = 0;
        let now = self.clock().now_ms();
        // Runs suspended until later are not due: a sleeping run holds no
        // worker slot. Every due run is read, not `room` of them: runs of
        // workflows this runner does not register must not crowd out its
        // own.
        let due = store.backend().due(now, usize::MAX).await?;
        for row in due {
            if resumed == room {
                break;
            }
            if in_flight.contains(&row.id) {
                continue;
            }
            if let Some(entry) = self.durable_entry(&row.workflow) {
                drop(self.drive(entry, row, None));
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Claims up to `limit` runs of this runner's durable workflows that no
    /// live lease holds, and drives them; how many it claimed.
    async fn claim_some(&self, limit: u32) -> Result<usize, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let workflows = self.durable_versions();
        if workflows.is_empty() || limit == 0 {
            return Ok(0);
        }
        self.keep_leases();
        let now = self.clock().now_ms();
        let until = now + self.lease_ms();
        let claimed = store
            .backend()
            .claim(
                self.instance(),
                &workflows,
                limit,
                (now, until),
                self.orphans_after_ms(),
            )
            .await?;
        let n = claimed.len();
        for Claimed { run, fence } in claimed {
            self.count_claim(&run.workflow, fence.epoch);
            if let Some(entry) = self.durable_entry(&run.workflow) {
                drop(self.drive(entry, run, Some(fence)));
            }
        }
        Ok(n)
    }

    /// Adds run `run_id` of `W` to the store for any worker instance to
    /// run (this one too, if it works); its id, to read its result with
    /// [`handle`](Self::handle). Idempotent as [`start`](Self::start) is.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// let id = runner.enqueue(&Ping::ID, "p-1", ()).await.unwrap();
    /// // A store without leases has one process: this one runs it.
    /// runner.resume().await.unwrap();
    /// assert_eq!(runner.handle(&Ping::ID, id).result().await.unwrap(), 1);
    /// # }
    /// ```
    pub async fn enqueue<W: Durable>(
        &self,
        workflow: &WorkflowId<W>,
        run_id: impl Into<String>,
        input: W::Input,
    ) -> Result<String, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let now = self.clock().now_ms();
        let (row, _) = admit(store, new_row(store, workflow, run_id.into(), &input, now)?).await?;
        self.wake_worker();
        Ok(row.id)
    }

    /// A handle on run `run_id` of `W`, wherever it runs: its result once
    /// an instance ends it ([`DurableError::NoStore`] on a runner without
    /// a store).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// runner.start(&Ping::ID, "p-1", ()).await.unwrap();
    /// assert_eq!(runner.handle(&Ping::ID, "p-1").result().await.unwrap(), 1);
    /// # }
    /// ```
    pub fn handle<W: Durable>(
        &self,
        workflow: &WorkflowId<W>,
        run_id: impl Into<String>,
    ) -> RunHandle<W::Output> {
        let _ = workflow;
        let id = run_id.into();
        let flight = self.in_flight().flight(&id);
        let elsewhere = self.elsewhere(&id);
        RunHandle::new(id, self.store().cloned(), flight, W::OUTPUT, elsewhere)
    }

    /// Works as a worker instance: claims runs of its durable workflows
    /// that no live lease holds (enqueued anywhere, or left by an instance
    /// that died), up to `capacity` at once, until the runner stops. A
    /// host with [`worker`](super::HostBuilder::worker) does this.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// // The memory store has no leases: its one process resumes instead.
    /// let worker = tokio::spawn({
    ///     let runner = runner.clone();
    ///     async move { runner.work(8).await }
    /// });
    /// # worker.abort();
    /// # }
    /// ```
    pub async fn work(&self, capacity: usize) {
        self.work_until(capacity, self.stopping().clone()).await;
    }

    /// [`work`](Self::work) until `stop` is cancelled (a host's graceful
    /// shutdown): no run is claimed after it.
    pub(crate) async fn work_until(
        &self,
        capacity: usize,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let Some(store) = self.store() else { return };
        let leases = store.backend().leases();
        // Handles wait for the runs this loop will take up, until it ends.
        let _working = self.start_working();
        loop {
            let room = capacity.saturating_sub(self.durable_in_flight());
            let took = if leases {
                self.claim_some(u32::try_from(room).unwrap_or(u32::MAX))
                    .await
            } else {
                self.resume_some(room).await
            };
            let claimed = match took {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "could not claim durable runs");
                    0
                }
            };
            // Full, or nothing to claim: wait for a run to end, an enqueue
            // here, or the next look.
            if claimed == 0 {
                let woken = self.worker_wake();
                tokio::select! {
                    () = woken.notified() => {}
                    () = tokio::time::sleep(self.poll_every()) => {}
                    () = stop.cancelled() => return,
                }
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }

    /// Fires `W`'s ticks on a shared store until the runner stops (see
    /// [`HostBuilder::recurring_durable`](super::HostBuilder::recurring_durable)).
    pub(crate) async fn ticks<W>(
        &self,
        schedule: &crate::schedule::Schedule,
        ticks: &crate::schedule::Ticks,
        stop: tokio_util::sync::CancellationToken,
    ) where
        W: Durable,
        W::Input: Default,
    {
        let Some(store) = self.store().cloned() else {
            return;
        };
        if !store.backend().leases() {
            tracing::error!(
                workflow = W::NAME,
                "a durable recurring workflow needs a store shared with leases (PostgreSQL)"
            );
            return;
        }
        let input = match W::INPUT.encode(store.codec(), &W::Input::default()) {
            Ok(input) => input,
            Err(error) => {
                tracing::error!(workflow = W::NAME, %error, "the recurring workflow's input does not encode");
                return;
            }
        };
        // Ticks are times from the schedule alone (an interval's sit on
        // its grid from the epoch), so every instance computes the same;
        // the schedule's row starts at the first, unless another instance
        // wrote it already.
        let now = self.clock().now_ms();
        let first = if schedule.run_immediately {
            ticks.at_or_before(now).or_else(|| ticks.after(now))
        } else {
            ticks.after(now)
        };
        let Some(first) = first else {
            tracing::info!(workflow = W::NAME, "the schedule fires no more");
            return;
        };
        let mut pause = Pause::new();
        loop {
            let next = match store.backend().next_tick(W::NAME, first).await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(workflow = W::NAME, %error, "could not read the schedule");
                    if pause.wait(self).await {
                        continue;
                    }
                    return;
                }
            };
            // A stored tick later than the schedule's next one is from a
            // schedule the code has since changed (or one that had ended):
            // start again from the schedule as it is now.
            if let Some(fresh) = ticks.after(self.clock().now_ms())
                && next > fresh
            {
                if let Err(error) = store
                    .backend()
                    .advance_tick(W::NAME, next, fresh, None)
                    .await
                {
                    tracing::warn!(workflow = W::NAME, %error, "could not advance the schedule");
                    if !pause.wait(self).await {
                        return;
                    }
                }
                continue;
            }
            if next == i64::MAX {
                tracing::info!(workflow = W::NAME, "the schedule fires no more");
                return;
            }
            // Long waits are taken a minute at a time, so a schedule moved
            // by another instance, or a wall clock set anew, is seen.
            let wait = next - self.clock().now_ms();
            if wait > 0 {
                let wait = std::time::Duration::from_millis(u64::try_from(wait).unwrap_or(0));
                tokio::select! {
                    () = tokio::time::sleep(wait.min(LONGEST_WAIT)) => {}
                    () = stop.cancelled() => return,
                }
                if wait > LONGEST_WAIT {
                    continue;
                }
            }
            // `next` is due. If the tick after it is too, ticks were
            // missed (no instance ran): the catch-up policy decides.
            let (fire, following) = ticks.plan(next, self.clock().now_ms(), schedule.catch_up);
            let run = fire.map(|tick| {
                let mut run = RunRow::new(
                    format!("{}@{tick}", W::NAME),
                    W::NAME,
                    W::FINGERPRINT,
                    input.clone(),
                );
                run.codec = store.codec().name().to_owned();
                run
            });
            // After its last tick the schedule's row points at the end of
            // time, so no instance fires it again.
            match store
                .backend()
                .advance_tick(W::NAME, next, following.unwrap_or(i64::MAX), run.as_ref())
                .await
            {
                Ok(true) if run.is_some() => self.wake_worker(),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(workflow = W::NAME, %error, "could not advance the schedule");
                    if !pause.wait(self).await {
                        return;
                    }
                    // The tick is still due (or another instance took it):
                    // read the schedule again.
                    continue;
                }
            }
            if following.is_none() {
                tracing::info!(workflow = W::NAME, "the schedule fires no more");
                return;
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }

    /// Lets go of this instance's leases, so other instances take its
    /// unfinished runs up at once rather than after their leases run out.
    pub async fn release_leases(&self) -> Result<u64, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        if !store.backend().leases() {
            return Ok(0);
        }
        // Nothing is renewed after this (a drained host's runner lives on
        // in its handles); a run claimed later starts the renewals again.
        self.stop_renewing();
        Ok(store.backend().release(self.instance()).await?)
    }

    /// Starts, once, the task that renews this instance's leases every
    /// third of a lease, until the runner stops.
    fn keep_leases(&self) {
        let Some(released) = self.start_renewing() else {
            return;
        };
        let runner = self.clone();
        tokio::spawn(async move {
            let every = std::time::Duration::from_millis(
                u64::try_from(runner.lease_ms() / 3).unwrap_or(1).max(1),
            );
            let lease =
                std::time::Duration::from_millis(u64::try_from(runner.lease_ms()).unwrap_or(0));
            // When the leases last held, as renewed (or when there were
            // none to hold).
            let mut held_since = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = runner.stopping().cancelled() => return,
                    () = released.cancelled() => return,
                }
                let Some(store) = runner.store() else { return };
                let now = runner.clock().now_ms();
                let runs = runner.in_flight().ids();
                if runs.is_empty() {
                    held_since = tokio::time::Instant::now();
                    continue;
                }
                let asked = tokio::time::Instant::now();
                match store
                    .backend()
                    .renew(runner.instance(), &runs, (now, now + runner.lease_ms()))
                    .await
                {
                    Ok(held) => {
                        held_since = asked;
                        // Taken over while this instance was paused or
                        // cut off: those drivers stop at their next await.
                        let gone: Vec<String> =
                            runs.into_iter().filter(|id| !held.contains(id)).collect();
                        if !gone.is_empty() {
                            tracing::warn!(instance = runner.instance(), runs = ?gone, "leases lost; stopping those runs here");
                            runner.in_flight().lost(&gone);
                        }
                        // Cancels asked by any instance reach the runs
                        // driven here by the next renewal.
                        match store.backend().cancelling(&held).await {
                            Ok(cancelling) => runner.in_flight().cancel(&cancelling),
                            Err(error) => {
                                tracing::warn!(%error, "could not read which runs are cancelled")
                            }
                        }
                    }
                    // Cut off from the store past what is left of the
                    // lease: others may take the runs over any moment, so
                    // none of their effects may happen here any more.
                    Err(error) if held_since.elapsed() + every >= lease => {
                        tracing::error!(%error, instance = runner.instance(), "could not renew leases for a lease's length; stopping this instance's runs");
                        runner.in_flight().lost(&runs);
                    }
                    Err(error) => tracing::warn!(%error, "could not renew leases"),
                }
            }
        });
    }

    /// Drives `row` on a task of its own unless this process already is;
    /// either way, the flag that says when it ended.
    pub(super) fn drive(
        &self,
        entry: Arc<dyn DurableEntry<Runner>>,
        row: RunRow,
        fence: Option<Fence>,
    ) -> Flight {
        match self.reserve(&row.id) {
            Some(reserved) => self.drive_reserved(reserved, entry, row, fence, RowSource::Store),
            None => {
                let in_flight = self.in_flight().lock();
                let Some(driving) = in_flight.get(&row.id) else {
                    // Left in between: as a run found anew.
                    drop(in_flight);
                    return self.drive(entry, row, fence);
                };
                let flight = driving.flight();
                if fence.is_some() {
                    // Claimed afresh while a driver here still holds an
                    // older claim (its lease ran out while this process was
                    // paused): that driver stops at its next await; drive
                    // the run again, under this claim, once it has.
                    driving.signals.lost.cancel();
                    let (runner, mut old) = (self.clone(), flight.ended.clone());
                    tokio::spawn(async move {
                        let _ = old.wait_for(|ended| *ended).await;
                        drop(runner.drive(entry, row, fence));
                    });
                }
                flight
            }
        }
    }

    /// Drives `row` unless it waits for something; the flag that says
    /// when it ended, if it is driven.
    fn drive_if_due(&self, entry: Arc<dyn DurableEntry<Runner>>, row: RunRow) -> Option<Flight> {
        if row.due(self.clock().now_ms()) {
            Some(self.drive(entry, row, None))
        } else {
            self.wake_sleepers();
            None
        }
    }

    /// Puts run `id` in flight here, unless it is: from then on, no other
    /// driver of this process takes it up. Dropped undriven, it leaves.
    fn reserve(&self, id: &str) -> Option<Reserved> {
        let mut in_flight = self.in_flight().lock();
        if in_flight.contains_key(id) {
            return None;
        }
        let (tx, rx) = watch::channel(false);
        let signals = Signals::default();
        in_flight.insert(
            id.to_owned(),
            Driving {
                ended: rx.clone(),
                signals: signals.clone(),
            },
        );
        Some(Reserved {
            done: Done {
                runner: self.clone(),
                id: id.to_owned(),
                tx,
            },
            flight: Flight {
                ended: rx,
                end: signals.end.clone(),
            },
            signals,
        })
    }

    /// Drives `row`, put in flight by `reserved`, on a task of its own;
    /// the flag that says when it ended.
    fn drive_reserved(
        &self,
        reserved: Reserved,
        entry: Arc<dyn DurableEntry<Runner>>,
        row: RunRow,
        fence: Option<Fence>,
        from: RowSource,
    ) -> Flight {
        let Reserved {
            done,
            signals,
            flight,
        } = reserved;
        tokio::spawn(async move {
            entry
                .drive(done.runner.clone(), row, fence, signals, from)
                .await;
            drop(done);
        });
        flight
    }
}

/// A new run's row: `input` encoded with the store's codec.
fn new_row<W: Durable>(
    store: &Store,
    workflow: &WorkflowId<W>,
    id: String,
    input: &W::Input,
    now_ms: i64,
) -> Result<RunRow, DurableError> {
    match W::INPUT.encode(store.codec(), input) {
        Ok(bytes) => {
            let mut row = RunRow::new(id, workflow.name(), W::FINGERPRINT, bytes);
            // By the runner's clock, which health's ages read too.
            (row.created_ms, row.updated_ms) = (now_ms, now_ms);
            row.codec = store.codec().name().to_owned();
            // The starter's trace, which every drive of the run joins.
            row.trace = crate::durable::trace::current();
            Ok(row)
        }
        Err(source) => Err(DurableError::Encode { run: id, source }),
    }
}

/// Writes `row` unless its run exists; the run as the store has it, and
/// whether this call wrote it. An existing run must be of the same
/// workflow, started with the same input.
async fn admit(store: &Store, row: RunRow) -> Result<(RunRow, bool), DurableError> {
    match store.backend().insert_run(&row).await? {
        Inserted::New => Ok((row, true)),
        Inserted::Existing(existing) if existing.workflow != row.workflow => {
            Err(DurableError::OtherWorkflow {
                run: row.id,
                owner: existing.workflow,
            })
        }
        Inserted::Existing(existing) => {
            // Compared as values, not bytes: a map may encode its keys in
            // another order.
            let theirs = store.codec_of(&existing)?.decode(&existing.input).ok();
            if theirs != store.codec().decode(&row.input).ok() {
                return Err(DurableError::InputMismatch { run: row.id });
            }
            Ok((existing, false))
        }
    }
}

/// A run put in flight here, not yet driven.
struct Reserved {
    done: Done,
    signals: Signals,
    flight: Flight,
}

/// Takes a run off the in-flight list and wakes its handles, however its
/// task ends (a panic in the store included).
struct Done {
    runner: Runner,
    id: String,
    tx: watch::Sender<bool>,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.runner.in_flight().remove(&self.id);
        let _ = self.tx.send(true);
        // Room for another run: a worker may claim one.
        self.runner.wake_worker();
    }
}
