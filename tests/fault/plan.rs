//! The fault suites' plans: what each step slot of a drawn run does, how
//! the run must end, and the seeded generator that draws them. Shared by
//! the SQLite suite (`fault_suite.rs`) and the PostgreSQL one
//! (`fault_suite_postgres.rs`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What one step slot does in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// Inactive slots pass their value on and do nothing else.
    pub active: bool,
    /// The step fails while its attempt number is at most this.
    pub fail_until: u32,
    /// Its compensation fails on every attempt.
    pub undo_fails: bool,
}

/// A run's plan: its id and its slots. The workflow's input, so every
/// life of the process reads the same plan from the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub run: String,
    pub slots: [Slot; SLOTS],
}

pub const SLOTS: usize = 8;
/// Attempts each slot gets: its retry's `max_attempts`, or 1.
pub const ATTEMPTS: [u32; SLOTS] = [1, 3, 2, 1, 1, 1, 3, 1];
/// Slots with a compensation.
pub const UNDONE: [usize; 2] = [1, 5];

/// How a plan's run must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Completed,
    /// Failed for good at this slot, its compensations passing.
    Failed(usize),
    /// Failed at this slot, and a compensation failed too.
    CompensationFailed(usize),
}

impl Plan {
    pub fn expected(&self) -> Expected {
        let failed_at = (0..SLOTS).find(|&i| {
            let slot = self.slots[i];
            slot.active && i != 7 && slot.fail_until >= ATTEMPTS[i]
        });
        match failed_at {
            None => Expected::Completed,
            Some(k) => {
                let undo_fails = UNDONE
                    .iter()
                    .any(|&j| j < k && self.slots[j].active && self.slots[j].undo_fails);
                if undo_fails {
                    Expected::CompensationFailed(k)
                } else {
                    Expected::Failed(k)
                }
            }
        }
    }
}

/// splitmix64: small, seedable, and the same on every platform.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn draw_plan(rng: &mut Rng, run: String) -> Plan {
    let mut slots = [Slot::default(); SLOTS];
    // The first step always runs; the others are drawn, so a run has 2 to
    // 8 active steps (the first plus at least one more).
    slots[0].active = true;
    for slot in slots.iter_mut().skip(1) {
        slot.active = rng.chance(70);
    }
    if !slots.iter().skip(1).any(|s| s.active) {
        slots[1 + rng.below(7) as usize].active = true;
    }
    for (i, slot) in slots.iter_mut().enumerate() {
        if i == 7 || !slot.active {
            continue;
        }
        // Mostly passing; some retried past a failure; some failing for good.
        slot.fail_until = match rng.below(10) {
            0 => ATTEMPTS[i],
            1 | 2 => rng.below(u64::from(ATTEMPTS[i])) as u32,
            _ => 0,
        };
        slot.undo_fails = rng.chance(15);
    }
    Plan { run, slots }
}

impl Plan {
    /// Checks the compensations a run's steps saw, in order (`undone`:
    /// the slots whose compensation passed; `undos`: how many started)
    /// against its plan: of the completed compensated steps before the
    /// failure, each at least once and at most `bound` times, latest
    /// first; none for a run that completed.
    pub fn check_compensations(
        &self,
        undone: &[usize],
        undos: usize,
        bound: usize,
    ) -> Result<(), String> {
        let k = match self.expected() {
            Expected::Completed if undos > 0 => {
                return Err(format!("run {} completed, yet was undone", self.run));
            }
            Expected::Completed => return Ok(()),
            Expected::Failed(k) | Expected::CompensationFailed(k) => k,
        };
        let owed: BTreeSet<usize> = UNDONE
            .iter()
            .copied()
            .filter(|&j| j < k && self.slots[j].active && !self.slots[j].undo_fails)
            .collect();
        let got: BTreeSet<usize> = undone.iter().copied().collect();
        if got != owed {
            return Err(format!(
                "run {}: compensated {got:?}, owed {owed:?}",
                self.run
            ));
        }
        let mut firsts: Vec<usize> = Vec::new();
        for slot in undone {
            let n = undone.iter().filter(|s| *s == slot).count();
            if n > bound {
                return Err(format!(
                    "run {}: slot {slot} compensated {n} times",
                    self.run
                ));
            }
            if !firsts.contains(slot) {
                firsts.push(*slot);
            }
        }
        if firsts.windows(2).any(|w| w[0] < w[1]) {
            return Err(format!(
                "run {}: compensations ran in the order {firsts:?}",
                self.run
            ));
        }
        Ok(())
    }
}

/// A failure a plan asked for.
#[derive(Debug)]
pub struct Planned(pub &'static str);

impl std::fmt::Display for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "planned failure: {}", self.0)
    }
}

impl std::error::Error for Planned {}
