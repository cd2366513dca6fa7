//! `Runner::start` on PostgreSQL while the same runner's worker polls:
//! the run is claimed once, by one of them, and its step runs once. Before,
//! `start` claimed a run its own worker had just claimed, the epoch moved
//! on, the worker's step ran and was refused, and the step ran again: 33
//! of 400 starts ran their charge twice. The same id started many times
//! at once (a client retrying with its idempotency key) is one run too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workflow_runtime::durable::{StepCtx, Store};
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TempPostgres;

/// How often each run's charge ran, by run id.
#[derive(Default)]
struct Charges(Mutex<HashMap<String, u32>>);

struct Charge(Arc<Charges>);

#[workflow(durable)]
impl Charge {
    #[step(given = "an order")]
    fn order(&self, cents: u32) -> u32 {
        cents
    }

    #[step(when = "charge")]
    async fn charge(&self, step: &StepCtx, cents: u32) -> u32 {
        *self
            .0
            .0
            .lock()
            .unwrap()
            .entry(step.run_id().to_owned())
            .or_default() += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
        cents
    }
}

async fn runner(url: &str, charges: &Arc<Charges>) -> Runner {
    Runner::builder()
        .store(Store::postgres(url).await.unwrap())
        .durable(Charge(charges.clone()))
        .instance("api")
        .poll_every(Duration::from_millis(1))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_never_claims_a_run_its_own_worker_drives() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let charges = Arc::new(Charges::default());
    let runner = runner(&pg.url(), &charges).await;
    let worker = tokio::spawn({
        let runner = runner.clone();
        async move { runner.work(64).await }
    });
    let starts = 200;
    let mut handles = Vec::new();
    for n in 0..starts {
        handles.push(
            runner
                .start(&Charge::ID, format!("o-{n}"), n)
                .await
                .unwrap(),
        );
    }
    for (n, handle) in handles.into_iter().enumerate() {
        let cents = tokio::time::timeout(Duration::from_secs(60), handle.result())
            .await
            .expect("the run ends")
            .unwrap();
        assert_eq!(cents as usize, n);
    }
    worker.abort();
    let charges = charges.0.lock().unwrap();
    assert_eq!(charges.len(), starts as usize);
    let twice: Vec<_> = charges.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "charged more than once: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_id_started_many_times_at_once_runs_once() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let charges = Arc::new(Charges::default());
    let runner = runner(&pg.url(), &charges).await;
    for round in 0..20 {
        let id = format!("retried-{round}");
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let (runner, id) = (runner.clone(), id.clone());
                tokio::spawn(async move { runner.start(&Charge::ID, id, 7).await })
            })
            .collect();
        for start in starts {
            let handle = start.await.unwrap().unwrap();
            let ended = tokio::time::timeout(Duration::from_secs(60), handle.result()).await;
            assert_eq!(ended.expect("the run ends").unwrap(), 7);
        }
        assert_eq!(
            charges.0.lock().unwrap()[&id],
            1,
            "{id} charged more than once"
        );
    }
}
