//! The row work of ALTER TABLE (see [`crate::bind::alter`]): back-filling
//! and dropping indexes, validating existing rows against new constraints,
//! filling a new column from a volatile default, and re-keying a table under
//! a new primary key.

use teller_net::types::Value;
use teller_net::{PgError, PgResult};

use super::ddl::clear_span;
use super::eval::{allocate, eval_plain};
use super::write::{check_parents, fit};
use super::Cx;
use crate::bind::alter::{AlterWork, FillValue};
use crate::catalog::{SequenceDesc, TableRef};
use crate::encoding::key::index_prefix;
use crate::errors;
use crate::kv::{Batch, Kv, KvError, Response, ScanRequest, Span};
use crate::table::TableCodec;

/// Rows read per batch while altering.
const ALTER_BATCH_ROWS: u64 = 1024;

/// Reads every row of a table through `codec`'s primary index, a batch at
/// a time, so that a pass over a large table holds one batch in memory. The
/// caller may write between batches: rows written under the same keys are
/// behind the scan, and a re-keyed table writes under another index id.
struct BatchScan {
    next: Option<Span>,
}

impl BatchScan {
    fn new(codec: &TableCodec) -> BatchScan {
        BatchScan {
            next: Some(Span::prefix(&codec.primary.prefix)),
        }
    }

    async fn next<K: Kv>(
        &mut self,
        cx: &mut Cx<'_, K>,
        codec: &TableCodec,
    ) -> PgResult<Option<Vec<Vec<Value>>>> {
        while let Some(span) = self.next.take() {
            let mut request = ScanRequest::new(span);
            request.limit_rows = Some(ALTER_BATCH_ROWS);
            let mut batch = Batch::new();
            batch.scan(request);
            let response = cx.batch(batch).await?;
            let Some(Response::Scan(scan)) = response.responses.into_iter().next() else {
                return Err(PgError::internal("a scan was answered with something else"));
            };
            self.next = scan.resume;
            if scan.rows.is_empty() {
                continue;
            }
            let rows = scan
                .rows
                .iter()
                .map(|kv| codec.decode_row(&kv.key, &kv.value))
                .collect::<PgResult<Vec<_>>>()?;
            return Ok(Some(rows));
        }
        Ok(None)
    }
}

/// Runs one piece of ALTER TABLE work; `old` is the table before, `new` after.
pub async fn run<K: Kv>(
    cx: &mut Cx<'_, K>,
    old: &TableRef,
    new: &TableRef,
    work: &AlterWork,
    sequences: &[SequenceDesc],
) -> PgResult<()> {
    let codec = TableCodec::new(new);
    match work {
        AlterWork::Backfill(index) => super::write::backfill(cx, new, *index).await,
        AlterWork::DropIndexData(index) => {
            clear_span(cx, Span::prefix(&index_prefix(new.id, u64::from(*index)))).await
        }
        AlterWork::ValidateNotNull(column) => {
            let p = new
                .position(*column)
                .ok_or_else(|| PgError::internal("validating a missing column"))?;
            let mut scan = BatchScan::new(&codec);
            while let Some(rows) = scan.next(cx, &codec).await? {
                if rows.iter().any(|r| r[p].is_null()) {
                    return Err(PgError::new(
                        errors::NOT_NULL_VIOLATION,
                        format!(
                            "column \"{}\" of relation \"{}\" contains null values",
                            new.columns[p].name, new.name
                        ),
                    ));
                }
            }
            Ok(())
        }
        AlterWork::ValidateCheck(name, expr) => {
            let mut scan = BatchScan::new(&codec);
            while let Some(rows) = scan.next(cx, &codec).await? {
                for row in &rows {
                    if eval_plain(expr, cx.env, row, &[])? == Value::Bool(false) {
                        return Err(PgError::new(
                            errors::CHECK_VIOLATION,
                            format!("check constraint \"{name}\" of relation \"{}\" is violated by some row", new.name),
                        ));
                    }
                }
            }
            Ok(())
        }
        AlterWork::ValidateForeignKey(_) => {
            let mut scan = BatchScan::new(&codec);
            while let Some(rows) = scan.next(cx, &codec).await? {
                check_parents(cx, new, &rows).await?;
            }
            Ok(())
        }
        AlterWork::Fill(column, value) => {
            let p = new
                .position(*column)
                .ok_or_else(|| PgError::internal("filling a missing column"))?;
            let mut scan = BatchScan::new(&codec);
            while let Some(mut rows) = scan.next(cx, &codec).await? {
                let values: Vec<Value> = match value {
                    FillValue::NewSequence(i) => {
                        let desc = sequences
                            .get(*i)
                            .ok_or_else(|| PgError::internal("fill from a missing sequence"))?;
                        allocate(cx.kv, desc, rows.len())
                            .await?
                            .into_iter()
                            .map(Value::Int8)
                            .collect()
                    }
                    FillValue::Expr(e) => {
                        let prepared = super::eval::Prepared::of(std::iter::once(e));
                        let mut out = Vec::with_capacity(rows.len());
                        for row in &rows {
                            let v =
                                super::eval::eval_row(cx, &prepared, std::slice::from_ref(e), row)
                                    .await?;
                            out.push(v.into_iter().next().unwrap_or(Value::Null));
                        }
                        out
                    }
                };
                let mut batch = Batch::new();
                for (row, v) in rows.iter_mut().zip(values) {
                    row[p] = fit(
                        crate::table::key_value(v, new.columns[p].ty)?.unwrap_or(Value::Null),
                        &new.columns[p],
                    )?;
                    let (k, value) = codec.encode_row(row)?;
                    batch.put(k, value);
                }
                cx.batch(batch).await?;
            }
            Ok(())
        }
        AlterWork::Rekey { old_primary } => {
            let mut before = (**old).clone();
            before.primary = (**old_primary).clone();
            let old_codec = TableCodec::new(&std::rc::Rc::new(before));
            // Secondary entries hold the old primary key: rebuild them all.
            for index in &new.indexes {
                clear_span(cx, Span::prefix(&index_prefix(new.id, u64::from(index.id)))).await?;
            }
            let mut scan = BatchScan::new(&old_codec);
            while let Some(rows) = scan.next(cx, &old_codec).await? {
                let mut batch = Batch::new();
                let mut guards = Vec::new();
                for old_row in &rows {
                    let row: Vec<Value> = new
                        .columns
                        .iter()
                        .map(|c| {
                            old.position(c.id)
                                .map_or(Value::Null, |p| old_row[p].clone())
                        })
                        .collect();
                    let (k, v) = codec.encode_row(&row)?;
                    guards.push((batch.len(), row.clone()));
                    batch.conditional_put(k, v, None);
                    for ix in &codec.secondaries {
                        let (k, v, unique) = codec.index_entry(ix, &row)?;
                        if unique {
                            batch.conditional_put(k, v, None);
                        } else {
                            batch.put(k, v);
                        }
                    }
                    // The old row goes with its batch, behind the scan: one
                    // DeleteRange over the whole old index would make the
                    // engine write every key in a single batch (over its
                    // Raft entry limit past ~70,000 pgbench rows).
                    batch.delete(old_codec.pk_key(old_row)?);
                }
                match cx.batch(batch).await {
                    Ok(_) => {}
                    Err(KvError::ConditionFailed { index, .. }) => {
                        let row = guards
                            .iter()
                            .rev()
                            .find(|(at, _)| *at <= index)
                            .map(|(_, r)| r.clone())
                            .unwrap_or_default();
                        let positions = new.key_positions(&new.primary);
                        let names: Vec<&str> = positions
                            .iter()
                            .map(|&p| new.columns[p].name.as_str())
                            .collect();
                        let values: Vec<String> = positions
                            .iter()
                            .map(|&p| row.get(p).map_or("null".into(), super::write::show))
                            .collect();
                        return Err(PgError::new(
                            errors::UNIQUE_VIOLATION,
                            format!("could not create unique index \"{}\"", new.primary.name),
                        )
                        .with_detail(format!(
                            "Key ({})=({}) is duplicated.",
                            names.join(", "),
                            values.join(", ")
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        }
    }
}
