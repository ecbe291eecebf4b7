//! bool, the integers, oid and the floats.
//!
//! Integers parse like PostgreSQL 15's `pg_strtoint*`: optional surrounding
//! whitespace, one optional sign, decimal digits only; overflow is reported as
//! soon as the digits overflow (22003), anything else malformed is 22P02.
//! Floats print like PostgreSQL ≥ 12 with `extra_float_digits > 0` (its Ryu
//! port): the fewest digits strictly inside the float's rounding interval,
//! closest to the exact value, ties to even (see [`Shortest`]); fixed notation
//! while the decimal exponent is in `-4 ..` 15 (float8) or 6 (float4), else
//! `1.5e+100` with at least two exponent digits. Input is correctly rounded;
//! overflow and underflow to zero are 22003.

use super::{bad_text, trim_pg_space};
use crate::error::{PgError, PgResult, SqlState};

/// `boolin`: t/f/true/false/yes/no/on/off/1/0, any unique prefix of the words,
/// case-insensitive, surrounding whitespace ignored.
pub(super) fn parse_bool(s: &str) -> PgResult<bool> {
    let word = trim_pg_space(s).to_ascii_lowercase();
    let is_prefix = |full: &str, min_len: usize| {
        word.len() >= min_len && full.as_bytes().starts_with(word.as_bytes())
    };
    let parsed = match word.as_bytes().first() {
        Some(b't') if is_prefix("true", 1) => Some(true),
        Some(b'f') if is_prefix("false", 1) => Some(false),
        Some(b'y') if is_prefix("yes", 1) => Some(true),
        Some(b'n') if is_prefix("no", 1) => Some(false),
        // "o" alone is ambiguous between on and off.
        Some(b'o') if word == "on" => Some(true),
        Some(b'o') if is_prefix("off", 2) => Some(false),
        Some(b'1') if word.len() == 1 => Some(true),
        Some(b'0') if word.len() == 1 => Some(false),
        _ => None,
    };
    parsed.ok_or_else(|| bad_text("boolean", s))
}

pub(super) fn parse_int2(s: &str) -> PgResult<i16> {
    let v = parse_int(s, i16::MIN.into(), i16::MAX.into(), "smallint")?;
    i16::try_from(v).map_err(|_| out_of_range(s, "smallint"))
}

pub(super) fn parse_int4(s: &str) -> PgResult<i32> {
    let v = parse_int(s, i32::MIN.into(), i32::MAX.into(), "integer")?;
    i32::try_from(v).map_err(|_| out_of_range(s, "integer"))
}

pub(super) fn parse_int8(s: &str) -> PgResult<i64> {
    parse_int(s, i64::MIN, i64::MAX, "bigint")
}

/// `oidin`: like `strtoul`, so negative numbers down to `-2^31` wrap around.
pub(super) fn parse_oid(s: &str) -> PgResult<u32> {
    let v = parse_int(s, i32::MIN.into(), u32::MAX.into(), "oid")?;
    // Negative values wrap like C's unsigned conversion (-1 is 4294967295).
    Ok(v as u32)
}

/// Parses an integer in `[min, max]`. Overflow wins over trailing garbage, as in
/// PostgreSQL 15 (`"99999x"` is out of range for smallint, not a syntax error).
fn parse_int(s: &str, min: i64, max: i64, type_name: &str) -> PgResult<i64> {
    let t = s.trim_start_matches(super::is_pg_space);
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits_len == 0 {
        return Err(bad_text(type_name, s));
    }
    let mut magnitude: i128 = 0;
    for b in rest.bytes().take(digits_len) {
        magnitude = magnitude * 10 + i128::from(b - b'0');
        let value = if negative { -magnitude } else { magnitude };
        if value < i128::from(min) || value > i128::from(max) {
            return Err(out_of_range(s, type_name));
        }
    }
    if !trim_pg_space(&rest[digits_len..]).is_empty() {
        return Err(bad_text(type_name, s));
    }
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| out_of_range(s, type_name))
}

fn out_of_range(s: &str, type_name: &str) -> PgError {
    PgError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("value \"{s}\" is out of range for type {type_name}"),
    )
}

fn float_out_of_range(s: &str, type_name: &str) -> PgError {
    PgError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("\"{s}\" is out of range for type {type_name}"),
    )
}

/// The special spellings `float8in` accepts, case-insensitively.
fn parse_special(t: &str) -> Option<f64> {
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// True when the mantissa of a decimal literal has a non-zero digit: a literal
/// that does yet parses to zero underflowed.
fn has_nonzero_mantissa(t: &str) -> bool {
    t.bytes()
        .take_while(|b| !matches!(b, b'e' | b'E'))
        .any(|b| (b'1'..=b'9').contains(&b))
}

/// Rust's float grammar is a subset of `strtod`'s; words other than the special
/// ones are rejected here so that `"infinityx"` style input cannot slip through.
fn is_decimal_literal(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
}

pub(super) fn parse_f64(s: &str) -> PgResult<f64> {
    const NAME: &str = "double precision";
    let t = trim_pg_space(s);
    if let Some(v) = parse_special(t) {
        return Ok(v);
    }
    if !is_decimal_literal(t) {
        return Err(bad_text(NAME, s));
    }
    let v: f64 = t.parse().map_err(|_| bad_text(NAME, s))?;
    if v.is_infinite() || (v == 0.0 && has_nonzero_mantissa(t)) {
        return Err(float_out_of_range(s, NAME));
    }
    Ok(v)
}

pub(super) fn parse_f32(s: &str) -> PgResult<f32> {
    const NAME: &str = "real";
    let t = trim_pg_space(s);
    if let Some(v) = parse_special(t) {
        return Ok(v as f32);
    }
    if !is_decimal_literal(t) {
        return Err(bad_text(NAME, s));
    }
    // Parsed directly as f32: going through f64 would round twice.
    let v: f32 = t.parse().map_err(|_| bad_text(NAME, s))?;
    if v.is_infinite() || (v == 0.0 && has_nonzero_mantissa(t)) {
        return Err(float_out_of_range(s, NAME));
    }
    Ok(v)
}

/// float8out with extra_float_digits > 0.
pub(super) fn format_f64(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let bits = v.to_bits();
    let exact = Exact::new(
        bits & ((1 << 52) - 1),
        ((bits >> 52) & 0x7ff) as i32,
        52,
        1075,
    );
    let abs = v.abs();
    let shortest = Shortest {
        exact,
        max_digits: 17,
        round_trips: &|s: &str| s.parse::<f64>().is_ok_and(|p| p.to_bits() == abs.to_bits()),
        rounded: &|digits: usize| format!("{:.*e}", digits - 1, abs),
    };
    layout(
        v.is_sign_negative(),
        shortest.digits(&format!("{abs:e}")),
        15,
    )
}

/// float4out with extra_float_digits > 0.
pub(super) fn format_f32(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let bits = v.to_bits();
    let exact = Exact::new(
        u64::from(bits & ((1 << 23) - 1)),
        ((bits >> 23) & 0xff) as i32,
        23,
        150,
    );
    let abs = v.abs();
    let shortest = Shortest {
        exact,
        max_digits: 9,
        round_trips: &|s: &str| s.parse::<f32>().is_ok_and(|p| p.to_bits() == abs.to_bits()),
        rounded: &|digits: usize| format!("{:.*e}", digits - 1, abs),
    };
    layout(
        v.is_sign_negative(),
        shortest.digits(&format!("{abs:e}")),
        6,
    )
}

/// A float's exact value and the two ends of the interval of reals that read
/// back as it, each as `m · 2^e`.
struct Exact {
    value: (u64, i32),
    low: (u64, i32),
    high: (u64, i32),
}

impl Exact {
    /// From the IEEE fields; `bias` is the exponent bias plus the mantissa width.
    fn new(fraction: u64, biased: i32, mantissa_bits: u32, bias: i32) -> Exact {
        let (m, e) = if biased == 0 {
            (fraction, 1 - bias)
        } else {
            (fraction | (1 << mantissa_bits), biased - bias)
        };
        // Just above a power of two the gap below is half the gap above.
        let low = if fraction == 0 && biased > 1 {
            ((4 * m).saturating_sub(1), e - 2)
        } else {
            ((2 * m).saturating_sub(1), e - 1)
        };
        Exact {
            value: (m, e),
            low,
            high: (2 * m + 1, e - 1),
        }
    }
}

/// PostgreSQL's float output: Ryu built without `STRICTLY_SHORTEST`, i.e. the
/// fewest digits strictly inside the rounding interval (a decimal exactly on
/// its edge is refused even though a round-half-even reader would accept it),
/// the closest such to the exact value, ties to the even digit.
///
/// Rust's `{:e}` gives the fewest digits in the closed interval, closest, ties
/// up. The two differ only on the edges and on ties, which are detected exactly
/// with integer arithmetic and resolved as Ryu does.
struct Shortest<'a> {
    exact: Exact,
    max_digits: usize,
    round_trips: &'a dyn Fn(&str) -> bool,
    /// The value correctly rounded to this many significant digits, as `{:e}`.
    rounded: &'a dyn Fn(usize) -> String,
}

impl Shortest<'_> {
    /// `d · 10^k` is exactly an end of the float's rounding interval.
    fn on_edge(&self, d: u64, k: i32) -> bool {
        is_exact_decimal(self.exact.low, d, k) || is_exact_decimal(self.exact.high, d, k)
    }

    /// `d · 10^k` reads back as the float and is not an edge of its interval.
    fn inside(&self, d: u64, k: i32) -> bool {
        d > 0 && !self.on_edge(d, k) && (self.round_trips)(&format!("{d}e{k}"))
    }

    /// Digits and decimal exponent (of the first digit) of the output, given
    /// Rust's shortest form of the absolute value.
    fn digits(&self, rust_shortest: &str) -> (String, i32) {
        let Some((mut d, mut k)) = split_sci(rust_shortest) else {
            return ("0".into(), 0);
        };
        if d == 0 {
            return ("0".into(), 0);
        }
        // Rust's digits read back by construction; only an edge disqualifies them.
        if self.on_edge(d, k) {
            // On an edge: find the fewest digits strictly inside.
            let found = (decimal_len(d) + 1..=self.max_digits).find_map(|n| {
                let (r, kr) = split_sci(&(self.rounded)(n))?;
                [r, r.saturating_sub(1), r + 1]
                    .into_iter()
                    .find(|&c| self.inside(c, kr))
                    .map(|c| (c, kr))
            });
            if let Some(better) = found {
                (d, k) = better;
            }
        }
        // A tie between d and its neighbour goes to the even one.
        if d % 2 == 1 {
            let neighbour = if is_exact_decimal(self.exact.value, 10 * d - 5, k - 1) {
                Some(d - 1)
            } else if is_exact_decimal(self.exact.value, 10 * d + 5, k - 1) {
                Some(d + 1)
            } else {
                None
            };
            if let Some(n) = neighbour.filter(|&n| self.inside(n, k)) {
                d = n;
            }
        }
        while d % 10 == 0 {
            d /= 10;
            k += 1;
        }
        let text = d.to_string();
        let exp = k + text.len() as i32 - 1;
        (text, exp)
    }
}

fn decimal_len(d: u64) -> usize {
    d.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// `1.2345e-7` as (12345, -11): the digits as an integer and the power of ten
/// of the last digit.
fn split_sci(sci: &str) -> Option<(u64, i32)> {
    let (mantissa, exp) = sci.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let d: u64 = digits.parse().ok()?;
    Some((d, exp - (digits.len() as i32 - 1)))
}

/// Lays out digits with the decimal exponent of the first one as PostgreSQL
/// does: fixed notation for exponents in `-4..fixed_max`, else `d.ddde±XX`.
fn layout(negative: bool, (digits, exp): (String, i32), fixed_max: i32) -> String {
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if digits == "0" {
        out.push('0');
    } else if (-4..fixed_max).contains(&exp) {
        push_fixed(&mut out, &digits, exp);
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// Whether `m · 2^e` equals `d · 10^k` exactly (d > 0), with integer
/// arithmetic only: both sides are reduced to odd parts and powers of 2 and 5.
fn is_exact_decimal((m, e): (u64, i32), d: u64, k: i32) -> bool {
    if m == 0 || d == 0 {
        return m == d;
    }
    let (mut m, mut e) = (m, e);
    while m % 2 == 0 {
        m /= 2;
        e += 1;
    }
    let (mut d, mut twos, mut fives) = (d, 0, 0);
    while d % 2 == 0 {
        d /= 2;
        twos += 1;
    }
    while d % 5 == 0 {
        d /= 5;
        fives += 1;
    }
    // Now d·2^(k+twos)·5^(k+fives) against m·2^e, with m and d odd, d coprime to 5.
    let five_power = k + fives;
    if five_power < 0 || e != k + twos {
        return false;
    }
    let mut rhs = u128::from(d);
    for _ in 0..five_power {
        rhs *= 5;
        if rhs > u128::from(m) {
            return false;
        }
    }
    rhs == u128::from(m)
}

/// `digits` × 10^(exp - len + 1) in fixed notation; `exp` is in -4..15.
fn push_fixed(out: &mut String, digits: &str, exp: i32) {
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
        return;
    }
    // exp >= 0: the point goes after exp + 1 digits.
    let int_len = exp.unsigned_abs() as usize + 1;
    if digits.len() <= int_len {
        out.push_str(digits);
        for _ in digits.len()..int_len {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..int_len]);
        out.push('.');
        out.push_str(&digits[int_len..]);
    }
}
