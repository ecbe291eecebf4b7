//! `SHOW RANGES [FROM TABLE name]`: where the data lives.
//!
//! The statement CockroachDB users know, with columns of our own: one row
//! per range, in key order, with the shard that owns it.
//!
//! | column | type | what |
//! |---|---|---|
//! | `range_id` | numeric | the engine's range id (a random 64-bit number, as in the logs) |
//! | `start_key`, `end_key` | text | the range's bounds, readable (below) |
//! | `shard` | int4 | the owning shard |
//! | `generation` | int8 | raised by each split and move |
//! | `approx_bytes` | int8 | the engine's size estimate (NULL when unknown) |
//! | `raw_start_key`, `raw_end_key` | bytea | the bounds' bytes (`raw_end_key` NULL at the keyspace's end) |
//!
//! **Bounds.** `SHOW RANGES` (the whole keyspace) prints keys as EXPLAIN
//! does (`/Table/100/1/42`), with `/Min` and `/Max` for the keyspace's ends.
//! `FROM TABLE t` lists the ranges that overlap `t`'s primary index and
//! prints each bound relative to it, so that a reader (or a benchmark
//! picking rows) can see which primary keys each range holds:
//!
//! - a row key of `t`: its primary-key values, `/42` or `/"ann"/7`;
//! - the index's first key `/Min`, the key just after its last `/Max`;
//! - a bound outside the index: `<before:KEY>` or `<after:KEY>` (the range
//!   also holds keys of other tables);
//! - any other key inside the index (not a whole row key): `\x` and the
//!   key's bytes in hex.
//!
//! **Consistency.** The placement is read outside any transaction, as the
//! engine knows it at that moment (see [`crate::kv::ranges`]); it is
//! metadata, not data, and may change right after.
//!
//! **Parsing.** sqlparser reads `SHOW RANGES ...` as `SHOW <variable>` and
//! keeps only the words, dropping the punctuation between them; a table
//! name of up to three parts is therefore taken from the words after
//! `FROM TABLE` (`public.t` and `public t` read alike).

use bytes::Bytes;
use rust_decimal::Decimal;
use sqlparser::ast::Ident;
use teller_net::session::Column;
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult};

use super::control::Kind;
use crate::bind::names;
use crate::catalog::{Catalog, Relation, TableRef, PUBLIC_SCHEMA};
use crate::encoding::key::{decode_index_key, index_prefix, prefix_successor, pretty};
use crate::errors;
use crate::exec::Row;
use crate::kv::{Kv, RangeDescription, Span};

/// Most parts of a table name: `database.schema.table`.
const NAME_PARTS_MAX: usize = 3;

/// Binds the words after `SHOW RANGES`.
pub fn bind(words: &[Ident]) -> PgResult<(Kind, Option<Vec<Column>>)> {
    let keyword = |i: usize, k: &str| {
        words
            .get(i)
            .is_some_and(|w| w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k))
    };
    let target = if words.is_empty() {
        None
    } else if keyword(0, "from") && keyword(1, "table") {
        let parts = &words[2..];
        if parts.is_empty() || parts.len() > NAME_PARTS_MAX {
            return Err(usage());
        }
        Some(parts.iter().map(names::ident).collect())
    } else {
        return Err(usage());
    };
    Ok((Kind::ShowRanges(target), Some(columns())))
}

fn usage() -> PgError {
    PgError::syntax("syntax error: expected SHOW RANGES or SHOW RANGES FROM TABLE name")
}

/// The result columns (module docs).
pub fn columns() -> Vec<Column> {
    vec![
        Column::new("range_id", Type::Numeric),
        Column::new("start_key", Type::Text),
        Column::new("end_key", Type::Text),
        Column::new("shard", Type::Int4),
        Column::new("generation", Type::Int8),
        Column::new("approx_bytes", Type::Int8),
        Column::new("raw_start_key", Type::Bytea),
        Column::new("raw_end_key", Type::Bytea),
    ]
}

/// The rows of `SHOW RANGES` (`table: None`) or `SHOW RANGES FROM TABLE`.
pub async fn rows<K: Kv>(
    kv: &K,
    catalog: &Catalog,
    database: &str,
    table: Option<&[String]>,
) -> PgResult<Vec<Row>> {
    let (span, view) = match table {
        None => (Span::from_key(Bytes::new()), None),
        Some(parts) => {
            let table = resolve_table(catalog, database, parts)?;
            let view = TableView::new(&table);
            (view.span(), Some(view))
        }
    };
    let ranges = kv.describe_ranges(&span).await?;
    if let Err(e) = crate::kv::check_tiling(&ranges, &span) {
        return Err(PgError::internal(format!("SHOW RANGES: {e}")));
    }
    Ok(ranges.iter().map(|r| row(r, view.as_ref())).collect())
}

fn row(range: &RangeDescription, view: Option<&TableView>) -> Row {
    let start = &range.span.start;
    let end = range.span.end.as_ref();
    let (start_text, end_text) = match view {
        None => (whole_key(Some(start)), whole_key(end)),
        Some(v) => (v.bound(Some(start)), v.bound(end)),
    };
    vec![
        Value::Numeric(Decimal::from(range.range_id)),
        Value::Text(start_text),
        Value::Text(end_text),
        Value::Int4(i32::try_from(range.shard).unwrap_or(i32::MAX)),
        Value::Int8(i64::try_from(range.generation).unwrap_or(i64::MAX)),
        range.approx_bytes.map_or(Value::Null, |b| {
            Value::Int8(i64::try_from(b).unwrap_or(i64::MAX))
        }),
        Value::Bytea(start.to_vec()),
        end.map_or(Value::Null, |e| Value::Bytea(e.to_vec())),
    ]
}

/// A key of the whole keyspace; `None` is its end.
fn whole_key(key: Option<&Bytes>) -> String {
    match key {
        None => "/Max".into(),
        Some(k) if k.is_empty() => "/Min".into(),
        Some(k) => pretty(k),
    }
}

/// The table `parts` names, as `SELECT` would resolve it.
fn resolve_table(catalog: &Catalog, database: &str, parts: &[String]) -> PgResult<TableRef> {
    let db = catalog.session_database(database)?;
    let (schema_name, name) = match parts {
        [name] => (PUBLIC_SCHEMA, name),
        [schema, name] => (schema.as_str(), name),
        [db_name, schema, name] if db_name == &db.name => (schema.as_str(), name),
        [_, _, _] => {
            return Err(PgError::unsupported(format!(
                "cross-database references are not implemented: {}",
                parts.join(".")
            )))
        }
        _ => return Err(usage()),
    };
    let schema = catalog.schema(db.id, schema_name).ok_or_else(|| {
        PgError::new(
            errors::INVALID_SCHEMA_NAME,
            format!("schema \"{schema_name}\" does not exist"),
        )
    })?;
    match catalog.relation(schema.id, name) {
        Some(Relation::Table(id)) => catalog
            .table(id)
            .cloned()
            .ok_or_else(|| PgError::internal("relation without table")),
        Some(_) => Err(PgError::new(
            errors::WRONG_OBJECT_TYPE,
            format!("\"{name}\" is not a table"),
        )),
        None => Err(errors::undefined_table(name)),
    }
}

/// Bounds as they read relative to one table's primary index.
struct TableView {
    table: TableRef,
    /// `/table/primary`: the index's first key.
    prefix: Vec<u8>,
    /// The first key after the index (`None`: the keyspace's end).
    prefix_end: Option<Vec<u8>>,
}

impl TableView {
    fn new(table: &TableRef) -> TableView {
        let prefix = index_prefix(table.id, table.primary.id.into());
        TableView {
            prefix_end: prefix_successor(&prefix),
            prefix,
            table: table.clone(),
        }
    }

    fn span(&self) -> Span {
        Span::prefix(&self.prefix)
    }

    /// A range bound (`None`: the keyspace's end), see the module docs.
    fn bound(&self, key: Option<&Bytes>) -> String {
        let Some(key) = key else {
            return "<after:/Max>".into();
        };
        let key = &key[..];
        if key < &self.prefix[..] {
            return format!("<before:{}>", whole_key(Some(&Bytes::copy_from_slice(key))));
        }
        if key == &self.prefix[..] {
            return "/Min".into();
        }
        match self.prefix_end.as_deref() {
            Some(end) if key == end => return "/Max".into(),
            Some(end) if key > end => return format!("<after:{}>", pretty(key)),
            _ => {}
        }
        self.row_key(key).unwrap_or_else(|| hex(key))
    }

    /// The primary-key values of `key` if it is a whole row key of the
    /// table, as EXPLAIN prints them (`/42`).
    fn row_key(&self, key: &[u8]) -> Option<String> {
        let cols = self.table.key_columns(&self.table.primary);
        let (table, index, _) = decode_index_key(key, &cols).ok()?;
        if table != self.table.id || index != u64::from(self.table.primary.id) {
            return None;
        }
        let full = pretty(key);
        let head = pretty(&self.prefix);
        full.strip_prefix(&head).map(str::to_string)
    }
}

/// `\x` and the bytes in hex, as PostgreSQL prints a bytea.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("\\x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
