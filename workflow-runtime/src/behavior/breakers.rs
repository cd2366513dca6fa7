//! Circuit breakers by name, owned by whoever the user made to hold them: a
//! runner, a host, or a `Breakers` of their own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::circuit_breaker::{BreakerConfig, CircuitBreaker};

/// A set of circuit breakers by name. Cheap to clone: clones share the
/// set.
///
/// A [`Runner`](crate::host::Runner) (and the host around it) owns one and
/// hands it to every context it makes, so the steps that name `"payments"`
/// share one breaker across the runner's runs, its health report shows
/// exactly these breakers, and another runner in the same process has its
/// own. A context made without a runner gets a set of its own.
///
/// ```
/// use workflow_runtime::behavior::{BreakerConfig, Breakers};
///
/// let breakers = Breakers::new();
/// let a = breakers.breaker("payments", BreakerConfig::default());
/// let b = breakers.breaker("payments", BreakerConfig::default());
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// assert!(Breakers::new().get("payments").is_none());
/// ```
#[derive(Clone, Default)]
pub struct Breakers {
    by_name: Arc<Mutex<BTreeMap<Arc<str>, Arc<CircuitBreaker>>>>,
}

impl std::fmt::Debug for Breakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.lock().keys().map(|name| &**name))
            .finish()
    }
}

impl Breakers {
    /// An empty set.
    ///
    /// ```
    /// # use workflow_runtime::behavior::Breakers;
    /// assert!(Breakers::new().all().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Arc<str>, Arc<CircuitBreaker>>> {
        // No code runs under this lock that could panic mid-update.
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The breaker named `name`, made with `config` if the set has none.
    /// A breaker keeps the config it was made with: asking again with
    /// another config logs a warning naming both and returns the existing
    /// breaker, so every step naming it shares one state.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::behavior::{BreakerConfig, Breakers};
    ///
    /// let breakers = Breakers::new();
    /// let first = breakers.breaker("bank", BreakerConfig::new(5, Duration::from_secs(60)));
    /// let again = breakers.breaker("bank", BreakerConfig::new(2, Duration::from_secs(1)));
    /// assert_eq!(again.config().failures, 5);
    /// # drop(first);
    /// ```
    pub fn breaker(&self, name: &str, config: BreakerConfig) -> Arc<CircuitBreaker> {
        let mut by_name = self.lock();
        if let Some(existing) = by_name.get(name) {
            if existing.config() != config {
                tracing::warn!(
                    breaker = name,
                    kept = ?existing.config(),
                    asked = ?config,
                    "circuit breaker already exists with another config; keeping the first"
                );
            }
            return existing.clone();
        }
        let breaker = CircuitBreaker::new(name, config);
        by_name.insert(name.into(), breaker.clone());
        breaker
    }

    /// Adds `breaker` under its name, replacing any breaker of that name;
    /// gives back the one it replaced.
    ///
    /// ```
    /// use workflow_runtime::behavior::{BreakerConfig, Breakers, CircuitBreaker};
    ///
    /// let breakers = Breakers::new();
    /// let mine = CircuitBreaker::new("mail", BreakerConfig::default());
    /// assert!(breakers.insert(mine.clone()).is_none());
    /// assert!(std::sync::Arc::ptr_eq(&breakers.get("mail").unwrap(), &mine));
    /// ```
    pub fn insert(&self, breaker: Arc<CircuitBreaker>) -> Option<Arc<CircuitBreaker>> {
        self.lock().insert(breaker.name().into(), breaker)
    }

    /// The breaker named `name`, if the set has one.
    ///
    /// ```
    /// # use workflow_runtime::behavior::{BreakerConfig, Breakers};
    /// let breakers = Breakers::new();
    /// breakers.breaker("bank", BreakerConfig::default());
    /// assert_eq!(breakers.get("bank").unwrap().name(), "bank");
    /// ```
    pub fn get(&self, name: &str) -> Option<Arc<CircuitBreaker>> {
        self.lock().get(name).cloned()
    }

    /// Every breaker in the set, by name.
    ///
    /// ```
    /// # use workflow_runtime::behavior::{BreakerConfig, Breakers};
    /// let breakers = Breakers::new();
    /// breakers.breaker("b", BreakerConfig::default());
    /// breakers.breaker("a", BreakerConfig::default());
    /// let names: Vec<_> = breakers.all().iter().map(|b| b.name().to_owned()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        self.lock().values().cloned().collect()
    }
}
