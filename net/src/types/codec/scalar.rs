//! bool, the integers, oid and the floats.
//!
//! Integers parse like PostgreSQL 15's `pg_strtoint*`: optional surrounding
//! whitespace, one optional sign, decimal digits only; overflow is reported as
//! soon as the digits overflow (22003), anything else malformed is 22P02.
//! Floats print the shortest decimal that reads back to the same bits (what
//! PostgreSQL ≥ 12 does with `extra_float_digits > 0`, via Ryu), in fixed notation
//! while the decimal exponent is in `-4 ..` 15 (float8) or 6 (float4), else as
//! `1.5e+100` with at least two exponent digits.

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
    let (fraction, biased) = (bits & ((1 << 52) - 1), ((bits >> 52) & 0x7ff) as i32);
    let binary = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    let round_trips = |s: &str| {
        s.parse::<f64>()
            .is_ok_and(|p| p.to_bits() == v.abs().to_bits())
    };
    format_shortest(&format!("{:e}", v), binary, round_trips, 15)
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
    let (fraction, biased) = (
        u64::from(bits & ((1 << 23) - 1)),
        ((bits >> 23) & 0xff) as i32,
    );
    let binary = if biased == 0 {
        (fraction, -149)
    } else {
        (fraction | (1 << 23), biased - 150)
    };
    let round_trips = |s: &str| {
        s.parse::<f32>()
            .is_ok_and(|p| p.to_bits() == v.abs().to_bits())
    };
    format_shortest(&format!("{:e}", v), binary, round_trips, 6)
}

/// Re-lays Rust's shortest scientific form (`-1.5e-7`, digits already minimal)
/// the way PostgreSQL's Ryu output does: fixed notation for decimal exponents
/// in `-4..fixed_max`, else `d.ddde±XX`.
///
/// Rust and Ryu both print the shortest digits that read back to the same
/// float, closest to its exact value; they differ only when the exact value lies
/// exactly halfway between two shortest candidates, where Ryu takes the even
/// one (281083.625f32 prints as `281083.62`) and Rust the upper one. `binary`
/// is the float's exact value as `m · 2^e`, used to detect that tie.
fn format_shortest(
    sci: &str,
    binary: (u64, i32),
    round_trips: impl Fn(&str) -> bool,
    fixed_max: i32,
) -> String {
    let (negative, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let (digits, exp) = break_tie_to_even(digits, exp, binary, round_trips);
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

/// If the float lies exactly halfway between `digits` (value `D · 10^k`) and
/// its odd/even neighbour `D ± 1`, returns the even one when it reads back to
/// the same float; otherwise the digits unchanged.
fn break_tie_to_even(
    digits: String,
    exp: i32,
    binary: (u64, i32),
    round_trips: impl Fn(&str) -> bool,
) -> (String, i32) {
    let Ok(d) = digits.parse::<u64>() else {
        return (digits, exp);
    };
    if d % 2 == 0 || binary.0 == 0 {
        return (digits, exp);
    }
    // D · 10^k with k = exp - (len - 1); the midpoints are (10·D ± 5) · 10^(k-1).
    let k = exp - (digits.len() as i32 - 1);
    let neighbour = if is_exact_decimal(binary, 10 * d - 5, k - 1) {
        d - 1
    } else if is_exact_decimal(binary, 10 * d + 5, k - 1) {
        d + 1
    } else {
        return (digits, exp);
    };
    // Keep the same scale: D ± 1 may gain or lose a digit, or end in zeros.
    let text = neighbour.to_string();
    let new_exp = k + text.len() as i32 - 1;
    let trimmed = text.trim_end_matches('0');
    let candidate = format!("{}e{}", trimmed, new_exp - (trimmed.len() as i32 - 1));
    if neighbour == 0 || !round_trips(&candidate) {
        return (digits, exp);
    }
    (trimmed.to_owned(), new_exp)
}

/// Whether `m · 2^e` equals `d · 10^k` exactly (m, d > 0), with integer
/// arithmetic only: both sides are reduced to odd parts and powers of 2 and 5.
fn is_exact_decimal((m, e): (u64, i32), d: u64, k: i32) -> bool {
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
