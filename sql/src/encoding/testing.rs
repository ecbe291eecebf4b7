//! Test support shared by the unit tests and `sql/tests/encoding_props.rs`
//! (which includes this file by path): a seeded PRNG, random SQL values biased
//! towards edge cases and ties, and PostgreSQL's comparison written out
//! independently of the encodings it checks.

#![allow(dead_code)]

use std::cmp::Ordering;

use rust_decimal::Decimal;
use teller_net::types::{Interval, Type, Value};

/// SplitMix64: small, seedable, good enough to drive property tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), with negligible bias for small `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            *b = self.next_u64() as u8;
        }
    }
}

/// Every type with a key encoding: all but JSON and unknown (the key
/// tests check this against `key::is_key_type`).
pub fn key_types() -> Vec<Type> {
    Type::ALL
        .into_iter()
        .filter(|t| !matches!(t, Type::Json | Type::Jsonb | Type::Unknown))
        .collect()
}

/// A random integer in `min..=max`, biased to small values and the extremes.
fn int(rng: &mut Rng, min: i64, max: i64) -> i64 {
    match rng.below(4) {
        0 => rng
            .pick(&[min, max, 0, -1, 1, min + 1, max - 1])
            .clamp(min, max),
        1 => (rng.below(7) as i64 - 3).clamp(min, max),
        2 => (rng.below(600) as i64 - 300).clamp(min, max),
        _ => {
            let span = (max as i128 - min as i128 + 1) as u128;
            let r = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) % span;
            (min as i128 + r as i128) as i64
        }
    }
}

fn float(rng: &mut Rng) -> f64 {
    match rng.below(4) {
        0 => rng.pick(&[
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            -5e-324,
            1.0,
            -1.0,
            0.5,
        ]),
        1 => rng.below(7) as f64 - 3.0,
        2 => (rng.below(2000) as f64 - 1000.0) / 8.0,
        _ => f64::from_bits(rng.next_u64()),
    }
}

fn numeric(rng: &mut Rng) -> Decimal {
    let bits = rng.pick(&[0u32, 4, 8, 20, 40, 64, 96]);
    let mut mantissa = if bits == 0 {
        0
    } else {
        (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) >> (128 - bits)
    };
    if rng.chance(3) {
        mantissa = rng.below(30) as u128;
    }
    let mut scale = rng.below(29) as u32;
    if rng.chance(2) {
        scale = rng.below(4) as u32;
    }
    // Ties across scales: 1.5 and 1.50.
    let extra = rng.below(4) as u32;
    if scale + extra <= 28 {
        if let Some(m) = mantissa.checked_mul(10u128.pow(extra)) {
            if m < 1 << 96 {
                mantissa = m;
                scale += extra;
            }
        }
    }
    let signed = mantissa as i128;
    let signed = if rng.chance(2) { -signed } else { signed };
    Decimal::from_i128_with_scale(signed, scale)
}

fn text(rng: &mut Rng) -> String {
    let len = rng.below(6);
    let mut s: String = (0..len)
        .map(|_| rng.pick(&['a', 'b', '\0', ' ', 'é', '\u{7f}', 'z', '\u{10FFFF}']))
        .collect();
    if rng.chance(4) {
        s.push_str("  ");
    }
    s
}

fn bytes(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(6);
    (0..len)
        .map(|_| rng.pick(&[0x00u8, 0x01, 0xFE, 0xFF, b'a']))
        .collect()
}

fn interval(rng: &mut Rng) -> Interval {
    let mut iv = Interval {
        months: int(rng, i32::MIN.into(), i32::MAX.into()) as i32,
        days: int(rng, i32::MIN.into(), i32::MAX.into()) as i32,
        micros: int(rng, i64::MIN, i64::MAX),
    };
    if rng.chance(3) {
        // Small and tied: '1 mon' = '30 days' = '720:00:00'.
        iv = Interval {
            months: rng.below(3) as i32 - 1,
            days: [0, 30, -30, 1][rng.below(4) as usize],
            micros: [0, 86_400_000_000, -86_400_000_000, 1][rng.below(4) as usize],
        };
    }
    iv
}

/// A random non-NULL value of `ty`.
pub fn value(rng: &mut Rng, ty: Type) -> Value {
    match ty {
        Type::Bool => Value::Bool(rng.chance(2)),
        Type::Int2 => Value::Int2(int(rng, i16::MIN.into(), i16::MAX.into()) as i16),
        Type::Int4 => Value::Int4(int(rng, i32::MIN.into(), i32::MAX.into()) as i32),
        Type::Int8 => Value::Int8(int(rng, i64::MIN, i64::MAX)),
        Type::Oid => Value::Oid(int(rng, 0, u32::MAX.into()) as u32),
        Type::Float4 => Value::Float4(if rng.chance(4) {
            f32::from_bits(rng.next_u64() as u32)
        } else {
            float(rng) as f32
        }),
        Type::Float8 => Value::Float8(float(rng)),
        Type::Numeric => Value::Numeric(numeric(rng)),
        Type::Text | Type::Varchar | Type::Bpchar | Type::Name => Value::Text(text(rng)),
        Type::Bytea => Value::Bytea(bytes(rng)),
        Type::Date => Value::Date(int(rng, i32::MIN.into(), i32::MAX.into()) as i32),
        Type::Time => Value::Time(int(rng, 0, 86_400_000_000)),
        Type::Timestamp => Value::Timestamp(int(rng, i64::MIN, i64::MAX)),
        Type::Timestamptz => Value::Timestamptz(int(rng, i64::MIN, i64::MAX)),
        Type::Interval => Value::Interval(interval(rng)),
        Type::Uuid => {
            let mut u = [0u8; 16];
            rng.fill(&mut u);
            if rng.chance(2) {
                u[rng.below(16) as usize..].fill(0);
            }
            Value::Uuid(u)
        }
        Type::Json | Type::Jsonb | Type::Unknown => Value::Json(text(rng)),
    }
}

/// A random value of `ty`, NULL one time in `null_one_in`.
pub fn nullable(rng: &mut Rng, ty: Type, null_one_in: u64) -> Value {
    if rng.chance(null_one_in) {
        Value::Null
    } else {
        value(rng, ty)
    }
}

/// Exact equality, NaN payloads, `-0.0` and numeric scale included.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float4(x), Value::Float4(y)) => x.to_bits() == y.to_bits(),
        (Value::Float8(x), Value::Float8(y)) => x.to_bits() == y.to_bits(),
        (Value::Numeric(x), Value::Numeric(y)) => x.serialize() == y.serialize(),
        _ => a == b,
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    // PostgreSQL: NaN equals NaN and sorts above everything; -0 = 0.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            if a < b {
                Ordering::Less
            } else if a > b {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
    }
}

fn interval_cmp(a: &Interval, b: &Interval) -> Ordering {
    let day = 86_400_000_000i128;
    let span = |iv: &Interval| {
        i128::from(iv.months) * 30 * day + i128::from(iv.days) * day + i128::from(iv.micros)
    };
    span(a).cmp(&span(b))
}

/// PostgreSQL's btree order of two non-NULL values of `ty` (C collation).
pub fn sql_compare(a: &Value, b: &Value, ty: Type) -> Ordering {
    use Value as V;
    match (a, b) {
        (V::Bool(a), V::Bool(b)) => a.cmp(b),
        (V::Int2(a), V::Int2(b)) => a.cmp(b),
        (V::Int4(a), V::Int4(b)) => a.cmp(b),
        (V::Int8(a), V::Int8(b)) => a.cmp(b),
        (V::Oid(a), V::Oid(b)) => a.cmp(b),
        (V::Float4(a), V::Float4(b)) => float_cmp(f64::from(*a), f64::from(*b)),
        (V::Float8(a), V::Float8(b)) => float_cmp(*a, *b),
        (V::Numeric(a), V::Numeric(b)) => a.cmp(b),
        (V::Text(a), V::Text(b)) if ty == Type::Bpchar => a
            .trim_end_matches(' ')
            .as_bytes()
            .cmp(b.trim_end_matches(' ').as_bytes()),
        (V::Text(a), V::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
        (V::Bytea(a), V::Bytea(b)) => a.cmp(b),
        (V::Date(a), V::Date(b)) => a.cmp(b),
        (V::Time(a), V::Time(b)) => a.cmp(b),
        (V::Timestamp(a), V::Timestamp(b)) => a.cmp(b),
        (V::Timestamptz(a), V::Timestamptz(b)) => a.cmp(b),
        (V::Interval(a), V::Interval(b)) => interval_cmp(a, b),
        (V::Uuid(a), V::Uuid(b)) => a.cmp(b),
        _ => panic!("sql_compare: {a:?} vs {b:?} as {}", ty.name()),
    }
}

/// The order of two values of one key column: NULL placement, then direction.
pub fn column_compare(a: &Value, b: &Value, ty: Type, desc: bool, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) if nulls_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if nulls_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if desc => sql_compare(a, b, ty).reverse(),
        (false, false) => sql_compare(a, b, ty),
    }
}
