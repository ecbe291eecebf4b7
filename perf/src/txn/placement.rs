//! Where the txn workload's rows live, and which rows each client uses.
//!
//! The server tells where rows live through `SHOW RANGES FROM TABLE t`
//! (TellerDB; see `docs/sql.md`): one row per range with its bounds as
//! primary keys (`/42`, `/Min`, `/Max`, `<before:...>`, `<after:...>`) and
//! its owning shard. [`Layout`] is that answer for a table whose primary
//! key is one integer; [`assign`] turns it into each client's *units* (a
//! row to update, or a pair of rows to transfer between) so that every
//! unit has the placement asked for, and [`check_held`] says afterwards
//! whether it still had it (a range may have split or moved meanwhile).
//!
//! All of it is pure: the layout comes in as text, the choice is seeded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use clap::ValueEnum;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Where the rows of one unit must lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// Anywhere: rows are drawn without looking at placement (works on any
    /// server).
    Any,
    /// Both rows in one range (so on one shard): a single-range
    /// transaction, which commits in one phase.
    SameRange,
    /// Both rows on one shard but in two different ranges: a multi-range
    /// commit that never crosses shards.
    SameShard,
    /// The rows on two different shards.
    CrossShard,
}

impl Placement {
    /// The name the command line uses.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }
}

/// One range of the table: primary keys `[start, end)` (`None`: unbounded)
/// on `shard`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRange {
    /// The range id as the server prints it.
    pub range_id: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub shard: usize,
}

impl TableRange {
    fn contains(&self, id: i64) -> bool {
        self.start.is_none_or(|s| id >= s) && self.end.is_none_or(|e| id < e)
    }
}

/// Reads a table-relative bound of `SHOW RANGES FROM TABLE`: `/Min`,
/// `<before:...>` (start) and `/Max`, `<after:...>` (end) are unbounded,
/// `/42` is the primary key 42. Anything else (a composite or non-integer
/// key, a bound that is no row key) is refused.
pub fn parse_bound(text: &str) -> Result<Option<i64>, String> {
    if matches!(text, "/Min" | "/Max")
        || text.starts_with("<before:")
        || text.starts_with("<after:")
    {
        return Ok(None);
    }
    text.strip_prefix('/')
        .and_then(|v| v.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            format!("range bound {text:?} is not one integer primary key (the txn table's key)")
        })
}

/// The table's ranges in key order, tiling all its primary keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub ranges: Vec<TableRange>,
}

impl Layout {
    /// Checks that `ranges` are in key order and tile the integers.
    pub fn new(ranges: Vec<TableRange>) -> Result<Layout, String> {
        let first = ranges.first().ok_or("SHOW RANGES returned no range")?;
        if first.start.is_some() {
            return Err(format!("the first range starts at {:?}", first.start));
        }
        for pair in ranges.windows(2) {
            match (pair[0].end, pair[1].start) {
                (Some(end), Some(start)) if end == start => {}
                _ => {
                    return Err(format!(
                        "ranges {} and {} are not adjacent",
                        pair[0].range_id, pair[1].range_id
                    ))
                }
            }
        }
        let last = ranges.last().expect("not empty");
        if last.end.is_some() {
            return Err(format!("the last range ends at {:?}", last.end));
        }
        Ok(Layout { ranges })
    }

    /// The range holding primary key `id`.
    pub fn locate(&self, id: i64) -> &TableRange {
        let at = self
            .ranges
            .partition_point(|r| r.end.is_some_and(|e| e <= id));
        let range = &self.ranges[at];
        assert!(range.contains(id), "the layout tiles every key");
        range
    }

    /// Shards that own any range of the table.
    pub fn shards(&self) -> BTreeSet<usize> {
        self.ranges.iter().map(|r| r.shard).collect()
    }

    /// The rows `0..rows` each range holds, in key order.
    fn rows_by_range(&self, rows: u64) -> Vec<(usize, Vec<i64>)> {
        let n = i64::try_from(rows).unwrap_or(i64::MAX);
        self.ranges
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let from = r.start.unwrap_or(0).clamp(0, n);
                let to = r.end.unwrap_or(n).clamp(0, n);
                (i, (from..to).collect())
            })
            .collect()
    }
}

/// What one operation touches: one row (update) or two (transfer).
pub type Unit = Vec<i64>;

/// The rows each client uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Units per client, indexed by client.
    pub clients: Vec<Vec<Unit>>,
}

impl Assignment {
    /// Every row any client uses.
    pub fn rows(&self) -> BTreeSet<i64> {
        self.clients.iter().flatten().flatten().copied().collect()
    }

    /// The ranges (ids) and shards the used rows lie in.
    pub fn spread(&self, layout: &Layout) -> (usize, usize) {
        let rows = self.rows();
        let ranges: BTreeSet<&str> = rows
            .iter()
            .map(|&id| layout.locate(id).range_id.as_str())
            .collect();
        let shards: BTreeSet<usize> = rows.iter().map(|&id| layout.locate(id).shard).collect();
        (ranges.len(), shards.len())
    }
}

/// What to assign.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rows per unit: 1 (update) or 2 (transfer).
    pub unit_rows: usize,
    pub placement: Placement,
    /// Rows `0..rows` exist.
    pub rows: u64,
    pub clients: usize,
    /// Units per client (fewer if there are not enough).
    pub per_client: usize,
    /// Every client uses the same units (contention), else each its own.
    pub shared: bool,
    /// Seed of the shuffle for `Any`.
    pub seed: u64,
}

/// Chooses each client's units (see the module docs). Units of different
/// clients share no row unless `plan.shared`; consecutive clients start in
/// different ranges and shards, so load spreads.
pub fn assign(plan: &Plan, layout: Option<&Layout>) -> Result<Assignment, String> {
    assert!(plan.clients > 0 && plan.per_client > 0, "{plan:?}");
    assert!(matches!(plan.unit_rows, 1 | 2), "{plan:?}");
    let groups = match (plan.placement, layout) {
        (Placement::Any, _) => vec![any_units(plan)],
        (_, None) => {
            return Err(format!(
                "placement {} needs to know where rows live",
                plan.placement.name()
            ))
        }
        (_, Some(_)) if plan.unit_rows == 1 => {
            return Err(format!(
                "placement {} is about two rows: an update touches one (use --placement any)",
                plan.placement.name()
            ))
        }
        (Placement::SameRange, Some(l)) => same_range_pairs(l, plan.rows),
        (Placement::SameShard, Some(l)) => same_shard_pairs(l, plan.rows),
        (Placement::CrossShard, Some(l)) => vec![cross_shard_pairs(l, plan.rows)],
    };
    let units = interleave(groups);
    let wanted = if plan.shared { 1 } else { plan.clients };
    if units.len() < wanted {
        return Err(format!(
            "only {} units ({} rows each) have placement {} for {} clients with their own rows: \
             load more rows, or make the ranges smaller",
            units.len(),
            plan.unit_rows,
            plan.placement.name(),
            plan.clients
        ));
    }
    let clients = if plan.shared {
        let pool: Vec<Unit> = units.into_iter().take(plan.per_client).collect();
        vec![pool; plan.clients]
    } else {
        let per = plan.per_client.min(units.len() / plan.clients);
        (0..plan.clients)
            .map(|c| {
                (0..per)
                    .map(|k| units[c + k * plan.clients].clone())
                    .collect()
            })
            .collect()
    };
    Ok(Assignment { clients })
}

fn any_units(plan: &Plan) -> Vec<Unit> {
    let n = i64::try_from(plan.rows).unwrap_or(i64::MAX);
    let mut ids: Vec<i64> = (0..n).collect();
    ids.shuffle(&mut SmallRng::seed_from_u64(plan.seed));
    ids.chunks_exact(plan.unit_rows)
        .map(<[i64]>::to_vec)
        .collect()
}

/// Pairs of neighbouring rows within each range; a group per range, the
/// groups ordered so that consecutive ones lie on different shards.
fn same_range_pairs(layout: &Layout, rows: u64) -> Vec<Vec<Unit>> {
    let mut by_shard: BTreeMap<usize, Vec<Vec<Unit>>> = BTreeMap::new();
    for (i, ids) in layout.rows_by_range(rows) {
        let pairs: Vec<Unit> = ids.chunks_exact(2).map(<[i64]>::to_vec).collect();
        if !pairs.is_empty() {
            by_shard
                .entry(layout.ranges[i].shard)
                .or_default()
                .push(pairs);
        }
    }
    interleave(by_shard.into_values().collect())
}

/// Per shard, pairs of rows from two different ranges of that shard (the
/// two with the most rows left each time); a group per shard.
fn same_shard_pairs(layout: &Layout, rows: u64) -> Vec<Vec<Unit>> {
    let mut by_shard: BTreeMap<usize, Vec<VecDeque<i64>>> = BTreeMap::new();
    for (i, ids) in layout.rows_by_range(rows) {
        if !ids.is_empty() {
            by_shard
                .entry(layout.ranges[i].shard)
                .or_default()
                .push(ids.into());
        }
    }
    by_shard.into_values().map(pair_across).collect()
}

/// Pairs of rows on two different shards (the two with the most rows left
/// each time), each shard's rows taken from its ranges in turn.
fn cross_shard_pairs(layout: &Layout, rows: u64) -> Vec<Unit> {
    let mut by_shard: BTreeMap<usize, Vec<Vec<i64>>> = BTreeMap::new();
    for (i, ids) in layout.rows_by_range(rows) {
        by_shard
            .entry(layout.ranges[i].shard)
            .or_default()
            .push(ids);
    }
    let queues: Vec<VecDeque<i64>> = by_shard
        .into_values()
        .map(|ranges| interleave(ranges).into())
        .collect();
    pair_across(queues)
}

/// Pairs one element of each of two different queues, always the two
/// longest, until fewer than two queues have elements left.
fn pair_across(mut queues: Vec<VecDeque<i64>>) -> Vec<Unit> {
    let mut pairs = Vec::new();
    loop {
        let mut order: Vec<usize> = (0..queues.len())
            .filter(|&q| !queues[q].is_empty())
            .collect();
        if order.len() < 2 {
            return pairs;
        }
        order.sort_by_key(|&q| std::cmp::Reverse(queues[q].len()));
        let a = queues[order[0]].pop_front().expect("not empty");
        let b = queues[order[1]].pop_front().expect("not empty");
        pairs.push(vec![a, b]);
    }
}

/// The groups' elements taken in turn: the first of each group, then the
/// second of each, and so on.
fn interleave<T>(groups: Vec<Vec<T>>) -> Vec<T> {
    let mut iters: Vec<std::vec::IntoIter<T>> = groups.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for it in &mut iters {
            if let Some(x) = it.next() {
                out.push(x);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Whether `unit` has `placement` in `layout`.
pub fn holds(placement: Placement, unit: &[i64], layout: &Layout) -> bool {
    let ranges: Vec<&TableRange> = unit.iter().map(|&id| layout.locate(id)).collect();
    match (placement, ranges.as_slice()) {
        (Placement::Any, _) | (_, [_]) => true,
        (Placement::SameRange, [a, b]) => a.range_id == b.range_id,
        (Placement::SameShard, [a, b]) => a.shard == b.shard && a.range_id != b.range_id,
        (Placement::CrossShard, [a, b]) => a.shard != b.shard,
        _ => false,
    }
}

/// Whether the placement held over a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// Distinct units checked.
    pub units: usize,
    /// Units that no longer have the placement.
    pub broken: usize,
    /// Used rows now owned by another shard than before.
    pub rows_moved: usize,
}

/// Compares the used rows' placement `before` and `after` a run.
pub fn check_held(
    assignment: &Assignment,
    placement: Placement,
    before: &Layout,
    after: &Layout,
) -> Held {
    let units: BTreeSet<&Unit> = assignment.clients.iter().flatten().collect();
    let broken = units.iter().filter(|u| !holds(placement, u, after)).count();
    let rows_moved = assignment
        .rows()
        .iter()
        .filter(|&&id| before.locate(id).shard != after.locate(id).shard)
        .count();
    Held {
        units: units.len(),
        broken,
        rows_moved,
    }
}

#[cfg(test)]
mod tests;
