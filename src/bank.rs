//! The order API's simulated card bank. Like a real payment API it takes an
//! idempotency key: a key it has seen gets its first answer back (the
//! charge, or the decline) and nothing is charged again, so a payment step
//! that is retried or resumed after a lost answer charges the card once.
//! It keeps every request, so a test sees what it was asked and with which
//! key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The card `payment_method` that the bank declines.
pub const DECLINED_CARD: &str = "declined-card";

/// Why a payment failed; only transient failures are worth retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentError {
    reason: &'static str,
    transient: bool,
}

impl PaymentError {
    /// The card was declined: final, and the client's to act on.
    pub const DECLINED: PaymentError = PaymentError {
        reason: "card declined",
        transient: false,
    };

    /// The bank's answer never arrived: the charge may have been made, so
    /// only a retry with the same key can tell.
    pub const NO_ANSWER: PaymentError = PaymentError {
        reason: "no answer from the bank",
        transient: true,
    };

    /// Whether asking again (with the same key) may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payment failed: {}", self.reason)
    }
}

impl std::error::Error for PaymentError {}

/// One request the bank was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankRequest {
    /// The idempotency key it carried.
    pub key: String,
    /// The order it was for.
    pub order: i64,
    /// The amount asked for, in cents.
    pub cents: u64,
}

/// A charge the bank made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The bank's id for it, what the order stores as its payment id.
    pub id: String,
    /// The order paid.
    pub order: i64,
    /// The amount, in cents.
    pub cents: u64,
}

/// What the bank remembers; one lock, so a key is answered once even when
/// two requests with it race.
#[derive(Default)]
struct Ledger {
    requests: Vec<BankRequest>,
    /// The first answer given to each key.
    answers: HashMap<String, Result<Charge, PaymentError>>,
    /// The charges made, in order.
    charges: Vec<Charge>,
    /// How many of the next answers get lost on the way back.
    lose: u32,
}

/// The simulated bank; clones share one ledger.
#[derive(Clone, Default)]
pub struct Bank {
    ledger: Arc<Mutex<Ledger>>,
}

impl Bank {
    /// A bank that has charged nothing yet.
    pub fn new() -> Bank {
        Bank::default()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // The ledger is consistent after every statement: a panicking
        // holder leaves nothing half-written.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Charges `cents` for `order` to the card `method` names, once per
    /// `key`: a key seen before gets its first answer back and charges
    /// nothing. [`DECLINED_CARD`] is declined.
    ///
    /// ```
    /// use workflow_suite::bank::{Bank, PaymentError, DECLINED_CARD};
    /// let bank = Bank::new();
    /// let first = bank.charge("run-1/2", 7, 1250, "card").unwrap();
    /// assert_eq!(bank.charge("run-1/2", 7, 1250, "card").unwrap(), first);
    /// assert_eq!(bank.charges().len(), 1);
    /// assert_eq!(bank.charge("run-2/2", 8, 500, DECLINED_CARD), Err(PaymentError::DECLINED));
    /// assert_eq!(bank.requests().len(), 3);
    /// ```
    pub fn charge(
        &self,
        key: &str,
        order: i64,
        cents: u64,
        method: &str,
    ) -> Result<Charge, PaymentError> {
        let mut ledger = self.ledger();
        ledger.requests.push(BankRequest {
            key: key.to_owned(),
            order,
            cents,
        });
        let answer = match ledger.answers.get(key) {
            Some(first) => first.clone(),
            None => {
                let answer = if method == DECLINED_CARD {
                    Err(PaymentError::DECLINED)
                } else {
                    let charge = Charge {
                        id: format!("ch-{}", ledger.charges.len() + 1),
                        order,
                        cents,
                    };
                    ledger.charges.push(charge.clone());
                    Ok(charge)
                };
                ledger.answers.insert(key.to_owned(), answer.clone());
                answer
            }
        };
        if ledger.lose > 0 {
            ledger.lose -= 1;
            return Err(PaymentError::NO_ANSWER);
        }
        answer
    }

    /// Loses the answers to the next `n` requests, as a dropped connection
    /// would: the bank still acts on them (a charge is made), the caller
    /// sees [`PaymentError::NO_ANSWER`].
    ///
    /// ```
    /// use workflow_suite::bank::{Bank, PaymentError};
    /// let bank = Bank::new();
    /// bank.lose_answers(1);
    /// assert_eq!(bank.charge("k", 1, 100, "card"), Err(PaymentError::NO_ANSWER));
    /// // Asked again with the key: the charge already made, not a second.
    /// assert_eq!(bank.charge("k", 1, 100, "card").unwrap().id, "ch-1");
    /// assert_eq!(bank.charges().len(), 1);
    /// ```
    pub fn lose_answers(&self, n: u32) {
        self.ledger().lose = n;
    }

    /// Every request sent, in order.
    pub fn requests(&self) -> Vec<BankRequest> {
        self.ledger().requests.clone()
    }

    /// Every charge made, in order.
    pub fn charges(&self) -> Vec<Charge> {
        self.ledger().charges.clone()
    }
}
