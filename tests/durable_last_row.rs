//! A durable run's last journaled step writes its row with the run's end,
//! when only `then` steps (or a `finally` that takes nothing) come after
//! it: nothing between that
//! step's return and the end is journaled or can be left half done, so
//! one commit holds both. Whatever else the run writes after the step (a
//! failure marked, a compensation done, a drive left for another) finds
//! the row written first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use workflow_runtime::behavior::{Attempted, Behavior, BoxFuture, Next, StepScope};
use workflow_runtime::durable::{DurableError, SqliteOptions, SqliteStore, StepCtx, Store};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;
use workflow_runtime::{StepError, StepFailure};

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

/// How often each step's body ran, and what the refund found journaled.
#[derive(Default)]
struct Ran {
    charge: AtomicU32,
    refund: AtomicU32,
    /// The indices of the steps journaled when the refund ran.
    journaled_at_refund: std::sync::Mutex<Vec<u32>>,
}

/// Three journaled steps, then a synchronous assertion.
struct Charge(Arc<Ran>, Store);

#[workflow(durable)]
impl Charge {
    #[step(given = "an amount")]
    fn amount(&self, cents: u32) -> u32 {
        cents
    }

    #[step(when = "priced")]
    async fn priced(&self, cents: u32) -> u32 {
        tokio::task::yield_now().await;
        cents + 1
    }

    #[step(when = "charged", compensate = refund)]
    async fn charge(&self, cents: u32) -> u32 {
        self.0.charge.fetch_add(1, Ordering::SeqCst);
        cents
    }

    #[step(then = "under the limit")]
    fn under_limit(&self, cents: &u32) -> bool {
        *cents < 1_000
    }

    #[compensation]
    async fn refund(&self, step: &StepCtx, _cents: u32) {
        self.0.refund.fetch_add(1, Ordering::SeqCst);
        let rows = self.1.backend().steps(step.run_id()).await.unwrap();
        *self.0.journaled_at_refund.lock().unwrap() = rows.iter().map(|r| r.index).collect();
    }
}

async fn sqlite(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap()
}

fn runner(sqlite: &SqliteStore, ran: &Arc<Ran>) -> Runner {
    Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(Charge(ran.clone(), Store::new(sqlite.clone())))
        .build()
        .unwrap()
}

/// The indices of the steps run `id` journaled.
async fn journaled(sqlite: &SqliteStore, id: &str) -> Vec<u32> {
    let store = Store::new(sqlite.clone());
    let steps = store.backend().steps(id).await.unwrap();
    steps.iter().map(|row| row.index).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_last_step_commits_with_its_end() {
    let dir = TempDir::new("last-row");
    let sqlite = sqlite(&dir).await;
    let ran = Arc::new(Ran::default());
    let runner = runner(&sqlite, &ran);
    let before = sqlite.commits();
    let run = runner.start(&Charge::ID, "c-1", 41).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 42);
    let after = sqlite.commits();
    // The start, the amount, the price, and the charge with the end: four
    // commits, where a commit for each row and one for the end are five.
    assert_eq!(after.transactions - before.transactions, 4);
    assert_eq!(journaled(&sqlite, "c-1").await, [0, 1, 2]);
    assert_eq!(ran.charge.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_failing_after_the_last_step_finds_its_row_and_undoes_it() {
    let dir = TempDir::new("last-row-failed");
    let sqlite = sqlite(&dir).await;
    let ran = Arc::new(Ran::default());
    let runner = runner(&sqlite, &ran);
    let run = runner.start(&Charge::ID, "c-big", 5_000).await.unwrap();
    match run.result().await {
        Err(DurableError::Failed { step, .. }) => {
            assert_eq!(step.as_deref(), Some("under the limit"));
        }
        other => panic!("the run over the limit ended {other:?}"),
    }
    // The charge's row went in before the failure was marked and the
    // refund ran: a drive cut short there and taken up again would replay
    // the charge and refund it, not charge again.
    let at_refund = ran.journaled_at_refund.lock().unwrap().clone();
    assert_eq!(at_refund[..3], [0, 1, 2], "{at_refund:?}");
    assert_eq!(journaled(&sqlite, "c-big").await[..3], [0, 1, 2]);
    assert_eq!(ran.charge.load(Ordering::SeqCst), 1);
    assert_eq!(ran.refund.load(Ordering::SeqCst), 1);
}

/// Turns the charge's success into a failure, as a behavior around a step
/// may: the step completed, so its row stands and the run is not failed at
/// it (nor its effect left un-undone).
struct RefusesTheCharge;

impl Behavior for RefusesTheCharge {
    fn around<'a>(&'a self, step: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            next.run().await?;
            if step.title() == "charged" {
                return Err(StepFailure::Error(StepError::new(std::fmt::Error)));
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_step_a_behavior_fails_after_it_completed_is_not_marked_failed() {
    let dir = TempDir::new("last-row-refused");
    let sqlite = sqlite(&dir).await;
    let ran = Arc::new(Ran::default());
    let runner = Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(Charge(ran.clone(), Store::new(sqlite.clone())))
        .behavior(RefusesTheCharge)
        .redrive(2, std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let run = runner.start(&Charge::ID, "c-refused", 5).await.unwrap();
    let ended = run.result().await;
    // The charge's row is its result: the journal will not mark the run
    // failed at a step that completed. The run is driven again from its
    // journal, where the charge is done; it replays, and never fails at
    // the charge with its effect left standing and undone by nobody.
    let rows = journaled(&sqlite, "c-refused").await;
    assert!(rows.contains(&2), "the charge's row: {rows:?}");
    assert!(
        !rows
            .iter()
            .any(|&index| index != 2 && index % 1_000_000 == 2),
        "no mark of a failure at the charge: {rows:?} ({ended:?})"
    );
    assert_eq!(ran.charge.load(Ordering::SeqCst), 1, "{ended:?}");
}

/// Fails the first success it sees, as a behavior around a step may.
#[derive(Clone, Default)]
struct RefusesOnce(Arc<std::sync::atomic::AtomicBool>);

impl Behavior for RefusesOnce {
    fn around<'a>(&'a self, _: &'a StepScope, mut next: Next<'a>) -> BoxFuture<'a, Attempted> {
        Box::pin(async move {
            next.run().await?;
            if !self.0.swap(true, Ordering::SeqCst) {
                return Err(StepFailure::Error(StepError::new(std::fmt::Error)));
            }
            Ok(())
        })
    }
}

/// A last step under a retry, with a behavior inside the retry that turns
/// its first success into a failure.
struct RetriedCharge {
    ran: Arc<Ran>,
    refuses: RefusesOnce,
}

#[workflow(durable)]
impl RetriedCharge {
    #[step(given = "an amount")]
    fn amount(&self, cents: u32) -> u32 {
        cents
    }

    #[step(
        when = "charged",
        retry(max_attempts = 2, backoff = "1ms"),
        behaviors(self.refuses.clone())
    )]
    async fn charge(&self, cents: u32) -> u32 {
        self.ran.charge.fetch_add(1, Ordering::SeqCst);
        cents
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_last_step_completed_hands_on_its_waiting_row() {
    let dir = TempDir::new("last-row-retried");
    let sqlite = sqlite(&dir).await;
    let ran = Arc::new(Ran::default());
    let runner = Runner::builder()
        .store(Store::new(sqlite.clone()))
        .durable(RetriedCharge {
            ran: ran.clone(),
            refuses: RefusesOnce::default(),
        })
        .build()
        .unwrap();
    let run = runner.start(&RetriedCharge::ID, "r-1", 9).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 9);
    // The second attempt found the first's value waiting for the end, as
    // it would have found a committed row: the charge ran once.
    assert_eq!(ran.charge.load(Ordering::SeqCst), 1);
    assert_eq!(journaled(&sqlite, "r-1").await, [0, 1]);
}
