//! Step kinds and the identity of a step inside a workflow.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A step's title: borrowed for literals (the common case, no allocation),
/// owned when built at run time.
pub type Title = Cow<'static, str>;

/// The Given/When/Then role of a step.
///
/// ```
/// use workflow_runtime::StepKind;
/// assert_eq!(StepKind::When.to_string(), "When");
/// assert_eq!(StepKind::Finally.as_str(), "Finally");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Sets up the starting value.
    Given,
    /// The action under way.
    When,
    /// A further action, read as part of the step before it.
    And,
    /// A contrasting action, read as part of the step before it.
    But,
    /// An assertion on the current value; the value passes on unchanged.
    Then,
    /// Runs whether or not the steps before it passed.
    Finally,
}

impl StepKind {
    /// The kind's name, as shown in reports and spans.
    ///
    /// ```
    /// assert_eq!(workflow_runtime::StepKind::Given.as_str(), "Given");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            StepKind::Given => "Given",
            StepKind::When => "When",
            StepKind::And => "And",
            StepKind::But => "But",
            StepKind::Then => "Then",
            StepKind::Finally => "Finally",
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which step of which workflow: the context every error and record carries.
///
/// ```
/// use workflow_runtime::{StepInfo, StepKind};
/// let step = StepInfo::new("Orders", StepKind::When, "charge card");
/// assert_eq!(step.to_string(), r#"workflow "Orders", step When "charge card""#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepInfo {
    /// The workflow's name.
    pub workflow: Arc<str>,
    /// The step's kind.
    pub kind: StepKind,
    /// The step's title.
    pub title: Title,
}

impl StepInfo {
    /// Names a step.
    ///
    /// ```
    /// # use workflow_runtime::{StepInfo, StepKind};
    /// let step = StepInfo::new("Orders", StepKind::Then, "paid");
    /// assert_eq!(&*step.workflow, "Orders");
    /// ```
    pub fn new(workflow: impl Into<Arc<str>>, kind: StepKind, title: impl Into<Title>) -> Self {
        StepInfo {
            workflow: workflow.into(),
            kind,
            title: title.into(),
        }
    }
}

impl fmt::Display for StepInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workflow {:?}, step {} {:?}",
            self.workflow, self.kind, self.title
        )
    }
}
