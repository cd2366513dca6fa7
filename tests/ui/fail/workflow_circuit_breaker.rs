use workflow_runtime::prelude::*;

struct Report;

#[workflow(circuit_breaker(name = "bank"))]
impl Report {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

fn main() {}
