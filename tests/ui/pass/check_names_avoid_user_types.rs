//! The type checks are named after the step methods (`save` → `SaveInput`,
//! `SaveResult`); a user type of that name in a step's signature is not
//! shadowed by them.
use workflow_runtime::prelude::*;

#[derive(Clone, Debug)]
pub struct SaveInput(u32);

#[derive(Debug)]
pub struct SaveResult;

impl std::fmt::Display for SaveResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not saved")
    }
}

impl std::error::Error for SaveResult {}

struct Store;

#[workflow]
impl Store {
    #[step(given = "a record")]
    fn record(&self, n: u32) -> SaveInput {
        SaveInput(n)
    }

    #[step(when = "saved")]
    async fn save(&self, input: SaveInput) -> Result<SaveInput, SaveResult> {
        Ok(input)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Store::context().build();
    let saved = Store.run(&ctx, 7).await.unwrap();
    assert_eq!(saved.0, 7);
}
