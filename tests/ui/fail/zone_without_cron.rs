use workflow_runtime::prelude::*;

struct Report;

#[workflow(every = "1h", zone = "Europe/Paris")]
impl Report {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

fn main() {}
