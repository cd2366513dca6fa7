//! The workflow context: who is running, what ran, and what travels along.

pub(crate) mod active;
mod journal;
mod metadata;
mod name;
mod options;
mod overrides;
mod record;
pub(crate) mod stop;

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::behavior::{
    Behavior, Behaviors, Breakers, ForType, IntoBehavior, IntoBehaviorFor, Layer, Layers,
};

pub use active::Scoped;
pub(crate) use journal::{JournalFault, RunJournal};
pub use metadata::MetadataError;
use metadata::{Extensions, Metadata};
use name::Name;
pub use options::WorkflowOptions;
pub use overrides::{OverrideMismatch, StepRef, UnknownStep};
pub use record::{StepId, StepOutcome, StepRecord};

type CleanupHook = Box<dyn FnOnce(&WorkflowSummary) + Send>;

/// The record of one workflow execution, shared by every step of it.
///
/// A context is a cheap handle (`Clone` shares it), `Send + Sync`, so spawned
/// work can record into the same run. It holds the workflow's name and a
/// fresh execution id, the options, the step records in order, typed
/// metadata and extensions, cleanup hooks and a cancellation token.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), WorkflowError> {
/// let ctx = WorkflowContext::new("CalculatorTest");
/// let sum = Workflow::given(&ctx, "two numbers", || (10, 5))
///     .when("they are added", |(a, b)| a + b)
///     .then("the sum is correct", |sum| *sum == 15)
///     .await?;
/// assert_eq!(sum, 15);
/// assert!(ctx.all_passed());
/// assert_eq!(ctx.steps().len(), 3);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WorkflowContext {
    inner: Arc<Inner>,
}

struct Inner {
    name: Name,
    description: Option<Arc<str>>,
    execution_id: Uuid,
    options: WorkflowOptions,
    steps: Mutex<Vec<StepRecord>>,
    step_ids: AtomicU32,
    metadata: Mutex<Metadata>,
    extensions: Mutex<Extensions>,
    cleanup: Mutex<Vec<CleanupHook>>,
    /// The context's behaviors, each known as built-in or not once here
    /// rather than at every step.
    behaviors: Layers,
    typed_behaviors: Vec<(TypeId, Layer)>,
    // Given by the runner (or the builder)...
    breakers: Option<Breakers>,
    // ...or made on first use for a lone context. Apart, so a context
    // given them is built with no `Once` to run for them.
    own_breakers: OnceLock<Breakers>,
    // Created on first use: most runs are never cancelled, and a token costs
    // an allocation (and, under a runner, a lock of its token).
    cancel: OnceLock<CancellationToken>,
    /// The runner's stop, whose token is the parent of `cancel` when one
    /// is made.
    stop: Option<Arc<stop::RunsStop>>,
    /// Stand-ins for steps, set by a test.
    overrides: Option<overrides::Overrides>,
    clock: crate::Clock,
    /// The durable run's journal, when a runner with a store runs it.
    journal: Option<Arc<dyn RunJournal>>,
}

/// What cleanup hooks learn about the run that ended.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use workflow_runtime::WorkflowContext;
///
/// let seen = Arc::new(Mutex::new(None));
/// let ctx = WorkflowContext::new("Doc");
/// let sink = seen.clone();
/// ctx.on_cleanup(move |summary| *sink.lock().unwrap() = Some(summary.all_passed));
/// ctx.finish();
/// assert_eq!(*seen.lock().unwrap(), Some(true));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkflowSummary {
    /// The workflow's name.
    pub workflow: Arc<str>,
    /// The execution id.
    pub execution_id: Uuid,
    /// Whether every recorded step passed.
    pub all_passed: bool,
    /// How many steps were recorded.
    pub steps: usize,
    /// How many recorded steps failed, timed out or were cancelled.
    pub failed: usize,
    /// The top-level steps' elapsed times, added up (a child's time is
    /// part of its parent's).
    pub total_elapsed: Duration,
}

/// A random (version 4) UUID without a system call per context: two
/// SplitMix64 streams per thread, seeded randomly once, over a counter.
/// Each stream is a bijection of the counter, so a thread never repeats an
/// id; threads differ by their random seeds.
pub(crate) fn execution_id() -> Uuid {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static STATE: Cell<Option<(u64, u64, u64)>> = const { Cell::new(None) };
    }
    use crate::mix::{GAMMA, splitmix64};
    let (high, low) = STATE.with(|state| {
        let (a, b, n) = state.get().unwrap_or_else(|| {
            let keys = RandomState::new();
            (keys.hash_one(0u8), keys.hash_one(1u8), 0)
        });
        state.set(Some((a, b, n.wrapping_add(1))));
        let step = n.wrapping_mul(GAMMA);
        (
            splitmix64(a.wrapping_add(step)),
            splitmix64(b.wrapping_add(step)),
        )
    });
    let bits = (u128::from(high) << 64) | u128::from(low);
    uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid()
}

/// The steps' elapsed times, added up; a child's time is already part of
/// its parent's, so only steps without a parent count.
fn top_level_elapsed(steps: &[StepRecord]) -> Duration {
    steps
        .iter()
        .filter(|s| s.parent.is_none())
        .map(|s| s.elapsed)
        .sum()
}

#[inline]
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking step never holds these locks; recover rather than lose data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`WorkflowContext`] with a description, options or a
/// cancellation token.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::{WorkflowContext, WorkflowOptions};
///
/// let ctx = WorkflowContext::builder("Orders")
///     .description("Creates an order")
///     .options(WorkflowOptions::default().step_timeout(Duration::from_secs(30)))
///     .build();
/// assert_eq!(ctx.description(), Some("Creates an order"));
/// assert_eq!(ctx.options().step_timeout, Some(Duration::from_secs(30)));
/// ```
#[must_use]
pub struct ContextBuilder {
    name: Name,
    description: Option<Arc<str>>,
    options: WorkflowOptions,
    /// Whether `options` were set by the caller: then a runner's defaults
    /// do not apply.
    options_given: bool,
    /// The definition's own settings (`#[workflow(step_timeout = "30s")]`),
    /// applied on top of whichever defaults the options start from.
    refine: Option<fn(WorkflowOptions) -> WorkflowOptions>,
    cancel: Option<CancellationToken>,
    stop: Option<Arc<stop::RunsStop>>,
    behaviors: Behaviors,
    typed_behaviors: Vec<(TypeId, ForType)>,
    breakers: Option<Breakers>,
    expected_steps: usize,
    overrides: Option<overrides::Overrides>,
    /// The definition's steps, when a definition made the builder: what
    /// [`override_method`](Self::override_method) finds a method in.
    step_metas: &'static [crate::StepMeta],
    clock: crate::Clock,
    journal: Option<Arc<dyn RunJournal>>,
}

impl ContextBuilder {
    /// The wall clock the run reads (a resumed retry's backoff, journal
    /// timestamps): the system's unless set; a runner sets its own.
    ///
    /// ```
    /// use workflow_runtime::{Clock, WorkflowContext};
    /// let ctx = WorkflowContext::builder("W").clock(Clock::system()).build();
    /// assert!(ctx.clock().now_ms() > 0);
    /// ```
    #[inline]
    pub fn clock(mut self, clock: crate::Clock) -> Self {
        self.clock = clock;
        self
    }

    #[inline]
    pub(crate) fn step_metas(mut self, metas: &'static [crate::StepMeta]) -> Self {
        self.step_metas = metas;
        self
    }

    /// A human description of the workflow.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::builder("W").description("does things").build();
    /// assert_eq!(ctx.description(), Some("does things"));
    /// ```
    pub fn description(mut self, description: impl Into<Arc<str>>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The options every run under this context follows.
    ///
    /// ```
    /// # use workflow_runtime::{WorkflowContext, WorkflowOptions};
    /// let ctx = WorkflowContext::builder("W")
    ///     .options(WorkflowOptions::default().continue_on_error(true))
    ///     .build();
    /// assert!(ctx.options().continue_on_error);
    /// ```
    #[inline]
    pub fn options(mut self, options: WorkflowOptions) -> Self {
        self.options = options;
        self.options_given = true;
        self
    }

    /// The definition's own option settings, applied to the default
    /// options now and to a runner's defaults when it makes the context.
    #[doc(hidden)]
    #[inline]
    pub fn __refine_options(mut self, refine: fn(WorkflowOptions) -> WorkflowOptions) -> Self {
        self.options = refine(self.options);
        self.refine = Some(refine);
        self
    }

    /// Starts the options from `defaults` (a runner's or host's) with the
    /// definition's own settings on top, unless the caller set them.
    #[inline]
    pub(crate) fn default_options(&mut self, defaults: &WorkflowOptions) {
        if !self.options_given {
            self.options = match self.refine {
                Some(refine) => refine(defaults.clone()),
                None => defaults.clone(),
            };
        }
    }

    /// Puts `typed` before this builder's own typed behaviors: a runner's
    /// service-wide ones sit outside a context's.
    #[inline]
    pub(crate) fn typed_behaviors_first(&mut self, typed: &[(TypeId, ForType)]) {
        if !typed.is_empty() {
            let own = std::mem::take(&mut self.typed_behaviors);
            self.typed_behaviors = typed.iter().cloned().chain(own).collect();
        }
    }

    /// What a runner gives each context it makes, set in place: the
    /// builder is moved once, not through a call per setting.
    #[inline]
    pub(crate) fn under_runner(
        &mut self,
        stop: Arc<stop::RunsStop>,
        breakers: Breakers,
        clock: crate::Clock,
        options: &WorkflowOptions,
    ) {
        self.under_stop(stop);
        self.breakers = Some(breakers);
        self.clock = clock;
        self.default_options(options);
    }

    /// Makes runs under this context stop when `stop` (a runner's)
    /// does; it takes the place of a token given to the builder.
    #[inline]
    pub(crate) fn under_stop(&mut self, stop: Arc<stop::RunsStop>) {
        self.cancel = None;
        self.stop = Some(stop);
    }

    /// Cancel runs under this context when `token` is cancelled (for
    /// example a child of the host's shutdown token).
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// use tokio_util::sync::CancellationToken;
    /// let token = CancellationToken::new();
    /// let ctx = WorkflowContext::builder("W").cancellation(token.clone()).build();
    /// token.cancel();
    /// assert!(ctx.is_cancelled());
    /// ```
    #[inline]
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Wraps every step run under this context in `behavior`. Behaviors
    /// added first sit outermost.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::Timeout;
    /// use workflow_runtime::WorkflowContext;
    ///
    /// let ctx = WorkflowContext::builder("W")
    ///     .behavior(Timeout::new(Duration::from_secs(5)))
    ///     .build();
    /// # drop(ctx);
    /// ```
    pub fn behavior(mut self, behavior: impl IntoBehavior) -> Self {
        self.behaviors.push(behavior.into_behavior());
        self
    }

    /// Wraps every step whose output is a `T` in `behavior` (the guide's
    /// `AddRetryBehavior<PaymentResult>`). These sit inside the untyped ones.
    /// A value behavior ([`Fallback`](crate::behavior::Fallback),
    /// [`Cache`](crate::behavior::Cache),
    /// [`OnValue`](crate::behavior::OnValue)) sees and may replace the
    /// steps' value.
    ///
    /// ```
    /// use workflow_runtime::behavior::{Fallback, Retry};
    /// use workflow_runtime::WorkflowContext;
    ///
    /// #[derive(Clone)]
    /// struct PaymentResult;
    /// struct Price(u32);
    /// let ctx = WorkflowContext::builder("W")
    ///     .behavior_for::<PaymentResult>(Retry::max_attempts(3))
    ///     .behavior_for::<Price>(Fallback::to(|_| Some(Price(999))))
    ///     .build();
    /// # drop(ctx);
    /// ```
    pub fn behavior_for<T: ?Sized + 'static>(mut self, behavior: impl IntoBehaviorFor<T>) -> Self {
        self.typed_behaviors
            .push((TypeId::of::<T>(), behavior.into_behavior_for()));
        self
    }

    /// The circuit breakers that steps naming a breaker share (a runner
    /// gives its own). Without one, the context makes a set of its own.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, Breakers};
    /// use workflow_runtime::WorkflowContext;
    ///
    /// let breakers = Breakers::new();
    /// let ctx = WorkflowContext::builder("W").breakers(breakers.clone()).build();
    /// ctx.breakers().breaker("bank", BreakerConfig::default());
    /// assert!(breakers.get("bank").is_some());
    /// ```
    #[inline]
    pub fn breakers(mut self, breakers: Breakers) -> Self {
        self.breakers = Some(breakers);
        self
    }

    /// Room for `steps` records, made with the context, so a run that
    /// records no more than that allocates nothing for them. A
    /// `#[workflow]`'s [`context()`](crate::WorkflowDefinition::context)
    /// sets it to its step count.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::builder("W").expected_steps(10).build();
    /// assert!(ctx.steps().is_empty());
    /// ```
    #[inline]
    pub fn expected_steps(mut self, steps: usize) -> Self {
        self.expected_steps = steps;
        self
    }

    /// Makes the context a durable run's.
    #[cfg(feature = "durable")]
    #[inline]
    pub(crate) fn journal(mut self, journal: Arc<dyn RunJournal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Puts `behaviors` outside the ones added so far (a host's, around a
    /// workflow's).
    #[inline]
    pub(crate) fn behaviors_first(&mut self, behaviors: &[Arc<dyn Behavior>]) {
        if !behaviors.is_empty() {
            let own = std::mem::take(&mut self.behaviors);
            self.behaviors = behaviors.iter().cloned().chain(own).collect();
        }
    }

    /// The context, with a fresh execution id.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let a = WorkflowContext::builder("W").build();
    /// let b = WorkflowContext::builder("W").build();
    /// assert_ne!(a.execution_id(), b.execution_id());
    /// ```
    // Inlined: where the builder was made, most of its settings are seen
    // to be their defaults, and the build folds them away rather than
    // taking a copy of the whole builder into a call (some 130 to
    // 160 instructions a context).
    #[inline]
    pub fn build(self) -> WorkflowContext {
        let cancel = self.cancel.map_or_else(OnceLock::new, OnceLock::from);
        WorkflowContext {
            inner: Arc::new(Inner {
                name: self.name,
                description: self.description,
                execution_id: execution_id(),
                options: self.options,
                steps: Mutex::new(Vec::with_capacity(self.expected_steps)),
                step_ids: AtomicU32::new(0),
                metadata: Mutex::default(),
                extensions: Mutex::default(),
                cleanup: Mutex::new(Vec::new()),
                // Most contexts have none: not even an empty collect.
                behaviors: if self.behaviors.is_empty() {
                    Vec::new()
                } else {
                    self.behaviors.into_iter().map(Layer::shared).collect()
                },
                typed_behaviors: if self.typed_behaviors.is_empty() {
                    Vec::new()
                } else {
                    self.typed_behaviors
                        .into_iter()
                        .map(|(ty, behavior)| (ty, Layer::for_type(&behavior)))
                        .collect()
                },
                breakers: self.breakers,
                own_breakers: OnceLock::new(),
                cancel,
                stop: self.stop,
                overrides: self.overrides,
                clock: self.clock,
                journal: self.journal,
            }),
        }
    }
}

impl WorkflowContext {
    /// A context with default options.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("Orders");
    /// assert_eq!(ctx.name(), "Orders");
    /// assert!(ctx.steps().is_empty());
    /// ```
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self::builder(name).build()
    }

    /// Starts a [`ContextBuilder`].
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::builder("Orders").build();
    /// assert_eq!(ctx.description(), None);
    /// ```
    pub fn builder(name: impl Into<Arc<str>>) -> ContextBuilder {
        Self::named(Name::Shared(name.into()))
    }

    /// [`builder`](Self::builder) for a definition's static name, kept
    /// as it is rather than copied into each run's context.
    #[inline]
    pub(crate) fn static_builder(name: &'static str) -> ContextBuilder {
        Self::named(Name::of_definition(name))
    }

    #[inline]
    fn named(name: Name) -> ContextBuilder {
        ContextBuilder {
            name,
            description: None,
            options: WorkflowOptions::default(),
            options_given: false,
            refine: None,
            cancel: None,
            stop: None,
            behaviors: Vec::new(),
            typed_behaviors: Vec::new(),
            breakers: None,
            expected_steps: 0,
            overrides: None,
            step_metas: &[],
            clock: crate::Clock::system(),
            journal: None,
        }
    }

    /// The workflow's name.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert_eq!(WorkflowContext::new("W").name(), "W");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The workflow's name as a shared string, for errors and reports. A
    /// definition's context keeps its static name as it is, and makes the
    /// shared copy at the first ask (each ask after it gets the same
    /// string); [`name`](Self::name) borrows it.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let name = WorkflowContext::new("W").shared_name();
    /// assert_eq!(&*name, "W");
    /// ```
    #[inline]
    pub fn shared_name(&self) -> Arc<str> {
        self.inner.name.shared()
    }

    /// The workflow's name as a metrics label.
    pub(crate) fn name_label(&self) -> metrics::SharedString {
        self.inner.name.label()
    }

    /// The workflow's description, if any.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert_eq!(WorkflowContext::new("W").description(), None);
    /// ```
    pub fn description(&self) -> Option<&str> {
        self.inner.description.as_deref()
    }

    /// This execution's unique id.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// assert_eq!(ctx.execution_id(), ctx.clone().execution_id());
    /// ```
    pub fn execution_id(&self) -> Uuid {
        self.inner.execution_id
    }

    /// The wall clock the run reads (see [`ContextBuilder::clock`]).
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::new("W").clock().now_ms() > 0);
    /// ```
    pub fn clock(&self) -> crate::Clock {
        self.inner.clock
    }

    /// The options runs under this context follow.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::new("W").options().halt_on_failed_assertion);
    /// ```
    #[inline]
    pub fn options(&self) -> &WorkflowOptions {
        &self.inner.options
    }

    /// The circuit breakers this context's steps share by name.
    ///
    /// ```
    /// use workflow_runtime::behavior::BreakerConfig;
    /// use workflow_runtime::WorkflowContext;
    ///
    /// let ctx = WorkflowContext::new("W");
    /// let a = ctx.breakers().breaker("bank", BreakerConfig::default());
    /// let b = ctx.breakers().breaker("bank", BreakerConfig::default());
    /// assert!(std::sync::Arc::ptr_eq(&a, &b));
    /// ```
    pub fn breakers(&self) -> &Breakers {
        match &self.inner.breakers {
            Some(breakers) => breakers,
            None => self.inner.own_breakers.get_or_init(Breakers::new),
        }
    }

    /// The behaviors that wrap a step producing a `T`, followed by the
    /// step's own: outermost first. Unallocated when there are none.
    #[inline]
    pub(crate) fn stack_for<T: ?Sized>(
        &self,
        own: Layers,
        values: impl FnOnce() -> bool,
    ) -> Layers {
        let inner = &self.inner;
        if inner.behaviors.is_empty() && inner.typed_behaviors.is_empty() {
            return own;
        }
        // Any output type, borrowed ones too: a step yielding `Foo<'a>`
        // gets the behaviors registered for `Foo<'static>`.
        self.stack_with(typeid::of::<T>(), own, values())
    }

    /// [`stack_for`](Self::stack_for) when the context has behaviors of
    /// its own: kept out of line, as most steps never get here.
    fn stack_with(&self, output_type: TypeId, own: Layers, values: bool) -> Layers {
        let inner = &self.inner;
        let typed = inner
            .typed_behaviors
            .iter()
            .filter(|(ty, layer)| *ty == output_type && (values || !layer.sees_value()))
            .map(|(_, layer)| layer.idle_copy());
        inner
            .behaviors
            .iter()
            .map(Layer::idle_copy)
            .chain(typed)
            .chain(own)
            .collect()
    }

    // ---- step records -------------------------------------------------

    /// The durable run's journal, if this context is a durable run's.
    #[inline]
    pub(crate) fn run_journal(&self) -> Option<&Arc<dyn RunJournal>> {
        self.inner.journal.as_ref()
    }

    /// Whether a step with no behaviors of its own runs as its body
    /// alone: the context wraps steps in no behaviors and has no journal
    /// to replay them from.
    #[inline]
    pub(crate) fn runs_plain(&self) -> bool {
        let inner = &self.inner;
        inner.behaviors.is_empty() && inner.typed_behaviors.is_empty() && inner.journal.is_none()
    }

    /// A fresh step id.
    #[inline]
    pub(crate) fn next_step_id(&self) -> StepId {
        StepId::new(self.inner.step_ids.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Appends a step record. The chain and `#[step]` functions call this;
    /// call it yourself to record work done outside them.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::{StepKind, StepOutcome, StepRecord, WorkflowContext};
    /// let ctx = WorkflowContext::new("W");
    /// ctx.record(StepRecord::new(StepKind::When, "manual", Duration::ZERO, StepOutcome::Passed));
    /// assert_eq!(ctx.steps()[0].title, "manual");
    /// ```
    #[inline]
    pub fn record(&self, mut record: StepRecord) {
        if record.id == StepId::UNSET {
            record.id = self.next_step_id();
        }
        self.push_record(record);
    }

    /// Appends a step record whose id is set: [`record`](Self::record)
    /// inlined, for each step's end.
    #[inline(always)]
    pub(crate) fn push_record(&self, record: StepRecord) {
        debug_assert_ne!(record.id, StepId::UNSET);
        self.push_record_with(|| record);
    }

    /// [`push_record`](Self::push_record), making the record once there
    /// is room for it, so it is written where it stays.
    #[inline(always)]
    pub(crate) fn push_record_with(&self, make: impl FnOnce() -> StepRecord) {
        let mut steps = lock(&self.inner.steps);
        if steps.len() == steps.capacity() {
            // Room for 16 more at once: one allocation for a typical run
            // on a bare context, rather than growing 4, 8, 16.
            steps.reserve(16);
        }
        steps.push(make());
    }

    /// A copy of the step records, in the order the steps ended.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::new("W").steps().is_empty());
    /// ```
    pub fn steps(&self) -> Vec<StepRecord> {
        lock(&self.inner.steps).clone()
    }

    /// Calls `f` with the step records without copying them.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let n = WorkflowContext::new("W").with_steps(|steps| steps.len());
    /// assert_eq!(n, 0);
    /// ```
    pub fn with_steps<R>(&self, f: impl FnOnce(&[StepRecord]) -> R) -> R {
        f(&lock(&self.inner.steps))
    }

    /// True when every recorded step passed (and so when none ran yet).
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::new("W").all_passed());
    /// ```
    pub fn all_passed(&self) -> bool {
        self.with_steps(|steps| steps.iter().all(|s| s.outcome.is_passed()))
    }

    /// The first step that failed, timed out or was cancelled.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::new("W").first_failure().is_none());
    /// ```
    pub fn first_failure(&self) -> Option<StepRecord> {
        self.with_steps(|steps| steps.iter().find(|s| s.outcome.is_failure()).cloned())
    }

    /// Every step that failed, timed out or was cancelled.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::new("W").failed_steps().is_empty());
    /// ```
    pub fn failed_steps(&self) -> Vec<StepRecord> {
        self.with_steps(|steps| {
            steps
                .iter()
                .filter(|s| s.outcome.is_failure())
                .cloned()
                .collect()
        })
    }

    /// The top-level steps' elapsed times, added up (a child's time is
    /// part of its parent's).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::WorkflowContext;
    /// assert_eq!(WorkflowContext::new("W").total_elapsed(), Duration::ZERO);
    /// ```
    pub fn total_elapsed(&self) -> Duration {
        self.with_steps(top_level_elapsed)
    }

    /// A summary of what was recorded so far.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let summary = WorkflowContext::new("W").summary();
    /// assert_eq!(summary.steps, 0);
    /// assert!(summary.all_passed);
    /// ```
    pub fn summary(&self) -> WorkflowSummary {
        self.inner.summary()
    }

    // ---- metadata and extensions -------------------------------------

    /// Stores `value` under `key`, replacing what was there. Any
    /// `Clone + Send + Sync` value works: ids, durations, integers.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.set_metadata("timeout", Duration::from_secs(5));
    /// assert_eq!(ctx.metadata::<Duration>("timeout"), Some(Duration::from_secs(5)));
    /// ```
    pub fn set_metadata<T: Any + Send + Sync>(&self, key: impl Into<Cow<'static, str>>, value: T) {
        lock(&self.inner.metadata).set(key.into(), value);
    }

    /// The value under `key`, if there is one of type `T`.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.set_metadata("tenantId", "acme".to_string());
    /// assert_eq!(ctx.metadata::<String>("tenantId").as_deref(), Some("acme"));
    /// assert_eq!(ctx.metadata::<u64>("tenantId"), None);
    /// ```
    pub fn metadata<T: Any + Clone>(&self, key: &str) -> Option<T> {
        self.try_metadata(key).ok()
    }

    /// The value under `key`, or why there is none of type `T`.
    ///
    /// ```
    /// # use workflow_runtime::{MetadataError, WorkflowContext};
    /// let ctx = WorkflowContext::new("W");
    /// assert_eq!(
    ///     ctx.try_metadata::<u8>("nope"),
    ///     Err(MetadataError::Missing { key: "nope".into() })
    /// );
    /// ```
    pub fn try_metadata<T: Any + Clone>(&self, key: &str) -> Result<T, MetadataError> {
        lock(&self.inner.metadata).get(key)
    }

    /// Removes the value under `key`; true if there was one.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.set_metadata("k", 1);
    /// assert!(ctx.remove_metadata("k"));
    /// assert!(!ctx.remove_metadata("k"));
    /// ```
    pub fn remove_metadata(&self, key: &str) -> bool {
        lock(&self.inner.metadata).remove(key)
    }

    /// The metadata keys, in insertion order.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.set_metadata("a", 1);
    /// ctx.set_metadata("b", 2);
    /// assert_eq!(ctx.metadata_keys(), ["a", "b"]);
    /// ```
    pub fn metadata_keys(&self) -> Vec<String> {
        lock(&self.inner.metadata).keys()
    }

    /// Stores one value of type `T`, returning the one it replaced.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Tenant(&'static str);
    /// let ctx = WorkflowContext::new("W");
    /// assert_eq!(ctx.insert_extension(Tenant("acme")), None);
    /// assert_eq!(ctx.extension::<Tenant>(), Some(Tenant("acme")));
    /// ```
    pub fn insert_extension<T: Any + Send + Sync>(&self, value: T) -> Option<T> {
        lock(&self.inner.extensions).insert(value)
    }

    /// A copy of the stored `T`, if any.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert_eq!(WorkflowContext::new("W").extension::<u32>(), None);
    /// ```
    pub fn extension<T: Any + Clone>(&self) -> Option<T> {
        lock(&self.inner.extensions).get()
    }

    /// Takes the stored `T` out.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.insert_extension(7u32);
    /// assert_eq!(ctx.remove_extension::<u32>(), Some(7));
    /// assert_eq!(ctx.extension::<u32>(), None);
    /// ```
    pub fn remove_extension<T: Any>(&self) -> Option<T> {
        lock(&self.inner.extensions).remove()
    }

    // ---- cancellation ---------------------------------------------------

    /// The token that cancels runs under this context.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.cancellation_token().cancel();
    /// assert!(ctx.is_cancelled());
    /// ```
    pub fn cancellation_token(&self) -> &CancellationToken {
        self.inner.cancel.get_or_init(|| match &self.inner.stop {
            Some(stop) => stop.token().child_token(),
            None => CancellationToken::new(),
        })
    }

    /// Cancels runs under this context: the step in flight is dropped and
    /// recorded as cancelled; later steps do not start.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.cancel();
    /// assert!(ctx.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.cancellation_token().cancel();
    }

    /// Whether the context was cancelled.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(!WorkflowContext::new("W").is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.get().is_some_and(|t| t.is_cancelled())
            || self.inner.stop.as_ref().is_some_and(|stop| stop.stopped())
    }

    // ---- cleanup --------------------------------------------------------

    /// Registers a hook that runs when the workflow ends: on
    /// [`finish`](Self::finish), or when the last handle is dropped,
    /// whichever comes first, after a success or a failure alike. Hooks run
    /// last-registered first, like destructors.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// # use workflow_runtime::WorkflowContext;
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let ctx = WorkflowContext::new("W");
    /// for name in ["first", "second"] {
    ///     let log = log.clone();
    ///     ctx.on_cleanup(move |_| log.lock().unwrap().push(name));
    /// }
    /// drop(ctx);
    /// assert_eq!(*log.lock().unwrap(), ["second", "first"]);
    /// ```
    pub fn on_cleanup(&self, hook: impl FnOnce(&WorkflowSummary) + Send + 'static) {
        lock(&self.inner.cleanup).push(Box::new(hook));
    }

    /// Runs the cleanup hooks now (each at most once).
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// let ctx = WorkflowContext::new("W");
    /// ctx.finish();
    /// ctx.finish(); // hooks already ran; nothing happens
    /// ```
    pub fn finish(&self) {
        self.inner.run_cleanup();
    }
}

impl Inner {
    fn summary(&self) -> WorkflowSummary {
        let steps = lock(&self.steps);
        WorkflowSummary {
            workflow: self.name.shared(),
            execution_id: self.execution_id,
            all_passed: steps.iter().all(|s| s.outcome.is_passed()),
            steps: steps.len(),
            failed: steps.iter().filter(|s| s.outcome.is_failure()).count(),
            total_elapsed: top_level_elapsed(&steps),
        }
    }

    fn run_cleanup(&self) {
        let hooks = std::mem::take(&mut *lock(&self.cleanup));
        if hooks.is_empty() {
            return;
        }
        let summary = self.summary();
        for hook in hooks.into_iter().rev() {
            hook(&summary);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Owned here: the hooks are looked at without a lock, and a run
        // that set none (or whose `finish` ran them) leaves at once.
        let hooks = self
            .cleanup
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if !hooks.is_empty() {
            self.run_cleanup();
        }
    }
}

impl fmt::Debug for WorkflowContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowContext")
            .field("name", &self.inner.name)
            .field("execution_id", &self.inner.execution_id)
            .field("options", &self.inner.options)
            .field("steps", &*lock(&self.inner.steps))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A definition's context keeps its name static and makes the shared
    // copy once: every ask gets the same string, as a given name's does.
    #[test]
    fn a_definitions_context_hands_out_one_shared_name() {
        let ctx = WorkflowContext::static_builder("Orders").build();
        assert_eq!(ctx.name(), "Orders");
        let (first, second) = (ctx.shared_name(), ctx.shared_name());
        assert_eq!(&*first, "Orders");
        assert!(Arc::ptr_eq(&first, &second));
        let given = WorkflowContext::new("Orders");
        assert!(Arc::ptr_eq(&given.shared_name(), &given.shared_name()));
    }

    #[test]
    fn threads_draw_execution_ids_from_their_own_random_streams() {
        let per_thread: Vec<Vec<Uuid>> = (0..4)
            .map(|_| std::thread::spawn(|| (0..25_000).map(|_| execution_id()).collect()))
            .map(|thread| thread.join().unwrap())
            .collect();
        let all: std::collections::HashSet<&Uuid> = per_thread.iter().flatten().collect();
        assert_eq!(all.len(), 100_000);
    }

    #[test]
    fn execution_ids_do_not_repeat_and_are_version_4() {
        let ids: std::collections::HashSet<Uuid> = (0..100_000).map(|_| execution_id()).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
    }
}
