//! One durable run's journal as its steps see it: what completed before
//! (loaded once when the run starts or resumes) and where to write what
//! completes now.

use std::collections::HashMap;
use std::sync::Arc;

use super::codec::ValueCodec;
use super::store::{StepRow, Store, StoreError, now_ms};

/// A running durable run's journal, carried by its context.
pub(crate) struct Journal {
    store: Store,
    run: Arc<str>,
    done: HashMap<u32, StepRow>,
}

impl Journal {
    pub(crate) fn new(store: Store, run: Arc<str>, done: Vec<StepRow>) -> Self {
        Journal {
            store,
            run,
            done: done.into_iter().map(|row| (row.index, row)).collect(),
        }
    }

    pub(crate) fn run_id(&self) -> &Arc<str> {
        &self.run
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The output of step `index`, if it completed before.
    pub(crate) fn replayed<T>(
        &self,
        index: u32,
        codec: ValueCodec<T>,
    ) -> Option<Result<T, StoreError>> {
        let row = self.done.get(&index)?;
        Some(self.decode(row, codec))
    }

    pub(crate) fn decode<T>(&self, row: &StepRow, codec: ValueCodec<T>) -> Result<T, StoreError> {
        codec
            .decode(self.store.codec(), &row.output)
            .map_err(|e| StoreError::Corrupt {
                run: self.run.to_string(),
                detail: format!(
                    "step {} (\"{}\") output does not decode as `{}`: {e}",
                    row.index,
                    row.title,
                    std::any::type_name::<T>()
                ),
            })
    }

    /// The row that journals step `index`'s output.
    pub(crate) fn row<T>(
        &self,
        index: u32,
        title: &str,
        value: &T,
        codec: ValueCodec<T>,
        attempts: u32,
        started_ms: i64,
    ) -> Result<StepRow, StoreError> {
        let output = codec
            .encode(self.store.codec(), value)
            .map_err(|e| StoreError::Corrupt {
                run: self.run.to_string(),
                detail: format!("step {index} (\"{title}\") output does not encode: {e}"),
            })?;
        Ok(StepRow::new(
            index,
            title,
            output,
            attempts,
            started_ms,
            now_ms(),
        ))
    }

    /// Journals a completed step.
    pub(crate) async fn commit(&self, row: &StepRow) -> Result<(), StoreError> {
        self.store.backend().record_step(&self.run, row).await
    }
}
