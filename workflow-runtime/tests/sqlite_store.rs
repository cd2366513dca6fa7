//! The SQLite store's own promises: its file survives reopening, and a
//! file it cannot use (not SQLite, locked, holding a bad row) is an error
//! naming the file or the run, never a panic or lost data.

use std::time::Duration;

use workflow_runtime::durable::{
    Backend, Cursor, RunFilter, RunRow, RunStatus, SqliteOptions, SqliteStore, StepRow, StoreError,
};

mod common;
use common::TempDir;

#[tokio::test]
async fn a_reopened_file_keeps_its_journal() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("runs.db");
    {
        let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
        store
            .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
            .await
            .unwrap();
        let step = StepRow::new(0, "load", b"2".to_vec(), 1, 1, 2);
        store.record_step("r", &step).await.unwrap();
        store.pool().close().await;
    }
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    assert_eq!(store.run("r").await.unwrap().unwrap().input, b"1");
    assert_eq!(store.steps("r").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_an_error_naming_it() {
    let dir = TempDir::new("notdb");
    let path = dir.0.join("notes.txt");
    let text = "these are notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = SqliteStore::open(SqliteOptions::new(&path))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("notes.txt"), "{message}");
    assert!(message.contains("not a database"), "{message}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the file was changed"
    );
}

#[tokio::test]
async fn a_locked_file_is_an_error_naming_it_and_loses_nothing() {
    let dir = TempDir::new("locked");
    let path = dir.0.join("runs.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    store
        .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
        .await
        .unwrap();

    // Another writer (another process, the `sqlite3` tool) holds the
    // file's write lock for longer than the store waits.
    let options = SqliteOptions::new(&path).busy_timeout(Duration::from_millis(100));
    let other = SqliteStore::open(options).await.unwrap();
    let mut holder = store.pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let blocked = RunRow::new("s", "Pay", "f", b"2".to_vec());
    let err = other.insert_run(&blocked).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("runs.db"), "{message}");
    assert!(message.contains("starting run \"s\""), "{message}");
    assert!(message.contains("locked"), "{message}");
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);

    // Once the lock is gone, the same write goes through and the earlier
    // run is intact.
    other.insert_run(&blocked).await.unwrap();
    assert_eq!(other.run("r").await.unwrap().unwrap().input, b"1");
    assert_eq!(other.run("s").await.unwrap().unwrap().input, b"2");
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_its_run() {
    let dir = TempDir::new("corrupt");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    store
        .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
        .await
        .unwrap();
    sqlx::query("UPDATE workflow_runs SET status = 'exploded' WHERE id = 'r'")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.run("r").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { run, .. } if run == "r"),
        "{err}"
    );
    assert!(
        err.to_string().contains("unknown status \"exploded\""),
        "{err}"
    );
    let err = store.counts_by_workflow(0).await.unwrap_err();
    assert!(err.to_string().contains("exploded"), "{err}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new("newer");
    let path = dir.0.join("runs.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    sqlx::query("INSERT INTO workflow_schema (version) VALUES (99)")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    let err = SqliteStore::open(SqliteOptions::new(&path))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("schema version 99 is newer"),
        "{err}"
    );
}

/// Every filter the console offers reads a page through a listing index,
/// in its order, at 100 000 runs: no scan of the table, no sort of it.
#[tokio::test]
async fn a_page_of_runs_is_read_by_index_at_a_hundred_thousand_runs() {
    let dir = TempDir::new("listing");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    sqlx::raw_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO workflow_runs (id, workflow, fingerprint, status, input, created_ms, updated_ms)
         SELECT 'run-' || i, CASE i % 3 WHEN 0 THEN 'Pay' WHEN 1 THEN 'Ship' ELSE 'Mail' END,
                'f', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END, '1', i / 2, i / 2
         FROM n;
         ANALYZE;",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let cursor = Cursor {
        created_ms: 40_000,
        id: "run-80000".into(),
    };
    let filters = [
        (RunFilter::new(), "workflow_runs_listing"),
        (
            RunFilter::new().workflow("Pay"),
            "workflow_runs_listing_by_workflow",
        ),
        (
            RunFilter::new().status(RunStatus::Failed),
            "workflow_runs_listing_by_status",
        ),
        (
            RunFilter::new().workflow("Pay").status(RunStatus::Failed),
            "workflow_runs_listing_by_both",
        ),
        (
            RunFilter::new()
                .status(RunStatus::Failed)
                .after(cursor.clone()),
            "workflow_runs_listing_by_status",
        ),
        (
            RunFilter::new().since_ms(1_000).until_ms(2_000),
            "workflow_runs_listing",
        ),
    ];
    for (filter, index) in filters {
        let plan = store.explain_runs(&filter).await.unwrap();
        assert!(
            plan.contains(&format!("USING INDEX {index} ")) || plan.ends_with(index),
            "{filter:?} should read {index}:\n{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{filter:?} sorts:\n{plan}");
        let rows = store.runs(&filter).await.unwrap();
        assert_eq!(rows.len(), 51, "{filter:?}");
    }
    // And the page after a key starts right after it.
    let after = store
        .runs(&RunFilter::new().after(cursor).limit(1))
        .await
        .unwrap();
    assert_eq!(after[0].id, "run-79999");
}
