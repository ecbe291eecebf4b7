//! Evaluating expressions that read data: subqueries and `nextval`.
//!
//! Before a row's expressions are evaluated, [`eval_row`] runs the
//! subqueries they contain (each for this row's correlation values, or once
//! per statement when uncorrelated; correlated results are memoized by their
//! correlation values) and fetches the sequence values they need; then the
//! synchronous evaluator reads the results from [`RowEnv`]. Every subquery in
//! the expressions runs, even one a CASE branch or AND would skip.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;

use teller_net::types::Value;
use teller_net::{PgError, PgResult};

use super::{keys, row_bytes, Cx, Op, RowEnv, SubRows};
use crate::catalog::system;
use crate::errors;
use crate::expr::{self, Expr, SubLink, SubLinkKind};
use crate::kv::{Batch, Kv, KvTxn, TxnOptions};
use crate::plan::any_node;

/// Most correlated-subquery results memoized per statement.
pub const MEMO_ENTRIES_MAX: usize = 10_000;
/// Most sequence values taken in one transaction.
pub const SEQUENCE_BLOCK_MAX: usize = 1024;
/// Attempts at a sequence increment that conflicts with another.
pub const SEQUENCE_RETRIES_MAX: usize = 16;
/// IN lists longer than this are matched through a hash set.
const SET_THRESHOLD: usize = 16;

/// The subqueries and sequence calls of a list of expressions.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    links: Vec<SubLink>,
    nextvals: Vec<u64>,
}

impl Prepared {
    pub fn of<'e>(exprs: impl IntoIterator<Item = &'e Expr>) -> Prepared {
        let mut p = Prepared::default();
        for e in exprs {
            any_node(e, &mut |n| {
                match n {
                    Expr::SubLink(link) => p.links.push((**link).clone()),
                    Expr::NextVal(seq) => p.nextvals.push(*seq),
                    _ => {}
                }
                false
            });
        }
        p
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty() && self.nextvals.is_empty()
    }
}

/// Evaluates an expression without subqueries or sequences over a row.
pub fn eval_plain(
    e: &Expr,
    env: &super::Env<'_>,
    row: &[Value],
    outer: &[Value],
) -> PgResult<Value> {
    let seqs = RefCell::new(VecDeque::new());
    let renv = RowEnv {
        env,
        row,
        outer,
        subs: &[],
        seqs: &seqs,
    };
    expr::eval(e, &renv)
}

/// Evaluates `exprs` over `row`, running what `prepared` lists first.
pub async fn eval_row<K: Kv>(
    cx: &mut Cx<'_, K>,
    prepared: &Prepared,
    exprs: &[Expr],
    row: &[Value],
) -> PgResult<Vec<Value>> {
    let mut subs = Vec::with_capacity(prepared.links.len());
    for link in &prepared.links {
        if subs.iter().any(|(id, _)| *id == link.id) {
            continue;
        }
        let rows = sublink_rows(cx, link, row).await?;
        subs.push((link.id, rows));
    }
    let mut fetched = VecDeque::with_capacity(prepared.nextvals.len());
    for &seq in &prepared.nextvals {
        fetched.push_back((seq, nextval(cx, seq).await?));
    }
    let seqs = RefCell::new(fetched);
    let renv = RowEnv {
        env: cx.env,
        row,
        outer: cx.outer,
        subs: &subs,
        seqs: &seqs,
    };
    exprs.iter().map(|e| expr::eval(e, &renv)).collect()
}

/// The rows of a subquery for the current row.
async fn sublink_rows<K: Kv>(
    cx: &mut Cx<'_, K>,
    link: &SubLink,
    row: &[Value],
) -> PgResult<Rc<SubRows>> {
    if link.correlation.is_empty() {
        if let Some(r) = cx.state.uncorrelated.borrow().get(&link.id) {
            return Ok(r.clone());
        }
        let rows = Rc::new(run(cx, link, Vec::new()).await?);
        cx.state
            .uncorrelated
            .borrow_mut()
            .insert(link.id, rows.clone());
        return Ok(rows);
    }
    let seqs = RefCell::new(VecDeque::new());
    let renv = RowEnv {
        env: cx.env,
        row,
        outer: cx.outer,
        subs: &[],
        seqs: &seqs,
    };
    let values = link
        .correlation
        .iter()
        .map(|e| expr::eval(e, &renv))
        .collect::<PgResult<Vec<_>>>()?;
    let key = (link.id, keys::row_key(&values)?);
    if let Some(r) = cx.state.memo.borrow().get(&key) {
        return Ok(r.clone());
    }
    let rows = Rc::new(run(cx, link, values).await?);
    let mut memo = cx.state.memo.borrow_mut();
    if memo.len() < MEMO_ENTRIES_MAX {
        memo.insert(key, rows.clone());
    }
    Ok(rows)
}

/// Runs a subquery's plan with `outer` as its correlation values.
async fn run<K: Kv>(cx: &mut Cx<'_, K>, link: &SubLink, outer: Vec<Value>) -> PgResult<SubRows> {
    let plan = cx
        .subplans
        .get(link.id)
        .ok_or_else(|| PgError::internal(format!("no subplan {}", link.id)))?;
    let mut op = Op::build(plan);
    let mut sub = Cx {
        kv: cx.kv,
        txn: &mut *cx.txn,
        env: cx.env,
        subplans: cx.subplans,
        state: cx.state,
        outer: &outer,
    };
    let enough = match link.kind {
        SubLinkKind::Exists => 1,
        SubLinkKind::Scalar => 2,
        SubLinkKind::Any(_) | SubLinkKind::All(_) | SubLinkKind::Array => usize::MAX,
    };
    let mut values = Vec::new();
    'outer: while let Some(batch) = op.next(&mut sub).await? {
        for row in batch {
            sub.state.memory.charge(row_bytes(&row))?;
            values.push(row.into_iter().next().unwrap_or(Value::Null));
            if values.len() >= enough {
                break 'outer;
            }
        }
    }
    Ok(SubRows::new(values))
}

/// The value of a subquery expression from its rows.
pub fn sublink_value(link: &SubLink, lhs: Option<Value>, rows: &SubRows) -> PgResult<Value> {
    if let (SubLinkKind::Any(expr::BinOp::Eq), Some(l)) = (link.kind, &lhs) {
        if rows.values.len() > SET_THRESHOLD {
            let mut set = rows.set.borrow_mut();
            if set.is_none() {
                let mut s = HashSet::with_capacity(rows.values.len());
                let mut has_null = false;
                for v in &rows.values {
                    if v.is_null() {
                        has_null = true;
                    } else {
                        s.insert(keys::value_key(v)?);
                    }
                }
                *set = Some((s, has_null));
            }
            let (s, has_null) = set.as_ref().expect("built above");
            if l.is_null() {
                return Ok(Value::Null);
            }
            return Ok(if s.contains(&keys::value_key(l)?) {
                Value::Bool(true)
            } else if *has_null {
                Value::Null
            } else {
                Value::Bool(false)
            });
        }
    }
    expr::ops::sublink_value(link.kind, lhs.as_ref(), &rows.values)
}

/// The next value of a sequence: one reserved for this statement, or a
/// new one.
async fn nextval<K: Kv>(cx: &mut Cx<'_, K>, seq: u64) -> PgResult<i64> {
    {
        let mut seqs = cx.state.sequences.borrow_mut();
        if let Some((values, _)) = seqs.get_mut(&seq) {
            if let Some(v) = values.pop_front() {
                return Ok(v);
            }
        }
    }
    reserve(cx, seq, 1).await?;
    let mut seqs = cx.state.sequences.borrow_mut();
    seqs.get_mut(&seq)
        .and_then(|(values, _)| values.pop_front())
        .ok_or_else(|| PgError::internal("empty sequence block"))
}

/// Takes `count` more values of a sequence for this statement in one
/// transaction (an INSERT reserves one per row of a batch, so a bulk load
/// does not pay a transaction per row and leaves no gaps).
pub async fn reserve<K: Kv>(cx: &mut Cx<'_, K>, seq: u64, count: usize) -> PgResult<()> {
    let mut left = count;
    while left > 0 {
        let n = left.min(SEQUENCE_BLOCK_MAX);
        let desc = cx
            .env
            .catalog
            .sequence(seq)
            .ok_or_else(|| PgError::internal(format!("sequence {seq} is gone")))?
            .clone();
        let values = allocate(cx.kv, &desc, n).await?;
        left -= n;
        let mut seqs = cx.state.sequences.borrow_mut();
        let entry = seqs.entry(seq).or_insert_with(|| (VecDeque::new(), 0));
        entry.1 += values.len();
        entry.0.extend(values);
    }
    Ok(())
}

impl Prepared {
    /// The sequences the expressions take values from, one entry per call.
    pub fn sequence_calls(&self) -> &[u64] {
        &self.nextvals
    }
}

/// Takes `count` values of a sequence in a transaction of their own: like
/// PostgreSQL, a sequence never rolls back.
pub async fn allocate<K: Kv>(
    kv: &K,
    desc: &crate::catalog::SequenceDesc,
    count: usize,
) -> PgResult<Vec<i64>> {
    let seq = desc.id;
    let key = system::SEQUENCE_VALUES.key(&[Value::Int8(seq as i64)])?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut txn = kv.begin(TxnOptions::default()).await?;
        let result: PgResult<Vec<i64>> = async {
            let mut batch = Batch::new();
            batch.get(key.clone());
            let response = txn.batch(batch).await?;
            let (mut last, mut called) = (desc.start, false);
            if let Some(bytes) = response.get(0)? {
                let (_, row) = system::SEQUENCE_VALUES.decode(&key, bytes)?;
                last = system::int(&row[0], "sequence value")?;
                called = system::boolean(&row[1], "sequence called")?;
            }
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let next = if called {
                    match last.checked_add(desc.increment) {
                        Some(n) if n >= desc.min && n <= desc.max => n,
                        _ if desc.cycle => {
                            if desc.increment > 0 {
                                desc.min
                            } else {
                                desc.max
                            }
                        }
                        _ if out.is_empty() => {
                            let (which, bound) = if desc.increment > 0 {
                                ("maximum", desc.max)
                            } else {
                                ("minimum", desc.min)
                            };
                            return Err(PgError::new(
                                errors::SEQUENCE_GENERATOR_LIMIT_EXCEEDED,
                                format!(
                                    "nextval: reached {which} value of sequence \"{}\" ({bound})",
                                    desc.name
                                ),
                            ));
                        }
                        _ => break,
                    }
                } else {
                    last
                };
                out.push(next);
                last = next;
                called = true;
            }
            let mut batch = Batch::new();
            batch.put(
                key.clone(),
                system::SEQUENCE_VALUES.value(&[Value::Int8(last), Value::Bool(true)])?,
            );
            txn.batch(batch).await?;
            Ok(out)
        }
        .await;
        match result {
            Ok(values) => match txn.commit().await {
                Ok(_) => return Ok(values),
                Err(e) if e.is_retryable() && attempt < SEQUENCE_RETRIES_MAX => continue,
                Err(e) => return Err(e.into()),
            },
            Err(e) => {
                let _ = txn.rollback().await;
                let retry = e.code == teller_net::SqlState::SERIALIZATION_FAILURE
                    || e.code == teller_net::SqlState::DEADLOCK_DETECTED;
                if retry && attempt < SEQUENCE_RETRIES_MAX {
                    continue;
                }
                return Err(e);
            }
        }
    }
}
