//! How long a batch waits for the transaction it lent a step: no longer
//! than the store's acquire timeout, measured in real time by a thread of
//! the store's own.
//!
//! A write waits for the step that holds the batch's transaction, and the
//! step may be waiting for that write: its body waits on a task that
//! journals (one it spawned, a run it started). As a transaction of the
//! step's own once did, the batch gives up after the acquire timeout, and
//! every write in it fails rather than wait for good. Not on a tokio
//! timer: a test on a paused clock would fire it at once, as the body
//! waits on SQLite's own thread and the runtime looks idle.

use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The store's watch over its lends: one at a time, as the writer lends
/// its batch's transaction to one step at a time.
#[derive(Default)]
pub(super) struct LendWatch {
    watching: OnceLock<mpsc::Sender<Watch>>,
}

enum Watch {
    /// A lend began: fire if it is not back within the limit.
    Start {
        limit: Duration,
        fire: oneshot::Sender<()>,
    },
    /// The lend is back.
    Done,
}

impl LendWatch {
    /// Watches a lend: `fired` resolves once `limit` has passed, unless
    /// the [`Watching`] guard was dropped first.
    pub(super) fn start(&self, limit: Duration) -> Watching<'_> {
        let (fire, fired) = oneshot::channel();
        let watching = self.watching.get_or_init(|| {
            let (send, receive) = mpsc::channel();
            // A thread that cannot start leaves lends unwatched: the
            // batch then waits for the step, as long as its body runs.
            let _ = std::thread::Builder::new()
                .name("workflow-sqlite-lends".to_owned())
                .spawn(move || watch(&receive));
            send
        });
        let _ = watching.send(Watch::Start { limit, fire });
        Watching { watch: self, fired }
    }
}

/// A lend being watched; dropped when it is back.
pub(super) struct Watching<'w> {
    watch: &'w LendWatch,
    /// Resolves when the lend outlived its limit.
    pub(super) fired: oneshot::Receiver<()>,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        if let Some(watching) = self.watch.watching.get() {
            let _ = watching.send(Watch::Done);
        }
    }
}

/// The watching thread: ends when the store is gone (its sender dropped).
fn watch(receive: &mpsc::Receiver<Watch>) {
    let mut armed: Option<(Instant, oneshot::Sender<()>)> = None;
    loop {
        let next = match &armed {
            None => receive.recv().ok(),
            Some((deadline, _)) => {
                match receive.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(next) => Some(next),
                    Err(RecvTimeoutError::Timeout) => {
                        if let Some((_, fire)) = armed.take() {
                            let _ = fire.send(());
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        match next {
            Some(Watch::Start { limit, fire }) => armed = Some((Instant::now() + limit, fire)),
            Some(Watch::Done) => armed = None,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lend_outliving_its_limit_fires_in_real_time_not_on_a_paused_clock() {
        let watch = LendWatch::default();
        let mut watching = watch.start(Duration::from_millis(300));
        // The paused clock jumps a minute ahead: the watch does not fire.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(watching.fired.try_recv().is_err());
        let started = std::time::Instant::now();
        (&mut watching.fired).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_lend_back_in_time_does_not_fire_and_the_next_is_watched_afresh() {
        let watch = LendWatch::default();
        drop(watch.start(Duration::from_millis(100)));
        let mut next = watch.start(Duration::from_secs(3_600));
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            next.fired.try_recv().is_err(),
            "the earlier lend's limit fired the next"
        );
    }
}
