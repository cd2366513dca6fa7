//! What a durable step may know of itself: the run, its place, its attempt.

use std::fmt;
use std::sync::Arc;

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
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StepCtx {
    run: Arc<str>,
    index: u32,
    attempt: u32,
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
