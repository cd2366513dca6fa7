//! A stack of built-in behaviors (retry, timeout, circuit breaker), run
//! inline by the step that owns it: one state machine over the layers,
//! their states kept in the stack the step already holds, so the happy
//! path boxes no future per layer and arms no timer. It keeps
//! the nesting's meaning exactly: each layer wraps the ones after it, as
//! [`Behavior::around`](super::Behavior::around) would.
//!
//! The runner goes down through the layers (a breaker admits the call, a
//! timeout notes its deadline, a retry counts its attempt), runs one
//! attempt of the body, and hands the outcome back up, innermost first: a
//! breaker counts it, a retry may send the run back down after a backoff.
//! While the body waits, the timeouts around it arm their timers; the
//! innermost that fires drops what it wraps and hands up its failure.

use std::task::{Context, Poll};

use tokio::time::Instant;

use super::Attempted;
use super::layer::{Frame, Kind, Layer};
use super::retry::Site;
use crate::context::WorkflowContext;
use crate::error::{StepError, StepFailure};

/// The step's body, as the inline runner drives it: one attempt at a time.
pub trait Attempts {
    /// Whether an attempt is in flight.
    fn in_flight(&self) -> bool;
    /// Starts an attempt; the failure when it cannot (a body that runs once
    /// asked again, a panic).
    fn start(&mut self) -> Result<(), StepFailure>;
    /// Polls the attempt in flight; it is over once ready.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Attempted>;
    /// Starts an attempt and polls it once: what [`start`](Self::start)
    /// then [`poll`](Self::poll) do, which a body may do in one go.
    fn start_and_poll(&mut self, cx: &mut Context<'_>) -> Poll<Attempted> {
        self.start()?;
        self.poll(cx)
    }
    /// Drops the attempt in flight: a timeout outside it fired.
    fn abandon(&mut self);
    /// Whether the body can run again.
    fn can_replay(&self) -> bool;
}

/// Whether the step that started at `started` is over from outside its
/// behaviors: past the options' step timeout, or its run cancelled. A
/// behavior about to start another attempt then lets the step end there
/// instead (it returns `Pending`; the step's own timer or cancellation,
/// which it polls next, ends it).
pub(crate) fn step_over(ctx: &WorkflowContext, started: Instant) -> bool {
    ctx.is_cancelled()
        || ctx
            .options()
            .step_timeout
            .and_then(|limit| started.checked_add(limit))
            .is_some_and(|deadline| Instant::now() >= deadline)
}

/// Where the runner is in the stack between polls.
#[derive(Debug)]
pub(crate) struct Inline {
    /// How many layers, from the outermost, the run is inside.
    depth: usize,
    /// The step's start: the first pass down reads the clock from it
    /// rather than again.
    started: Option<Instant>,
    /// The step's start, for its step timeout.
    begun: Instant,
}

impl Inline {
    /// A run starting at `started`.
    pub(crate) fn new(started: Instant) -> Self {
        Inline {
            depth: 0,
            started: Some(started),
            begun: started,
        }
    }
}

/// Whether `layers` can run inline: built-ins only, and not resuming a
/// journaled retry (whose schedule the behavior itself reads).
pub(crate) fn runs_inline(layers: &[Layer], resumed: bool) -> bool {
    !resumed && layers.iter().all(Layer::is_builtin)
}

/// Drives `layers` around `body` until the outermost hands up the step's
/// outcome.
pub(crate) fn poll_inline<A: Attempts>(
    state: &mut Inline,
    layers: &mut [Layer],
    ctx: &WorkflowContext,
    title: &str,
    call: bool,
    body: &mut A,
    cx: &mut Context<'_>,
) -> Poll<Attempted> {
    /// Attempts sent back at once (no backoff) in one poll, before it
    /// yields to the task's other work, the step timeout and cancellation.
    const AGAIN_PER_POLL: u32 = 32;
    let site = Site { ctx, title, call };
    let n = layers.len();
    let mut again = 0;
    'run: loop {
        // The level an outcome comes from, and the outcome: the layer at
        // that index (or the body, at `n`) is done, the ones outside it
        // are still to hear of it.
        let (mut from, mut outcome) = 'produced: {
            // A retry waiting out its backoff holds the run at its layer.
            if let Some(inner) = state.depth.checked_sub(1)
                && !body.in_flight()
                && let Frame::Retry {
                    backoff: Some(sleep),
                    ..
                } = &mut layers[inner].frame
            {
                if sleep.as_mut().poll(cx).is_pending() {
                    match expire(layers, inner, body, cx) {
                        Some(fired) => break 'produced fired,
                        None => return Poll::Pending,
                    }
                }
                if let Frame::Retry { backoff, .. } = &mut layers[inner].frame {
                    *backoff = None;
                }
            }
            let mut now = state.started.take();
            // Going down again inside layers (a retry's next attempt): the
            // step may be over, or the timeouts around it may have run out
            // meanwhile.
            if state.depth > 0 && !body.in_flight() && step_over(ctx, state.begun) {
                return Poll::Pending;
            }
            if state.depth > 0
                && !body.in_flight()
                && let Some(fired) =
                    overdue(layers, state.depth, *now.get_or_insert_with(Instant::now))
            {
                break 'produced fired;
            }
            while state.depth < n {
                let depth = state.depth;
                if let Err(failure) = enter(&mut layers[depth], &mut now) {
                    break 'produced (depth, Err(failure));
                }
                state.depth += 1;
            }
            let polled = if body.in_flight() {
                body.poll(cx)
            } else {
                body.start_and_poll(cx)
            };
            match polled {
                Poll::Ready(outcome) => (n, outcome),
                Poll::Pending => match expire(layers, n, body, cx) {
                    Some(fired) => fired,
                    None => return Poll::Pending,
                },
            }
        };
        // Hand it up, innermost first.
        while let Some(at) = from.checked_sub(1) {
            match leave(&mut layers[at], outcome, body.can_replay(), &site) {
                Left::Up(up) => {
                    outcome = up;
                    from = at;
                }
                Left::Again => {
                    state.depth = at + 1;
                    again += 1;
                    if again >= AGAIN_PER_POLL {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    continue 'run;
                }
            }
        }
        state.depth = 0;
        return Poll::Ready(outcome);
    }
}

/// Goes into a layer, or has it refuse the call.
fn enter(layer: &mut Layer, now: &mut Option<Instant>) -> Result<(), StepFailure> {
    layer.frame = match &layer.kind {
        Kind::Retry(_) => Frame::Retry {
            attempt: 1,
            backoff: None,
        },
        Kind::Timeout(timeout) => Frame::Timeout {
            deadline: *now.get_or_insert_with(Instant::now) + timeout.limit(),
            sleep: None,
        },
        Kind::Breaker(breaker) => match breaker.admit() {
            Ok(trial) => Frame::Breaker { trial },
            Err(open) => return Err(StepFailure::Error(StepError::new(open))),
        },
        Kind::Other(_) | Kind::Value(_) => unreachable!("only built-in layers run inline"),
    };
    Ok(())
}

enum Left {
    /// The layer is done: hand this to the one outside it.
    Up(Attempted),
    /// The layer runs what it wraps again.
    Again,
}

/// What a layer does with the outcome of what it wraps.
fn leave(layer: &mut Layer, outcome: Attempted, can_replay: bool, site: &Site<'_>) -> Left {
    match (&layer.kind, &mut layer.frame) {
        (Kind::Breaker(breaker), Frame::Breaker { trial }) => {
            breaker.finish(*trial, outcome.is_ok())
        }
        (Kind::Retry(retry), Frame::Retry { attempt, backoff }) => {
            if let Err(failure) = &outcome
                && let Some(wait) = retry.again(*attempt, failure, can_replay, site)
            {
                *attempt += 1;
                if !wait.is_zero() {
                    *backoff = Some(Box::pin(tokio::time::sleep(wait)));
                }
                return Left::Again;
            }
        }
        _ => {}
    }
    layer.frame = Frame::Idle;
    Left::Up(outcome)
}

/// Before the run goes down again inside the first `inside` layers: the
/// innermost of their timeouts whose deadline has passed, which hands up
/// its failure.
fn overdue(layers: &mut [Layer], inside: usize, now: Instant) -> Option<(usize, Attempted)> {
    let (at, limit) = layers[..inside]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(at, layer)| match (&layer.kind, &layer.frame) {
            (Kind::Timeout(timeout), Frame::Timeout { deadline, .. }) if now >= *deadline => {
                Some((at, timeout.limit()))
            }
            _ => None,
        })?;
    for layer in &mut layers[at..] {
        layer.reset();
    }
    Some((at, Err(StepFailure::TimedOut(limit))))
}

/// While the run waits inside the first `waiting_in` layers: arms their
/// timeouts and polls them. The innermost that fired drops what it wraps,
/// and its failure is the outcome it hands up.
fn expire<A: Attempts>(
    layers: &mut [Layer],
    waiting_in: usize,
    body: &mut A,
    cx: &mut Context<'_>,
) -> Option<(usize, Attempted)> {
    let mut fired = None;
    for (at, layer) in layers[..waiting_in].iter_mut().enumerate().rev() {
        if let (Kind::Timeout(timeout), Frame::Timeout { deadline, sleep }) =
            (&layer.kind, &mut layer.frame)
        {
            let deadline = *deadline;
            let sleep = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.as_mut().poll(cx).is_ready() && fired.is_none() {
                fired = Some((at, timeout.limit()));
            }
        }
    }
    let (at, limit) = fired?;
    if body.in_flight() {
        body.abandon();
    }
    for layer in &mut layers[at..] {
        layer.reset();
    }
    Some((at, Err(StepFailure::TimedOut(limit))))
}
