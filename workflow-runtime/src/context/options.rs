//! How a run reacts to failures and how long a step may take.

use std::time::Duration;

/// Options for every run under one [`WorkflowContext`](crate::WorkflowContext).
///
/// | option | default | effect |
/// |---|---|---|
/// | `continue_on_error` | `false` | a failure in a step that passes its value on (`then`, `finally`) is recorded and the chain goes on; the run still ends in the first failure |
/// | `halt_on_failed_assertion` | `true` | a `then` predicate returning `false` stops the chain; `false` makes assertions soft |
/// | `step_timeout` | `None` | a step still waiting after this long is dropped and recorded as timed out, and one whose behaviors would start another attempt after it is ended there |
/// | `skip_remaining_on_failure` | `true` | steps after a failure are recorded as skipped, so the report shows the whole plan |
/// | `capture_io` | `false` | `#[step]` functions record their input and output in `Debug` form |
///
/// A step that produces a new value (`given`, `when`, `and`, `but`) always
/// stops the chain when it fails: there is no value for the next step to
/// take. With `continue_on_error` too, the steps after it that would take
/// its value are recorded skipped, `finally` steps still run, and the run
/// ends in its first failure (the .NET guide's `ContinueOnError` goes on
/// past any step; nothing can stand in for a value here).
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::WorkflowOptions;
///
/// let options = WorkflowOptions::default()
///     .continue_on_error(true)
///     .step_timeout(Duration::from_secs(30));
/// assert!(options.continue_on_error);
/// assert!(options.halt_on_failed_assertion);
/// assert_eq!(options.step_timeout, Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct WorkflowOptions {
    /// Go on after a failed pass-through step.
    #[cfg_attr(
        feature = "serde",
        serde(alias = "ContinueOnError", alias = "continueOnError")
    )]
    pub continue_on_error: bool,
    /// Stop at the first `then` that does not hold.
    #[cfg_attr(
        feature = "serde",
        serde(alias = "HaltOnFailedAssertion", alias = "haltOnFailedAssertion")
    )]
    pub halt_on_failed_assertion: bool,
    /// The longest any async step may take.
    #[cfg_attr(
        feature = "serde",
        serde(deserialize_with = "crate::durations::optional_limit")
    )]
    #[cfg_attr(feature = "serde", serde(alias = "StepTimeout", alias = "stepTimeout"))]
    pub step_timeout: Option<Duration>,
    /// Record the steps a failure prevented as skipped.
    #[cfg_attr(
        feature = "serde",
        serde(alias = "SkipRemainingOnFailure", alias = "skipRemainingOnFailure")
    )]
    pub skip_remaining_on_failure: bool,
    /// Record step inputs and outputs in `Debug` form.
    #[cfg_attr(feature = "serde", serde(alias = "CaptureIo", alias = "captureIo"))]
    pub capture_io: bool,
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        WorkflowOptions {
            continue_on_error: false,
            halt_on_failed_assertion: true,
            step_timeout: None,
            skip_remaining_on_failure: true,
            capture_io: false,
        }
    }
}

impl WorkflowOptions {
    /// Sets `continue_on_error`.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowOptions;
    /// assert!(WorkflowOptions::default().continue_on_error(true).continue_on_error);
    /// ```
    pub fn continue_on_error(mut self, yes: bool) -> Self {
        self.continue_on_error = yes;
        self
    }

    /// Sets `halt_on_failed_assertion`.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowOptions;
    /// let soft = WorkflowOptions::default().halt_on_failed_assertion(false);
    /// assert!(!soft.halt_on_failed_assertion);
    /// ```
    pub fn halt_on_failed_assertion(mut self, yes: bool) -> Self {
        self.halt_on_failed_assertion = yes;
        self
    }

    /// Sets the per-step timeout.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::WorkflowOptions;
    /// let o = WorkflowOptions::default().step_timeout(Duration::from_millis(250));
    /// assert_eq!(o.step_timeout, Some(Duration::from_millis(250)));
    /// ```
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.step_timeout = Some(timeout);
        self
    }

    /// Sets `skip_remaining_on_failure`.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowOptions;
    /// let o = WorkflowOptions::default().skip_remaining_on_failure(false);
    /// assert!(!o.skip_remaining_on_failure);
    /// ```
    pub fn skip_remaining_on_failure(mut self, yes: bool) -> Self {
        self.skip_remaining_on_failure = yes;
        self
    }

    /// Sets `capture_io`.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowOptions;
    /// assert!(WorkflowOptions::default().capture_io(true).capture_io);
    /// ```
    pub fn capture_io(mut self, yes: bool) -> Self {
        self.capture_io = yes;
        self
    }
}
