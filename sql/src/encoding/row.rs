//! Row (KV value) encoding: the non-key columns of a row, each tagged with its
//! column id.
//!
//! ```text
//! row    = version column*
//! column = id-delta tag payload
//! ```
//!
//! - `version` is one byte, [`ROW_FORMAT_VERSION`]; another value is refused.
//! - `id-delta` is a LEB128 varint: the column id minus the previous column's
//!   id (the first is the id itself). Ids strictly increase, so every delta
//!   after the first is at least 1.
//! - `tag` is one byte naming the payload's type, so a reader can skip a
//!   column it does not know without a schema:
//!
//! | tag | type | payload |
//! |---|---|---|
//! | 0 | NULL | none |
//! | 1 / 2 | bool false / true | none |
//! | 3 / 4 / 5 | int2 / int4 / int8 | zigzag LEB128 |
//! | 6 / 7 | float4 / float8 | IEEE bits, little-endian (exact: `-0.0` and NaN payloads kept) |
//! | 8 | numeric | 1 byte `sign << 7 \| scale`, then the mantissa's magnitude as LEB128 (exact: scale kept) |
//! | 9 | text, varchar, bpchar, name | LEB128 length, UTF-8 bytes |
//! | 10 | bytea | LEB128 length, bytes |
//! | 11 / 12 / 13 / 14 | date / time / timestamp / timestamptz | zigzag LEB128 |
//! | 15 | interval | zigzag LEB128 months, days, micros |
//! | 16 | uuid | 16 bytes |
//! | 17 | json, jsonb | LEB128 length, UTF-8 bytes |
//! | 18 | oid | LEB128 |
//!
//! # Schema changes without rewrites
//!
//! A [`RowCodec`] is built from the table's columns as one schema version sees
//! them. `ALTER TABLE ADD COLUMN` adds a column with a new, larger id and a
//! `missing` value (its default, fixed when the column is added, as
//! PostgreSQL's `attmissingval`): rows written before have no entry for the
//! id and decode to `missing`. A NULL is therefore written explicitly when the
//! column's `missing` value is not NULL, and left out when it is. `DROP
//! COLUMN` removes the column from the codec: its bytes stay in old rows and
//! are skipped. Column ids are never reused.
//!
//! No checksum: storage checksums every block. Decoding still treats the
//! bytes as untrusted and reports anything malformed as `XX001`.

use rust_decimal::Decimal;
use teller_net::types::{Interval, Type, Value};
use teller_net::{PgError, PgResult};

use super::{corrupt, take, take_array, take_byte};

/// The first byte of every encoded row.
pub const ROW_FORMAT_VERSION: u8 = 1;

/// A column's id within its table: assigned once, never reused.
pub type ColumnId = u32;

mod tag {
    pub const NULL: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const INT2: u8 = 3;
    pub const INT4: u8 = 4;
    pub const INT8: u8 = 5;
    pub const FLOAT4: u8 = 6;
    pub const FLOAT8: u8 = 7;
    pub const NUMERIC: u8 = 8;
    pub const TEXT: u8 = 9;
    pub const BYTEA: u8 = 10;
    pub const DATE: u8 = 11;
    pub const TIME: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMPTZ: u8 = 14;
    pub const INTERVAL: u8 = 15;
    pub const UUID: u8 = 16;
    pub const JSON: u8 = 17;
    pub const OID: u8 = 18;
}

/// One stored column as a schema version sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct RowColumn {
    pub id: ColumnId,
    pub ty: Type,
    /// The value of rows written before the column existed.
    pub missing: Value,
}

impl RowColumn {
    /// A column whose missing value is NULL (every column created with its table).
    pub fn new(id: ColumnId, ty: Type) -> RowColumn {
        RowColumn {
            id,
            ty,
            missing: Value::Null,
        }
    }
}

/// Encodes and decodes the rows of one schema version. Build it once per
/// table descriptor, not per row.
#[derive(Clone, Debug)]
pub struct RowCodec {
    columns: Vec<RowColumn>,
    /// `(id, position in columns)`, sorted by id.
    by_id: Vec<(ColumnId, usize)>,
}

impl RowCodec {
    /// A codec for `columns`, in the order values are passed and returned.
    pub fn new(columns: Vec<RowColumn>) -> PgResult<RowCodec> {
        let mut by_id: Vec<(ColumnId, usize)> =
            columns.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        by_id.sort_unstable();
        if let Some(w) = by_id.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(PgError::internal(format!("duplicate column id {}", w[0].0)));
        }
        for c in &columns {
            if !c.missing.is_null() {
                check_type(&c.missing, c.ty)?;
            }
        }
        Ok(RowCodec { columns, by_id })
    }

    pub fn columns(&self) -> &[RowColumn] {
        &self.columns
    }

    /// Appends the encoding of `values` (one per column, in column order).
    pub fn encode(&self, values: &[Value], out: &mut Vec<u8>) -> PgResult<()> {
        if values.len() != self.columns.len() {
            return Err(PgError::internal(format!(
                "row of {} columns given {} values",
                self.columns.len(),
                values.len()
            )));
        }
        let start = out.len();
        out.push(ROW_FORMAT_VERSION);
        let mut previous = 0;
        for &(id, i) in &self.by_id {
            let (value, column) = (&values[i], &self.columns[i]);
            if value.is_null() && column.missing.is_null() {
                continue;
            }
            if !value.is_null() {
                if let Err(e) = check_type(value, column.ty) {
                    out.truncate(start);
                    return Err(e);
                }
            }
            put_leb128(out, (id - previous).into());
            previous = id;
            put_value(out, value);
        }
        Ok(())
    }

    /// Decodes a row into one value per column, in column order.
    pub fn decode(&self, bytes: &[u8]) -> PgResult<Vec<Value>> {
        let mut values: Vec<Value> = self.columns.iter().map(|c| c.missing.clone()).collect();
        let mut input = bytes;
        let version = take_byte(&mut input, "row version")?;
        if version != ROW_FORMAT_VERSION {
            return Err(corrupt(format!("row format version {version}")));
        }
        let mut next = 0; // index into by_id; stored ids ascend, so a merge walk
        let mut id: u64 = 0;
        let mut first = true;
        while !input.is_empty() {
            let delta = take_leb128(&mut input, "column id")?;
            if delta == 0 && !first {
                return Err(corrupt("column ids do not increase"));
            }
            first = false;
            id = id
                .checked_add(delta)
                .filter(|id| *id <= ColumnId::MAX.into())
                .ok_or_else(|| corrupt("column id out of range"))?;
            let value = take_value(&mut input)?;
            while next < self.by_id.len() && u64::from(self.by_id[next].0) < id {
                next += 1;
            }
            let Some(&(known, i)) = self.by_id.get(next) else {
                continue; // a dropped column
            };
            if u64::from(known) != id {
                continue;
            }
            let column = &self.columns[i];
            if !value.is_null() {
                check_type(&value, column.ty).map_err(|_| {
                    corrupt(format!(
                        "column {id} holds {value:?}, schema says {}",
                        column.ty.name()
                    ))
                })?;
            }
            values[i] = value;
        }
        Ok(values)
    }
}

fn value_tag(ty: Type) -> Option<u8> {
    Some(match ty {
        Type::Bool => tag::TRUE,
        Type::Int2 => tag::INT2,
        Type::Int4 => tag::INT4,
        Type::Int8 => tag::INT8,
        Type::Float4 => tag::FLOAT4,
        Type::Float8 => tag::FLOAT8,
        Type::Numeric => tag::NUMERIC,
        Type::Text | Type::Varchar | Type::Bpchar | Type::Name => tag::TEXT,
        Type::Bytea => tag::BYTEA,
        Type::Date => tag::DATE,
        Type::Time => tag::TIME,
        Type::Timestamp => tag::TIMESTAMP,
        Type::Timestamptz => tag::TIMESTAMPTZ,
        Type::Interval => tag::INTERVAL,
        Type::Uuid => tag::UUID,
        Type::Json | Type::Jsonb => tag::JSON,
        Type::Oid => tag::OID,
        Type::Unknown => return None,
    })
}

/// Whether a non-NULL `value` may be stored in a column of type `ty`.
fn check_type(value: &Value, ty: Type) -> PgResult<()> {
    let tag = match value {
        Value::Bool(_) => Some(tag::TRUE),
        Value::Int2(_) => Some(tag::INT2),
        Value::Int4(_) => Some(tag::INT4),
        Value::Int8(_) => Some(tag::INT8),
        Value::Float4(_) => Some(tag::FLOAT4),
        Value::Float8(_) => Some(tag::FLOAT8),
        Value::Numeric(_) => Some(tag::NUMERIC),
        Value::Text(_) => Some(tag::TEXT),
        Value::Bytea(_) => Some(tag::BYTEA),
        Value::Date(_) => Some(tag::DATE),
        Value::Time(_) => Some(tag::TIME),
        Value::Timestamp(_) => Some(tag::TIMESTAMP),
        Value::Timestamptz(_) => Some(tag::TIMESTAMPTZ),
        Value::Interval(_) => Some(tag::INTERVAL),
        Value::Uuid(_) => Some(tag::UUID),
        Value::Json(_) => Some(tag::JSON),
        Value::Oid(_) => Some(tag::OID),
        Value::Null => None,
    };
    if tag.is_some() && tag == value_tag(ty) {
        Ok(())
    } else {
        Err(PgError::internal(format!(
            "column of type {} given {value:?}",
            ty.name()
        )))
    }
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(tag::NULL),
        Value::Bool(false) => out.push(tag::FALSE),
        Value::Bool(true) => out.push(tag::TRUE),
        Value::Int2(v) => put_tagged_int(out, tag::INT2, (*v).into()),
        Value::Int4(v) => put_tagged_int(out, tag::INT4, (*v).into()),
        Value::Int8(v) => put_tagged_int(out, tag::INT8, *v),
        Value::Date(v) => put_tagged_int(out, tag::DATE, (*v).into()),
        Value::Time(v) => put_tagged_int(out, tag::TIME, *v),
        Value::Timestamp(v) => put_tagged_int(out, tag::TIMESTAMP, *v),
        Value::Timestamptz(v) => put_tagged_int(out, tag::TIMESTAMPTZ, *v),
        Value::Oid(v) => {
            out.push(tag::OID);
            put_leb128(out, (*v).into());
        }
        Value::Float4(f) => {
            out.push(tag::FLOAT4);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Float8(f) => {
            out.push(tag::FLOAT8);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Numeric(d) => {
            out.push(tag::NUMERIC);
            out.push(u8::from(d.is_sign_negative()) << 7 | d.scale() as u8);
            put_leb128(out, d.mantissa().unsigned_abs());
        }
        Value::Text(s) => put_bytes(out, tag::TEXT, s.as_bytes()),
        Value::Json(s) => put_bytes(out, tag::JSON, s.as_bytes()),
        Value::Bytea(b) => put_bytes(out, tag::BYTEA, b),
        Value::Interval(iv) => {
            out.push(tag::INTERVAL);
            put_leb128(out, zigzag(iv.months.into()));
            put_leb128(out, zigzag(iv.days.into()));
            put_leb128(out, zigzag(iv.micros));
        }
        Value::Uuid(u) => {
            out.push(tag::UUID);
            out.extend_from_slice(u);
        }
    }
}

fn put_tagged_int(out: &mut Vec<u8>, tag: u8, v: i64) {
    out.push(tag);
    put_leb128(out, zigzag(v));
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_leb128(out, bytes.len() as u128);
    out.extend_from_slice(bytes);
}

fn zigzag(v: i64) -> u128 {
    ((v << 1) ^ (v >> 63)) as u64 as u128
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Appends `v` as LEB128: 7 bits a byte, low bits first, high bit = more.
pub fn put_leb128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_leb128_wide(input: &mut &[u8], what: &str, bits: u32) -> PgResult<u128> {
    let mut v: u128 = 0;
    let mut shift = 0;
    loop {
        let b = take_byte(input, what)?;
        let chunk = u128::from(b & 0x7F);
        if shift >= bits || (shift > 0 && chunk >> (bits - shift).min(7) != 0) {
            return Err(corrupt(format!("{what}: varint too long")));
        }
        v |= chunk << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// Decodes a LEB128 value of at most 64 bits.
pub fn take_leb128(input: &mut &[u8], what: &str) -> PgResult<u64> {
    Ok(take_leb128_wide(input, what, 64)? as u64)
}

fn take_int<T: TryFrom<i64>>(input: &mut &[u8], what: &str) -> PgResult<T> {
    let v = unzigzag(take_leb128(input, what)?);
    T::try_from(v).map_err(|_| corrupt(format!("{what} {v} out of range")))
}

fn take_bytes<'a>(input: &mut &'a [u8], what: &str) -> PgResult<&'a [u8]> {
    let len = take_leb128(input, what)?;
    let len = usize::try_from(len).map_err(|_| corrupt(format!("{what}: length {len}")))?;
    take(input, len, what)
}

fn take_string(input: &mut &[u8], what: &str) -> PgResult<String> {
    let bytes = take_bytes(input, what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(format!("{what} is not UTF-8")))
}

/// Decodes one tagged value.
fn take_value(input: &mut &[u8]) -> PgResult<Value> {
    let tag = take_byte(input, "value tag")?;
    Ok(match tag {
        tag::NULL => Value::Null,
        tag::FALSE => Value::Bool(false),
        tag::TRUE => Value::Bool(true),
        tag::INT2 => Value::Int2(take_int(input, "int2")?),
        tag::INT4 => Value::Int4(take_int(input, "int4")?),
        tag::INT8 => Value::Int8(take_int(input, "int8")?),
        tag::DATE => Value::Date(take_int(input, "date")?),
        tag::TIME => Value::Time(take_int(input, "time")?),
        tag::TIMESTAMP => Value::Timestamp(take_int(input, "timestamp")?),
        tag::TIMESTAMPTZ => Value::Timestamptz(take_int(input, "timestamptz")?),
        tag::OID => {
            let v = take_leb128(input, "oid")?;
            Value::Oid(u32::try_from(v).map_err(|_| corrupt(format!("oid {v} out of range")))?)
        }
        tag::FLOAT4 => Value::Float4(f32::from_bits(u32::from_le_bytes(take_array(
            input, "float4",
        )?))),
        tag::FLOAT8 => Value::Float8(f64::from_bits(u64::from_le_bytes(take_array(
            input, "float8",
        )?))),
        tag::NUMERIC => Value::Numeric(take_numeric(input)?),
        tag::TEXT => Value::Text(take_string(input, "text")?),
        tag::JSON => Value::Json(take_string(input, "json")?),
        tag::BYTEA => Value::Bytea(take_bytes(input, "bytea")?.to_vec()),
        tag::INTERVAL => Value::Interval(Interval {
            months: take_int(input, "interval months")?,
            days: take_int(input, "interval days")?,
            micros: take_int(input, "interval micros")?,
        }),
        tag::UUID => Value::Uuid(take_array(input, "uuid")?),
        t => return Err(corrupt(format!("value tag {t}"))),
    })
}

fn take_numeric(input: &mut &[u8]) -> PgResult<Decimal> {
    let head = take_byte(input, "numeric header")?;
    let (negative, scale) = (head >> 7 == 1, u32::from(head & 0x7F));
    let magnitude = take_leb128_wide(input, "numeric", 96)?;
    let signed = magnitude as i128; // < 2^96: fits
    let signed = if negative { -signed } else { signed };
    let mut d = Decimal::try_from_i128_with_scale(signed, scale)
        .map_err(|_| corrupt(format!("numeric scale {scale}")))?;
    // -0 keeps its sign bit, as rust_decimal allows.
    d.set_sign_negative(negative);
    Ok(d)
}

#[cfg(test)]
mod tests;
