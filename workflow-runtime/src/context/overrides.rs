//! Step overrides, for tests: a context can carry canned results for
//! steps, by title, so a test runs a workflow with its payment step
//! declined (say) without touching the definition.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::{ContextBuilder, WorkflowContext};
use crate::error::StepError;

/// A step's stand-in: from the step's input to its result.
pub(crate) type OverrideFn<In, O> = Arc<dyn Fn(&In) -> Result<O, StepError> + Send + Sync>;

/// The overrides a context carries, by step title.
#[derive(Default)]
pub(crate) struct Overrides {
    by_title: HashMap<String, Entry>,
}

struct Entry {
    /// An `OverrideFn<In, O>`.
    f: Box<dyn Any + Send + Sync>,
    /// `fn(&In) -> O`, as written, for a mismatch's message.
    shape: String,
}

/// An override whose types are not its step's: the step fails with this,
/// naming both.
///
/// ```
/// use workflow_runtime::prelude::*;
/// use workflow_runtime::OverrideMismatch;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ctx = WorkflowContext::builder("W")
///     .override_step("rate", |_: &String| Ok::<u8, std::io::Error>(7))
///     .build();
/// let err = Workflow::given(&ctx, "amount", || 100u32)
///     .when("rate", |n| n / 10)
///     .overridable()
///     .await
///     .unwrap_err();
/// let WorkflowError::Failed { error, .. } = err else { unreachable!() };
/// assert!(error.downcast_ref::<OverrideMismatch>().is_some());
/// // The types as written, not their paths (`alloc::string::String`).
/// assert_eq!(
///     error.to_string(),
///     "the override of step \"rate\" is a `fn(&String) -> u8`, but the step is a `fn(&u32) -> u32`"
/// );
/// # }
/// ```
#[derive(Debug)]
pub struct OverrideMismatch {
    title: String,
    given: String,
    expected: String,
}

impl fmt::Display for OverrideMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the override of step \"{}\" is a `{}`, but the step is a `{}`",
            self.title, self.given, self.expected
        )
    }
}

impl std::error::Error for OverrideMismatch {}

fn shape<In, O>() -> String {
    format!(
        "fn(&{}) -> {}",
        short_type_name(std::any::type_name::<In>()),
        short_type_name(std::any::type_name::<O>())
    )
}

/// A type's name as a person writes it: each path cut to its last segment
/// (`alloc::vec::Vec<alloc::string::String>` reads `Vec<String>`).
fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            // A path: what came before it is a module.
            chars.next();
            segment.clear();
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

impl ContextBuilder {
    /// Runs the step titled `title` as `stand_in` instead: given a
    /// reference to the step's input, it returns the step's value (the
    /// `Ok` type of a fallible step) or an error, and the step records it
    /// like its own. For tests: the definition is unchanged, and so are
    /// the step's behaviors around it. A stand-in whose types are not the
    /// step's fails the step with [`OverrideMismatch`], naming both.
    /// Steps of `#[workflow]` definitions take overrides, as do chains
    /// that mark a step [`overridable`](crate::Workflow::overridable);
    /// durable steps do not (their results are journaled).
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// # #[derive(Debug)] struct Declined;
    /// # impl std::fmt::Display for Declined { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("declined") } }
    /// # impl std::error::Error for Declined {}
    /// struct Pay;
    /// #[workflow]
    /// impl Pay {
    ///     #[step(given = "an order")]
    ///     fn order(&self, cents: u32) -> u32 { cents }
    ///     #[step(when = "charge card")]
    ///     fn charge(&self, cents: u32) -> Result<String, Declined> { Ok(format!("charged {cents}")) }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = Pay::context()
    ///     .override_step("charge card", |_: &u32| Err::<String, _>(Declined))
    ///     .build();
    /// let err = Pay.run(&ctx, 250).await.unwrap_err();
    /// assert_eq!(err.to_string(), r#"workflow "Pay", step When "charge card" failed: declined"#);
    /// # }
    /// ```
    pub fn override_step<In, O, E, F>(mut self, title: impl Into<String>, stand_in: F) -> Self
    where
        In: 'static,
        O: 'static,
        E: Into<StepError>,
        F: Fn(&In) -> Result<O, E> + Send + Sync + 'static,
    {
        let f: OverrideFn<In, O> = Arc::new(move |input: &In| stand_in(input).map_err(Into::into));
        self.overrides
            .get_or_insert_with(Overrides::default)
            .by_title
            .insert(
                title.into(),
                Entry {
                    f: Box::new(f),
                    shape: shape::<In, O>(),
                },
            );
        self
    }
}

/// [`ContextBuilder::override_method`] named a method that is no step of
/// the definition; it lists the step methods there are.
///
/// ```
/// use workflow_runtime::prelude::*;
/// struct Ping;
/// #[workflow]
/// impl Ping {
///     #[step(given = "ping")]
///     fn ping(&self) -> u8 { 1 }
/// }
/// let err = Ping::context()
///     .override_method("pong", |_: &()| Ok::<u8, std::io::Error>(2))
///     .err()
///     .unwrap();
/// assert_eq!(err.to_string(), r#"workflow "Ping" has no step method `pong`; its steps are: ping"#);
/// ```
#[derive(Debug)]
pub struct UnknownStep {
    workflow: String,
    method: String,
    methods: Vec<&'static str>,
}

impl fmt::Display for UnknownStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workflow \"{}\" has no step method `{}`; its steps are: {}",
            self.workflow,
            self.method,
            self.methods.join(", ")
        )
    }
}

impl std::error::Error for UnknownStep {}

/// A step of a `#[workflow]` definition, with the types a stand-in for it
/// takes and makes: `#[workflow]` gives each step that makes a value one,
/// named after its method in capitals (`Pay::CHARGE` for `fn charge`), for
/// [`ContextBuilder::stand_in`]. A stand-in of other types does not
/// compile.
///
/// ```
/// use workflow_runtime::StepRef;
/// const CHARGE: StepRef<u32, String> = StepRef::new("Pay", "charge card");
/// assert_eq!(CHARGE.title(), "charge card");
/// ```
pub struct StepRef<In, O> {
    workflow: &'static str,
    title: &'static str,
    types: std::marker::PhantomData<fn(&In) -> O>,
}

impl<In, O> Clone for StepRef<In, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<In, O> Copy for StepRef<In, O> {}

impl<In, O> fmt::Debug for StepRef<In, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepRef({:?}, {:?})", self.workflow, self.title)
    }
}

impl<In, O> StepRef<In, O> {
    /// The step titled `title` of workflow `workflow`.
    pub const fn new(workflow: &'static str, title: &'static str) -> Self {
        StepRef {
            workflow,
            title,
            types: std::marker::PhantomData,
        }
    }

    /// The step's title.
    pub const fn title(&self) -> &'static str {
        self.title
    }

    /// Its workflow's name.
    pub const fn workflow(&self) -> &'static str {
        self.workflow
    }
}

impl ContextBuilder {
    /// [`override_step`](Self::override_step), naming the step by the
    /// handle `#[workflow]` makes for it (`Pay::CHARGE`): the stand-in's
    /// types are checked by the compiler, so a wrong one does not build
    /// instead of failing the step when it runs.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// struct Pay;
    /// #[workflow]
    /// impl Pay {
    ///     #[step(given = "an order")]
    ///     fn order(&self, cents: u32) -> u32 { cents }
    ///     #[step(when = "charge card")]
    ///     fn charge(&self, cents: u32) -> String { format!("charged {cents}") }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = Pay::context()
    ///     .stand_in(Pay::CHARGE, |cents: &u32| Ok::<_, std::io::Error>(format!("free {cents}")))
    ///     .build();
    /// assert_eq!(Pay.run(&ctx, 250).await.unwrap(), "free 250");
    /// # }
    /// ```
    pub fn stand_in<In, O, E, F>(self, step: StepRef<In, O>, stand_in: F) -> Self
    where
        In: 'static,
        O: 'static,
        E: Into<StepError>,
        F: Fn(&In) -> Result<O, E> + Send + Sync + 'static,
    {
        self.override_step(step.title, stand_in)
    }

    /// [`override_step`](Self::override_step), naming the step by its
    /// method, on a builder a definition made (`Checkout::context()`): a
    /// method that is no step of it is an [`UnknownStep`] error, listing
    /// the step methods, so a typo cannot let the real step run.
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// struct Pay;
    /// #[workflow]
    /// impl Pay {
    ///     #[step(given = "an order")]
    ///     fn order(&self, cents: u32) -> u32 { cents }
    ///     #[step(when = "charge card")]
    ///     fn charge(&self, cents: u32) -> String { format!("charged {cents}") }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = Pay::context()
    ///     .override_method("charge", |_: &u32| Ok::<_, std::io::Error>("free".to_owned()))
    ///     .unwrap()
    ///     .build();
    /// assert_eq!(Pay.run(&ctx, 250).await.unwrap(), "free");
    /// let typo = Pay::context().override_method("chrage", |_: &u32| Ok::<_, std::io::Error>(0));
    /// assert_eq!(
    ///     typo.err().unwrap().to_string(),
    ///     r#"workflow "Pay" has no step method `chrage`; its steps are: order, charge"#
    /// );
    /// # }
    /// ```
    pub fn override_method<In, O, E, F>(
        self,
        method: &str,
        stand_in: F,
    ) -> Result<Self, UnknownStep>
    where
        In: 'static,
        O: 'static,
        E: Into<StepError>,
        F: Fn(&In) -> Result<O, E> + Send + Sync + 'static,
    {
        match self.step_metas.iter().find(|meta| meta.method == method) {
            Some(meta) => Ok(self.override_step(meta.title, stand_in)),
            None => Err(UnknownStep {
                workflow: self.name.to_string(),
                method: method.to_owned(),
                methods: self.step_metas.iter().map(|meta| meta.method).collect(),
            }),
        }
    }
}

impl WorkflowContext {
    /// Whether a test gave this context any stand-ins: the one check a
    /// step pays when it has none.
    #[inline]
    pub(crate) fn has_overrides(&self) -> bool {
        self.inner.overrides.is_some()
    }

    /// The stand-in for the step titled `title`, if the context has one:
    /// `Err` when its types are not the step's.
    pub(crate) fn step_override<In: 'static, O: 'static>(
        &self,
        title: &str,
    ) -> Option<Result<OverrideFn<In, O>, OverrideMismatch>> {
        let entry = self.inner.overrides.as_ref()?.by_title.get(title)?;
        Some(match entry.f.downcast_ref::<OverrideFn<In, O>>() {
            Some(f) => Ok(f.clone()),
            None => Err(OverrideMismatch {
                title: title.to_owned(),
                given: entry.shape.clone(),
                expected: shape::<In, O>(),
            }),
        })
    }
}
