//! What every journal store must do, run on each: the in-memory store, the
//! SQLite store, and the PostgreSQL store (on a throwaway server started
//! from the machine's binaries).

use workflow_runtime::durable::{
    Backend, FailureRow, Inserted, MemoryStore, PostgresStore, RunEnd, RunRow, RunStatus,
    SqliteOptions, SqliteStore, StepRow, StoreError,
};

mod common;
use common::TempDir;

fn run(id: &str, created_ms: i64) -> RunRow {
    let mut row = RunRow::new(id, "Pay", "f00d", br#"{"id":1}"#.to_vec());
    row.created_ms = created_ms;
    row.updated_ms = created_ms;
    row
}

async fn inserting_a_run_twice_keeps_the_first(store: &dyn Backend) {
    let first = run("r1", 1);
    assert_eq!(store.insert_run(&first).await.unwrap(), Inserted::New);
    let mut second = run("r1", 2);
    second.input = b"other".to_vec();
    second.workflow = "Other".to_owned();
    assert_eq!(
        store.insert_run(&second).await.unwrap(),
        Inserted::Existing(first.clone())
    );
    assert_eq!(store.run("r1").await.unwrap(), Some(first));
    assert_eq!(store.run("missing").await.unwrap(), None);
}

async fn steps_are_journaled_once_and_read_in_order(store: &dyn Backend) {
    store.insert_run(&run("r2", 1)).await.unwrap();
    let second = StepRow::new(1, "charge", br#"{"paid":true}"#.to_vec(), 3, 10, 20);
    let first = StepRow::new(0, "load", br#"{"id":2}"#.to_vec(), 1, 5, 6);
    store.record_step("r2", &second).await.unwrap();
    store.record_step("r2", &first).await.unwrap();
    assert_eq!(store.steps("r2").await.unwrap(), [first.clone(), second]);

    let again = StepRow::new(0, "load", b"{}".to_vec(), 2, 7, 8);
    let err = store.record_step("r2", &again).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { run, index: 0 } if run == "r2"),
        "{err}"
    );
    assert_eq!(
        store.steps("r2").await.unwrap()[0],
        first,
        "a conflict changed the row"
    );

    let err = store.record_step("nope", &first).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchRun(run) if run == "nope"),
        "{err}"
    );
    assert!(store.steps("nope").await.unwrap().is_empty());
}

async fn payloads_round_trip_as_text_and_bytes(store: &dyn Backend) {
    let mut row = run("r3", 1);
    row.input = vec![0xff, 0x00, 0x9f, 0x92, 0x96];
    store.insert_run(&row).await.unwrap();
    assert_eq!(store.run("r3").await.unwrap().unwrap().input, row.input);
    let binary = StepRow::new(0, "bytes", vec![0xc3, 0x28, 0x00], 1, 1, 1);
    let text = StepRow::new(1, "text", "\"naïve ✓\"".as_bytes().to_vec(), 1, 1, 1);
    store.record_step("r3", &binary).await.unwrap();
    store.record_step("r3", &text).await.unwrap();
    assert_eq!(store.steps("r3").await.unwrap(), [binary, text]);
}

async fn a_run_ends_once(store: &dyn Backend) {
    store.insert_run(&run("r4", 1)).await.unwrap();
    let done = RunEnd::Completed(b"42".to_vec());
    assert!(store.finish_run("r4", &done).await.unwrap());
    assert!(
        !store
            .finish_run(
                "r4",
                &RunEnd::Failed {
                    error: "late".into(),
                    step: None,
                }
            )
            .await
            .unwrap()
    );
    let row = store.run("r4").await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Completed);
    assert_eq!(row.output.as_deref(), Some(&b"42"[..]));
    assert_eq!(row.error, None);
    assert!(row.updated_ms >= row.created_ms);

    store.insert_run(&run("r5", 1)).await.unwrap();
    assert!(
        store
            .finish_run(
                "r5",
                &RunEnd::Failed {
                    error: "declined".into(),
                    step: Some("charge".into()),
                }
            )
            .await
            .unwrap()
    );
    let row = store.run("r5").await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.error.as_deref()),
        (RunStatus::Failed, Some("declined"))
    );

    store.insert_run(&run("r6", 1)).await.unwrap();
    let parked = RunEnd::Incompatible("definition changed".into());
    assert!(store.finish_run("r6", &parked).await.unwrap());
    assert_eq!(
        store.run("r6").await.unwrap().unwrap().status,
        RunStatus::Incompatible
    );

    let err = store.finish_run("nope", &done).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchRun(run) if run == "nope"),
        "{err}"
    );
}

async fn running_runs_are_listed_oldest_first_and_counted(store: &dyn Backend) {
    store.insert_run(&run("late", 30)).await.unwrap();
    store.insert_run(&run("early", 10)).await.unwrap();
    store.insert_run(&run("done", 5)).await.unwrap();
    store
        .finish_run("done", &RunEnd::Completed(b"1".to_vec()))
        .await
        .unwrap();
    store.insert_run(&run("broken", 1)).await.unwrap();
    store
        .finish_run(
            "broken",
            &RunEnd::Failed {
                error: "x".into(),
                step: None,
            },
        )
        .await
        .unwrap();
    store.insert_run(&run("parked", 2)).await.unwrap();
    store
        .finish_run("parked", &RunEnd::Incompatible("x".into()))
        .await
        .unwrap();
    let mut other = run("shipping", 20);
    other.workflow = "Ship".to_owned();
    store.insert_run(&other).await.unwrap();

    let ids: Vec<String> = store
        .running()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["early", "shipping", "late"]);
    // Counted workflow by workflow.
    let counts = store.counts_by_workflow(0).await.unwrap();
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["Pay", "Ship"]);
    let tally = |name: &str| {
        let c = &counts[name];
        (
            c.running,
            c.completed,
            c.failed,
            c.incompatible,
            c.oldest_running_ms,
        )
    };
    assert_eq!(tally("Pay"), (2, 1, 1, 1, Some(10)));
    assert_eq!(tally("Ship"), (1, 0, 0, 0, Some(20)));
}

async fn failures_are_kept_per_step_the_latest_count_replacing_the_last(store: &dyn Backend) {
    store.insert_run(&run("r7", 1)).await.unwrap();
    let mut first = FailureRow::new(1, 1, "declined");
    first.failed_ms = 100;
    store.record_failure("r7", &first).await.unwrap();
    let mut second = FailureRow::new(1, 2, "timed out");
    second.failed_ms = 200;
    store.record_failure("r7", &second).await.unwrap();
    let other = FailureRow::new(3, 1, "gone");
    store.record_failure("r7", &other).await.unwrap();
    assert_eq!(store.failures("r7").await.unwrap(), [second, other.clone()]);
    assert!(store.failures("r1").await.unwrap().is_empty());
    let err = store.record_failure("nope", &other).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchRun(run) if run == "nope"),
        "{err}"
    );
}

/// Every rule, each on a fresh store from `open`.
async fn conformance<S: Backend, F: Future<Output = S>>(open: impl Fn() -> F) {
    inserting_a_run_twice_keeps_the_first(&open().await).await;
    steps_are_journaled_once_and_read_in_order(&open().await).await;
    payloads_round_trip_as_text_and_bytes(&open().await).await;
    a_run_ends_once(&open().await).await;
    running_runs_are_listed_oldest_first_and_counted(&open().await).await;
    failures_are_kept_per_step_the_latest_count_replacing_the_last(&open().await).await;
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(|| async { MemoryStore::new() }).await;
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = TempDir::new("conform");
    let next = std::sync::atomic::AtomicU32::new(0);
    conformance(|| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.0.join(format!("journal-{n}.db"));
        async move { SqliteStore::open(SqliteOptions::new(path)).await.unwrap() }
    })
    .await;
}

#[tokio::test]
async fn postgres_store_conforms() {
    let pg = workflow_runtime::testing::TempPostgres::start().expect("PostgreSQL starts");
    let admin = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let next = std::sync::atomic::AtomicU32::new(0);
    conformance(|| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (admin, url) = (admin.clone(), pg.url_for(&format!("journal_{n}")));
        async move {
            // Identifiers cannot be bound; `n` is a number this test made.
            let create = format!("CREATE DATABASE journal_{n}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                .execute(&admin)
                .await
                .unwrap();
            PostgresStore::open(&url).await.unwrap()
        }
    })
    .await;
}
