//! One behavior in a step's stack, with its state in the step's run.
//!
//! The built-in behaviors (retry, timeout, circuit breaker) are kept by
//! value and known by the engine, which runs a stack made only of them
//! inline ([`inline`](super::inline)): no boxed future per layer, and no
//! timer unless the step has to wait. Any other behavior runs through its
//! [`Behavior::around`] as always.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;

use tokio::time::{Instant, Sleep};

use super::{
    Attempted, Behavior, BoxFuture, CircuitBreaker, ForType, Next, Retry, StepScope, Timeout,
};

/// A step's behaviors, outermost first, each with its state in the run.
pub(crate) type Layers = Vec<Layer>;

/// Drops a list of behaviors, calling out to do it only when it has
/// room for any: most steps have none, and the call to drop an empty
/// list was a cost of every step's start.
#[inline(always)]
pub(crate) fn discard(layers: Layers) {
    if layers.capacity() == 0 {
        // Nothing to drop and nothing to free (`Layer` is not zero-sized,
        // so no room means no entries).
        debug_assert!(layers.is_empty());
        std::mem::forget(layers);
    } else {
        drop(layers);
    }
}

/// One behavior of a step's stack.
pub struct Layer {
    pub(super) kind: Kind,
    /// Where the inline runner is in this layer; idle outside a run.
    pub(super) frame: Frame,
}

pub(super) enum Kind {
    Retry(Retry),
    Timeout(Timeout),
    Breaker(Arc<CircuitBreaker>),
    /// Any other behavior: the stack runs through [`Behavior::around`].
    Other(Arc<dyn Behavior>),
    /// A value behavior, run as any other, around which the step hands its
    /// value through the stack's handoff.
    Value(Arc<dyn Behavior>),
}

/// A built-in layer's state while the inline runner is inside it.
#[derive(Default)]
pub(super) enum Frame {
    #[default]
    Idle,
    Retry {
        /// The attempt under way, from 1.
        attempt: u32,
        /// The wait before the next attempt, while it lasts.
        backoff: Option<Pin<Box<Sleep>>>,
    },
    Timeout {
        deadline: Instant,
        /// Armed only once the step has to wait.
        sleep: Option<Pin<Box<Sleep>>>,
    },
    Breaker {
        /// Whether this call is the half-open circuit's trial.
        trial: bool,
    },
}

impl Layer {
    /// A shared behavior, recognised when it is a built-in one.
    pub(crate) fn shared(behavior: Arc<dyn Behavior>) -> Self {
        let any: &dyn Any = &*behavior;
        let kind = if let Some(retry) = any.downcast_ref::<Retry>() {
            Kind::Retry(retry.clone())
        } else if let Some(timeout) = any.downcast_ref::<Timeout>() {
            Kind::Timeout(*timeout)
        } else {
            let any: Arc<dyn Any + Send + Sync> = behavior.clone();
            match any.downcast::<CircuitBreaker>() {
                Ok(breaker) => Kind::Breaker(breaker),
                Err(_) => Kind::Other(behavior),
            }
        };
        Layer {
            kind,
            frame: Frame::Idle,
        }
    }

    /// A behavior for one type's steps.
    pub(crate) fn for_type(behavior: &ForType) -> Self {
        match behavior.value_type() {
            Some(_) => Layer {
                kind: Kind::Value(behavior.behavior.clone()),
                frame: Frame::Idle,
            },
            None => Layer::shared(behavior.behavior.clone()),
        }
    }

    /// Whether the step hands its value to this layer.
    pub(crate) fn sees_value(&self) -> bool {
        matches!(self.kind, Kind::Value(_))
    }

    /// A retry, kept by value.
    pub(crate) fn retry(retry: Retry) -> Self {
        Layer {
            kind: Kind::Retry(retry),
            frame: Frame::Idle,
        }
    }

    /// A circuit breaker, shared by every step that names it.
    pub(crate) fn breaker(breaker: Arc<CircuitBreaker>) -> Self {
        Layer {
            kind: Kind::Breaker(breaker),
            frame: Frame::Idle,
        }
    }

    /// A timeout, kept by value.
    pub(crate) fn timeout(timeout: Timeout) -> Self {
        Layer {
            kind: Kind::Timeout(timeout),
            frame: Frame::Idle,
        }
    }

    /// Whether this layer may run the step again after a failed attempt.
    pub(crate) fn runs_again(&self) -> bool {
        match &self.kind {
            Kind::Retry(_) => true,
            Kind::Other(behavior) | Kind::Value(behavior) => behavior.runs_again(),
            Kind::Timeout(_) | Kind::Breaker(_) => false,
        }
    }

    /// Whether the inline runner knows this layer.
    pub(crate) fn is_builtin(&self) -> bool {
        !matches!(self.kind, Kind::Other(_) | Kind::Value(_))
    }

    /// The same behavior, idle: for a stack copied from a context.
    pub(crate) fn idle_copy(&self) -> Self {
        Layer {
            kind: match &self.kind {
                Kind::Retry(retry) => Kind::Retry(retry.clone()),
                Kind::Timeout(timeout) => Kind::Timeout(*timeout),
                Kind::Breaker(breaker) => Kind::Breaker(breaker.clone()),
                Kind::Other(other) => Kind::Other(other.clone()),
                Kind::Value(value) => Kind::Value(value.clone()),
            },
            frame: Frame::Idle,
        }
    }

    /// Runs the layer around the rest of the stack, as a [`Behavior`].
    pub(super) fn around<'a>(
        &'a self,
        step: &'a StepScope,
        next: Next<'a>,
    ) -> BoxFuture<'a, Attempted> {
        match &self.kind {
            Kind::Retry(retry) => retry.around(step, next),
            Kind::Timeout(timeout) => timeout.around(step, next),
            Kind::Breaker(breaker) => breaker.around(step, next),
            Kind::Other(other) | Kind::Value(other) => other.around(step, next),
        }
    }

    /// Leaves the layer's frame: a breaker's unfinished call counts for
    /// nothing and frees its trial; a wait in progress is dropped.
    pub(super) fn reset(&mut self) {
        if let (Frame::Breaker { trial }, Kind::Breaker(breaker)) = (&self.frame, &self.kind) {
            breaker.abandon(*trial);
        }
        self.frame = Frame::Idle;
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        // Dropped mid-run (the step cancelled or timed out from outside).
        self.reset();
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Retry(retry) => retry.fmt(f),
            Kind::Timeout(timeout) => timeout.fmt(f),
            Kind::Breaker(breaker) => breaker.fmt(f),
            Kind::Other(_) => f.write_str("Behavior"),
            Kind::Value(_) => f.write_str("ValueBehavior"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::behavior::{BreakerConfig, Logging};

    #[test]
    fn shared_built_ins_are_known_and_others_are_not() {
        let retry: Arc<dyn Behavior> = Arc::new(Retry::max_attempts(2));
        let timeout: Arc<dyn Behavior> = Arc::new(Timeout::new(Duration::from_secs(1)));
        let breaker: Arc<dyn Behavior> = CircuitBreaker::new("b", BreakerConfig::default());
        let logging: Arc<dyn Behavior> = Arc::new(Logging);
        assert!(matches!(Layer::shared(retry).kind, Kind::Retry(_)));
        assert!(matches!(Layer::shared(timeout).kind, Kind::Timeout(_)));
        assert!(matches!(Layer::shared(breaker).kind, Kind::Breaker(_)));
        assert!(!Layer::shared(logging).is_builtin());
    }
}
