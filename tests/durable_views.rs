//! Looking over many durable runs: pages of runs by filter that stay put
//! while runs are added, and a host's retention policy purging finished
//! runs (virtual time) while running ones stay.

use std::time::{Duration, SystemTime};

use workflow_runtime::durable::{
    Retention, RunFilter, RunStatus, SqliteOptions, SqliteStore, StepCtx, Store,
};
use workflow_runtime::host::{Clock, HostError, Runner, WorkflowHost};
use workflow_runtime::prelude::*;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

const DAY: Duration = Duration::from_secs(86_400);

struct Quick;

#[workflow(durable)]
impl Quick {
    #[step(given = "a number")]
    fn number(&self, n: u32) -> u32 {
        n
    }
}

/// Waits a month before it ends.
struct Slow;

#[workflow(durable)]
impl Slow {
    #[step(given = "a long wait")]
    async fn wait(&self, step: &StepCtx, n: u32) -> u32 {
        step.sleep(30 * DAY).await;
        n
    }
}

#[tokio::test(start_paused = true)]
async fn a_host_purges_finished_runs_past_their_age_and_never_a_running_one() {
    let store = Store::memory();
    let host = WorkflowHost::builder()
        .clock(Clock::following_tokio(SystemTime::now()))
        .store(store.clone())
        .durable(Quick)
        .durable(Slow)
        .retention(
            Retention::new()
                .keep_for(7 * DAY)
                .every(Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let runner = host.runner();
    let stop = host.shutdown_token();
    let hosting = tokio::spawn(host.run());
    for n in 0..3 {
        let id = format!("quick-{n}");
        runner
            .start(&Quick::ID, &id, n)
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
    }
    let _slow = runner.start(&Slow::ID, "slow", 9).await.unwrap();
    let all = || async { store.runs(&RunFilter::new()).await.unwrap().runs.len() };

    tokio::time::sleep(6 * DAY).await;
    assert_eq!(all().await, 4, "nothing is a week old yet");
    tokio::time::sleep(2 * DAY).await;
    let left = store.runs(&RunFilter::new()).await.unwrap().runs;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        (left[0].id.as_str(), left[0].status),
        ("slow", RunStatus::Running)
    );
    // The purge never held the month-long run up.
    assert!(store.status("slow").await.unwrap().waiting.is_some());
    stop.cancel();
    hosting.await.unwrap();
}

#[test]
fn retention_without_a_store_is_refused_when_the_host_is_built() {
    let built = WorkflowHost::builder()
        .retention(Retention::new().keep_at_most(10))
        .build();
    assert_eq!(built.err(), Some(HostError::RetentionNeedsStore));
}

#[tokio::test]
async fn pages_of_runs_stay_put_while_runs_are_added() {
    let dir = TempDir::new("paging");
    let store = Store::new(
        SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
            .await
            .unwrap(),
    );
    let runner = Runner::builder()
        .store(store.clone())
        .durable(Quick)
        .build()
        .unwrap();
    for n in 0..25 {
        let id = format!("run-{n:02}");
        runner
            .start(&Quick::ID, &id, n)
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
    }
    let filter = RunFilter::new()
        .workflow("Quick")
        .status(RunStatus::Completed)
        .limit(10);
    let mut seen = Vec::new();
    let mut page = runner.runs(&filter).await.unwrap();
    loop {
        seen.extend(page.runs.iter().map(|r| r.id.clone()));
        // Runs started between pages land before the first page, never
        // inside a later one.
        let id = format!("late-{}", seen.len());
        runner
            .start(&Quick::ID, &id, 0)
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
        let Some(next) = page.next else { break };
        page = runner.runs(&filter.clone().after(next)).await.unwrap();
    }
    let mut expected: Vec<String> = (0..25).map(|n| format!("run-{n:02}")).collect();
    expected.reverse();
    assert_eq!(seen, expected);
}
