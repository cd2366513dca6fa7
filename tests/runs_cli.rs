//! The `runs` example's commands against a journal a service wrote: list
//! by status with pages, show, cancel, redrive, send and purge, over a
//! SQLite file and a PostgreSQL database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use workflow_runtime::durable::{RunStatus, StepCtx, Store};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;
use workflow_suite::runs_cli;

#[allow(dead_code)] // each test binary uses part of it
mod common;
use common::TempDir;

/// Fails while the flag is down; waits an hour for a go-ahead otherwise.
struct Chore {
    broken: &'static AtomicBool,
}

#[workflow(durable)]
impl Chore {
    #[step(given = "a chore")]
    fn take(&self, n: u32) -> Result<u32, std::io::Error> {
        if self.broken.load(Ordering::SeqCst) && n == 13 {
            return Err(std::io::Error::other("unlucky"));
        }
        Ok(n)
    }

    #[step(when = "it is allowed")]
    async fn allowed(&self, step: &StepCtx, n: u32) -> u32 {
        if n == 7 {
            let go: Option<bool> = step.event("go").within(Duration::from_secs(3600)).await;
            return if go == Some(true) { n * 10 } else { 0 };
        }
        n
    }
}

async fn cli(db: &str, args: &[&str]) -> Result<String, String> {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--db".to_owned(), db.to_owned()]);
    let mut out = String::new();
    runs_cli::run(args, &mut out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(out)
}

async fn settle(store: &Store, id: &str, status: RunStatus) {
    for _ in 0..200 {
        if store.run(id).await.unwrap().unwrap().status == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never became {status}");
}

/// Runs a service would have left: completed, failed, and waiting.
async fn seed(store: &Store, broken: &'static AtomicBool) -> Runner {
    // The service looks at the store often, so what the commands do
    // reaches it within the test's patience.
    let runner = Runner::builder()
        .store(store.clone())
        .look_every(Duration::from_millis(50))
        .durable(Chore { broken })
        .build()
        .unwrap();
    for n in [1, 2, 3, 13] {
        let run = runner
            .start(&Chore::ID, format!("chore-{n}"), n)
            .await
            .unwrap();
        let _ = run.result().await;
    }
    let _waiting = runner.start(&Chore::ID, "chore-7", 7).await.unwrap();
    let _other = runner.start(&Chore::ID, "wait-7", 7).await.unwrap();
    runner
}

#[tokio::test]
async fn the_commands_list_show_and_act_on_a_sqlite_journal() {
    static BROKEN: AtomicBool = AtomicBool::new(true);
    let dir = TempDir::new("runs-cli");
    let path = dir.0.join("runs.db");
    let store = Store::sqlite(&path).await.unwrap();
    let runner = seed(&store, &BROKEN).await;
    let db = path.to_str().unwrap();

    let failed = cli(db, &["list", "--status", "failed"]).await.unwrap();
    assert!(
        failed.contains("chore-13") && failed.contains("unlucky"),
        "{failed}"
    );
    assert!(!failed.contains("chore-1 "), "{failed}");
    assert!(
        failed.contains("Chore: 2 running, 3 completed, 1 failed"),
        "{failed}"
    );

    // Pages of two, followed to the end.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["list", "--limit", "2", "--prefix", "chore-"];
        if let Some(after) = &after {
            args.extend(["--after", after.as_str()]);
        }
        let page = cli(db, &args).await.unwrap();
        seen.extend(
            page.lines()
                .filter(|l| l.starts_with("Chore "))
                .map(|l| l.split_whitespace().nth(1).unwrap().to_owned()),
        );
        match page.lines().find_map(|l| l.strip_prefix("more: --after ")) {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        ["chore-1", "chore-13", "chore-2", "chore-3", "chore-7"]
    );

    // By start time (UTC minutes or days): everything started since
    // yesterday (a day's margin either side of midnight), nothing from
    // tomorrow on.
    let day = |offset: i64| {
        (chrono::Utc::now() + chrono::Duration::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    };
    let (yesterday, tomorrow) = (day(-1), day(1));
    let since_today = cli(db, &["list", "--since", &yesterday, "--until", &tomorrow])
        .await
        .unwrap();
    assert_eq!(
        since_today
            .lines()
            .filter(|l| l.starts_with("Chore "))
            .count(),
        6
    );
    let from_tomorrow = cli(db, &["list", "--since", &format!("{tomorrow} 00:00")])
        .await
        .unwrap();
    assert!(
        from_tomorrow.contains("(0 runs, no more)"),
        "{from_tomorrow}"
    );
    let bad = cli(db, &["list", "--since", "yesterday"])
        .await
        .unwrap_err();
    assert!(bad.contains("is not a UTC time"), "{bad}");

    let shown = cli(db, &["show", "chore-13"]).await.unwrap();
    assert!(shown.starts_with("Chore chore-13: failed"), "{shown}");
    assert!(
        shown.contains("1. a chore") && shown.contains("unlucky"),
        "{shown}"
    );

    // Fixed, redriven: it completes.
    BROKEN.store(false, Ordering::SeqCst);
    cli(db, &["redrive", "chore-13"]).await.unwrap();
    settle(&store, "chore-13", RunStatus::Completed).await;

    // An event from the shell reaches a waiting run; a cancel stops another.
    cli(db, &["send", "chore-7", "go", "true"]).await.unwrap();
    settle(&store, "chore-7", RunStatus::Completed).await;
    assert_eq!(
        store
            .run("chore-7")
            .await
            .unwrap()
            .unwrap()
            .output
            .as_deref(),
        Some(&b"70"[..])
    );
    cli(db, &["cancel", "wait-7", "--reason", "no longer needed"])
        .await
        .unwrap();
    settle(&store, "wait-7", RunStatus::Cancelled).await;
    let shown = cli(db, &["show", "wait-7"]).await.unwrap();
    assert!(shown.contains("no longer needed"), "{shown}");

    // Keep the newest two: the other four ended runs go.
    let purged = cli(db, &["purge", "--keep-at-most", "2"]).await.unwrap();
    assert_eq!(purged.trim(), "removed 4 runs");

    // Mistakes are errors that say what to do.
    let bad = cli(db, &["list", "--status", "nope"]).await.unwrap_err();
    assert!(bad.contains("there is no status \"nope\""), "{bad}");
    let bad = cli(db, &["show"]).await.unwrap_err();
    assert!(bad.contains("show needs a run id"), "{bad}");
    let bad = cli(db, &["show", "missing"]).await.unwrap_err();
    assert!(bad.contains("missing"), "{bad}");
    let bad = cli(db, &["purge"]).await.unwrap_err();
    assert!(bad.contains("--keep-days or --keep-at-most"), "{bad}");
    let bad = cli(db, &["list", "--colour", "red"]).await.unwrap_err();
    assert!(bad.contains("unknown flag --colour"), "{bad}");
    let bad = cli(dir.0.join("nope.db").to_str().unwrap(), &["list"])
        .await
        .unwrap_err();
    assert!(bad.contains("no such file"), "{bad}");
    drop(runner);
}

#[tokio::test]
async fn the_commands_read_a_postgres_journal() {
    static BROKEN: AtomicBool = AtomicBool::new(true);
    let pg = workflow_runtime::testing::TempPostgres::start().expect("PostgreSQL starts");
    let store = Store::postgres(&pg.url()).await.unwrap();
    let _runner = seed(&store, &BROKEN).await;
    let listed = cli(&pg.url(), &["list", "--status", "failed"])
        .await
        .unwrap();
    assert!(listed.contains("chore-13"), "{listed}");
    let shown = cli(&pg.url(), &["show", "chore-13"]).await.unwrap();
    assert!(shown.starts_with("Chore chore-13: failed"), "{shown}");
}
