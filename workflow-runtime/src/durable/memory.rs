//! The in-memory store: the journal in a map, for tests and examples.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::query::RunFilter;
use super::retention::Purge;
use super::store::{
    Backend, EventRow, FailureRow, Fence, Inserted, Redrive, RunEnd, RunRow, RunStatus, Sent,
    StepRow, StoreError, Suspension, WorkflowCounts, now_ms,
};
use crate::behavior::BoxFuture;

/// A journal held in this process: it survives a runner, not a crash.
/// Clones share the journal, so a test can "restart" by building a new
/// runner on a clone.
///
/// ```
/// use workflow_runtime::durable::{MemoryStore, Store};
/// let journal = MemoryStore::new();
/// let store = Store::new(journal.clone());
/// # drop(store);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    runs: Arc<Mutex<BTreeMap<String, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    run: RunRow,
    steps: BTreeMap<u32, StepRow>,
    failures: BTreeMap<u32, FailureRow>,
    events: Vec<EventRow>,
}

impl MemoryStore {
    /// An empty journal.
    ///
    /// ```
    /// # use workflow_runtime::durable::MemoryStore;
    /// let journal = MemoryStore::new();
    /// # drop(journal);
    /// ```
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic elsewhere cannot leave a half-written entry: each change
        // is one insert or one assignment.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        let mut runs = self.lock();
        let inserted = match runs.get(&run.id) {
            Some(entry) => Inserted::Existing(entry.run.clone()),
            None => {
                runs.insert(
                    run.id.clone(),
                    Entry {
                        run: run.clone(),
                        steps: BTreeMap::new(),
                        failures: BTreeMap::new(),
                        events: Vec::new(),
                    },
                );
                Inserted::New
            }
        };
        Box::pin(std::future::ready(Ok(inserted)))
    }

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>> {
        let run = self.lock().get(id).map(|entry| entry.run.clone());
        Box::pin(std::future::ready(Ok(run)))
    }

    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        let steps = self
            .lock()
            .get(run)
            .map(|entry| entry.steps.values().cloned().collect())
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(steps)))
    }

    fn record_step<'a>(
        &'a self,
        run: &'a str,
        step: &'a StepRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut runs = self.lock();
        let result = match runs.get_mut(run) {
            None => Err(StoreError::NoSuchRun(run.to_owned())),
            Some(entry) if entry.steps.contains_key(&step.index) => Err(StoreError::Conflict {
                run: run.to_owned(),
                index: step.index,
            }),
            Some(entry) => {
                entry.steps.insert(step.index, step.clone());
                entry.run.updated_ms = now_ms();
                Ok(())
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn record_failure<'a>(
        &'a self,
        run: &'a str,
        failure: &'a FailureRow,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = match self.lock().get_mut(run) {
            None => Err(StoreError::NoSuchRun(run.to_owned())),
            Some(entry) => {
                entry.failures.insert(failure.index, failure.clone());
                Ok(())
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn failures<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<FailureRow>, StoreError>> {
        let failures = self
            .lock()
            .get(run)
            .map(|entry| entry.failures.values().cloned().collect())
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(failures)))
    }

    fn finish_run<'a>(
        &'a self,
        run: &'a str,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut runs = self.lock();
        let result = match runs.get_mut(run) {
            None => Err(StoreError::NoSuchRun(run.to_owned())),
            Some(entry) if entry.run.status.is_finished() => Ok(false),
            Some(entry) => {
                let row = &mut entry.run;
                let (status, output, error, step) = end.columns();
                row.status = status;
                row.output = output.map(<[u8]>::to_vec);
                row.error = error.map(str::to_owned);
                row.failed_step = step.map(str::to_owned);
                row.updated_ms = now_ms();
                (row.waiting, row.wake_ms) = (None, None);
                // A parent waiting for this child wakes.
                let (parent, waited) = (row.parent.clone(), super::journal::awaiting_child(run));
                if let Some(parent) = parent.and_then(|parent| runs.get_mut(&parent))
                    && parent.run.waiting.as_deref() == Some(&*waited)
                {
                    // Due at once, by any clock.
                    parent.run.wake_ms = Some(i64::MIN);
                }
                Ok(true)
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn running(&self) -> BoxFuture<'_, Result<Vec<RunRow>, StoreError>> {
        let mut running: Vec<RunRow> = self
            .lock()
            .values()
            .filter(|entry| entry.run.status == RunStatus::Running)
            .map(|entry| entry.run.clone())
            .collect();
        running.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        Box::pin(std::future::ready(Ok(running)))
    }

    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut runs = self.lock();
        let parked = match runs.get_mut(run) {
            Some(entry)
                if matches!(entry.run.status, RunStatus::Stuck | RunStatus::Incompatible) =>
            {
                entry.run.status = RunStatus::Running;
                entry.run.error = None;
                entry.run.failed_step = None;
                entry.run.updated_ms = now_ms();
                true
            }
            _ => false,
        };
        Box::pin(std::future::ready(Ok(parked)))
    }

    fn suspend<'a>(
        &'a self,
        run: &'a str,
        suspension: Option<&'a Suspension>,
        _: Option<&'a Fence>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut runs = self.lock();
        let result = match runs.get_mut(run) {
            None => Err(StoreError::NoSuchRun(run.to_owned())),
            Some(entry) if entry.run.status != RunStatus::Running => Ok(false),
            Some(entry) => match suspension {
                Some(s)
                    if entry.run.events > s.events_seen
                        || (entry.run.cancel.is_some() && !s.undoing) =>
                {
                    Ok(false)
                }
                Some(s) => {
                    entry.run.waiting = Some(s.waiting.clone());
                    entry.run.wake_ms = s.wake_ms;
                    entry.run.updated_ms = now_ms();
                    Ok(true)
                }
                None => {
                    (entry.run.waiting, entry.run.wake_ms) = (None, None);
                    Ok(true)
                }
            },
        };
        Box::pin(std::future::ready(result))
    }

    fn send_event<'a>(
        &'a self,
        run: &'a str,
        name: &'a str,
        payload: &'a [u8],
        key: Option<&'a str>,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Sent, StoreError>> {
        let mut runs = self.lock();
        let result = match runs.get_mut(run) {
            None => Err(StoreError::NoSuchRun(run.to_owned())),
            Some(entry) if entry.run.status != RunStatus::Running => {
                Ok(Sent::Finished(entry.run.status))
            }
            Some(entry) => match entry
                .events
                .iter()
                .find(|event| key.is_some() && event.key.as_deref() == key)
            {
                Some(earlier) => Ok(Sent::Duplicate(earlier.seq)),
                None => {
                    let seq = entry.run.events + 1;
                    entry.events.push(EventRow {
                        seq,
                        name: name.to_owned(),
                        payload: payload.to_vec(),
                        key: key.map(str::to_owned),
                        sent_ms: now_ms,
                    });
                    entry.run.events = seq;
                    if entry.run.waiting.as_deref() == Some(&*super::journal::awaiting(name)) {
                        entry.run.wake_ms =
                            Some(entry.run.wake_ms.map_or(now_ms, |w| w.min(now_ms)));
                    }
                    Ok(Sent::Delivered(seq))
                }
            },
        };
        Box::pin(std::future::ready(result))
    }

    fn events<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<EventRow>, StoreError>> {
        let events = self
            .lock()
            .get(run)
            .map(|entry| entry.events.clone())
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(events)))
    }

    fn request_cancel<'a>(
        &'a self,
        run: &'a str,
        reason: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        let mut runs = self.lock();
        let result = match runs.get_mut(run) {
            None => Err(StoreError::NoSuchRun(run.to_owned())),
            Some(entry) => {
                let row = &mut entry.run;
                if row.status == RunStatus::Running {
                    row.cancel.get_or_insert_with(|| reason.to_owned());
                    if row.waiting.is_some() {
                        row.wake_ms = Some(row.wake_ms.map_or(now_ms, |w| w.min(now_ms)));
                    }
                }
                Ok(row.status)
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn redrive<'a>(
        &'a self,
        run: &'a str,
        redrive: &'a Redrive,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut runs = self.lock();
        let result = match runs.get_mut(run) {
            None => Err(StoreError::NoSuchRun(run.to_owned())),
            Some(entry) if entry.run.status != RunStatus::Failed => Ok(false),
            Some(entry) => {
                for index in &redrive.drop {
                    entry.steps.remove(index);
                }
                entry.failures.retain(|&index, _| index < redrive.from);
                for note in &redrive.notes {
                    entry.steps.insert(note.index, note.clone());
                }
                let row = &mut entry.run;
                row.status = RunStatus::Running;
                (row.error, row.failed_step, row.cancel) = (None, None, None);
                (row.waiting, row.wake_ms) = (None, None);
                row.updated_ms = now_ms();
                Ok(true)
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn counts_by_workflow(&self, _: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>> {
        let mut counts = WorkflowCounts::new();
        for entry in self.lock().values() {
            counts.entry(entry.run.workflow.clone()).or_default().add(
                entry.run.status,
                1,
                Some(entry.run.created_ms),
            );
        }
        Box::pin(std::future::ready(Ok(counts)))
    }

    fn runs<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<Vec<RunRow>, StoreError>> {
        let mut runs: Vec<RunRow> = self
            .lock()
            .values()
            .filter(|entry| filter.admits(&entry.run))
            .map(|entry| entry.run.clone())
            .collect();
        runs.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        runs.truncate(filter.page_size() + 1);
        Box::pin(std::future::ready(Ok(runs)))
    }

    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut runs = self.lock();
        let all: Vec<&RunRow> = runs.values().map(|entry| &entry.run).collect();
        let doomed = purge.pick(&all);
        for id in &doomed {
            runs.remove(id);
        }
        Box::pin(std::future::ready(Ok(doomed.len() as u64)))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
