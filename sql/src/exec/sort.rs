//! Sorting, DISTINCT and set operations (UNION, INTERSECT, EXCEPT, with or
//! without ALL). All hold their input (charged to the statement's memory)
//! except UNION ALL, which streams.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use teller_net::types::Value;
use teller_net::PgResult;

use super::eval::eval_plain;
use super::{keys, row_bytes, Cx, Op, Row, BATCH_ROWS};
use crate::expr::{compare, Expr};
use crate::kv::Kv;
use crate::plan::{SetOpKind, SetOpPlan, SortKey};

/// Compares two rows of sort values under `keys` (direction and NULLs).
pub fn compare_keys(a: &[Value], b: &[Value], keys_: &[SortKey]) -> PgResult<Ordering> {
    for ((x, y), k) in a.iter().zip(b).zip(keys_) {
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = compare(x, y)?;
                if k.desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
    Ok(Ordering::Equal)
}

pub struct SortOp {
    input: Op,
    keys: Vec<SortKey>,
    output: Option<std::vec::IntoIter<Row>>,
}

impl SortOp {
    pub fn new(input: Op, keys: Vec<SortKey>) -> SortOp {
        SortOp {
            input,
            keys,
            output: None,
        }
    }

    pub async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if self.output.is_none() {
            let mut decorated: Vec<(Vec<Value>, Row)> = Vec::new();
            while let Some(batch) = self.input.next(cx).await? {
                for row in batch {
                    let values = self
                        .keys
                        .iter()
                        .map(|k| eval_plain(&k.expr, cx.env, &row, cx.outer))
                        .collect::<PgResult<Vec<_>>>()?;
                    cx.state
                        .memory
                        .charge(row_bytes(&row) + row_bytes(&values))?;
                    decorated.push((values, row));
                }
            }
            let mut error = None;
            // A stable sort: rows with equal keys keep their input order.
            decorated.sort_by(|a, b| {
                compare_keys(&a.0, &b.0, &self.keys).unwrap_or_else(|e| {
                    error.get_or_insert(e);
                    Ordering::Equal
                })
            });
            if let Some(e) = error {
                return Err(e);
            }
            let rows: Vec<Row> = decorated.into_iter().map(|(_, r)| r).collect();
            self.output = Some(rows.into_iter());
        }
        let out: Vec<Row> = self
            .output
            .as_mut()
            .expect("set above")
            .take(BATCH_ROWS)
            .collect();
        Ok((!out.is_empty()).then_some(out))
    }
}

pub struct DistinctOp {
    input: Op,
    on: Option<Vec<Expr>>,
    seen: HashSet<Vec<u8>>,
    /// DISTINCT ON: the key of the last group (input is sorted by it).
    last: Option<Vec<u8>>,
}

impl DistinctOp {
    pub fn new(input: Op, on: Option<Vec<Expr>>) -> DistinctOp {
        DistinctOp {
            input,
            on,
            seen: HashSet::new(),
            last: None,
        }
    }

    pub async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        loop {
            let Some(batch) = self.input.next(cx).await? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for row in batch {
                match &self.on {
                    None => {
                        let key = keys::row_key(&row)?;
                        if !self.seen.contains(&key) {
                            cx.state.memory.charge(key.len() + 32)?;
                            self.seen.insert(key);
                            out.push(row);
                        }
                    }
                    Some(on) => {
                        let values = on
                            .iter()
                            .map(|e| eval_plain(e, cx.env, &row, cx.outer))
                            .collect::<PgResult<Vec<_>>>()?;
                        let key = keys::row_key(&values)?;
                        if self.last.as_ref() != Some(&key) {
                            self.last = Some(key);
                            out.push(row);
                        }
                    }
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

pub struct SetOpOp {
    kind: SetOpKind,
    all: bool,
    left: Op,
    right: Op,
    /// Right rows by key with their counts (INTERSECT/EXCEPT).
    right_counts: Option<HashMap<Vec<u8>, usize>>,
    /// Keys already returned (distinct forms).
    seen: HashSet<Vec<u8>>,
    left_done: bool,
}

impl SetOpOp {
    pub fn new(plan: &SetOpPlan) -> SetOpOp {
        SetOpOp {
            kind: plan.kind,
            all: plan.all,
            left: Op::build(&plan.left),
            right: Op::build(&plan.right),
            right_counts: None,
            seen: HashSet::new(),
            left_done: false,
        }
    }

    fn first_time(&mut self, cx: &Cx<'_, impl Kv>, key: &[u8]) -> PgResult<bool> {
        if self.seen.contains(key) {
            return Ok(false);
        }
        cx.state.memory.charge(key.len() + 32)?;
        self.seen.insert(key.to_vec());
        Ok(true)
    }

    pub async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if self.kind == SetOpKind::Union {
            loop {
                let batch = if !self.left_done {
                    match self.left.next(cx).await? {
                        Some(b) => b,
                        None => {
                            self.left_done = true;
                            continue;
                        }
                    }
                } else {
                    match self.right.next(cx).await? {
                        Some(b) => b,
                        None => return Ok(None),
                    }
                };
                if self.all {
                    return Ok(Some(batch));
                }
                let mut out = Vec::new();
                for row in batch {
                    let key = keys::row_key(&row)?;
                    if self.first_time(cx, &key)? {
                        out.push(row);
                    }
                }
                if !out.is_empty() {
                    return Ok(Some(out));
                }
            }
        }
        if self.right_counts.is_none() {
            let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
            while let Some(batch) = self.right.next(cx).await? {
                for row in batch {
                    let key = keys::row_key(&row)?;
                    cx.state.memory.charge(key.len() + 32)?;
                    *counts.entry(key).or_default() += 1;
                }
            }
            self.right_counts = Some(counts);
        }
        loop {
            let Some(batch) = self.left.next(cx).await? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for row in batch {
                let key = keys::row_key(&row)?;
                let counts = self.right_counts.as_mut().expect("built above");
                let in_right = counts.get(&key).copied().unwrap_or(0);
                let keep = match (self.kind, self.all) {
                    (SetOpKind::Intersect, true) => {
                        if in_right > 0 {
                            counts.insert(key.clone(), in_right - 1);
                            true
                        } else {
                            false
                        }
                    }
                    (SetOpKind::Except, true) => {
                        if in_right > 0 {
                            counts.insert(key.clone(), in_right - 1);
                            false
                        } else {
                            true
                        }
                    }
                    (SetOpKind::Intersect, false) => in_right > 0 && self.first_time(cx, &key)?,
                    (SetOpKind::Except, false) => in_right == 0 && self.first_time(cx, &key)?,
                    (SetOpKind::Union, _) => unreachable!("handled above"),
                };
                if keep {
                    out.push(row);
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}
