//! Text and binary codecs for [`Value`]s, byte-for-byte like PostgreSQL 15 with
//! `DateStyle=ISO, MDY`, `TimeZone=UTC`, `IntervalStyle=postgres`,
//! `extra_float_digits=1` and `bytea_output=hex`.
//!
//! Layout: one file per family of types ([`scalar`]: bool, integers, oid, floats;
//! [`numeric`]; [`text`]: character types, bytea, uuid; [`json`]; [`datetime`]:
//! date, time, timestamp(tz) and the calendar; [`interval`]). This file only
//! dispatches on the type and holds the error constructors they share.
//!
//! Invariants and hazards:
//! - Decoders see bytes a client chose. They never panic and never index without a
//!   bounds check: malformed input is a [`PgError`] with PostgreSQL's SQLSTATE
//!   (22P02 syntax, 22003 numeric range, 22007/22008 date/time syntax/range, 22021
//!   encoding, 22P03 binary format).
//! - Text input is checked to be UTF-8 without NUL before any type parses it, as
//!   PostgreSQL's `pg_verifymbstr` does for every message.
//! - Binary layouts are PostgreSQL's `*send`/`*recv` formats, big-endian, so a
//!   binary value round-trips with any PostgreSQL client library.
//! - The value's own variant decides its text form; the type only matters where
//!   PostgreSQL prints two types differently (`timestamptz` adds `+00`). Binary
//!   encoding checks that the value fits the type, since a client reads exactly the
//!   width the RowDescription announced.
//! - `jsonb` values hold the text `jsonb_out` would print (keys sorted and
//!   unique, numbers as `numeric`), so equal documents are equal strings.
//!
//! Fidelity is pinned by `tests/pg15_differential.rs`: ~5,400 inputs whose
//! output, SQLSTATE and send bytes were recorded from a real PostgreSQL 15.

mod datetime;
mod interval;
mod json;
mod numeric;
mod scalar;
#[cfg(test)]
mod tests;
mod text;

use bytes::{BufMut, BytesMut};

use super::{Type, Value};
use crate::error::{PgError, PgResult, SqlState};

/// Appends the text form of a non-null `value` (as PostgreSQL prints it with
/// DateStyle ISO and TimeZone UTC) to `out`. `Value::Null` appends nothing: NULL
/// has no text form, it travels as length -1.
pub fn encode_text(value: &Value, ty: Type, out: &mut BytesMut) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.put_slice(if *b { b"t" } else { b"f" }),
        Value::Int2(v) => out.put_slice(v.to_string().as_bytes()),
        Value::Int4(v) => out.put_slice(v.to_string().as_bytes()),
        Value::Int8(v) => out.put_slice(v.to_string().as_bytes()),
        Value::Oid(v) => out.put_slice(v.to_string().as_bytes()),
        Value::Float4(v) => out.put_slice(scalar::format_f32(*v).as_bytes()),
        Value::Float8(v) => out.put_slice(scalar::format_f64(*v).as_bytes()),
        Value::Numeric(d) => out.put_slice(numeric::format(d).as_bytes()),
        Value::Text(s) | Value::Json(s) => out.put_slice(s.as_bytes()),
        Value::Bytea(b) => text::format_bytea(b, out),
        Value::Uuid(u) => out.put_slice(text::format_uuid(u).as_bytes()),
        Value::Date(d) => out.put_slice(datetime::format_date(*d).as_bytes()),
        Value::Time(t) => out.put_slice(datetime::format_time(*t).as_bytes()),
        Value::Timestamp(ts) => {
            let with_zone = ty == Type::Timestamptz;
            out.put_slice(datetime::format_timestamp(*ts, with_zone).as_bytes())
        }
        Value::Timestamptz(ts) => out.put_slice(datetime::format_timestamp(*ts, true).as_bytes()),
        Value::Interval(iv) => out.put_slice(interval::format(iv).as_bytes()),
    }
}

/// Appends the binary (send) form of a non-null `value` of type `ty` to `out`.
///
/// Fails with XX000 when the value's variant does not belong to `ty` (a bug in
/// the caller: the client would misread every byte after it).
pub fn encode_binary(value: &Value, ty: Type, out: &mut BytesMut) -> PgResult<()> {
    match (ty, value) {
        (Type::Bool, Value::Bool(b)) => out.put_u8(u8::from(*b)),
        (Type::Int2, Value::Int2(v)) => out.put_i16(*v),
        (Type::Int4, Value::Int4(v)) => out.put_i32(*v),
        (Type::Int8, Value::Int8(v)) => out.put_i64(*v),
        (Type::Oid, Value::Oid(v)) => out.put_u32(*v),
        (Type::Float4, Value::Float4(v)) => out.put_f32(*v),
        (Type::Float8, Value::Float8(v)) => out.put_f64(*v),
        (Type::Numeric, Value::Numeric(d)) => numeric::encode_binary(d, out),
        (Type::Bytea, Value::Bytea(b)) => out.put_slice(b),
        (Type::Uuid, Value::Uuid(u)) => out.put_slice(u),
        (Type::Date, Value::Date(d)) => out.put_i32(*d),
        (Type::Time, Value::Time(t)) => out.put_i64(*t),
        (Type::Timestamp | Type::Timestamptz, Value::Timestamp(ts) | Value::Timestamptz(ts)) => {
            out.put_i64(*ts)
        }
        (Type::Interval, Value::Interval(iv)) => {
            out.put_i64(iv.micros);
            out.put_i32(iv.days);
            out.put_i32(iv.months);
        }
        (Type::Jsonb, Value::Json(s) | Value::Text(s)) => {
            out.put_u8(json::JSONB_VERSION);
            out.put_slice(s.as_bytes());
        }
        (ty, Value::Text(s) | Value::Json(s)) if is_textual(ty) => out.put_slice(s.as_bytes()),
        (ty, value) => {
            return Err(PgError::internal(format!(
                "cannot encode {} as binary {}",
                variant_name(value),
                ty.name()
            )))
        }
    }
    Ok(())
}

/// Parses the text form of a value of type `ty`.
pub fn decode_text(ty: Type, raw: &[u8]) -> PgResult<Value> {
    let s = text::verify_utf8(raw)?;
    Ok(match ty {
        Type::Bool => Value::Bool(scalar::parse_bool(s)?),
        Type::Int2 => Value::Int2(scalar::parse_int2(s)?),
        Type::Int4 => Value::Int4(scalar::parse_int4(s)?),
        Type::Int8 => Value::Int8(scalar::parse_int8(s)?),
        Type::Oid => Value::Oid(scalar::parse_oid(s)?),
        Type::Float4 => Value::Float4(scalar::parse_f32(s)?),
        Type::Float8 => Value::Float8(scalar::parse_f64(s)?),
        Type::Numeric => Value::Numeric(numeric::parse(s)?),
        Type::Text | Type::Varchar | Type::Bpchar | Type::Unknown => Value::Text(s.to_owned()),
        Type::Name => Value::Text(text::truncate_name(s).to_owned()),
        Type::Bytea => Value::Bytea(text::parse_bytea(s)?),
        Type::Uuid => Value::Uuid(text::parse_uuid(s)?),
        Type::Json => {
            json::validate(s)?;
            Value::Json(s.to_owned())
        }
        Type::Jsonb => Value::Json(json::normalize_jsonb(s)?),
        Type::Date => Value::Date(datetime::parse_date(s)?),
        Type::Time => Value::Time(datetime::parse_time(s)?),
        Type::Timestamp => Value::Timestamp(datetime::parse_timestamp(s, false)?),
        Type::Timestamptz => Value::Timestamptz(datetime::parse_timestamp(s, true)?),
        Type::Interval => Value::Interval(interval::parse(s)?),
    })
}

/// Parses the binary (recv) form of a value of type `ty`.
pub fn decode_binary(ty: Type, raw: &[u8]) -> PgResult<Value> {
    Ok(match ty {
        Type::Bool => Value::Bool(fixed::<1>(ty, raw)?[0] != 0),
        Type::Int2 => Value::Int2(i16::from_be_bytes(fixed(ty, raw)?)),
        Type::Int4 => Value::Int4(i32::from_be_bytes(fixed(ty, raw)?)),
        Type::Int8 => Value::Int8(i64::from_be_bytes(fixed(ty, raw)?)),
        Type::Oid => Value::Oid(u32::from_be_bytes(fixed(ty, raw)?)),
        Type::Float4 => Value::Float4(f32::from_be_bytes(fixed(ty, raw)?)),
        Type::Float8 => Value::Float8(f64::from_be_bytes(fixed(ty, raw)?)),
        Type::Numeric => Value::Numeric(numeric::decode_binary(raw)?),
        Type::Text | Type::Varchar | Type::Bpchar | Type::Unknown => {
            Value::Text(text::verify_utf8(raw)?.to_owned())
        }
        Type::Name => Value::Text(text::check_name_binary(text::verify_utf8(raw)?)?.to_owned()),
        Type::Bytea => Value::Bytea(raw.to_vec()),
        Type::Uuid => Value::Uuid(fixed(ty, raw)?),
        Type::Json => {
            let s = text::verify_utf8(raw)?;
            json::validate(s)?;
            Value::Json(s.to_owned())
        }
        Type::Jsonb => Value::Json(json::decode_jsonb_binary(raw)?),
        Type::Date => Value::Date(datetime::check_date(i32::from_be_bytes(fixed(ty, raw)?))?),
        Type::Time => Value::Time(datetime::check_time(i64::from_be_bytes(fixed(ty, raw)?))?),
        Type::Timestamp => Value::Timestamp(datetime::check_timestamp(i64::from_be_bytes(fixed(
            ty, raw,
        )?))?),
        Type::Timestamptz => Value::Timestamptz(datetime::check_timestamp(i64::from_be_bytes(
            fixed(ty, raw)?,
        ))?),
        Type::Interval => {
            let b: [u8; 16] = fixed(ty, raw)?;
            let (micros, rest) = b.split_at(8);
            let (days, months) = rest.split_at(4);
            Value::Interval(super::Interval {
                micros: i64::from_be_bytes(array(micros)?),
                days: i32::from_be_bytes(array(days)?),
                months: i32::from_be_bytes(array(months)?),
            })
        }
    })
}

/// Types whose text and binary forms are the same UTF-8 bytes.
fn is_textual(ty: Type) -> bool {
    matches!(
        ty,
        Type::Text | Type::Varchar | Type::Bpchar | Type::Name | Type::Unknown | Type::Json
    )
}

fn variant_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Bool(_) => "bool value",
        Value::Int2(_) => "int2 value",
        Value::Int4(_) => "int4 value",
        Value::Int8(_) => "int8 value",
        Value::Float4(_) => "float4 value",
        Value::Float8(_) => "float8 value",
        Value::Numeric(_) => "numeric value",
        Value::Text(_) => "text value",
        Value::Bytea(_) => "bytea value",
        Value::Date(_) => "date value",
        Value::Time(_) => "time value",
        Value::Timestamp(_) => "timestamp value",
        Value::Timestamptz(_) => "timestamptz value",
        Value::Interval(_) => "interval value",
        Value::Uuid(_) => "uuid value",
        Value::Json(_) => "json value",
        Value::Oid(_) => "oid value",
    }
}

/// The payload of a fixed-width binary value, or 22P03 when its length is wrong.
fn fixed<const N: usize>(ty: Type, raw: &[u8]) -> PgResult<[u8; N]> {
    raw.try_into().map_err(|_| {
        bad_binary(format!(
            "incorrect binary data format: type {} needs {} bytes, got {}",
            ty.name(),
            N,
            raw.len()
        ))
    })
}

/// A slice of a length already checked, as an array.
fn array<const N: usize>(raw: &[u8]) -> PgResult<[u8; N]> {
    raw.try_into()
        .map_err(|_| PgError::internal("binary field split at a wrong length"))
}

/// 22P03, PostgreSQL's code for a malformed binary parameter.
fn bad_binary(message: impl Into<String>) -> PgError {
    PgError::new(SqlState::INVALID_BINARY_REPRESENTATION, message)
}

/// 22P02 `invalid input syntax for type {type_name}: "{input}"`.
fn bad_text(type_name: &str, input: &str) -> PgError {
    PgError::new(
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}: \"{input}\""),
    )
}

/// PostgreSQL's `isspace` in the C locale, which its input functions trim.
fn is_pg_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn trim_pg_space(s: &str) -> &str {
    s.trim_matches(is_pg_space)
}
