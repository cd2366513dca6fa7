//! The PostgreSQL store's own promises, on a throwaway server: instances
//! opening one database together migrate it once, and a database it cannot
//! reach is an error naming it, without its password.

use workflow_runtime::durable::{Backend, Cursor, PostgresStore, RunFilter, RunRow, RunStatus};
use workflow_runtime::testing::TempPostgres;

/// Now, in ms since the Unix epoch, as leases are stamped.
fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn instances_opening_together_migrate_once() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let opened = futures_like_join(
        (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { PostgresStore::open(&url).await })
            })
            .collect(),
    )
    .await;
    for store in &opened {
        assert!(store.is_ok(), "{:?}", store.as_ref().err());
    }
    let store = opened.into_iter().next().unwrap().unwrap();
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM workflow_schema ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    // Each migration applied once, in order, though four instances raced.
    let expected: Vec<i32> = (1..=10).collect();
    assert_eq!(versions, expected);
    store
        .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
        .await
        .unwrap();
    assert_eq!(store.run("r").await.unwrap().unwrap().input, b"1");
}

/// Awaits every task.
async fn futures_like_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_naming_it_without_its_password() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://app:s3cret@127.0.0.1:{port}/orders");
    let err = PostgresStore::open(&url).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("postgres://app:***@127.0.0.1:{port}/orders")),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(message.contains("connecting"), "{message}");
}

#[tokio::test]
async fn claims_hold_until_their_lease_runs_out_and_fence_the_loser() {
    use workflow_runtime::durable::{RunEnd, StepRow, StoreError};
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    assert!(store.leases());
    store
        .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
        .await
        .unwrap();
    let workflows = [("Pay".to_owned(), "f".to_owned())];
    // a claims it for a minute: b finds nothing to claim.
    let a = store
        .claim("a", &workflows, 10, (now(), now() + 60_000), 600_000)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].fence.epoch, 1);
    assert!(
        store
            .claim("b", &workflows, 10, (now(), now() + 60_000), 600_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_run("b", "r", (now(), now() + 60_000))
            .await
            .unwrap()
            .is_none()
    );
    // Nor does a itself take its own live claim again: its driver has it.
    assert!(
        store
            .claim_run("a", "r", (now(), now() + 60_000))
            .await
            .unwrap()
            .is_none()
    );
    // An instance that runs another version of Pay leaves the run alone
    // (for ten minutes: then it would take it, to park it).
    store
        .renew("a", &["r".to_owned()], (0, -1000))
        .await
        .unwrap();
    assert!(
        store
            .claim(
                "v2",
                &[("Pay".to_owned(), "g".to_owned())],
                10,
                (now(), now() + 60_000),
                600_000,
            )
            .await
            .unwrap()
            .is_empty()
    );

    // a's lease runs out (renewed into the past): b takes the run over.
    // Renewals touch only the runs named (the ones `a` drives).
    assert!(store.renew("a", &[], (0, -1000)).await.unwrap().is_empty());
    assert_eq!(
        store
            .renew("a", &["r".to_owned()], (0, -1000))
            .await
            .unwrap(),
        ["r"]
    );
    let b = store
        .claim("b", &workflows, 10, (now(), now() + 60_000), 600_000)
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].fence.epoch, 2);

    // a, back from a pause, cannot record over b.
    let row = StepRow::new(0, "load", b"2".to_vec(), 1, 0, 0);
    let err = store
        .record_step_fenced("r", &row, &a[0].fence)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::LeaseLost { run, owner } if run == "r" && owner == "a"),
        "{err}"
    );
    let err = store
        .finish_run_fenced("r", &RunEnd::Completed(b"3".to_vec()), &a[0].fence)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    let failure = workflow_runtime::durable::FailureRow::new(0, 1, "declined");
    let err = store
        .record_failure_fenced("r", &failure, &a[0].fence)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    assert!(store.failures("r").await.unwrap().is_empty());
    store
        .record_step_fenced("r", &row, &b[0].fence)
        .await
        .unwrap();
    assert_eq!(store.steps("r").await.unwrap(), [row]);

    // b lets go: c takes it at once, not after b's minute.
    assert_eq!(store.release("b").await.unwrap(), 1);
    let c = store
        .claim_run("c", "r", (now(), now() + 60_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.fence.epoch, 3);
    assert!(
        store
            .finish_run_fenced("r", &RunEnd::Completed(b"3".to_vec()), &c.fence)
            .await
            .unwrap()
    );
    // Finished runs are claimed by no one.
    assert!(
        store
            .claim("d", &workflows, 10, (now(), now() + 60_000), 600_000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every filter the console offers reads a page through a listing index,
/// in its order, at 100 000 runs: no scan of the table, no sort of it.
/// (PostgreSQL weighs the indexes by their statistics: a filter a third
/// of the runs pass may read the time index and skip the rest, which
/// costs as little; each filter's own index is there when it is rare.)
#[tokio::test]
async fn a_page_of_runs_is_read_by_index_at_a_hundred_thousand_runs() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO workflow_runs (id, workflow, fingerprint, status, input, created_ms, updated_ms)
         SELECT 'run-' || i, CASE i % 3 WHEN 0 THEN 'Pay' WHEN 1 THEN 'Ship' ELSE 'Mail' END,
                'f', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END, '1', i / 2, i / 2
         FROM generate_series(1, 100000) AS i;
         ANALYZE workflow_runs;",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let cursor = Cursor {
        created_ms: 40_000,
        id: "run-80000".into(),
    };
    let filters = [
        RunFilter::new(),
        RunFilter::new().workflow("Pay"),
        RunFilter::new().status(RunStatus::Failed),
        RunFilter::new().workflow("Pay").status(RunStatus::Failed),
        RunFilter::new()
            .status(RunStatus::Failed)
            .after(cursor.clone()),
    ];
    for filter in filters {
        let plan = store.explain_runs(&filter).await.unwrap();
        assert!(
            plan.contains(" using workflow_runs_listing"),
            "{filter:?} should read a listing index:\n{plan}"
        );
        assert!(!plan.contains("Sort"), "{filter:?} sorts:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{filter:?} scans:\n{plan}");
        let rows = store.runs(&filter).await.unwrap();
        assert_eq!(rows.len(), 51, "{filter:?}");
    }
    let after = store
        .runs(&RunFilter::new().after(cursor).limit(1))
        .await
        .unwrap();
    assert_eq!(after[0].id, "run-79999");
}

/// A run's last step's row and its end are one transaction, fenced: an
/// owner whose lease another took writes neither, and the new owner
/// writes both.
#[tokio::test]
async fn a_last_steps_row_and_its_end_are_fenced_together() {
    use workflow_runtime::durable::{RunEnd, StepRow, StoreError};
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let store = PostgresStore::open(&pg.url()).await.unwrap();
    store
        .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
        .await
        .unwrap();
    let a = store
        .claim_run("a", "r", (now(), now() + 60_000))
        .await
        .unwrap()
        .expect("a claims the run");
    // a's lease runs out (a paused process), and b takes the run.
    store
        .renew("a", &["r".to_owned()], (0, -1000))
        .await
        .unwrap();
    let b = store
        .claim_run("b", "r", (now(), now() + 60_000))
        .await
        .unwrap()
        .expect("b claims the run once a's lease ran out");

    let (row, done) = (
        StepRow::new(0, "charged", b"2".to_vec(), 1, 1, 2),
        RunEnd::Completed(b"2".to_vec()),
    );
    let refused = store
        .finish_run_with("r", &done, Some(&row), Some(&a.fence))
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );
    assert!(store.steps("r").await.unwrap().is_empty(), "a wrote no row");
    assert_eq!(
        store.run("r").await.unwrap().unwrap().status,
        RunStatus::Running
    );

    assert!(
        store
            .finish_run_with("r", &done, Some(&row), Some(&b.fence))
            .await
            .unwrap()
    );
    assert_eq!(store.steps("r").await.unwrap(), vec![row]);
    assert_eq!(
        store.run("r").await.unwrap().unwrap().status,
        RunStatus::Completed
    );
}

/// A store call dropped while its transaction begins (a timeout around
/// it, a cancelled run) leaves no transaction open on its connection, so
/// the store's next write through that connection, one statement on its
/// own, is committed: another connection sees it. With sqlx 0.9.0 the
/// session stayed inside the dropped call's transaction, and the write
/// returned `Ok` but was not committed (sqlx's #4393): there this test
/// fails.
#[tokio::test]
async fn a_call_dropped_while_its_transaction_begins_leaves_the_next_write_committed() {
    use std::time::Duration;
    use workflow_runtime::durable::{FailureRow, Fence, StepRow};

    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    // One connection, so the next write takes the one the dropped call
    // had; handed out without a ping, which a stopped server would not
    // answer.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&url)
        .await
        .unwrap();
    let store = PostgresStore::from_pool(pool, &url).await.unwrap();
    store
        .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
        .await
        .unwrap();
    // The connection's way back to the pool (a ping) ends meanwhile.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    // The server process behind the store's one connection.
    let backend: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
         AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&other)
    .await
    .unwrap();
    let fence = Fence {
        owner: "a".to_owned(),
        epoch: 1,
    };
    let failure = FailureRow::new(0, 1, "boom");
    // A fenced write begins a transaction first. Its `BEGIN` is sent
    // while that process is stopped, so no answer can come back before
    // the call is polled no more; then the process runs the `BEGIN`, and
    // the call is dropped with its answer unread.
    let mut call = Box::pin(store.record_failure_fenced("r", &failure, &fence));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let stopped = Stopped::new(backend);
    for _ in 0..20 {
        assert!(
            call.as_mut().poll(&mut cx).is_pending(),
            "the call finished while its server was stopped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(stopped);
    let mut begun = false;
    for _ in 0..500 {
        if idle_in_transaction(&other).await.as_deref() == Some("BEGIN") {
            begun = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(begun, "the call's BEGIN never ran");
    drop(call);
    let step = StepRow::new(0, "load", b"2".to_vec(), 1, 1, 2);
    store.record_step("r", &step).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workflow_steps WHERE run_id = 'r'")
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the step's row was not committed");
}

/// A process stopped (`SIGSTOP`) until this is dropped, even by a failed
/// assertion: the throwaway server could not shut down around it.
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Self {
        signal(pid, "STOP");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

/// Sends `name` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: i32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// The last statement of the session idle in a transaction, if one is.
async fn idle_in_transaction(pool: &sqlx::PgPool) -> Option<String> {
    sqlx::query_scalar(
        "SELECT query FROM pg_stat_activity
         WHERE datname = current_database() AND state = 'idle in transaction'",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
}
