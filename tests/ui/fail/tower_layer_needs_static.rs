//! A tower layer that spawns its service (`Buffer`) needs it `'static`;
//! the rest of a step's stack borrows the running step, so this cannot
//! compile (rather than fail at run time).
use tower::buffer::BufferLayer;
use workflow_runtime::behavior::TowerLayer;
use workflow_runtime::prelude::*;

async fn run(ctx: &WorkflowContext) {
    let _ = Workflow::given(ctx, "one", || 1)
        .when_async("buffered", |n| async move { n + 1 })
        .with(TowerLayer::new(BufferLayer::<()>::new(8)))
        .await;
}

fn main() {}
