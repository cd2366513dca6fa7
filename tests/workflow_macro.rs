//! `#[workflow]` and `#[step]` at run time: order, types, records, errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use workflow_runtime::StepMeta;
use workflow_runtime::prelude::*;

#[derive(Clone, Debug, PartialEq)]
enum Status {
    Pending,
    Paid,
}

#[derive(Clone, Debug, PartialEq)]
struct Order {
    id: u32,
    cents: u64,
    status: Status,
}

#[derive(Debug)]
struct PaymentError(String);

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payment refused: {}", self.0)
    }
}

impl std::error::Error for PaymentError {}

trait PaymentGateway: Send + Sync {
    fn charge(&self, order: &Order) -> Result<String, PaymentError>;
}

trait OrderRepository: Send + Sync {
    fn update(&self, order: &Order);
}

struct LimitGateway {
    limit: u64,
}

impl PaymentGateway for LimitGateway {
    fn charge(&self, order: &Order) -> Result<String, PaymentError> {
        if order.cents <= self.limit {
            Ok(format!("tx-{}", order.id))
        } else {
            Err(PaymentError(format!("{} over limit", order.cents)))
        }
    }
}

#[derive(Default)]
struct MemoryRepo {
    saved: Mutex<Vec<Order>>,
}

impl OrderRepository for MemoryRepo {
    fn update(&self, order: &Order) {
        self.saved.lock().unwrap().push(order.clone());
    }
}

struct PendingOrderProcessor {
    orders: Arc<dyn OrderRepository>,
    payment: Arc<dyn PaymentGateway>,
}

type SameOrder = Order;

/// Processes orders awaiting payment.
///
/// Runs every 30 seconds.
#[workflow]
impl PendingOrderProcessor {
    #[step(given = "pending order")]
    fn pending(&self, order: Order) -> Order {
        order
    }

    #[step(when = "process payment")]
    async fn charge(&self, mut order: Order) -> Result<Order, PaymentError> {
        tokio::task::yield_now().await;
        self.payment.charge(&order)?;
        order.status = Status::Paid;
        Ok(order)
    }

    // A type alias of the same type passes the pipeline check.
    #[step(when = "update status")]
    async fn save(&self, order: SameOrder) -> Order {
        self.orders.update(&order);
        order
    }

    #[step(then = "processed")]
    fn processed(&self, order: &Order) -> bool {
        order.status == Status::Paid
    }

    /// Not a step: left alone.
    #[allow(dead_code)]
    fn helper(&self) -> u8 {
        7
    }
}

fn processor(limit: u64) -> (PendingOrderProcessor, Arc<MemoryRepo>) {
    let repo = Arc::new(MemoryRepo::default());
    let processor = PendingOrderProcessor {
        orders: repo.clone(),
        payment: Arc::new(LimitGateway { limit }),
    };
    (processor, repo)
}

fn order(cents: u64) -> Order {
    Order {
        id: 1,
        cents,
        status: Status::Pending,
    }
}

#[tokio::test]
async fn a_workflow_runs_its_steps_in_declaration_order() {
    let (workflow, repo) = processor(1_000);
    let ctx = PendingOrderProcessor::context().build();
    let out = workflow.run(&ctx, order(500)).await.unwrap();
    assert_eq!(out.status, Status::Paid);
    assert_eq!(repo.saved.lock().unwrap().len(), 1);
    let steps: Vec<_> = ctx.steps().into_iter().map(|s| (s.kind, s.title)).collect();
    assert_eq!(
        steps,
        [
            (StepKind::Given, "pending order".into()),
            (StepKind::When, "process payment".into()),
            (StepKind::When, "update status".into()),
            (StepKind::Then, "processed".into()),
        ]
    );
    assert!(ctx.all_passed());
}

#[tokio::test]
async fn a_failing_step_names_itself_and_keeps_its_error() {
    let (workflow, repo) = processor(100);
    let ctx = PendingOrderProcessor::context().build();
    let err = workflow.run(&ctx, order(500)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "PendingOrderProcessor", step When "process payment" failed: payment refused: 500 over limit"#
    );
    match &err {
        WorkflowError::Failed { error, .. } => {
            assert!(error.downcast_ref::<PaymentError>().is_some())
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(repo.saved.lock().unwrap().is_empty());
    assert_eq!(ctx.steps().len(), 4);
    assert!(matches!(ctx.steps()[2].outcome, StepOutcome::Skipped));
    assert!(matches!(ctx.steps()[3].outcome, StepOutcome::Skipped));
}

#[test]
fn the_definition_describes_the_workflow() {
    assert_eq!(PendingOrderProcessor::NAME, "PendingOrderProcessor");
    assert_eq!(
        PendingOrderProcessor::DESCRIPTION,
        Some("Processes orders awaiting payment.")
    );
    assert_eq!(
        PendingOrderProcessor::STEPS[1],
        StepMeta::new(StepKind::When, "process payment", "charge")
            .input("Order")
            .output("Order")
            .is_async(true)
            .fallible(true)
            // `Order` is `Clone`: a type-wide retry may run it again.
            .replayable(true)
            .produces::<Order>()
    );
    assert_eq!(
        PendingOrderProcessor::STEPS[1].output_type(),
        Some(std::any::TypeId::of::<Order>())
    );
    // An assertion hands its value on: it makes none of its own.
    assert_eq!(PendingOrderProcessor::STEPS[3].output_type(), None);
    assert_eq!(PendingOrderProcessor::STEPS[3].input, "Order");
    assert_eq!(PendingOrderProcessor::STEPS[3].output, "Order");
}

#[test]
fn the_definition_renders_as_mermaid() {
    assert_eq!(
        PendingOrderProcessor::mermaid(),
        r#"flowchart TD
    start(["PendingOrderProcessor"])
    s0["Given: pending order"]
    s1["When: process payment"]
    s2["When: update status"]
    s3{{"Then: processed"}}
    start --> s0
    s0 -->|Order| s1
    s1 -->|Order| s2
    s2 -->|Order| s3
"#
    );
}

struct Options;

#[workflow(name = "Renamed", description = "Explicit options win", crate = workflow_runtime)]
impl Options {
    /// A first `when` step with no input: the workflow's input is `()`.
    #[step]
    fn load_numbers() -> Vec<u32> {
        vec![1, 2, 3]
    }

    #[step(and = "summed")]
    fn sum(&self, numbers: Vec<u32>) -> u32 {
        numbers.iter().sum()
    }

    #[step(but = "halved")]
    fn halve(&self, n: u32) -> Result<u32, std::num::TryFromIntError> {
        u8::try_from(n / 2).map(u32::from)
    }

    #[step(finally)]
    fn clean_up(&self, outcome: Result<&u32, &WorkflowError>) {
        assert_eq!(outcome.ok(), Some(&3));
    }
}

#[tokio::test]
async fn options_default_titles_and_finally() {
    assert_eq!(<Options as WorkflowDefinition>::NAME, "Renamed");
    assert_eq!(Options::DESCRIPTION, Some("Explicit options win"));
    let ctx = Options::context().build();
    assert_eq!(Options.run(&ctx, ()).await.unwrap(), 3);
    let titles: Vec<_> = ctx.steps().into_iter().map(|s| (s.kind, s.title)).collect();
    assert_eq!(
        titles,
        [
            (StepKind::When, "load numbers".into()),
            (StepKind::And, "summed".into()),
            (StepKind::But, "halved".into()),
            (StepKind::Finally, "clean up".into()),
        ]
    );
}

// ---- #[step] on free functions ---------------------------------------

#[step(when = "process payment")]
async fn process_payment(order: Order) -> Result<Order, PaymentError> {
    if order.cents > 1_000 {
        return Err(PaymentError("too much".into()));
    }
    Ok(Order {
        status: Status::Paid,
        ..order
    })
}

#[step]
fn apply_discount(order: Order, percent: u64) -> Order {
    Order {
        cents: order.cents * (100 - percent) / 100,
        ..order
    }
}

#[tokio::test]
async fn free_steps_stay_plain_functions_outside_a_context() {
    let paid = process_payment(order(10)).await.unwrap();
    assert_eq!(paid.status, Status::Paid);
    assert_eq!(apply_discount(order(100), 10).cents, 90);
}

#[tokio::test]
async fn free_steps_record_themselves_in_the_active_context() {
    let ctx = WorkflowContext::builder("Free")
        .options(WorkflowOptions::default().capture_io(true))
        .build();
    let result = ctx
        .scope(async {
            let discounted = apply_discount(order(2_000), 25);
            process_payment(discounted).await
        })
        .await;
    assert!(result.is_err());
    let steps = ctx.steps();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].title, "apply discount");
    assert_eq!(
        steps[0].input.as_deref(),
        Some("Order { id: 1, cents: 2000, status: Pending }, 25")
    );
    assert_eq!(
        steps[0].output.as_deref(),
        Some("Order { id: 1, cents: 1500, status: Pending }")
    );
    assert_eq!(steps[1].title, "process payment");
    assert_eq!(
        steps[1].outcome.to_string(),
        "failed: payment refused: too much"
    );
}

/// Each record as (title, the title of the step that called it).
fn tree(ctx: &WorkflowContext) -> Vec<(String, Option<String>)> {
    let steps = ctx.steps();
    let title_of = |id| {
        steps
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.title.to_string())
            .expect("a parent is recorded in the same context")
    };
    steps
        .iter()
        .map(|s| (s.title.to_string(), s.parent.map(title_of)))
        .collect()
}

fn node(title: &str, parent: Option<&str>) -> (String, Option<String>) {
    (title.to_owned(), parent.map(str::to_owned))
}

#[tokio::test]
async fn a_free_step_passed_to_a_chain_records_as_the_chain_steps_child() {
    let ctx = WorkflowContext::new("Chain");
    let paid = Workflow::given(&ctx, "an order", || order(10))
        .try_when_async("process payment", process_payment)
        .when("discounted", |o| apply_discount(o, 50))
        .await
        .unwrap();
    assert_eq!(paid.cents, 5);
    assert_eq!(
        tree(&ctx),
        [
            node("an order", None),
            node("process payment", Some("process payment")),
            node("process payment", None),
            node("apply discount", Some("discounted")),
            node("discounted", None),
        ]
    );
}

#[tokio::test]
async fn every_free_step_called_in_a_sync_body_records_as_its_child() {
    let ctx = WorkflowContext::new("Nested");
    Workflow::given(&ctx, "an order", || order(10))
        .when("prepared", |o| {
            let once = apply_discount(o, 50);
            apply_discount(once, 50)
        })
        .await
        .unwrap();
    assert_eq!(
        tree(&ctx),
        [
            node("an order", None),
            node("apply discount", Some("prepared")),
            node("apply discount", Some("prepared")),
            node("prepared", None),
        ]
    );
}

#[tokio::test]
async fn every_free_step_called_in_an_async_body_records_as_its_child() {
    let ctx = WorkflowContext::new("Nested");
    let result = Workflow::given(&ctx, "an order", || order(10))
        .try_when_async("paid twice", |o| async move {
            // One call before the body's first await, one after it.
            let first = process_payment(apply_discount(o, 50)).await?;
            tokio::task::yield_now().await;
            process_payment(first).await
        })
        .await;
    assert!(result.is_ok());
    assert_eq!(
        tree(&ctx),
        [
            node("an order", None),
            node("apply discount", Some("paid twice")),
            node("process payment", Some("paid twice")),
            node("process payment", Some("paid twice")),
            node("paid twice", None),
        ]
    );
}

#[tokio::test]
async fn free_steps_called_by_free_steps_nest_under_their_caller() {
    let ctx = WorkflowContext::new("Deep");
    Workflow::given(&ctx, "an order", || order(400))
        .try_when_async("checkout", |o| async move { discount_then_pay(o).await })
        .await
        .unwrap();
    assert_eq!(
        tree(&ctx),
        [
            node("an order", None),
            node("apply discount", Some("discount then pay")),
            node("process payment", Some("discount then pay")),
            node("discount then pay", Some("checkout")),
            node("checkout", None),
        ]
    );
}

#[step(when = "discount then pay")]
async fn discount_then_pay(order: Order) -> Result<Order, PaymentError> {
    process_payment(apply_discount(order, 50)).await
}

// ---- behaviors from attributes -----------------------------------------

struct FlakyBank {
    calls: std::sync::atomic::AtomicU32,
}

#[workflow]
impl FlakyBank {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order {
        order
    }

    #[step(
        when = "charged",
        retry(max_attempts = 3, backoff = "100ms"),
        timeout = "1s"
    )]
    async fn charge(&self, order: Order) -> Result<Order, PaymentError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if call < 2 {
            return Err(PaymentError(format!("attempt {}", call + 1)));
        }
        Ok(Order {
            status: Status::Paid,
            ..order
        })
    }

    #[step(when = "confirmed", timeout = "50ms")]
    async fn confirm(&self, order: Order) -> Order {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        order
    }
}

#[tokio::test(start_paused = true)]
async fn attribute_behaviors_retry_and_time_out_as_declared() {
    let bank = FlakyBank {
        calls: Default::default(),
    };
    let ctx = FlakyBank::context().build();
    let started = tokio::time::Instant::now();
    let paid = bank.run(&ctx, order(10)).await.unwrap();
    assert_eq!(paid.status, Status::Paid);
    let steps = ctx.steps();
    assert_eq!(steps[1].attempts, 3);
    // 100ms and 200ms between attempts, then 10ms for the confirmation.
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(310));
}

/// Always declines: counts its attempts.
struct AlwaysDeclines {
    calls: std::sync::atomic::AtomicU32,
}

#[workflow]
impl AlwaysDeclines {
    #[step(given = "an order", retry(retries = 2, backoff = "10ms"))]
    async fn charge(&self, order: Order) -> Result<Order, PaymentError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(PaymentError(format!("attempt {} of {order:?}", call + 1)))
    }
}

// The guide's `maxRetries: 2` is `retries = 2`: the first attempt and two
// retries. `max_attempts = 3` says the same by the other count.
#[tokio::test(start_paused = true)]
async fn retries_count_after_the_first_attempt() {
    let workflow = AlwaysDeclines {
        calls: Default::default(),
    };
    let ctx = AlwaysDeclines::context().build();
    assert!(workflow.run(&ctx, order(1)).await.is_err());
    assert_eq!(workflow.calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(ctx.steps()[0].attempts, 3);
}

/// Steps this behavior saw, across the tests of this file that use it.
static SEEN_BY_WORKFLOW_BEHAVIOR: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(0);

/// Counts the steps it wraps.
struct CountSteps;

impl workflow_runtime::behavior::Behavior for CountSteps {
    fn around<'a>(
        &'a self,
        _step: &'a workflow_runtime::behavior::StepScope,
        mut next: workflow_runtime::behavior::Next<'a>,
    ) -> workflow_runtime::behavior::BoxFuture<'a, workflow_runtime::behavior::Attempted> {
        SEEN_BY_WORKFLOW_BEHAVIOR.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move { next.run().await })
    }
}

/// Options and behaviors for every step, declared once on the definition.
struct Guarded {
    calls: std::sync::atomic::AtomicU32,
}

#[workflow(
    step_timeout = "5s",
    continue_on_error,
    retry(retries = 1, backoff = "10ms"),
    timeout = "100ms",
    behaviors(CountSteps)
)]
impl Guarded {
    #[step(given = "an order")]
    fn order(&self, order: Order) -> Order {
        order
    }

    // Fails once: the workflow's retry runs it again.
    #[step(when = "charged")]
    async fn charge(&self, order: Order) -> Result<Order, PaymentError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(PaymentError("the first attempt fails".into()));
        }
        Ok(order)
    }

    // Its own timeout replaces the workflow's 100ms.
    #[step(when = "shipped", timeout = "1s")]
    async fn ship(&self, order: Order) -> Order {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        order
    }

    #[step(then = "it is an order")]
    fn is_order(&self, order: &Order) -> bool {
        order.cents > 0
    }
}

#[tokio::test(start_paused = true)]
async fn a_definition_sets_options_and_behaviors_for_every_step() {
    let guarded = Guarded {
        calls: Default::default(),
    };
    let ctx = Guarded::context().build();
    assert_eq!(
        ctx.options().step_timeout,
        Some(std::time::Duration::from_secs(5))
    );
    assert!(ctx.options().continue_on_error);
    let before = SEEN_BY_WORKFLOW_BEHAVIOR.load(std::sync::atomic::Ordering::SeqCst);
    guarded.run(&ctx, order(7)).await.unwrap();
    let steps = ctx.steps();
    assert_eq!(steps[1].attempts, 2, "the workflow's retry");
    assert_eq!(steps[2].attempts, 1);
    assert!(
        ctx.all_passed(),
        "ship's own 1s timeout, not the workflow's 100ms"
    );
    // The context behavior wrapped every step once: order, charge (once,
    // outside its retry), ship, the assertion.
    let seen = SEEN_BY_WORKFLOW_BEHAVIOR.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(seen, 4);
}

#[test]
fn a_runners_default_options_sit_under_a_definitions_and_a_callers() {
    use std::time::Duration;
    use workflow_runtime::WorkflowOptions;
    use workflow_runtime::host::Runner;
    let runner = Runner::builder()
        .workflow_options(
            WorkflowOptions::default()
                .step_timeout(Duration::from_secs(30))
                .skip_remaining_on_failure(true),
        )
        .build()
        .unwrap();
    // A definition without options runs under the runner's.
    let plain = runner.context(FlakyBank::context());
    assert_eq!(plain.options().step_timeout, Some(Duration::from_secs(30)));
    assert!(plain.options().skip_remaining_on_failure);
    // A definition's own settings go on top; the rest stay the runner's.
    let guarded = runner.context(Guarded::context());
    assert_eq!(guarded.options().step_timeout, Some(Duration::from_secs(5)));
    assert!(guarded.options().continue_on_error);
    assert!(guarded.options().skip_remaining_on_failure);
    // Options a caller sets replace both.
    let own = runner.context(Guarded::context().options(WorkflowOptions::default()));
    assert_eq!(own.options(), &WorkflowOptions::default());
}

/// Its steps take what they are given; its workflow allows each 100ms.
struct Waits;

#[workflow(timeout = "100ms")]
impl Waits {
    #[step(given = "a first wait")]
    async fn first(&self, ms: u64) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        ms
    }

    #[step(when = "a second wait")]
    async fn second(&self, ms: u64) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        ms
    }
}

#[tokio::test(start_paused = true)]
async fn a_workflow_timeout_bounds_each_step_not_the_run() {
    // Two 60ms steps: 120ms in all, each within its 100ms.
    let ctx = Waits::context().build();
    assert_eq!(Waits.run(&ctx, 60).await.unwrap(), 60);
    assert_eq!(ctx.total_elapsed(), std::time::Duration::from_millis(120));
    // A 150ms step is dropped at 100ms.
    let ctx = Waits::context().build();
    let started = tokio::time::Instant::now();
    let error = Waits.run(&ctx, 150).await.unwrap_err();
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(100));
    assert!(error.to_string().contains("timed out"), "{error}");
}

/// A charge the service-wide retry for `Receipt` reaches.
#[derive(Clone, Debug, PartialEq)]
struct Receipt(u64);

struct Checkout {
    calls: std::sync::atomic::AtomicU32,
}

#[workflow]
impl Checkout {
    #[step(given = "an amount")]
    fn amount(&self, cents: u64) -> u64 {
        cents
    }

    // Fails once; `replayable` lets the runner's retry for `Receipt` run
    // it again.
    #[step(when = "charged", replayable)]
    async fn charge(&self, cents: u64) -> Result<Receipt, PaymentError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(PaymentError("the first attempt fails".into()));
        }
        Ok(Receipt(cents))
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_wide_typed_retry_reaches_replayable_steps() {
    use workflow_runtime::behavior::Retry;
    use workflow_runtime::host::Runner;
    let runner = Runner::builder()
        .behavior_for::<Receipt>(Retry::retries(2).backoff(std::time::Duration::from_millis(5)))
        .build()
        .unwrap();
    let checkout = Checkout {
        calls: Default::default(),
    };
    let ctx = runner.context(Checkout::context());
    let receipt = runner.run_in(&checkout, &ctx, 250).await.unwrap();
    assert_eq!(receipt, Receipt(250));
    assert_eq!(ctx.steps()[1].attempts, 2);
    // The `u64` step is not a `Receipt`: the typed retry left it alone.
    assert_eq!(ctx.steps()[0].attempts, 1);
}

/// The same charge, not declared `replayable` and taking an input that is
/// not `Clone`: a type-wide retry cannot run it again.
struct CheckoutOnce;

/// An amount that cannot be copied.
struct Cents(u64);

#[workflow]
impl CheckoutOnce {
    #[step(given = "an amount")]
    fn amount(&self, cents: u64) -> Cents {
        Cents(cents)
    }

    #[step(when = "charged once")]
    async fn charge(&self, cents: Cents) -> Result<Receipt, PaymentError> {
        Ok(Receipt(cents.0))
    }
}

/// A charge that fails once and counts the copies made of its input: not
/// declared `replayable`, but its input is `Clone`.
struct CheckoutCounted {
    calls: std::sync::atomic::AtomicU32,
}

/// An amount that counts its copies.
#[derive(Debug, Default)]
struct Counted(u64, std::sync::Arc<std::sync::atomic::AtomicU32>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Counted(self.0, self.1.clone())
    }
}

#[workflow]
impl CheckoutCounted {
    #[step(given = "an amount")]
    fn amount(&self, cents: Counted) -> Counted {
        cents
    }

    #[step(when = "charged")]
    async fn charge(&self, cents: Counted) -> Result<Receipt, PaymentError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(PaymentError("the first attempt fails".into()));
        }
        Ok(Receipt(cents.0))
    }
}

/// A first step that fails once, taking its run's context and the run's
/// input (`Clone`): a `when`, as a first step may be.
struct FirstCharge {
    calls: std::sync::atomic::AtomicU32,
}

#[workflow]
impl FirstCharge {
    #[step(when = "charged")]
    async fn charge(&self, ctx: &WorkflowContext, cents: Counted) -> Result<Receipt, PaymentError> {
        assert_eq!(ctx.name(), "FirstCharge");
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(PaymentError("the first attempt fails".into()));
        }
        Ok(Receipt(cents.0))
    }
}

/// A first step taking nothing, failing once.
struct FirstFetch {
    calls: std::sync::atomic::AtomicU32,
}

#[workflow]
impl FirstFetch {
    #[step(given = "fetched")]
    fn fetch(&self) -> Result<Receipt, PaymentError> {
        match self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Err(PaymentError("the first attempt fails".into())),
            n => Ok(Receipt(u64::from(n))),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_type_wide_retry_runs_a_first_step_again_copying_the_runs_input_only_then() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use workflow_runtime::behavior::Retry;
    use workflow_runtime::host::Runner;
    let runner = Runner::builder()
        .register(FirstCharge {
            calls: AtomicU32::new(0),
        })
        .register(FirstFetch {
            calls: AtomicU32::new(0),
        })
        .behavior_for::<Receipt>(Retry::retries(2))
        .build()
        .expect("first steps can be run again");
    let copies = std::sync::Arc::new(AtomicU32::new(0));
    let charge = FirstCharge {
        calls: AtomicU32::new(0),
    };
    let receipt = runner
        .run(&charge, Counted(70, copies.clone()))
        .await
        .unwrap();
    assert_eq!(receipt, Receipt(70));
    assert_eq!(copies.load(Ordering::SeqCst), 2, "one copy per attempt");
    let fetch = FirstFetch {
        calls: AtomicU32::new(0),
    };
    assert_eq!(runner.run(&fetch, ()).await.unwrap(), Receipt(1));

    // Nothing retries it: the run's input is moved in, never copied.
    let copies = std::sync::Arc::new(AtomicU32::new(0));
    let charge = FirstCharge {
        calls: AtomicU32::new(1),
    };
    Runner::builder()
        .build()
        .unwrap()
        .run(&charge, Counted(70, copies.clone()))
        .await
        .unwrap();
    assert_eq!(copies.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_type_wide_retry_runs_a_step_with_a_clone_input_again_without_opting_in() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use workflow_runtime::behavior::Retry;
    use workflow_runtime::host::Runner;
    let runner = Runner::builder()
        .register(CheckoutCounted {
            calls: AtomicU32::new(0),
        })
        .behavior_for::<Receipt>(Retry::retries(2).backoff(std::time::Duration::from_millis(5)))
        .build()
        .expect("a step whose input is `Clone` can be run again");
    let copies = std::sync::Arc::new(AtomicU32::new(0));
    let checkout = CheckoutCounted {
        calls: AtomicU32::new(0),
    };
    let ctx = runner.context(CheckoutCounted::context());
    let receipt = runner
        .run_in(&checkout, &ctx, Counted(250, copies.clone()))
        .await
        .unwrap();
    assert_eq!(receipt, Receipt(250));
    assert_eq!(ctx.steps()[1].attempts, 2);
    assert_eq!(checkout.calls.load(Ordering::SeqCst), 2);
    // One copy per attempt, kept for the retry.
    assert_eq!(copies.load(Ordering::SeqCst), 2);

    // Nothing runs it again on a plain runner: the input is never copied.
    let plain = Runner::builder().build().unwrap();
    let copies = std::sync::Arc::new(AtomicU32::new(0));
    let checkout = CheckoutCounted {
        calls: AtomicU32::new(1),
    };
    let ctx = plain.context(CheckoutCounted::context());
    plain
        .run_in(&checkout, &ctx, Counted(100, copies.clone()))
        .await
        .unwrap();
    assert_eq!(
        copies.load(Ordering::SeqCst),
        0,
        "no copy on a run nothing retries"
    );
}

#[test]
fn a_type_wide_retry_that_cannot_run_a_registered_step_again_is_refused_when_built() {
    use workflow_runtime::behavior::{Logging, Retry};
    use workflow_runtime::host::{HostError, Runner};
    let refused = Runner::builder()
        .register(CheckoutOnce)
        .behavior_for::<Receipt>(Retry::retries(2))
        .build()
        .expect_err("refused");
    assert_eq!(
        refused,
        HostError::RetryCannotApply {
            workflow: "CheckoutOnce",
            step: "charged once",
            output: "Receipt",
        }
    );
    let said = refused.to_string();
    assert!(
        said.contains("step \"charged once\" of workflow \"CheckoutOnce\""),
        "{said}"
    );
    assert!(said.contains("make the input `Clone`"), "{said}");
    // A behavior that runs a step once is no problem, nor a retry for a
    // type no registered step hands on.
    assert!(
        Runner::builder()
            .register(CheckoutOnce)
            .behavior_for::<Receipt>(Logging)
            .build()
            .is_ok()
    );
    assert!(
        Runner::builder()
            .register(CheckoutOnce)
            .behavior_for::<String>(Retry::retries(2))
            .build()
            .is_ok()
    );
    // The replayable one is fine.
    assert!(
        Runner::builder()
            .register(Checkout {
                calls: Default::default()
            })
            .behavior_for::<Receipt>(Retry::retries(2))
            .build()
            .is_ok()
    );
}

// ---- behaviors around one call inside a step method ---------------------

/// Pays through a bank behind a breaker: the breaker wraps the bank call
/// alone, not the step, and the step reaches its run's context through
/// `WorkflowContext::current()`.
struct BankPay {
    bank: Arc<workflow_runtime::behavior::CircuitBreaker>,
}

#[workflow]
impl BankPay {
    #[step(given = "an order")]
    fn order(&self, cents: u64) -> u64 {
        cents
    }

    #[step(when = "charge")]
    async fn charge(&self, cents: u64) -> Result<u64, workflow_runtime::StepError> {
        use workflow_runtime::chain::BehaviorExt;
        let ctx = WorkflowContext::current().expect("a step runs in its run's context");
        let bank = async move {
            tokio::task::yield_now().await;
            if cents > 1_000 {
                Err(PaymentError("over the limit".into()))
            } else {
                Ok(cents)
            }
        };
        self.bank.call(&ctx, "call bank", bank).await
    }
}

#[tokio::test]
async fn a_step_method_wraps_one_call_in_a_breaker_on_a_spawned_task() {
    use workflow_runtime::behavior::{BreakerConfig, CircuitBreaker, CircuitOpen};
    let pay = Arc::new(BankPay {
        bank: CircuitBreaker::new(
            "bank",
            BreakerConfig::new(1, std::time::Duration::from_secs(60)),
        ),
    });
    // Spawned: the run's future, and the call's inside it, are `Send`.
    let run = |cents: u64| {
        let pay = pay.clone();
        tokio::spawn(async move {
            let ctx = BankPay::context().build();
            let result = pay.run(&ctx, cents).await;
            (result, ctx.steps())
        })
    };
    let (paid, steps) = run(250).await.unwrap();
    assert_eq!(paid.unwrap(), 250);
    let titles: Vec<_> = steps.iter().map(|s| s.title.to_string()).collect();
    assert_eq!(titles, ["an order", "call bank", "charge"]);
    assert_eq!(steps[1].parent, Some(steps[2].id));

    let (refused, _) = run(5_000).await.unwrap();
    assert!(refused.unwrap_err().to_string().contains("over the limit"));
    // Open now: the next call never reaches the bank.
    let (open, steps) = run(5).await.unwrap();
    let WorkflowError::Failed { error, .. } = open.unwrap_err() else {
        panic!("the charge step fails");
    };
    assert!(error.downcast_ref::<CircuitOpen>().is_some(), "{error}");
    assert_eq!(steps[1].title, "call bank");
}

/// Steps that read their run's context: the tenant a request set in its
/// metadata, and the run's execution id.
struct Tenanted;

#[workflow]
impl Tenanted {
    #[step(given = "an order")]
    fn order(&self, ctx: &WorkflowContext, amount: u32) -> (String, u32) {
        let tenant: String = ctx.metadata("tenant").unwrap_or_default();
        (tenant, amount)
    }

    #[step(when = "it is priced for the tenant")]
    async fn priced(
        &self,
        ctx: &workflow_runtime::WorkflowContext,
        (tenant, amount): (String, u32),
    ) -> String {
        tokio::task::yield_now().await;
        format!("{tenant}:{amount}:{}", ctx.name())
    }

    #[step(then = "the run knows its tenant")]
    // A `then` step takes a reference to what the step before it made.
    #[allow(clippy::ptr_arg)]
    fn knows(&self, ctx: &WorkflowContext, priced: &String) -> bool {
        ctx.metadata::<String>("tenant")
            .is_some_and(|t| priced.starts_with(&t))
    }
}

#[tokio::test]
async fn a_step_takes_its_runs_context_before_its_input() {
    let ctx = Tenanted::context().build();
    ctx.set_metadata("tenant", "acme".to_string());
    let priced = Tenanted.run(&ctx, 42).await.unwrap();
    assert_eq!(priced, "acme:42:Tenanted");
    assert!(ctx.all_passed());
}

struct DurableTenanted;

#[workflow(durable)]
impl DurableTenanted {
    #[step(given = "an order")]
    fn order(
        &self,
        ctx: &WorkflowContext,
        step: &workflow_runtime::durable::StepCtx,
        n: u32,
    ) -> String {
        format!("{}:{}:{n}", ctx.name(), step.key())
    }
}

#[tokio::test]
async fn a_durable_step_takes_the_runs_context_and_its_step_context() {
    use workflow_runtime::durable::Store;
    use workflow_runtime::host::Runner;
    let runner = Runner::builder()
        .store(Store::memory())
        .durable(DurableTenanted)
        .build()
        .unwrap();
    let run = runner.start(&DurableTenanted::ID, "t-1", 7).await.unwrap();
    let said = run.result().await.unwrap();
    assert!(said.starts_with("DurableTenanted:t-1"), "{said}");
    assert!(said.ends_with(":7"), "{said}");
}

/// Eight async steps, each holding a kilobyte across its `.await`.
struct EightBigSteps;

async fn hold_a_kilobyte(n: u64) -> u64 {
    let buffer = [n as u8; 1024];
    tokio::task::yield_now().await;
    std::hint::black_box(&buffer);
    n + 1
}

#[workflow]
impl EightBigSteps {
    #[step(given = "s0")]
    async fn s0(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
    #[step(when = "s1")]
    async fn s1(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
    #[step(when = "s2")]
    async fn s2(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
    #[step(when = "s3")]
    async fn s3(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
    #[step(when = "s4")]
    async fn s4(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
    #[step(when = "s5")]
    async fn s5(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
    #[step(when = "s6")]
    async fn s6(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
    #[step(when = "s7")]
    async fn s7(&self, n: u64) -> u64 {
        hold_a_kilobyte(n).await
    }
}

#[tokio::test]
async fn a_workflows_run_holds_one_step_at_a_time_not_every_step_nested() {
    let ctx = WorkflowContext::new("EightBigSteps");
    let step = std::mem::size_of_val(&hold_a_kilobyte(0));
    let nested = std::mem::size_of_val(
        &Workflow::given_async(&ctx, "s0", || hold_a_kilobyte(0))
            .when_async("s1", hold_a_kilobyte)
            .when_async("s2", hold_a_kilobyte)
            .when_async("s3", hold_a_kilobyte)
            .when_async("s4", hold_a_kilobyte)
            .when_async("s5", hold_a_kilobyte)
            .when_async("s6", hold_a_kilobyte)
            .when_async("s7", hold_a_kilobyte)
            .into_future(),
    );
    let run = EightBigSteps.run(&ctx, 1);
    let straight = std::mem::size_of_val(&run);
    // The nested chain keeps all eight steps' room; the run keeps one
    // step's, plus the engine's state around it.
    assert!(nested >= 8 * step, "nested {nested} B, step {step} B");
    assert!(
        straight < 2 * step,
        "the run's future is {straight} B for steps of {step} B (a nested chain's is {nested} B)"
    );
    assert_eq!(run.await.unwrap(), 9);
    assert_eq!(ctx.steps().len(), 8);
    assert!(ctx.all_passed());
}

struct TwoPlainSteps;

#[workflow]
impl TwoPlainSteps {
    #[step(given = "t0")]
    fn t0(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t1")]
    fn t1(&self, n: u64) -> u64 {
        n + 1
    }
}

struct TenPlainSteps;

#[workflow]
impl TenPlainSteps {
    #[step(given = "t0")]
    fn t0(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t1")]
    fn t1(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t2")]
    fn t2(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t3")]
    fn t3(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t4")]
    fn t4(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t5")]
    fn t5(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t6")]
    fn t6(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t7")]
    fn t7(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t8")]
    fn t8(&self, n: u64) -> u64 {
        n + 1
    }
    #[step(when = "t9")]
    fn t9(&self, n: u64) -> u64 {
        n + 1
    }
}

#[tokio::test]
async fn later_steps_add_nothing_to_the_run_future() {
    let ctx = WorkflowContext::new("TenPlainSteps");
    let two = std::mem::size_of_val(&TwoPlainSteps.run(&ctx, 0));
    let run = TenPlainSteps.run(&ctx, 0);
    let ten = std::mem::size_of_val(&run);
    // The run is one `async` body awaiting each step in turn: each step's
    // future takes the room the one before left, and the body's state is
    // one tag whatever the number of steps.
    assert_eq!(ten, two, "2 steps: {two} B, 10 steps: {ten} B");
    assert_eq!(run.await.unwrap(), 10);
    assert_eq!(ctx.steps().len(), 10);
}

/// A step that waits an hour between two that do not, the last behind a
/// named breaker.
struct WaitsAnHour;

#[workflow]
impl WaitsAnHour {
    #[step(given = "a number")]
    fn number(&self, n: u32) -> u32 {
        n
    }

    #[step(when = "it waits")]
    async fn wait(&self, n: u32) -> u32 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        n
    }

    #[step(when = "it is doubled", circuit_breaker(name = "doubler"))]
    fn double(&self, n: u32) -> u32 {
        n * 2
    }
}

#[tokio::test(start_paused = true)]
async fn a_workflow_dropped_mid_step_records_that_step_cancelled_and_makes_no_later_one() {
    let ctx = WaitsAnHour::context().build();
    let run = WaitsAnHour.run(&ctx, 4);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), run)
            .await
            .is_err()
    );
    let steps = ctx.steps();
    let seen: Vec<(String, String)> = steps
        .iter()
        .map(|s| (s.title.to_string(), s.outcome.to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            ("a number".to_owned(), "passed".to_owned()),
            ("it waits".to_owned(), "cancelled".to_owned()),
        ]
    );
    assert_eq!(steps[1].elapsed, Duration::from_secs(1));
    // The last step was never made: its named breaker is not registered.
    // (An unmade step and a made one dropped unstarted both leave no
    // record; this is what tells them apart.)
    assert!(ctx.breakers().get("doubler").is_none());

    // Run to its end, it makes the last step, breaker and all.
    let ctx = WaitsAnHour::context().build();
    assert_eq!(WaitsAnHour.run(&ctx, 4).await.unwrap(), 8);
    assert!(ctx.breakers().get("doubler").is_some());
}

/// A kilobyte of input, taken by the first step.
struct BigInput;

#[workflow]
impl BigInput {
    #[step(given = "a kilobyte")]
    fn first(&self, bytes: [u8; 1024]) -> u32 {
        bytes.iter().map(|b| u32::from(*b)).sum()
    }

    #[step(when = "counted")]
    async fn counted(&self, n: u32) -> u32 {
        n
    }
}

#[tokio::test]
async fn a_run_keeps_its_input_as_an_async_fn_keeps_its_argument() {
    let ctx = BigInput::context().build();
    let run = BigInput.run(&ctx, [1; 1024]);
    // The run is one `async` body, which keeps what it captured, the
    // input, for its whole life, as an `async fn` keeps its arguments:
    // the input's room beside the first step's future, which has room
    // for it twice (in what hands it to the step, and in the step's
    // state until its body is called), and a few words: 3,296 bytes.
    let size = std::mem::size_of_val(&run);
    assert!((3 * 1024..=3 * 1024 + 256).contains(&size), "{size} B");
    assert_eq!(run.await.unwrap(), 1024);
}

/// Steps whose futures hold borrows across an `.await`: of the workflow,
/// of the run's context, of their own input. Each step's future is
/// proved `Send` where it is made (`__step`'s bound), and these compile
/// and run on a spawned task.
struct Borrows {
    words: Vec<String>,
}

#[workflow]
impl Borrows {
    #[step(given = "a prefix")]
    async fn prefix(&self, prefix: String) -> String {
        let words = &self.words;
        tokio::task::yield_now().await;
        format!("{prefix}{}", words.join(","))
    }

    #[step(when = "named")]
    async fn named(&self, ctx: &WorkflowContext, line: String) -> String {
        let name = ctx.name();
        tokio::task::yield_now().await;
        format!("{name}:{line}")
    }

    #[step(when = "trimmed")]
    async fn trimmed(&self, line: String) -> (String, usize) {
        let head = line.split(':').next().unwrap_or_default();
        tokio::task::yield_now().await;
        (head.to_owned(), line.len())
    }

    #[step(then = "not empty")]
    fn not_empty(&self, line: &(String, usize)) -> bool {
        !line.0.is_empty()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_holding_borrows_across_an_await_run_on_a_spawned_task() {
    let borrows = Arc::new(Borrows {
        words: vec!["a".into(), "b".into()],
    });
    let line = tokio::spawn(async move {
        let ctx = Borrows::context().build();
        borrows.run(&ctx, "w=".to_owned()).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(line, ("Borrows".to_owned(), 13));
}

/// Step values whose types hold `'static` lifetimes or trait objects,
/// into and out of sync, async and behaviored steps. Each step's future
/// is proved `Send` where it is made (`__step`'s bound); proved once with
/// the run's body instead, where the compiler erases every lifetime in
/// what the body holds, this workflow did not compile.
trait Greeter: Send + Sync {
    fn greet(&self, name: &str) -> String;
}

struct Hello;

impl Greeter for Hello {
    fn greet(&self, name: &str) -> String {
        format!("hello {name}")
    }
}

struct Statics;

#[workflow]
impl Statics {
    #[step(given = "a name")]
    fn name(&self, name: &'static str) -> &'static str {
        name
    }

    #[step(when = "a cow")]
    async fn cow(&self, name: &'static str) -> std::borrow::Cow<'static, str> {
        tokio::task::yield_now().await;
        std::borrow::Cow::Borrowed(name)
    }

    #[step(when = "a greeter", timeout = "1s")]
    async fn greeter(
        &self,
        name: std::borrow::Cow<'static, str>,
    ) -> (Arc<dyn Greeter>, std::borrow::Cow<'static, str>) {
        tokio::task::yield_now().await;
        (Arc::new(Hello), name)
    }

    #[step(when = "greeted")]
    fn greeted(
        &self,
        (greeter, name): (Arc<dyn Greeter>, std::borrow::Cow<'static, str>),
    ) -> Box<dyn std::error::Error + Send + Sync> {
        greeter.greet(&name).into()
    }

    #[step(when = "said")]
    async fn said(&self, said: Box<dyn std::error::Error + Send + Sync>) -> Arc<str> {
        tokio::task::yield_now().await;
        said.to_string().into()
    }

    #[step(then = "said something")]
    fn said_something(&self, said: &Arc<str>) -> bool {
        !said.is_empty()
    }
}

#[tokio::test]
async fn step_values_with_static_lifetimes_and_trait_objects_compile_and_run() {
    let ctx = Statics::context().build();
    assert_eq!(&*Statics.run(&ctx, "ada").await.unwrap(), "hello ada");
    // No description written: the trait's default.
    assert_eq!(Statics::DESCRIPTION, None);
    assert_eq!(ctx.steps().len(), 6);
}

/// A step with no behaviors whose input is not `Clone` (the arm of
/// `#[workflow]`'s probe that keeps no replay) runs: under a behavior
/// registered for its value, with a test's stand-in, and with a type-wide
/// fallback answering the stand-in's error, which only a body that hands
/// its value to value behaviors lets it do.
#[tokio::test]
async fn a_step_whose_input_is_not_clone_runs_once_under_type_wide_behaviors_and_stand_ins() {
    use workflow_runtime::behavior::{Fallback, Logging};
    use workflow_runtime::host::Runner;

    let runner = Runner::builder()
        .behavior_for::<Receipt>(Logging)
        .build()
        .unwrap();
    let ctx = runner.context(CheckoutOnce::context());
    let receipt = runner.run_in(&CheckoutOnce, &ctx, 250).await.unwrap();
    assert_eq!(receipt, Receipt(250));
    assert_eq!(ctx.steps()[1].attempts, 1);

    let ctx = CheckoutOnce::context()
        .stand_in(CheckoutOnce::CHARGE, |cents: &Cents| {
            Ok::<_, PaymentError>(Receipt(cents.0 + 1))
        })
        .build();
    assert_eq!(CheckoutOnce.run(&ctx, 250).await.unwrap(), Receipt(251));

    let ctx = CheckoutOnce::context()
        .stand_in(CheckoutOnce::CHARGE, |_: &Cents| {
            Err::<Receipt, _>(PaymentError("declined".into()))
        })
        .behavior_for::<Receipt>(Fallback::to(|_| Some(Receipt(7))))
        .build();
    assert_eq!(CheckoutOnce.run(&ctx, 250).await.unwrap(), Receipt(7));
    assert_eq!(ctx.steps()[1].attempts, 1);
}

/// A step whose input is `Clone` keeps no copy of it for a behavior that
/// does not run steps again: only a retry's replay makes one.
#[tokio::test]
async fn a_behavior_that_runs_steps_once_copies_no_input() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use workflow_runtime::behavior::Logging;
    use workflow_runtime::host::Runner;

    let runner = Runner::builder()
        .behavior_for::<Receipt>(Logging)
        .build()
        .unwrap();
    let copies = Arc::new(AtomicU32::new(0));
    let checkout = CheckoutCounted {
        calls: AtomicU32::new(1),
    };
    let ctx = runner.context(CheckoutCounted::context());
    let receipt = runner
        .run_in(&checkout, &ctx, Counted(100, copies.clone()))
        .await
        .unwrap();
    assert_eq!(receipt, Receipt(100));
    assert_eq!(copies.load(Ordering::SeqCst), 0);
}

/// User types that share the names the expansion imports for its steps'
/// list and its chain, written bare in the signatures.
mod own_names {
    use workflow_runtime::prelude::*;

    #[derive(Clone, Debug, PartialEq)]
    pub struct StepMeta(pub u32);

    #[derive(Clone, Debug, PartialEq)]
    pub struct Workflow(pub u32);

    impl Workflow {
        /// A retry's filter, by a path through the user's `Workflow`.
        pub fn transient(_: &workflow_runtime::StepFailure) -> bool {
            true
        }
    }

    pub struct Filtered;

    /// `Workflow` written only in a retry's filter, which `run` holds.
    #[workflow]
    impl Filtered {
        #[step(given = "a number", retry(max_attempts = 2, filter = Workflow::transient))]
        fn number(&self, n: u32) -> u32 {
            n + 1
        }

        #[step(when = "doubled")]
        fn doubled(&self, n: u32) -> u32 {
            n * 2
        }
    }

    pub struct SameNames;

    #[workflow]
    impl SameNames {
        #[step(given = "a number")]
        fn number(&self, n: u32) -> StepMeta {
            StepMeta(n)
        }

        #[step(when = "a workflow")]
        fn workflow(&self, meta: StepMeta) -> Workflow {
            Workflow(meta.0 + 1)
        }

        // Retried, so `run` checks that its input is `Clone`, naming the
        // type.
        #[step(when = "checked", retry(max_attempts = 2))]
        fn checked(&self, w: Workflow) -> u32 {
            w.0 * 2
        }
    }
}

/// A signature naming `StepMeta` or `Workflow`, names the expansion
/// imports in its own blocks, keeps the user's type: the steps' list and
/// `run` write those paths in full for such a workflow, and the type a
/// step hands on is the user's.
#[tokio::test]
async fn user_types_named_as_the_expansion_s_own_keep_their_meaning() {
    use own_names::SameNames;
    use std::any::TypeId;

    let ctx = SameNames::context().build();
    assert_eq!(SameNames.run(&ctx, 20).await.unwrap(), 42);
    let ctx = own_names::Filtered::context().build();
    assert_eq!(own_names::Filtered.run(&ctx, 20).await.unwrap(), 42);
    let steps = SameNames::STEPS;
    assert_eq!(
        steps[0].output_type(),
        Some(TypeId::of::<own_names::StepMeta>())
    );
    assert_eq!(
        steps[1].output_type(),
        Some(TypeId::of::<own_names::Workflow>())
    );
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Limits {
    max: u32,
}

macro_rules! double {
    () => {
        fn double(n: u32) -> u32 {
            n * 2
        }
    };
}

struct Braced;

/// An impl block whose items hold brace groups that are not a method's
/// body: a `const` built with braces, a macro's braces, an associated
/// function made by a macro.
#[workflow]
impl Braced {
    const LIMITS: Limits = Limits { max: 10 };

    double! {}

    #[step(given = "a number")]
    fn number(&self, n: u32) -> u32 {
        Self::double(n)
    }

    #[step(when = "capped")]
    fn capped(&self, n: u32) -> u32 {
        n.min(Self::LIMITS.max)
    }
}

#[derive(Debug, PartialEq)]
struct Pair<const N: usize>([u8; N]);

/// A workflow written by a `macro_rules!` macro, its step's body a
/// `$body:block` fragment (which reaches `#[workflow]` as an invisible
/// group), beside a `const` built with braces.
macro_rules! greeter {
    ($body:block) => {
        struct Greeting;

        #[workflow]
        impl Greeting {
            const LIMITS: Limits = Limits { max: 3 };

            #[step(given = "greeted")]
            fn greet(&self) -> u32 $body
        }
    };
}

greeter!({ Self::LIMITS.max + 4 });

struct ConstBlock;

/// A signature with a brace group of its own, a const argument.
#[workflow]
impl ConstBlock {
    #[step(given = "a pair")]
    fn pair(&self, n: u8) -> Pair<{ 1 + 1 }> {
        Pair([n, n])
    }

    #[step(when = "summed")]
    fn summed(&self, pair: Pair<2>) -> u8 {
        pair.0[0] + pair.0[1]
    }
}

/// `#[workflow]` reads its methods with their bodies set aside when every
/// brace group at the impl block's top level is a method's body; a block
/// with other brace groups is read whole, and each item keeps its tokens.
#[tokio::test]
async fn impl_blocks_with_brace_groups_besides_bodies_keep_every_item() {
    let ctx = Braced::context().build();
    assert_eq!(Braced.run(&ctx, 3).await.unwrap(), 6);
    assert_eq!(Braced.run(&ctx, 30).await.unwrap(), 10);
    let ctx = ConstBlock::context().build();
    assert_eq!(ConstBlock.run(&ctx, 4).await.unwrap(), 8);
    let ctx = Greeting::context().build();
    assert_eq!(Greeting.run(&ctx, ()).await.unwrap(), 7);
}
