//! Dependencies as type parameters: `impl<R: OrderRepo> Processor<R>`,
//! plain and durable, with concrete step types. The definition holds
//! wherever the workflow type is `Send + Sync + 'static`, so it runs on a
//! spawned task and registers with a runner like any other.

use std::future::Future;
use std::sync::Mutex;

use workflow_runtime::prelude::*;

trait OrderRepo: Send + Sync + 'static {
    fn pending(&self) -> impl Future<Output = Vec<u64>> + Send;
    fn mark(&self, id: u64);
}

#[derive(Default)]
struct Memory {
    marked: Mutex<Vec<u64>>,
}

impl OrderRepo for Memory {
    async fn pending(&self) -> Vec<u64> {
        vec![1, 2, 3]
    }
    fn mark(&self, id: u64) {
        self.marked.lock().unwrap().push(id);
    }
}

struct Processor<R> {
    repo: R,
}

#[workflow(description = "Marks every pending order")]
impl<R> Processor<R>
where
    R: OrderRepo,
{
    #[step(given = "the pending orders")]
    async fn pending(&self) -> Vec<u64> {
        self.repo.pending().await
    }

    #[step(when = "each is marked", retry(max_attempts = 2))]
    fn mark(&self, ids: Vec<u64>) -> usize {
        for id in &ids {
            self.repo.mark(*id);
        }
        ids.len()
    }
}

struct Batch<const N: usize>;

#[workflow(durable)]
impl<const N: usize> Batch<N> {
    #[step(given = "a size")]
    fn size(&self, extra: u64) -> u64 {
        N as u64 + extra
    }
}

fn main() {
    use workflow_runtime::durable::Durable;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let processor = std::sync::Arc::new(Processor { repo: Memory::default() });
        let spawned = processor.clone();
        let marked = tokio::spawn(async move {
            let ctx = Processor::<Memory>::context().build();
            spawned.run(&ctx, ()).await
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(marked, 3);
        assert_eq!(*processor.repo.marked.lock().unwrap(), [1, 2, 3]);
        assert_eq!(Processor::<Memory>::NAME, "Processor");

        let runner = workflow_runtime::host::Runner::builder().build().unwrap();
        let report = runner
            .run(&Processor { repo: Memory::default() }, ())
            .await
            .unwrap();
        assert_eq!(report, 3);

        assert_eq!(Batch::<4>::NAME, "Batch");
        assert_eq!(Batch::<4>::FINGERPRINT.len(), 16);
        let ctx = Batch::<4>::context().build();
        assert_eq!(Batch::<4>.run(&ctx, 1).await.unwrap(), 5);
    });
}
