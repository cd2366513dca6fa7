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
    /// Undoes a completed step after a later one failed for good (a
    /// saga's compensation), latest first.
    Compensate,
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
            StepKind::Compensate => "Compensate",
        }
    }
}

impl StepKind {
    /// Where a step of this kind stands in a workflow, as spans, logs and
    /// metrics name it beside the kind: `setup` (Given), `action` (When,
    /// And, But), `assertion` (Then), `cleanup` (Finally), `compensation`.
    ///
    /// ```
    /// use workflow_runtime::StepKind;
    /// assert_eq!(StepKind::But.phase(), "action");
    /// assert_eq!(StepKind::Then.phase(), "assertion");
    /// ```
    pub const fn phase(self) -> &'static str {
        match self {
            StepKind::Given => "setup",
            StepKind::When | StepKind::And | StepKind::But => "action",
            StepKind::Then => "assertion",
            StepKind::Finally => "cleanup",
            StepKind::Compensate => "compensation",
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

/// One step of a workflow definition, known at compile time.
///
/// Fields will grow (durable workflows add more), so it is built with
/// [`new`](Self::new) and `const` setters rather than a struct literal.
///
/// ```
/// use workflow_runtime::{StepKind, StepMeta};
/// const STEP: StepMeta = StepMeta::new(StepKind::When, "process payment", "charge")
///     .input("Order")
///     .output("Order")
///     .is_async(true)
///     .fallible(true);
/// assert_eq!(STEP.title, "process payment");
/// assert!(STEP.fallible);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepMeta {
    /// The step's kind.
    pub kind: StepKind,
    /// The step's title.
    pub title: &'static str,
    /// The method that implements it.
    pub method: &'static str,
    /// Its input type, as written (`""` when it takes none).
    pub input: &'static str,
    /// Its output type, as written (the `Ok` type of a fallible step).
    pub output: &'static str,
    /// Whether it is an `async fn`.
    pub is_async: bool,
    /// Whether it returns `Result`.
    pub fallible: bool,
    /// Whether its body may run again for a behavior of the context (a
    /// type-wide retry): it is `#[step(replayable)]` or has a `retry` of
    /// its own, so its input is copied for each attempt.
    pub replayable: bool,
    /// The type it hands on, for a value step: what a type-wide behavior
    /// (`behavior_for::<T>`) keys on.
    produced: Option<Produced>,
}

/// A type, by the function that names its id: const to build, compared by
/// the id.
#[derive(Clone, Copy)]
struct Produced(fn() -> std::any::TypeId);

impl PartialEq for Produced {
    fn eq(&self, other: &Self) -> bool {
        (self.0)() == (other.0)()
    }
}

impl Eq for Produced {}

impl fmt::Debug for Produced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&(self.0)(), f)
    }
}

impl StepMeta {
    /// Marks it a value step handing on `T`.
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// const STEP: StepMeta = StepMeta::new(StepKind::When, "t", "m").produces::<u32>();
    /// assert_eq!(STEP.output_type(), Some(std::any::TypeId::of::<u32>()));
    /// ```
    pub const fn produces<T: ?Sized>(mut self) -> Self {
        self.produced = Some(Produced(typeid::of::<T>));
        self
    }

    /// The type it hands on, for a value step (see
    /// [`produces`](Self::produces)).
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// // An assertion hands its value on: it makes none of its own.
    /// assert_eq!(StepMeta::new(StepKind::Then, "holds", "check").output_type(), None);
    /// ```
    pub fn output_type(&self) -> Option<std::any::TypeId> {
        self.produced.map(|p| (p.0)())
    }

    /// Whether a behavior of the context may run its body again.
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// assert!(StepMeta::new(StepKind::When, "t", "m").replayable(true).replayable);
    /// ```
    pub const fn replayable(mut self, yes: bool) -> Self {
        self.replayable = yes;
        self
    }

    /// A sync, infallible step of `kind` titled `title`, implemented by
    /// `method`, taking and producing nothing.
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// let step = StepMeta::new(StepKind::Given, "an order", "order");
    /// assert_eq!((step.input, step.is_async), ("", false));
    /// ```
    pub const fn new(kind: StepKind, title: &'static str, method: &'static str) -> Self {
        StepMeta {
            kind,
            title,
            method,
            input: "",
            output: "",
            is_async: false,
            fallible: false,
            replayable: false,
            produced: None,
        }
    }

    /// Its input type, as written.
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// assert_eq!(StepMeta::new(StepKind::When, "t", "m").input("Order").input, "Order");
    /// ```
    pub const fn input(mut self, ty: &'static str) -> Self {
        self.input = ty;
        self
    }

    /// Its output type, as written (the `Ok` type of a fallible step).
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// assert_eq!(StepMeta::new(StepKind::When, "t", "m").output("Order").output, "Order");
    /// ```
    pub const fn output(mut self, ty: &'static str) -> Self {
        self.output = ty;
        self
    }

    /// Whether it is an `async fn`.
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// assert!(StepMeta::new(StepKind::When, "t", "m").is_async(true).is_async);
    /// ```
    pub const fn is_async(mut self, is_async: bool) -> Self {
        self.is_async = is_async;
        self
    }

    /// Whether it returns `Result`.
    ///
    /// ```
    /// # use workflow_runtime::{StepKind, StepMeta};
    /// assert!(StepMeta::new(StepKind::When, "t", "m").fallible(true).fallible);
    /// ```
    pub const fn fallible(mut self, fallible: bool) -> Self {
        self.fallible = fallible;
        self
    }
}
