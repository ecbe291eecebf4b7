//! Which WAL records the ranges of a shard still need: the argument for
//! [`Wal::truncate_before`](super::Wal::truncate_before).
//!
//! Pure bookkeeping, no I/O. The Raft layer reports
//! - every log entry it appends or replays: `(range, index) -> lsn`; re-appending
//!   an index (a new leader overwriting a conflicting suffix) supersedes the old
//!   entries from that index on;
//! - every single-instance record (e.g. a range's HardState) as a *pin* in a slot:
//!   only the newest record per (range, slot) is needed;
//! - releases: entries up to an index are no longer needed once the range's applied
//!   state is persisted (memtable flushed) and its Raft log compacted past it.
//!
//! [`Retention::min_needed`] is then the lowest LSN anything still needs. An idle
//! range's old pin holds truncation back; [`Retention::stale_pins`] lists the pins
//! below an LSN so that the owner can re-append them (a fresh HardState record)
//! and let the log move on.

use super::Lsn;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Default)]
pub struct Retention {
    /// Per range: (Raft index, LSN) of the entries still needed, by index.
    entries: BTreeMap<u64, VecDeque<(u64, Lsn)>>,
    /// Per (range, slot): the LSN of the newest single-instance record.
    pins: BTreeMap<(u64, u8), Lsn>,
}

impl Retention {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that entry `index` of `range` is at `lsn`. Entries of `range` at or
    /// above `index` from earlier records are superseded.
    pub fn entry(&mut self, range: u64, index: u64, lsn: Lsn) {
        let log = self.entries.entry(range).or_default();
        while log.back().is_some_and(|&(i, _)| i >= index) {
            log.pop_back();
        }
        assert!(
            log.back().is_none_or(|&(_, l)| l < lsn),
            "LSNs must rise within a range"
        );
        log.push_back((index, lsn));
    }

    /// Notes the newest record of a single-instance kind (`slot`) of `range`.
    pub fn pin(&mut self, range: u64, slot: u8, lsn: Lsn) {
        let old = self.pins.insert((range, slot), lsn);
        assert!(old.is_none_or(|old| old < lsn), "a pin must move forward");
    }

    /// Entries of `range` up to and including `index` are no longer needed.
    pub fn release(&mut self, range: u64, index: u64) {
        if let Some(log) = self.entries.get_mut(&range) {
            while log.front().is_some_and(|&(i, _)| i <= index) {
                log.pop_front();
            }
            if log.is_empty() {
                self.entries.remove(&range);
            }
        }
    }

    /// The range left this shard (or was merged away): it needs nothing more.
    pub fn remove_range(&mut self, range: u64) {
        self.entries.remove(&range);
        self.pins.retain(|&(r, _), _| r != range);
    }

    /// The lowest LSN still needed; `next_lsn` (the log's next LSN) if none is.
    pub fn min_needed(&self, next_lsn: Lsn) -> Lsn {
        let entries = self
            .entries
            .values()
            .filter_map(|log| log.front().map(|&(_, l)| l));
        entries
            .chain(self.pins.values().copied())
            .min()
            .unwrap_or(next_lsn)
            .min(next_lsn)
    }

    /// The pins older than `lsn`, to be re-appended so truncation can pass them.
    pub fn stale_pins(&self, lsn: Lsn) -> impl Iterator<Item = (u64, u8)> + '_ {
        self.pins
            .iter()
            .filter(move |&(_, &l)| l < lsn)
            .map(|(&key, _)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SimRng;

    /// Brute-force model: every record with a "still needed" flag.
    #[derive(Default)]
    struct Model {
        records: Vec<(u64, Option<u64>, u8, Lsn, bool)>, // range, index | pin slot, lsn, needed
    }

    impl Model {
        fn min_needed(&self, next: Lsn) -> Lsn {
            let needed = self.records.iter().filter(|r| r.4).map(|r| r.3);
            needed.min().unwrap_or(next)
        }
    }

    #[test]
    fn matches_brute_force_model() {
        for seed in 0..200 {
            let mut rng = SimRng::new(seed);
            let mut retention = Retention::new();
            let mut model = Model::default();
            let mut next_index = [1u64; 4];
            let mut lsn = 1;
            for _ in 0..300 {
                let range = rng.below(4);
                match rng.below(10) {
                    0..=5 => {
                        // Append, sometimes overwriting a suffix (a new leader).
                        let r = range as usize;
                        if rng.chance(10) && next_index[r] > 1 {
                            next_index[r] = rng.range(1, next_index[r]);
                        }
                        let index = next_index[r];
                        next_index[r] += 1;
                        for rec in model.records.iter_mut() {
                            if rec.0 == range && rec.1.is_some_and(|i| i >= index) {
                                rec.4 = false;
                            }
                        }
                        model.records.push((range, Some(index), 0, Lsn(lsn), true));
                        retention.entry(range, index, Lsn(lsn));
                        lsn += 1;
                    }
                    6 => {
                        let slot = rng.below(2) as u8;
                        for rec in model.records.iter_mut() {
                            if rec.0 == range && rec.1.is_none() && rec.2 == slot {
                                rec.4 = false;
                            }
                        }
                        model.records.push((range, None, slot, Lsn(lsn), true));
                        retention.pin(range, slot, Lsn(lsn));
                        lsn += 1;
                    }
                    7 | 8 => {
                        let index = rng.below(next_index[range as usize] + 1);
                        for rec in model.records.iter_mut() {
                            if rec.0 == range && rec.1.is_some_and(|i| i <= index) {
                                rec.4 = false;
                            }
                        }
                        retention.release(range, index);
                    }
                    _ => {
                        if rng.chance(20) {
                            for rec in model.records.iter_mut().filter(|r| r.0 == range) {
                                rec.4 = false;
                            }
                            retention.remove_range(range);
                        }
                    }
                }
                let next = Lsn(lsn);
                assert_eq!(
                    retention.min_needed(next),
                    model.min_needed(next),
                    "seed {seed}"
                );
            }
        }
    }

    #[test]
    fn stale_pins_block_truncation_until_rewritten() {
        let mut r = Retention::new();
        r.pin(1, 0, Lsn(3));
        r.entry(2, 10, Lsn(4));
        r.release(2, 10);
        assert_eq!(r.min_needed(Lsn(100)), Lsn(3));
        assert_eq!(r.stale_pins(Lsn(50)).collect::<Vec<_>>(), [(1, 0)]);
        r.pin(1, 0, Lsn(100));
        assert_eq!(r.min_needed(Lsn(101)), Lsn(100));
        assert_eq!(r.stale_pins(Lsn(50)).count(), 0);
    }
}
