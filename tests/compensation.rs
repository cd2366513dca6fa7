//! Compensation (sagas) in the fluent chain: when a step fails for good,
//! the steps that completed are undone, latest first, each given its own
//! output, and each undo is a `Compensate` step with behaviors of its own.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workflow_runtime::assert_steps;
use workflow_runtime::behavior::Retry;
use workflow_runtime::prelude::*;
use workflow_runtime::{WorkflowError, WorkflowOptions};

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// What the compensations did, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn undo(
    log: &Log,
    what: &'static str,
) -> impl Fn(String) -> std::future::Ready<Result<(), Refused>> + use<> {
    let log = log.clone();
    move |value: String| {
        log.lock().unwrap().push(format!("{what} {value}"));
        std::future::ready(Ok(()))
    }
}

#[tokio::test]
async fn when_step_three_of_four_fails_steps_two_then_one_are_undone_with_their_outputs() {
    let log = Log::default();
    let ctx = WorkflowContext::new("PlaceOrder");
    let err = Workflow::given(&ctx, "an order", || "order-7".to_owned())
        .when("reserve stock", |order| format!("reservation for {order}"))
        .compensate(undo(&log, "release"))
        .when_async("charge card", |reservation| async move {
            format!("receipt for {}", reservation.len())
        })
        .compensate(undo(&log, "refund"))
        .try_when("ship", |_receipt| Err::<String, _>(Refused("no carrier")))
        .compensate(undo(&log, "recall"))
        .when("notify", |shipment| shipment)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "PlaceOrder", step When "ship" failed: refused: no carrier"#
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["refund receipt for 23", "release reservation for order-7"]
    );
    assert_steps!(ctx, [
        Given "an order" passed,
        When "reserve stock" passed,
        When "charge card" passed,
        When "ship" failed("refused: no carrier"),
        When "notify" skipped,
        Compensate "charge card" passed,
        Compensate "reserve stock" passed,
    ]);
}

#[tokio::test]
async fn a_run_that_passes_undoes_nothing() {
    let log = Log::default();
    let ctx = WorkflowContext::new("PlaceOrder");
    let out = Workflow::given(&ctx, "an order", || "o".to_owned())
        .when("reserve stock", |o| o)
        .compensate(undo(&log, "release"))
        .await
        .unwrap();
    assert_eq!(out, "o");
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(ctx.steps().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_compensation_is_retried_then_fails_the_run_and_the_others_still_run() {
    let log = Log::default();
    let tries = Arc::new(AtomicU32::new(0));
    let refund = {
        let tries = tries.clone();
        move |_receipt: String| {
            tries.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<(), _>(Refused("bank down")))
        }
    };
    let ctx = WorkflowContext::new("PlaceOrder");
    let err = Workflow::given(&ctx, "an order", || "o".to_owned())
        .when("reserve stock", |o| o)
        .compensate(undo(&log, "release"))
        .when("charge card", |o| o)
        .compensate(refund)
        .compensation_title("refund")
        .compensation_with(Retry::max_attempts(3).backoff(Duration::from_millis(100)))
        .then("shipped", |_| false)
        .await
        .unwrap_err();
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    // The refund's failure does not keep the stock reserved.
    assert_eq!(*log.lock().unwrap(), ["release o"]);
    let WorkflowError::CompensationFailed { cause, failure } = &err else {
        panic!("expected a failed compensation, got {err}");
    };
    assert!(matches!(**cause, WorkflowError::Assertion { .. }));
    assert_eq!(failure.step().kind, StepKind::Compensate);
    assert_eq!(failure.step().title, "refund");
    assert_eq!(err.step().title, "shipped");
    assert_eq!(
        err.to_string(),
        r#"workflow "PlaceOrder", step Then "shipped" failed: assertion did not hold; then workflow "PlaceOrder", step Compensate "refund" failed: refused: bank down"#
    );
    let refund = ctx
        .steps()
        .into_iter()
        .find(|s| s.title == "refund")
        .unwrap();
    assert_eq!(refund.attempts, 3);
}

#[tokio::test]
async fn a_cancelled_run_is_not_compensated() {
    let log = Log::default();
    let ctx = WorkflowContext::new("PlaceOrder");
    let err = Workflow::given(&ctx, "an order", || "o".to_owned())
        .when("reserve stock", |o| o)
        .compensate(undo(&log, "release"))
        .when("cancelled", |o| {
            ctx.cancel();
            o
        })
        .when("ship", |o| o)
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Cancelled { .. }), "{err}");
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_soft_failure_still_fails_the_run_and_undoes_every_completed_step() {
    let log = Log::default();
    let ctx = WorkflowContext::builder("PlaceOrder")
        .options(WorkflowOptions::default().continue_on_error(true))
        .build();
    let err = Workflow::given(&ctx, "an order", || "o".to_owned())
        .when("reserve stock", |o| o)
        .compensate(undo(&log, "release"))
        .then("in stock", |_| false)
        .when("charge card", |o| format!("{o} paid"))
        .compensate(undo(&log, "refund"))
        .await
        .unwrap_err();
    assert!(matches!(err, WorkflowError::Assertion { .. }), "{err}");
    assert_eq!(*log.lock().unwrap(), ["refund o paid", "release o"]);
}

#[tokio::test]
async fn a_compensation_that_panics_is_a_failed_compensation() {
    let ctx = WorkflowContext::new("PlaceOrder");
    let err = Workflow::given(&ctx, "an order", || 1u32)
        .compensate(|_| async { panic!("refund service crashed") as Result<(), Refused> })
        .then("never", |_| false)
        .await
        .unwrap_err();
    let WorkflowError::CompensationFailed { failure, .. } = &err else {
        panic!("expected a failed compensation, got {err}");
    };
    assert!(
        matches!(**failure, WorkflowError::Panicked { .. }),
        "{failure}"
    );
}

// ---- #[workflow] with #[compensation] methods ---------------------------

mod saga {
    use std::sync::{Arc, Mutex};

    use serde::{Deserialize, Serialize};
    use workflow_runtime::prelude::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Order {
        pub id: u32,
        pub cents: u64,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Reservation {
        pub order: Order,
        pub slot: u32,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Receipt {
        pub reservation: Reservation,
        pub charge: String,
    }

    #[derive(Debug)]
    pub struct Refused(pub &'static str);

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "refused: {}", self.0)
        }
    }

    impl std::error::Error for Refused {}

    /// Places an order across stock, payments and shipping; what completed
    /// is undone when a later step fails.
    #[derive(Default)]
    pub struct PlaceOrder {
        pub log: Arc<Mutex<Vec<String>>>,
        pub ship_fails: bool,
        pub refund_fails: bool,
    }

    impl PlaceOrder {
        fn note(&self, what: String) {
            self.log.lock().unwrap().push(what);
        }
    }

    #[workflow]
    impl PlaceOrder {
        #[step(given = "an order")]
        fn order(&self, order: Order) -> Order {
            order
        }

        #[step(when = "reserve stock", compensate = release_stock)]
        async fn reserve(&self, order: Order) -> Result<Reservation, Refused> {
            self.note(format!("reserve {}", order.id));
            Ok(Reservation { order, slot: 7 })
        }

        #[step(when = "charge card", compensate = refund)]
        fn charge(&self, reservation: Reservation) -> Receipt {
            self.note(format!("charge {}", reservation.order.cents));
            Receipt {
                charge: format!("ch-{}", reservation.order.id),
                reservation,
            }
        }

        #[step(when = "ship")]
        async fn ship(&self, receipt: Receipt) -> Result<String, Refused> {
            if self.ship_fails {
                return Err(Refused("no carrier"));
            }
            Ok(format!("parcel for {}", receipt.charge))
        }

        #[compensation]
        async fn release_stock(&self, reservation: Reservation) -> Result<(), Refused> {
            self.note(format!("release slot {}", reservation.slot));
            Ok(())
        }

        #[compensation(title = "refund card", retry(max_attempts = 2))]
        fn refund(&self, receipt: Receipt) -> Result<(), Refused> {
            self.note(format!("refund {}", receipt.charge));
            if self.refund_fails {
                return Err(Refused("bank down"));
            }
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_workflows_compensations_undo_what_completed_latest_first() {
    use saga::{Order, PlaceOrder};
    let place = PlaceOrder {
        ship_fails: true,
        ..PlaceOrder::default()
    };
    let ctx = PlaceOrder::context().build();
    let err = place
        .run(&ctx, Order { id: 4, cents: 990 })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "PlaceOrder", step When "ship" failed: refused: no carrier"#
    );
    assert_eq!(
        *place.log.lock().unwrap(),
        ["reserve 4", "charge 990", "refund ch-4", "release slot 7"]
    );
    let compensations: Vec<_> = ctx
        .steps()
        .into_iter()
        .filter(|s| s.kind == StepKind::Compensate)
        .map(|s| s.title.into_owned())
        .collect();
    assert_eq!(compensations, ["refund card", "release stock"]);

    let fine = PlaceOrder::default();
    let ctx = PlaceOrder::context().build();
    let parcel = fine.run(&ctx, Order { id: 5, cents: 1 }).await.unwrap();
    assert_eq!(parcel, "parcel for ch-5");
    assert_eq!(*fine.log.lock().unwrap(), ["reserve 5", "charge 1"]);
}

#[tokio::test]
async fn a_workflow_compensation_is_retried_with_its_own_behaviors_then_fails_the_run() {
    use saga::{Order, PlaceOrder};
    let place = PlaceOrder {
        ship_fails: true,
        refund_fails: true,
        ..PlaceOrder::default()
    };
    let ctx = PlaceOrder::context().build();
    let err = place
        .run(&ctx, Order { id: 6, cents: 5 })
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkflowError::CompensationFailed { .. }),
        "{err}"
    );
    assert_eq!(
        *place.log.lock().unwrap(),
        [
            "reserve 6",
            "charge 5",
            "refund ch-6",
            "refund ch-6",
            "release slot 7"
        ]
    );
}

#[test]
#[should_panic(expected = "<--")]
fn assert_steps_fails_with_the_table_marking_the_difference() {
    let ctx = WorkflowContext::new("PlaceOrder");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _ = rt.block_on(Workflow::given(&ctx, "an order", || 1).into_future());
    assert_steps!(ctx, [Given "an order" failed]);
}
