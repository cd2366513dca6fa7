//! Behaviors that see a step's value: a fallback, a cache, a transform,
//! registered for a type or on one step, and where they cannot apply.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_runtime::behavior::{
    BoxFuture, Cache, Fallback, NextValue, OnValue, StepScope, ValueBehavior,
};
use workflow_runtime::durable::StepCtx;
use workflow_runtime::host::{HostError, Runner};
use workflow_runtime::prelude::*;
use workflow_runtime::{StepFailure, StepOutcome};

/// A price, in cents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Price(u32);

/// The pricing service is down.
#[derive(Debug)]
struct PricingDown;

impl std::fmt::Display for PricingDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the pricing service is down")
    }
}

impl std::error::Error for PricingDown {}

/// A pricing service that can be switched off, counting its calls.
#[derive(Default)]
struct Pricing {
    down: AtomicBool,
    calls: AtomicU32,
}

impl Pricing {
    fn quote(&self, sku: &str) -> Result<Price, PricingDown> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(PricingDown);
        }
        Ok(Price(u32::try_from(sku.len()).unwrap() * 100 + call))
    }
}

/// Quotes a sku, then adds tax: the tax step takes whatever the quote
/// handed on.
struct Quote {
    pricing: Arc<Pricing>,
}

#[workflow]
impl Quote {
    #[step(given = "a sku")]
    fn sku(&self, sku: String) -> String {
        sku
    }

    #[step(when = "priced", retry(max_attempts = 3))]
    async fn price(&self, sku: String) -> Result<Price, PricingDown> {
        self.pricing.quote(&sku)
    }

    #[step(when = "taxed")]
    fn tax(&self, price: Price) -> u32 {
        price.0 + price.0 / 10
    }
}

#[tokio::test(start_paused = true)]
async fn a_type_wide_fallback_answers_a_failed_step_after_its_own_retry() {
    let pricing = Arc::new(Pricing::default());
    pricing.down.store(true, Ordering::SeqCst);
    let runner = Runner::builder()
        .behavior_for::<Price>(Fallback::to(|failure: &StepFailure| {
            assert!(failure.to_string().contains("pricing service is down"));
            Some(Price(1_000))
        }))
        .build()
        .unwrap();
    let quote = Quote {
        pricing: pricing.clone(),
    };
    let ctx = runner.context(Quote::context());
    let taxed = runner.run_in(&quote, &ctx, "sku-1".into()).await.unwrap();
    assert_eq!(taxed, 1_100, "the next step took the fallback's price");
    assert_eq!(
        pricing.calls.load(Ordering::SeqCst),
        3,
        "the step's own retry ran inside the fallback"
    );
    let priced = &ctx.steps()[1];
    assert_eq!(priced.title, "priced");
    assert!(matches!(priced.outcome, StepOutcome::Passed));
    assert_eq!(priced.attempts, 3);

    // Up again: the step's own value goes through untouched.
    pricing.down.store(false, Ordering::SeqCst);
    let taxed = runner.run(&quote, "sku-1".into()).await.unwrap();
    assert_eq!(taxed, (500 + 3) + (500 + 3) / 10);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_that_serves_nothing_hands_the_failure_on() {
    let pricing = Arc::new(Pricing::default());
    pricing.down.store(true, Ordering::SeqCst);
    let asked = Arc::new(AtomicU32::new(0));
    let runner = Runner::builder()
        .behavior_for::<Price>(Fallback::to({
            let asked = asked.clone();
            move |_: &StepFailure| {
                asked.fetch_add(1, Ordering::SeqCst);
                None::<Price>
            }
        }))
        .build()
        .unwrap();
    let err = runner
        .run(&Quote { pricing }, "sku-1".into())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pricing service is down"), "{err}");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "asked once, after the retry"
    );
}

/// Quotes through a cache the workflow owns, named on the step: stale
/// prices answer while the service is down.
struct CachedQuote {
    pricing: Arc<Pricing>,
    cache: Arc<Cache<Price>>,
}

#[workflow]
impl CachedQuote {
    #[step(given = "a sku")]
    fn sku(&self, sku: String) -> String {
        sku
    }

    #[step(when = "priced", behaviors(self.cache.clone()))]
    async fn price(&self, sku: String) -> Result<Price, PricingDown> {
        self.pricing.quote(&sku)
    }
}

#[tokio::test(start_paused = true)]
async fn a_cache_on_a_step_serves_fresh_values_without_running_it_and_stale_ones_when_it_fails() {
    let pricing = Arc::new(Pricing::default());
    let quote = CachedQuote {
        pricing: pricing.clone(),
        cache: Arc::new(Cache::fresh_for(Duration::from_secs(60)).or_stale_on_failure()),
    };
    let runner = Runner::builder().build().unwrap();
    assert_eq!(runner.run(&quote, "abc".into()).await.unwrap(), Price(300));

    // Within the minute: served from the cache, the body not run.
    let ctx = runner.context(CachedQuote::context());
    assert_eq!(
        runner.run_in(&quote, &ctx, "abc".into()).await.unwrap(),
        Price(300)
    );
    assert_eq!(pricing.calls.load(Ordering::SeqCst), 1);
    let priced = &ctx.steps()[1];
    assert!(matches!(priced.outcome, StepOutcome::Passed));
    assert_eq!(priced.attempts, 0, "a cached step's body did not run");

    // Past the minute: the step runs again and the cache keeps its value.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(runner.run(&quote, "abc".into()).await.unwrap(), Price(301));
    assert_eq!(pricing.calls.load(Ordering::SeqCst), 2);

    // Past it again, with the service down: the last value answers.
    tokio::time::advance(Duration::from_secs(61)).await;
    pricing.down.store(true, Ordering::SeqCst);
    assert_eq!(runner.run(&quote, "abc".into()).await.unwrap(), Price(301));
    assert_eq!(pricing.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_cache_without_stale_values_hands_a_failure_on() {
    let pricing = Arc::new(Pricing::default());
    let quote = CachedQuote {
        pricing: pricing.clone(),
        cache: Arc::new(Cache::fresh_for(Duration::from_secs(60))),
    };
    let runner = Runner::builder().build().unwrap();
    runner.run(&quote, "abc".into()).await.unwrap();
    runner.run(&quote, "abc".into()).await.unwrap();
    assert_eq!(pricing.calls.load(Ordering::SeqCst), 1, "fresh: served");
    tokio::time::advance(Duration::from_secs(61)).await;
    pricing.down.store(true, Ordering::SeqCst);
    let err = runner.run(&quote, "abc".into()).await.unwrap_err();
    assert!(err.to_string().contains("pricing service is down"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_cache_keys_values_by_its_key() {
    let ctx_for = |tenant: &str| {
        let ctx = WorkflowContext::new("Rates");
        ctx.set_metadata("tenant", tenant.to_owned());
        ctx
    };
    let cache = Arc::new(
        Cache::<u32>::fresh_for(Duration::from_secs(60))
            .key(|step| step.ctx().metadata::<String>("tenant").unwrap_or_default()),
    );
    let fetched = AtomicU32::new(0);
    let mut rates = Vec::new();
    for tenant in ["a", "b", "a", "b"] {
        let ctx = ctx_for(tenant);
        let rate = Workflow::given(&ctx, "a currency", || "EUR")
            .when("rate", |_| fetched.fetch_add(1, Ordering::SeqCst))
            .with_value(cache.clone())
            .await
            .unwrap();
        rates.push(rate);
    }
    assert_eq!(rates, [0, 1, 0, 1], "one value per tenant");
}

/// Marks every price it sees, and counts them: a custom value behavior.
struct Discount(AtomicU32);

impl ValueBehavior<Price> for Discount {
    fn around<'a>(
        &'a self,
        _step: &'a StepScope,
        mut next: NextValue<'a, Price>,
    ) -> BoxFuture<'a, Result<Price, StepFailure>> {
        Box::pin(async move {
            let price = next.run().await?;
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Price(price.0 - price.0 / 4))
        })
    }
}

#[tokio::test]
async fn a_custom_value_behavior_replaces_the_value_of_each_step_of_its_type() {
    let discount = Arc::new(Discount(AtomicU32::new(0)));
    let runner = Runner::builder()
        .behavior_for::<Price>(OnValue(discount.clone()))
        .build()
        .unwrap();
    let quote = Quote {
        pricing: Arc::new(Pricing::default()),
    };
    // 400 from the service, 300 after the discount, 330 taxed.
    assert_eq!(runner.run(&quote, "sku1".into()).await.unwrap(), 330);
    assert_eq!(
        discount.0.load(Ordering::SeqCst),
        1,
        "only the `Price` step"
    );
}

#[tokio::test]
async fn a_chain_step_not_handing_its_value_fails_saying_what_to_do() {
    let ctx = WorkflowContext::builder("Quote")
        .behavior_for::<u32>(Fallback::to(|_| Some(7)))
        .build();
    let err = Workflow::given(&ctx, "a sku", || "sku")
        .try_when("priced", |_| Err::<u32, _>(PricingDown))
        .await
        .unwrap_err();
    let said = err.to_string();
    assert!(said.contains("value behavior for `u32`"), "{said}");
    assert!(said.contains(".value_behaviors()"), "{said}");
    assert!(said.contains("\"priced\""), "{said}");

    // Made so, the fallback answers.
    let price = Workflow::given(&ctx, "a sku", || "sku")
        .try_when("priced", |_| Err::<u32, _>(PricingDown))
        .value_behaviors()
        .await
        .unwrap();
    assert_eq!(price, 7);
}

/// A durable workflow making a `Price`.
#[derive(Default)]
struct DurableQuote;

#[workflow(durable)]
impl DurableQuote {
    #[step(given = "a sku")]
    fn sku(&self, sku: String) -> String {
        sku
    }

    #[step(when = "priced")]
    async fn price(&self, _step: &StepCtx, sku: String) -> Result<Price, PricingDown> {
        Ok(Price(u32::try_from(sku.len()).unwrap()))
    }
}

#[test]
fn a_value_behavior_for_a_durable_steps_type_is_refused_when_built() {
    let refused = Runner::builder()
        .store(workflow_runtime::durable::Store::memory())
        .durable(DurableQuote)
        .behavior_for::<Price>(Fallback::to(|_| Some(Price(1))))
        .build()
        .expect_err("refused");
    assert_eq!(
        refused,
        HostError::ValueBehaviorCannotApply {
            workflow: "DurableQuote",
            step: "priced",
            output: "Price",
        }
    );
    assert!(refused.to_string().contains("journal"), "{refused}");
    // One that sees no value is fine.
    assert!(
        Runner::builder()
            .store(workflow_runtime::durable::Store::memory())
            .durable(DurableQuote)
            .behavior_for::<Price>(workflow_runtime::behavior::Logging)
            .build()
            .is_ok()
    );
}

/// Prices a sku and checks it: the assertion passes the `Price` on.
struct CheckedQuote {
    pricing: Arc<Pricing>,
}

#[workflow]
impl CheckedQuote {
    #[step(given = "a sku")]
    fn sku(&self, sku: String) -> String {
        sku
    }

    #[step(when = "priced")]
    async fn price(&self, sku: String) -> Result<Price, PricingDown> {
        self.pricing.quote(&sku)
    }

    #[step(then = "priced above zero")]
    fn positive(&self, price: &Price) -> bool {
        price.0 > 0
    }
}

#[tokio::test(start_paused = true)]
async fn a_type_wide_cache_wraps_the_step_making_the_value_not_the_assertion_passing_it_on() {
    let pricing = Arc::new(Pricing::default());
    let runner = Runner::builder()
        .behavior_for::<Price>(Cache::fresh_for(Duration::from_secs(60)))
        .build()
        .unwrap();
    let quote = CheckedQuote {
        pricing: pricing.clone(),
    };
    assert_eq!(runner.run(&quote, "abc".into()).await.unwrap(), Price(300));
    let ctx = runner.context(CheckedQuote::context());
    assert_eq!(
        runner.run_in(&quote, &ctx, "abc".into()).await.unwrap(),
        Price(300)
    );
    assert_eq!(
        pricing.calls.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );
    let steps = ctx.steps();
    assert_eq!(steps[1].attempts, 0);
    assert_eq!(steps[2].title, "priced above zero");
    assert!(matches!(steps[2].outcome, StepOutcome::Passed));
}

/// Reports success without running the rest of the stack.
struct Skips;

impl workflow_runtime::behavior::Behavior for Skips {
    fn around<'a>(
        &'a self,
        _step: &'a StepScope,
        _next: workflow_runtime::behavior::Next<'a>,
    ) -> BoxFuture<'a, workflow_runtime::behavior::Attempted> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_behavior_inside_a_value_behavior_that_runs_nothing_fails_the_step_saying_why() {
    let ctx = WorkflowContext::new("Skipping");
    let err = Workflow::given(&ctx, "n", || 1u32)
        .with_value(Fallback::to(|_: &StepFailure| None::<u32>))
        .with(Skips)
        .await
        .unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("reported success without running the step"),
        "{said}"
    );
    // A fallback that answers turns even that into its value.
    let n = Workflow::given(&ctx, "n", || 1u32)
        .with_value(Fallback::to(|_: &StepFailure| Some(9u32)))
        .with(Skips)
        .await
        .unwrap();
    assert_eq!(n, 9);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_written_before_a_timeout_answers_a_hung_step() {
    let ctx = WorkflowContext::new("Hung");
    let n = Workflow::given(&ctx, "n", || 1u32)
        .when_async("hangs", |n| async move {
            std::future::pending::<()>().await;
            n
        })
        .with_value(Fallback::to(|failure: &StepFailure| {
            assert!(failure.to_string().contains("timed out"), "{failure}");
            Some(7u32)
        }))
        .timeout(Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(n, 7);
    assert!(matches!(ctx.steps()[1].outcome, StepOutcome::Passed));
}

#[tokio::test]
async fn with_value_takes_a_custom_value_behavior_in_on_value_too() {
    let ctx = WorkflowContext::new("Custom");
    let discount = Discount(AtomicU32::new(0));
    let price = Workflow::given(&ctx, "a list price", || Price(400))
        .with_value(OnValue(discount))
        .await
        .unwrap();
    assert_eq!(price, Price(300));
}

/// Every step retried twice more by the workflow; the price's fallback
/// written before the step's own retry, so it answers after it.
struct RetriedQuote {
    pricing: Arc<Pricing>,
}

#[workflow(retry(max_attempts = 2))]
impl RetriedQuote {
    #[step(given = "a sku")]
    fn sku(&self, sku: String) -> String {
        sku
    }

    #[step(when = "priced", behaviors(Fallback::to(|_| Some(Price(1)))), retry(max_attempts = 3))]
    async fn price(&self, sku: String) -> Result<Price, PricingDown> {
        self.pricing.quote(&sku)
    }

    // No retry of its own: the workflow's sits outside the fallback,
    // which answers the first attempt.
    #[step(when = "priced again", behaviors(Fallback::to(|_| Some(Price(2)))))]
    async fn again(&self, price: Price) -> Result<Price, PricingDown> {
        let _ = price;
        self.pricing.quote("x")
    }
}

#[tokio::test(start_paused = true)]
async fn behaviors_on_a_step_keep_the_order_written_under_a_workflow_wide_retry() {
    let pricing = Arc::new(Pricing::default());
    pricing.down.store(true, Ordering::SeqCst);
    let quote = RetriedQuote {
        pricing: pricing.clone(),
    };
    let runner = Runner::builder().build().unwrap();
    let ctx = runner.context(RetriedQuote::context());
    assert_eq!(
        runner.run_in(&quote, &ctx, "sku".into()).await.unwrap(),
        Price(2)
    );
    let steps = ctx.steps();
    assert_eq!(
        steps[1].attempts, 3,
        "the step's own retry, inside the fallback"
    );
    assert_eq!(
        steps[2].attempts, 1,
        "the fallback answered the first attempt"
    );
    assert_eq!(pricing.calls.load(Ordering::SeqCst), 4);
}
