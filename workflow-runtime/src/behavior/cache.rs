//! A value behavior that keeps a step's value for a while and serves it
//! without running the step again, and, if asked, serves it past that
//! while the step fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::value::{ForType, IntoBehaviorFor, NextValue, ValueBehavior, serve_instead};
use super::{BoxFuture, StepScope};
use crate::error::StepFailure;

/// What a [`Cache`] keys its values on, from the step it wraps.
type KeyFn = dyn Fn(&StepScope) -> String + Send + Sync;

/// Keeps each step's value for [`fresh_for`](Self::fresh_for): a step
/// run again within that time is answered from the cache without running
/// its body (its record shows 0 attempts). With
/// [`or_stale_on_failure`](Self::or_stale_on_failure), a step that fails
/// is answered with the last value it made, however old.
///
/// Values are keyed by workflow and step title, or by
/// [`key`](Self::key). A behavior does not see the step's input (as the
/// guide's do not), so a step whose value depends on its input (a price
/// per sku) needs a key from the run, such as a metadata entry an earlier
/// step set; with the default key, every run shares one value. The cache
/// is shared by every run of the context or runner it is registered on,
/// and keeps at most [`capacity`](Self::capacity) keys, dropping the
/// oldest.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::behavior::Cache;
/// use workflow_runtime::prelude::*;
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Rate(u32);
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let ctx = WorkflowContext::builder("Convert")
///     .behavior_for::<Rate>(Cache::fresh_for(Duration::from_secs(60)))
///     .build();
/// let fetched = std::sync::atomic::AtomicU32::new(0);
/// for _ in 0..3 {
///     let rate = Workflow::given(&ctx, "a currency", || "EUR")
///         .when("rate fetched", |_| Rate(108 + fetched.fetch_add(1, std::sync::atomic::Ordering::SeqCst)))
///         .value_behaviors()
///         .await;
///     assert_eq!(rate.unwrap(), Rate(108));
/// }
/// assert_eq!(fetched.into_inner(), 1, "fetched once, then served from the cache");
/// # }
/// ```
pub struct Cache<T> {
    fresh_for: Duration,
    stale_on_failure: bool,
    capacity: usize,
    key: Option<Arc<KeyFn>>,
    entries: Mutex<HashMap<String, Entry<T>>>,
}

struct Entry<T> {
    made: Instant,
    value: T,
}

impl<T: Clone + Send + 'static> Cache<T> {
    /// Keeps values for `fresh_for`.
    pub fn fresh_for(fresh_for: Duration) -> Self {
        Cache {
            fresh_for,
            stale_on_failure: false,
            capacity: 1024,
            key: None,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Answers a step that fails with the last value it made, however
    /// old, logged at `warn` with the failure it hides.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::behavior::Cache;
    /// let cache = Cache::<u32>::fresh_for(Duration::ZERO).or_stale_on_failure();
    /// # drop(cache);
    /// ```
    pub fn or_stale_on_failure(mut self) -> Self {
        self.stale_on_failure = true;
        self
    }

    /// Keys values on `key(step)` (by default the workflow's name and the
    /// step's title).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::behavior::Cache;
    /// /// One price per tenant, from the run's metadata.
    /// let cache = Cache::<u32>::fresh_for(Duration::from_secs(30))
    ///     .key(|step| step.ctx().metadata::<String>("tenant").unwrap_or_default());
    /// # drop(cache);
    /// ```
    pub fn key(mut self, key: impl Fn(&StepScope) -> String + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// Keeps at most `capacity` keys (1,024 by default), dropping the
    /// oldest value to make room.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use workflow_runtime::behavior::Cache;
    /// let cache = Cache::<u32>::fresh_for(Duration::from_secs(30)).capacity(16);
    /// # drop(cache);
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    fn key_of(&self, step: &StepScope) -> String {
        match &self.key {
            Some(key) => key(step),
            None => format!("{}\u{1f}{}", step.ctx().name(), step.title()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value kept under `key`, if it is fresh, or any when `stale`.
    fn kept(&self, key: &str, stale: bool) -> Option<T> {
        let entries = self.entries();
        let entry = entries.get(key)?;
        (stale || entry.made.elapsed() < self.fresh_for).then(|| entry.value.clone())
    }

    fn keep(&self, key: String, value: T) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.made)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Entry {
                made: Instant::now(),
                value,
            },
        );
    }
}

impl<T: Clone + Send + 'static> ValueBehavior<T> for Cache<T> {
    fn around<'a>(
        &'a self,
        step: &'a StepScope,
        mut next: NextValue<'a, T>,
    ) -> BoxFuture<'a, Result<T, StepFailure>> {
        Box::pin(async move {
            let key = self.key_of(step);
            if let Some(value) = self.kept(&key, false) {
                tracing::debug!(step = %step.title(), "served from the cache");
                return Ok(value);
            }
            match next.run().await {
                Ok(value) => {
                    self.keep(key, value.clone());
                    Ok(value)
                }
                Err(failure) => {
                    let stale = self.stale_on_failure.then(|| self.kept(&key, true));
                    serve_instead(
                        step,
                        failure,
                        stale.flatten(),
                        "its last value from the cache",
                    )
                }
            }
        })
    }
}

impl<T: Clone + Send + 'static> IntoBehaviorFor<T> for Cache<T> {
    fn into_behavior_for(self) -> ForType {
        ForType::value(self)
    }
}

/// A cache kept by the workflow or the app (to share it, or look at it):
/// `#[step(behaviors(self.prices.clone()))]`.
impl<T: Clone + Send + 'static> IntoBehaviorFor<T> for Arc<Cache<T>> {
    fn into_behavior_for(self) -> ForType {
        ForType::value(self)
    }
}

impl<T> std::fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("fresh_for", &self.fresh_for)
            .field("stale_on_failure", &self.stale_on_failure)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
