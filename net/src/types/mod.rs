//! SQL types as the wire sees them: PostgreSQL type OIDs, the in-memory
//! [`Value`] every layer passes around, and its text and binary codecs.
//!
//! Value representations follow PostgreSQL's own binary format so that the binary
//! codecs are copies, not conversions: dates are days since 2000-01-01, timestamps
//! are microseconds since 2000-01-01 00:00:00 (UTC for `timestamptz`), intervals
//! are (months, days, microseconds).

mod codec;

pub use codec::{decode_binary, decode_text, encode_binary, encode_text};
pub use rust_decimal::Decimal;

/// PostgreSQL type OIDs (`pg_type.oid`) of the types TellerDB speaks.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// A SQL data type. Character types share one [`Value::Text`] representation;
/// the type only changes how a value is described and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Varchar,
    Bpchar,
    Name,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Interval,
    Uuid,
    Json,
    Jsonb,
    Oid,
    /// The type of an untyped literal or parameter not yet resolved.
    Unknown,
}

impl Type {
    pub const ALL: [Type; 22] = [
        Type::Bool,
        Type::Int2,
        Type::Int4,
        Type::Int8,
        Type::Float4,
        Type::Float8,
        Type::Numeric,
        Type::Text,
        Type::Varchar,
        Type::Bpchar,
        Type::Name,
        Type::Bytea,
        Type::Date,
        Type::Time,
        Type::Timestamp,
        Type::Timestamptz,
        Type::Interval,
        Type::Uuid,
        Type::Json,
        Type::Jsonb,
        Type::Oid,
        Type::Unknown,
    ];

    pub fn oid(self) -> u32 {
        match self {
            Type::Bool => oid::BOOL,
            Type::Int2 => oid::INT2,
            Type::Int4 => oid::INT4,
            Type::Int8 => oid::INT8,
            Type::Float4 => oid::FLOAT4,
            Type::Float8 => oid::FLOAT8,
            Type::Numeric => oid::NUMERIC,
            Type::Text => oid::TEXT,
            Type::Varchar => oid::VARCHAR,
            Type::Bpchar => oid::BPCHAR,
            Type::Name => oid::NAME,
            Type::Bytea => oid::BYTEA,
            Type::Date => oid::DATE,
            Type::Time => oid::TIME,
            Type::Timestamp => oid::TIMESTAMP,
            Type::Timestamptz => oid::TIMESTAMPTZ,
            Type::Interval => oid::INTERVAL,
            Type::Uuid => oid::UUID,
            Type::Json => oid::JSON,
            Type::Jsonb => oid::JSONB,
            Type::Oid => oid::OID,
            Type::Unknown => oid::UNKNOWN,
        }
    }

    pub fn from_oid(oid: u32) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.oid() == oid)
    }

    /// The `pg_type.typname` of this type.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int2 => "int2",
            Type::Int4 => "int4",
            Type::Int8 => "int8",
            Type::Float4 => "float4",
            Type::Float8 => "float8",
            Type::Numeric => "numeric",
            Type::Text => "text",
            Type::Varchar => "varchar",
            Type::Bpchar => "bpchar",
            Type::Name => "name",
            Type::Bytea => "bytea",
            Type::Date => "date",
            Type::Time => "time",
            Type::Timestamp => "timestamp",
            Type::Timestamptz => "timestamptz",
            Type::Interval => "interval",
            Type::Uuid => "uuid",
            Type::Json => "json",
            Type::Jsonb => "jsonb",
            Type::Oid => "oid",
            Type::Unknown => "unknown",
        }
    }

    /// `pg_type.typlen`: the fixed size in bytes, or -1 for variable length
    /// (-2 for `unknown`, a C string).
    pub fn size(self) -> i16 {
        match self {
            Type::Bool => 1,
            Type::Int2 => 2,
            Type::Int4 | Type::Float4 | Type::Date | Type::Oid => 4,
            Type::Int8 | Type::Float8 | Type::Time | Type::Timestamp | Type::Timestamptz => 8,
            Type::Interval | Type::Uuid => 16,
            Type::Name => 64,
            Type::Unknown => -2,
            Type::Numeric
            | Type::Text
            | Type::Varchar
            | Type::Bpchar
            | Type::Bytea
            | Type::Json
            | Type::Jsonb => -1,
        }
    }
}

/// A time span as PostgreSQL stores it: months and days are kept apart from
/// the clock part because their length in microseconds depends on the calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

/// One SQL value. `Null` is typeless; a column's type travels beside its values.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(Decimal),
    /// TEXT, VARCHAR, CHAR(n) (blank-padded on input) and NAME.
    Text(String),
    Bytea(Vec<u8>),
    /// Days since 2000-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 2000-01-01 00:00:00, no time zone.
    Timestamp(i64),
    /// Microseconds since 2000-01-01 00:00:00 UTC.
    Timestamptz(i64),
    Interval(Interval),
    Uuid([u8; 16]),
    /// JSON and JSONB: the document as (normalised, for JSONB) text.
    Json(String),
    Oid(u32),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type this value is represented as. Character types share one
    /// representation, so all of them report `Text`; JSON reports `Jsonb`;
    /// `Null` reports `Text` (it has no type of its own).
    pub fn natural_type(&self) -> Type {
        match self {
            Value::Null | Value::Text(_) => Type::Text,
            Value::Bool(_) => Type::Bool,
            Value::Int2(_) => Type::Int2,
            Value::Int4(_) => Type::Int4,
            Value::Int8(_) => Type::Int8,
            Value::Float4(_) => Type::Float4,
            Value::Float8(_) => Type::Float8,
            Value::Numeric(_) => Type::Numeric,
            Value::Bytea(_) => Type::Bytea,
            Value::Date(_) => Type::Date,
            Value::Time(_) => Type::Time,
            Value::Timestamp(_) => Type::Timestamp,
            Value::Timestamptz(_) => Type::Timestamptz,
            Value::Interval(_) => Type::Interval,
            Value::Uuid(_) => Type::Uuid,
            Value::Json(_) => Type::Jsonb,
            Value::Oid(_) => Type::Oid,
        }
    }
}
