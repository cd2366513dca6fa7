use workflow_runtime::prelude::*;

struct Report;

#[workflow(cron = "61 * * * * *")]
impl Report {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

fn main() {}
