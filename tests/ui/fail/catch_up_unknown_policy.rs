use workflow_runtime::prelude::*;

struct Report;

#[workflow(durable, every = "1h", catch_up = "all")]
impl Report {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

fn main() {}
