//! The in-memory store: the journal in a map, for tests and examples.

use std::collections::{BTreeMap, BTreeSet};
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
    journal: Arc<Mutex<Journal>>,
}

#[derive(Debug, Default)]
struct Journal {
    runs: BTreeMap<String, Entry>,
    /// The running runs by start time and id: what the one process's
    /// worker and waker read at every run's end, without walking the runs
    /// that ended (a long-lived store holds many).
    running: BTreeSet<(i64, String)>,
}

impl Journal {
    /// Keeps `running` in step with `run`'s status.
    fn index(&mut self, run: &RunRow) {
        let key = (run.created_ms, run.id.clone());
        if run.status == RunStatus::Running {
            self.running.insert(key);
        } else {
            self.running.remove(&key);
        }
    }
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

    fn lock(&self) -> MutexGuard<'_, Journal> {
        // A panic elsewhere cannot leave a half-written entry: each change
        // is one insert or one assignment, and its index update.
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn insert_run<'a>(&'a self, run: &'a RunRow) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        let mut journal = self.lock();
        let inserted = match journal.runs.get(&run.id) {
            Some(entry) => Inserted::Existing(entry.run.clone()),
            None => {
                journal.runs.insert(
                    run.id.clone(),
                    Entry {
                        run: run.clone(),
                        steps: BTreeMap::new(),
                        failures: BTreeMap::new(),
                        events: Vec::new(),
                    },
                );
                journal.index(run);
                Inserted::New
            }
        };
        Box::pin(std::future::ready(Ok(inserted)))
    }

    fn run<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunRow>, StoreError>> {
        let run = self.lock().runs.get(id).map(|entry| entry.run.clone());
        Box::pin(std::future::ready(Ok(run)))
    }

    fn steps<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Vec<StepRow>, StoreError>> {
        let steps = self
            .lock()
            .runs
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
        let mut journal = self.lock();
        let result = match journal.runs.get_mut(run) {
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
        let result = match self.lock().runs.get_mut(run) {
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
            .runs
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
        let mut journal = self.lock();
        let result = match journal.runs.get_mut(run) {
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
                let ended = (row.created_ms, row.id.clone());
                journal.running.remove(&ended);
                if let Some(parent) = parent.and_then(|parent| journal.runs.get_mut(&parent))
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
        let journal = self.lock();
        // Oldest first, as the index is ordered.
        let running: Vec<RunRow> = journal
            .running
            .iter()
            .filter_map(|(_, id)| journal.runs.get(id))
            .map(|entry| entry.run.clone())
            .collect();
        debug_assert!(
            running.len() == journal.running.len()
                && running.iter().all(|run| run.status == RunStatus::Running),
            "the running index holds only running runs"
        );
        Box::pin(std::future::ready(Ok(running)))
    }

    fn unpark<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut journal = self.lock();
        let parked = match journal.runs.get_mut(run) {
            Some(entry)
                if matches!(entry.run.status, RunStatus::Stuck | RunStatus::Incompatible) =>
            {
                entry.run.status = RunStatus::Running;
                entry.run.error = None;
                entry.run.failed_step = None;
                entry.run.updated_ms = now_ms();
                let key = (entry.run.created_ms, entry.run.id.clone());
                journal.running.insert(key);
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
        let mut journal = self.lock();
        let result = match journal.runs.get_mut(run) {
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
        let mut journal = self.lock();
        let result = match journal.runs.get_mut(run) {
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
            .runs
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
        let mut journal = self.lock();
        let result = match journal.runs.get_mut(run) {
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
        let mut journal = self.lock();
        let result = match journal.runs.get_mut(run) {
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
                let key = (row.created_ms, row.id.clone());
                journal.running.insert(key);
                Ok(true)
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn counts_by_workflow(&self, _: i64) -> BoxFuture<'_, Result<WorkflowCounts, StoreError>> {
        let mut counts = WorkflowCounts::new();
        for entry in self.lock().runs.values() {
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
            .runs
            .values()
            .filter(|entry| filter.admits(&entry.run))
            .map(|entry| entry.run.clone())
            .collect();
        runs.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        runs.truncate(filter.page_size() + 1);
        Box::pin(std::future::ready(Ok(runs)))
    }

    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, StoreError>> {
        let mut journal = self.lock();
        let all: Vec<&RunRow> = journal.runs.values().map(|entry| &entry.run).collect();
        let doomed = purge.pick(&all);
        for id in &doomed {
            if let Some(entry) = journal.runs.remove(id) {
                journal
                    .running
                    .remove(&(entry.run.created_ms, entry.run.id));
            }
        }
        Box::pin(std::future::ready(Ok(doomed.len() as u64)))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs with status `Running`, by the map: what the index must hold.
    fn by_status(store: &MemoryStore) -> Vec<String> {
        let journal = store.lock();
        let mut ids: Vec<(i64, String)> = journal
            .runs
            .values()
            .filter(|entry| entry.run.status == RunStatus::Running)
            .map(|entry| (entry.run.created_ms, entry.run.id.clone()))
            .collect();
        ids.sort();
        // The index itself, not only what `running()` reads through it.
        let indexed: Vec<(i64, String)> = journal.running.iter().cloned().collect();
        assert_eq!(indexed, ids, "the index holds exactly the running runs");
        ids.into_iter().map(|(_, id)| id).collect()
    }

    fn running_ids(store: &MemoryStore) -> Vec<String> {
        let running = now(store.running()).expect("reads");
        running.into_iter().map(|run| run.id).collect()
    }

    /// The memory store's futures are ready at once: their outcome.
    fn now<T>(mut future: BoxFuture<'_, Result<T, StoreError>>) -> Result<T, StoreError> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => unreachable!("the memory store's futures are ready"),
        }
    }

    #[test]
    fn the_running_index_follows_every_status_change_in_random_rounds() {
        // Seeded rounds of starts (some of rows already ended), ends of
        // every kind, unparks, redrives, suspensions and purges over a few
        // ids; after each, the index holds exactly the runs whose status
        // is running, and `running()` reads them oldest first.
        for seed in 1..=200u64 {
            let store = MemoryStore::new();
            let mut state = seed;
            let mut next = |n: u64| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 33) % n
            };
            for _ in 0..60 {
                let id = format!("run-{}", next(6));
                match next(6) {
                    0 => {
                        let mut run = RunRow::new(&id, "W", "f", Vec::new());
                        run.created_ms = i64::try_from(next(4)).unwrap();
                        if next(4) == 0 {
                            run.status = RunStatus::Completed;
                        }
                        now(store.insert_run(&run)).expect("inserts");
                    }
                    1 => {
                        let end = match next(6) {
                            0 => RunEnd::Completed(Vec::new()),
                            1 => RunEnd::Failed {
                                error: "no".into(),
                                step: None,
                            },
                            2 => RunEnd::Stuck("stuck".into()),
                            3 => RunEnd::Incompatible("changed".into()),
                            4 => RunEnd::CompensationFailed {
                                error: "undo failed".into(),
                                step: None,
                            },
                            _ => RunEnd::Cancelled {
                                reason: "asked".into(),
                                step: None,
                            },
                        };
                        // A missing run is refused; the index is checked either way.
                        let _ = now(store.finish_run(&id, &end));
                    }
                    2 => {
                        now(store.unpark(&id)).expect("unparks or leaves it");
                    }
                    3 => {
                        let _ = now(store.redrive(&id, &Redrive::new(0, Vec::new(), Vec::new())));
                    }
                    4 => {
                        let _ = now(store.suspend(&id, None, None));
                    }
                    _ => {
                        let purge = super::super::Retention::new().keep_at_most(1).purge_at(0);
                        now(store.purge(&purge)).expect("purges");
                    }
                }
                assert_eq!(running_ids(&store), by_status(&store), "seed {seed}");
            }
        }
    }
}
