//! Errors: what a step returned, how a step ended, and what a run reports.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::step::StepInfo;

/// The error a step returned, type-erased and cheap to clone, so the step
/// record and the [`WorkflowError`] can both hold it.
///
/// ```
/// use workflow_runtime::StepError;
/// let err = StepError::new(std::io::Error::other("disk full"));
/// assert_eq!(err.to_string(), "disk full");
/// assert!(err.downcast_ref::<std::io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct StepError(Arc<dyn Error + Send + Sync + 'static>);

impl StepError {
    /// Wraps any error.
    ///
    /// ```
    /// # use workflow_runtime::StepError;
    /// let err = StepError::new(std::fmt::Error);
    /// assert_eq!(err.to_string(), "an error occurred when formatting an argument");
    /// ```
    pub fn new<E: Error + Send + Sync + 'static>(error: E) -> Self {
        StepError(Arc::new(error))
    }

    /// The concrete error, when it is an `E`.
    ///
    /// ```
    /// # use workflow_runtime::StepError;
    /// let err = StepError::new(std::fmt::Error);
    /// assert!(err.downcast_ref::<std::io::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }

    /// The error as a trait object.
    ///
    /// ```
    /// # use workflow_runtime::StepError;
    /// let err = StepError::new(std::fmt::Error);
    /// assert!(err.as_dyn().source().is_none());
    /// ```
    pub fn as_dyn(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// Any `std::error::Error + Send + Sync + 'static` becomes a `StepError`;
/// that is what the `try_` verbs accept. (`StepError` itself does not
/// implement `Error`, as `anyhow::Error` does not, so this can be blanket.)
impl<E: Error + Send + Sync + 'static> From<E> for StepError {
    fn from(error: E) -> Self {
        StepError::new(error)
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

/// Why a step failed, when it ran to an end of its own.
///
/// ```
/// use workflow_runtime::StepFailure;
/// assert_eq!(StepFailure::Assertion.to_string(), "assertion did not hold");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum StepFailure {
    /// The step returned an error.
    Error(StepError),
    /// A `then` predicate returned `false`.
    Assertion,
    /// The step panicked; the panic message.
    Panic(Arc<str>),
    /// The step ran past a timeout and was dropped.
    TimedOut(Duration),
}

impl StepFailure {
    /// What kind of failure it is, as an exception's type reads:
    /// `"error"`, `"assertion"`, `"panic"` or `"timeout"`.
    ///
    /// ```
    /// use workflow_runtime::StepFailure;
    /// assert_eq!(StepFailure::Assertion.kind(), "assertion");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            StepFailure::Error(_) => "error",
            StepFailure::Assertion => "assertion",
            StepFailure::Panic(_) => "panic",
            StepFailure::TimedOut(_) => "timeout",
        }
    }
}

impl Error for StepFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StepFailure::Error(error) => Some(error.as_dyn()),
            _ => None,
        }
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepFailure::Error(e) => write!(f, "{e}"),
            StepFailure::Assertion => f.write_str("assertion did not hold"),
            StepFailure::Panic(msg) => write!(f, "panicked: {msg}"),
            StepFailure::TimedOut(after) => write!(f, "timed out after {after:?}"),
        }
    }
}

/// Why a workflow run did not produce its value.
///
/// Every variant names the workflow and the step; `Display` reads as one
/// sentence and `source()` reaches the step's own error.
///
/// ```
/// use workflow_runtime::{StepError, StepInfo, StepKind, WorkflowError};
/// let err = WorkflowError::Failed {
///     step: StepInfo::new("Orders", StepKind::When, "charge card"),
///     error: StepError::new(std::io::Error::other("card declined")),
/// };
/// assert_eq!(
///     err.to_string(),
///     r#"workflow "Orders", step When "charge card" failed: card declined"#
/// );
/// assert!(std::error::Error::source(&err).is_some());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WorkflowError {
    /// A step returned an error.
    Failed {
        /// The failed step.
        step: StepInfo,
        /// What it returned.
        error: StepError,
    },
    /// A `then` predicate returned `false`.
    Assertion {
        /// The assertion step.
        step: StepInfo,
    },
    /// A step panicked; the panic was caught and did not unwind further.
    Panicked {
        /// The step that panicked.
        step: StepInfo,
        /// The panic message.
        message: Arc<str>,
    },
    /// A step ran past its timeout and was dropped.
    TimedOut {
        /// The step that timed out.
        step: StepInfo,
        /// The timeout it exceeded.
        after: Duration,
    },
    /// The run was cancelled while this step was in flight.
    Cancelled {
        /// The step in flight.
        step: StepInfo,
    },
    /// A step failed for good, and then undoing an earlier step failed
    /// too: the compensation's retries, if any, are spent. The other
    /// compensations still ran.
    CompensationFailed {
        /// The failure that started compensating.
        cause: Box<WorkflowError>,
        /// The compensation's failure (its step is the `Compensate` one).
        failure: Box<WorkflowError>,
    },
}

impl WorkflowError {
    /// Whether the system faulted (a step panicked or timed out) rather
    /// than the workflow failing on its own terms (a step returned its
    /// error, such as a declined card, or an assertion did not hold). A
    /// failed compensation is judged by the failure that started it.
    pub(crate) fn is_fault(&self) -> bool {
        match self {
            WorkflowError::Panicked { .. } | WorkflowError::TimedOut { .. } => true,
            WorkflowError::CompensationFailed { cause, .. } => cause.is_fault(),
            WorkflowError::Failed { .. }
            | WorkflowError::Assertion { .. }
            | WorkflowError::Cancelled { .. } => false,
        }
    }

    /// The step the error is about: for a failed compensation, the step
    /// whose failure started compensating.
    ///
    /// ```
    /// # use workflow_runtime::{StepInfo, StepKind, WorkflowError};
    /// let err = WorkflowError::Cancelled { step: StepInfo::new("W", StepKind::When, "wait") };
    /// assert_eq!(err.step().title, "wait");
    /// ```
    pub fn step(&self) -> &StepInfo {
        match self {
            WorkflowError::Failed { step, .. }
            | WorkflowError::Assertion { step }
            | WorkflowError::Panicked { step, .. }
            | WorkflowError::TimedOut { step, .. }
            | WorkflowError::Cancelled { step } => step,
            WorkflowError::CompensationFailed { cause, .. } => cause.step(),
        }
    }

    /// What went wrong, without the workflow and step: the step's own
    /// error, or "assertion did not hold", "panicked: ..", "timed out
    /// after ..", "was cancelled".
    ///
    /// ```
    /// # use workflow_runtime::{StepInfo, StepKind, WorkflowError};
    /// let err = WorkflowError::Assertion { step: StepInfo::new("W", StepKind::Then, "paid") };
    /// assert_eq!(err.reason(), "assertion did not hold");
    /// ```
    pub fn reason(&self) -> String {
        match self {
            WorkflowError::Failed { error, .. } => error.to_string(),
            WorkflowError::Assertion { .. } => "assertion did not hold".to_owned(),
            WorkflowError::Panicked { message, .. } => format!("panicked: {message}"),
            WorkflowError::TimedOut { after, .. } => format!("timed out after {after:?}"),
            WorkflowError::Cancelled { .. } => "was cancelled".to_owned(),
            WorkflowError::CompensationFailed { cause, failure } => {
                format!("{}; then {failure}", cause.reason())
            }
        }
    }

    pub(crate) fn from_failure(step: StepInfo, failure: StepFailure) -> Self {
        match failure {
            StepFailure::Error(error) => WorkflowError::Failed { step, error },
            StepFailure::Assertion => WorkflowError::Assertion { step },
            StepFailure::Panic(message) => WorkflowError::Panicked { step, message },
            StepFailure::TimedOut(after) => WorkflowError::TimedOut { step, after },
        }
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let WorkflowError::CompensationFailed { cause, failure } = self {
            return write!(f, "{cause}; then {failure}");
        }
        write!(f, "{}", self.step())?;
        match self {
            WorkflowError::Failed { error, .. } => write!(f, " failed: {error}"),
            WorkflowError::Assertion { .. } => f.write_str(" failed: assertion did not hold"),
            WorkflowError::Panicked { message, .. } => write!(f, " panicked: {message}"),
            WorkflowError::TimedOut { after, .. } => write!(f, " timed out after {after:?}"),
            WorkflowError::Cancelled { .. } => f.write_str(" was cancelled"),
            WorkflowError::CompensationFailed { .. } => Ok(()),
        }
    }
}

impl Error for WorkflowError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WorkflowError::Failed { error, .. } => Some(error.as_dyn()),
            WorkflowError::CompensationFailed { failure, .. } => Some(&**failure),
            _ => None,
        }
    }
}

/// The message of a caught panic, as `std` prints it.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}
