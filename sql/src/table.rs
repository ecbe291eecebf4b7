//! A table's rows and index entries as KV pairs.
//!
//! - **Primary index**: key `/table/primary/<pk columns>`, value the row
//!   codec of the other columns (and of key columns whose key encoding may
//!   lose information, see [`crate::catalog::desc::lossy_type`]).
//! - **Secondary index**: key `/table/index/<index columns>`, followed by the
//!   primary key columns unless the index is unique and no index column is
//!   NULL (so a unique index holds one entry per value, and a conditional
//!   put enforces uniqueness, while NULLs, which are distinct, coexist).
//!   Value: the row codec of the primary key columns, the `INCLUDE`d
//!   columns and the index's lossy-typed columns; so an entry always names
//!   its row, and covers the columns it stores exactly.
//!
//! Rows are `Vec<Value>` in the table's column order ([`TableDesc::columns`]).

use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult};

use crate::catalog::{lossy_type, IndexDesc, TableRef};
use crate::encoding::corrupt;
use crate::encoding::key::{decode_key, encode_key, encode_value, index_prefix, KeyColumn};
use crate::encoding::row::{RowCodec, RowColumn};
use crate::expr::cast_value;

/// Encoding of one index of a table.
#[derive(Clone, Debug)]
pub struct IndexCodec {
    pub desc: IndexDesc,
    pub primary: bool,
    /// `/table/index`.
    pub prefix: Vec<u8>,
    pub key_cols: Vec<KeyColumn>,
    /// Row positions of the key columns.
    pub key_positions: Vec<usize>,
    /// Primary key columns appended to the key (secondary indexes).
    suffix_cols: Vec<KeyColumn>,
    suffix_positions: Vec<usize>,
    value: RowCodec,
    value_positions: Vec<usize>,
}

impl IndexCodec {
    /// Row positions this index's entries hold exactly (all of them for the
    /// primary index).
    pub fn covers(&self, positions: &[usize]) -> bool {
        self.primary
            || positions.iter().all(|p| {
                self.key_positions.contains(p)
                    || self.suffix_positions.contains(p)
                    || self.value_positions.contains(p)
            })
    }
}

/// The KV encoding of one table's rows and indexes.
#[derive(Clone, Debug)]
pub struct TableCodec {
    pub table: TableRef,
    pub primary: IndexCodec,
    pub secondaries: Vec<IndexCodec>,
}

impl TableCodec {
    pub fn new(table: &TableRef) -> TableCodec {
        let pk_positions = table.key_positions(&table.primary);
        let pk_cols = table.key_columns(&table.primary);
        let row = table.row_codec();
        let row_positions = row
            .columns()
            .iter()
            .map(|c| {
                table
                    .position(c.id)
                    .expect("row codec columns are table columns")
            })
            .collect();
        let primary = IndexCodec {
            desc: table.primary.clone(),
            primary: true,
            prefix: index_prefix(table.id, table.primary.id.into()),
            key_cols: pk_cols.clone(),
            key_positions: pk_positions.clone(),
            suffix_cols: Vec::new(),
            suffix_positions: Vec::new(),
            value: row,
            value_positions: row_positions,
        };
        let secondaries = table
            .indexes
            .iter()
            .map(|index| {
                let key_positions = table.key_positions(index);
                let mut value_positions: Vec<usize> = pk_positions.clone();
                for id in &index.stored {
                    if let Some(p) = table.position(*id) {
                        if !value_positions.contains(&p) {
                            value_positions.push(p);
                        }
                    }
                }
                for &p in &key_positions {
                    if lossy_type(table.columns[p].ty) && !value_positions.contains(&p) {
                        value_positions.push(p);
                    }
                }
                let value = RowCodec::new(
                    value_positions
                        .iter()
                        .map(|&p| RowColumn::new(table.columns[p].id, table.columns[p].ty))
                        .collect(),
                )
                .expect("distinct column ids");
                IndexCodec {
                    desc: index.clone(),
                    primary: false,
                    prefix: index_prefix(table.id, index.id.into()),
                    key_cols: table.key_columns(index),
                    key_positions,
                    suffix_cols: pk_cols.clone(),
                    suffix_positions: pk_positions.clone(),
                    value,
                    value_positions,
                }
            })
            .collect();
        TableCodec {
            table: table.clone(),
            primary,
            secondaries,
        }
    }

    pub fn index(&self, id: u32) -> Option<&IndexCodec> {
        std::iter::once(&self.primary)
            .chain(&self.secondaries)
            .find(|ix| ix.desc.id == id)
    }

    /// The primary key of a row.
    pub fn pk_key(&self, row: &[Value]) -> PgResult<Vec<u8>> {
        let mut key = self.primary.prefix.clone();
        for (&p, col) in self
            .primary
            .key_positions
            .iter()
            .zip(&self.primary.key_cols)
        {
            encode_value(&mut key, &row[p], *col)?;
        }
        Ok(key)
    }

    /// The primary KV pair of a row.
    pub fn encode_row(&self, row: &[Value]) -> PgResult<(Vec<u8>, Vec<u8>)> {
        let key = self.pk_key(row)?;
        let values: Vec<Value> = self
            .primary
            .value_positions
            .iter()
            .map(|&p| row[p].clone())
            .collect();
        let mut value = Vec::new();
        self.primary.value.encode(&values, &mut value)?;
        Ok((key, value))
    }

    /// A full row from its primary KV pair.
    pub fn decode_row(&self, key: &[u8], value: &[u8]) -> PgResult<Vec<Value>> {
        let mut row = vec![Value::Null; self.table.columns.len()];
        let rest = key
            .strip_prefix(&self.primary.prefix[..])
            .ok_or_else(|| corrupt("row key outside its table"))?;
        let mut input = rest;
        let keys = decode_key(&mut input, &self.primary.key_cols)?;
        if !input.is_empty() {
            return Err(corrupt("bytes after the primary key"));
        }
        for (&p, v) in self.primary.key_positions.iter().zip(keys) {
            row[p] = v;
        }
        let values = self.primary.value.decode(value)?;
        for (&p, v) in self.primary.value_positions.iter().zip(values) {
            row[p] = v;
        }
        Ok(row)
    }

    /// The entry of `row` in a secondary index, and whether it is unique
    /// (to be written with a conditional put).
    pub fn index_entry(
        &self,
        ix: &IndexCodec,
        row: &[Value],
    ) -> PgResult<(Vec<u8>, Vec<u8>, bool)> {
        let mut key = ix.prefix.clone();
        let mut any_null = false;
        for (&p, col) in ix.key_positions.iter().zip(&ix.key_cols) {
            any_null |= row[p].is_null();
            encode_value(&mut key, &row[p], *col)?;
        }
        let unique = ix.desc.unique && !any_null;
        if !unique {
            for (&p, col) in ix.suffix_positions.iter().zip(&ix.suffix_cols) {
                encode_value(&mut key, &row[p], *col)?;
            }
        }
        let values: Vec<Value> = ix.value_positions.iter().map(|&p| row[p].clone()).collect();
        let mut value = Vec::new();
        ix.value.encode(&values, &mut value)?;
        Ok((key, value, unique))
    }

    /// A row as far as a secondary index entry holds it (other columns NULL).
    pub fn decode_entry(&self, ix: &IndexCodec, key: &[u8], value: &[u8]) -> PgResult<Vec<Value>> {
        let mut row = vec![Value::Null; self.table.columns.len()];
        let mut input = key
            .strip_prefix(&ix.prefix[..])
            .ok_or_else(|| corrupt("index key outside its index"))?;
        let keys = decode_key(&mut input, &ix.key_cols)?;
        for (&p, v) in ix.key_positions.iter().zip(keys) {
            row[p] = v;
        }
        let values = ix.value.decode(value)?;
        for (&p, v) in ix.value_positions.iter().zip(values) {
            row[p] = v;
        }
        Ok(row)
    }

    /// The primary key of a row given its primary key values in key order.
    pub fn pk_key_of(&self, values: &[Value]) -> PgResult<Vec<u8>> {
        let mut key = self.primary.prefix.clone();
        encode_key(&mut key, values, &self.primary.key_cols)?;
        Ok(key)
    }
}

/// Converts a value for a key column of type `ty`. `Ok(None)`: the value
/// cannot equal any value of the column (out of its range), so the span is
/// empty.
pub fn key_value(value: Value, ty: Type) -> PgResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    let from = value.natural_type();
    let same = matches!(
        (&value, ty),
        (
            Value::Text(_),
            Type::Text | Type::Varchar | Type::Bpchar | Type::Name
        ) | (Value::Json(_), Type::Json | Type::Jsonb)
    ) || from == ty;
    if same {
        return Ok(Some(value));
    }
    match cast_value(value, from, ty) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == teller_net::SqlState::NUMERIC_VALUE_OUT_OF_RANGE => Ok(None),
        Err(e) => Err(e),
    }
}

/// A corrupt index entry that names a missing row.
pub fn dangling(index: &str) -> PgError {
    corrupt(format!("index {index} names a row that does not exist"))
}
