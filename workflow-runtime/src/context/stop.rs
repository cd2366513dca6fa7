//! A runner's stop for every run it makes, which a run's context links
//! to only when it needs a token of its own.
//!
//! Most runs never wait on cancellation (their steps finish without
//! waiting) and are never cancelled. A child token made per run locks the
//! runner's token twice (made, then dropped), and the runner's token is
//! one lock every run on every worker shares; a context holding this stop
//! instead reads one flag, and makes its child token only when a step
//! waits or someone cancels the run.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// The token that stops every run of a runner, with a flag that says so
/// without taking the token's lock.
#[derive(Debug)]
pub(crate) struct RunsStop {
    stopped: AtomicBool,
    token: CancellationToken,
}

impl RunsStop {
    /// A stop cancelling `token`.
    pub(crate) fn new(token: CancellationToken) -> Self {
        RunsStop {
            stopped: AtomicBool::new(token.is_cancelled()),
            token,
        }
    }

    /// Stops every run: the token first, which cancels the runs that
    /// have one of their own, then the flag, which the others read. In
    /// that order, a run that sees the flag and ends cancelled finds the
    /// runner stopping too (a durable run is then left to resume rather
    /// than ended as cancelled). The only way the token is cancelled.
    pub(crate) fn cancel(&self) {
        self.token.cancel();
        self.stopped.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The token, for waiting on it (never for cancelling it).
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

#[cfg(test)]
mod tests {
    use super::RunsStop;
    use crate::WorkflowContext;
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    fn under(stop: &Arc<RunsStop>) -> WorkflowContext {
        let mut builder = WorkflowContext::builder("W");
        builder.under_stop(stop.clone());
        builder.build()
    }

    #[test]
    fn a_stop_reaches_runs_with_and_without_a_token_of_their_own() {
        let stop = Arc::new(RunsStop::new(CancellationToken::new()));
        let (lone, waiting, cancelled) = (under(&stop), under(&stop), under(&stop));
        let token = waiting.cancellation_token().clone();
        cancelled.cancel();
        // One run's cancel is its own.
        assert!(cancelled.is_cancelled());
        assert!(!lone.is_cancelled() && !waiting.is_cancelled());
        assert!(!stop.stopped() && !stop.token().is_cancelled());
        stop.cancel();
        assert!(stop.stopped() && stop.token().is_cancelled());
        // The stop reaches a run that never made a token, one waiting on
        // its token, and one whose token is made after.
        assert!(lone.is_cancelled());
        assert!(token.is_cancelled() && waiting.is_cancelled());
        let late = under(&stop);
        assert!(late.is_cancelled());
        assert!(late.cancellation_token().is_cancelled());
    }

    #[test]
    fn whoever_sees_the_flag_finds_the_token_cancelled() {
        // A durable run that ends cancelled on the flag asks the token
        // whether the runner is stopping: it must say so by then.
        for _ in 0..2000 {
            let stop = Arc::new(RunsStop::new(CancellationToken::new()));
            // Children the stop's cancel has to reach, which keep the
            // token's lock held a while.
            let _waiting: Vec<_> = (0..8).map(|_| stop.token().child_token()).collect();
            let ready = Arc::new(std::sync::Barrier::new(2));
            let reader = std::thread::spawn({
                let (stop, ready) = (stop.clone(), ready.clone());
                move || {
                    ready.wait();
                    while !stop.stopped() {
                        std::hint::spin_loop();
                    }
                    stop.token().is_cancelled()
                }
            });
            ready.wait();
            stop.cancel();
            assert!(reader.join().unwrap(), "the flag was up before the token");
        }
    }
}
