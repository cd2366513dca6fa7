//! Durable workflows: a run's steps are journaled in a [`Store`] as they
//! complete, so a run cut short by a crash resumes at its first unfinished
//! step, with the outputs of the steps before it read back from the
//! journal rather than computed again.
//!
//! ```
//! use workflow_runtime::prelude::*;
//! use workflow_runtime::durable::{Store, StepCtx};
//! use workflow_runtime::host::Runner;
//!
//! struct Pay;
//!
//! #[workflow(durable)]
//! impl Pay {
//!     #[step(given = "an order")]
//!     fn order(&self, id: u64) -> u64 {
//!         id
//!     }
//!
//!     #[step(when = "it is charged")]
//!     async fn charge(&self, step: &StepCtx, id: u64) -> String {
//!         // The same key in every attempt and after every restart.
//!         format!("charged {id} as {}", step.key())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let runner = Runner::builder().store(Store::memory()).durable(Pay).build().unwrap();
//! let run = runner.start(&Pay::ID, "order-42", 42).await.unwrap();
//! assert_eq!(run.result().await.unwrap(), "charged 42 as order-42/1");
//! // Starting the same run id again is the same run.
//! let again = runner.start(&Pay::ID, "order-42", 42).await.unwrap();
//! assert_eq!(again.result().await.unwrap(), "charged 42 as order-42/1");
//! # }
//! ```
//!
//! What survives what: a step whose journal row was written never runs
//! again; a step cut short before its row was written runs again when the
//! run resumes (at least once); a `#[step(transactional)]` step's own
//! writes commit with its row (exactly once).

pub(crate) mod codec;
pub(crate) mod driver;
mod handle;
mod journal;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod retention;
mod run_id;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod status;
mod step;
mod step_ctx;
mod store;
pub(crate) mod trace;

use std::marker::PhantomData;

pub use codec::{Codec, CodecError, DecodeFn, EncodeFn, Json, ValueCodec, decode, encode};
pub(crate) use handle::Elsewhere;
pub use handle::{DurableError, RunHandle};
pub(crate) use journal::{
    Journal, JournalFailure, children, consumed_event, consumed_index, redriven_index,
};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PgTx, PostgresStore};
pub use query::{BadCursor, Cursor, MAX_PAGE, RunFilter, RunPage};
pub use retention::{Purge, Retention};
pub use run_id::new_run_id;
#[cfg(feature = "sqlite")]
pub use sqlite::{Commits, LentTx, SqliteOptions, SqliteStore, SqliteTx, Synchronous};
pub use status::{EventReport, RunReport, StepReport, StepState, Waiting};
pub use step::{Begun, Transaction};
#[doc(hidden)]
pub use step::{Journaled, JournaledUndo, JournaledUndoStep, Place, Transacted};
pub use step_ctx::{EventWait, StepCtx};
pub use store::{
    Backend, Claimed, EventRow, FailureRow, Fence, Inserted, JournalMark, Redrive, RunCounts,
    RunEnd, RunRow, RunStatus, ScheduleRow, Sent, StepRow, Store, StoreError, Suspension,
    WorkflowCounts,
};

use crate::definition::WorkflowDefinition;

/// A workflow whose runs are journaled: what `#[workflow(durable)]`
/// implements. Its input and every step's output are serde types, as the
/// journal stores them; the macro checks each where it is written, so a
/// type that is not names its step.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a durable workflow",
    label = "a durable run needs a durable workflow",
    note = "declare it with `#[workflow(durable)]`"
)]
pub trait Durable: WorkflowDefinition {
    /// A hash of the step titles, kinds, types and the version label: a
    /// journal written by another definition is never replayed.
    const FINGERPRINT: &'static str;
    /// The version label (`#[workflow(durable = "v2")]`), if any.
    const VERSION: Option<&'static str> = None;
    /// How the input goes to and from the run's row.
    const INPUT: ValueCodec<Self::Input>;
    /// How the output goes to and from the run's row.
    const OUTPUT: ValueCodec<Self::Output>;
    /// The journaled steps' codecs, one per step that makes a value: the
    /// checks that name a step whose type is not serde's live here, once.
    #[doc(hidden)]
    type Codecs;
    /// See [`Codecs`](Self::Codecs).
    #[doc(hidden)]
    const CODECS: Self::Codecs;
    /// The typed key [`Runner::start`](crate::host::Runner::start) takes.
    const ID: WorkflowId<Self> = WorkflowId(PhantomData);
}

/// Names a durable workflow with its types, for
/// [`Runner::start`](crate::host::Runner::start): `&Pay::ID`.
pub struct WorkflowId<W: ?Sized>(PhantomData<fn() -> W>);

impl<W: Durable> WorkflowId<W> {
    /// The workflow's name.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::Durable;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// assert_eq!(Ping::ID.name(), "Ping");
    /// ```
    pub fn name(&self) -> &'static str {
        W::NAME
    }
}

impl<W: ?Sized> Clone for WorkflowId<W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W: ?Sized> Copy for WorkflowId<W> {}

impl<W: Durable> std::fmt::Debug for WorkflowId<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WorkflowId").field(&W::NAME).finish()
    }
}
