#![allow(dead_code)]
use workflow_runtime::prelude::*;

trait Repo: Send + Sync + 'static {
    type Row;
}

struct Rows<T>(Vec<T>);

struct Processor<R> {
    repo: R,
}

// The impl's parameter may type the workflow's fields, not its steps:
// one error on each step type that names it.
#[workflow]
impl<R: Repo> Processor<R> {
    #[step(given = "pending rows")]
    fn rows(&self, rows: Rows<R>) -> usize {
        rows.0.len()
    }

    #[step(when = "counted")]
    fn count(&self, n: usize) -> Result<Option<R>, std::io::Error> {
        let _ = n;
        Ok(None)
    }
}

fn main() {}
