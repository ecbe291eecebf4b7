//! `numeric` over [`rust_decimal::Decimal`] (a 96-bit mantissa and a decimal
//! scale of at most 28).
//!
//! Text keeps the scale (`1.50` stays `1.50`), as PostgreSQL's display scale does.
//! Binary is PostgreSQL's `numeric_send` layout: `ndigits: i16, weight: i16,
//! sign: u16 (0x0000 +, 0x4000 -, 0xC000 NaN, 0xD000 +Inf, 0xF000 -Inf), dscale:
//! u16`, then `ndigits` base-10000 digits (`i16`, 0..=9999), most significant
//! first. The value is `Σ digit[i] · 10000^(weight - i)`; leading and trailing
//! zero digits are never sent and zero is `ndigits = 0, weight = 0`.
//!
//! What `Decimal` cannot hold is an error, never a rounded value: NaN and
//! ±Infinity are 0A000; more than 28 significant fractional digits or a mantissa
//! beyond 96 bits is 22003. Trailing fractional zeros past 28 places are dropped
//! (the value is unchanged, only its display scale shrinks).

use bytes::{BufMut, BytesMut};
use rust_decimal::Decimal;

use super::{bad_binary, bad_text, trim_pg_space};
use crate::error::{PgError, PgResult};

/// The largest scale `Decimal` can represent.
const SCALE_MAX: u32 = 28;
/// The largest mantissa `Decimal` can represent: 2^96 - 1.
const MANTISSA_MAX: u128 = (1 << 96) - 1;
/// PostgreSQL's base for binary digits.
const NBASE: u128 = 10_000;
const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;
/// `NUMERIC_DSCALE_MASK`: the largest display scale PostgreSQL accepts.
const DSCALE_MASK: u16 = 0x3FFF;
/// Exponents beyond this cannot produce a representable non-zero value.
const EXPONENT_MAX: i64 = 1000;

pub(super) fn format(d: &Decimal) -> String {
    let mut d = *d;
    if d.is_zero() {
        // PostgreSQL has no negative zero.
        d.set_sign_positive(true);
    }
    d.to_string()
}

fn unsupported_special(what: &str) -> PgError {
    PgError::unsupported(format!("numeric {what} is not supported"))
}

fn overflow(detail: &str) -> PgError {
    PgError::new(
        crate::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
    .with_detail(detail.to_string())
}

/// `numeric_in`: `[+-]digits[.digits][e[+-]digits]`, surrounding whitespace.
pub(super) fn parse(s: &str) -> PgResult<Decimal> {
    let t = trim_pg_space(s);
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Err(unsupported_special("NaN")),
        "infinity" | "+infinity" | "-infinity" | "inf" | "+inf" | "-inf" => {
            return Err(unsupported_special("Infinity"))
        }
        _ => {}
    }
    let bytes = t.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut digits: Vec<u8> = Vec::new();
    let mut frac_digits: i64 = 0;
    let mut seen_point = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => {
                digits.push(b - b'0');
                if seen_point {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if digits.is_empty() {
        return Err(bad_text("numeric", s));
    }
    let mut exponent: i64 = 0;
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while let Some(b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
            exponent = (exponent * 10 + i64::from(b - b'0')).min(EXPONENT_MAX * 10);
            i += 1;
        }
        if i == start {
            return Err(bad_text("numeric", s));
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    if i != bytes.len() {
        return Err(bad_text("numeric", s));
    }
    let scale = (frac_digits - exponent).max(0);
    if exponent > frac_digits {
        if digits.iter().all(|&d| d == 0) {
            digits.truncate(1);
        } else if exponent > EXPONENT_MAX {
            return Err(overflow("exponent too large"));
        } else {
            // exponent - frac_digits ≤ EXPONENT_MAX here, so this is bounded.
            digits.extend(std::iter::repeat_n(0, (exponent - frac_digits) as usize));
        }
    }
    // The digits now hold the value times 10^scale, with `scale` digits after the
    // point; if the exponent moved the point left past the digits, that is fine:
    // the mantissa is the same integer with a larger scale.
    make_decimal(negative, &digits, scale)
}

/// Builds `±digits · 10^-scale`, dropping trailing zeros past [`SCALE_MAX`].
fn make_decimal(negative: bool, digits: &[u8], scale: i64) -> PgResult<Decimal> {
    let mut digits = digits;
    let mut scale = scale;
    while scale > i64::from(SCALE_MAX) && digits.last() == Some(&0) {
        digits = &digits[..digits.len() - 1];
        scale -= 1;
    }
    let first_nonzero = digits.iter().position(|&d| d != 0);
    let Some(first_nonzero) = first_nonzero else {
        return Ok(Decimal::new(0, scale.min(i64::from(SCALE_MAX)) as u32));
    };
    if scale > i64::from(SCALE_MAX) {
        return Err(overflow(
            "TellerDB keeps at most 28 significant digits after the decimal point",
        ));
    }
    let mut mantissa: u128 = 0;
    for &d in &digits[first_nonzero..] {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(d)))
            .filter(|&m| m <= MANTISSA_MAX)
            .ok_or_else(|| {
                overflow("TellerDB keeps at most 96 bits of numeric mantissa (28 digits)")
            })?;
    }
    from_parts(negative, mantissa, scale as u32)
}

fn from_parts(negative: bool, mantissa: u128, scale: u32) -> PgResult<Decimal> {
    let signed = i128::try_from(mantissa).map_err(|_| overflow("mantissa too large"))?;
    let signed = if negative { -signed } else { signed };
    Decimal::try_from_i128_with_scale(signed, scale)
        .map_err(|_| overflow("TellerDB keeps at most 96 bits of numeric mantissa (28 digits)"))
}

/// `numeric_send`.
pub(super) fn encode_binary(d: &Decimal, out: &mut BytesMut) {
    let scale = d.scale();
    let mut mantissa = d.mantissa().unsigned_abs();
    // Align the fraction to whole base-10000 digits.
    let pad = (4 - scale % 4) % 4;
    mantissa *= 10u128.pow(pad);
    let frac_groups = ((scale + pad) / 4) as i32;
    let mut groups: Vec<i16> = Vec::new();
    while mantissa > 0 {
        groups.push((mantissa % NBASE) as i16);
        mantissa /= NBASE;
    }
    groups.reverse();
    let weight = groups.len() as i32 - 1 - frac_groups;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (weight, sign) = if groups.is_empty() {
        (0, SIGN_POS)
    } else if d.is_sign_negative() {
        (weight, SIGN_NEG)
    } else {
        (weight, SIGN_POS)
    };
    // At most 10 groups for a 96-bit mantissa and |weight| ≤ 8: these fit in i16.
    out.put_i16(groups.len() as i16);
    out.put_i16(weight as i16);
    out.put_u16(sign);
    out.put_u16(scale as u16);
    for g in groups {
        out.put_i16(g);
    }
}

/// `numeric_recv`. Digits hidden by `dscale` are truncated away, as PostgreSQL does.
pub(super) fn decode_binary(raw: &[u8]) -> PgResult<Decimal> {
    let header = raw.get(..8).ok_or_else(|| {
        bad_binary(format!(
            "incorrect binary data format: numeric needs at least 8 bytes, got {}",
            raw.len()
        ))
    })?;
    let word = |i: usize| u16::from_be_bytes([header[2 * i], header[2 * i + 1]]);
    let ndigits = word(0) as i16;
    let weight = i32::from(word(1) as i16);
    let sign = word(2);
    let dscale = word(3);
    if ndigits < 0 || raw.len() != 8 + 2 * ndigits as usize {
        return Err(bad_binary(format!(
            "incorrect binary data format: numeric with {ndigits} digits cannot be {} bytes long",
            raw.len()
        )));
    }
    let negative = match sign {
        SIGN_POS => false,
        SIGN_NEG => true,
        SIGN_NAN => return Err(unsupported_special("NaN")),
        SIGN_PINF | SIGN_NINF => return Err(unsupported_special("Infinity")),
        _ => return Err(bad_binary("invalid sign in external \"numeric\" value")),
    };
    if dscale & DSCALE_MASK != dscale {
        return Err(bad_binary("invalid scale in external \"numeric\" value"));
    }
    let digits: Vec<u128> = raw[8..]
        .chunks_exact(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
        .map(|d| u128::try_from(d).ok().filter(|&d| d < NBASE))
        .collect::<Option<_>>()
        .ok_or_else(|| bad_binary("invalid digit in external \"numeric\" value"))?;
    // Digit i stands for 10000^(weight - i): its last decimal place is
    // 4 * (i - weight) places after the point. Digits wholly beyond dscale are
    // truncated; the others accumulate into an integer with 4 * (kept - 1 - weight)
    // places after the point.
    let dscale = i64::from(dscale);
    let kept = digits
        .iter()
        .enumerate()
        .take_while(|(i, _)| 4 * (*i as i64 - i64::from(weight) - 1) < dscale)
        .count();
    let too_big = || overflow("TellerDB keeps at most 96 bits of numeric mantissa (28 digits)");
    let mut mantissa: u128 = 0;
    for &d in &digits[..kept] {
        mantissa = mantissa
            .checked_mul(NBASE)
            .and_then(|m| m.checked_add(d))
            .ok_or_else(too_big)?;
    }
    let mut scale = 4 * (kept as i64 - 1 - i64::from(weight));
    if mantissa == 0 {
        return make_decimal(false, &[0], dscale);
    }
    // Bring the integer to exactly dscale places: truncate, or pad with zeros
    // (make_decimal drops padding past the 28 places Decimal can hold).
    while scale > dscale {
        mantissa /= 10;
        scale -= 1;
    }
    let mut text: Vec<u8> = mantissa.to_string().bytes().map(|b| b - b'0').collect();
    // scale ≥ 4 * (-1 - 32768) and dscale ≤ 16383: at most ~150k zeros.
    text.extend(std::iter::repeat_n(0, (dscale - scale) as usize));
    make_decimal(negative, &text, dscale)
}
