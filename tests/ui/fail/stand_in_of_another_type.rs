#![allow(dead_code)]
use workflow_runtime::prelude::*;

struct Pay;

#[workflow]
impl Pay {
    #[step(given = "an order")]
    fn order(&self, cents: u32) -> u32 { cents }

    #[step(when = "charge card")]
    fn charge(&self, cents: u32) -> String { format!("charged {cents}") }
}

fn main() {
    // "charge card" makes a `String`: a stand-in making a number does not build.
    let _ = Pay::context().stand_in(Pay::CHARGE, |cents: &u32| Ok::<_, std::io::Error>(*cents));
}
