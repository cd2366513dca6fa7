//! The checks a user meets most are named the step's method (`payment`,
//! `r#type`); a module or type of that name in a step's signature is not
//! shadowed by them, raw or not, nor is a path a type macro writes.
#![allow(non_camel_case_types)]
use workflow_runtime::prelude::*;

pub mod payment {
    #[derive(Clone, Debug, PartialEq)]
    pub struct Payment(pub u32);
}

pub mod r#type {
    #[derive(Clone, Debug, PartialEq)]
    pub struct Kind(pub u32);
}

macro_rules! kind_type {
    () => {
        r#type::Kind
    };
}

struct Pay;

#[workflow]
impl Pay {
    #[step(given = "an amount")]
    fn amount(&self, n: u32) -> payment::Payment {
        payment::Payment(n)
    }

    // Written unlike the step before's output, so it is checked; the check
    // is not named `payment`, which would shadow the module.
    #[step(when = "paid", retry(max_attempts = 2))]
    fn payment(&self, paid: crate::payment::Payment) -> r#type::Kind {
        r#type::Kind(paid.0)
    }

    #[step(when = "typed", retry(max_attempts = 2))]
    fn r#type(&self, kind: self::r#type::Kind) -> r#type::Kind {
        kind
    }

    #[step(when = "kinded")]
    fn kinded(&self, kind: kind_type!()) -> u32 {
        kind.0
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Pay::context().build();
    assert_eq!(Pay.run(&ctx, 7).await.unwrap(), 7);
}
