//! What every journal store must do, run on each: the in-memory store, the
//! SQLite store, and the PostgreSQL store (on a throwaway server started
//! from the machine's binaries).

use std::time::Duration;

use workflow_runtime::durable::{
    Backend, Cursor, FailureRow, Inserted, JournalMark, MemoryStore, PostgresStore, Redrive,
    Retention, RunEnd, RunFilter, RunRow, RunStatus, Sent, SqliteOptions, SqliteStore, StepRow,
    StoreError, Suspension,
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

async fn a_suspended_run_is_due_when_it_wakes_or_an_event_it_waits_for_comes(store: &dyn Backend) {
    store.insert_run(&run("s1", 1)).await.unwrap();
    store.insert_run(&run("s2", 2)).await.unwrap();
    let sleep = Suspension::new("sleep", Some(1_000), u32::MAX);
    assert!(store.suspend("s1", Some(&sleep), None).await.unwrap());
    let s1 = store.run("s1").await.unwrap().unwrap();
    assert_eq!(
        (s1.waiting.as_deref(), s1.wake_ms),
        (Some("sleep"), Some(1_000))
    );
    let due = |rows: Vec<RunRow>| -> Vec<String> { rows.into_iter().map(|r| r.id).collect() };
    assert_eq!(due(store.due(999, 10).await.unwrap()), ["s2"]);
    assert_eq!(due(store.due(1_000, 10).await.unwrap()), ["s1", "s2"]);
    // Of those, the suspended ones: what a waker drives.
    assert_eq!(due(store.woken(1_000, 10).await.unwrap()), ["s1"]);
    assert!(store.woken(999, 10).await.unwrap().is_empty());
    assert_eq!(store.next_wake().await.unwrap(), Some(1_000));

    // Waiting for an event, with no deadline: due only once one comes.
    let wait = Suspension::new("event:approval", None, 0);
    assert!(store.suspend("s2", Some(&wait), None).await.unwrap());
    assert_eq!(due(store.due(i64::MAX, 10).await.unwrap()), ["s1"]);
    // An event of another name wakes nothing.
    let other = store
        .send_event("s2", "other", b"1", None, 50)
        .await
        .unwrap();
    assert_eq!(other, Sent::Delivered(1));
    assert_eq!(due(store.due(i64::MAX, 10).await.unwrap()), ["s1"]);
    // Seen one event, it may suspend; an event it has not seen refuses.
    let stale = Suspension::new("event:approval", None, 0);
    assert!(!store.suspend("s2", Some(&stale), None).await.unwrap());
    let sent = store
        .send_event("s2", "approval", b"true", None, 60)
        .await
        .unwrap();
    assert_eq!(sent, Sent::Delivered(2));
    assert_eq!(due(store.due(60, 10).await.unwrap()), ["s2"]);
    // Awake: waiting for nothing.
    assert!(store.suspend("s2", None, None).await.unwrap());
    let s2 = store.run("s2").await.unwrap().unwrap();
    assert_eq!((s2.waiting, s2.events), (None, 2));
    let events = store.events("s2").await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.seq, e.name.as_str(), e.payload.as_slice()))
            .collect::<Vec<_>>(),
        [(1, "other", &b"1"[..]), (2, "approval", &b"true"[..])]
    );
    // An ended run takes no events and is not suspended.
    store
        .finish_run("s1", &RunEnd::Completed(b"1".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        store
            .send_event("s1", "approval", b"1", None, 70)
            .await
            .unwrap(),
        Sent::Finished(RunStatus::Completed)
    );
    assert!(!store.suspend("s1", Some(&sleep), None).await.unwrap());
    let err = store
        .send_event("nope", "x", b"1", None, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchRun(run) if run == "nope"),
        "{err}"
    );
}

async fn an_event_with_a_key_is_added_once(store: &dyn Backend) {
    store.insert_run(&run("k1", 1)).await.unwrap();
    let first = store
        .send_event("k1", "paid", b"1", Some("m-1"), 1)
        .await
        .unwrap();
    let again = store
        .send_event("k1", "paid", b"2", Some("m-1"), 2)
        .await
        .unwrap();
    let other = store
        .send_event("k1", "paid", b"3", Some("m-2"), 3)
        .await
        .unwrap();
    assert_eq!(
        (first, again, other),
        (Sent::Delivered(1), Sent::Duplicate(1), Sent::Delivered(2))
    );
    let events = store.events("k1").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].key.as_deref(), Some("m-1"));
    assert_eq!(events[0].payload, b"1");
}

async fn a_cancel_is_asked_of_a_running_run_once_and_wakes_it(store: &dyn Backend) {
    store.insert_run(&run("c1", 1)).await.unwrap();
    let wait = Suspension::new("event:approval", None, 0);
    assert!(store.suspend("c1", Some(&wait), None).await.unwrap());
    assert!(store.due(i64::MAX, 10).await.unwrap().is_empty());
    let status = store.request_cancel("c1", "ops", 5).await.unwrap();
    assert_eq!(status, RunStatus::Running);
    assert_eq!(
        store.request_cancel("c1", "later", 6).await.unwrap(),
        RunStatus::Running
    );
    let c1 = store.run("c1").await.unwrap().unwrap();
    assert_eq!(c1.cancel.as_deref(), Some("ops"), "the first reason stands");
    assert_eq!(
        store.due(5, 10).await.unwrap().len(),
        1,
        "woken to be undone"
    );
    // Asked to stop, it is not suspended again, unless it is being undone.
    let sleep = Suspension::new("sleep", Some(100), u32::MAX);
    assert!(!store.suspend("c1", Some(&sleep), None).await.unwrap());
    let undoing = sleep.clone().undoing(true);
    assert!(store.suspend("c1", Some(&undoing), None).await.unwrap());
    assert!(store.suspend("c1", None, None).await.unwrap());
    assert_eq!(
        store
            .cancelling(&["c1".to_owned(), "nope".to_owned()])
            .await
            .unwrap(),
        ["c1"]
    );
    store
        .finish_run(
            "c1",
            &RunEnd::Cancelled {
                reason: "ops".to_owned(),
                step: Some("wait".to_owned()),
            },
        )
        .await
        .unwrap();
    let c1 = store.run("c1").await.unwrap().unwrap();
    assert_eq!(
        (c1.status, c1.error.as_deref()),
        (RunStatus::Cancelled, Some("ops"))
    );
    assert_eq!(
        store.request_cancel("c1", "again", 7).await.unwrap(),
        RunStatus::Cancelled
    );
    assert!(
        store
            .cancelling(&["c1".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    let err = store.request_cancel("nope", "x", 0).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchRun(run) if run == "nope"),
        "{err}"
    );
}

async fn a_failed_run_is_redriven_with_its_journal_cut_back(store: &dyn Backend) {
    store.insert_run(&run("f1", 1)).await.unwrap();
    let kept = StepRow::new(0, "load", b"1".to_vec(), 1, 1, 2);
    let undone = StepRow::new(1, "reserve", b"2".to_vec(), 1, 2, 3);
    let compensated = StepRow::new(1_000_001, "reserve", Vec::new(), 1, 4, 5);
    let failed_at = StepRow::new(2_000_002, "When charge", b"declined".to_vec(), 1, 3, 3);
    for row in [&kept, &undone, &compensated, &failed_at] {
        store.record_step("f1", row).await.unwrap();
    }
    store
        .record_failure("f1", &FailureRow::new(2, 3, "declined"))
        .await
        .unwrap();
    store
        .record_failure("f1", &FailureRow::new(0, 1, "slow"))
        .await
        .unwrap();
    let redrive = Redrive::new(
        1,
        vec![1, 1_000_001, 2_000_002],
        vec![StepRow::new(
            4_000_000,
            "charge",
            b"declined".to_vec(),
            1,
            5,
            6,
        )],
    );
    // Only a failed run.
    assert!(!store.redrive("f1", &redrive).await.unwrap());
    store
        .finish_run(
            "f1",
            &RunEnd::Failed {
                error: "declined".to_owned(),
                step: Some("charge".to_owned()),
            },
        )
        .await
        .unwrap();
    assert!(store.redrive("f1", &redrive).await.unwrap());
    let f1 = store.run("f1").await.unwrap().unwrap();
    assert_eq!((f1.status, f1.error), (RunStatus::Running, None));
    let rows = store.steps("f1").await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], kept);
    assert_eq!(rows[1].mark(), Some(JournalMark::Redriven(0)));
    let failures = store.failures("f1").await.unwrap();
    assert_eq!(failures.iter().map(|f| f.index).collect::<Vec<_>>(), [0]);
}

async fn a_child_that_ends_wakes_its_waiting_parent(store: &dyn Backend) {
    store.insert_run(&run("p1", 1)).await.unwrap();
    let mut child = run("p1/0/0", 2);
    child.parent = Some("p1".to_owned());
    (child.waiting, child.wake_ms) = (Some("start".to_owned()), Some(2));
    assert_eq!(store.insert_run(&child).await.unwrap(), Inserted::New);
    assert_eq!(store.run("p1/0/0").await.unwrap(), Some(child));
    let wait = Suspension::new("child:p1/0/0", None, u32::MAX);
    assert!(store.suspend("p1", Some(&wait), None).await.unwrap());
    let due = |rows: Vec<RunRow>| -> Vec<String> { rows.into_iter().map(|r| r.id).collect() };
    assert_eq!(due(store.due(i64::MAX, 10).await.unwrap()), ["p1/0/0"]);
    store
        .finish_run("p1/0/0", &RunEnd::Completed(b"1".to_vec()))
        .await
        .unwrap();
    // Due now, by the store's clock or the caller's.
    assert_eq!(due(store.due(i64::MAX, 10).await.unwrap()), ["p1"]);
}

/// The ids `filter` lists, in order.
async fn listed(store: &dyn Backend, filter: &RunFilter) -> Vec<String> {
    let rows = store.runs(filter).await.unwrap();
    rows.into_iter().map(|r| r.id).collect()
}

async fn runs_are_listed_newest_first_by_filter_and_by_key(store: &dyn Backend) {
    // (id, workflow, created, status)
    let runs = [
        ("pay-1", "Pay", 10, RunStatus::Completed),
        ("pay-2", "Pay", 20, RunStatus::Failed),
        ("ship-1", "Ship", 20, RunStatus::Failed),
        ("pay-3", "Pay", 30, RunStatus::Running),
        ("a_b-1", "Ship", 40, RunStatus::Completed),
        ("axb-1", "Ship", 50, RunStatus::Completed),
    ];
    for (id, workflow, created, status) in runs {
        let mut row = run(id, created);
        row.workflow = workflow.to_owned();
        store.insert_run(&row).await.unwrap();
        let end = match status {
            RunStatus::Completed => Some(RunEnd::Completed(b"1".to_vec())),
            RunStatus::Failed => Some(RunEnd::Failed {
                error: "no".into(),
                step: None,
            }),
            _ => None,
        };
        if let Some(end) = end {
            store.finish_run(id, &end).await.unwrap();
        }
    }
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Newest first; a tie in start time goes by id, descending.
    assert_eq!(
        listed(store, &RunFilter::new()).await,
        ids(&["axb-1", "a_b-1", "pay-3", "ship-1", "pay-2", "pay-1"])
    );
    assert_eq!(
        listed(store, &RunFilter::new().workflow("Pay")).await,
        ids(&["pay-3", "pay-2", "pay-1"])
    );
    assert_eq!(
        listed(store, &RunFilter::new().status(RunStatus::Failed)).await,
        ids(&["ship-1", "pay-2"])
    );
    assert_eq!(
        listed(
            store,
            &RunFilter::new()
                .workflow("Ship")
                .status(RunStatus::Completed)
        )
        .await,
        ids(&["axb-1", "a_b-1"])
    );
    assert_eq!(
        listed(store, &RunFilter::new().since_ms(20).until_ms(40)).await,
        ids(&["pay-3", "ship-1", "pay-2"])
    );
    // A prefix is text, not a pattern: `_` matches only itself.
    assert_eq!(
        listed(store, &RunFilter::new().id_prefix("a_b")).await,
        ids(&["a_b-1"])
    );
    assert_eq!(
        listed(store, &RunFilter::new().id_prefix("pay-")).await,
        ids(&["pay-3", "pay-2", "pay-1"])
    );
    // A page holds one run more than asked: the caller's sign of a next.
    assert_eq!(
        listed(store, &RunFilter::new().limit(2)).await,
        ids(&["axb-1", "a_b-1", "pay-3"])
    );
    // After a key, whatever was started since: the tie at 20 splits by id.
    let after = Cursor {
        created_ms: 20,
        id: "ship-1".into(),
    };
    store.insert_run(&run("new-1", 60)).await.unwrap();
    assert_eq!(
        listed(store, &RunFilter::new().after(after.clone())).await,
        ids(&["pay-2", "pay-1"])
    );
    assert_eq!(
        listed(store, &RunFilter::new().workflow("Pay").after(after)).await,
        ids(&["pay-2", "pay-1"])
    );
}

async fn a_purge_removes_ended_runs_past_the_policy_and_nothing_else(store: &dyn Backend) {
    let day = 24 * 3600 * 1000;
    // (id, workflow, created, how it ended)
    let runs: [(&str, &str, i64, Option<RunEnd>); 8] = [
        ("old-done", "Pay", 1, Some(RunEnd::Completed(b"1".to_vec()))),
        (
            "old-failed",
            "Pay",
            2,
            Some(RunEnd::Failed {
                error: "no".into(),
                step: None,
            }),
        ),
        (
            "old-cancelled",
            "Ship",
            3,
            Some(RunEnd::Cancelled {
                reason: "asked".into(),
                step: None,
            }),
        ),
        ("old-running", "Pay", 4, None),
        ("old-stuck", "Pay", 5, Some(RunEnd::Stuck("why".into()))),
        (
            "old-incompatible",
            "Pay",
            6,
            Some(RunEnd::Incompatible("changed".into())),
        ),
        (
            "new-done-1",
            "Pay",
            10 * day,
            Some(RunEnd::Completed(b"1".to_vec())),
        ),
        (
            "new-done-2",
            "Pay",
            10 * day + 1,
            Some(RunEnd::Completed(b"1".to_vec())),
        ),
    ];
    for (id, workflow, created, end) in &runs {
        let mut row = run(id, *created);
        row.workflow = (*workflow).to_owned();
        store.insert_run(&row).await.unwrap();
        store
            .record_step(id, &StepRow::new(0, "load", b"1".to_vec(), 1, 0, 0))
            .await
            .unwrap();
        store
            .record_failure(id, &FailureRow::new(1, 1, "flaky"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .send_event(id, "poke", b"1", None, *created)
                .await
                .unwrap(),
            Sent::Delivered(_)
        ));
        if let Some(end) = end {
            store.finish_run(id, end).await.unwrap();
        }
    }
    // The stores stamp an ending with their own clock: the "old" runs are
    // aged by asking as of a time far ahead, and the "new" ones by a
    // policy that keeps them.
    let now = store.run("new-done-2").await.unwrap().unwrap().updated_ms;
    let keep_a_day = Retention::new().keep_for(Duration::from_secs(24 * 3600));
    // As of now nothing ended a day ago.
    assert_eq!(store.purge(&keep_a_day.purge_at(now)).await.unwrap(), 0);
    // Two days on: every ended run goes, in batches; running and parked stay.
    let later = now + 2 * day;
    let in_twos = keep_a_day.clone().batch(2);
    let mut removed = 0;
    for _ in 0..10 {
        let batch = store.purge(&in_twos.purge_at(later)).await.unwrap();
        assert!(batch <= 2, "a batch of {batch}");
        removed += batch;
        if batch == 0 {
            break;
        }
    }
    assert_eq!(removed, 5);
    for gone in [
        "old-done",
        "old-failed",
        "old-cancelled",
        "new-done-1",
        "new-done-2",
    ] {
        assert_eq!(store.run(gone).await.unwrap(), None, "{gone}");
        assert!(
            store.steps(gone).await.unwrap().is_empty(),
            "{gone}'s steps"
        );
    }
    for gone in ["old-done", "old-failed", "new-done-2"] {
        assert!(
            store.failures(gone).await.unwrap().is_empty(),
            "{gone}'s failures"
        );
        assert!(
            store.events(gone).await.unwrap().is_empty(),
            "{gone}'s events"
        );
    }
    for kept in ["old-running", "old-stuck", "old-incompatible"] {
        assert!(store.run(kept).await.unwrap().is_some(), "{kept}");
        assert_eq!(store.steps(kept).await.unwrap().len(), 1, "{kept}'s steps");
        assert_eq!(
            store.failures(kept).await.unwrap().len(),
            1,
            "{kept}'s failures"
        );
    }
    assert_eq!(store.events("old-running").await.unwrap().len(), 1);
}

async fn a_purge_keeps_an_ended_child_while_its_parent_runs(store: &dyn Backend) {
    let mut parent = run("parent", 1);
    parent.workflow = "Order".into();
    store.insert_run(&parent).await.unwrap();
    for (id, parent) in [("parent/1/0", Some("parent")), ("orphan", None)] {
        let mut child = run(id, 2);
        child.parent = parent.map(str::to_owned);
        store.insert_run(&child).await.unwrap();
        store
            .finish_run(id, &RunEnd::Completed(b"7".to_vec()))
            .await
            .unwrap();
    }
    let everything = Retention::new().keep_at_most(0).purge_at(0);
    // The parent has not read its child's result yet: the child stays.
    assert_eq!(store.purge(&everything).await.unwrap(), 1);
    assert!(store.run("parent/1/0").await.unwrap().is_some());
    assert_eq!(store.run("orphan").await.unwrap(), None);
    // Once the parent ended, both go.
    store
        .finish_run("parent", &RunEnd::Completed(b"7".to_vec()))
        .await
        .unwrap();
    assert_eq!(store.purge(&everything).await.unwrap(), 2);
    assert!(listed(store, &RunFilter::new()).await.is_empty());
}

async fn a_purge_keeps_the_newest_runs_of_each_workflow(store: &dyn Backend) {
    for (i, workflow) in ["Pay", "Pay", "Pay", "Ship", "Ship", "Pay"]
        .iter()
        .enumerate()
    {
        let id = format!("{workflow}-{i}");
        let mut row = run(&id, i as i64);
        row.workflow = (*workflow).to_owned();
        store.insert_run(&row).await.unwrap();
        if i != 5 {
            store
                .finish_run(&id, &RunEnd::Completed(b"1".to_vec()))
                .await
                .unwrap();
        }
    }
    let keep_one = Retention::new().keep_at_most(1).purge_at(0);
    assert_eq!(store.purge(&keep_one).await.unwrap(), 3);
    let left = listed(store, &RunFilter::new()).await;
    // Pay-5 is running: it is kept and not counted among the ended.
    assert_eq!(left, vec!["Pay-5", "Ship-4", "Pay-2"]);
}

/// A run's last step's row written with its end (`finish_run_with`):
/// both land, a row there already is as good, an ended run is not ended
/// again, and a run the store does not have is an error naming it.
async fn a_last_steps_row_is_written_with_its_runs_end(store: &dyn Backend) {
    let last = StepRow::new(2, "shipped", b"7".to_vec(), 1, 5, 6);
    let done = RunEnd::Completed(b"7".to_vec());
    store.insert_run(&run("l1", 1)).await.unwrap();
    assert!(
        store
            .finish_run_with("l1", &done, Some(&last), None)
            .await
            .unwrap()
    );
    assert_eq!(store.steps("l1").await.unwrap(), vec![last.clone()]);
    let row = store.run("l1").await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.output.as_deref()),
        (RunStatus::Completed, Some(&b"7"[..]))
    );
    // Driven again after a crash that came after that write: ended once.
    assert!(
        !store
            .finish_run_with("l1", &done, Some(&last), None)
            .await
            .unwrap()
    );
    assert_eq!(store.steps("l1").await.unwrap(), vec![last.clone()]);

    // The row there already (written on its own by an earlier drive).
    store.insert_run(&run("l2", 1)).await.unwrap();
    store.record_step("l2", &last).await.unwrap();
    let late = StepRow::new(2, "shipped", b"8".to_vec(), 2, 7, 8);
    assert!(
        store
            .finish_run_with("l2", &done, Some(&late), None)
            .await
            .unwrap()
    );
    assert_eq!(store.steps("l2").await.unwrap(), vec![last.clone()]);
    assert_eq!(
        store.run("l2").await.unwrap().unwrap().status,
        RunStatus::Completed
    );

    // No row: as `finish_run`.
    store.insert_run(&run("l3", 1)).await.unwrap();
    assert!(
        store
            .finish_run_with("l3", &done, None, None)
            .await
            .unwrap()
    );
    assert!(store.steps("l3").await.unwrap().is_empty());

    let err = store
        .finish_run_with("gone", &done, Some(&last), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NoSuchRun(run) if run == "gone"),
        "{err}"
    );
}

/// Every rule, each on a fresh store from `open`.
async fn conformance<S: Backend, F: Future<Output = S>>(open: impl Fn() -> F) {
    inserting_a_run_twice_keeps_the_first(&open().await).await;
    steps_are_journaled_once_and_read_in_order(&open().await).await;
    payloads_round_trip_as_text_and_bytes(&open().await).await;
    a_run_ends_once(&open().await).await;
    a_last_steps_row_is_written_with_its_runs_end(&open().await).await;
    running_runs_are_listed_oldest_first_and_counted(&open().await).await;
    failures_are_kept_per_step_the_latest_count_replacing_the_last(&open().await).await;
    a_suspended_run_is_due_when_it_wakes_or_an_event_it_waits_for_comes(&open().await).await;
    an_event_with_a_key_is_added_once(&open().await).await;
    a_cancel_is_asked_of_a_running_run_once_and_wakes_it(&open().await).await;
    a_failed_run_is_redriven_with_its_journal_cut_back(&open().await).await;
    a_child_that_ends_wakes_its_waiting_parent(&open().await).await;
    runs_are_listed_newest_first_by_filter_and_by_key(&open().await).await;
    a_purge_removes_ended_runs_past_the_policy_and_nothing_else(&open().await).await;
    a_purge_keeps_the_newest_runs_of_each_workflow(&open().await).await;
    a_purge_keeps_an_ended_child_while_its_parent_runs(&open().await).await;
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
