//! Sync and async steps mixed, on a struct of `Arc<dyn Trait>` dependencies;
//! the run future is `Send`, so it can be spawned.

use std::sync::Arc;

use workflow_runtime::prelude::*;

trait Repository: Send + Sync {
    fn load(&self, id: u32) -> String;
}

struct Memory;
impl Repository for Memory {
    fn load(&self, id: u32) -> String {
        format!("order {id}")
    }
}

struct Loader {
    repo: Arc<dyn Repository>,
}

#[workflow(description = "Loads an order")]
impl Loader {
    #[step(given = "an id")]
    async fn id(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "loaded")]
    fn load(&self, id: u32) -> String {
        self.repo.load(id)
    }

    #[step(and = "measured")]
    async fn measure(&self, text: String) -> usize {
        text.len()
    }

    #[step(finally = "done")]
    fn done(&self) {}
}

fn main() {
    let loader = Arc::new(Loader { repo: Arc::new(Memory) });
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let len = rt.block_on(async move {
        tokio::spawn(async move {
            let ctx = Loader::context().build();
            loader.run(&ctx, 7).await
        })
        .await
        .unwrap()
        .unwrap()
    });
    assert_eq!(len, 7);
}
