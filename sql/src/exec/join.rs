//! Joins: nested loop, hash, merge and index lookup, each for inner, left,
//! right and full joins where the strategy allows (the planner only picks
//! merge and lookup joins for inner and left joins).
//!
//! - **Nested loop / hash**: the right input is read whole (charged to the
//!   statement's memory), then left batches stream through. Unmatched right
//!   rows of RIGHT/FULL joins come out at the end. Hash keys are byte keys
//!   ([`super::keys`]); a NULL key matches nothing.
//! - **Merge**: both inputs arrive ascending by key; the right side is read
//!   one group of equal keys at a time, so memory holds one group.
//! - **Lookup**: for each left batch, one KV batch reads the right table's
//!   index at the left rows' keys (Gets for whole primary keys).

use std::collections::{HashMap, VecDeque};

use teller_net::types::Value;
use teller_net::{PgError, PgResult};

use super::scan::{decode_entries, eq_target, Target};
use super::{keys, row_bytes, test, Cx, Op, Row, BATCH_ROWS};
use crate::expr::Expr;
use crate::kv::{Batch, Kv, Response, ScanRequest};
use crate::plan::{JoinKind, JoinPlan, JoinStrategy, Plan, ScanPlan};
use crate::table::TableCodec;

fn combine(l: &[Value], r: &[Value]) -> Row {
    let mut row = Vec::with_capacity(l.len() + r.len());
    row.extend_from_slice(l);
    row.extend_from_slice(r);
    row
}

fn nulls(n: usize) -> Row {
    vec![Value::Null; n]
}

fn eval_keys<K: Kv>(cx: &Cx<'_, K>, keys_: &[Expr], row: &[Value]) -> PgResult<Option<Vec<u8>>> {
    let mut values = Vec::with_capacity(keys_.len());
    for k in keys_ {
        let v = super::eval::eval_plain(k, cx.env, row, cx.outer)?;
        if v.is_null() {
            return Ok(None);
        }
        values.push(v);
    }
    keys::row_key(&values).map(Some)
}

/// The materialized right side of a nested-loop or hash join.
struct Built {
    rows: Vec<Row>,
    matched: Vec<bool>,
    /// Hash joins: key → row indexes.
    table: Option<HashMap<Vec<u8>, Vec<usize>>>,
}

enum Strategy {
    Materialized {
        keys: Option<(Vec<Expr>, Vec<Expr>)>,
        built: Option<Built>,
        right: Op,
    },
    Merge {
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
        right: Op,
        /// Right rows not yet grouped, and whether the input is exhausted.
        right_buf: VecDeque<Row>,
        right_done: bool,
        /// The current group of right rows with one key.
        group: Option<(Vec<u8>, Vec<Row>)>,
    },
    Lookup {
        left_keys: Vec<Expr>,
        scan: Box<ScanPlan>,
        codec: Box<TableCodec>,
    },
}

pub struct JoinOp {
    kind: JoinKind,
    condition: Option<Expr>,
    left: Op,
    left_width: usize,
    right_width: usize,
    strategy: Strategy,
    left_done: bool,
    /// Left rows of the current batch still to join (merge joins).
    left_buf: VecDeque<Row>,
    finished: bool,
}

impl JoinOp {
    pub fn new(j: &JoinPlan) -> JoinOp {
        let strategy = match &j.strategy {
            JoinStrategy::NestedLoop => Strategy::Materialized {
                keys: None,
                built: None,
                right: Op::build(&j.right),
            },
            JoinStrategy::Hash {
                left_keys,
                right_keys,
            } => Strategy::Materialized {
                keys: Some((left_keys.clone(), right_keys.clone())),
                built: None,
                right: Op::build(&j.right),
            },
            JoinStrategy::Merge {
                left_keys,
                right_keys,
            } => Strategy::Merge {
                left_keys: left_keys.clone(),
                right_keys: right_keys.clone(),
                right: Op::build(&j.right),
                right_buf: VecDeque::new(),
                right_done: false,
                group: None,
            },
            JoinStrategy::Lookup { left_keys } => match &j.right {
                Plan::Scan(scan) => Strategy::Lookup {
                    left_keys: left_keys.clone(),
                    codec: Box::new(TableCodec::new(&scan.table)),
                    scan: scan.clone(),
                },
                _ => unreachable!("the planner only makes lookup joins into scans"),
            },
        };
        JoinOp {
            kind: j.kind,
            condition: j.condition.clone(),
            left: Op::build(&j.left),
            left_width: j.left.width(),
            right_width: j.right.width(),
            strategy,
            left_done: false,
            left_buf: VecDeque::new(),
            finished: false,
        }
    }

    fn matches<K: Kv>(&self, cx: &Cx<'_, K>, row: &[Value]) -> PgResult<bool> {
        match &self.condition {
            None => Ok(true),
            Some(c) => test(c, cx.env, row, cx.outer),
        }
    }

    pub async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if self.finished {
            return Ok(None);
        }
        let out = match &self.strategy {
            Strategy::Materialized { .. } => self.next_materialized(cx).await?,
            Strategy::Merge { .. } => self.next_merge(cx).await?,
            Strategy::Lookup { .. } => self.next_lookup(cx).await?,
        };
        if out.is_none() {
            self.finished = true;
        }
        Ok(out)
    }

    async fn build<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<()> {
        let Strategy::Materialized {
            keys: k,
            built,
            right,
        } = &mut self.strategy
        else {
            unreachable!("called for materialized joins")
        };
        if built.is_some() {
            return Ok(());
        }
        let rows = right.collect(cx).await?;
        let table = match k {
            None => None,
            Some((_, right_keys)) => {
                let mut table: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
                for (i, row) in rows.iter().enumerate() {
                    if let Some(key) = eval_keys(cx, right_keys, row)? {
                        cx.state.memory.charge(key.len() + 16)?;
                        table.entry(key).or_default().push(i);
                    }
                }
                Some(table)
            }
        };
        *built = Some(Built {
            matched: vec![false; rows.len()],
            rows,
            table,
        });
        Ok(())
    }

    async fn next_materialized<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        self.build(cx).await?;
        loop {
            if self.left_done {
                return Ok(self.unmatched_right());
            }
            let Some(batch) = self.left.next(cx).await? else {
                self.left_done = true;
                continue;
            };
            let mut out = Vec::new();
            for lrow in batch {
                let candidates: Vec<usize> = {
                    let Strategy::Materialized { keys: k, built, .. } = &self.strategy else {
                        unreachable!()
                    };
                    let built = built.as_ref().expect("built above");
                    match (&built.table, k) {
                        (Some(table), Some((left_keys, _))) => {
                            match eval_keys(cx, left_keys, &lrow)? {
                                Some(key) => table.get(&key).cloned().unwrap_or_default(),
                                None => Vec::new(),
                            }
                        }
                        _ => (0..built.rows.len()).collect(),
                    }
                };
                let mut any = false;
                for i in candidates {
                    let row = {
                        let Strategy::Materialized { built, .. } = &self.strategy else {
                            unreachable!()
                        };
                        combine(&lrow, &built.as_ref().expect("built").rows[i])
                    };
                    if self.matches(cx, &row)? {
                        any = true;
                        if let Strategy::Materialized { built: Some(b), .. } = &mut self.strategy {
                            b.matched[i] = true;
                        }
                        out.push(row);
                    }
                }
                if !any && matches!(self.kind, JoinKind::Left | JoinKind::Full) {
                    out.push(combine(&lrow, &nulls(self.right_width)));
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }

    /// RIGHT/FULL joins: the right rows no left row matched, once.
    fn unmatched_right(&mut self) -> Option<Vec<Row>> {
        if !matches!(self.kind, JoinKind::Right | JoinKind::Full) {
            return None;
        }
        let Strategy::Materialized { built: Some(b), .. } = &mut self.strategy else {
            return None;
        };
        let lw = self.left_width;
        let mut out = Vec::new();
        for (i, row) in b.rows.iter().enumerate() {
            if !b.matched[i] {
                b.matched[i] = true;
                out.push(combine(&nulls(lw), row));
                if out.len() >= BATCH_ROWS {
                    break;
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Loads the next group of equal-key right rows (merge joins).
    async fn next_group<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<()> {
        let Strategy::Merge {
            right_keys,
            right,
            right_buf,
            right_done,
            group,
            ..
        } = &mut self.strategy
        else {
            unreachable!("called for merge joins")
        };
        *group = None;
        let mut current: Option<(Vec<u8>, Vec<Row>)> = None;
        loop {
            if right_buf.is_empty() && !*right_done {
                match right.next(cx).await? {
                    Some(batch) => right_buf.extend(batch),
                    None => *right_done = true,
                }
            }
            let Some(row) = right_buf.front() else {
                break;
            };
            let Some(key) = eval_keys(cx, right_keys, row)? else {
                // NULL keys sort last and match nothing: the rest is NULLs.
                right_buf.clear();
                *right_done = true;
                break;
            };
            match &mut current {
                None => {
                    let row = right_buf.pop_front().expect("peeked");
                    cx.state.memory.charge(row_bytes(&row))?;
                    current = Some((key, vec![row]));
                }
                Some((k, rows)) if *k == key => {
                    let row = right_buf.pop_front().expect("peeked");
                    cx.state.memory.charge(row_bytes(&row))?;
                    rows.push(row);
                }
                Some(_) => break,
            }
        }
        *group = current;
        Ok(())
    }

    async fn next_merge<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if matches!(
            &self.strategy,
            Strategy::Merge {
                group: None,
                right_done: false,
                ..
            }
        ) {
            self.next_group(cx).await?;
        }
        let mut out = Vec::new();
        loop {
            if self.left_buf.is_empty() {
                if self.left_done {
                    break;
                }
                match self.left.next(cx).await? {
                    Some(batch) => self.left_buf.extend(batch),
                    None => {
                        self.left_done = true;
                        break;
                    }
                }
                continue;
            }
            let lrow = self.left_buf.front().expect("not empty").clone();
            let Strategy::Merge {
                left_keys, group, ..
            } = &self.strategy
            else {
                unreachable!()
            };
            let lkey = eval_keys(cx, left_keys, &lrow)?;
            let order = match (&lkey, group) {
                (None, _) | (_, None) => std::cmp::Ordering::Less,
                (Some(l), Some((r, _))) => l.cmp(r),
            };
            match order {
                std::cmp::Ordering::Greater => {
                    self.release_group(cx);
                    self.next_group(cx).await?;
                }
                std::cmp::Ordering::Less => {
                    self.left_buf.pop_front();
                    if self.kind == JoinKind::Left {
                        out.push(combine(&lrow, &nulls(self.right_width)));
                    }
                }
                std::cmp::Ordering::Equal => {
                    self.left_buf.pop_front();
                    let Strategy::Merge {
                        group: Some((_, rows)),
                        ..
                    } = &self.strategy
                    else {
                        unreachable!()
                    };
                    let mut any = false;
                    for r in rows {
                        let row = combine(&lrow, r);
                        if self.matches(cx, &row)? {
                            any = true;
                            out.push(row);
                        }
                    }
                    if !any && self.kind == JoinKind::Left {
                        out.push(combine(&lrow, &nulls(self.right_width)));
                    }
                }
            }
            if out.len() >= BATCH_ROWS {
                break;
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    fn release_group<K: Kv>(&mut self, cx: &Cx<'_, K>) {
        if let Strategy::Merge {
            group: Some((_, rows)),
            ..
        } = &self.strategy
        {
            cx.state
                .memory
                .release(rows.iter().map(|r| row_bytes(r)).sum());
        }
    }

    async fn next_lookup<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        loop {
            let Some(batch) = self.left.next(cx).await? else {
                return Ok(None);
            };
            let Strategy::Lookup {
                left_keys,
                scan,
                codec,
            } = &self.strategy
            else {
                unreachable!("called for lookup joins")
            };
            let ix = codec
                .index(scan.index)
                .ok_or_else(|| PgError::internal("lookup into a missing index"))?
                .clone();
            // One target per distinct key of the batch.
            let mut slots: Vec<Option<usize>> = Vec::with_capacity(batch.len());
            let mut keys_seen: HashMap<Vec<u8>, usize> = HashMap::new();
            let mut targets: Vec<Target> = Vec::new();
            for lrow in &batch {
                let mut values = Vec::with_capacity(left_keys.len());
                for k in left_keys {
                    values.push(super::eval::eval_plain(k, cx.env, lrow, cx.outer)?);
                }
                let Some(t) = eq_target(&ix, &values)? else {
                    slots.push(None);
                    continue;
                };
                let id = match &t {
                    Target::Point(k) => k.clone(),
                    Target::Span(s) => s.start.to_vec(),
                };
                let slot = *keys_seen.entry(id).or_insert_with(|| {
                    targets.push(t);
                    targets.len() - 1
                });
                slots.push(Some(slot));
            }
            let (mut found, held) = fetch(cx, codec, &ix, scan.covering, targets).await?;
            if let Some(lock) = scan.lock {
                let lock = crate::kv::RowLock {
                    strength: lock.strength,
                    wait: lock.wait,
                };
                found = lock_found(cx, codec, scan, lock, found).await?;
            }
            let mut out = Vec::new();
            for (lrow, slot) in batch.iter().zip(slots) {
                let mut any = false;
                if let Some(slot) = slot {
                    for r in &found[slot] {
                        if let Some(f) = &scan.filter {
                            if !test(f, cx.env, r, cx.outer)? {
                                continue;
                            }
                        }
                        let row = combine(lrow, r);
                        if self.matches(cx, &row)? {
                            any = true;
                            out.push(row);
                        }
                    }
                }
                if !any && self.kind == JoinKind::Left {
                    out.push(combine(lrow, &nulls(self.right_width)));
                }
            }
            cx.state.memory.release(held);
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

/// Locks the rows of a lookup that pass the right side's filter, reading
/// them again under the lock (a row a concurrent transaction changed comes
/// back as it committed, or not at all if it was deleted).
async fn lock_found<K: Kv>(
    cx: &mut Cx<'_, K>,
    codec: &TableCodec,
    scan: &ScanPlan,
    lock: crate::kv::RowLock,
    found: Vec<Vec<Row>>,
) -> PgResult<Vec<Vec<Row>>> {
    let mut keys = Vec::new();
    for rows in &found {
        for r in rows {
            let keep = match &scan.filter {
                Some(f) => test(f, cx.env, r, cx.outer)?,
                None => true,
            };
            if keep {
                keys.push(codec.pk_key(r)?);
            }
        }
    }
    let locked = super::scan::get_rows_locking(cx, codec, keys, false, Some(lock)).await?;
    let mut by_key = HashMap::with_capacity(locked.len());
    for row in locked {
        by_key.insert(codec.pk_key(&row)?, row);
    }
    let mut out = Vec::with_capacity(found.len());
    for rows in found {
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows {
            if let Some(row) = by_key.get(&codec.pk_key(&r)?) {
                kept.push(row.clone());
            }
        }
        out.push(kept);
    }
    Ok(out)
}

/// Reads the rows at each target (one batch, then resumes); also returns
/// the bytes charged for them, to release once joined.
async fn fetch<K: Kv>(
    cx: &mut Cx<'_, K>,
    codec: &TableCodec,
    ix: &crate::table::IndexCodec,
    covering: bool,
    targets: Vec<Target>,
) -> PgResult<(Vec<Vec<Row>>, usize)> {
    let mut held = 0;
    let mut out: Vec<Vec<Row>> = vec![Vec::new(); targets.len()];
    let mut pending: Vec<(usize, Target)> = targets.into_iter().enumerate().collect();
    while !pending.is_empty() {
        let mut batch = Batch::new();
        for (_, t) in &pending {
            match t {
                Target::Point(k) => {
                    batch.get(k.clone());
                }
                Target::Span(s) => {
                    let mut r = ScanRequest::new(s.clone());
                    r.limit_rows = Some(super::scan::SCAN_BATCH_ROWS);
                    batch.scan(r);
                }
            }
        }
        let response = cx.batch(batch).await?;
        let mut next = Vec::new();
        for ((slot, t), answer) in pending.into_iter().zip(response.responses) {
            match (t, answer) {
                (Target::Point(key), Response::Get(Some(value))) => {
                    let row = codec.decode_row(&key, &value)?;
                    held += row_bytes(&row);
                    cx.state.memory.charge(row_bytes(&row))?;
                    out[slot].push(row);
                }
                (Target::Point(_), Response::Get(None)) => {}
                (Target::Span(_), Response::Scan(scan)) => {
                    if let Some(resume) = scan.resume {
                        next.push((slot, Target::Span(resume)));
                    }
                    let rows = decode_entries(cx, codec, ix, covering, scan.rows).await?;
                    for row in rows {
                        held += row_bytes(&row);
                        cx.state.memory.charge(row_bytes(&row))?;
                        out[slot].push(row);
                    }
                }
                _ => {
                    return Err(PgError::internal(
                        "a lookup was answered with something else",
                    ))
                }
            }
        }
        pending = next;
    }
    Ok((out, held))
}
