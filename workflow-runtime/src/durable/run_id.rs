//! Run ids for runs that have no natural key.
//!
//! The journal's tables are indexed by run id (their primary keys). Ids
//! drawn at random (UUID v4) give each run in flight a leaf of its own in
//! each of those indexes, so every commit of a busy store writes, and
//! syncs, about a page per run it holds; ids that grow with time keep the
//! runs in flight side by side, where concurrent runs' entries share
//! pages.

/// A new run id for a run that has no natural key (an order with no
/// idempotency key from its client, a job): a UUID v7, which sorts after
/// every id this process made before it.
///
/// Prefer a key the caller has when there is one: starting with an id
/// the store has returns that run, which is what makes a retried request
/// the same run. Where there is none, an id from here rather than a
/// random one keeps the journal's writes together: on SQLite, a batch of
/// concurrent runs' rows then writes a few pages, not one per run (the
/// order API's commits took about 40 % less time, and it answered about
/// a quarter more orders a second; see the README's performance notes).
///
/// ```
/// use workflow_runtime::durable::{new_run_id, Store};
/// use workflow_runtime::host::Runner;
/// use workflow_runtime::prelude::*;
///
/// struct Double;
///
/// #[workflow(durable)]
/// impl Double {
///     #[step(given = "n")]
///     fn n(&self, n: u32) -> u32 {
///         n * 2
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (first, second) = (new_run_id(), new_run_id());
/// assert!(first < second, "ids sort in the order they were made");
/// let runner = Runner::builder().store(Store::memory()).durable(Double).build().unwrap();
/// let run = runner.start(&Double::ID, first, 21).await.unwrap();
/// assert_eq!(run.result().await.unwrap(), 42);
/// # }
/// ```
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::new_run_id;

    #[test]
    fn ids_made_in_turn_sort_in_turn_and_differ() {
        let ids: Vec<String> = (0..10_000).map(|_| new_run_id()).collect();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "each id sorts after the one made before it"
        );
    }

    #[test]
    fn an_id_is_a_version_7_uuid() {
        let id = uuid::Uuid::parse_str(&new_run_id()).expect("a UUID");
        assert_eq!(id.get_version_num(), 7);
    }
}
