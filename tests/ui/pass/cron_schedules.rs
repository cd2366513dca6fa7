use workflow_runtime::host::{CatchUp, Schedule};
use workflow_runtime::prelude::*;

/// Every five minutes, UTC.
struct Sweep;

#[workflow(cron = "0 */5 * * * *", run_immediately)]
impl Sweep {
    #[step(given = "a sweep")]
    fn sweep(&self) -> u8 {
        1
    }
}

/// Nine o'clock on weekdays, Paris time.
struct Morning;

#[workflow(cron = "0 0 9 * * Mon-Fri", zone = "Europe/Paris", catch_up = "latest")]
impl Morning {
    #[step(given = "a report")]
    fn report(&self) -> u8 {
        1
    }
}

fn main() {
    assert_eq!(
        Sweep::schedule(),
        Some(Schedule::cron("0 */5 * * * *").unwrap().run_immediately(true))
    );
    assert_eq!(
        Morning::schedule(),
        Some(
            Schedule::cron_in("0 0 9 * * Mon-Fri", "Europe/Paris")
                .unwrap()
                .catch_up(CatchUp::Latest)
        )
    );
}
