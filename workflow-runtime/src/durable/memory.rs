//! The in-memory store: the journal in a map, for tests and examples.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::store::{
    Backend, FailureRow, Inserted, RunEnd, RunRow, RunStatus, StepRow, StoreError, WorkflowCounts,
    now_ms,
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

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
