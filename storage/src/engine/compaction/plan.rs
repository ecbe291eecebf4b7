//! The compaction picker: a pure function from the tables per level (a version's
//! manifest view) to at most one [`Task`]. No I/O, no clock: the offline
//! simulator (`sim.rs`) drives it with synthetic flushes.
//!
//! # Leveled
//! L0 holds flushed tables, which overlap. L1..L6 each hold one sorted run;
//! level `i`'s target size is `level1_bytes * multiplier^(i-1)`.
//! - Score of L0: tables / `l0_trigger`; of Li: bytes / target(i). The level
//!   with the highest score >= 1 is compacted; L6 (the bottom) never is.
//! - L0: all its tables (they overlap each other) plus every L1 table
//!   overlapping them, merged into L1.
//! - Li: one table, taken round-robin by key (after the level's compaction
//!   pointer) so every key range gets its turn, plus the overlapping tables of
//!   Li+1. With no overlap it moves down without a rewrite (a trivial move) —
//!   unless it would land at the bottom holding tombstones, which a rewrite drops.
//! - `bottommost`: no deeper level overlaps the task's key range, so point and
//!   range tombstones may be dropped (nothing older is left to hide).

use crate::manifest::LEVELS;
use crate::sst::TableMeta;

/// Knobs of the picker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanConfig {
    pub l0_trigger: usize,
    pub level1_bytes: u64,
    pub multiplier: u64,
}

impl PlanConfig {
    /// Target size of level `level` >= 1, in bytes.
    pub fn target(&self, level: usize) -> u64 {
        assert!(level >= 1);
        (1..level).fold(self.level1_bytes, |t, _| t.saturating_mul(self.multiplier))
    }
}

/// One compaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// The level the inputs come from.
    pub level: usize,
    /// Table numbers of `level` (L0: newest first).
    pub inputs: Vec<u64>,
    /// Table numbers of `level + 1` overlapping them, in key order.
    pub next_inputs: Vec<u64>,
    /// Move the single input table down without rewriting it.
    pub trivial_move: bool,
    /// No deeper level overlaps the task's key range.
    pub bottommost: bool,
    /// The largest key of the inputs: where the level's next pick starts.
    pub pointer: Vec<u8>,
}

impl Task {
    pub fn output_level(&self) -> usize {
        self.level + 1
    }
}

/// A key range `[smallest, largest]`, the upper end exclusive if so marked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bounds {
    smallest: Vec<u8>,
    largest: Vec<u8>,
    exclusive: bool,
}

impl Bounds {
    fn of(t: &TableMeta) -> Self {
        Bounds {
            smallest: t.smallest.clone(),
            largest: t.largest.clone(),
            exclusive: t.largest_exclusive,
        }
    }

    fn union(&mut self, t: &TableMeta) {
        if t.smallest < self.smallest {
            self.smallest = t.smallest.clone();
        }
        let bigger =
            t.largest > self.largest || (t.largest == self.largest && !t.largest_exclusive);
        if bigger {
            self.largest = t.largest.clone();
            self.exclusive = t.largest_exclusive;
        }
    }

    fn as_meta(&self) -> TableMeta {
        TableMeta {
            number: 0,
            size: 0,
            smallest: self.smallest.clone(),
            largest: self.largest.clone(),
            largest_exclusive: self.exclusive,
            entries: 0,
            tombstones: 0,
            range_dels: 0,
            min_ts: crate::timestamp::Timestamp::ZERO,
            max_ts: crate::timestamp::Timestamp::ZERO,
        }
    }
}

fn union_of<'a>(tables: impl IntoIterator<Item = &'a TableMeta>) -> Option<Bounds> {
    let mut it = tables.into_iter();
    let mut b = Bounds::of(it.next()?);
    for t in it {
        b.union(t);
    }
    Some(b)
}

fn overlapping(level: &[TableMeta], bounds: &Bounds) -> Vec<u64> {
    let probe = bounds.as_meta();
    level
        .iter()
        .filter(|t| t.overlaps_table(&probe))
        .map(|t| t.number)
        .collect()
}

fn is_bottommost(levels: &[Vec<TableMeta>], output_level: usize, bounds: &Bounds) -> bool {
    levels[output_level + 1..]
        .iter()
        .all(|l| overlapping(l, bounds).is_empty())
}

/// Scores per level (L0 .. L5; the bottom level has none).
pub fn scores(levels: &[Vec<TableMeta>], config: &PlanConfig) -> Vec<f64> {
    assert_eq!(levels.len(), LEVELS);
    let mut out = vec![levels[0].len() as f64 / config.l0_trigger as f64];
    for (level, tables) in levels.iter().enumerate().take(LEVELS - 1).skip(1) {
        let bytes: u64 = tables.iter().map(|t| t.size).sum();
        out.push(bytes as f64 / config.target(level) as f64);
    }
    out
}

/// The compaction to run next, if any level is over its bound.
pub fn plan(levels: &[Vec<TableMeta>], pointers: &[Vec<u8>], config: &PlanConfig) -> Option<Task> {
    let scores = scores(levels, config);
    let (level, &score) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if score < 1.0 {
        return None;
    }
    if level == 0 {
        plan_level(levels, 0, None)
    } else {
        plan_level(levels, level, Some(&pointers[level]))
    }
}

/// A task for `level`: all its tables if `pointer` is `None` (L0, or a full
/// compaction), else the first table after the pointer (wrapping around).
pub fn plan_level(levels: &[Vec<TableMeta>], level: usize, pointer: Option<&[u8]>) -> Option<Task> {
    assert!(level + 1 < LEVELS, "the bottom level is not compacted");
    let tables = &levels[level];
    let inputs: Vec<&TableMeta> = match pointer {
        None => tables.iter().collect(),
        Some(p) => {
            let i = tables
                .iter()
                .position(|t| t.smallest.as_slice() > p)
                .unwrap_or(0);
            tables.get(i).into_iter().collect()
        }
    };
    let bounds = union_of(inputs.iter().copied())?;
    let next_inputs = overlapping(&levels[level + 1], &bounds);
    // The output spans the next level's inputs too: all of it must be clear below.
    let all = levels[level + 1]
        .iter()
        .filter(|t| next_inputs.contains(&t.number));
    let output_bounds = union_of(inputs.iter().copied().chain(all)).expect("inputs");
    let bottommost = is_bottommost(levels, level + 1, &output_bounds);
    // A move keeps tombstones; at the bottom a rewrite drops them instead.
    let has_tombstones = inputs.iter().any(|t| t.tombstones > 0 || t.range_dels > 0);
    let trivial_move =
        level > 0 && inputs.len() == 1 && next_inputs.is_empty() && !(bottommost && has_tombstones);
    Some(Task {
        level,
        inputs: inputs.iter().map(|t| t.number).collect(),
        next_inputs,
        trivial_move,
        bottommost,
        pointer: bounds.largest,
    })
}
