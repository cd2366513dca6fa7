//! Talking to durable runs while they live: sending them events, asking
//! them to stop, redriving the ones that failed, reading where one is;
//! and, on a store of one process, waking the runs that suspended
//! themselves (a sleep, an event wait) when they are due.

use super::runner::Runner;
use crate::durable::{
    Durable, DurableError, JournalMark, Redrive, RunReport, RunStatus, Sent, StepRow, StoreError,
    Suspension, WorkflowId,
};

impl Runner {
    /// Sends event `name` with `value` to run `run_id` of `W`, from any
    /// process that shares the store: a step waiting for it
    /// ([`StepCtx::event`](crate::durable::StepCtx::event)) gets it, and a
    /// run suspended waiting for it wakes; sent before the step waits, it
    /// waits for the step. Each event is consumed once. The event's
    /// number, or [`DurableError::NotRunning`] for a run that has ended.
    /// The value's type is checked when a step takes it: one that is not
    /// what the step waits for is logged and passed over there.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{Store, StepCtx};
    /// # use workflow_runtime::host::Runner;
    /// struct Approve;
    ///
    /// #[workflow(durable)]
    /// impl Approve {
    ///     #[step(given = "a request")]
    ///     async fn wait(&self, step: &StepCtx, id: u32) -> String {
    ///         match step.event::<bool>("approval").await {
    ///             Some(true) => format!("{id} approved"),
    ///             _ => format!("{id} refused"),
    ///         }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Approve).build().unwrap();
    /// let run = runner.start(&Approve::ID, "req-1", 7).await.unwrap();
    /// runner.send(&Approve::ID, "req-1", "approval", true).await.unwrap();
    /// assert_eq!(run.result().await.unwrap(), "7 approved");
    /// # }
    /// ```
    pub async fn send<W: Durable, T: serde::Serialize>(
        &self,
        workflow: &WorkflowId<W>,
        run_id: &str,
        name: &str,
        value: T,
    ) -> Result<u32, DurableError> {
        self.send_event(workflow, run_id, name, value, None).await
    }

    /// [`send`](Self::send) with a deduplication key: a second send with
    /// the same key to the same run (a retried request, a redelivered
    /// message) adds nothing and answers the first's number, however the
    /// two race.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{Store, StepCtx};
    /// # use workflow_runtime::host::Runner;
    /// # struct Approve;
    /// # #[workflow(durable)] impl Approve {
    /// #     #[step(given = "a request")]
    /// #     async fn wait(&self, step: &StepCtx, id: u32) -> u32 { step.event::<u32>("paid").await.unwrap_or(0) + id }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let runner = Runner::builder().store(Store::memory()).durable(Approve).build().unwrap();
    /// let run = runner.start(&Approve::ID, "req-1", 1).await.unwrap();
    /// let first = runner.send_once(&Approve::ID, "req-1", "paid", 10, "msg-7").await.unwrap();
    /// let again = runner.send_once(&Approve::ID, "req-1", "paid", 10, "msg-7").await.unwrap();
    /// assert_eq!(first, again);
    /// assert_eq!(run.result().await.unwrap(), 11);
    /// # }
    /// ```
    pub async fn send_once<W: Durable, T: serde::Serialize>(
        &self,
        workflow: &WorkflowId<W>,
        run_id: &str,
        name: &str,
        value: T,
        key: &str,
    ) -> Result<u32, DurableError> {
        self.send_event(workflow, run_id, name, value, Some(key))
            .await
    }

    /// Sends event `name` with a JSON `value` to run `run_id`, whatever
    /// its workflow: for tools that do not know the workflow's types (the
    /// console, a command line). The step that waits for it reads it as
    /// its type, and passes over a value that is not one.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{Store, StepCtx};
    /// # use workflow_runtime::host::Runner;
    /// # struct Approve;
    /// # #[workflow(durable)]
    /// # impl Approve {
    /// #     #[step(given = "a request")]
    /// #     async fn wait(&self, step: &StepCtx, id: u32) -> bool {
    /// #         step.event::<bool>("approval").await.unwrap_or(false)
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Approve).build().unwrap();
    /// let run = runner.start(&Approve::ID, "req-1", 7).await.unwrap();
    /// runner.send_json("req-1", "approval", serde_json::json!(true)).await.unwrap();
    /// assert!(run.result().await.unwrap());
    /// # }
    /// ```
    pub async fn send_json(
        &self,
        run_id: &str,
        name: &str,
        value: serde_json::Value,
    ) -> Result<u32, DurableError> {
        self.send_value(None, run_id, name, value, None).await
    }

    async fn send_event<W: Durable, T: serde::Serialize>(
        &self,
        workflow: &WorkflowId<W>,
        run_id: &str,
        name: &str,
        value: T,
        key: Option<&str>,
    ) -> Result<u32, DurableError> {
        self.send_value(Some(workflow.name()), run_id, name, value, key)
            .await
    }

    /// Sends an event to a run of `workflow` (any, when `None`).
    async fn send_value<T: serde::Serialize>(
        &self,
        workflow: Option<&str>,
        run_id: &str,
        name: &str,
        value: T,
        key: Option<&str>,
    ) -> Result<u32, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let run = store
            .run(run_id)
            .await?
            .ok_or_else(|| StoreError::NoSuchRun(run_id.to_owned()))?;
        if workflow.is_some_and(|workflow| run.workflow != workflow) {
            return Err(DurableError::OtherWorkflow {
                run: run.id,
                owner: run.workflow,
            });
        }
        // In the codec the run's payloads are written with.
        let payload = crate::durable::encode(store.codec_of(&run)?, &value).map_err(|source| {
            DurableError::Encode {
                run: run.id.clone(),
                source,
            }
        })?;
        let sent = store
            .backend()
            .send_event(run_id, name, &payload, key, self.clock().now_ms())
            .await?;
        match sent {
            Sent::Delivered(seq) => {
                self.look_again();
                Ok(seq)
            }
            Sent::Duplicate(seq) => Ok(seq),
            Sent::Finished(status) => Err(DurableError::NotRunning {
                run: run_id.to_owned(),
                status,
                asked: "send an event to",
            }),
        }
    }

    /// Asks run `run_id` to stop, for `reason` (who, or why): wherever it
    /// is (running here or on another instance, sleeping, waiting for an
    /// event) it stops at its next await, the steps it completed are
    /// undone by their compensations (journaled, each once), and it ends
    /// [`Cancelled`](RunStatus::Cancelled) with the reason. A run that has
    /// ended is [`DurableError::NotRunning`], naming its status.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{DurableError, Store, StepCtx};
    /// # use workflow_runtime::host::Runner;
    /// # use std::time::Duration;
    /// struct CoolOff;
    ///
    /// #[workflow(durable)]
    /// impl CoolOff {
    ///     #[step(given = "an order")]
    ///     async fn wait(&self, step: &StepCtx, id: u32) -> u32 {
    ///         step.sleep(Duration::from_secs(3_600)).await;
    ///         id
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(CoolOff).build().unwrap();
    /// let run = runner.start(&CoolOff::ID, "order-1", 1).await.unwrap();
    /// runner.cancel("order-1", "customer withdrew").await.unwrap();
    /// assert!(matches!(run.result().await, Err(DurableError::Cancelled { .. })));
    /// // Cancelling it again: it has ended.
    /// assert!(runner.cancel("order-1", "again").await.is_err());
    /// # }
    /// ```
    pub async fn cancel(&self, run_id: &str, reason: &str) -> Result<(), DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let status = store
            .backend()
            .request_cancel(run_id, reason, self.clock().now_ms())
            .await?;
        if status != RunStatus::Running {
            return Err(DurableError::NotRunning {
                run: run_id.to_owned(),
                status,
                asked: "cancel",
            });
        }
        tracing::info!(run = run_id, reason, "durable run asked to stop");
        // Driven here: stopped now. Suspended: woken, to be undone.
        self.in_flight().cancel(&[run_id.to_owned()]);
        // Its children (and theirs) stop too; one that ended is left.
        let mut parents = vec![run_id.to_owned()];
        while let Some(parent) = parents.pop() {
            for child in crate::durable::children(&store.backend().steps(&parent).await?) {
                let why = format!("its parent {run_id} was cancelled: {reason}");
                let now = self.clock().now_ms();
                if store.backend().request_cancel(&child, &why, now).await? == RunStatus::Running {
                    self.in_flight().cancel(std::slice::from_ref(&child));
                    parents.push(child);
                }
            }
        }
        self.look_again();
        Ok(())
    }

    /// Runs a failed run again from where it failed, once its cause is
    /// fixed: the steps it completed stay journaled and do not run again,
    /// except those its compensations undid, which run again from the
    /// first of them; the failed step's attempts start over. Its report
    /// ([`status`](Self::status)) keeps the earlier failure. A parked run
    /// is put back as [`resume_parked`](Self::resume_parked) does; any
    /// other is [`DurableError::NotRunning`]. It resumes here or, on a
    /// shared store, on whichever worker claims it. A runner that does not
    /// register the workflow (a console, a command line) leaves it due for
    /// the process that does, whose waker takes it up within a minute.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{DurableError, Store};
    /// # use workflow_runtime::host::Runner;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// static BANK_UP: AtomicBool = AtomicBool::new(false);
    ///
    /// #[derive(Debug)]
    /// struct Down;
    /// impl std::fmt::Display for Down {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("bank down") }
    /// }
    /// impl std::error::Error for Down {}
    ///
    /// struct Pay;
    ///
    /// #[workflow(durable)]
    /// impl Pay {
    ///     #[step(given = "an order")]
    ///     fn order(&self, id: u32) -> u32 { id }
    ///     #[step(when = "it is charged")]
    ///     fn charge(&self, id: u32) -> Result<String, Down> {
    ///         if BANK_UP.load(Ordering::SeqCst) { Ok(format!("charged {id}")) } else { Err(Down) }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Pay).build().unwrap();
    /// let failed = runner.start(&Pay::ID, "pay-1", 1).await.unwrap().result().await;
    /// assert!(matches!(failed, Err(DurableError::Failed { .. })));
    /// BANK_UP.store(true, Ordering::SeqCst); // the cause, fixed
    /// runner.redrive("pay-1").await.unwrap();
    /// assert_eq!(runner.handle(&Pay::ID, "pay-1").result().await.unwrap(), "charged 1");
    /// # }
    /// ```
    pub async fn redrive(&self, run_id: &str) -> Result<(), DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let run = store
            .run(run_id)
            .await?
            .ok_or_else(|| StoreError::NoSuchRun(run_id.to_owned()))?;
        match run.status {
            RunStatus::Failed => {}
            RunStatus::Stuck | RunStatus::Incompatible => {
                self.resume_parked(run_id).await?;
                return Ok(());
            }
            status => {
                return Err(DurableError::NotRunning {
                    run: run.id,
                    status,
                    asked: "redrive",
                });
            }
        }
        // A runner that does not run the workflow (a console, a command
        // line) redrives it for the process that does.
        let entry = self.durable_entry(&run.workflow);
        if let Some(entry) = &entry
            && run.fingerprint != entry.fingerprint()
        {
            return Err(DurableError::Incompatible {
                run: run.id.clone(),
                reason: format!(
                    "its journal was written by definition {} of \"{}\", this runner registers {}",
                    run.fingerprint,
                    run.workflow,
                    entry.fingerprint()
                ),
            });
        }
        let rows = store.backend().steps(run_id).await?;
        let now = self.clock().now_ms();
        let redrive = redrive_of(&run, &rows, now);
        if !store.backend().redrive(run_id, &redrive).await? {
            let status = store
                .run(run_id)
                .await?
                .map_or(RunStatus::Failed, |r| r.status);
            return Err(DurableError::NotRunning {
                run: run_id.to_owned(),
                status,
                asked: "redrive",
            });
        }
        tracing::info!(run = run_id, from = redrive.from, "durable run redriven");
        if store.backend().leases() {
            self.wake_worker();
        } else if let Some(row) = store.run(run_id).await? {
            match entry {
                Some(entry) => drop(self.drive(entry, row, None)),
                // Due as a woken run: the process that runs the workflow
                // takes it up at its waker's next look.
                None => {
                    let start = Suspension::new("start", Some(now), row.events).at(now);
                    store.backend().suspend(run_id, Some(&start), None).await?;
                }
            }
        }
        Ok(())
    }

    /// Pauses recurring durable workflow `workflow` on the shared store,
    /// for every instance: its ticks pass and fire no run until
    /// [`resume_schedule`](Self::resume_schedule). False when no instance
    /// has scheduled it yet. Only a store with leases keeps schedules
    /// (PostgreSQL); others answer [`StoreError::Unsupported`].
    ///
    /// ```
    /// # use workflow_runtime::durable::Store;
    /// # use workflow_runtime::host::Runner;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).build().unwrap();
    /// // One process's store keeps no schedules to share.
    /// let err = runner.pause_schedule("NightlyReport").await.unwrap_err();
    /// assert!(err.to_string().contains("no leases"), "{err}");
    /// # }
    /// ```
    ///
    /// On PostgreSQL, from any instance (a console, a command line):
    ///
    /// ```no_run
    /// # async fn f(runner: workflow_runtime::host::Runner) -> Result<(), workflow_runtime::durable::DurableError> {
    /// if runner.pause_schedule("NightlyReport").await? {
    ///     // ... the maintenance ...
    ///     runner.resume_schedule("NightlyReport").await?;
    /// }
    /// for schedule in runner.schedules().await? {
    ///     println!("{} paused: {}", schedule.workflow, schedule.paused);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn pause_schedule(&self, workflow: &str) -> Result<bool, DurableError> {
        self.set_paused(workflow, true).await
    }

    /// Lets paused recurring workflow `workflow` fire again, from its next
    /// tick (the ticks it passed while paused do not fire). See
    /// [`pause_schedule`](Self::pause_schedule) for an example.
    pub async fn resume_schedule(&self, workflow: &str) -> Result<bool, DurableError> {
        self.set_paused(workflow, false).await
    }

    async fn set_paused(&self, workflow: &str, paused: bool) -> Result<bool, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let found = store.backend().pause_schedule(workflow, paused).await?;
        if found {
            tracing::info!(workflow, paused, "recurring workflow's schedule changed");
        }
        Ok(found)
    }

    /// The recurring durable workflows' schedules on the shared store:
    /// next tick, last tick that fired, paused or not. See
    /// [`pause_schedule`](Self::pause_schedule) for an example.
    pub async fn schedules(&self) -> Result<Vec<crate::durable::ScheduleRow>, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        Ok(store.backend().schedules().await?)
    }

    /// Where run `run_id` is: its status, the step it is at and what it
    /// waits for, each step's state, attempts, times and error, the events
    /// sent to it, and the failures redrives put behind it. Three or four
    /// reads by the run's id, on any store.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{Store, StepCtx, Waiting};
    /// # use workflow_runtime::host::Runner;
    /// # struct Approve;
    /// # #[workflow(durable)] impl Approve {
    /// #     #[step(given = "a request")]
    /// #     async fn wait(&self, step: &StepCtx, id: u32) -> u32 { step.event::<u32>("approval").await.unwrap_or(id) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let runner = Runner::builder().store(Store::memory()).durable(Approve).build().unwrap();
    /// let _run = runner.start(&Approve::ID, "req-1", 1).await.unwrap();
    /// # while runner.status("req-1").await.unwrap().waiting.is_none() { tokio::task::yield_now().await; }
    /// let status = runner.status("req-1").await.unwrap();
    /// assert!(status.waits_for("approval"));
    /// assert_eq!(status.current_step.as_deref(), Some("a request"));
    /// # }
    /// ```
    pub async fn status(&self, run_id: &str) -> Result<RunReport, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        let titles = |run: &crate::durable::RunRow| match self.durable_entry(&run.workflow) {
            Some(entry) if entry.fingerprint() == run.fingerprint => {
                entry.steps().iter().map(|meta| meta.title).collect()
            }
            _ => Vec::new(),
        };
        Ok(store.status_with(run_id, titles).await?)
    }

    /// Something changed that a suspended run may wait for (an event, a
    /// cancel): the waker of a one-process store looks again, a worker
    /// too.
    pub(super) fn look_again(&self) {
        // Only a waker that runs: a runner that only sends or cancels
        // (another process sharing a SQLite file) must not start driving
        // the runs of the one that owns them.
        self.sleepers().look.notify_waiters();
        self.wake_worker();
    }

    /// A run suspended itself here, or something it waits for arrived: on
    /// a store without leases, this runner's waker (started on first
    /// need) looks again; on a shared store, workers find due runs as they
    /// claim.
    pub(super) fn wake_sleepers(&self) {
        let Some(store) = self.store() else { return };
        if store.backend().leases() {
            return;
        }
        let sleepers = self.sleepers();
        let mut waking = sleepers.waking.lock().unwrap_or_else(|e| e.into_inner());
        if !*waking {
            *waking = true;
            let runner = self.clone();
            tokio::spawn(async move { runner.wake_loop().await });
        }
        drop(waking);
        sleepers.look.notify_waiters();
    }

    /// The waker of a store without leases: drives each suspended run
    /// when it is due, passes cancels asked by other processes to the
    /// runs driven here, and sleeps until the next wake time (or a look
    /// asked for), until the runner stops.
    async fn wake_loop(&self) {
        let Some(store) = self.store().cloned() else {
            return;
        };
        let sleepers = self.sleepers();
        loop {
            let look = sleepers.look.notified();
            tokio::pin!(look);
            // Registered before the store is read: a run suspended, or an
            // event sent, while it is read still wakes the next nap.
            look.as_mut().enable();
            let now = self.clock().now_ms();
            // Runs that are not suspended are resume()'s and a worker's to
            // take up.
            match store.backend().woken(now, usize::MAX).await {
                Ok(woken) => {
                    let in_flight: std::collections::HashSet<String> =
                        self.in_flight().ids().into_iter().collect();
                    for row in woken {
                        if in_flight.contains(&row.id) {
                            continue;
                        }
                        if let Some(entry) = self.durable_entry(&row.workflow) {
                            drop(self.drive(entry, row, None));
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "could not read which suspended runs are due"),
            }
            let driving = self.in_flight().ids();
            if !driving.is_empty() {
                match store.backend().cancelling(&driving).await {
                    Ok(cancelling) => self.in_flight().cancel(&cancelling),
                    Err(error) => tracing::warn!(%error, "could not read which runs are cancelled"),
                }
            }
            // Events, cancels and redrives from other processes sharing
            // the file are seen by then (a worker sees them every poll).
            let mut nap = self.look_every();
            match store.backend().next_wake().await {
                Ok(Some(wake)) => {
                    // A due run still there is one this runner does not
                    // drive (not registered here): look again at the poll
                    // interval, not in a loop.
                    let left = wake.saturating_sub(self.clock().now_ms());
                    let left = match u64::try_from(left) {
                        Ok(ms) if ms > 0 => std::time::Duration::from_millis(ms),
                        _ => self.poll_every(),
                    };
                    nap = nap.min(left);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "could not read when suspended runs wake");
                    nap = nap.min(self.poll_every());
                }
            }
            tokio::select! {
                () = look => {}
                () = tokio::time::sleep(nap) => {}
                () = self.stopping().cancelled() => {
                    *sleepers.waking.lock().unwrap_or_else(|e| e.into_inner()) = false;
                    return;
                }
            }
        }
    }
}

/// What redriving failed run `run` changes: it goes on from the step it
/// failed at, or from the first step a compensation undid if that is
/// earlier (an undone step's effect is gone: it must happen again, and
/// every step after it with it); the rows from there on go, with every
/// compensation's and failure's mark, and a note keeps the failure.
fn redrive_of(run: &crate::durable::RunRow, rows: &[StepRow], now_ms: i64) -> Redrive {
    let mut from = None::<u32>;
    let mut earlier = 0;
    for row in rows {
        match row.mark() {
            Some(JournalMark::FailedAt(k) | JournalMark::Compensated(k)) => {
                from = Some(from.map_or(k, |from| from.min(k)));
            }
            Some(JournalMark::Redriven(_)) => earlier += 1,
            _ => {}
        }
    }
    // No mark (a run failed before marks were journaled): from the first
    // step without a row.
    let from = from.unwrap_or_else(|| {
        let mut next = 0;
        while rows
            .iter()
            .any(|row| row.mark().is_none() && row.index == next)
        {
            next += 1;
        }
        next
    });
    let drop: Vec<u32> = rows
        .iter()
        .filter(|row| match row.mark() {
            None => row.index >= from,
            Some(JournalMark::Redriven(_) | JournalMark::Consumed(_)) => false,
            Some(JournalMark::WaitStarted { step, .. } | JournalMark::WaitEnded { step, .. }) => {
                step >= from
            }
            Some(_) => true,
        })
        .map(|row| row.index)
        .collect();
    let error = run.error.clone().unwrap_or_default();
    let mut notes = vec![StepRow::new(
        crate::durable::redriven_index(earlier),
        run.failed_step.clone().unwrap_or_default(),
        error.into_bytes(),
        1,
        run.updated_ms,
        now_ms,
    )];
    // The events the dropped waits consumed stay consumed: a redriven
    // wait waits for a new one (not the rejection that failed the run).
    for row in rows.iter().filter(|row| drop.contains(&row.index)) {
        if let Some(seq) = crate::durable::consumed_event(row) {
            notes.push(StepRow::new(
                crate::durable::consumed_index(seq),
                row.title.clone(),
                Vec::new(),
                1,
                row.started_ms,
                now_ms,
            ));
        }
    }
    Redrive::new(from, drop, notes)
}
