//! The executor: batch-at-a-time operators over one KV transaction.
//!
//! An [`Op`] tree is built from a [`Plan`] without I/O; each call to
//! [`Op::next`] returns the next batch of at most [`BATCH_ROWS`] rows, or
//! `None` when done. Operators keep their position between calls, so a
//! portal can hand rows to the client as they come (PortalSuspended) and
//! resume later; the transaction is passed in on each call ([`Cx`]), never
//! held.
//!
//! Memory: operators that hold rows (sort, hash tables, aggregation groups,
//! materialized inputs, buffered DML results) charge their bytes to the
//! statement's [`Memory`]; past [`QUERY_MEMORY_BYTES_MAX`] the statement
//! fails with `53200`. Streaming operators hold one batch.

pub mod agg;
pub mod alter;
pub mod ddl;
pub mod eval;
pub mod join;
pub mod keys;
pub mod pgfuncs;
pub mod scan;
pub mod sort;
pub mod write;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use teller_net::types::Value;
use teller_net::{PgError, PgResult, SqlState};

use crate::catalog::Catalog;
use crate::expr::{self, EvalContext, Expr, SubLink};
use crate::kv::{Kv, KvTxn};
use crate::plan::Plan;
use crate::shard::SqlShard;
use crate::vars::Vars;

/// A row: one value per column.
pub type Row = Vec<Value>;
/// Most rows an operator returns per call.
pub const BATCH_ROWS: usize = 256;
/// Working memory one statement may hold, in bytes.
pub const QUERY_MEMORY_BYTES_MAX: usize = 256 * 1024 * 1024;

/// A boxed operator future (operators recurse, so futures are boxed).
pub type OpFuture<'a, T> = Pin<Box<dyn Future<Output = PgResult<T>> + 'a>>;

/// Bytes a value holds, for memory accounting.
pub fn value_bytes(v: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match v {
            Value::Text(s) | Value::Json(s) => s.len(),
            Value::Bytea(b) => b.len(),
            _ => 0,
        }
}

pub fn row_bytes(row: &[Value]) -> usize {
    row.iter().map(value_bytes).sum::<usize>() + std::mem::size_of::<Row>()
}

/// A statement's working-memory account.
#[derive(Debug)]
pub struct Memory {
    used: Cell<usize>,
    limit: usize,
}

impl Default for Memory {
    fn default() -> Memory {
        Memory::new(QUERY_MEMORY_BYTES_MAX)
    }
}

impl Memory {
    pub fn new(limit: usize) -> Memory {
        Memory {
            used: Cell::new(0),
            limit,
        }
    }

    /// Charges `bytes`; fails with `53200` past the limit.
    pub fn charge(&self, bytes: usize) -> PgResult<()> {
        let used = self.used.get().saturating_add(bytes);
        if used > self.limit {
            return Err(crate::errors::out_of_memory(self.limit));
        }
        self.used.set(used);
        Ok(())
    }

    /// Gives back `bytes` charged earlier.
    pub fn release(&self, bytes: usize) {
        self.used.set(self.used.get().saturating_sub(bytes));
    }

    pub fn used(&self) -> usize {
        self.used.get()
    }
}

/// What evaluation needs from the session, for one statement.
pub struct Env<'a> {
    pub params: &'a [Value],
    pub vars: &'a Vars,
    pub catalog: &'a Catalog,
    pub database: &'a str,
    pub user: &'a str,
    pub process_id: i32,
    /// The statement's timestamp (microseconds since the Unix epoch).
    pub now_micros: i64,
    pub shard: &'a SqlShard,
    pub shard_id: usize,
    /// Seconds of `pg_sleep` requested.
    pub sleep: Cell<f64>,
    /// The session's seeded generator (`random()`, `gen_random_uuid()`).
    pub rng: &'a RefCell<rand::rngs::StdRng>,
}

/// The results of one subquery for one row: its first column's values.
#[derive(Debug, Default)]
pub struct SubRows {
    pub values: Vec<Value>,
    /// Encoded values (and whether a NULL was seen), for large IN lists.
    set: RefCell<Option<(std::collections::HashSet<Vec<u8>>, bool)>>,
}

impl SubRows {
    pub fn new(values: Vec<Value>) -> SubRows {
        SubRows {
            values,
            set: RefCell::new(None),
        }
    }
}

/// A correlated subquery's id and the key of its correlation values.
pub type MemoKey = (usize, Vec<u8>);

/// Subquery and sequence state of one statement run, kept across the
/// portal's execute calls.
#[derive(Debug, Default)]
pub struct RunState {
    pub memory: Memory,
    /// Results of uncorrelated subqueries, computed once.
    pub uncorrelated: RefCell<HashMap<usize, Rc<SubRows>>>,
    /// Results of correlated subqueries by correlation values (bounded).
    pub memo: RefCell<HashMap<MemoKey, Rc<SubRows>>>,
    /// Sequence values fetched ahead, per sequence.
    pub sequences: RefCell<HashMap<u64, (VecDeque<i64>, usize)>>,
    /// The catalog version the statement was planned against, still to be
    /// checked: the statement's first KV batch reads the version key too
    /// (see [`Cx::batch`]), saving a round trip per statement.
    pub version_check: Cell<Option<u64>>,
}

/// The context operators run in: the transaction and the statement.
pub struct Cx<'a, K: Kv> {
    pub kv: &'a K,
    pub txn: &'a mut K::Txn,
    pub env: &'a Env<'a>,
    pub subplans: &'a [Plan],
    pub state: &'a RunState,
    /// Correlation values of the (sub)plan running.
    pub outer: &'a [Value],
}

impl<K: Kv> Cx<'_, K> {
    /// Runs a batch in the statement's transaction. The first batch of a
    /// statement planned against a cached catalog also reads the catalog
    /// version; if it moved, the statement fails with a retryable error
    /// (the session reloads the catalog and runs the statement again).
    pub async fn batch(
        &mut self,
        mut batch: crate::kv::Batch,
    ) -> Result<crate::kv::BatchResponse, crate::kv::KvError> {
        let Some(expected) = self.state.version_check.take() else {
            return self.txn.batch(batch).await;
        };
        let key = crate::catalog::system::meta_key(crate::catalog::system::META_VERSION)
            .map_err(|e| crate::kv::KvError::Internal(e.message))?;
        batch
            .requests
            .insert(0, crate::kv::Request::Get { key: key.clone() });
        let mut response = self.txn.batch(batch).await.map_err(|e| match e {
            // Request indexes as the caller numbered them.
            crate::kv::KvError::ConditionFailed { index, key, actual } => {
                crate::kv::KvError::ConditionFailed {
                    index: index - 1,
                    key,
                    actual,
                }
            }
            other => other,
        })?;
        let version = match response.responses.first() {
            Some(crate::kv::Response::Get(v)) => crate::catalog::system::decode_meta(v.as_ref())
                .map_err(|e| crate::kv::KvError::Corrupt(e.message))?
                .unwrap_or(0),
            _ => {
                return Err(crate::kv::KvError::Internal(
                    "version read answered wrongly".into(),
                ))
            }
        };
        if version as u64 != expected {
            return Err(crate::kv::KvError::Retry {
                reason: crate::kv::RetryReason::ReadRefreshFailed,
                key: Some(key),
            });
        }
        response.responses.remove(0);
        Ok(response)
    }
}

/// Evaluation context of one row.
pub struct RowEnv<'r> {
    pub env: &'r Env<'r>,
    pub row: &'r [Value],
    pub outer: &'r [Value],
    /// Subquery results for this row, by subplan id.
    pub subs: &'r [(usize, Rc<SubRows>)],
    /// Sequence values fetched for this row.
    pub seqs: &'r RefCell<VecDeque<(u64, i64)>>,
}

impl EvalContext for RowEnv<'_> {
    fn param(&self, index: usize) -> &Value {
        self.env.params.get(index).unwrap_or(&Value::Null)
    }
    fn setting(&self, name: &str) -> PgResult<String> {
        match name.to_ascii_lowercase().as_str() {
            "teller.connections" => Err(PgError::unsupported("use SHOW teller.connections")),
            _ => self.env.vars.get(name),
        }
    }
    fn database(&self) -> &str {
        self.env.database
    }
    fn user(&self) -> &str {
        self.env.user
    }
    fn process_id(&self) -> i32 {
        self.env.process_id
    }
    fn now_micros(&self) -> i64 {
        self.env.now_micros
    }
    fn request_sleep(&self, seconds: f64) {
        self.env.sleep.set(self.env.sleep.get() + seconds);
    }
    fn random_u64(&self) -> PgResult<u64> {
        use rand::RngCore;
        Ok(self.env.rng.borrow_mut().next_u64())
    }
    fn column(&self, index: usize) -> Option<&Value> {
        self.row.get(index)
    }
    fn outer(&self, index: usize) -> Option<&Value> {
        self.outer.get(index)
    }
    fn sublink(&self, link: &SubLink, lhs: Option<Value>) -> PgResult<Value> {
        let rows = self
            .subs
            .iter()
            .find(|(id, _)| *id == link.id)
            .map(|(_, r)| r)
            .ok_or_else(|| PgError::internal(format!("subquery {} was not run", link.id)))?;
        eval::sublink_value(link, lhs, rows)
    }
    fn catalog_function(&self, func: crate::expr::CatalogFn, args: &[Value]) -> PgResult<Value> {
        pgfuncs::call(self.env, func, args)
    }
    fn nextval(&self, sequence: u64) -> PgResult<Value> {
        let mut seqs = self.seqs.borrow_mut();
        let i = seqs
            .iter()
            .position(|(s, _)| *s == sequence)
            .ok_or_else(|| PgError::internal("nextval was not fetched"))?;
        let (_, v) = seqs.remove(i).expect("found above");
        Ok(Value::Int8(v))
    }
}

/// Evaluates a row-independent expression (spans, limits).
pub fn eval_const(e: &Expr, env: &Env<'_>, outer: &[Value]) -> PgResult<Value> {
    let seqs = RefCell::new(VecDeque::new());
    let renv = RowEnv {
        env,
        row: &[],
        outer,
        subs: &[],
        seqs: &seqs,
    };
    expr::eval(e, &renv)
}

/// Evaluates a predicate on a row without subqueries: true, or false/NULL.
pub fn test(e: &Expr, env: &Env<'_>, row: &[Value], outer: &[Value]) -> PgResult<bool> {
    let seqs = RefCell::new(VecDeque::new());
    let renv = RowEnv {
        env,
        row,
        outer,
        subs: &[],
        seqs: &seqs,
    };
    Ok(expr::eval(e, &renv)? == Value::Bool(true))
}

/// A count from LIMIT or OFFSET: `None` for NULL; negative is an error.
pub fn count(e: &Expr, env: &Env<'_>, outer: &[Value], what: &str) -> PgResult<Option<u64>> {
    match eval_const(e, env, outer)? {
        Value::Null => Ok(None),
        Value::Int8(n) if n < 0 => Err(PgError::new(
            if what == "LIMIT" {
                crate::errors::INVALID_ROW_COUNT_IN_LIMIT
            } else {
                crate::errors::INVALID_ROW_COUNT_IN_OFFSET
            },
            format!("{what} must not be negative"),
        )),
        Value::Int8(n) => Ok(Some(n as u64)),
        other => Err(PgError::new(
            SqlState::DATATYPE_MISMATCH,
            format!("argument of {what} must be type bigint, not {other:?}"),
        )),
    }
}

/// An operator.
pub enum Op {
    Values(ValuesOp),
    Generated(GeneratedOp),
    Series(SeriesOp),
    Scan(Box<scan::ScanOp>),
    Filter(Box<FilterOp>),
    Project(Box<ProjectOp>),
    Limit(Box<LimitOp>),
    Join(Box<join::JoinOp>),
    Aggregate(Box<agg::AggOp>),
    Sort(Box<sort::SortOp>),
    Distinct(Box<sort::DistinctOp>),
    SetOp(Box<sort::SetOpOp>),
}

impl Op {
    /// The operator tree of a plan (no I/O happens until `next`).
    pub fn build(plan: &Plan) -> Op {
        match plan {
            Plan::Values { rows, .. } => Op::Values(ValuesOp {
                prepared: eval::Prepared::of(rows.iter().flatten()),
                rows: rows.clone(),
                at: 0,
            }),
            Plan::Scan(s) => Op::Scan(Box::new(scan::ScanOp::new((**s).clone()))),
            Plan::Virtual(v) => Op::Generated(GeneratedOp::Virtual(*v, None)),
            Plan::TableFn {
                func,
                args,
                ordinality,
                ty,
            } => Op::Generated(GeneratedOp::Function {
                func: *func,
                args: args.clone(),
                ordinality: *ordinality,
                ty: *ty,
                rows: None,
            }),
            Plan::Series {
                start,
                stop,
                step,
                ty,
            } => Op::Series(SeriesOp {
                start: start.clone(),
                stop: stop.clone(),
                step: step.clone(),
                ty: *ty,
                state: None,
            }),
            Plan::Filter { input, predicate } => Op::Filter(Box::new(FilterOp {
                input: Op::build(input),
                prepared: eval::Prepared::of(std::iter::once(predicate)),
                predicate: predicate.clone(),
            })),
            Plan::Project { input, exprs, .. } => Op::Project(Box::new(ProjectOp {
                input: Op::build(input),
                prepared: eval::Prepared::of(exprs.iter()),
                exprs: exprs.clone(),
            })),
            Plan::Limit {
                input,
                limit,
                offset,
            } => Op::Limit(Box::new(LimitOp {
                input: Op::build(input),
                limit: limit.clone(),
                offset: offset.clone(),
                state: None,
            })),
            Plan::Join(j) => Op::Join(Box::new(join::JoinOp::new(j))),
            Plan::Aggregate(a) => Op::Aggregate(Box::new(agg::AggOp::new(a))),
            Plan::Sort { input, keys } => {
                Op::Sort(Box::new(sort::SortOp::new(Op::build(input), keys.clone())))
            }
            Plan::Distinct { input, on } => Op::Distinct(Box::new(sort::DistinctOp::new(
                Op::build(input),
                on.clone(),
            ))),
            Plan::SetOp(op) => Op::SetOp(Box::new(sort::SetOpOp::new(op))),
        }
    }

    /// The next batch of rows, or `None` when done.
    pub fn next<'s, K: Kv>(&'s mut self, cx: &'s mut Cx<'_, K>) -> OpFuture<'s, Option<Vec<Row>>> {
        Box::pin(async move {
            match self {
                Op::Values(op) => op.next(cx).await,
                Op::Generated(op) => op.next(cx),
                Op::Series(op) => op.next(cx),
                Op::Scan(op) => op.next(cx).await,
                Op::Filter(op) => op.next(cx).await,
                Op::Project(op) => op.next(cx).await,
                Op::Limit(op) => op.next(cx).await,
                Op::Join(op) => op.next(cx).await,
                Op::Aggregate(op) => op.next(cx).await,
                Op::Sort(op) => op.next(cx).await,
                Op::Distinct(op) => op.next(cx).await,
                Op::SetOp(op) => op.next(cx).await,
            }
        })
    }

    /// Runs to the end, collecting every row (charged to memory).
    pub async fn collect<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Vec<Row>> {
        let mut out = Vec::new();
        while let Some(batch) = self.next(cx).await? {
            for row in batch {
                cx.state.memory.charge(row_bytes(&row))?;
                out.push(row);
            }
        }
        Ok(out)
    }
}

pub struct ValuesOp {
    rows: Vec<Vec<Expr>>,
    prepared: eval::Prepared,
    at: usize,
}

impl ValuesOp {
    async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if self.at >= self.rows.len() {
            return Ok(None);
        }
        let end = (self.at + BATCH_ROWS).min(self.rows.len());
        let mut out = Vec::with_capacity(end - self.at);
        for i in self.at..end {
            let row = eval::eval_row(cx, &self.prepared, &self.rows[i], &[]).await?;
            out.push(row);
        }
        self.at = end;
        Ok(Some(out))
    }
}

/// Rows computed when the operator opens: catalog views and the small
/// set-returning functions.
pub enum GeneratedOp {
    Virtual(
        crate::catalog::pg::VirtualTable,
        Option<std::vec::IntoIter<Row>>,
    ),
    Function {
        func: crate::plan::TableFn,
        args: Vec<Expr>,
        ordinality: bool,
        ty: teller_net::types::Type,
        rows: Option<std::vec::IntoIter<Row>>,
    },
}

impl GeneratedOp {
    fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        let rows = match self {
            GeneratedOp::Virtual(table, rows) => {
                if rows.is_none() {
                    let shard = cx.env.shard;
                    let counts = |id| shard.row_count(id);
                    let vcx = crate::catalog::pg::VirtualCx {
                        catalog: cx.env.catalog,
                        database: cx.env.database,
                        user: cx.env.user,
                        vars: cx.env.vars,
                        rows: &counts,
                    };
                    let all = crate::catalog::pg::rows(*table, &vcx);
                    for row in &all {
                        cx.state.memory.charge(row_bytes(row))?;
                    }
                    *rows = Some(all.into_iter());
                }
                rows.as_mut().expect("computed above")
            }
            GeneratedOp::Function {
                func,
                args,
                ordinality,
                ty,
                rows,
            } => {
                if rows.is_none() {
                    let arg = eval_const(&args[0], cx.env, cx.outer)?;
                    let values: Vec<Value> = match (*func, arg) {
                        (_, Value::Null) => Vec::new(),
                        (crate::plan::TableFn::Unnest, Value::Text(text)) => {
                            let mut out = Vec::new();
                            for item in crate::expr::ops::array_elements(&text)? {
                                out.push(match item {
                                    None => Value::Null,
                                    Some(s) => teller_net::types::decode_text(*ty, s.as_bytes())?,
                                });
                            }
                            out
                        }
                        (crate::plan::TableFn::PartitionAncestors, v) => vec![v],
                        (_, other) => {
                            return Err(PgError::internal(format!("{func:?} of {other:?}")))
                        }
                    };
                    let all: Vec<Row> = values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let mut row = vec![v];
                            if *ordinality {
                                row.push(Value::Int8(i as i64 + 1));
                            }
                            row
                        })
                        .collect();
                    *rows = Some(all.into_iter());
                }
                rows.as_mut().expect("computed above")
            }
        };
        let out: Vec<Row> = rows.take(BATCH_ROWS).collect();
        Ok((!out.is_empty()).then_some(out))
    }
}

/// `generate_series`: integers from start to stop by step, in batches.
pub struct SeriesOp {
    start: Expr,
    stop: Expr,
    step: Option<Expr>,
    ty: teller_net::types::Type,
    /// (next value, stop, step), or None before the first call.
    state: Option<Option<(i64, i64, i64)>>,
}

impl SeriesOp {
    fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if self.state.is_none() {
            let int = |e: &Expr| -> PgResult<Option<i64>> {
                Ok(match eval_const(e, cx.env, cx.outer)? {
                    Value::Null => None,
                    Value::Int2(n) => Some(n.into()),
                    Value::Int4(n) => Some(n.into()),
                    Value::Int8(n) => Some(n),
                    other => {
                        return Err(PgError::internal(format!("generate_series of {other:?}")))
                    }
                })
            };
            let (start, stop) = (int(&self.start)?, int(&self.stop)?);
            let step = match &self.step {
                Some(e) => int(e)?,
                None => Some(1),
            };
            if step == Some(0) {
                return Err(PgError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "step size cannot equal zero",
                ));
            }
            self.state = Some(match (start, stop, step) {
                (Some(a), Some(b), Some(s)) => Some((a, b, s)),
                _ => None,
            });
        }
        let Some(Some((next, stop, step))) = self.state else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(BATCH_ROWS);
        let mut v = next;
        let mut done = false;
        while out.len() < BATCH_ROWS {
            if (step > 0 && v > stop) || (step < 0 && v < stop) {
                done = true;
                break;
            }
            out.push(vec![match self.ty {
                teller_net::types::Type::Int4 => Value::Int4(v as i32),
                _ => Value::Int8(v),
            }]);
            match v.checked_add(step) {
                Some(n) => v = n,
                None => {
                    done = true;
                    break;
                }
            }
        }
        self.state = Some((!done).then_some((v, stop, step)));
        Ok((!out.is_empty()).then_some(out))
    }
}

pub struct FilterOp {
    input: Op,
    predicate: Expr,
    prepared: eval::Prepared,
}

impl FilterOp {
    async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        loop {
            let Some(batch) = self.input.next(cx).await? else {
                return Ok(None);
            };
            let mut out = Vec::with_capacity(batch.len());
            for row in batch {
                let keep = if self.prepared.is_empty() {
                    test(&self.predicate, cx.env, &row, cx.outer)?
                } else {
                    let v = eval::eval_row(
                        cx,
                        &self.prepared,
                        std::slice::from_ref(&self.predicate),
                        &row,
                    )
                    .await?;
                    v[0] == Value::Bool(true)
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

pub struct ProjectOp {
    input: Op,
    exprs: Vec<Expr>,
    prepared: eval::Prepared,
}

impl ProjectOp {
    async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        let Some(batch) = self.input.next(cx).await? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(batch.len());
        for row in batch {
            out.push(eval::eval_row(cx, &self.prepared, &self.exprs, &row).await?);
        }
        Ok(Some(out))
    }
}

pub struct LimitOp {
    input: Op,
    limit: Option<Expr>,
    offset: Option<Expr>,
    /// (rows still to skip, rows still to return).
    state: Option<(u64, Option<u64>)>,
}

impl LimitOp {
    async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if self.state.is_none() {
            let limit = self
                .limit
                .as_ref()
                .map(|e| count(e, cx.env, cx.outer, "LIMIT"))
                .transpose()?
                .flatten();
            let offset = self
                .offset
                .as_ref()
                .map(|e| count(e, cx.env, cx.outer, "OFFSET"))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            self.state = Some((offset, limit));
        }
        loop {
            let (skip, left) = self.state.expect("set above");
            if left == Some(0) {
                return Ok(None);
            }
            let Some(batch) = self.input.next(cx).await? else {
                return Ok(None);
            };
            let mut rows = batch.into_iter();
            let skipped = (skip as usize).min(rows.len());
            rows.by_ref().take(skipped).for_each(drop);
            let out: Vec<Row> = match left {
                Some(n) => rows.take(n as usize).collect(),
                None => rows.collect(),
            };
            self.state = Some((skip - skipped as u64, left.map(|n| n - out.len() as u64)));
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}
