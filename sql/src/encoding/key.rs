//! Order-preserving ("memcomparable") key encoding.
//!
//! A key is `/table_id/index_id/<column>...`: the table and index ids as
//! ordered unsigned varints, then each key column encoded so that comparing
//! the encoded bytes with `memcmp` gives the SQL order of the values. A
//! primary index key holds the primary key columns; a secondary index key
//! holds the index columns and then the primary key columns.
//!
//! # Column format
//!
//! Every column starts with one **marker byte**: a NULL marker, or a type tag
//! (so a key can be pretty-printed without a schema) followed by the payload.
//!
//! | marker | meaning |
//! |---|---|
//! | `0x00` | NULL, column is `NULLS FIRST` (sorts below every tag) |
//! | `0xFF` | NULL, column is `NULLS LAST` (sorts above every tag) |
//! | `0x10..=0x1D` | non-NULL, `ASC`: the tags below |
//! | `0x50..=0x5D` | non-NULL, `DESC`: tag + `0x40`; every payload byte is inverted (`!b`) |
//!
//! | tag | types | payload (ASC) |
//! |---|---|---|
//! | `0x10` | bool | `0x00` false, `0x01` true |
//! | `0x11` | int2, int4, int8 | ordered signed varint (below) |
//! | `0x12` | float4 | 4 bytes: the IEEE bits, sign bit flipped for positives, all bits flipped for negatives; `-0` is `+0`; NaN is `FF FF FF FF` |
//! | `0x13` | float8 | the same with 8 bytes |
//! | `0x14` | numeric | `0x02` zero; `0x03 E d... 0x00` positive; `0x01 !E !d... 0xFF` negative (below) |
//! | `0x15` | text, varchar, name, bpchar | the UTF-8 bytes, `0x00` escaped as `00 FF`, terminated by `00 01` |
//! | `0x16` | bytea | the same escaping as text |
//! | `0x17` | date | ordered signed varint of days since 2000-01-01 |
//! | `0x18` | time | ordered signed varint of microseconds since midnight |
//! | `0x19` / `0x1A` | timestamp / timestamptz | ordered signed varint of microseconds since 2000-01-01 |
//! | `0x1B` | interval | 16 bytes: `((months * 30 + days) * 86_400_000_000 + micros)` as i128, big-endian, sign bit flipped |
//! | `0x1C` | uuid | the 16 bytes |
//! | `0x1D` | oid | ordered signed varint |
//!
//! **Ordered signed varint.** `v >= 0`: header `0x80 + n`, then the `n`
//! low bytes of `v` big-endian, `n` minimal (0 for zero). `v < 0`: header
//! `0x7F - n`, then the `n` low bytes of `v`, `n` minimal for `!v`. A longer
//! positive is larger and a longer negative is smaller, so the header orders
//! magnitudes and the bytes order values of one length.
//!
//! **Ordered unsigned varint** (table and index ids): `v <= 0xF7` is the one
//! byte `v`; otherwise header `0xF7 + n` (`n` in 1..=8, minimal) then `n`
//! bytes big-endian.
//!
//! **Numeric.** A non-zero decimal is written `0.d1 d2 d3... × 10^E` with `d1`
//! non-zero and trailing zeros dropped. `E` is one byte `E + 128` (rust_decimal
//! keeps `E` within -27..=29); digits go in pairs as bytes `10 * a + b + 1`
//! (1..=100, an odd count padded with a zero digit), then the terminator
//! `0x00`. For a positive number a larger exponent is larger, and for equal
//! exponents the digit strings compare as fractions; the terminator is below
//! every digit pair, so `0.12 < 0.123`. A negative number is the complement of
//! its absolute value's bytes, which reverses that order.
//!
//! # Why the order holds
//!
//! Each column's encoding is prefix-free (fixed width, length in a header, or
//! an escaped terminator), so two different values first differ at a byte
//! both encodings have, and that byte decides as the value order says.
//! Inverting the bytes of a prefix-free encoding reverses the order, which
//! gives `DESC`. A column's marker is the same byte for every non-NULL value
//! of that column, and the NULL markers sit below or above it. A composite key
//! is the concatenation, so keys compare column by column, and a key that is a
//! prefix of another (fewer columns) sorts before all its extensions, which is
//! what a prefix scan needs: its span is `[prefix, prefix_successor(prefix))`.
//!
//! # Canonical forms
//!
//! Values that SQL calls equal encode to the same bytes, because a unique
//! index compares encoded keys: `1.5` and `1.50`, `-0.0` and `0.0`, all NaNs,
//! `'1 mon'` and `'30 days'`, `'a'` and `'a  '` as `bpchar`. Decoding returns
//! the canonical member (numeric without trailing zeros, `+0.0`, the interval
//! split as in [`canonical_interval`], bpchar without trailing blanks).
//! [`key_is_lossy`] tells when a value differs from its canonical form; the
//! table layer then keeps the exact value in the row as well.
//!
//! Text compares bytewise, which is PostgreSQL's `C` collation.

use bytes::BytesMut;
use rust_decimal::Decimal;
use teller_net::types::{encode_text, Interval, Type, Value};
use teller_net::{PgError, PgResult};

use super::{corrupt, take, take_array, take_byte};

/// Sort direction of a key column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

/// Where NULLs sort in a key column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nulls {
    First,
    Last,
}

/// How one column of a key is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyColumn {
    pub ty: Type,
    pub direction: Direction,
    pub nulls: Nulls,
}

impl KeyColumn {
    /// A column with PostgreSQL's NULL placement for its direction when
    /// `nulls` is `None`: `NULLS LAST` for `ASC`, `NULLS FIRST` for `DESC`.
    pub fn new(ty: Type, direction: Direction, nulls: Option<Nulls>) -> KeyColumn {
        let nulls = nulls.unwrap_or(match direction {
            Direction::Asc => Nulls::Last,
            Direction::Desc => Nulls::First,
        });
        KeyColumn {
            ty,
            direction,
            nulls,
        }
    }

    /// `ty ASC NULLS LAST`.
    pub fn asc(ty: Type) -> KeyColumn {
        KeyColumn::new(ty, Direction::Asc, None)
    }

    /// `ty DESC NULLS FIRST`.
    pub fn desc(ty: Type) -> KeyColumn {
        KeyColumn::new(ty, Direction::Desc, None)
    }
}

/// Marker of a NULL in a `NULLS FIRST` column.
pub const NULL_FIRST: u8 = 0x00;
/// Marker of a NULL in a `NULLS LAST` column.
pub const NULL_LAST: u8 = 0xFF;
/// Added to a type tag for a `DESC` column.
const DESC_OFFSET: u8 = 0x40;

mod tag {
    pub const BOOL: u8 = 0x10;
    pub const INT: u8 = 0x11;
    pub const FLOAT4: u8 = 0x12;
    pub const FLOAT8: u8 = 0x13;
    pub const NUMERIC: u8 = 0x14;
    pub const TEXT: u8 = 0x15;
    pub const BYTEA: u8 = 0x16;
    pub const DATE: u8 = 0x17;
    pub const TIME: u8 = 0x18;
    pub const TIMESTAMP: u8 = 0x19;
    pub const TIMESTAMPTZ: u8 = 0x1A;
    pub const INTERVAL: u8 = 0x1B;
    pub const UUID: u8 = 0x1C;
    pub const OID: u8 = 0x1D;
    pub const LAST: u8 = OID;
}

const _: () = assert!(tag::LAST + DESC_OFFSET < NULL_LAST && tag::BOOL > NULL_FIRST);
const _: () = assert!(tag::LAST < tag::BOOL + DESC_OFFSET);

const NUMERIC_NEGATIVE: u8 = 0x01;
const NUMERIC_ZERO: u8 = 0x02;
const NUMERIC_POSITIVE: u8 = 0x03;
/// Most digit pairs a rust_decimal needs (29 digits, padded to 30).
const NUMERIC_PAIRS_MAX: usize = 15;
/// rust_decimal's largest scale.
const NUMERIC_SCALE_MAX: u32 = 28;

const USECS_PER_DAY: i128 = 86_400_000_000;
const TIME_MAX: i64 = 86_400_000_000;

fn type_tag(ty: Type) -> PgResult<u8> {
    Ok(match ty {
        Type::Bool => tag::BOOL,
        Type::Int2 | Type::Int4 | Type::Int8 => tag::INT,
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
        Type::Oid => tag::OID,
        Type::Json | Type::Jsonb | Type::Unknown => {
            return Err(PgError::unsupported(format!(
                "type {} cannot be part of an index key",
                ty.name()
            )))
        }
    })
}

/// The type a tag decodes as when no schema is at hand (pretty-printing).
fn tag_type(tag: u8) -> Option<Type> {
    Some(match tag {
        tag::BOOL => Type::Bool,
        tag::INT => Type::Int8,
        tag::FLOAT4 => Type::Float4,
        tag::FLOAT8 => Type::Float8,
        tag::NUMERIC => Type::Numeric,
        tag::TEXT => Type::Text,
        tag::BYTEA => Type::Bytea,
        tag::DATE => Type::Date,
        tag::TIME => Type::Time,
        tag::TIMESTAMP => Type::Timestamp,
        tag::TIMESTAMPTZ => Type::Timestamptz,
        tag::INTERVAL => Type::Interval,
        tag::UUID => Type::Uuid,
        tag::OID => Type::Oid,
        _ => return None,
    })
}

/// Whether columns of type `ty` can be part of a key.
pub fn is_key_type(ty: Type) -> bool {
    type_tag(ty).is_ok()
}

// ---------------------------------------------------------------------------
// Encoding

/// Appends the key encoding of `value` as a column described by `col`.
///
/// On error `out` is left as it was.
pub fn encode_value(out: &mut Vec<u8>, value: &Value, col: KeyColumn) -> PgResult<()> {
    let tag = type_tag(col.ty)?;
    if value.is_null() {
        out.push(match col.nulls {
            Nulls::First => NULL_FIRST,
            Nulls::Last => NULL_LAST,
        });
        return Ok(());
    }
    let start = out.len();
    out.push(match col.direction {
        Direction::Asc => tag,
        Direction::Desc => tag + DESC_OFFSET,
    });
    if let Err(e) = encode_payload(out, value, col.ty) {
        out.truncate(start);
        return Err(e);
    }
    if col.direction == Direction::Desc {
        for b in &mut out[start + 1..] {
            *b = !*b;
        }
    }
    Ok(())
}

/// Appends the encoding of `values` as the columns `cols`, in order.
pub fn encode_key(out: &mut Vec<u8>, values: &[Value], cols: &[KeyColumn]) -> PgResult<()> {
    if values.len() != cols.len() {
        return Err(PgError::internal(format!(
            "key of {} columns given {} values",
            cols.len(),
            values.len()
        )));
    }
    let start = out.len();
    for (value, col) in values.iter().zip(cols) {
        if let Err(e) = encode_value(out, value, *col) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

fn encode_payload(out: &mut Vec<u8>, value: &Value, ty: Type) -> PgResult<()> {
    match (ty, value) {
        (Type::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        (Type::Int2, Value::Int2(v)) => put_int(out, (*v).into()),
        (Type::Int4, Value::Int4(v)) => put_int(out, (*v).into()),
        (Type::Int8, Value::Int8(v)) => put_int(out, *v),
        (Type::Oid, Value::Oid(v)) => put_int(out, (*v).into()),
        (Type::Float4, Value::Float4(f)) => out.extend_from_slice(&f32_key(*f).to_be_bytes()),
        (Type::Float8, Value::Float8(f)) => out.extend_from_slice(&f64_key(*f).to_be_bytes()),
        (Type::Numeric, Value::Numeric(d)) => put_numeric(out, d),
        (Type::Bpchar, Value::Text(s)) => put_escaped(out, s.trim_end_matches(' ').as_bytes()),
        (Type::Text | Type::Varchar | Type::Name, Value::Text(s)) => put_escaped(out, s.as_bytes()),
        (Type::Bytea, Value::Bytea(b)) => put_escaped(out, b),
        (Type::Date, Value::Date(d)) => put_int(out, (*d).into()),
        (Type::Time, Value::Time(t)) => put_int(out, *t),
        (Type::Timestamp, Value::Timestamp(t)) | (Type::Timestamptz, Value::Timestamptz(t)) => {
            put_int(out, *t)
        }
        (Type::Interval, Value::Interval(iv)) => {
            let flipped = (interval_span(iv) as u128) ^ (1 << 127);
            out.extend_from_slice(&flipped.to_be_bytes());
        }
        (Type::Uuid, Value::Uuid(u)) => out.extend_from_slice(u),
        (ty, value) => {
            return Err(PgError::internal(format!(
                "key column of type {} given {value:?}",
                ty.name()
            )))
        }
    }
    Ok(())
}

/// Appends an ordered signed varint (see the module docs).
pub fn put_int(out: &mut Vec<u8>, v: i64) {
    let bytes = v.to_be_bytes();
    if v >= 0 {
        let skip = (v.leading_zeros() / 8) as usize;
        out.push(0x80 + (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    } else {
        let skip = ((!v).leading_zeros() / 8) as usize;
        out.push(0x7F - (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends an ordered unsigned varint (see the module docs).
pub fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    if v <= 0xF7 {
        out.push(v as u8);
    } else {
        let skip = (v.leading_zeros() / 8) as usize;
        out.push(0xF7 + (8 - skip) as u8);
        out.extend_from_slice(&v.to_be_bytes()[skip..]);
    }
}

fn f64_key(f: f64) -> u64 {
    if f.is_nan() {
        return u64::MAX;
    }
    // -0.0 == 0.0 in SQL: both take the bits of +0.0.
    let bits = if f == 0.0 { 0 } else { f.to_bits() };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn f32_key(f: f32) -> u32 {
    if f.is_nan() {
        return u32::MAX;
    }
    let bits = if f == 0.0 { 0 } else { f.to_bits() };
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

fn put_numeric(out: &mut Vec<u8>, d: &Decimal) {
    if d.is_zero() {
        out.push(NUMERIC_ZERO);
        return;
    }
    let digits = d.mantissa().unsigned_abs().to_string();
    // value = 0.<digits> × 10^exponent; rust_decimal bounds it to -27..=29.
    let exponent = digits.len() as i32 - d.scale() as i32;
    let digits = digits.trim_end_matches('0').as_bytes();
    let negative = d.is_sign_negative();
    let mask = if negative { 0xFF } else { 0x00 };
    out.push(if negative {
        NUMERIC_NEGATIVE
    } else {
        NUMERIC_POSITIVE
    });
    out.push((exponent + 128) as u8 ^ mask);
    for pair in digits.chunks(2) {
        let high = pair[0] - b'0';
        let low = pair.get(1).map_or(0, |c| c - b'0');
        out.push((high * 10 + low + 1) ^ mask);
    }
    out.push(mask);
}

fn put_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == 0 {
            out.extend_from_slice(&[0x00, 0xFF]);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// An interval as one number, the way PostgreSQL compares intervals: 30-day
/// months and 24-hour days.
pub fn interval_span(iv: &Interval) -> i128 {
    (i128::from(iv.months) * 30 + i128::from(iv.days)) * USECS_PER_DAY + i128::from(iv.micros)
}

/// The canonical interval with the span `span`: whole 30-day months, then
/// whole days, then microseconds (each of days and micros non-negative unless
/// a field had to absorb what did not fit in the one before). `None` when no
/// interval has that span.
pub fn canonical_interval(span: i128) -> Option<Interval> {
    let total_days = span.div_euclid(USECS_PER_DAY);
    let months = clamp_i32(total_days.div_euclid(30));
    let rest = span - i128::from(months) * 30 * USECS_PER_DAY;
    let days = clamp_i32(rest.div_euclid(USECS_PER_DAY));
    let micros = i64::try_from(rest - i128::from(days) * USECS_PER_DAY).ok()?;
    Some(Interval {
        months,
        days,
        micros,
    })
}

fn clamp_i32(v: i128) -> i32 {
    v.clamp(i32::MIN.into(), i32::MAX.into()) as i32
}

/// Whether the key encoding of `value` (of type `ty`) drops information:
/// decoding it gives a value SQL calls equal but that is not the same value
/// (`1.50` → `1.5`, `-0.0` → `0.0`, `'1 day 24:00'` → `'2 days'`). The table
/// layer keeps such values in the row as well as in the key.
pub fn key_is_lossy(value: &Value, ty: Type) -> bool {
    match value {
        Value::Float4(f) if f.is_nan() => f.to_bits() != f32::NAN.to_bits(),
        Value::Float8(f) if f.is_nan() => f.to_bits() != f64::NAN.to_bits(),
        Value::Float4(f) => *f == 0.0 && f.is_sign_negative(),
        Value::Float8(f) => *f == 0.0 && f.is_sign_negative(),
        Value::Numeric(d) => d.normalize().serialize() != d.serialize(),
        Value::Interval(iv) => canonical_interval(interval_span(iv)) != Some(*iv),
        Value::Text(s) => ty == Type::Bpchar && s.ends_with(' '),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Decoding

/// Decodes one column described by `col` off the front of `input`.
pub fn decode_value(input: &mut &[u8], col: KeyColumn) -> PgResult<Value> {
    let want = type_tag(col.ty)?;
    let marker = take_byte(input, "key column marker")?;
    let null = match col.nulls {
        Nulls::First => NULL_FIRST,
        Nulls::Last => NULL_LAST,
    };
    if marker == null {
        return Ok(Value::Null);
    }
    let (want, mask) = match col.direction {
        Direction::Asc => (want, 0x00),
        Direction::Desc => (want + DESC_OFFSET, 0xFF),
    };
    if marker != want {
        return Err(corrupt(format!(
            "key column marker {marker:#04x}, expected {want:#04x} or {null:#04x} for {} {:?}",
            col.ty.name(),
            col.direction
        )));
    }
    decode_payload(input, col.ty, mask)
}

/// Decodes the columns `cols`, in order, off the front of `input`.
pub fn decode_key(input: &mut &[u8], cols: &[KeyColumn]) -> PgResult<Vec<Value>> {
    cols.iter().map(|col| decode_value(input, *col)).collect()
}

fn decode_payload(input: &mut &[u8], ty: Type, mask: u8) -> PgResult<Value> {
    Ok(match ty {
        Type::Bool => match take_byte(input, "bool")? ^ mask {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(corrupt(format!("bool byte {b:#04x}"))),
        },
        Type::Int2 => Value::Int2(narrow(take_int(input, mask)?, "int2")?),
        Type::Int4 => Value::Int4(narrow(take_int(input, mask)?, "int4")?),
        Type::Int8 => Value::Int8(take_int(input, mask)?),
        Type::Oid => Value::Oid(narrow(take_int(input, mask)?, "oid")?),
        Type::Date => Value::Date(narrow(take_int(input, mask)?, "date")?),
        Type::Time => {
            let t = take_int(input, mask)?;
            if !(0..=TIME_MAX).contains(&t) {
                return Err(corrupt(format!("time {t} out of range")));
            }
            Value::Time(t)
        }
        Type::Timestamp => Value::Timestamp(take_int(input, mask)?),
        Type::Timestamptz => Value::Timestamptz(take_int(input, mask)?),
        Type::Float4 => {
            let k = u32::from_be_bytes(unmask(take_array(input, "float4")?, mask));
            let f = if k == u32::MAX {
                f32::NAN
            } else if k >> 31 == 1 {
                f32::from_bits(k ^ 1 << 31)
            } else {
                f32::from_bits(!k)
            };
            if f32_key(f) != k {
                return Err(corrupt(format!("float4 key {k:#010x} is not canonical")));
            }
            Value::Float4(f)
        }
        Type::Float8 => {
            let k = u64::from_be_bytes(unmask(take_array(input, "float8")?, mask));
            let f = if k == u64::MAX {
                f64::NAN
            } else if k >> 63 == 1 {
                f64::from_bits(k ^ 1 << 63)
            } else {
                f64::from_bits(!k)
            };
            if f64_key(f) != k {
                return Err(corrupt(format!("float8 key {k:#018x} is not canonical")));
            }
            Value::Float8(f)
        }
        Type::Numeric => Value::Numeric(take_numeric(input, mask)?),
        Type::Text | Type::Varchar | Type::Bpchar | Type::Name => {
            let bytes = take_escaped(input, mask)?;
            Value::Text(String::from_utf8(bytes).map_err(|_| corrupt("text is not UTF-8"))?)
        }
        Type::Bytea => Value::Bytea(take_escaped(input, mask)?),
        Type::Interval => {
            let flipped = u128::from_be_bytes(unmask(take_array(input, "interval")?, mask));
            let span = (flipped ^ 1 << 127) as i128;
            let iv = canonical_interval(span)
                .ok_or_else(|| corrupt(format!("interval span {span} out of range")))?;
            Value::Interval(iv)
        }
        Type::Uuid => Value::Uuid(unmask(take_array(input, "uuid")?, mask)),
        Type::Json | Type::Jsonb | Type::Unknown => {
            return Err(PgError::internal(format!(
                "no key encoding for {}",
                ty.name()
            )))
        }
    })
}

fn unmask<const N: usize>(mut bytes: [u8; N], mask: u8) -> [u8; N] {
    for b in &mut bytes {
        *b ^= mask;
    }
    bytes
}

fn narrow<T: TryFrom<i64>>(v: i64, what: &str) -> PgResult<T> {
    T::try_from(v).map_err(|_| corrupt(format!("{what} {v} out of range")))
}

/// Decodes an ordered signed varint; `mask` is `0xFF` for a `DESC` column.
pub fn take_int(input: &mut &[u8], mask: u8) -> PgResult<i64> {
    let header = take_byte(input, "int header")? ^ mask;
    let (negative, len) = match header {
        0x80..=0x88 => (false, usize::from(header - 0x80)),
        0x77..=0x7F => (true, usize::from(0x7F - header)),
        _ => return Err(corrupt(format!("int header {header:#04x}"))),
    };
    let bytes = take(input, len, "int")?;
    let mut v: u64 = if negative { u64::MAX } else { 0 };
    for (i, &b) in bytes.iter().enumerate() {
        let b = b ^ mask;
        if i == 0 && b == if negative { 0xFF } else { 0x00 } {
            return Err(corrupt("int is not minimally encoded"));
        }
        v = v << 8 | u64::from(b);
    }
    let v = v as i64;
    if (v < 0) != negative {
        return Err(corrupt("int sign does not match its header"));
    }
    Ok(v)
}

/// Decodes an ordered unsigned varint (ASC only).
pub fn take_uvarint(input: &mut &[u8]) -> PgResult<u64> {
    let header = take_byte(input, "uvarint header")?;
    if header <= 0xF7 {
        return Ok(header.into());
    }
    let len = usize::from(header - 0xF7);
    let bytes = take(input, len, "uvarint")?;
    let v = bytes.iter().fold(0u64, |v, &b| v << 8 | u64::from(b));
    if (len == 1 && v <= 0xF7) || (len > 1 && bytes[0] == 0) {
        return Err(corrupt("uvarint is not minimally encoded"));
    }
    Ok(v)
}

fn take_numeric(input: &mut &[u8], mask: u8) -> PgResult<Decimal> {
    let class = take_byte(input, "numeric class")? ^ mask;
    let negative = match class {
        NUMERIC_ZERO => return Ok(Decimal::ZERO),
        NUMERIC_POSITIVE => false,
        NUMERIC_NEGATIVE => true,
        c => return Err(corrupt(format!("numeric class {c:#04x}"))),
    };
    // Negative numbers are stored complemented: undo both masks at once.
    let mask = if negative { !mask } else { mask };
    let exponent = i32::from(take_byte(input, "numeric exponent")? ^ mask) - 128;
    let mut mantissa: u128 = 0;
    let mut digits: i32 = 0;
    for pairs in 0.. {
        let b = take_byte(input, "numeric digits")? ^ mask;
        if b == 0 {
            if pairs == 0 {
                return Err(corrupt("numeric without digits"));
            }
            break;
        }
        if b > 100 || pairs == NUMERIC_PAIRS_MAX {
            return Err(corrupt("numeric digits"));
        }
        if pairs == 0 && b <= 10 {
            return Err(corrupt("numeric with a leading zero digit"));
        }
        // Cannot overflow: at most 30 digits, and u128 holds 38.
        mantissa = mantissa * 100 + u128::from(b - 1);
        digits += 2;
    }
    // Drop the padding digit (and any zero digits a corrupt key may hold).
    // Terminates: the leading digit is not zero.
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        digits -= 1;
    }
    // value = 0.<digits> × 10^exponent = mantissa × 10^(exponent - digits)
    let mut scale = digits - exponent;
    while scale < 0 {
        mantissa = mantissa
            .checked_mul(10)
            .ok_or_else(|| corrupt("numeric out of range"))?;
        scale += 1;
    }
    if scale > NUMERIC_SCALE_MAX as i32 {
        return Err(corrupt(format!("numeric scale {scale}")));
    }
    let signed = i128::try_from(mantissa).map_err(|_| corrupt("numeric out of range"))?;
    let signed = if negative { -signed } else { signed };
    let d = Decimal::try_from_i128_with_scale(signed, scale as u32)
        .map_err(|_| corrupt("numeric out of range"))?;
    Ok(d.normalize())
}

fn take_escaped(input: &mut &[u8], mask: u8) -> PgResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let b = *input.get(i).ok_or_else(|| corrupt("unterminated string"))? ^ mask;
        if b != 0 {
            out.push(b);
            i += 1;
            continue;
        }
        let next = *input
            .get(i + 1)
            .ok_or_else(|| corrupt("unterminated string"))?
            ^ mask;
        i += 2;
        match next {
            0xFF => out.push(0),
            0x01 => break,
            b => return Err(corrupt(format!("string escape 00 {b:02x}"))),
        }
    }
    *input = &input[i..];
    Ok(out)
}

// ---------------------------------------------------------------------------
// Key layout

/// Appends `/table_id/index_id`.
pub fn put_index_prefix(out: &mut Vec<u8>, table_id: u64, index_id: u64) {
    put_uvarint(out, table_id);
    put_uvarint(out, index_id);
}

/// `/table_id/index_id`: the prefix of every key of one index.
pub fn index_prefix(table_id: u64, index_id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_index_prefix(&mut out, table_id, index_id);
    out
}

/// Decodes `/table_id/index_id` off the front of `input`.
pub fn take_index_prefix(input: &mut &[u8]) -> PgResult<(u64, u64)> {
    Ok((take_uvarint(input)?, take_uvarint(input)?))
}

/// The key `/table_id/index_id/<values as cols>`.
pub fn index_key(
    table_id: u64,
    index_id: u64,
    values: &[Value],
    cols: &[KeyColumn],
) -> PgResult<Vec<u8>> {
    let mut out = index_prefix(table_id, index_id);
    encode_key(&mut out, values, cols)?;
    Ok(out)
}

/// Decodes a whole key `/table_id/index_id/<cols>`; bytes left over are
/// corruption.
pub fn decode_index_key(key: &[u8], cols: &[KeyColumn]) -> PgResult<(u64, u64, Vec<Value>)> {
    let mut input = key;
    let (table_id, index_id) = take_index_prefix(&mut input)?;
    let values = decode_key(&mut input, cols)?;
    if !input.is_empty() {
        return Err(corrupt(format!(
            "{} bytes after the last key column",
            input.len()
        )));
    }
    Ok((table_id, index_id, values))
}

/// The smallest key greater than every key that starts with `prefix`: the
/// exclusive end of a prefix scan. `None` when there is none (the prefix is
/// empty or all `0xFF`): the scan then runs to the end of the keyspace.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut out = prefix[..=last].to_vec();
    out[last] += 1;
    Some(out)
}

/// A readable form of a key, for EXPLAIN and logs: `/Table/52/1/"abc"/42`.
/// Never fails: undecodable bytes are shown in hex.
pub fn pretty(key: &[u8]) -> String {
    let mut input = key;
    let mut out = String::new();
    match take_index_prefix(&mut input) {
        Ok((table, index)) => out.push_str(&format!("/Table/{table}/{index}")),
        Err(_) => {
            push_hex(&mut out, key);
            return out;
        }
    }
    while !input.is_empty() {
        let rest = input;
        match pretty_column(&mut input) {
            Ok(text) => {
                out.push('/');
                out.push_str(&text);
            }
            Err(_) => {
                push_hex(&mut out, rest);
                break;
            }
        }
    }
    out
}

fn pretty_column(input: &mut &[u8]) -> PgResult<String> {
    let marker = *input.first().ok_or_else(|| corrupt("empty"))?;
    if marker == NULL_FIRST || marker == NULL_LAST {
        *input = &input[1..];
        return Ok("NULL".into());
    }
    let (tag, direction) = if marker > DESC_OFFSET {
        (marker - DESC_OFFSET, Direction::Desc)
    } else {
        (marker, Direction::Asc)
    };
    let ty = tag_type(tag).ok_or_else(|| corrupt(format!("tag {marker:#04x}")))?;
    let value = decode_value(input, KeyColumn::new(ty, direction, None))?;
    Ok(match &value {
        Value::Text(s) => format!("{s:?}"),
        _ => {
            let mut text = BytesMut::new();
            encode_text(&value, ty, &mut text);
            let text = String::from_utf8_lossy(&text).into_owned();
            match value {
                Value::Bool(_) | Value::Int8(_) | Value::Oid(_) => text,
                Value::Float4(_) | Value::Float8(_) | Value::Numeric(_) => text,
                _ => format!("'{text}'"),
            }
        }
    })
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    out.push_str("/0x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
}

#[cfg(test)]
mod tests;
