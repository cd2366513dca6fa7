//! The test kit at work on a `#[workflow]` definition: steps stood in for
//! by title, with canned values or errors, their types checked against the
//! step's; the run read back with `assert_steps!`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use workflow_runtime::assert_steps;
use workflow_runtime::prelude::*;

#[derive(Clone, Debug, PartialEq)]
struct Receipt(String);

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

/// Talks to a real gateway, which a test would rather not.
#[derive(Default)]
struct Checkout {
    gateway_calls: AtomicU32,
}

#[workflow]
impl Checkout {
    #[step(given = "a cart")]
    fn cart(&self, cents: u32) -> u32 {
        cents
    }

    #[step(when = "charge card", retry(max_attempts = 3, backoff = "1s"))]
    async fn charge(&self, cents: u32) -> Result<Receipt, Declined> {
        self.gateway_calls.fetch_add(1, Ordering::SeqCst);
        Ok(Receipt(format!("real charge of {cents}")))
    }

    #[step(then = "paid")]
    fn paid(&self, receipt: &Receipt) -> bool {
        !receipt.0.is_empty()
    }
}

#[tokio::test]
async fn a_stand_in_gives_a_canned_value_without_touching_the_definition() {
    let checkout = Checkout::default();
    let ctx = Checkout::context()
        .override_step("charge card", |cents: &u32| {
            Ok::<_, Declined>(Receipt(format!("canned {cents}")))
        })
        .build();
    let receipt = checkout.run(&ctx, 250).await.unwrap();
    assert_eq!(receipt, Receipt("canned 250".into()));
    assert_eq!(checkout.gateway_calls.load(Ordering::SeqCst), 0);
    assert_steps!(ctx, [
        Given "a cart" passed,
        When "charge card" passed,
        Then "paid" passed,
    ]);

    // Without the override, the same definition calls the gateway.
    let ctx = Checkout::context().build();
    checkout.run(&ctx, 250).await.unwrap();
    assert_eq!(checkout.gateway_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stand_in_error_goes_through_the_steps_behaviors() {
    let tries = Arc::new(AtomicU32::new(0));
    let counted = tries.clone();
    let ctx = Checkout::context()
        .override_step("charge card", move |_: &u32| {
            counted.fetch_add(1, Ordering::SeqCst);
            Err::<Receipt, _>(Declined)
        })
        .build();
    let started = tokio::time::Instant::now();
    let err = Checkout::default().run(&ctx, 250).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "Checkout", step When "charge card" failed: card declined"#
    );
    // The step's own retry ran the stand-in three times, 1s then 2s apart,
    // on tokio's paused clock: no real waiting.
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_steps!(ctx, [
        Given "a cart" passed,
        When "charge card" failed("card declined"),
        Then "paid" skipped,
    ]);
}

#[tokio::test(start_paused = true)]
async fn a_stand_in_of_other_types_fails_the_step_naming_both() {
    let ctx = Checkout::context()
        .override_step("charge card", |_: &String| Ok::<u8, Declined>(1))
        .build();
    let err = Checkout::default().run(&ctx, 250).await.unwrap_err();
    let message = err.to_string();
    // The types as the user wrote them, not their paths.
    assert!(
        message.contains("the override of step \"charge card\" is a `fn(&String) -> u8`")
            && message.contains("but the step is a `fn(&u32) -> Receipt`"),
        "{message}"
    );
}

/// A sync step with no behaviors of its own: its stand-in is found as the
/// step starts, where its body would be called, and the body never runs.
#[derive(Default)]
struct Pricing {
    priced: AtomicU32,
}

#[workflow]
impl Pricing {
    #[step(given = "a cart")]
    fn cart(&self, cents: u32) -> u32 {
        cents
    }

    #[step(when = "priced")]
    fn price(&self, cents: u32) -> u32 {
        self.priced.fetch_add(1, Ordering::SeqCst);
        cents * 2
    }

    #[step(then = "affordable")]
    fn affordable(&self, cents: &u32) -> bool {
        *cents < 1_000
    }
}

#[tokio::test]
async fn a_stand_in_takes_the_place_of_a_sync_step_with_no_behaviors() {
    let pricing = Pricing::default();
    let ctx = Pricing::context()
        .stand_in(Pricing::PRICE, |cents: &u32| Ok::<_, Declined>(cents + 1))
        .build();
    assert_eq!(pricing.run(&ctx, 250).await.unwrap(), 251);
    assert_eq!(pricing.priced.load(Ordering::SeqCst), 0);
    assert_steps!(ctx, [
        Given "a cart" passed,
        When "priced" passed,
        Then "affordable" passed,
    ]);

    // A stand-in's error fails the step, as the body's own would.
    let ctx = Pricing::context()
        .stand_in(Pricing::PRICE, |_: &u32| Err::<u32, _>(Declined))
        .build();
    let error = pricing.run(&ctx, 250).await.unwrap_err();
    assert!(error.to_string().contains("card declined"), "{error}");
    assert_eq!(pricing.priced.load(Ordering::SeqCst), 0);
}

/// A type-wide retry runs a step with no behaviors of its own again, and
/// each attempt asks its stand-in as the first did: the body never runs.
#[tokio::test(start_paused = true)]
async fn a_type_wide_retry_asks_the_stand_in_again_at_each_attempt() {
    use workflow_runtime::behavior::Retry;
    let pricing = Pricing::default();
    let asked = Arc::new(AtomicU32::new(0));
    let counted = asked.clone();
    let ctx = Pricing::context()
        .behavior_for::<u32>(Retry::retries(2))
        .stand_in(Pricing::PRICE, move |cents: &u32| {
            match counted.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Declined),
                _ => Ok(cents + 1),
            }
        })
        .build();
    assert_eq!(pricing.run(&ctx, 250).await.unwrap(), 251);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert_eq!(pricing.priced.load(Ordering::SeqCst), 0);
    assert_eq!(ctx.steps()[1].attempts, 2);
    assert_steps!(ctx, [
        Given "a cart" passed,
        When "priced" passed,
        Then "affordable" passed,
    ]);
}
