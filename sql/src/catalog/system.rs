//! The system tables: the catalog stored in the keyspace itself.
//!
//! Each system table is an ordinary primary index, `/table_id/1/<key>` →
//! row, encoded with [`crate::encoding`]. Ids below [`FIRST_USER_ID`] are
//! reserved for them. A DDL statement writes the rows it changes and bumps
//! the catalog version in [`META`]; every transaction reads that version
//! first (see [`super::cache`]), so a change made on one shard is seen by the
//! next transaction on every shard.
//!
//! | id | table | key | columns |
//! |---|---|---|---|
//! | 1 | databases | id | name |
//! | 2 | schemas | id | database_id, name |
//! | 3 | tables | id | schema_id, name, next_column_id, next_index_id |
//! | 4 | columns | table_id, column_id | position, name, type oid, typmod, nullable, default, hidden, identity, missing |
//! | 5 | indexes | table_id, index_id | oid, name, unique, columns, stored, primary |
//! | 6 | constraints | table_id, name | kind, expr, columns, ref_table, ref_columns, on_delete, on_update |
//! | 7 | sequences | id | schema_id, name, start, increment, min, max, cycle, owner table, owner column |
//! | 8 | sequence values | id | last_value, is_called |
//! | 9 | meta | name | value |
//! | 10 | comments | object oid, sub id | text |
//! | 11 | views | id | schema_id, name, query, columns, depends |
//!
//! Lists inside a row (index columns, constraint columns) are short text
//! forms such as `3:a:l,1:d:f`: readable in a key dump, and parsed strictly.

use bytes::Bytes;
use teller_net::types::{Type, Value};
use teller_net::PgResult;

use crate::encoding::corrupt;
use crate::encoding::key::{decode_index_key, index_key, Direction, KeyColumn, Nulls};
use crate::encoding::row::{ColumnId, RowCodec, RowColumn};
use crate::kv::Span;

use super::desc::*;

/// The first descriptor id handed to user objects.
pub const FIRST_USER_ID: DescId = 100;

pub const DATABASES: SystemTable = SystemTable {
    id: 1,
    key: &[Type::Int8],
    row: &[Type::Text],
};
pub const SCHEMAS: SystemTable = SystemTable {
    id: 2,
    key: &[Type::Int8],
    row: &[Type::Int8, Type::Text],
};
pub const TABLES: SystemTable = SystemTable {
    id: 3,
    key: &[Type::Int8],
    row: &[Type::Int8, Type::Text, Type::Int4, Type::Int4],
};
pub const COLUMNS: SystemTable = SystemTable {
    id: 4,
    key: &[Type::Int8, Type::Int4],
    row: &[
        Type::Int4,
        Type::Text,
        Type::Int8,
        Type::Int4,
        Type::Bool,
        Type::Text,
        Type::Bool,
        Type::Text,
        Type::Bytea,
    ],
};
pub const INDEXES: SystemTable = SystemTable {
    id: 5,
    key: &[Type::Int8, Type::Int4],
    row: &[
        Type::Int8,
        Type::Text,
        Type::Bool,
        Type::Text,
        Type::Text,
        Type::Bool,
    ],
};
pub const CONSTRAINTS: SystemTable = SystemTable {
    id: 6,
    key: &[Type::Int8, Type::Text],
    row: &[
        Type::Text,
        Type::Text,
        Type::Text,
        Type::Int8,
        Type::Text,
        Type::Text,
        Type::Text,
    ],
};
pub const SEQUENCES: SystemTable = SystemTable {
    id: 7,
    key: &[Type::Int8],
    row: &[
        Type::Int8,
        Type::Text,
        Type::Int8,
        Type::Int8,
        Type::Int8,
        Type::Int8,
        Type::Bool,
        Type::Int8,
        Type::Int4,
    ],
};
pub const SEQUENCE_VALUES: SystemTable = SystemTable {
    id: 8,
    key: &[Type::Int8],
    row: &[Type::Int8, Type::Bool],
};
pub const META: SystemTable = SystemTable {
    id: 9,
    key: &[Type::Text],
    row: &[Type::Int8],
};
pub const COMMENTS: SystemTable = SystemTable {
    id: 10,
    key: &[Type::Int8, Type::Int4],
    row: &[Type::Text],
};

pub const VIEWS: SystemTable = SystemTable {
    id: 11,
    key: &[Type::Int8],
    row: &[Type::Int8, Type::Text, Type::Text, Type::Text, Type::Text],
};

/// The meta entry holding the catalog version.
pub const META_VERSION: &str = "catalog_version";
/// The meta entry holding the next descriptor id.
pub const META_NEXT_ID: &str = "next_id";

/// A system table's shape: key column types and row column types (row
/// columns get ids 1, 2, ...).
pub struct SystemTable {
    pub id: u64,
    pub key: &'static [Type],
    pub row: &'static [Type],
}

impl SystemTable {
    fn key_columns(&self) -> Vec<KeyColumn> {
        self.key.iter().map(|&t| KeyColumn::asc(t)).collect()
    }

    fn codec(&self) -> RowCodec {
        let columns = self
            .row
            .iter()
            .enumerate()
            .map(|(i, &t)| RowColumn::new(i as ColumnId + 1, t))
            .collect();
        RowCodec::new(columns).expect("system table column ids are distinct")
    }

    pub fn key(&self, key: &[Value]) -> PgResult<Bytes> {
        Ok(index_key(self.id, PRIMARY_INDEX_ID.into(), key, &self.key_columns())?.into())
    }

    pub fn value(&self, row: &[Value]) -> PgResult<Bytes> {
        let mut out = Vec::new();
        self.codec().encode(row, &mut out)?;
        Ok(out.into())
    }

    /// All rows of the table.
    pub fn span(&self) -> Span {
        Span::prefix(&crate::encoding::key::index_prefix(
            self.id,
            PRIMARY_INDEX_ID.into(),
        ))
    }

    /// Rows whose key starts with `prefix`.
    pub fn prefix_span(&self, prefix: &[Value]) -> PgResult<Span> {
        let cols = self.key_columns();
        let key = index_key(
            self.id,
            PRIMARY_INDEX_ID.into(),
            prefix,
            &cols[..prefix.len()],
        )?;
        Ok(Span::prefix(&key))
    }

    pub fn decode(&self, key: &[u8], value: &[u8]) -> PgResult<(Vec<Value>, Vec<Value>)> {
        let (table, index, key) = decode_index_key(key, &self.key_columns())?;
        if table != self.id || index != u64::from(PRIMARY_INDEX_ID) {
            return Err(corrupt(format!(
                "system table {} read a key of /{table}/{index}",
                self.id
            )));
        }
        Ok((key, self.codec().decode(value)?))
    }
}

// ---------------------------------------------------------------------------
// Typed accessors for decoded rows.

pub(crate) fn int(v: &Value, what: &str) -> PgResult<i64> {
    match v {
        Value::Int8(n) => Ok(*n),
        Value::Int4(n) => Ok(i64::from(*n)),
        other => Err(corrupt(format!(
            "{what}: expected an integer, found {other:?}"
        ))),
    }
}

pub(crate) fn id(v: &Value, what: &str) -> PgResult<u64> {
    u64::try_from(int(v, what)?).map_err(|_| corrupt(format!("{what}: negative id")))
}

pub(crate) fn uint32(v: &Value, what: &str) -> PgResult<u32> {
    u32::try_from(int(v, what)?).map_err(|_| corrupt(format!("{what}: out of range")))
}

pub(crate) fn text(v: &Value, what: &str) -> PgResult<String> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        other => Err(corrupt(format!("{what}: expected text, found {other:?}"))),
    }
}

pub(crate) fn opt_text(v: &Value, what: &str) -> PgResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        other => text(other, what).map(Some),
    }
}

pub(crate) fn boolean(v: &Value, what: &str) -> PgResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(corrupt(format!("{what}: expected a bool, found {other:?}"))),
    }
}

fn opt_text_value(s: &Option<String>) -> Value {
    s.clone().map_or(Value::Null, Value::Text)
}

// ---------------------------------------------------------------------------
// Lists in text form.

/// `3:a:l,1:d:f`: column id, direction, nulls.
pub fn index_columns_text(cols: &[IndexColumn]) -> String {
    cols.iter()
        .map(|c| {
            let d = if c.direction == Direction::Asc {
                'a'
            } else {
                'd'
            };
            let n = if c.nulls == Nulls::First { 'f' } else { 'l' };
            format!("{}:{d}:{n}", c.column)
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn parse_index_columns(text: &str) -> PgResult<Vec<IndexColumn>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let mut it = part.split(':');
            let bad = || corrupt(format!("index column {part:?}"));
            let column = it.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
            let direction = match it.next() {
                Some("a") => Direction::Asc,
                Some("d") => Direction::Desc,
                _ => return Err(bad()),
            };
            let nulls = match it.next() {
                Some("f") => Nulls::First,
                Some("l") => Nulls::Last,
                _ => return Err(bad()),
            };
            if it.next().is_some() {
                return Err(bad());
            }
            Ok(IndexColumn {
                column,
                direction,
                nulls,
            })
        })
        .collect()
}

/// `3,1,2`.
pub fn id_list_text(ids: &[ColumnId]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

pub fn parse_id_list(text: &str) -> PgResult<Vec<ColumnId>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|p| {
            p.parse()
                .map_err(|_| corrupt(format!("column id list {text:?}")))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Descriptor rows.

pub fn database_kv(d: &DatabaseDesc) -> PgResult<(Bytes, Bytes)> {
    Ok((
        DATABASES.key(&[Value::Int8(d.id as i64)])?,
        DATABASES.value(&[Value::Text(d.name.clone())])?,
    ))
}

pub fn decode_database(key: &[Value], row: &[Value]) -> PgResult<DatabaseDesc> {
    Ok(DatabaseDesc {
        id: id(&key[0], "database id")?,
        name: text(&row[0], "database name")?,
    })
}

pub fn schema_kv(s: &SchemaDesc) -> PgResult<(Bytes, Bytes)> {
    Ok((
        SCHEMAS.key(&[Value::Int8(s.id as i64)])?,
        SCHEMAS.value(&[
            Value::Int8(s.database_id as i64),
            Value::Text(s.name.clone()),
        ])?,
    ))
}

pub fn decode_schema(key: &[Value], row: &[Value]) -> PgResult<SchemaDesc> {
    Ok(SchemaDesc {
        id: id(&key[0], "schema id")?,
        database_id: id(&row[0], "schema database")?,
        name: text(&row[1], "schema name")?,
    })
}

/// The rows of a table descriptor: its `tables` row, then its columns,
/// indexes and constraints.
pub fn table_kvs(t: &TableDesc) -> PgResult<Vec<(Bytes, Bytes)>> {
    let tid = Value::Int8(t.id as i64);
    let mut out = vec![(
        TABLES.key(std::slice::from_ref(&tid))?,
        TABLES.value(&[
            Value::Int8(t.schema_id as i64),
            Value::Text(t.name.clone()),
            Value::Int4(t.next_column_id as i32),
            Value::Int4(t.next_index_id as i32),
        ])?,
    )];
    for (position, c) in t.columns.iter().enumerate() {
        let mut missing = Vec::new();
        RowCodec::new(vec![RowColumn::new(1, c.ty)])?
            .encode(std::slice::from_ref(&c.missing), &mut missing)?;
        out.push((
            COLUMNS.key(&[tid.clone(), Value::Int4(c.id as i32)])?,
            COLUMNS.value(&[
                Value::Int4(position as i32),
                Value::Text(c.name.clone()),
                Value::Int8(i64::from(c.ty.oid())),
                Value::Int4(c.typmod),
                Value::Bool(c.nullable),
                opt_text_value(&c.default),
                Value::Bool(c.hidden),
                match c.identity {
                    None => Value::Null,
                    Some(Identity::Always) => Value::Text("a".into()),
                    Some(Identity::ByDefault) => Value::Text("d".into()),
                },
                Value::Bytea(missing),
            ])?,
        ));
    }
    for index in t.all_indexes() {
        out.push((
            INDEXES.key(&[tid.clone(), Value::Int4(index.id as i32)])?,
            INDEXES.value(&[
                Value::Int8(index.oid as i64),
                Value::Text(index.name.clone()),
                Value::Bool(index.unique),
                Value::Text(index_columns_text(&index.columns)),
                Value::Text(id_list_text(&index.stored)),
                Value::Bool(index.id == t.primary.id),
            ])?,
        ));
    }
    for check in &t.checks {
        out.push((
            CONSTRAINTS.key(&[tid.clone(), Value::Text(check.name.clone())])?,
            CONSTRAINTS.value(&[
                Value::Text("c".into()),
                Value::Text(check.expr.clone()),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ])?,
        ));
    }
    for fk in &t.foreign_keys {
        out.push((
            CONSTRAINTS.key(&[tid.clone(), Value::Text(fk.name.clone())])?,
            CONSTRAINTS.value(&[
                Value::Text("f".into()),
                Value::Null,
                Value::Text(id_list_text(&fk.columns)),
                Value::Int8(fk.ref_table as i64),
                Value::Text(id_list_text(&fk.ref_columns)),
                Value::Text(fk.on_delete.code().to_string()),
                Value::Text(fk.on_update.code().to_string()),
            ])?,
        ));
    }
    Ok(out)
}

/// The spans holding a table descriptor's rows (to delete them all).
pub fn table_spans(table_id: DescId) -> PgResult<Vec<Span>> {
    let tid = Value::Int8(table_id as i64);
    Ok(vec![
        TABLES.prefix_span(std::slice::from_ref(&tid))?,
        COLUMNS.prefix_span(std::slice::from_ref(&tid))?,
        INDEXES.prefix_span(std::slice::from_ref(&tid))?,
        CONSTRAINTS.prefix_span(std::slice::from_ref(&tid))?,
    ])
}

/// A table's `tables` row, before its columns and indexes are attached.
pub fn decode_table(key: &[Value], row: &[Value]) -> PgResult<TableDesc> {
    Ok(TableDesc {
        id: id(&key[0], "table id")?,
        schema_id: id(&row[0], "table schema")?,
        name: text(&row[1], "table name")?,
        columns: Vec::new(),
        next_column_id: uint32(&row[2], "next column id")?,
        primary: IndexDesc {
            id: 0,
            oid: 0,
            name: String::new(),
            unique: true,
            columns: Vec::new(),
            stored: Vec::new(),
        },
        indexes: Vec::new(),
        next_index_id: uint32(&row[3], "next index id")?,
        checks: Vec::new(),
        foreign_keys: Vec::new(),
    })
}

/// A column row: (table id, position, column).
pub fn decode_column(key: &[Value], row: &[Value]) -> PgResult<(DescId, usize, ColumnDesc)> {
    let table = id(&key[0], "column table")?;
    let oid = uint32(&row[2], "column type")?;
    let ty = Type::from_oid(oid).ok_or_else(|| corrupt(format!("column type oid {oid}")))?;
    let missing = match &row[8] {
        Value::Bytea(bytes) => RowCodec::new(vec![RowColumn::new(1, ty)])?
            .decode(bytes)?
            .pop()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let identity = match opt_text(&row[7], "identity")?.as_deref() {
        None => None,
        Some("a") => Some(Identity::Always),
        Some("d") => Some(Identity::ByDefault),
        Some(other) => return Err(corrupt(format!("identity kind {other:?}"))),
    };
    let column = ColumnDesc {
        id: uint32(&key[1], "column id")?,
        name: text(&row[1], "column name")?,
        ty,
        typmod: int(&row[3], "typmod")? as i32,
        nullable: boolean(&row[4], "nullable")?,
        default: opt_text(&row[5], "default")?,
        hidden: boolean(&row[6], "hidden")?,
        identity,
        missing,
    };
    Ok((table, int(&row[0], "position")? as usize, column))
}

/// An index row: (table id, is primary, index).
pub fn decode_index(key: &[Value], row: &[Value]) -> PgResult<(DescId, bool, IndexDesc)> {
    Ok((
        id(&key[0], "index table")?,
        boolean(&row[5], "index primary")?,
        IndexDesc {
            id: uint32(&key[1], "index id")?,
            oid: id(&row[0], "index oid")?,
            name: text(&row[1], "index name")?,
            unique: boolean(&row[2], "index unique")?,
            columns: parse_index_columns(&text(&row[3], "index columns")?)?,
            stored: parse_id_list(&text(&row[4], "index stored columns")?)?,
        },
    ))
}

/// A constraint row attached to its table.
pub fn attach_constraint(t: &mut TableDesc, key: &[Value], row: &[Value]) -> PgResult<()> {
    let name = text(&key[1], "constraint name")?;
    match text(&row[0], "constraint kind")?.as_str() {
        "c" => t.checks.push(CheckDesc {
            name,
            expr: text(&row[1], "check expression")?,
        }),
        "f" => {
            let action = |v: &Value| -> PgResult<FkAction> {
                let s = text(v, "foreign key action")?;
                s.chars()
                    .next()
                    .and_then(FkAction::from_code)
                    .ok_or_else(|| corrupt(format!("foreign key action {s:?}")))
            };
            t.foreign_keys.push(ForeignKeyDesc {
                name,
                columns: parse_id_list(&text(&row[2], "fk columns")?)?,
                ref_table: id(&row[3], "fk table")?,
                ref_columns: parse_id_list(&text(&row[4], "fk ref columns")?)?,
                on_delete: action(&row[5])?,
                on_update: action(&row[6])?,
            })
        }
        other => return Err(corrupt(format!("constraint kind {other:?}"))),
    }
    Ok(())
}

pub fn sequence_kv(s: &SequenceDesc) -> PgResult<(Bytes, Bytes)> {
    let (owner_table, owner_column) = match s.owner {
        Some((t, c)) => (Value::Int8(t as i64), Value::Int4(c as i32)),
        None => (Value::Null, Value::Null),
    };
    Ok((
        SEQUENCES.key(&[Value::Int8(s.id as i64)])?,
        SEQUENCES.value(&[
            Value::Int8(s.schema_id as i64),
            Value::Text(s.name.clone()),
            Value::Int8(s.start),
            Value::Int8(s.increment),
            Value::Int8(s.min),
            Value::Int8(s.max),
            Value::Bool(s.cycle),
            owner_table,
            owner_column,
        ])?,
    ))
}

pub fn decode_sequence(key: &[Value], row: &[Value]) -> PgResult<SequenceDesc> {
    let owner = match (&row[7], &row[8]) {
        (Value::Null, _) => None,
        (t, c) => Some((
            id(t, "sequence owner")?,
            uint32(c, "sequence owner column")?,
        )),
    };
    Ok(SequenceDesc {
        id: id(&key[0], "sequence id")?,
        schema_id: id(&row[0], "sequence schema")?,
        name: text(&row[1], "sequence name")?,
        start: int(&row[2], "start")?,
        increment: int(&row[3], "increment")?,
        min: int(&row[4], "min")?,
        max: int(&row[5], "max")?,
        cycle: boolean(&row[6], "cycle")?,
        owner,
    })
}

/// A view's columns as text: one `type oid:typmod:name` per line, the name
/// with `\\` and newlines escaped.
fn view_columns_text(columns: &[ViewColumn]) -> String {
    columns
        .iter()
        .map(|c| {
            let name = c.name.replace('\\', "\\\\").replace('\n', "\\n");
            format!("{}:{}:{name}", c.ty.oid(), c.typmod)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_view_columns(text: &str) -> PgResult<Vec<ViewColumn>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('\n')
        .map(|line| {
            let bad = || corrupt(format!("view column {line:?}"));
            let mut parts = line.splitn(3, ':');
            let oid: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            let typmod: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            let raw = parts.next().ok_or_else(bad)?;
            let mut name = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => name.push('\n'),
                        Some('\\') => name.push('\\'),
                        _ => return Err(bad()),
                    }
                } else {
                    name.push(c);
                }
            }
            Ok(ViewColumn {
                name,
                ty: Type::from_oid(oid).ok_or_else(bad)?,
                typmod,
            })
        })
        .collect()
}

pub fn view_kv(v: &ViewDesc) -> PgResult<(Bytes, Bytes)> {
    let depends: Vec<String> = v.depends.iter().map(|d| d.to_string()).collect();
    Ok((
        VIEWS.key(&[Value::Int8(v.id as i64)])?,
        VIEWS.value(&[
            Value::Int8(v.schema_id as i64),
            Value::Text(v.name.clone()),
            Value::Text(v.query.clone()),
            Value::Text(view_columns_text(&v.columns)),
            Value::Text(depends.join(",")),
        ])?,
    ))
}

pub fn decode_view(key: &[Value], row: &[Value]) -> PgResult<ViewDesc> {
    let depends_text = text(&row[4], "view depends")?;
    let depends = if depends_text.is_empty() {
        Vec::new()
    } else {
        depends_text
            .split(',')
            .map(|d| {
                d.parse()
                    .map_err(|_| corrupt(format!("view dependency {d:?}")))
            })
            .collect::<PgResult<Vec<DescId>>>()?
    };
    Ok(ViewDesc {
        id: id(&key[0], "view id")?,
        schema_id: id(&row[0], "view schema")?,
        name: text(&row[1], "view name")?,
        query: text(&row[2], "view query")?,
        columns: parse_view_columns(&text(&row[3], "view columns")?)?,
        depends,
    })
}

pub fn meta_key(name: &str) -> PgResult<Bytes> {
    META.key(&[Value::Text(name.into())])
}

pub fn meta_value(n: i64) -> PgResult<Bytes> {
    META.value(&[Value::Int8(n)])
}

/// Decodes a meta value (absent: `None`).
pub fn decode_meta(value: Option<&Bytes>) -> PgResult<Option<i64>> {
    match value {
        None => Ok(None),
        Some(v) => {
            let row = META.codec().decode(v)?;
            int(&row[0], "meta value").map(Some)
        }
    }
}
