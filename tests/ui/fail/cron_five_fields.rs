use workflow_runtime::prelude::*;

struct Report;

#[workflow(cron = "0 */5 * * *")]
impl Report {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

fn main() {}
