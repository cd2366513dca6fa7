//! The SQLite store's own promises: its file survives reopening, and a
//! file it cannot use (not SQLite, locked, holding a bad row) is an error
//! naming the file or the run, never a panic or lost data. Concurrent
//! writes share a transaction, each with its own outcome.

use std::time::Duration;

use workflow_runtime::durable::{
    Backend, Commits, Cursor, Inserted, RunEnd, RunFilter, RunRow, RunStatus, SqliteOptions,
    SqliteStore, StepRow, StoreError, Suspension,
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

fn run(id: &str) -> RunRow {
    RunRow::new(id, "Pay", "f", b"1".to_vec())
}

fn step(index: u32) -> StepRow {
    StepRow::new(index, "load", b"2".to_vec(), 1, 1, 2)
}

/// Polls `write` once: queued for the writer's next batch, and the writer
/// spawned, but not yet run (the test's one task has not yielded).
async fn queue<F: std::future::Future + Unpin>(write: &mut F) {
    let polled =
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *write).poll(cx)))
            .await;
    assert!(
        polled.is_pending(),
        "the write was still waiting for its commit"
    );
}

/// Transactions committed and the writes they held between two counts.
fn grouped(before: Commits, after: Commits) -> (u64, u64) {
    (
        after.transactions - before.transactions,
        after.writes - before.writes,
    )
}

/// Writes made at once (the test's one task polls them all before the
/// writer runs) go in one transaction, and each gets what it would have
/// got alone: the refused ones fail, the rest are written.
#[tokio::test]
async fn concurrent_writes_share_a_transaction_and_keep_their_own_outcomes() {
    let dir = TempDir::new("group");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    for id in ["a", "b", "c"] {
        store.insert_run(&run(id)).await.unwrap();
    }
    store.record_step("a", &step(0)).await.unwrap();
    let before = store.commits();
    assert_eq!((before.transactions, before.writes), (4, 4));

    let cancelled = RunEnd::Cancelled {
        reason: "by hand".into(),
        step: None,
    };
    let (a, n, first) = (run("a"), run("n"), step(0));
    let (again, new, new_twice, taken, fresh, ghost_step, ended, ended_twice, ghost_end) = tokio::join!(
        store.insert_run(&a),
        store.insert_run(&n),
        store.insert_run(&n),
        store.record_step("a", &first),
        store.record_step("b", &first),
        store.record_step("ghost", &first),
        store.finish_run("c", &cancelled),
        store.finish_run("c", &cancelled),
        store.finish_run("ghost", &cancelled),
    );
    let after = store.commits();
    assert_eq!(
        grouped(before, after),
        (1, 9),
        "nine writes at once, one transaction"
    );

    assert!(matches!(again.unwrap(), Inserted::Existing(row) if row.id == "a"));
    assert!(
        matches!(new.unwrap(), Inserted::New),
        "the first start of an id writes it"
    );
    assert!(matches!(new_twice.unwrap(), Inserted::Existing(row) if row.id == "n"));
    assert!(
        matches!(taken, Err(StoreError::Conflict { ref run, index: 0 }) if run == "a"),
        "{taken:?}"
    );
    fresh.unwrap();
    assert!(
        matches!(ghost_step, Err(StoreError::NoSuchRun(ref id)) if id == "ghost"),
        "{ghost_step:?}"
    );
    assert!(ended.unwrap(), "the first end ends the run");
    assert!(!ended_twice.unwrap(), "the second finds it ended");
    assert!(
        matches!(ghost_end, Err(StoreError::NoSuchRun(ref id)) if id == "ghost"),
        "{ghost_end:?}"
    );

    assert_eq!(store.steps("a").await.unwrap(), vec![step(0)]);
    assert_eq!(store.steps("b").await.unwrap(), vec![step(0)]);
    let c = store.run("c").await.unwrap().unwrap();
    assert_eq!(
        (c.status, c.error.as_deref()),
        (RunStatus::Cancelled, Some("by hand"))
    );
    assert!(store.run("n").await.unwrap().is_some());
    assert!(
        store.run("ghost").await.unwrap().is_none(),
        "nothing made up a run"
    );
}

/// A child ended in a batch beside another run's end wakes the parent
/// waiting for it, and only that parent.
#[tokio::test]
async fn a_child_ended_in_a_batch_wakes_its_waiting_parent() {
    let dir = TempDir::new("group-child");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    for (id, parent) in [("p", None), ("q", None), ("c", Some("p")), ("d", Some("q"))] {
        let mut row = run(id);
        row.parent = parent.map(str::to_owned);
        store.insert_run(&row).await.unwrap();
    }
    let far = i64::MAX / 2;
    store
        .suspend("p", Some(&Suspension::new("child:c", Some(far), 0)), None)
        .await
        .unwrap();
    // q waits for something else than its child d.
    store
        .suspend("q", Some(&Suspension::new("event:go", Some(far), 0)), None)
        .await
        .unwrap();
    let (three, four) = (
        RunEnd::Completed(b"3".to_vec()),
        RunEnd::Completed(b"4".to_vec()),
    );
    let (c, d) = tokio::join!(store.finish_run("c", &three), store.finish_run("d", &four));
    assert!(c.unwrap() && d.unwrap());
    assert_eq!(
        store.run("p").await.unwrap().unwrap().wake_ms,
        Some(i64::MIN)
    );
    assert_eq!(store.run("q").await.unwrap().unwrap().wake_ms, Some(far));
    let due: Vec<String> = store
        .due(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(due, vec!["p"]);
}

/// A waiter that leaves once its write is queued (a timeout, a cancelled
/// run) does not take the write, or the writes queued with it, along.
#[tokio::test]
async fn a_write_whose_waiter_left_is_still_made() {
    let dir = TempDir::new("group-left");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    // Polled once (queued, the writer spawned), then dropped.
    let row = run("left");
    let mut left = store.insert_run(&row);
    queue(&mut left).await;
    drop(left);
    store.insert_run(&run("stayed")).await.unwrap();
    assert!(store.run("left").await.unwrap().is_some());
    assert!(store.run("stayed").await.unwrap().is_some());
}

/// The application's own writes share the journal's transactions: one
/// that fails (a constraint, a trigger's abort, a table that is not
/// there) fails alone, the rest of its batch is made.
#[tokio::test]
async fn application_writes_share_the_journals_transactions_and_fail_alone() {
    let dir = TempDir::new("group-app");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    let note = |id: i64, text: Option<&str>| {
        sqlx::query("INSERT INTO notes (id, text) VALUES (?, ?)")
            .bind(id)
            .bind(text.map(str::to_owned))
    };
    // A trigger refuses note 7; no table is named `missing`.
    sqlx::query(
        "CREATE TRIGGER no_sevens BEFORE INSERT ON notes WHEN NEW.id = 7
         BEGIN SELECT RAISE(ABORT, 'no sevens'); END",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let before = store.commits();
    let row = run("r");
    let (one, refused, two, seven, missing, started) = tokio::join!(
        store.execute(note(1, Some("one"))),
        store.execute(note(2, None)),
        store.execute(note(3, Some("three"))),
        store.execute(note(7, Some("seven"))),
        store.execute(sqlx::query("INSERT INTO missing VALUES (1)")),
        store.insert_run(&row),
    );
    let after = store.commits();
    assert_eq!(grouped(before, after), (1, 6));
    assert_eq!((one.unwrap(), two.unwrap()), (1, 1));
    let refused = refused.unwrap_err().to_string();
    assert!(refused.contains("NOT NULL"), "{refused}");
    assert!(refused.contains("runs.db"), "{refused}");
    let seven = seven.unwrap_err().to_string();
    assert!(seven.contains("no sevens"), "{seven}");
    let missing = missing.unwrap_err().to_string();
    assert!(missing.contains("no such table"), "{missing}");
    assert!(matches!(started.unwrap(), Inserted::New));
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM notes ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(ids, [1, 3]);
}

/// A store with a table of the application's, `notes`, for steps to write.
async fn notes_store(name: &str) -> (TempDir, SqliteStore, workflow_runtime::durable::Store) {
    let dir = TempDir::new(name);
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (text TEXT)")
        .execute(sqlite.pool())
        .await
        .unwrap();
    let store = workflow_runtime::durable::Store::new(sqlite.clone());
    (dir, sqlite, store)
}

/// A transactional step is lent the transaction of the batch that holds
/// the journal writes queued beside its request: its writes and row
/// commit with theirs, in one transaction.
#[tokio::test]
async fn a_transactional_step_commits_in_the_batch_that_lent_it_the_transaction() {
    use std::task::Poll;
    use workflow_runtime::durable::{SqliteTx, Transaction};

    let (_dir, sqlite, store) = notes_store("group-lend").await;
    sqlite.insert_run(&run("t")).await.unwrap();

    // Two writes and the step's request queue before the writer runs.
    let (q1, q2) = (run("q1"), run("q2"));
    let mut queued = [sqlite.insert_run(&q1), sqlite.insert_run(&q2)];
    for write in &mut queued {
        queue(write).await;
    }
    let before = sqlite.commits();
    let (mut tx, _) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (text) VALUES ('noted')")
        .execute(&mut **tx)
        .await
        .unwrap();
    // Lent once the batch's own writes are made, before it commits.
    assert_eq!(sqlite.commits(), before);
    let row = StepRow::new(1, "noted", b"1".to_vec(), 1, 1, 2);
    SqliteTx::commit_with(tx, &store, "t", row.clone(), None)
        .await
        .unwrap();
    for write in &mut queued {
        let polled = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        assert!(
            matches!(polled, Poll::Ready(Ok(Inserted::New))),
            "{polled:?}"
        );
    }
    let after = sqlite.commits();
    assert_eq!(
        grouped(before, after),
        (1, 3),
        "the two queued writes and the step's, in one transaction"
    );
    assert_eq!(sqlite.steps("t").await.unwrap(), vec![row]);
    let notes: Vec<String> = sqlx::query_scalar("SELECT text FROM notes")
        .fetch_all(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(notes, ["noted"]);
}

/// A lent transaction dropped rather than kept (the step failed, or was
/// dropped midway) takes back its own writes only: the batch commits the
/// writes queued beside it.
#[tokio::test]
async fn a_lent_transaction_dropped_takes_back_only_its_own_writes() {
    use workflow_runtime::durable::{SqliteTx, Transaction};

    let (_dir, sqlite, store) = notes_store("group-lend-drop").await;

    let queued_run = run("q1");
    let mut queued = sqlite.insert_run(&queued_run);
    queue(&mut queued).await;
    let (mut tx, _) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (text) VALUES ('dropped')")
        .execute(&mut **tx)
        .await
        .unwrap();
    drop(tx);
    assert!(matches!(queued.await, Ok(Inserted::New)));
    assert!(sqlite.run("q1").await.unwrap().is_some());
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(notes, 0, "the dropped step's write was kept");
    // And the store goes on: the next lend is kept.
    sqlite.insert_run(&run("t")).await.unwrap();
    let (mut tx, _) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (text) VALUES ('kept')")
        .execute(&mut **tx)
        .await
        .unwrap();
    let row = StepRow::new(1, "noted", b"1".to_vec(), 1, 1, 2);
    SqliteTx::commit_with(tx, &store, "t", row, None)
        .await
        .unwrap();
    let notes: Vec<String> = sqlx::query_scalar("SELECT text FROM notes")
        .fetch_all(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(notes, ["kept"]);
}

/// A step lent the transaction gets its row as the transaction sees it:
/// one an earlier attempt committed is there, so the step does not run
/// its body again.
#[tokio::test]
async fn a_lent_transaction_comes_with_the_steps_row_as_it_sees_it() {
    use workflow_runtime::durable::{SqliteTx, Transaction};

    let (_dir, sqlite, store) = notes_store("group-lend-read").await;
    sqlite.insert_run(&run("t")).await.unwrap();
    let (tx, recorded) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    assert_eq!(recorded, None);
    let row = StepRow::new(1, "noted", b"1".to_vec(), 1, 1, 2);
    SqliteTx::commit_with(tx, &store, "t", row.clone(), None)
        .await
        .unwrap();
    let (tx, recorded) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    assert_eq!(recorded, Some(row));
    drop(tx);
    let (_tx, other) = <SqliteTx as Transaction>::begin(&store, "t", 2)
        .await
        .unwrap();
    assert_eq!(other, None, "step 2 has no row");
}

/// The row read for a lent step is read inside the batch's transaction,
/// after the batch's own writes: a row queued just before the step asked
/// (so not yet committed) is there.
#[tokio::test]
async fn a_lent_steps_row_is_read_after_the_writes_of_its_own_batch() {
    use workflow_runtime::durable::{SqliteTx, Transaction};

    let (_dir, sqlite, store) = notes_store("group-lend-read-batch").await;
    sqlite.insert_run(&run("t")).await.unwrap();
    let before = sqlite.commits();
    let row = StepRow::new(3, "queued", b"3".to_vec(), 1, 1, 2);
    let mut queued = sqlite.record_step("t", &row);
    queue(&mut queued).await;
    let (tx, recorded) = <SqliteTx as Transaction>::begin(&store, "t", 3)
        .await
        .unwrap();
    // Lent before the batch commits, and it sees the batch's row.
    assert_eq!(sqlite.commits(), before);
    assert_eq!(recorded.as_ref(), Some(&row));
    drop(tx);
    queued.await.unwrap();
    let after = sqlite.commits();
    assert_eq!(after.transactions - before.transactions, 1);
}

/// A child's end that shares its batch with a step given the transaction
/// back unkept still wakes the parent waiting for it: the wake is written
/// with the end, before the step's savepoint, not inside it.
#[tokio::test]
async fn a_childs_end_beside_an_unkept_lend_still_wakes_its_parent() {
    use workflow_runtime::durable::{SqliteTx, Transaction};

    let (_dir, sqlite, store) = notes_store("group-lend-wake").await;
    for (id, parent) in [("p", None), ("c", Some("p")), ("t", None)] {
        let mut row = run(id);
        row.parent = parent.map(str::to_owned);
        sqlite.insert_run(&row).await.unwrap();
    }
    let far = i64::MAX / 2;
    sqlite
        .suspend("p", Some(&Suspension::new("child:c", Some(far), 0)), None)
        .await
        .unwrap();
    let before = sqlite.commits();
    let end = RunEnd::Completed(b"3".to_vec());
    let mut ending = sqlite.finish_run("c", &end);
    queue(&mut ending).await;
    let (mut tx, _) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (text) VALUES ('unkept')")
        .execute(&mut **tx)
        .await
        .unwrap();
    drop(tx);
    assert!(ending.await.unwrap());
    let after = sqlite.commits();
    assert_eq!(
        grouped(before, after),
        (1, 2),
        "the end and the lend, in one transaction"
    );
    assert_eq!(
        sqlite.run("p").await.unwrap().unwrap().wake_ms,
        Some(i64::MIN),
        "the parent's wake was rolled back with the unkept step"
    );
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(notes, 0);
}

/// A lent step's row refused when the batch writes it (another writer
/// journaled the step first) takes the step's writes with it: the step
/// gets the conflict, and the writes queued beside it commit.
#[tokio::test]
async fn a_lent_steps_row_refused_takes_its_writes_with_it() {
    use workflow_runtime::durable::{SqliteTx, Transaction};

    let (_dir, sqlite, store) = notes_store("group-lend-refused").await;
    sqlite.insert_run(&run("t")).await.unwrap();
    let before = sqlite.commits();
    let queued_run = run("q1");
    let mut queued = sqlite.insert_run(&queued_run);
    queue(&mut queued).await;
    let (mut tx, recorded) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    assert_eq!(recorded, None);
    sqlx::query("INSERT INTO notes (text) VALUES ('refused')")
        .execute(&mut **tx)
        .await
        .unwrap();
    // A row for the same step, written under the step's savepoint as a
    // second journaling of it would be; rolled back with the step's writes.
    sqlx::query(
        "INSERT INTO workflow_steps (run_id, step_index, title, output, attempts, started_ms, \
         ended_ms) VALUES ('t', 1, 'first', '1', 1, 1, 2)",
    )
    .execute(&mut **tx)
    .await
    .unwrap();
    let row = StepRow::new(1, "second", b"2".to_vec(), 1, 1, 2);
    let error = SqliteTx::commit_with(tx, &store, "t", row, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict { ref run, index: 1 } if run == "t"),
        "{error:?}"
    );
    assert!(matches!(queued.await, Ok(Inserted::New)));
    let after = sqlite.commits();
    assert_eq!(
        grouped(before, after),
        (1, 2),
        "the queued run and the lend, in one transaction"
    );
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(notes, 0, "the refused step's write was kept");
    assert!(sqlite.steps("t").await.unwrap().is_empty());
    assert!(sqlite.run("q1").await.unwrap().is_some());
}

/// Three steps lent one batch's transaction in turn, the middle one given
/// back unkept: the first and last keep their writes and rows, the middle
/// one's are rolled back, and all of it is one transaction.
#[tokio::test]
async fn lends_in_one_batch_keep_or_give_back_each_its_own_writes() {
    use workflow_runtime::durable::{SqliteTx, Transaction};

    let (_dir, sqlite, store) = notes_store("group-lend-three").await;
    for id in ["a", "b", "c"] {
        sqlite.insert_run(&run(id)).await.unwrap();
    }
    let before = sqlite.commits();
    let lend = |id: &'static str, keep: bool| {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut tx, recorded) = <SqliteTx as Transaction>::begin(&store, id, 1)
                .await
                .unwrap();
            assert_eq!(recorded, None);
            sqlx::query("INSERT INTO notes (text) VALUES (?)")
                .bind(id)
                .execute(&mut **tx)
                .await
                .unwrap();
            if keep {
                let row = StepRow::new(1, id, b"1".to_vec(), 1, 1, 2);
                SqliteTx::commit_with(tx, &store, id, row, None)
                    .await
                    .unwrap();
            }
        })
    };
    // Spawned before the writer runs: one batch lends to all three.
    let (a, b, c) = (lend("a", true), lend("b", false), lend("c", true));
    for task in [a, b, c] {
        task.await.unwrap();
    }
    let after = sqlite.commits();
    assert_eq!(
        grouped(before, after),
        (1, 3),
        "the three lends, in one transaction"
    );
    let notes: Vec<String> = sqlx::query_scalar("SELECT text FROM notes ORDER BY text")
        .fetch_all(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(notes, ["a", "c"]);
    for (id, kept) in [("a", true), ("b", false), ("c", true)] {
        assert_eq!(
            sqlite.steps(id).await.unwrap().len(),
            usize::from(kept),
            "{id}"
        );
    }
}

/// A batch whose transaction SQLite ended under sqlx (here a body's own
/// `ROLLBACK`, which the rules forbid; a full disk does the same) left
/// sqlx 0.9.0 counting a transaction that is not there. Reused, that
/// connection would open savepoints for transactions, and after one more
/// failed batch sit in a transaction that never commits, telling writers
/// theirs did. sqlx 0.9.1 recounts at the failed `COMMIT`, and the store
/// closes a connection released still counting one: either way the
/// writer's connection counts no transaction, and the next write lands.
#[tokio::test]
async fn a_connection_left_counting_a_transaction_that_sqlite_ended_is_not_reused() {
    use sqlx::Connection;
    use workflow_runtime::durable::{SqliteTx, Store, Transaction};

    let dir = TempDir::new("group-stuck-depth");
    let sqlite = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    let store = Store::new(sqlite.clone());
    sqlite.insert_run(&run("t")).await.unwrap();

    let (mut tx, _) = <SqliteTx as Transaction>::begin(&store, "t", 1)
        .await
        .unwrap();
    sqlx::query("ROLLBACK").execute(&mut **tx).await.unwrap();
    let row = StepRow::new(1, "ended", b"1".to_vec(), 1, 1, 2);
    let ended = SqliteTx::commit_with(tx, &store, "t", row, None).await;
    assert!(
        ended.is_err(),
        "a batch whose transaction was ended committed"
    );

    // The writer's connection, handed out again, counts no transaction.
    let conn = sqlite.pool().acquire().await.unwrap();
    assert!(
        !conn.is_in_transaction(),
        "the writer's connection still counts the transaction SQLite ended"
    );
    drop(conn);
    sqlite.insert_run(&run("after")).await.unwrap();
    assert!(sqlite.run("after").await.unwrap().is_some());
}

/// A writer task whose runtime shut down before it ever ran lets go of
/// the queue: the write it held fails, and a later write, from another
/// runtime, starts a writer anew rather than wait for the gone one.
#[test]
fn a_writer_lost_with_its_runtime_does_not_hold_up_later_writes() {
    let current = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let dir = TempDir::new("group-lost");
    let main = current();
    let store = main
        .block_on(SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db"))))
        .unwrap();
    let doomed = current();
    let lost = run("lost");
    let mut write = store.insert_run(&lost);
    // Queued, its writer spawned on `doomed` but never run.
    let polled = doomed.block_on(std::future::poll_fn(|cx| {
        std::task::Poll::Ready(write.as_mut().poll(cx))
    }));
    assert!(polled.is_pending());
    drop(doomed);
    let answered =
        main.block_on(async { tokio::time::timeout(Duration::from_secs(10), write).await });
    let error = answered
        .expect("the lost write was never answered")
        .unwrap_err()
        .to_string();
    assert!(error.contains("starting run \"lost\""), "{error}");
    assert!(error.contains("writer stopped"), "{error}");

    let later = run("later");
    let written = main.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), store.insert_run(&later)).await
    });
    assert!(
        matches!(written, Ok(Ok(Inserted::New))),
        "a later write waited for the lost writer: {written:?}"
    );
}

/// A run's last step's row and its end, written as one
/// (`finish_run_with`), share a batch even where the batch fills up
/// between them: committed together, or not at all.
#[tokio::test]
async fn a_last_steps_row_and_its_end_share_a_batch_even_where_it_is_full() {
    let dir = TempDir::new("last-row-batch");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    let ids: Vec<String> = (0..256).map(|i| format!("r{i}")).collect();
    for id in &ids {
        store.insert_run(&run(id)).await.unwrap();
    }
    let (first, last) = (step(0), step(1));
    let end = RunEnd::Completed(b"3".to_vec());
    let before = store.commits();
    // 255 rows, then the pair: the writer's limit of 256 falls between
    // the last row and its end.
    let mut rows = Vec::new();
    for id in &ids[..255] {
        let mut row = store.record_step(id, &first);
        queue(&mut row).await;
        rows.push(row);
    }
    let mut finish = store.finish_run_with(&ids[255], &end, Some(&last), None);
    queue(&mut finish).await;
    for row in rows {
        row.await.unwrap();
    }
    assert!(finish.await.unwrap(), "the end ended the run");
    assert_eq!(grouped(before, store.commits()), (1, 257));
    assert_eq!(store.steps(&ids[255]).await.unwrap(), vec![last]);
    let ended = store.run(&ids[255]).await.unwrap().unwrap();
    assert_eq!(ended.status, RunStatus::Completed);
}

/// A last step's row there already (an earlier drive wrote it) is as
/// good as the one written with the end: the end commits beside it.
#[tokio::test]
async fn a_last_steps_row_there_already_leaves_its_end_to_commit() {
    let dir = TempDir::new("last-row-there");
    let store = SqliteStore::open(SqliteOptions::new(dir.0.join("runs.db")))
        .await
        .unwrap();
    store.insert_run(&run("c")).await.unwrap();
    store.record_step("c", &step(0)).await.unwrap();
    let (end, again) = (RunEnd::Completed(b"3".to_vec()), step(0));
    let before = store.commits();
    let written = store.finish_run_with("c", &end, Some(&again), None);
    assert!(written.await.unwrap());
    assert_eq!(grouped(before, store.commits()), (1, 2));
    assert_eq!(
        store.run("c").await.unwrap().unwrap().status,
        RunStatus::Completed
    );
    assert_eq!(store.steps("c").await.unwrap(), vec![step(0)]);
}

/// Runs whose ids sort by time (`durable::new_run_id`) keep a batch's
/// index entries side by side; runs with random ids (as clients'
/// idempotency keys make them) each land on a leaf of their own.
/// Measured as what the write-ahead log grew by for the same batches on
/// a journal of some size: the pages those commits wrote, and synced.
#[tokio::test]
async fn time_ordered_run_ids_make_commits_write_fewer_pages_than_random_ones() {
    use workflow_runtime::durable::new_run_id;

    let dir = TempDir::new("ordered-ids");
    let path = dir.0.join("runs.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    // The writer's one connection: no checkpoint resets the log midway.
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(store.pool())
        .await
        .unwrap();
    // Random ids, drawn from a seeded generator: the same in every run.
    let mut seed = 0x5eed_u64;
    let mut random_id = move || {
        let mut draw = || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        format!("{:016x}{:016x}", draw(), draw())
    };
    // Each id's run and its first step, 32 runs to a batch.
    async fn journal(store: &SqliteStore, ids: Vec<String>) {
        for batch in ids.chunks(32) {
            let mut set = tokio::task::JoinSet::new();
            for id in batch {
                let (store, id) = (store.clone(), id.clone());
                set.spawn(async move {
                    store
                        .insert_run(&RunRow::new(&id, "Pay", "f", b"1".to_vec()))
                        .await
                        .unwrap();
                    let step = StepRow::new(0, "load", b"2".to_vec(), 1, 1, 2);
                    store.record_step(&id, &step).await.unwrap();
                });
            }
            while let Some(done) = set.join_next().await {
                done.unwrap();
            }
        }
    }
    // What the log grows by while `ids` are journaled, from empty.
    async fn logged(store: &SqliteStore, wal: &std::path::Path, ids: Vec<String>) -> (u64, u64) {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(busy, 0, "the checkpoint was blocked");
        assert_eq!(std::fs::metadata(wal).unwrap().len(), 0);
        let before = store.commits().transactions;
        journal(store, ids).await;
        (
            std::fs::metadata(wal).unwrap().len(),
            store.commits().transactions - before,
        )
    }
    // A journal of some size, so its indexes span many pages.
    journal(&store, (0..8_000).map(|_| random_id()).collect()).await;
    let wal = dir.0.join("runs.db-wal");
    let (random, random_commits) =
        logged(&store, &wal, (0..512).map(|_| random_id()).collect()).await;
    let (ordered, ordered_commits) =
        logged(&store, &wal, (0..512).map(|_| new_run_id()).collect()).await;
    // Printed with `--nocapture`: the figures the README quotes.
    println!(
        "the log grew by {random} bytes with random ids, {ordered} with time-ordered ones, \
         over {ordered_commits} commits each"
    );
    assert_eq!(
        random_commits, ordered_commits,
        "both were written in as many transactions"
    );
    assert!(
        ordered * 2 < random,
        "time-ordered ids grew the log by {ordered} bytes, random ones by {random}, \
         over {ordered_commits} commits each"
    );
}
