//! Applying DDL in the statement's transaction: descriptor ids come from a
//! counter in the `meta` system table, descriptors are rewritten whole, and
//! the catalog version is bumped, so every other transaction that read the
//! old version conflicts with this one or sees the change.

use teller_net::types::Value;
use teller_net::{PgError, PgResult};

use super::Cx;
use crate::bind::ddl::{Ddl, DdlOp};
use crate::catalog::system::{self, FIRST_USER_ID};
use crate::catalog::{Catalog, DatabaseDesc, DescId, SchemaDesc, TableDesc, PUBLIC_SCHEMA};
use crate::encoding::key::put_uvarint;
use crate::kv::{Batch, Kv, Response, ScanRequest, Span};

/// The span of all of a table's data (every index).
pub fn table_data_span(table: DescId) -> Span {
    let mut prefix = Vec::new();
    put_uvarint(&mut prefix, table);
    Span::prefix(&prefix)
}

/// Allocates `n` descriptor ids.
async fn allocate_ids<K: Kv>(cx: &mut Cx<'_, K>, n: u64) -> PgResult<DescId> {
    let key = system::meta_key(system::META_NEXT_ID)?;
    let mut batch = Batch::new();
    batch.get(key.clone());
    let response = cx.batch(batch).await?;
    let next = system::decode_meta(response.get(0)?)?
        .map(|v| v as u64)
        .unwrap_or(FIRST_USER_ID)
        .max(FIRST_USER_ID);
    let mut batch = Batch::new();
    batch.put(key, system::meta_value((next + n) as i64)?);
    cx.batch(batch).await?;
    Ok(next)
}

/// Writes the bootstrap databases and schemas the first time DDL runs, and
/// the new catalog version.
fn bump_version(catalog: &Catalog, batch: &mut Batch) -> PgResult<()> {
    if catalog.version == 0 {
        for d in catalog.databases.values() {
            let (k, v) = system::database_kv(d)?;
            batch.put(k, v);
        }
        for s in catalog.schemas.values() {
            let (k, v) = system::schema_kv(s)?;
            batch.put(k, v);
        }
    }
    batch.put(
        system::meta_key(system::META_VERSION)?,
        system::meta_value(catalog.version as i64 + 1)?,
    );
    Ok(())
}

/// Replaces a table's descriptor rows.
fn write_table(batch: &mut Batch, old: Option<DescId>, new: &TableDesc) -> PgResult<()> {
    if let Some(id) = old {
        for span in system::table_spans(id)? {
            batch.delete_range(span);
        }
    }
    for (k, v) in system::table_kvs(new)? {
        batch.put(k, v);
    }
    Ok(())
}

fn delete_table(
    catalog: &Catalog,
    batch: &mut Batch,
    clear: &mut Vec<Span>,
    id: DescId,
    dropping: &[DescId],
) -> PgResult<()> {
    for span in system::table_spans(id)? {
        batch.delete_range(span);
    }
    clear.push(table_data_span(id));
    for seq in catalog.sequences.values() {
        if seq.owner.map(|o| o.0) == Some(id) {
            batch.delete(system::SEQUENCES.key(&[Value::Int8(seq.id as i64)])?);
            batch.delete(system::SEQUENCE_VALUES.key(&[Value::Int8(seq.id as i64)])?);
        }
    }
    batch.delete_range(system::COMMENTS.prefix_span(&[Value::Int8(id as i64)])?);
    // Foreign keys of surviving tables that reference it go (CASCADE).
    for (child, fk) in catalog.referencing(id) {
        if dropping.contains(&child.id) || child.id == id {
            continue;
        }
        let mut t = (*child).clone();
        t.foreign_keys.retain(|f| f.name != fk.name);
        write_table(batch, Some(child.id), &t)?;
    }
    Ok(())
}

fn delete_view(batch: &mut Batch, id: DescId) -> PgResult<()> {
    batch.delete(system::VIEWS.key(&[Value::Int8(id as i64)])?);
    batch.delete_range(system::COMMENTS.prefix_span(&[Value::Int8(id as i64)])?);
    Ok(())
}

/// Applies a DDL statement.
pub async fn apply<K: Kv>(cx: &mut Cx<'_, K>, catalog: &Catalog, ddl: &Ddl) -> PgResult<()> {
    let mut batch = Batch::new();
    // Table and index data to delete, a page at a time, before `batch`.
    let mut clear: Vec<Span> = Vec::new();
    match &ddl.op {
        DdlOp::Nothing => return Ok(()),
        DdlOp::CreateTable { table, sequences } => {
            let n = 1 + 1 + table.indexes.len() as u64 + sequences.len() as u64;
            let mut next = allocate_ids(cx, n).await?;
            let mut t = (**table).clone();
            t.id = next;
            next += 1;
            t.primary.oid = next;
            next += 1;
            for index in &mut t.indexes {
                index.oid = next;
                next += 1;
            }
            for fk in &mut t.foreign_keys {
                if fk.ref_table == 0 {
                    fk.ref_table = t.id;
                }
            }
            for seq in sequences {
                let mut s = seq.clone();
                s.id = next;
                next += 1;
                s.owner = s.owner.map(|(_, c)| (t.id, c));
                let (k, v) = system::sequence_kv(&s)?;
                batch.put(k, v);
            }
            write_table(&mut batch, None, &t)?;
        }
        DdlOp::DropTables { tables, views } => {
            for &id in tables {
                delete_table(catalog, &mut batch, &mut clear, id, tables)?;
            }
            for &id in views {
                delete_view(&mut batch, id)?;
            }
        }
        DdlOp::CreateView(view) => {
            let mut v = (**view).clone();
            if v.id == 0 {
                v.id = allocate_ids(cx, 1).await?;
            }
            let (k, value) = system::view_kv(&v)?;
            batch.put(k, value);
        }
        DdlOp::DropViews(ids) => {
            for &id in ids {
                delete_view(&mut batch, id)?;
            }
        }
        DdlOp::CreateIndex { table, index } => {
            let old = catalog
                .table(*table)
                .ok_or_else(|| PgError::internal("index on a missing table"))?;
            let oid = allocate_ids(cx, 1).await?;
            let mut t = (**old).clone();
            let mut index = index.clone();
            index.oid = oid;
            t.next_index_id = t.next_index_id.max(index.id + 1);
            let id = index.id;
            t.indexes.push(index);
            write_table(&mut batch, Some(t.id), &t)?;
            bump_version(catalog, &mut batch)?;
            cx.batch(batch).await?;
            let t = std::rc::Rc::new(t);
            return super::write::backfill(cx, &t, id).await;
        }
        DdlOp::DropIndex { table, index } => {
            let old = catalog
                .table(*table)
                .ok_or_else(|| PgError::internal("index on a missing table"))?;
            let mut t = (**old).clone();
            t.indexes.retain(|i| i.id != *index);
            write_table(&mut batch, Some(t.id), &t)?;
            clear.push(Span::prefix(&crate::encoding::key::index_prefix(
                t.id,
                u64::from(*index),
            )));
        }
        DdlOp::CreateDatabase(name) => {
            let id = allocate_ids(cx, 2).await?;
            let (k, v) = system::database_kv(&DatabaseDesc {
                id,
                name: name.clone(),
            })?;
            batch.put(k, v);
            let (k, v) = system::schema_kv(&SchemaDesc {
                id: id + 1,
                database_id: id,
                name: PUBLIC_SCHEMA.into(),
            })?;
            batch.put(k, v);
        }
        DdlOp::DropDatabase(db) => {
            let schemas: Vec<DescId> = catalog.schemas_of(*db).map(|s| s.id).collect();
            let tables: Vec<DescId> = catalog
                .tables
                .values()
                .filter(|t| schemas.contains(&t.schema_id))
                .map(|t| t.id)
                .collect();
            for &id in &tables {
                delete_table(catalog, &mut batch, &mut clear, id, &tables)?;
            }
            for view in catalog.views.values() {
                if schemas.contains(&view.schema_id) {
                    delete_view(&mut batch, view.id)?;
                }
            }
            for seq in catalog.sequences.values() {
                if schemas.contains(&seq.schema_id) {
                    batch.delete(system::SEQUENCES.key(&[Value::Int8(seq.id as i64)])?);
                    batch.delete(system::SEQUENCE_VALUES.key(&[Value::Int8(seq.id as i64)])?);
                }
            }
            for s in schemas {
                batch.delete(system::SCHEMAS.key(&[Value::Int8(s as i64)])?);
            }
            batch.delete(system::DATABASES.key(&[Value::Int8(*db as i64)])?);
        }
        DdlOp::CreateSchema(name) => {
            let id = allocate_ids(cx, 1).await?;
            let (k, v) = system::schema_kv(&SchemaDesc {
                id,
                database_id: cx_database(catalog, cx)?,
                name: name.clone(),
            })?;
            batch.put(k, v);
        }
        DdlOp::DropSchema(id) => {
            batch.delete(system::SCHEMAS.key(&[Value::Int8(*id as i64)])?);
        }
        DdlOp::CreateSequence(seq) => {
            let id = allocate_ids(cx, 1).await?;
            let mut s = seq.clone();
            s.id = id;
            let (k, v) = system::sequence_kv(&s)?;
            batch.put(k, v);
        }
        DdlOp::DropSequences(ids) => {
            for &id in ids {
                batch.delete(system::SEQUENCES.key(&[Value::Int8(id as i64)])?);
                batch.delete(system::SEQUENCE_VALUES.key(&[Value::Int8(id as i64)])?);
            }
        }
        DdlOp::Comment { object, sub, text } => {
            let key = system::COMMENTS.key(&[Value::Int8(*object as i64), Value::Int4(*sub)])?;
            match text {
                Some(t) => {
                    batch.put(key, system::COMMENTS.value(&[Value::Text(t.clone())])?);
                }
                None => {
                    batch.delete(key);
                }
            }
        }
        DdlOp::AlterTable {
            table,
            work,
            sequences,
        } => {
            let old = catalog
                .table(table.id)
                .cloned()
                .ok_or_else(|| PgError::internal("altering a missing table"))?;
            let mut t = (**table).clone();
            let fresh = t.all_indexes().filter(|i| i.oid == 0).count() as u64;
            let mut next = allocate_ids(cx, fresh + sequences.len() as u64).await?;
            for index in std::iter::once(&mut t.primary).chain(t.indexes.iter_mut()) {
                if index.oid == 0 {
                    index.oid = next;
                    next += 1;
                }
            }
            let mut new_sequences = Vec::with_capacity(sequences.len());
            for seq in sequences {
                let mut s = seq.clone();
                s.id = next;
                next += 1;
                s.owner = s.owner.map(|(_, c)| (t.id, c));
                let (k, v) = system::sequence_kv(&s)?;
                batch.put(k, v);
                new_sequences.push(s);
            }
            write_table(&mut batch, Some(t.id), &t)?;
            bump_version(catalog, &mut batch)?;
            cx.batch(batch).await?;
            let t = std::rc::Rc::new(t);
            for w in work {
                super::alter::run(cx, &old, &t, w, &new_sequences).await?;
            }
            return Ok(());
        }
        DdlOp::Truncate {
            tables,
            restart_identity,
        } => {
            for &id in tables {
                clear_span(cx, table_data_span(id)).await?;
                cx.env.shard.set_row_count(id, 0);
                if *restart_identity {
                    for seq in catalog.sequences.values() {
                        if seq.owner.map(|o| o.0) == Some(id) {
                            batch.delete(
                                system::SEQUENCE_VALUES.key(&[Value::Int8(seq.id as i64)])?,
                            );
                        }
                    }
                }
            }
            // TRUNCATE changes no descriptor: no version bump needed.
            cx.batch(batch).await?;
            return Ok(());
        }
    }
    for span in clear {
        clear_span(cx, span).await?;
    }
    bump_version(catalog, &mut batch)?;
    cx.batch(batch).await?;
    Ok(())
}

/// Rows one page of [`clear_span`] deletes.
const CLEAR_PAGE_ROWS: u64 = 4096;
/// Key and value bytes one page of [`clear_span`] reads.
const CLEAR_PAGE_BYTES: u64 = 1 << 20;

/// Deletes every key of `span` (a table's or an index's data) a page at a
/// time. Each page is one scan and one DeleteRange over exactly the keys it
/// found, so the engine's write batch for it (one Raft entry of tombstone
/// intents) stays bounded however big the table is; one DeleteRange over a
/// million-row table would not fit one entry.
pub(super) async fn clear_span<K: Kv>(cx: &mut Cx<'_, K>, span: Span) -> PgResult<()> {
    let mut rest = span;
    for _ in 0..crate::kv_util::SCAN_BATCHES_MAX {
        let mut batch = Batch::new();
        batch.scan(ScanRequest {
            limit_rows: Some(CLEAR_PAGE_ROWS),
            limit_bytes: Some(CLEAR_PAGE_BYTES),
            ..ScanRequest::new(rest.clone())
        });
        let response = cx.batch(batch).await?;
        let Some(Response::Scan(page)) = response.responses.into_iter().next() else {
            return Err(PgError::internal("a scan was answered with something else"));
        };
        if page.rows.is_empty() && page.resume.is_none() {
            return Ok(());
        }
        let (done, next) = match page.resume {
            Some(resume) => (
                Span {
                    start: rest.start.clone(),
                    end: Some(resume.start.clone()),
                },
                Some(resume),
            ),
            None => (rest.clone(), None),
        };
        if !page.rows.is_empty() {
            let mut delete = Batch::new();
            delete.delete_range(done);
            cx.batch(delete).await?;
        }
        match next {
            Some(resume) => rest = resume,
            None => return Ok(()),
        }
    }
    Err(PgError::internal("clearing a span does not make progress"))
}

fn cx_database<K: Kv>(catalog: &Catalog, cx: &Cx<'_, K>) -> PgResult<DescId> {
    catalog
        .database(cx.env.database)
        .map(|d| d.id)
        .ok_or_else(|| {
            PgError::new(
                teller_net::SqlState::INVALID_CATALOG_NAME,
                format!("database \"{}\" does not exist", cx.env.database),
            )
        })
}
