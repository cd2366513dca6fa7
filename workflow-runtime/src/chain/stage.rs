//! The chain's stages and their futures: each step is a small state
//! machine nested in the next, so a whole chain is one future with no heap
//! allocation of its own.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::step_fn::{Failed, StepAt, StepFn, StepResult};
use crate::behavior::{
    Attempted, Attempts, Bare, BoxFuture, Builtin, Builtins, Inline, Layers, Pass, Port, StepScope,
    poll_inline, run_stack, runs_inline, step_over,
};
use crate::context::active::{Active, enter};
use crate::context::{RunJournal, StepId, StepOutcome, StepRecord, WorkflowContext};
use crate::error::panic_message;
use crate::error::{StepError, StepFailure, WorkflowError};
use crate::step::{StepInfo, StepKind, Title};

/// A stage's result: the value with the first soft failure so far (one
/// that was recorded but let the chain go on), or the error that stopped it.
pub type Flow<T> = Result<Carry<T>, WorkflowError>;

/// What a stage hands on when the chain goes on.
#[derive(Debug)]
pub struct Carry<T> {
    pub(super) value: T,
    /// The first failure that let the chain go on, if any (boxed: rare,
    /// and it would otherwise weigh on every step's future).
    pub(super) soft: Option<Box<WorkflowError>>,
    /// When the stage ended: the next step's start, so each step costs one
    /// clock read rather than two.
    pub(super) ended: Option<Instant>,
    /// The run's active-step handle, handed on so each step reuses it
    /// rather than cloning the context again.
    pub(super) active: Option<Active>,
}

impl<T> Carry<T> {
    pub(crate) fn value(&self) -> &T {
        &self.value
    }
}

/// A link of the chain: knows how to start its future once the chain is
/// awaited.
pub trait Stage<'c>: super::sealed::Sealed {
    /// The value this stage hands to the next.
    type Output;
    /// The stage's future, including every stage before it.
    type Future: Future<Output = Flow<Self::Output>> + Unwind;
    /// Builds the future.
    fn start(self, ctx: &'c WorkflowContext) -> Self::Future;
}

/// How a chain's finished stage futures undo what completed, once a later
/// step failed for good: each runs its own compensation, if it has one
/// and its step completed, then asks the stage before it. Implemented by
/// the chain's own futures only; by default, a stage with nothing to undo.
pub trait Unwind: super::sealed::Sealed {
    /// Whether this stage or one before it has a compensation.
    fn compensates(&self) -> bool {
        false
    }
    /// Runs the compensations, latest first; ready with the first that
    /// failed for good, if any. `cause` is the failure that started it.
    fn poll_unwind(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        cause: &WorkflowError,
    ) -> Poll<Option<WorkflowError>> {
        let _ = (cx, cause);
        Poll::Ready(None)
    }
}

/// The empty chain before `given`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Start;

impl super::sealed::Sealed for Start {}
impl<P, F, B> super::sealed::Sealed for Step<P, F, B> {}
impl<P, F> super::sealed::Sealed for Finally<P, F> {}

impl<'c> Stage<'c> for Start {
    type Output = ();
    type Future = StartFuture;
    fn start(self, _: &'c WorkflowContext) -> Self::Future {
        StartFuture
    }
}

/// The empty chain's future, ready at once with nothing before the first
/// step. It holds nothing, so the first step's future carries no room
/// for a flow (a `Ready` of one would hold a whole error's).
///
/// ```
/// use workflow_runtime::WorkflowContext;
/// use workflow_runtime::chain::{Stage, Start, StartFuture};
///
/// let ctx = WorkflowContext::new("W");
/// let start: StartFuture = Start.start(&ctx);
/// assert_eq!(std::mem::size_of_val(&start), 0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct StartFuture;

impl Future for StartFuture {
    type Output = Flow<()>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Flow<()>> {
        Poll::Ready(Ok(Carry {
            value: (),
            soft: None,
            ended: None,
            active: None,
        }))
    }
}

impl super::sealed::Sealed for StartFuture {}

/// Nothing before the first step to undo.
impl Unwind for StartFuture {}

/// A step after `prev`, with its own behaviors: the built-in ones it was
/// given last in `B` ([`Builtins`]), any others in its list.
pub struct Step<P, F, B = Bare> {
    pub(crate) prev: P,
    pub(crate) kind: StepKind,
    pub(crate) title: Title,
    pub(crate) body: F,
    pub(crate) layers: Layers,
    pub(crate) own: B,
    pub(crate) place: Place,
}

/// Where a step sits: in a chain of its own, or inside another step's
/// body, as one call wrapped in behaviors ([`Around`](super::Around)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Place {
    /// A step of the chain: the context's behaviors wrap it too.
    #[default]
    Chain,
    /// A call inside the step `parent`'s body: only its own behaviors wrap
    /// it, as the step around it has the context's. Made outside any step
    /// (`parent` is `None`), it is a step of its own, and the context's
    /// wrap it too.
    Inside {
        /// The step whose body made the call.
        parent: Option<StepId>,
    },
}

impl Place {
    fn parent(self) -> Option<StepId> {
        match self {
            Place::Chain => None,
            Place::Inside { parent } => parent,
        }
    }
}

impl<P, F, B: Builtins> Step<P, F, B> {
    /// The same step with its body wrapped by `wrap` (an adapter that
    /// replays it, or lets a test stand in for it).
    #[inline]
    pub(crate) fn map_body<G>(self, wrap: impl FnOnce(F) -> G) -> Step<P, G, B> {
        Step {
            prev: self.prev,
            kind: self.kind,
            title: self.title,
            body: wrap(self.body),
            layers: self.layers,
            own: self.own,
            place: self.place,
        }
    }

    /// The same step with the built-in `layer` inside its others.
    #[inline]
    pub(crate) fn then_builtin<L: Builtin>(self, layer: L) -> Step<P, F, B::Then<L>> {
        Step {
            prev: self.prev,
            kind: self.kind,
            title: self.title,
            body: self.body,
            layers: self.layers,
            own: self.own.__then(layer),
            place: self.place,
        }
    }

    /// The same step with its built-in behaviors moved to the end of its
    /// list, where a behavior added next goes inside them.
    pub(crate) fn listed(mut self) -> Step<P, F> {
        self.own.__push_layers(&mut self.layers);
        Step {
            prev: self.prev,
            kind: self.kind,
            title: self.title,
            body: self.body,
            layers: self.layers,
            own: Bare,
            place: self.place,
        }
    }
}

impl<'c, P, F, B> Stage<'c> for Step<P, F, B>
where
    P: Stage<'c>,
    F: StepFn<P::Output>,
    B: Builtins,
{
    type Output = F::Output;
    type Future = StepFuture<'c, P::Future, F, P::Output, B>;
    #[inline]
    fn start(self, ctx: &'c WorkflowContext) -> Self::Future {
        StepFuture {
            ctx,
            kind: self.kind,
            title: self.title,
            unstarted: Some((self.body, self.layers)),
            own: self.own,
            place: self.place,
            soft: None,
            prev: self.prev.start(ctx),
            phase: Phase::Prev,
            running: None,
        }
    }
}

/// Stages whose last step's kind can change.
pub trait KindOfLast: super::sealed::Sealed {
    /// Sets it.
    fn set_kind(&mut self, kind: StepKind);
}

impl<P, F, B> KindOfLast for Step<P, F, B> {
    fn set_kind(&mut self, kind: StepKind) {
        self.kind = kind;
    }
}

pin_project! {
    #[project = BodyProj]
    enum Body<F, In, B>
    where
        F: StepFn<In>,
        B: Builtins,
    {
        // No behaviors anywhere: the body and its input, until the first
        // poll calls it (under the same active step as that poll)...
        Start {
            body: Option<F>,
            input: Option<In>,
        },
        // ...then its own future, polled directly.
        Plain {
            #[pin] fut: F::Future,
        },
        // A list of built-in behaviors only (the context's, or the step's
        // own joined to them): run inline, their states in the list; boxed,
        // so a step that has none does not carry their room.
        Inline {
            run: Pin<Box<InlineRun<F, In>>>,
        },
        // Behaviors run as one boxed future that asks this step for each
        // attempt; boxed, as that path allocates anyway.
        Behaved {
            behaved: Pin<Box<Behaved<F, In>>>,
        },
        // The step's own built-in behaviors alone: run by their types,
        // their states in the step's. A step without any has no room
        // here (`Bare`'s slot holds nothing).
        Own {
            #[pin]
            run: B::Slot<OwnRun<F, In>>,
        },
    }
}

pin_project! {
    /// A step under built-in behaviors only: the layers, where the run is
    /// in them, and the body with its attempts.
    #[project = InlineRunProj]
    struct InlineRun<F, In>
    where
        F: StepFn<In>,
    {
        layers: LayerList,
        lane: Inline,
        #[pin]
        attempting: Attempting<F, In>,
    }
}

pin_project! {
    /// A step under its own built-in behaviors alone: the body with its
    /// attempts (the behaviors' states are in the step's future).
    #[project = OwnRunProj]
    // Public (and hidden) only so that `__step`'s bound can name it.
    #[doc(hidden)]
    pub struct OwnRun<F, In>
    where
        F: StepFn<In>,
    {
        // The first way down through the layers is still to come, and
        // the first attempt, which runs ahead of them, still to run. (The
        // step's start, which both take, is the running step's.)
        first: bool,
        #[pin]
        attempting: Attempting<F, In>,
    }
}

pin_project! {
    /// The body under built-in behaviors, with its attempt in flight.
    #[project = AttemptingProj]
    struct Attempting<F, In>
    where
        F: StepFn<In>,
    {
        body: Option<F>,
        input: Option<In>,
        #[pin]
        fut: Option<F::Future>,
        tally: Tally,
        // What the body returned last: the step's value once the layers
        // let it through.
        last: Option<StepResult<F::Output>>,
        replayable: bool,
        // A call inside a step's body, whose advice on running again
        // differs from a step's.
        call: bool,
        // What the first attempt, run before the layers were entered,
        // left them to take up.
        left: Left,
    }
}

/// What a step's first attempt, run before its own built-ins were entered
/// ([`first_attempt`]), left for them when it did not pass at once.
enum Left {
    Nothing,
    /// Its future is in flight, and was polled in this poll already.
    Polled,
    /// It ended, as this says.
    Ended(Attempted),
}

/// An inline run's layers. Dropped out of line: a step's body is dropped
/// on every step's path, and the loop over the layers, inlined there,
/// made every plain step save and restore five registers for it.
struct LayerList(Layers);

impl Drop for LayerList {
    #[inline(never)]
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// A behaved step's attempts: how many, and how long the finished ones
/// took. The one whose end is the step's end is timed by the step's own
/// last clock read.
#[derive(Debug)]
struct Tally {
    attempts: u32,
    /// When the attempt in flight, or the last one if it passed, started.
    /// Before the first, the step's start, which is the first attempt's
    /// too: kept here rather than beside it, as a behaved step's state is
    /// moved whole with its chain.
    started: Option<Instant>,
    /// The attempts that failed or were dropped, in order.
    elapsed: Vec<Duration>,
}

impl Tally {
    #[inline]
    fn starting(begun: Instant) -> Self {
        Tally {
            attempts: 0,
            started: Some(begun),
            elapsed: Vec::new(),
        }
    }

    /// When the next attempt starts: the step's own start for the first.
    #[inline]
    fn next_start(&self) -> Instant {
        match self.started {
            Some(begun) if self.attempts == 0 => begun,
            _ => Instant::now(),
        }
    }

    /// An attempt started at `at`.
    #[inline]
    fn start(&mut self, at: Instant) {
        self.started = Some(at);
        self.attempts += 1;
    }

    /// When the last attempt started, once the step ends: none before
    /// the first.
    fn last_started(&mut self) -> Option<Instant> {
        let started = self.started.take();
        if self.attempts == 0 { None } else { started }
    }

    /// The attempt in flight ended without passing.
    fn failed(&mut self) {
        if self.attempts == 0 {
            return;
        }
        if let Some(started) = self.started.take() {
            self.elapsed.push(started.elapsed());
        }
    }
}

/// The step's body as the inline runner drives it, for one poll.
struct InlineBody<'p, 'a, F: StepFn<In>, In> {
    left: &'p mut Left,
    body: &'p mut Option<F>,
    input: &'p mut Option<In>,
    fut: Pin<&'p mut Option<F::Future>>,
    tally: &'p mut Tally,
    last: &'p mut Option<StepResult<F::Output>>,
    active: &'p mut Option<Active>,
    at: StepAt<'a>,
    call: bool,
    replayable: bool,
}

impl<F: StepFn<In>, In> Attempts for InlineBody<'_, '_, F, In> {
    fn in_flight(&self) -> bool {
        self.fut.is_some() || matches!(self.left, Left::Ended(_))
    }

    fn start(&mut self) -> Result<(), StepFailure> {
        // A value is the latest attempt's own, never an earlier one's.
        *self.last = None;
        let at = self.tally.next_start();
        match start_attempt(
            self.body,
            self.input,
            self.active,
            self.at,
            (self.call, self.replayable),
            at,
        ) {
            Ok(fut) => {
                self.fut.set(Some(fut));
                self.tally.start(at);
                Ok(())
            }
            // A sync body panics while its future is made: it ran, and
            // the attempt counts.
            Err(StartFailed {
                failure,
                ran: Some(_),
            }) => {
                self.tally.start(at);
                self.tally.failed();
                Err(failure)
            }
            Err(StartFailed { failure, ran: None }) => Err(failure),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Attempted> {
        match std::mem::replace(self.left, Left::Nothing) {
            Left::Nothing => {}
            // Polled once in this poll already: no second poll for it.
            Left::Polled => return Poll::Pending,
            Left::Ended(attempted) => {
                if attempted.is_err() {
                    self.tally.failed();
                }
                return Poll::Ready(attempted);
            }
        }
        let Some(fut) = self.fut.as_mut().as_pin_mut() else {
            unreachable!("an attempt in flight has its future");
        };
        let attempted = ready!(poll_attempt(fut, self.active, self.last, cx));
        self.fut.set(None);
        if attempted.is_err() {
            self.tally.failed();
        }
        Poll::Ready(attempted)
    }

    fn start_and_poll(&mut self, cx: &mut Context<'_>) -> Poll<Attempted> {
        *self.last = None;
        let at = self.tally.next_start();
        let (body, input, step, keep) =
            (&mut *self.body, &mut *self.input, self.at, self.replayable);
        let (mut fut, last) = (self.fut.as_mut(), &mut *self.last);
        // One hand-over of the active step for the body's call and its
        // first poll, as for a step with no behaviors.
        let polled = catch_unwind(AssertUnwindSafe(|| {
            enter(self.active, || {
                let started = begin(body, input, step, keep)?;
                fut.set(Some(started));
                let Some(started) = fut.as_mut().as_pin_mut() else {
                    unreachable!("the attempt's future was just set");
                };
                Some(started.poll(cx).map(|result| attempted(result, last)))
            })
        }));
        let attempted = match polled {
            Ok(None) => {
                let inside = self.call;
                return Poll::Ready(Err(StepFailure::Error(StepError::new(RunsOnce { inside }))));
            }
            Ok(Some(Poll::Pending)) => {
                self.tally.start(at);
                return Poll::Pending;
            }
            Ok(Some(Poll::Ready(attempted))) => attempted,
            // The body panicked, as it was called (a sync body) or polled:
            // it ran, and the attempt counts.
            Err(payload) => Err(StepFailure::Panic(panic_message(&*payload).into())),
        };
        self.tally.start(at);
        self.fut.set(None);
        if attempted.is_err() {
            self.tally.failed();
        }
        Poll::Ready(attempted)
    }

    fn abandon(&mut self) {
        self.fut.set(None);
        self.tally.failed();
    }

    fn can_replay(&self) -> bool {
        self.replayable
    }
}

pin_project! {
    #[project = BehavedProj]
    struct Behaved<F, In>
    where
        F: StepFn<In>,
    {
        scope: Arc<StepScope>,
        // Owns the stack and a handle on `scope`; lends them to the layers.
        stack: BoxFuture<'static, Attempted>,
        // How the body's value goes to the value behaviors in the stack,
        // when it has any.
        port: Option<Port<F::Output>>,
        body: Option<F>,
        input: Option<In>,
        // The attempt in flight: its number and when it started.
        attempt: Option<(u32, Instant)>,
        #[pin]
        fut: Option<F::Future>,
        last: Option<StepResult<F::Output>>,
        // A call inside a step's body (`Around`), whose advice on running
        // again differs from a step's.
        inside: bool,
        // The step's start, for its step timeout.
        begun: Instant,
    }
}

pin_project! {
    struct Running<F, In, B>
    where
        F: StepFn<In>,
        B: Builtins,
    {
        #[pin]
        body: Body<F, In, B>,
        // Lent to the thread while the body runs, so `#[step]` functions
        // it calls record as this step's children.
        active: Option<Active>,
        id: StepId,
        started: Instant,
        // Made only once the step returns `Pending`: sync and
        // immediately-ready steps never touch the timer or the token, and
        // boxed so they do not weigh on every step's future.
        waits: Option<Pin<Box<Waits>>>,
    }
}

pin_project! {
    /// What a step that returned `Pending` waits on besides its body, in
    /// one box: its step timeout, if it has one within reach (a limit of
    /// `Duration::MAX` never ends it), and the run's cancellation.
    pub(super) struct Waits {
        limit: Option<Duration>,
        #[pin]
        deadline: Option<Sleep>,
        #[pin]
        cancelled: WaitForCancellationFutureOwned,
    }
}

impl Waits {
    pub(super) fn new(ctx: &WorkflowContext, started: Instant) -> Self {
        let limit = ctx.options().step_timeout;
        let deadline = limit.and_then(|limit| started.checked_add(limit));
        Waits {
            limit,
            deadline: deadline.map(tokio::time::sleep_until),
            cancelled: ctx.cancellation_token().clone().cancelled_owned(),
        }
    }

    /// How the step ends, if not by its body: its step timeout passed,
    /// or the run was cancelled.
    pub(super) fn poll_end<O>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Ended<'static, O>> {
        let waits = self.project();
        if let (Some(deadline), Some(limit)) = (waits.deadline.as_pin_mut(), *waits.limit)
            && deadline.poll(cx).is_ready()
        {
            return Poll::Ready(Ended::TimedOut(limit));
        }
        ready!(waits.cancelled.poll(cx));
        Poll::Ready(Ended::Cancelled)
    }
}

/// Where a step future is. The previous stages' future stays in place
/// once done rather than being replaced: replacing it would copy the whole
/// nested chain at every step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prev,
    Running,
    Done,
}

pin_project! {
    /// The future of one step and every step before it.
    pub struct StepFuture<'c, P, F, In, B = Bare>
    where
        F: StepFn<In>,
        B: Builtins,
    {
        ctx: &'c WorkflowContext,
        kind: StepKind,
        title: Title,
        // The body and the behaviors given to the step, until it starts.
        // Kept together so that, once taken, dropping the step checks
        // one tag rather than calling out to drop an empty list.
        unstarted: Option<(F, Layers)>,
        // The step's own built-in behaviors, with their states while they
        // run it.
        own: B,
        place: Place,
        soft: Option<Box<WorkflowError>>,
        #[pin]
        prev: P,
        phase: Phase,
        #[pin]
        running: Option<Running<F, In, B>>,
    }

    impl<'c, P, F, In, B> PinnedDrop for StepFuture<'c, P, F, In, B>
    where
        F: StepFn<In>,
        B: Builtins,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped mid-step: the run was cancelled from outside (a
            // `select!`, a host's shutdown timeout). Say so in the record.
            if *this.phase == Phase::Running
                && let Some(running) = this.running.as_pin_mut()
            {
                let mut record = StepRecord::new(
                    *this.kind,
                    this.title.clone(),
                    running.started.elapsed(),
                    StepOutcome::Cancelled,
                );
                record.id = running.id;
                record.parent = this.place.parent();
                this.ctx.record(record);
            }
        }
    }
}

impl<'c, P, F, In, B> Future for StepFuture<'c, P, F, In, B>
where
    P: Future<Output = Flow<In>>,
    F: StepFn<In>,
    B: Builtins,
{
    type Output = Flow<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.phase == Phase::Prev {
            let mut this = self.as_mut().project();
            let ctx = *this.ctx;
            let Carry {
                value,
                soft,
                ended,
                active,
            } = match ready!(this.prev.poll(cx)) {
                Ok(carry) => carry,
                Err(error) => {
                    *this.phase = Phase::Done;
                    self.skip();
                    return Poll::Ready(Err(error));
                }
            };
            *this.soft = soft;
            let started = ended.unwrap_or_else(Instant::now);
            if ctx.is_cancelled() {
                return Poll::Ready(self.finish(started, Ended::Cancelled));
            }
            let (body, own) = this
                .unstarted
                .take()
                .expect("StepFuture polled after completion");
            // A resumed durable run hands on what the journal holds: the
            // body and its behaviors do not run again.
            if let Some(result) = body.recorded() {
                *this.phase = Phase::Done;
                let id = ctx.next_step_id();
                return Poll::Ready(self.end(started, id, active, Ended::Replayed(result)));
            }
            // Resumed after the run failed for good here: the step fails
            // again, as journaled, rather than running again.
            if let Some(why) = ctx
                .run_journal()
                .and_then(|journal| journal.failed_before(*this.kind, this.title))
            {
                *this.phase = Phase::Done;
                let id = ctx.next_step_id();
                let failed = Ended::Replayed(Err(Failed::error(why)));
                return Poll::Ready(self.end(started, id, active, failed));
            }
            // Value behaviors registered for the type wrap the steps that
            // make such a value, not an assertion passing one on, a
            // compensation, nor a call inside a step's body.
            let (place, kind) = (*this.place, *this.kind);
            let values =
                || place == Place::Chain && kind != StepKind::Compensate && !body.passes_value_on();
            let mut stack = match place {
                // A call made outside any step is a step of its own.
                Place::Chain | Place::Inside { parent: None } => {
                    ctx.stack_for::<F::Output>(own, values)
                }
                Place::Inside { parent: Some(_) } => own,
            };
            let resumed = body.resumed();
            // The step's own built-in behaviors run by their types when
            // nothing else wraps the step. Otherwise they join the stack,
            // innermost as they are, and a resumed retry reads its
            // schedule from the journal there.
            let own_alone = !B::EMPTY && stack.is_empty() && resumed.is_none();
            if !own_alone {
                this.own.__push_layers(&mut stack);
            }
            // Resumed after a journaled failed attempt that nothing around
            // the step would have run again: that failure was final, though
            // the process stopped before the run said so.
            if let Some(earlier) = &resumed
                && !stack.iter().any(crate::behavior::Layer::runs_again)
            {
                *this.phase = Phase::Done;
                let id = ctx.next_step_id();
                let failed = Ended::Replayed(Err(Failed::error(earlier.step_error())));
                return Poll::Ready(self.end(started, id, active, failed));
            }
            // A value behavior in the stack takes the value through the
            // handoff, which only a body that hands it on can do.
            let port = if !stack.is_empty() && stack.iter().any(crate::behavior::Layer::sees_value)
            {
                match body.value_port() {
                    Some(port) => Some(port),
                    None => {
                        *this.phase = Phase::Done;
                        let id = ctx.next_step_id();
                        let why = crate::behavior::ValueNotHanded {
                            ty: std::any::type_name::<F::Output>(),
                        };
                        return Poll::Ready(self.end(
                            started,
                            id,
                            active,
                            Ended::Result(Err(Failed::error(why))),
                        ));
                    }
                }
            } else {
                None
            };
            let id = ctx.next_step_id();
            let mut active = match active {
                Some(mut active) => {
                    active.step = Some(id);
                    Some(active)
                }
                None => Some(Active::new(ctx.clone(), Some(id))),
            };
            // The input is kept for another attempt only where one may come.
            let replayable = (own_alone || !stack.is_empty())
                && body.can_replay()
                && (body.replays_always()
                    || this.own.__runs_again()
                    || stack.iter().any(crate::behavior::Layer::runs_again));
            let call = matches!(this.place, Place::Inside { .. });
            let body = if own_alone {
                crate::behavior::discard_layers(stack);
                let attempting = Attempting::new(body, value, started, replayable, call);
                match B::__slot(OwnRun {
                    first: true,
                    attempting,
                }) {
                    Ok(run) => Body::Own { run },
                    // No room: no behaviors of its own after all.
                    Err(run) => Body::Start {
                        body: run.attempting.body,
                        input: run.attempting.input,
                    },
                }
            } else if stack.is_empty() {
                crate::behavior::discard_layers(stack);
                if F::at_call() {
                    // A sync body does its work as it is called: called
                    // here, under the step made active for it, its result
                    // ends the step with no state kept for it. (No
                    // built-ins of its own to reset, as `finish_with`
                    // does: a step with any has them in its stack or runs
                    // them by its type.)
                    debug_assert!(
                        B::EMPTY,
                        "a step's own built-ins never reach the path without behaviors"
                    );
                    let at = StepAt {
                        ctx,
                        title: this.title,
                    };
                    let called = catch_unwind(AssertUnwindSafe(|| {
                        enter(&mut active, || body.call_now(value, at))
                    }));
                    let ended = match called {
                        Ok(Ok(result)) => Ended::Result(result),
                        // Not done after all: its future, polled below.
                        Ok(Err(fut)) => {
                            this.running.set(Some(Running {
                                body: Body::Plain { fut },
                                active,
                                id,
                                started,
                                waits: None,
                            }));
                            *this.phase = Phase::Running;
                            return self.poll(cx);
                        }
                        Err(payload) => {
                            *this.phase = Phase::Done;
                            let panicked = Ended::Panic(&*payload);
                            return Poll::Ready(self.end(started, id, active, panicked));
                        }
                    };
                    *this.phase = Phase::Done;
                    return Poll::Ready(self.end(started, id, active, ended));
                }
                Body::Start {
                    body: Some(body),
                    input: Some(value),
                }
            } else if runs_inline(&stack, resumed.is_some()) {
                Body::Inline {
                    run: Box::pin(InlineRun {
                        layers: LayerList(stack),
                        lane: Inline::new(started),
                        attempting: Attempting::new(body, value, started, replayable, call),
                    }),
                }
            } else {
                let mut scope = StepScope::new(
                    ctx.clone(),
                    *this.kind,
                    this.title.clone(),
                    replayable,
                    resumed,
                    stack,
                );
                if let Place::Inside { .. } = this.place {
                    scope = scope.for_call();
                }
                let scope = Arc::new(scope);
                Body::Behaved {
                    behaved: Box::pin(Behaved {
                        stack: run_stack(scope.clone()),
                        scope,
                        port,
                        body: Some(body),
                        input: Some(value),
                        attempt: None,
                        fut: None,
                        last: None,
                        inside: matches!(this.place, Place::Inside { .. }),
                        begun: started,
                    }),
                }
            };
            this.running.set(Some(Running {
                body,
                active,
                id,
                started,
                waits: None,
            }));
            *this.phase = Phase::Running;
        }
        if self.phase == Phase::Done {
            panic!("StepFuture polled after completion");
        }

        let this = self.as_mut().project();
        let ctx = *this.ctx;
        let running = this
            .running
            .as_pin_mut()
            .expect("a running step has its state")
            .project();
        let started = *running.started;
        let at = StepAt {
            ctx,
            title: this.title,
        };
        let ended = match poll_body(at, started, this.own, running.active, running.body, cx) {
            Poll::Ready(ended) => ended,
            Poll::Pending => {
                let waits = running
                    .waits
                    .get_or_insert_with(|| Box::pin(Waits::new(ctx, started)));
                let ended = ready!(waits.as_mut().poll_end(cx));
                return Poll::Ready(self.finish(started, ended));
            }
        };
        // The payload of a panic must outlive the state it came from.
        match ended {
            Polled::Panic(payload) => Poll::Ready(self.finish(started, Ended::Panic(&*payload))),
            Polled::Ended(ended) => Poll::Ready(self.finish(started, ended)),
        }
    }
}

impl<'c, P, F, In, B> super::sealed::Sealed for StepFuture<'c, P, F, In, B>
where
    F: StepFn<In>,
    B: Builtins,
{
}

impl<'c, P, F, In, B> Unwind for StepFuture<'c, P, F, In, B>
where
    P: Unwind,
    F: StepFn<In>,
    B: Builtins,
{
    fn compensates(&self) -> bool {
        self.prev.compensates()
    }
    fn poll_unwind(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        cause: &WorkflowError,
    ) -> Poll<Option<WorkflowError>> {
        self.project().prev.poll_unwind(cx, cause)
    }
}

impl<F: StepFn<In>, In> Attempting<F, In> {
    fn new(body: F, input: In, started: Instant, replayable: bool, call: bool) -> Self {
        Attempting {
            body: Some(body),
            input: Some(input),
            fut: None,
            tally: Tally::starting(started),
            last: None,
            replayable,
            call,
            left: Left::Nothing,
        }
    }
}

/// A step's first attempt under its own built-ins alone, run before the
/// layers are entered. Most attempts pass at their first poll, and for
/// those the layers have nothing to do but let a breaker count the call:
/// a retry has nothing to run again, a timeout nothing to time. So the
/// breakers admit the attempt, the body is called and polled as a plain
/// step's is, and a value that comes back ends the step there.
///
/// Otherwise (`None`) the layers run as on any first poll, and find the
/// attempt started: its future in flight, polled already, or how it
/// ended, in `left`; each breaker's admission in its state. Their first
/// way down sets the rest (a retry's first attempt, a timeout's deadline
/// from the step's start) as it would have before the attempt. A breaker
/// that refuses lets the layers run the step from the start.
fn first_attempt<F: StepFn<In>, In, B: Builtins>(
    at: StepAt<'_>,
    own: &mut B,
    active: &mut Option<Active>,
    attempting: Pin<&mut Attempting<F, In>>,
    cx: &mut Context<'_>,
) -> Option<Polled<F::Output>> {
    // As under the layers, whose run is caught whole: a panic in a
    // breaker's bookkeeping (tracing, a metrics recorder) or in the drop
    // of the attempt's future ends the step. The body's own, as it is
    // called or polled, is caught inside, as the attempt's failure.
    let passed = catch_unwind(AssertUnwindSafe(|| {
        if !own.__admit() {
            return None;
        }
        let value = first_poll(at, active, attempting, cx)?;
        own.__passed();
        Some(value)
    }));
    match passed {
        Ok(Some(value)) => Some(
            Ended::Behaved {
                result: Ok(value),
                attempts: 1,
                attempt_elapsed: Vec::new(),
                last_started: None,
            }
            .into(),
        ),
        Ok(None) => None,
        Err(payload) => Some(Polled::Panic(payload)),
    }
}

/// The first attempt's call and first poll, for [`first_attempt`]: its
/// value if it passed, or `None` with what the layers take up in `left`.
#[inline]
fn first_poll<F: StepFn<In>, In>(
    at: StepAt<'_>,
    active: &mut Option<Active>,
    attempting: Pin<&mut Attempting<F, In>>,
    cx: &mut Context<'_>,
) -> Option<F::Output> {
    let AttemptingProj {
        body,
        input,
        mut fut,
        tally,
        last,
        replayable,
        call,
        left,
    } = attempting.project();
    let at_start = tally.next_start();
    let keep = *replayable;
    let polled = catch_unwind(AssertUnwindSafe(|| {
        enter(active, || {
            let started = begin(body, input, at, keep)?;
            fut.set(Some(started));
            let Some(started) = fut.as_mut().as_pin_mut() else {
                unreachable!("the attempt's future was just set");
            };
            Some(started.poll(cx))
        })
    }));
    let attempted = match polled {
        Ok(Some(Poll::Ready(Ok(value)))) => {
            fut.set(None);
            return Some(value);
        }
        Ok(Some(Poll::Pending)) => {
            tally.start(at_start);
            *left = Left::Polled;
            return None;
        }
        Ok(Some(Poll::Ready(Err(failed)))) => {
            tally.start(at_start);
            fut.set(None);
            attempted(Err(failed), last)
        }
        // Never on a first attempt, which has its body and input; said
        // as `start_and_poll` says it.
        Ok(None) => Err(StepFailure::Error(StepError::new(RunsOnce {
            inside: *call,
        }))),
        // It panicked as it was called or polled: it ran, and counts.
        Err(payload) => {
            tally.start(at_start);
            fut.set(None);
            Err(StepFailure::Panic(panic_message(&*payload).into()))
        }
    };
    *left = Left::Ended(attempted);
    None
}

/// Runs `drive` (the behaviors' runner) over the body's attempts, and
/// once it hands up the outcome, the step's result with its attempts.
fn poll_attempting<F: StepFn<In>, In>(
    at: StepAt<'_>,
    active: &mut Option<Active>,
    attempting: Pin<&mut Attempting<F, In>>,
    cx: &mut Context<'_>,
    drive: impl FnOnce(&mut InlineBody<'_, '_, F, In>, bool, &mut Context<'_>) -> Poll<Attempted>,
) -> Poll<Polled<F::Output>> {
    let AttemptingProj {
        body,
        input,
        fut,
        tally,
        last,
        replayable,
        call,
        left,
    } = attempting.project();
    let call = *call;
    let mut attempts = InlineBody {
        left,
        body,
        input,
        fut,
        tally,
        last,
        active,
        at,
        call,
        replayable: *replayable,
    };
    // The body's start and polls catch their own panics; this catches a
    // behavior's (a retry's filter, a metrics recorder).
    let polled = catch_unwind(AssertUnwindSafe(|| drive(&mut attempts, call, cx)));
    // Polled once already means in this poll only: a later one polls the
    // attempt again, whether or not the layers went down to it this time.
    if let Left::Polled = attempts.left {
        *attempts.left = Left::Nothing;
    }
    let attempted = match polled {
        Ok(Poll::Pending) => return Poll::Pending,
        Ok(Poll::Ready(attempted)) => attempted,
        Err(payload) => return Poll::Ready(Polled::Panic(payload)),
    };
    let result = settle(attempted, attempts.last.take());
    let tally = attempts.tally;
    Poll::Ready(
        Ended::Behaved {
            result,
            attempts: tally.attempts,
            attempt_elapsed: std::mem::take(&mut tally.elapsed),
            last_started: tally.last_started(),
        }
        .into(),
    )
}

enum Polled<O> {
    Ended(Ended<'static, O>),
    Panic(Box<dyn std::any::Any + Send>),
}

impl<O> From<Ended<'static, O>> for Polled<O> {
    fn from(ended: Ended<'static, O>) -> Self {
        Polled::Ended(ended)
    }
}

/// Polls the body, plain or under its behaviors, catching panics.
fn poll_body<F: StepFn<In>, In, B: Builtins>(
    at: StepAt<'_>,
    begun: Instant,
    own: &mut B,
    active: &mut Option<Active>,
    mut body: Pin<&mut Body<F, In, B>>,
    cx: &mut Context<'_>,
) -> Poll<Polled<F::Output>> {
    match body.as_mut().project() {
        BodyProj::Behaved { behaved } => {
            return poll_behaved(at, active, behaved.as_mut(), cx);
        }
        BodyProj::Inline { run } => {
            let InlineRunProj {
                layers,
                lane,
                attempting,
            } = run.as_mut().project();
            return poll_attempting(at, active, attempting, cx, |attempts, call, cx| {
                poll_inline(lane, &mut layers.0, at.ctx, at.title, call, attempts, cx)
            });
        }
        BodyProj::Own { run } => {
            let OwnRunProj {
                first,
                mut attempting,
            } = B::__pin(run).project();
            if *first && let Some(polled) = first_attempt(at, own, active, attempting.as_mut(), cx)
            {
                return Poll::Ready(polled);
            }
            let first = std::mem::take(first).then_some(begun);
            return poll_attempting(at, active, attempting, cx, |attempts, call, cx| {
                let mut pass = Pass::new(at.ctx, at.title, call, begun, first);
                own.__poll(&mut pass, attempts, cx)
            });
        }
        _ => {}
    }
    // One active-step swap covers the call and its first poll.
    let polled = catch_unwind(AssertUnwindSafe(|| {
        enter(active, || {
            if let BodyProj::Start { body: f, input } = body.as_mut().project() {
                let (f, input) = (f.take(), input.take());
                let (Some(f), Some(input)) = (f, input) else {
                    unreachable!("a step's body starts once");
                };
                body.set(Body::Plain {
                    fut: f.call_at(input, at),
                });
            }
            match body.as_mut().project() {
                BodyProj::Plain { fut } => fut.poll(cx),
                _ => unreachable!("a started plain body has its future"),
            }
        })
    }));
    match polled {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(result)) => Poll::Ready(Ended::Result(result).into()),
        Err(payload) => Poll::Ready(Polled::Panic(payload)),
    }
}

/// Polls the behaviors; whenever they wait on an attempt, runs the body
/// for it and hands its outcome back, until the behaviors finish.
fn poll_behaved<F: StepFn<In>, In>(
    at: StepAt<'_>,
    active: &mut Option<Active>,
    behaved: Pin<&mut Behaved<F, In>>,
    cx: &mut Context<'_>,
) -> Poll<Polled<F::Output>> {
    /// Attempts that end without waiting, in one poll, before it yields.
    const ATTEMPTS_PER_POLL: u32 = 32;
    let mut this = behaved.project();
    let mut ended_at_once = 0;
    loop {
        match catch_unwind(AssertUnwindSafe(|| this.stack.as_mut().poll(cx))) {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(attempted)) => {
                end_attempt(this.fut.as_mut(), this.attempt, this.scope);
                // The value the outermost value behavior handed on.
                let handed = match (*this.port, &attempted) {
                    (Some(port), Ok(())) => this
                        .scope
                        .handoff()
                        .take_value()
                        .and_then(|value| port.restore(value)),
                    _ => None,
                };
                let last = match handed {
                    Some(value) => Some(Ok(value)),
                    None => this.last.take(),
                };
                let result = settle(attempted, last);
                return Poll::Ready(
                    Ended::Behaved {
                        result,
                        attempts: this.scope.attempts(),
                        attempt_elapsed: this.scope.take_attempt_times(),
                        last_started: None,
                    }
                    .into(),
                );
            }
            Err(payload) => return Poll::Ready(Polled::Panic(payload)),
        }
        let handoff = this.scope.handoff();
        let wanted = handoff.wanted();
        if this
            .attempt
            .is_some_and(|(number, _)| Some(number) != wanted)
        {
            // Nobody waits on the attempt in flight any more (a timeout, a
            // `select!`): drop its body; it ended when it was abandoned.
            end_attempt(this.fut.as_mut(), this.attempt, this.scope);
        }
        let Some(wanted) = wanted else {
            handoff.wake_if_untaken();
            return Poll::Pending;
        };
        // The body runs in the span the behaviors asked from.
        let span = handoff.span();
        let _in_span = span.as_ref().map(tracing::Span::enter);
        if this.attempt.is_none() {
            // A behavior that keeps asking for attempts that end at once (a
            // refusal, a sync body failing) would spin here: after a budget,
            // let the task's other work, the step timeout and cancellation
            // run.
            ended_at_once += 1;
            if ended_at_once > ATTEMPTS_PER_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Another attempt, but the step is over from outside the
            // behaviors: its timer or cancellation ends it next.
            if this.scope.attempts() > 0 && step_over(at.ctx, *this.begun) {
                return Poll::Pending;
            }
            // A value is the latest attempt's own, never an earlier one's.
            *this.last = None;
            let keep = this.scope.replayable();
            let now = Instant::now();
            match start_attempt(this.body, this.input, active, at, (*this.inside, keep), now) {
                Ok(fut) => {
                    this.fut.set(Some(fut));
                    *this.attempt = Some((wanted, now));
                    this.scope.attempt_started();
                }
                Err(StartFailed { failure, ran }) => {
                    // A sync body that panicked ran: its attempt counts.
                    if let Some(elapsed) = ran {
                        this.scope.attempt_started();
                        this.scope.attempt_ended(elapsed);
                    }
                    handoff.complete(wanted, Err(failure));
                    continue;
                }
            }
        }
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            unreachable!("an attempt in flight has its future");
        };
        let Poll::Ready(attempted) = poll_attempt(fut, active, this.last, cx) else {
            handoff.wake_if_untaken();
            return Poll::Pending;
        };
        end_attempt(this.fut.as_mut(), this.attempt, this.scope);
        if let Some(port) = *this.port
            && attempted.is_ok()
            && let Some(Ok(value)) = this.last.take()
        {
            handoff.put_value(port.erase(value));
        }
        handoff.complete(wanted, attempted);
    }
}

/// Drops the attempt in flight, if any, and records how long it ran.
fn end_attempt<Fut>(
    mut fut: Pin<&mut Option<Fut>>,
    attempt: &mut Option<(u32, Instant)>,
    scope: &StepScope,
) {
    fut.set(None);
    if let Some((_, started)) = attempt.take() {
        scope.attempt_ended(started.elapsed());
    }
}

/// An attempt that failed as it was started.
struct StartFailed {
    failure: StepFailure,
    /// How long the body ran, if it ran (a sync body that panicked), so
    /// the attempt counts; `None` when it never ran (one that runs once,
    /// asked again).
    ran: Option<std::time::Duration>,
}

/// Starts an attempt under the active step. A panic, or a body that runs
/// once asked again, is the attempt's failure. `inside` says whether it is
/// a call inside a step's body, `keep` whether the input is kept for
/// another attempt; `started` is the attempt's start, read by the caller,
/// which times the attempt from it too.
fn start_attempt<F: StepFn<In>, In>(
    body: &mut Option<F>,
    input: &mut Option<In>,
    active: &mut Option<Active>,
    at: StepAt<'_>,
    (inside, keep): (bool, bool),
    started: Instant,
) -> Result<F::Future, StartFailed> {
    match catch_unwind(AssertUnwindSafe(|| {
        enter(active, || begin(body, input, at, keep))
    })) {
        Ok(Some(fut)) => Ok(fut),
        Ok(None) => Err(StartFailed {
            failure: StepFailure::Error(StepError::new(RunsOnce { inside })),
            ran: None,
        }),
        Err(payload) => Err(StartFailed {
            failure: StepFailure::Panic(panic_message(&*payload).into()),
            ran: Some(started.elapsed()),
        }),
    }
}

/// Polls the attempt in flight under the active step; once it is over,
/// keeps what the body returned in `last` and says how the attempt ended.
fn poll_attempt<Fut, O>(
    fut: Pin<&mut Fut>,
    active: &mut Option<Active>,
    last: &mut Option<StepResult<O>>,
    cx: &mut Context<'_>,
) -> Poll<Attempted>
where
    Fut: Future<Output = StepResult<O>>,
{
    Poll::Ready(
        match catch_unwind(AssertUnwindSafe(|| enter(active, || fut.poll(cx)))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => attempted(result, last),
            Err(payload) => Err(StepFailure::Panic(panic_message(&*payload).into())),
        },
    )
}

/// How an attempt that returned `result` ended, keeping `result` in `last`.
#[inline]
fn attempted<O>(result: StepResult<O>, last: &mut Option<StepResult<O>>) -> Attempted {
    let attempted = match &result {
        Ok(_) => Ok(()),
        Err(failed) => Err(failed.failure.clone()),
    };
    *last = Some(result);
    attempted
}

/// Starts an attempt: on a copy of the input when it is kept for another
/// attempt, otherwise by consuming body and input, which only the first
/// can do.
fn begin<F: StepFn<In>, In>(
    body: &mut Option<F>,
    input: &mut Option<In>,
    at: StepAt<'_>,
    keep: bool,
) -> Option<F::Future> {
    if keep
        && let (Some(b), Some(i)) = (body.as_ref(), input.as_ref())
        && let Some(fut) = b.replay_at(i, at)
    {
        return Some(fut);
    }
    Some(body.take()?.call_at(input.take()?, at))
}

/// The step's result from what the behaviors reported and what the body
/// last returned: the behaviors decide whether it failed.
#[inline]
fn settle<O>(attempted: Attempted, last: Option<StepResult<O>>) -> StepResult<O> {
    match (attempted, last) {
        (Ok(()), Some(Ok(value))) => Ok(value),
        (Ok(()), _) => Err(Failed {
            failure: StepFailure::Error(StepError::new(NoValue)),
            value: None,
        }),
        (Err(failure), Some(Err(Failed { value, .. }))) => Err(Failed { failure, value }),
        (Err(failure), _) => Err(Failed {
            failure,
            value: None,
        }),
    }
}

#[derive(Debug)]
struct NoValue;

impl std::fmt::Display for NoValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a behavior reported success without running the step")
    }
}

impl std::error::Error for NoValue {}

#[derive(Debug)]
struct RunsOnce {
    inside: bool,
}

impl std::fmt::Display for RunsOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.inside {
            "a behavior ran the call again, but a future runs once: `run_again` \
             (`call_again`) takes a closure that starts the call for each attempt"
        } else {
            "a behavior ran the step again, but its body runs once: only a step declared \
             with `retry` (`#[step(retry(..))]`, `.retry(..)`) or made `.replayable()` \
             clones its input for another attempt"
        })
    }
}

impl std::error::Error for RunsOnce {}

pub(super) enum Ended<'p, O> {
    Result(StepResult<O>),
    Replayed(StepResult<O>),
    Behaved {
        result: StepResult<O>,
        attempts: u32,
        attempt_elapsed: Vec<Duration>,
        /// The last attempt's start, when its end is the step's.
        last_started: Option<Instant>,
    },
    Panic(&'p (dyn std::any::Any + Send)),
    TimedOut(Duration),
    Cancelled,
}

impl<'c, P, F, In, B> StepFuture<'c, P, F, In, B>
where
    F: StepFn<In>,
    B: Builtins,
{
    fn skip(&self) {
        if self.ctx.options().skip_remaining_on_failure {
            let mut record = StepRecord::new(
                self.kind,
                self.title.clone(),
                Duration::ZERO,
                StepOutcome::Skipped,
            );
            record.parent = self.place.parent();
            self.ctx.record(record);
        }
    }

    /// Drops the step's own future, then records how it ended.
    #[inline(always)]
    fn finish(
        self: Pin<&mut Self>,
        started: Instant,
        ended: Ended<'_, F::Output>,
    ) -> Flow<F::Output> {
        let id = self
            .running
            .as_ref()
            .map_or(StepId::UNSET, |running| running.id);
        self.finish_with(started, id, ended)
    }

    /// [`finish`](Self::finish), for a step whose id is known.
    #[inline]
    fn finish_with(
        mut self: Pin<&mut Self>,
        started: Instant,
        id: StepId,
        ended: Ended<'_, F::Output>,
    ) -> Flow<F::Output> {
        let mut this = self.as_mut().project();
        *this.phase = Phase::Done;
        let active = this
            .running
            .as_mut()
            .as_pin_mut()
            .and_then(|running| running.project().active.take());
        this.running.set(None);
        // Ended from outside its own behaviors (the step timeout, the
        // run's cancellation, a behavior that panicked): they leave their
        // states now, not when the whole chain goes, so a breaker's trial
        // is freed for other callers and no timer wakes the run for them.
        // (Ended by them, they are idle already.)
        if !matches!(ended, Ended::Behaved { .. }) {
            this.own.__reset();
        }
        self.end(started, id, active, ended)
    }

    /// Records how the step ended and decides whether the chain goes on.
    #[inline]
    fn end(
        self: Pin<&mut Self>,
        started: Instant,
        id: StepId,
        active: Option<Active>,
        ended: Ended<'_, F::Output>,
    ) -> Flow<F::Output> {
        let this = self.project();
        let at = StepEnd {
            ctx: this.ctx,
            kind: *this.kind,
            title: this.title,
            place: *this.place,
        };
        match ended {
            // As most steps end, at their first attempt: recorded passed,
            // the value handed on.
            Ended::Result(Ok(value))
            | Ended::Behaved {
                result: Ok(value),
                attempts: 1,
                ..
            } => at.passed(this.soft.take(), started, id, active, value),
            ended => at.end(this.soft, started, id, active, ended),
        }
    }
}

/// A step as it ends, for [`StepEnd::end`]: what its record and its
/// error name. Shared by a chain's step and a straight-line one.
pub(super) struct StepEnd<'a> {
    pub(super) ctx: &'a WorkflowContext,
    pub(super) kind: StepKind,
    pub(super) title: &'a Title,
    pub(super) place: Place,
}

impl StepEnd<'_> {
    fn info(&self) -> StepInfo {
        StepInfo {
            workflow: self.ctx.shared_name(),
            kind: self.kind,
            title: self.title.clone(),
        }
    }

    /// This step's record, as it ended. Inlined where it is pushed, so
    /// it is written into the context's list in place: built first and
    /// filled in after, it was copied three times on its way there.
    #[inline(always)]
    fn record_of(
        &self,
        elapsed: Duration,
        outcome: StepOutcome,
        attempts: u32,
        attempt_elapsed: Vec<Duration>,
        id: StepId,
    ) -> StepRecord {
        StepRecord {
            kind: self.kind,
            title: self.title.clone(),
            elapsed,
            outcome,
            attempts,
            attempt_elapsed,
            input: None,
            output: None,
            id,
            parent: self.place.parent(),
        }
    }

    /// [`end`](Self::end) for a step whose body passed: recorded so,
    /// and its value handed on.
    #[inline]
    pub(super) fn passed<O>(
        self,
        soft: Option<Box<WorkflowError>>,
        started: Instant,
        id: StepId,
        active: Option<Active>,
        value: O,
    ) -> Flow<O> {
        // A step that ran has its id (only one cancelled before it
        // started has none); given one, as `end` gives it, all the same.
        let id = if id == StepId::UNSET {
            self.ctx.next_step_id()
        } else {
            id
        };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(started);
        self.ctx
            .push_record_with(|| self.record_of(elapsed, StepOutcome::Passed, 1, Vec::new(), id));
        Ok(Carry {
            value,
            soft,
            ended: Some(now),
            active,
        })
    }

    /// Records how the step ended and decides whether the chain goes on.
    /// A run's error is always its first failure, soft or not: `soft`
    /// holds the first that let the chain go on, if any.
    #[inline]
    pub(super) fn end<O>(
        self,
        soft: &mut Option<Box<WorkflowError>>,
        started: Instant,
        id: StepId,
        active: Option<Active>,
        ended: Ended<'_, O>,
    ) -> Flow<O> {
        let options = self.ctx.options();
        // A step cancelled before it started has no id yet.
        let id = if id == StepId::UNSET {
            self.ctx.next_step_id()
        } else {
            id
        };
        let now = Instant::now();
        let mut elapsed = now.saturating_duration_since(started);
        let mut attempts = 1;
        let mut attempt_times = Vec::new();
        let mut replayed = false;
        let result = match ended {
            Ended::Result(result) => result,
            Ended::Replayed(result) => {
                replayed = true;
                result
            }
            Ended::Behaved {
                result,
                attempts: made,
                mut attempt_elapsed,
                last_started,
            } => {
                attempts = made;
                // One attempt took the step's own time: listed only when
                // there were more.
                if made > 1 {
                    if let Some(started) = last_started {
                        attempt_elapsed.push(now.saturating_duration_since(started));
                    }
                    attempt_times = attempt_elapsed;
                }
                result
            }
            Ended::Panic(payload) => Err(Failed {
                failure: StepFailure::Panic(panic_message(payload).into()),
                value: None,
            }),
            Ended::TimedOut(after) => {
                elapsed = after;
                Err(Failed {
                    failure: StepFailure::TimedOut(after),
                    value: None,
                })
            }
            Ended::Cancelled => {
                let cancelled = StepOutcome::Cancelled;
                self.ctx.push_record(self.record_of(
                    elapsed,
                    cancelled,
                    attempts,
                    attempt_times,
                    id,
                ));
                let error = WorkflowError::Cancelled { step: self.info() };
                return Err(soft.take().map_or(error, |first| *first));
            }
        };
        let outcome = match &result {
            Ok(_) if replayed => StepOutcome::Replayed,
            Ok(_) => StepOutcome::Passed,
            Err(failed) => StepOutcome::Failed(failed.failure.clone()),
        };
        self.ctx
            .push_record_with(|| self.record_of(elapsed, outcome, attempts, attempt_times, id));
        let Failed { failure, value } = match result {
            Ok(value) => {
                return Ok(Carry {
                    value,
                    soft: soft.take(),
                    ended: Some(now),
                    active,
                });
            }
            Err(failed) => failed,
        };
        let goes_on = match failure {
            StepFailure::Assertion => {
                !options.halt_on_failed_assertion || options.continue_on_error
            }
            _ => options.continue_on_error,
        };
        let error = WorkflowError::from_failure(self.info(), failure);
        let first = soft.take().map_or(error, |first| *first);
        match value.filter(|_| goes_on) {
            Some(value) => Ok(Carry {
                value,
                soft: Some(Box::new(first)),
                ended: Some(now),
                active,
            }),
            None => Err(first),
        }
    }
}

/// A `finally` after `prev`: runs whether or not `prev` succeeded.
#[derive(Debug)]
pub struct Finally<P, F> {
    pub(crate) prev: P,
    pub(crate) title: Title,
    pub(crate) body: F,
}

impl<'c, P, F> Stage<'c> for Finally<P, F>
where
    P: Stage<'c>,
    F: FnOnce(Result<&P::Output, &WorkflowError>),
{
    type Output = P::Output;
    type Future = FinallyFuture<'c, P::Future, F>;
    fn start(self, ctx: &'c WorkflowContext) -> Self::Future {
        FinallyFuture {
            ctx,
            title: self.title,
            body: Some(self.body),
            prev: self.prev.start(ctx),
        }
    }
}

pin_project! {
    /// The future of a `finally` and every step before it.
    pub struct FinallyFuture<'c, P, F> {
        ctx: &'c WorkflowContext,
        title: Title,
        body: Option<F>,
        #[pin]
        prev: P,
    }
}

impl<'c, P, F, T> Future for FinallyFuture<'c, P, F>
where
    P: Future<Output = Flow<T>>,
    F: FnOnce(Result<&T, &WorkflowError>),
{
    type Output = Flow<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let flow = ready!(this.prev.poll(cx));
        let body = this
            .body
            .take()
            .expect("FinallyFuture polled after completion");
        let started = flow
            .as_ref()
            .ok()
            .and_then(|carry| carry.ended)
            .unwrap_or_else(Instant::now);
        let seen = flow.as_ref().map(|carry| &carry.value);
        let panicked = catch_unwind(AssertUnwindSafe(|| body(seen))).err();
        let outcome = match &panicked {
            None => StepOutcome::Passed,
            Some(payload) => {
                StepOutcome::Failed(StepFailure::Panic(panic_message(&**payload).into()))
            }
        };
        let now = Instant::now();
        this.ctx.record(StepRecord::new(
            StepKind::Finally,
            this.title.clone(),
            now.saturating_duration_since(started),
            outcome.clone(),
        ));
        let Some(payload) = panicked else {
            return Poll::Ready(flow.map(|carry| Carry {
                ended: Some(now),
                ..carry
            }));
        };
        // An earlier failure stays the run's error; a panic here only
        // becomes it when everything before passed.
        Poll::Ready(match flow {
            Err(error) => Err(error),
            Ok(Carry {
                value,
                soft,
                active,
                ..
            }) => {
                let error = WorkflowError::Panicked {
                    step: StepInfo {
                        workflow: this.ctx.shared_name(),
                        kind: StepKind::Finally,
                        title: this.title.clone(),
                    },
                    message: panic_message(&*payload).into(),
                };
                if this.ctx.options().continue_on_error {
                    Ok(Carry {
                        value,
                        soft: Some(soft.unwrap_or_else(|| Box::new(error))),
                        ended: Some(now),
                        active,
                    })
                } else {
                    Err(soft.map_or(error, |first| *first))
                }
            }
        })
    }
}

impl<'c, P, F> super::sealed::Sealed for FinallyFuture<'c, P, F> {}

impl<'c, P: Unwind, F> Unwind for FinallyFuture<'c, P, F> {
    fn compensates(&self) -> bool {
        self.prev.compensates()
    }
    fn poll_unwind(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        cause: &WorkflowError,
    ) -> Poll<Option<WorkflowError>> {
        self.project().prev.poll_unwind(cx, cause)
    }
}

pin_project! {
    /// The future of a whole chain: what awaiting a
    /// [`Workflow`](super::Workflow) runs.
    pub struct ChainFuture<F> {
        #[pin]
        inner: F,
        // The failure being compensated for, while the compensations run.
        // Boxed, as is `marking`: only a failing run has either, and every
        // run's future would otherwise carry their room.
        cause: Option<Box<WorkflowError>>,
        // A durable run's journal: a failure to record a step is not
        // undone, as the run is driven again.
        journal: Option<Arc<dyn RunJournal>>,
        // The run's end, while the journal records a failure for good.
        marking: Option<Box<Marking>>,
    }
}

/// A durable run's failure for good, being journaled: then compensated,
/// or handed back.
struct Marking {
    write: crate::behavior::BoxFuture<'static, Option<StepError>>,
    then: AfterMark,
}

enum AfterMark {
    /// Undo the steps before the failure (kept in `cause`).
    Undo,
    /// Hand this back: the undoing is over.
    End(WorkflowError),
}

impl<F> ChainFuture<F> {
    pub(crate) fn new(inner: F, ctx: &WorkflowContext) -> Self {
        ChainFuture {
            inner,
            cause: None,
            journal: ctx.run_journal().cloned(),
            marking: None,
        }
    }
}

impl<F, T> Future for ChainFuture<F>
where
    F: Future<Output = Flow<T>> + Unwind,
{
    type Output = Result<T, WorkflowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(marking) = this.marking.as_mut() {
                let fault = ready!(marking.write.as_mut().poll(cx));
                let then = this.marking.take().map(|marking| marking.then);
                let end = match then {
                    Some(AfterMark::End(end)) => end,
                    _ => {
                        let cause = this.cause.take().expect("a failure is marked for a cause");
                        if fault.is_none() && this.inner.compensates() {
                            *this.cause = Some(cause);
                            continue;
                        }
                        *cause
                    }
                };
                // The journal could not say the run failed: it is driven
                // again, and fails (or not) from its journal then.
                return Poll::Ready(Err(match fault {
                    Some(fault) => WorkflowError::Failed {
                        step: end.step().clone(),
                        error: fault,
                    },
                    None => end,
                }));
            }
            if let Some(cause) = this.cause.as_deref() {
                let failure = ready!(this.inner.as_mut().poll_unwind(cx, cause));
                let cause = *this.cause.take().expect("undoing for a cause");
                let end = match failure {
                    None => cause,
                    // Cancelled while undoing: left for whoever cancelled
                    // it, as below (a durable run resumes its compensations).
                    Some(cancelled @ WorkflowError::Cancelled { .. }) => cancelled,
                    Some(failure) => WorkflowError::CompensationFailed {
                        cause: Box::new(cause),
                        failure: Box::new(failure),
                    },
                };
                if let (Some(journal), WorkflowError::CompensationFailed { .. }) =
                    (&*this.journal, &end)
                {
                    *this.marking = Some(Box::new(Marking {
                        write: journal.clone().failed_for_good(&end),
                        then: AfterMark::End(end),
                    }));
                    continue;
                }
                return Poll::Ready(Err(end));
            }
            let error = match ready!(this.inner.as_mut().poll(cx)) {
                Ok(Carry {
                    value, soft: None, ..
                }) => return Poll::Ready(Ok(value)),
                Ok(Carry {
                    soft: Some(first), ..
                }) => *first,
                Err(first) => first,
            };
            // A cancelled run is not undone: whoever cancelled it decides
            // (a host that stops leaves a durable run to be resumed). Nor is
            // one whose journal could not record a step (rather than the
            // step failing): it is driven again.
            let journal_failed = matches!(
                (&*this.journal, &error),
                (Some(journal), WorkflowError::Failed { error, .. }) if journal.fault(error).is_some()
            );
            if matches!(error, WorkflowError::Cancelled { .. }) || journal_failed {
                return Poll::Ready(Err(error));
            }
            match &*this.journal {
                // Journaled before anything is undone: a crash from here on
                // does not run the failed step again.
                Some(journal) => {
                    *this.marking = Some(Box::new(Marking {
                        write: journal.clone().failed_for_good(&error),
                        then: AfterMark::Undo,
                    }));
                    *this.cause = Some(Box::new(error));
                }
                None if this.inner.compensates() => *this.cause = Some(Box::new(error)),
                None => return Poll::Ready(Err(error)),
            }
        }
    }
}
