//! Table scans: key spans evaluated from the plan's expressions, read in
//! batches of at most [`SCAN_BATCH_ROWS`] (following resume spans), or one
//! batch of Gets when every span is a single primary key. A secondary index
//! that does not cover the query is followed by one batch of Gets for the
//! primary rows of each batch of entries.

use std::collections::VecDeque;

use bytes::Bytes;
use teller_net::types::Value;
use teller_net::{PgError, PgResult};

use super::{count, eval_const, test, Cx, Env, Row, BATCH_ROWS};
use crate::encoding::key::{
    encode_value, prefix_successor, Direction, Nulls, NULL_FIRST, NULL_LAST,
};
use crate::kv::{Batch, Kv, KvTxn, Response, ScanRequest, Span};
use crate::plan::{Access, RangeBound, ScanPlan, SpanExprs};
use crate::table::{dangling, key_value, IndexCodec, TableCodec};

/// Rows asked of the KV store per scan request.
pub const SCAN_BATCH_ROWS: u64 = 1024;

/// PostgreSQL's wording for a NOWAIT lock that is not available.
fn lock_error(plan: &ScanPlan, e: PgError) -> PgError {
    let nowait = plan
        .lock
        .is_some_and(|l| l.wait == crate::kv::LockWait::NoWait);
    if nowait && e.code == crate::errors::LOCK_NOT_AVAILABLE {
        return PgError::new(
            crate::errors::LOCK_NOT_AVAILABLE,
            format!(
                "could not obtain lock on row in relation \"{}\"",
                plan.table.name
            ),
        );
    }
    e
}

/// Where a scan reads.
#[derive(Debug)]
pub enum Target {
    /// Primary keys to get.
    Point(Vec<u8>),
    Span(Span),
}

/// Encodes `values` as the leading key columns of `ix`, after its prefix;
/// `None` when a value cannot occur in the column (NULL, out of range).
pub fn key_prefix(ix: &IndexCodec, values: &[Value]) -> PgResult<Option<Vec<u8>>> {
    let mut key = ix.prefix.clone();
    for (v, col) in values.iter().zip(&ix.key_cols) {
        let Some(v) = key_value(v.clone(), col.ty)? else {
            return Ok(None);
        };
        encode_value(&mut key, &v, *col)?;
    }
    Ok(Some(key))
}

/// The target of an equality lookup on the first `values.len()` columns.
pub fn eq_target(ix: &IndexCodec, values: &[Value]) -> PgResult<Option<Target>> {
    let Some(base) = key_prefix(ix, values)? else {
        return Ok(None);
    };
    if ix.primary && values.len() == ix.key_cols.len() {
        return Ok(Some(Target::Point(base)));
    }
    Ok(Some(Target::Span(Span::prefix(&base))))
}

fn bound_value(
    b: &Option<RangeBound>,
    env: &Env<'_>,
    outer: &[Value],
    ty: teller_net::types::Type,
) -> PgResult<Option<Option<Value>>> {
    match b {
        None => Ok(Some(None)),
        Some(b) => {
            let v = eval_const(&b.expr, env, outer)?;
            Ok(key_value(v, ty)?.map(Some))
        }
    }
}

/// The byte span of one span expression (`None`: empty).
fn target(
    ix: &IndexCodec,
    s: &SpanExprs,
    env: &Env<'_>,
    outer: &[Value],
) -> PgResult<Option<Target>> {
    let mut eq = Vec::with_capacity(s.eq.len());
    for e in &s.eq {
        eq.push(eval_const(e, env, outer)?);
    }
    if s.lower.is_none() && s.upper.is_none() {
        return eq_target(ix, &eq);
    }
    let Some(base) = key_prefix(ix, &eq)? else {
        return Ok(None);
    };
    let col = *ix
        .key_cols
        .get(eq.len())
        .ok_or_else(|| PgError::internal("range past the index's columns"))?;
    let (Some(lo), Some(hi)) = (
        bound_value(&s.lower, env, outer, col.ty)?,
        bound_value(&s.upper, env, outer, col.ty)?,
    ) else {
        return Ok(None);
    };
    let enc = |v: &Value| -> PgResult<Vec<u8>> {
        let mut k = base.clone();
        encode_value(&mut k, v, col)?;
        Ok(k)
    };
    let non_null_start = match col.nulls {
        Nulls::First => {
            let mut k = base.clone();
            k.push(NULL_FIRST + 1);
            Some(k)
        }
        Nulls::Last => Some(base.clone()),
    };
    let non_null_end = match col.nulls {
        Nulls::Last => {
            let mut k = base.clone();
            k.push(NULL_LAST);
            Some(k)
        }
        Nulls::First => prefix_successor(&base),
    };
    // In a DESC column larger values have smaller bytes: the SQL upper
    // bound starts the byte span.
    let (first, last) = match col.direction {
        Direction::Asc => (&s.lower, &s.upper),
        Direction::Desc => (&s.upper, &s.lower),
    };
    let (first_v, last_v) = match col.direction {
        Direction::Asc => (&lo, &hi),
        Direction::Desc => (&hi, &lo),
    };
    let start = match (first, first_v) {
        (Some(b), Some(v)) if b.inclusive => Some(enc(v)?),
        (Some(_), Some(v)) => prefix_successor(&enc(v)?),
        _ => non_null_start,
    };
    let end = match (last, last_v) {
        (Some(b), Some(v)) if b.inclusive => prefix_successor(&enc(v)?),
        (Some(_), Some(v)) => Some(enc(v)?),
        _ => non_null_end,
    };
    let Some(start) = start else {
        return Ok(None);
    };
    let span = Span {
        start: Bytes::from(start),
        end: end.map(Bytes::from),
    };
    Ok((!span.is_empty()).then_some(Target::Span(span)))
}

/// The targets of a scan, in key order.
pub fn targets(
    plan: &ScanPlan,
    ix: &IndexCodec,
    env: &Env<'_>,
    outer: &[Value],
) -> PgResult<Vec<Target>> {
    let mut out = Vec::new();
    match &plan.access {
        Access::Full => out.push(Target::Span(Span::prefix(&ix.prefix))),
        Access::Spans(list) => {
            for s in list {
                if let Some(t) = target(ix, s, env, outer)? {
                    out.push(t);
                }
            }
        }
    }
    let start = |t: &Target| match t {
        Target::Point(k) => k.clone(),
        Target::Span(s) => s.start.to_vec(),
    };
    out.sort_by_key(start);
    out.dedup_by(|a, b| match (a, b) {
        (Target::Point(x), Target::Point(y)) => x == y,
        (Target::Span(x), Target::Span(y)) => x == y,
        _ => false,
    });
    Ok(out)
}

/// Reads the primary rows of `keys` (in order); a missing row is corruption
/// when `must_exist` (an index entry named it), else skipped.
pub async fn get_rows<K: Kv>(
    cx: &mut Cx<'_, K>,
    codec: &TableCodec,
    keys: Vec<Vec<u8>>,
    must_exist: bool,
) -> PgResult<Vec<Row>> {
    get_rows_locking(cx, codec, keys, must_exist, None).await
}

/// [`get_rows`], locking each row read when `lock` is given (a locking
/// point read is a locking scan of one key). A locked row that another
/// transaction deleted meanwhile is skipped.
pub async fn get_rows_locking<K: Kv>(
    cx: &mut Cx<'_, K>,
    codec: &TableCodec,
    keys: Vec<Vec<u8>>,
    must_exist: bool,
    lock: Option<crate::kv::RowLock>,
) -> PgResult<Vec<Row>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(lock) = lock {
        let mut batch = Batch::new();
        for k in &keys {
            let mut r = ScanRequest::new(Span::point(k));
            r.lock = Some(lock);
            batch.scan(r);
        }
        let response = cx.batch(batch).await?;
        let mut rows = Vec::with_capacity(keys.len());
        for answer in response.responses {
            let Response::Scan(scan) = answer else {
                return Err(PgError::internal("a scan was answered with something else"));
            };
            for kv in scan.rows {
                rows.push(codec.decode_row(&kv.key, &kv.value)?);
            }
        }
        return Ok(rows);
    }
    let mut batch = Batch::new();
    for k in keys {
        batch.get(k);
    }
    let response = cx.batch(batch.clone()).await?;
    let mut rows = Vec::with_capacity(response.responses.len());
    for (request, answer) in batch.requests.iter().zip(response.responses) {
        let crate::kv::Request::Get { key } = request else {
            unreachable!("only gets were sent")
        };
        match answer {
            Response::Get(Some(value)) => rows.push(codec.decode_row(key, &value)?),
            Response::Get(None) if must_exist => return Err(dangling(&codec.primary.desc.name)),
            Response::Get(None) => {}
            _ => return Err(PgError::internal("a get was answered with something else")),
        }
    }
    Ok(rows)
}

/// Decodes scanned entries of `ix` into full rows (fetching primary rows
/// for a non-covering secondary index).
pub async fn decode_entries<K: Kv>(
    cx: &mut Cx<'_, K>,
    codec: &TableCodec,
    ix: &IndexCodec,
    covering: bool,
    entries: Vec<crate::kv::KeyValue>,
) -> PgResult<Vec<Row>> {
    decode_entries_locking(cx, codec, ix, covering, entries, None).await
}

/// [`decode_entries`], locking the primary rows of a secondary index scan.
pub async fn decode_entries_locking<K: Kv>(
    cx: &mut Cx<'_, K>,
    codec: &TableCodec,
    ix: &IndexCodec,
    covering: bool,
    entries: Vec<crate::kv::KeyValue>,
    lock: Option<crate::kv::RowLock>,
) -> PgResult<Vec<Row>> {
    if ix.primary {
        return entries
            .iter()
            .map(|kv| codec.decode_row(&kv.key, &kv.value))
            .collect();
    }
    let partial: Vec<Row> = entries
        .iter()
        .map(|kv| codec.decode_entry(ix, &kv.key, &kv.value))
        .collect::<PgResult<_>>()?;
    if covering {
        return Ok(partial);
    }
    let keys = partial
        .iter()
        .map(|r| codec.pk_key(r))
        .collect::<PgResult<Vec<_>>>()?;
    get_rows_locking(cx, codec, keys, lock.is_none(), lock).await
}

enum State {
    Init,
    Reading(VecDeque<Target>),
    Done,
}

/// A scan of one table through one index.
pub struct ScanOp {
    plan: ScanPlan,
    codec: TableCodec,
    state: State,
    /// Rows still to return (the pushed-down LIMIT).
    left: Option<u64>,
    /// Entries read, for the row count statistics of full scans.
    read: u64,
}

impl ScanOp {
    pub fn new(plan: ScanPlan) -> ScanOp {
        let codec = TableCodec::new(&plan.table);
        ScanOp {
            plan,
            codec,
            state: State::Init,
            left: None,
            read: 0,
        }
    }

    fn index(&self) -> PgResult<&IndexCodec> {
        self.codec
            .index(self.plan.index)
            .ok_or_else(|| PgError::internal("scan of an index the table does not have"))
    }

    fn open<K: Kv>(&mut self, cx: &Cx<'_, K>) -> PgResult<()> {
        self.left = match &self.plan.limit {
            Some(e) => count(e, cx.env, cx.outer, "LIMIT")?,
            None => None,
        };
        // An UPDATE's or DELETE's own lock applies at READ COMMITTED only.
        let mut list = targets(&self.plan, self.index()?, cx.env, cx.outer)?;
        if self.plan.lock.is_some() {
            // A locking point lookup is a locking scan of one key.
            for t in &mut list {
                if let Target::Point(key) = t {
                    *t = Target::Span(Span::point(key));
                }
            }
        }
        if self.plan.reverse {
            list.reverse();
        }
        self.state = State::Reading(list.into());
        Ok(())
    }

    pub async fn next<K: Kv>(&mut self, cx: &mut Cx<'_, K>) -> PgResult<Option<Vec<Row>>> {
        if matches!(self.state, State::Init) {
            self.open(cx)?;
        }
        loop {
            if self.left == Some(0) {
                self.state = State::Done;
            }
            let State::Reading(queue) = &mut self.state else {
                return Ok(None);
            };
            let rows = match queue.pop_front() {
                None => {
                    self.finish(cx);
                    self.state = State::Done;
                    return Ok(None);
                }
                Some(Target::Point(first)) => {
                    let mut keys = vec![first];
                    while keys.len() < BATCH_ROWS {
                        match queue.front() {
                            Some(Target::Point(_)) => {
                                if let Some(Target::Point(k)) = queue.pop_front() {
                                    keys.push(k);
                                }
                            }
                            _ => break,
                        }
                    }
                    let codec = self.codec.clone();
                    get_rows(cx, &codec, keys, false).await?
                }
                Some(Target::Span(span)) => {
                    let want = self
                        .left
                        .map_or(SCAN_BATCH_ROWS, |n| n.min(SCAN_BATCH_ROWS));
                    let mut request = ScanRequest::new(span);
                    request.limit_rows = Some(want);
                    request.reverse = self.plan.reverse;
                    let lock = self.plan.lock.map(|l| crate::kv::RowLock {
                        strength: l.strength,
                        wait: l.wait,
                    });
                    // Rows are locked by the scan itself only when every row
                    // it returns qualifies; otherwise the qualifying rows are
                    // locked (and read again) after the filter.
                    let primary = self.plan.index == self.plan.table.primary.id;
                    let lock_in_scan = primary && self.plan.filter.is_none();
                    request.lock = if lock_in_scan { lock } else { None };
                    let mut batch = Batch::new();
                    batch.scan(request);
                    let response = cx
                        .txn
                        .batch(batch)
                        .await
                        .map_err(|e| lock_error(&self.plan, e.into()))?;
                    let Some(Response::Scan(scan)) = response.responses.into_iter().next() else {
                        return Err(PgError::internal("a scan was answered with something else"));
                    };
                    if let Some(resume) = scan.resume {
                        queue.push_front(Target::Span(resume));
                    }
                    self.read += scan.rows.len() as u64;
                    let ix = self.index()?.clone();
                    let codec = self.codec.clone();
                    let covering = self.plan.covering && lock.is_none();
                    let rows = decode_entries(cx, &codec, &ix, covering, scan.rows).await?;
                    match lock {
                        Some(lock) if !lock_in_scan => {
                            let mut keys = Vec::with_capacity(rows.len());
                            for row in rows {
                                let keep = match &self.plan.filter {
                                    Some(f) => test(f, cx.env, &row, cx.outer)?,
                                    None => true,
                                };
                                if keep {
                                    keys.push(codec.pk_key(&row)?);
                                }
                            }
                            get_rows_locking(cx, &codec, keys, false, Some(lock))
                                .await
                                .map_err(|e| lock_error(&self.plan, e))?
                        }
                        _ => rows,
                    }
                }
            };
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let keep = match &self.plan.filter {
                    Some(f) => test(f, cx.env, &row, cx.outer)?,
                    None => true,
                };
                if keep {
                    out.push(row);
                }
            }
            if let Some(n) = &mut self.left {
                out.truncate(*n as usize);
                *n -= out.len() as u64;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }

    /// Records the row count a complete full scan saw.
    fn finish<K: Kv>(&self, cx: &Cx<'_, K>) {
        if self.plan.access == Access::Full && self.plan.limit.is_none() {
            cx.env.shard.set_row_count(self.plan.table.id, self.read);
        }
    }
}

/// Counts a table's rows with a full scan and records the count.
pub async fn count_rows<K: Kv>(
    cx: &mut Cx<'_, K>,
    table: &crate::catalog::TableRef,
) -> PgResult<u64> {
    let codec = TableCodec::new(table);
    let mut rows = 0u64;
    let mut next = Some(Span::prefix(&codec.primary.prefix));
    while let Some(span) = next.take() {
        let mut request = ScanRequest::new(span);
        request.limit_rows = Some(SCAN_BATCH_ROWS);
        let mut batch = Batch::new();
        batch.scan(request);
        let response = cx.batch(batch).await?;
        let Some(Response::Scan(scan)) = response.responses.into_iter().next() else {
            return Err(PgError::internal("a scan was answered with something else"));
        };
        rows += scan.rows.len() as u64;
        next = scan.resume;
    }
    cx.env.shard.set_row_count(table.id, rows);
    Ok(rows)
}
