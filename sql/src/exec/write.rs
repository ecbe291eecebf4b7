//! INSERT, UPDATE and DELETE: rows become batches of KV writes.
//!
//! - A row is completed (defaults, rowid), fitted to its columns' types
//!   (`VARCHAR(n)`, `CHAR(n)`, `NUMERIC(p, s)`) and checked (NOT NULL, CHECK)
//!   before any write; foreign keys are checked after the batch that writes
//!   it, so a statement may insert a parent and its child together.
//! - Uniqueness is the KV store's: primary keys and unique index entries are
//!   written with conditional puts, and a failed condition is reported with
//!   PostgreSQL's message naming the constraint and the key.
//! - UPDATE reads every target row before writing (so no row is visited
//!   twice, whatever the index); DELETE streams.
//! - RETURNING rows are buffered (charged to the statement's memory) and
//!   handed out after the statement completes.

use std::collections::HashSet;

use bytes::Bytes;
use rust_decimal::{Decimal, RoundingStrategy};
use teller_net::types::{encode_text, Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::eval::{eval_plain, eval_row, Prepared};
use super::scan::{eq_target, Target};
use super::{row_bytes, Cx, Op, Row, BATCH_ROWS};
use crate::bind::dml::{
    ColumnDefault, ConflictAction, DeletePlan, InsertPlan, OnConflict, Returning, TableWrite,
    UpdatePlan,
};
use crate::catalog::{ColumnDesc, FkAction, ForeignKeyDesc, TableRef};
use crate::errors;
use crate::expr::Expr;
use crate::kv::{Batch, KeyValue, Kv, KvError, Request, Response, ScanRequest, Span};
use crate::table::{IndexCodec, TableCodec};

/// The outcome of a DML statement.
#[derive(Debug, Default)]
pub struct WriteResult {
    pub count: u64,
    pub returning: Vec<Row>,
}

/// Text of a value as a "Failing row contains" detail shows it.
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        other => {
            let mut buf = bytes::BytesMut::new();
            encode_text(other, other.natural_type(), &mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        }
    }
}

fn failing_row(table: &TableRef, row: &[Value]) -> String {
    let values: Vec<String> = table
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| !c.hidden)
        .map(|(_, v)| show(v))
        .collect();
    format!("Failing row contains ({}).", values.join(", "))
}

/// `(a, b)=(1, 2)` for a constraint's columns.
fn key_text(table: &TableRef, positions: &[usize], row: &[Value]) -> String {
    let names: Vec<&str> = positions
        .iter()
        .map(|&p| table.columns[p].name.as_str())
        .collect();
    let values: Vec<String> = positions.iter().map(|&p| show(&row[p])).collect();
    format!("({})=({})", names.join(", "), values.join(", "))
}

/// Fits a value to its column's type modifier.
pub fn fit(value: Value, column: &ColumnDesc) -> PgResult<Value> {
    if column.typmod < 0 {
        return Ok(value);
    }
    match (column.ty, value) {
        (Type::Varchar | Type::Bpchar, Value::Text(s)) => {
            let n = (column.typmod - 4) as usize;
            let len = s.chars().count();
            if len > n {
                let tail: String = s.chars().skip(n).collect();
                if tail.chars().all(|c| c == ' ') {
                    return Ok(Value::Text(s.chars().take(n).collect()));
                }
                let name = if column.ty == Type::Varchar {
                    "character varying"
                } else {
                    "character"
                };
                return Err(PgError::new(
                    SqlState::STRING_DATA_RIGHT_TRUNCATION,
                    format!("value too long for type {name}({n})"),
                ));
            }
            if column.ty == Type::Bpchar && len < n {
                let mut padded = s;
                padded.extend(std::iter::repeat_n(' ', n - len));
                return Ok(Value::Text(padded));
            }
            Ok(Value::Text(s))
        }
        (Type::Numeric, Value::Numeric(d)) => {
            let m = column.typmod - 4;
            let (p, s) = ((m >> 16) as u32, (m & 0xFFFF) as u32);
            let mut r = d.round_dp_with_strategy(s, RoundingStrategy::MidpointAwayFromZero);
            let limit = Decimal::from_i128_with_scale(10i128.pow(p - s), 0);
            if r.abs() >= limit {
                return Err(PgError::new(SqlState::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow")
                    .with_detail(format!(
                        "A field with precision {p}, scale {s} must round to an absolute value less than 10^{}.",
                        p - s
                    )));
            }
            r.rescale(s);
            Ok(Value::Numeric(r))
        }
        (_, v) => Ok(v),
    }
}

/// Fits every column, then checks NOT NULL and CHECK constraints.
fn check_row<K: Kv>(cx: &Cx<'_, K>, write: &TableWrite, row: &mut [Value]) -> PgResult<()> {
    let table = &write.table;
    for (c, v) in table.columns.iter().zip(row.iter_mut()) {
        let taken = std::mem::replace(v, Value::Null);
        *v = fit(taken, c)?;
    }
    for (c, v) in table.columns.iter().zip(row.iter()) {
        if v.is_null() && !c.nullable {
            return Err(PgError::new(
                errors::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, table.name
                ),
            )
            .with_detail(failing_row(table, row)));
        }
    }
    for (name, check) in &write.checks {
        if eval_plain(check, cx.env, row, cx.outer)? == Value::Bool(false) {
            return Err(PgError::new(
                errors::CHECK_VIOLATION,
                format!(
                    "new row for relation \"{}\" violates check constraint \"{name}\"",
                    table.name
                ),
            )
            .with_detail(failing_row(table, row)));
        }
    }
    Ok(())
}

/// What each conditional put of a batch guards, to word a failure.
struct Guard {
    index: usize,
    /// The index (primary or secondary) and the row.
    ix: IndexCodec,
    row: Row,
}

fn unique_violation(table: &TableRef, ix: &IndexCodec, row: &[Value]) -> PgError {
    PgError::new(
        errors::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{}\"",
            ix.desc.name
        ),
    )
    .with_detail(format!(
        "Key {} already exists.",
        key_text(table, &ix.key_positions, row)
    ))
}

/// Runs a write batch, wording a failed conditional put as PostgreSQL does.
async fn run_batch<K: Kv>(
    cx: &mut Cx<'_, K>,
    table: &TableRef,
    batch: Batch,
    guards: &[Guard],
) -> PgResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    match cx.batch(batch).await {
        Ok(_) => Ok(()),
        Err(KvError::ConditionFailed { index, .. }) => {
            let guard = guards.iter().find(|g| g.index == index).ok_or_else(|| {
                PgError::internal(format!("condition of request {index} failed unguarded"))
            })?;
            Err(unique_violation(table, &guard.ix, &guard.row))
        }
        Err(e) => Err(e.into()),
    }
}

/// Adds the writes of a new row (primary and index entries).
fn put_row(
    codec: &TableCodec,
    row: &Row,
    batch: &mut Batch,
    guards: &mut Vec<Guard>,
) -> PgResult<()> {
    let (key, value) = codec.encode_row(row)?;
    guards.push(Guard {
        index: batch.len(),
        ix: codec.primary.clone(),
        row: row.clone(),
    });
    batch.conditional_put(key, value, None);
    for ix in &codec.secondaries {
        let (key, value, unique) = codec.index_entry(ix, row)?;
        if unique {
            guards.push(Guard {
                index: batch.len(),
                ix: ix.clone(),
                row: row.clone(),
            });
            batch.conditional_put(key, value, None);
        } else {
            batch.put(key, value);
        }
    }
    Ok(())
}

/// Adds the deletes of a row's primary and index entries.
fn delete_row(codec: &TableCodec, row: &Row, batch: &mut Batch) -> PgResult<()> {
    batch.delete(codec.pk_key(row)?);
    for ix in &codec.secondaries {
        let (key, _, _) = codec.index_entry(ix, row)?;
        batch.delete(key);
    }
    Ok(())
}

/// Adds the writes that turn `old` into `new`: deletes first (in `deletes`)
/// so keys a statement moves between rows do not collide within a batch.
fn change_row(
    codec: &TableCodec,
    old: &Row,
    new: &Row,
    deletes: &mut Batch,
    puts: &mut Vec<(Request, Option<(IndexCodec, Row)>)>,
) -> PgResult<()> {
    let (old_key, _) = codec.encode_row(old)?;
    let (new_key, value) = codec.encode_row(new)?;
    if old_key != new_key {
        deletes.delete(old_key);
        puts.push((
            Request::ConditionalPut {
                key: new_key.into(),
                value: value.into(),
                expected: None,
            },
            Some((codec.primary.clone(), new.clone())),
        ));
    } else {
        puts.push((
            Request::Put {
                key: new_key.into(),
                value: value.into(),
            },
            None,
        ));
    }
    for ix in &codec.secondaries {
        let (ok, ov, _) = codec.index_entry(ix, old)?;
        let (nk, nv, unique) = codec.index_entry(ix, new)?;
        if ok != nk {
            deletes.delete(ok);
            if unique {
                puts.push((
                    Request::ConditionalPut {
                        key: nk.into(),
                        value: nv.into(),
                        expected: None,
                    },
                    Some((ix.clone(), new.clone())),
                ));
            } else {
                puts.push((
                    Request::Put {
                        key: nk.into(),
                        value: nv.into(),
                    },
                    None,
                ));
            }
        } else if ov != nv {
            puts.push((
                Request::Put {
                    key: nk.into(),
                    value: nv.into(),
                },
                None,
            ));
        }
    }
    Ok(())
}

fn positions(table: &TableRef, ids: &[u32]) -> Vec<usize> {
    ids.iter().filter_map(|id| table.position(*id)).collect()
}

/// The referenced table's unique index over `fk.ref_columns`, with the
/// order of the foreign key's columns in that index.
fn referenced_index<'c>(
    codec: &'c TableCodec,
    fk: &ForeignKeyDesc,
) -> PgResult<(&'c IndexCodec, Vec<usize>)> {
    for ix in std::iter::once(&codec.primary).chain(&codec.secondaries) {
        let cols: Vec<u32> = ix.desc.columns.iter().map(|c| c.column).collect();
        if !ix.desc.unique || cols.len() != fk.ref_columns.len() {
            continue;
        }
        let order: Option<Vec<usize>> = cols
            .iter()
            .map(|c| fk.ref_columns.iter().position(|r| r == c))
            .collect();
        if let Some(order) = order {
            return Ok((ix, order));
        }
    }
    Err(PgError::internal(format!(
        "no unique index matches foreign key {}",
        fk.name
    )))
}

/// Checks that the parent rows of `rows` exist (MATCH SIMPLE: a row with a
/// NULL in the key is not checked).
pub async fn check_parents<K: Kv>(
    cx: &mut Cx<'_, K>,
    table: &TableRef,
    rows: &[Row],
) -> PgResult<()> {
    for fk in &table.foreign_keys {
        let parent = cx.env.catalog.table(fk.ref_table).cloned().ok_or_else(|| {
            PgError::internal(format!(
                "foreign key {} references a missing table",
                fk.name
            ))
        })?;
        let codec = TableCodec::new(&parent);
        let (ix, order) = referenced_index(&codec, fk)?;
        let child_positions = positions(table, &fk.columns);
        let mut batch = Batch::new();
        let mut checked = Vec::new();
        for row in rows {
            let values: Vec<Value> = order
                .iter()
                .map(|&i| row[child_positions[i]].clone())
                .collect();
            if values.iter().any(Value::is_null) {
                continue;
            }
            match eq_target(ix, &values)? {
                Some(Target::Point(k)) => {
                    batch.get(k);
                }
                Some(Target::Span(s)) => {
                    let mut r = ScanRequest::new(s);
                    r.limit_rows = Some(1);
                    batch.scan(r);
                }
                None => return Err(fk_missing(table, &parent, fk, &child_positions, row)),
            }
            checked.push(row);
        }
        if batch.is_empty() {
            continue;
        }
        let response = cx.batch(batch).await?;
        for (row, answer) in checked.into_iter().zip(response.responses) {
            let present = match answer {
                Response::Get(v) => v.is_some(),
                Response::Scan(s) => !s.rows.is_empty(),
                Response::Written => false,
            };
            if !present {
                return Err(fk_missing(table, &parent, fk, &child_positions, row));
            }
        }
    }
    Ok(())
}

fn fk_missing(
    table: &TableRef,
    parent: &TableRef,
    fk: &ForeignKeyDesc,
    cols: &[usize],
    row: &[Value],
) -> PgError {
    PgError::new(
        errors::FOREIGN_KEY_VIOLATION,
        format!(
            "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
            table.name, fk.name
        ),
    )
    .with_detail(format!(
        "Key {} is not present in table \"{}\".",
        key_text(table, cols, row),
        parent.name
    ))
}

/// Rows of `child` whose foreign key `fk` holds `values` (in
/// `fk.ref_columns` order), at most `limit`.
async fn referencing_rows<K: Kv>(
    cx: &mut Cx<'_, K>,
    child: &TableCodec,
    fk: &ForeignKeyDesc,
    values: &[Value],
    limit: Option<u64>,
) -> PgResult<Vec<Row>> {
    let table = &child.table;
    let fk_positions = positions(table, &fk.columns);
    // An index whose leading columns are the foreign key's.
    for ix in std::iter::once(&child.primary).chain(&child.secondaries) {
        let k = fk_positions.len();
        if ix.key_positions.len() < k {
            continue;
        }
        let order: Option<Vec<usize>> = ix.key_positions[..k]
            .iter()
            .map(|p| fk_positions.iter().position(|q| q == p))
            .collect();
        let Some(order) = order else { continue };
        let key: Vec<Value> = order.iter().map(|&i| values[i].clone()).collect();
        let span = match eq_target(ix, &key)? {
            None => return Ok(Vec::new()),
            Some(Target::Point(k)) => Span::point(&k),
            Some(Target::Span(s)) => s,
        };
        let mut out = Vec::new();
        let mut next = Some(span);
        while let Some(span) = next.take() {
            let mut r = ScanRequest::new(span);
            r.limit_rows = Some(limit.unwrap_or(super::scan::SCAN_BATCH_ROWS));
            let mut batch = Batch::new();
            batch.scan(r);
            let response = cx.batch(batch).await?;
            let Some(Response::Scan(scan)) = response.responses.into_iter().next() else {
                return Err(PgError::internal("a scan was answered with something else"));
            };
            let rows = super::scan::decode_entries(cx, child, ix, false, scan.rows).await?;
            for row in rows {
                cx.state.memory.charge(row_bytes(&row))?;
                out.push(row);
            }
            if limit.is_some_and(|l| out.len() as u64 >= l) {
                break;
            }
            next = scan.resume;
        }
        return Ok(out);
    }
    // No index: scan the table.
    let mut out = Vec::new();
    let mut next = Some(Span::prefix(&child.primary.prefix));
    while let Some(span) = next.take() {
        let mut r = ScanRequest::new(span);
        r.limit_rows = Some(super::scan::SCAN_BATCH_ROWS);
        let mut batch = Batch::new();
        batch.scan(r);
        let response = cx.batch(batch).await?;
        let Some(Response::Scan(scan)) = response.responses.into_iter().next() else {
            return Err(PgError::internal("a scan was answered with something else"));
        };
        for kv in scan.rows {
            let row = child.decode_row(&kv.key, &kv.value)?;
            let hit = fk_positions.iter().zip(values).all(|(&p, v)| {
                !row[p].is_null()
                    && crate::expr::compare(&row[p], v).ok() == Some(std::cmp::Ordering::Equal)
            });
            if hit {
                cx.state.memory.charge(row_bytes(&row))?;
                out.push(row);
                if limit.is_some_and(|l| out.len() as u64 >= l) {
                    return Ok(out);
                }
            }
        }
        next = scan.resume;
    }
    Ok(out)
}

/// Applies the ON DELETE / ON UPDATE rules of foreign keys referencing
/// `table` for rows that go away (or whose referenced key changes).
fn enforce_children<'a, K: Kv>(
    cx: &'a mut Cx<'_, K>,
    table: &'a TableRef,
    gone: &'a [Row],
    deleting: bool,
) -> super::OpFuture<'a, ()> {
    Box::pin(async move {
        for (child_table, fk) in cx.env.catalog.referencing(table.id) {
            let child = TableCodec::new(&child_table);
            let ref_positions = positions(table, &fk.ref_columns);
            let action = if deleting { fk.on_delete } else { fk.on_update };
            for row in gone {
                let values: Vec<Value> = ref_positions.iter().map(|&p| row[p].clone()).collect();
                if values.iter().any(Value::is_null) {
                    continue;
                }
                match action {
                    FkAction::NoAction | FkAction::Restrict => {
                        if !referencing_rows(cx, &child, &fk, &values, Some(1))
                            .await?
                            .is_empty()
                        {
                            return Err(PgError::new(
                                errors::FOREIGN_KEY_VIOLATION,
                                format!(
                                    "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                                    table.name, fk.name, child_table.name
                                ),
                            )
                            .with_detail(format!(
                                "Key {} is still referenced from table \"{}\".",
                                key_text(table, &ref_positions, row),
                                child_table.name
                            )));
                        }
                    }
                    FkAction::Cascade if deleting => {
                        let rows = referencing_rows(cx, &child, &fk, &values, None).await?;
                        if !rows.is_empty() {
                            remove_rows(cx, &child, &rows).await?;
                        }
                    }
                    FkAction::SetNull | FkAction::SetDefault if deleting => {
                        let rows = referencing_rows(cx, &child, &fk, &values, None).await?;
                        let fk_positions = positions(&child_table, &fk.columns);
                        let mut deletes = Batch::new();
                        let mut puts = Vec::new();
                        for old in &rows {
                            let mut new = old.clone();
                            for &p in &fk_positions {
                                new[p] = match (action, &child_table.columns[p].default) {
                                    (FkAction::SetDefault, Some(text)) => {
                                        default_value(cx, text, &child_table.columns[p])?
                                    }
                                    _ => Value::Null,
                                };
                                if new[p].is_null() && !child_table.columns[p].nullable {
                                    return Err(PgError::new(
                                        errors::NOT_NULL_VIOLATION,
                                        format!(
                                            "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                                            child_table.columns[p].name, child_table.name
                                        ),
                                    ));
                                }
                            }
                            change_row(&child, old, &new, &mut deletes, &mut puts)?;
                        }
                        let (batch, guards) = assemble(deletes, puts);
                        run_batch(cx, &child_table, batch, &guards).await?;
                    }
                    _ => {
                        return Err(PgError::unsupported(format!(
                            "ON UPDATE {:?} of foreign key {} is not supported",
                            action, fk.name
                        )))
                    }
                }
            }
        }
        Ok(())
    })
}

/// A constant default (for SET DEFAULT), evaluated without a row.
fn default_value<K: Kv>(cx: &Cx<'_, K>, text: &str, column: &ColumnDesc) -> PgResult<Value> {
    let e = crate::bind::dml::parse_expr(text)?;
    let mut params = Vec::new();
    let mut bcx = crate::expr::BindContext::new(&mut params);
    let bound = crate::expr::bind(&e, &mut bcx)?;
    let bound = crate::expr::ops::coerce_to(bound, column.ty, &mut bcx)?;
    eval_plain(&bound, cx.env, &[], &[])
}

/// Deletes rows of a table with their index entries, after applying the
/// rules of foreign keys that reference them.
async fn remove_rows<K: Kv>(cx: &mut Cx<'_, K>, codec: &TableCodec, rows: &[Row]) -> PgResult<()> {
    enforce_children(cx, &codec.table, rows, true).await?;
    let mut batch = Batch::new();
    for row in rows {
        delete_row(codec, row, &mut batch)?;
    }
    run_batch(cx, &codec.table, batch, &[]).await
}

/// Deletes first, then the puts, with guards at the puts' final positions.
fn assemble(
    deletes: Batch,
    puts: Vec<(Request, Option<(IndexCodec, Row)>)>,
) -> (Batch, Vec<Guard>) {
    let mut batch = deletes;
    let mut guards = Vec::new();
    for (request, guard) in puts {
        if let Some((ix, row)) = guard {
            guards.push(Guard {
                index: batch.len(),
                ix,
                row,
            });
        }
        batch.push(request);
    }
    (batch, guards)
}

fn returning_row<K: Kv>(
    cx: &Cx<'_, K>,
    returning: &Option<Returning>,
    row: &[Value],
) -> PgResult<Option<Row>> {
    let Some(r) = returning else { return Ok(None) };
    let out = r
        .exprs
        .iter()
        .map(|e| eval_plain(e, cx.env, row, cx.outer))
        .collect::<PgResult<Row>>()?;
    cx.state.memory.charge(row_bytes(&out))?;
    Ok(Some(out))
}

/// The defaults of the columns a row does not give.
async fn complete_row<K: Kv>(
    cx: &mut Cx<'_, K>,
    write: &TableWrite,
    prepared: &Prepared,
    targets: &[usize],
    source: Row,
) -> PgResult<Row> {
    let table = &write.table;
    let mut row = vec![Value::Null; table.columns.len()];
    let mut given = vec![false; table.columns.len()];
    for (&p, v) in targets.iter().zip(source) {
        row[p] = v;
        given[p] = true;
    }
    let mut exprs: Vec<(usize, &Expr)> = Vec::new();
    for (p, d) in write.defaults.iter().enumerate() {
        if given[p] {
            continue;
        }
        match d {
            ColumnDefault::Null => {}
            ColumnDefault::RowId => {
                row[p] = Value::Int8(
                    cx.env
                        .shard
                        .unique_rowid(cx.env.now_micros, cx.env.shard_id),
                );
            }
            ColumnDefault::Expr(e) => exprs.push((p, e)),
        }
    }
    if !exprs.is_empty() {
        let list: Vec<Expr> = exprs.iter().map(|(_, e)| (*e).clone()).collect();
        let values = eval_row(cx, prepared, &list, &[]).await?;
        for ((p, _), v) in exprs.iter().zip(values) {
            row[*p] = v;
        }
    }
    Ok(row)
}

/// INSERT.
pub async fn insert<K: Kv>(cx: &mut Cx<'_, K>, plan: &InsertPlan) -> PgResult<WriteResult> {
    let codec = TableCodec::new(&plan.write.table);
    let defaults: Vec<&Expr> = plan
        .write
        .defaults
        .iter()
        .filter_map(|d| match d {
            ColumnDefault::Expr(e) => Some(e),
            _ => None,
        })
        .collect();
    let prepared = Prepared::of(defaults);
    let mut source = Op::build(&plan.source);
    let mut result = WriteResult::default();
    let mut conflict_state = ConflictState::default();
    while let Some(batch) = source.next(cx).await? {
        // Sequence values for the defaults of the whole batch at once.
        let mut calls: Vec<(u64, usize)> = Vec::new();
        for &seq in prepared.sequence_calls() {
            match calls.iter_mut().find(|(s, _)| *s == seq) {
                Some((_, n)) => *n += batch.len(),
                None => calls.push((seq, batch.len())),
            }
        }
        for (seq, n) in calls {
            super::eval::reserve(cx, seq, n).await?;
        }
        let mut rows = Vec::with_capacity(batch.len());
        for source_row in batch {
            let mut row =
                complete_row(cx, &plan.write, &prepared, &plan.targets, source_row).await?;
            check_row(cx, &plan.write, &mut row)?;
            rows.push(row);
        }
        if let Some(oc) = &plan.on_conflict {
            for row in rows {
                insert_on_conflict(cx, plan, &codec, oc, row, &mut conflict_state, &mut result)
                    .await?;
            }
            continue;
        }
        for chunk in rows.chunks(BATCH_ROWS) {
            let mut batch = Batch::new();
            let mut guards = Vec::new();
            for row in chunk {
                put_row(&codec, row, &mut batch, &mut guards)?;
            }
            run_batch(cx, &plan.write.table, batch, &guards).await?;
            check_parents(cx, &plan.write.table, chunk).await?;
            for row in chunk {
                if let Some(r) = returning_row(cx, &plan.returning, row)? {
                    result.returning.push(r);
                }
            }
            result.count += chunk.len() as u64;
        }
    }
    cx.env
        .shard
        .adjust_row_count(plan.write.table.id, result.count as i64);
    Ok(result)
}

/// Keys an INSERT ... ON CONFLICT has written or updated.
#[derive(Default)]
struct ConflictState {
    keys: HashSet<Vec<u8>>,
}

/// The unique keys a row would take: (index, key) per arbiter index.
fn arbiter_keys(
    codec: &TableCodec,
    oc: &OnConflict,
    row: &Row,
) -> PgResult<Vec<(IndexCodec, Vec<u8>)>> {
    let mut out = Vec::new();
    for ix in std::iter::once(&codec.primary).chain(&codec.secondaries) {
        if !ix.desc.unique || !(oc.arbiters.is_empty() || oc.arbiters.contains(&ix.desc.id)) {
            continue;
        }
        if ix.primary {
            out.push((ix.clone(), codec.pk_key(row)?));
        } else {
            let (key, _, unique) = codec.index_entry(ix, row)?;
            if unique {
                out.push((ix.clone(), key));
            }
        }
    }
    Ok(out)
}

async fn insert_on_conflict<K: Kv>(
    cx: &mut Cx<'_, K>,
    plan: &InsertPlan,
    codec: &TableCodec,
    oc: &OnConflict,
    row: Row,
    state: &mut ConflictState,
    result: &mut WriteResult,
) -> PgResult<()> {
    let table = &plan.write.table;
    let arbiters = arbiter_keys(codec, oc, &row)?;
    let mut batch = Batch::new();
    for (_, key) in &arbiters {
        batch.get(key.clone());
    }
    let response = if batch.is_empty() {
        Default::default()
    } else {
        cx.batch(batch).await?
    };
    let mut existing: Option<(IndexCodec, Bytes, Bytes)> = None;
    for ((ix, key), answer) in arbiters.iter().zip(&response.responses) {
        if let Response::Get(Some(value)) = answer {
            existing = Some((ix.clone(), Bytes::from(key.clone()), value.clone()));
            break;
        }
    }
    match (&oc.action, existing) {
        (_, None) => {
            let mut batch = Batch::new();
            let mut guards = Vec::new();
            put_row(codec, &row, &mut batch, &mut guards)?;
            run_batch(cx, table, batch, &guards).await?;
            check_parents(cx, table, std::slice::from_ref(&row)).await?;
            for (_, key) in arbiters {
                state.keys.insert(key);
            }
            if let Some(r) = returning_row(cx, &plan.returning, &row)? {
                result.returning.push(r);
            }
            result.count += 1;
        }
        (ConflictAction::Nothing, Some(_)) => {}
        (
            ConflictAction::Update {
                assignments,
                filter,
            },
            Some((ix, key, value)),
        ) => {
            if state.keys.contains(&key[..]) {
                return Err(PgError::new(
                    errors::CARDINALITY_VIOLATION,
                    "ON CONFLICT DO UPDATE command cannot affect row a second time",
                )
                .with_hint(
                    "Ensure that no rows proposed for insertion within the same command have duplicate constrained values.",
                ));
            }
            let old = if ix.primary {
                codec.decode_row(&key, &value)?
            } else {
                let partial = codec.decode_entry(&ix, &key, &value)?;
                let pk = codec.pk_key(&partial)?;
                super::scan::get_rows(cx, codec, vec![pk], true)
                    .await?
                    .pop()
                    .ok_or_else(|| PgError::internal("conflicting row vanished"))?
            };
            let mut both = old.clone();
            both.extend(row.iter().cloned());
            if let Some(f) = filter {
                let prepared = Prepared::of(std::iter::once(f));
                let keep = eval_row(cx, &prepared, std::slice::from_ref(f), &both).await?;
                if keep[0] != Value::Bool(true) {
                    return Ok(());
                }
            }
            let mut new = old.clone();
            let exprs: Vec<Expr> = assignments.iter().map(|(_, e)| e.clone()).collect();
            let prepared = Prepared::of(exprs.iter());
            let values = eval_row(cx, &prepared, &exprs, &both).await?;
            for ((p, _), v) in assignments.iter().zip(values) {
                new[*p] = v;
            }
            check_row(cx, &plan.write, &mut new)?;
            apply_updates(cx, codec, &plan.write, &[(old, new.clone())]).await?;
            state.keys.insert(key.to_vec());
            for (_, k) in arbiter_keys(codec, oc, &new)? {
                state.keys.insert(k);
            }
            if let Some(r) = returning_row(cx, &plan.returning, &new)? {
                result.returning.push(r);
            }
            result.count += 1;
        }
    }
    Ok(())
}

/// Writes row changes, then enforces foreign keys both ways.
async fn apply_updates<K: Kv>(
    cx: &mut Cx<'_, K>,
    codec: &TableCodec,
    write: &TableWrite,
    changes: &[(Row, Row)],
) -> PgResult<()> {
    let table = &write.table;
    let mut deletes = Batch::new();
    let mut puts = Vec::new();
    for (old, new) in changes {
        change_row(codec, old, new, &mut deletes, &mut puts)?;
    }
    let (batch, guards) = assemble(deletes, puts);
    run_batch(cx, table, batch, &guards).await?;
    // Children must still find their parents.
    let fk_changed: Vec<Row> = changes
        .iter()
        .filter(|(old, new)| {
            table.foreign_keys.iter().any(|fk| {
                positions(table, &fk.columns)
                    .iter()
                    .any(|&p| old[p] != new[p])
            })
        })
        .map(|(_, new)| new.clone())
        .collect();
    if !fk_changed.is_empty() {
        check_parents(cx, table, &fk_changed).await?;
    }
    // Parents whose referenced key changed must not leave children behind.
    let referenced_changed: Vec<Row> = changes
        .iter()
        .filter(|(old, new)| {
            cx.env.catalog.referencing(table.id).iter().any(|(_, fk)| {
                positions(table, &fk.ref_columns)
                    .iter()
                    .any(|&p| old[p] != new[p])
            })
        })
        .map(|(old, _)| old.clone())
        .collect();
    if !referenced_changed.is_empty() {
        enforce_children(cx, table, &referenced_changed, false).await?;
    }
    Ok(())
}

/// UPDATE.
pub async fn update<K: Kv>(cx: &mut Cx<'_, K>, plan: &UpdatePlan) -> PgResult<WriteResult> {
    let codec = TableCodec::new(&plan.write.table);
    let mut source = Op::build(&plan.source);
    let old_rows = source.collect(cx).await?;
    let exprs: Vec<Expr> = plan.assignments.iter().map(|(_, e)| e.clone()).collect();
    let prepared = Prepared::of(exprs.iter());
    let mut result = WriteResult::default();
    for chunk in old_rows.chunks(BATCH_ROWS) {
        let mut changes = Vec::with_capacity(chunk.len());
        for old in chunk {
            let values = eval_row(cx, &prepared, &exprs, old).await?;
            let mut new = old.clone();
            for ((p, _), v) in plan.assignments.iter().zip(values) {
                new[*p] = v;
            }
            check_row(cx, &plan.write, &mut new)?;
            changes.push((old.clone(), new));
        }
        apply_updates(cx, &codec, &plan.write, &changes).await?;
        for (_, new) in &changes {
            if let Some(r) = returning_row(cx, &plan.returning, new)? {
                result.returning.push(r);
            }
        }
        result.count += chunk.len() as u64;
    }
    Ok(result)
}

/// DELETE.
pub async fn delete<K: Kv>(cx: &mut Cx<'_, K>, plan: &DeletePlan) -> PgResult<WriteResult> {
    let codec = TableCodec::new(&plan.table);
    let mut source = Op::build(&plan.source);
    let mut result = WriteResult::default();
    while let Some(rows) = source.next(cx).await? {
        remove_rows(cx, &codec, &rows).await?;
        for row in &rows {
            if let Some(r) = returning_row(cx, &plan.returning, row)? {
                result.returning.push(r);
            }
        }
        result.count += rows.len() as u64;
    }
    cx.env
        .shard
        .adjust_row_count(plan.table.id, -(result.count as i64));
    Ok(result)
}

/// Backfills a new secondary index from the table's rows.
pub async fn backfill<K: Kv>(cx: &mut Cx<'_, K>, table: &TableRef, index_id: u32) -> PgResult<()> {
    let codec = TableCodec::new(table);
    let ix = codec
        .index(index_id)
        .ok_or_else(|| PgError::internal("backfill of a missing index"))?
        .clone();
    let mut next = Some(Span::prefix(&codec.primary.prefix));
    while let Some(span) = next.take() {
        let mut r = ScanRequest::new(span);
        r.limit_rows = Some(super::scan::SCAN_BATCH_ROWS);
        let mut batch = Batch::new();
        batch.scan(r);
        let response = cx.batch(batch).await?;
        let Some(Response::Scan(scan)) = response.responses.into_iter().next() else {
            return Err(PgError::internal("a scan was answered with something else"));
        };
        let mut writes = Batch::new();
        let mut guards = Vec::new();
        for KeyValue { key, value } in &scan.rows {
            let row = codec.decode_row(key, value)?;
            let (k, v, unique) = codec.index_entry(&ix, &row)?;
            if unique {
                guards.push(Guard {
                    index: writes.len(),
                    ix: ix.clone(),
                    row,
                });
                writes.conditional_put(k, v, None);
            } else {
                writes.put(k, v);
            }
        }
        if let Err(e) = run_batch(cx, table, writes, &guards).await {
            if e.code == errors::UNIQUE_VIOLATION {
                let detail = e
                    .detail
                    .as_deref()
                    .unwrap_or_default()
                    .replace("already exists.", "is duplicated.");
                return Err(PgError::new(
                    errors::UNIQUE_VIOLATION,
                    format!("could not create unique index \"{}\"", ix.desc.name),
                )
                .with_detail(detail));
            }
            return Err(e);
        }
        next = scan.resume;
    }
    Ok(())
}
