//! Looking over many durable runs and keeping their number in hand:
//! listing them page by page, and purging the finished ones a retention
//! policy no longer keeps.

use super::runner::Runner;
use crate::durable::{DurableError, Retention, RunFilter, RunPage};

impl Runner {
    /// A page of the runs `filter` admits in the runner's store, newest
    /// first (see [`Store::runs`](crate::durable::Store::runs)).
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{RunFilter, Store};
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// runner.start(&Ping::ID, "order-1", ()).await.unwrap().result().await.unwrap();
    /// runner.start(&Ping::ID, "refund-1", ()).await.unwrap().result().await.unwrap();
    /// let page = runner.runs(&RunFilter::new().id_prefix("order-")).await.unwrap();
    /// assert_eq!(page.runs.len(), 1);
    /// assert_eq!(page.runs[0].id, "order-1");
    /// # }
    /// ```
    pub async fn runs(&self, filter: &RunFilter) -> Result<RunPage, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        Ok(store.runs(filter).await?)
    }

    /// Removes the finished runs `policy` no longer keeps, as of the
    /// runner's clock, and says how many went. Running and parked runs
    /// stay whatever their age.
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::durable::{Retention, Store};
    /// # use workflow_runtime::host::Runner;
    /// # struct Ping;
    /// # #[workflow(durable)] impl Ping { #[step(given = "ping")] fn ping(&self) -> u8 { 1 } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).durable(Ping).build().unwrap();
    /// for id in ["p-1", "p-2", "p-3"] {
    ///     runner.start(&Ping::ID, id, ()).await.unwrap().result().await.unwrap();
    /// }
    /// assert_eq!(runner.purge(&Retention::new().keep_at_most(1)).await.unwrap(), 2);
    /// # }
    /// ```
    pub async fn purge(&self, policy: &Retention) -> Result<u64, DurableError> {
        let store = self.store().ok_or(DurableError::NoStore)?;
        Ok(store.purge_at(policy, self.clock().now_ms()).await?)
    }

    /// Purges by `policy` every [`policy.every`](Retention::every) until
    /// `stop` completes: what a host with
    /// [`retention`](super::HostBuilder::retention) runs. Every instance
    /// sharing a store may run it; a store many share lets one purge at a
    /// time. A purge that fails is logged and tried at the next turn.
    ///
    /// ```
    /// # use workflow_runtime::durable::{Retention, Store};
    /// # use workflow_runtime::host::Runner;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let runner = Runner::builder().store(Store::memory()).build().unwrap();
    /// // Purges at once, then every hour until the service stops.
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let retaining = tokio::spawn({
    ///     let runner = runner.clone();
    ///     async move {
    ///         let stopped = async { let _ = stopped.await; };
    ///         runner.retain_until(Retention::new().keep_at_most(1_000), stopped).await
    ///     }
    /// });
    /// drop(stop);
    /// retaining.await.unwrap();
    /// # }
    /// ```
    pub async fn retain_until(
        &self,
        policy: Retention,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            match self.purge(&policy).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "purged finished durable runs"),
                Err(error) => tracing::warn!(%error, "could not purge finished durable runs"),
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(policy.every) => {}
            }
        }
    }
}
