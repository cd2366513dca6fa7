use workflow_runtime::prelude::*;

struct Report;

#[workflow(cron = "0 0 9 * * Mon-Fri", zone = "Europe/Pariss")]
impl Report {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

fn main() {}
