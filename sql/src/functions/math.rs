//! Numeric functions over integers, `numeric` (exact decimals) and
//! `double precision`, with PostgreSQL's result scales and errors.
//!
//! Numeric result scales follow PostgreSQL's `numeric.c`: `sqrt` and `power`
//! aim at 16 significant digits (`NUMERIC_MIN_SIG_DIGITS`) but never fewer
//! decimals than their arguments show; `round`/`trunc` give the requested
//! scale. Values are rounded half away from zero, as PostgreSQL rounds
//! numerics; floats round half to even (`rint`).

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::{Func, INVALID_ARGUMENT_FOR_POWER};
use crate::expr::{division_by_zero, out_of_range};

/// PostgreSQL's `NUMERIC_MIN_SIG_DIGITS`: significant digits `sqrt` and
/// `power` aim for.
const NUMERIC_MIN_SIG_DIGITS: i64 = 16;
/// The largest scale a `Decimal` holds.
const DECIMAL_SCALE_MAX: u32 = 28;

pub(super) fn call(func: Func, v: &[Value]) -> PgResult<Value> {
    match (func, &v[0]) {
        (Func::Abs, x) => abs(x),
        (Func::Mod, _) => modulo(&v[0], &v[1]),
        (Func::Div, Value::Numeric(a)) => div(*a, numeric(&v[1])?),
        (_, Value::Numeric(d)) => numeric_call(func, *d, v),
        (_, x) => {
            let f = float(x)?;
            float_call(func, f, v).map(Value::Float8)
        }
    }
}

fn numeric(v: &Value) -> PgResult<Decimal> {
    match v {
        Value::Numeric(d) => Ok(*d),
        other => Err(PgError::internal(format!(
            "numeric expected, got {other:?}"
        ))),
    }
}

fn float(v: &Value) -> PgResult<f64> {
    match v {
        Value::Float8(f) => Ok(*f),
        Value::Float4(f) => Ok(f64::from(*f)),
        other => Err(PgError::internal(format!("float expected, got {other:?}"))),
    }
}

fn int(v: &Value) -> PgResult<i64> {
    match v {
        Value::Int2(n) => Ok(i64::from(*n)),
        Value::Int4(n) => Ok(i64::from(*n)),
        Value::Int8(n) => Ok(*n),
        other => Err(PgError::internal(format!(
            "integer expected, got {other:?}"
        ))),
    }
}

fn abs(x: &Value) -> PgResult<Value> {
    Ok(match x {
        Value::Int2(n) => Value::Int2(n.checked_abs().ok_or_else(|| out_of_range(Type::Int2))?),
        Value::Int4(n) => Value::Int4(n.checked_abs().ok_or_else(|| out_of_range(Type::Int4))?),
        Value::Int8(n) => Value::Int8(n.checked_abs().ok_or_else(|| out_of_range(Type::Int8))?),
        Value::Float4(f) => Value::Float4(f.abs()),
        Value::Float8(f) => Value::Float8(f.abs()),
        Value::Numeric(d) => Value::Numeric(d.abs()),
        other => return Err(PgError::internal(format!("abs of {other:?}"))),
    })
}

fn modulo(a: &Value, b: &Value) -> PgResult<Value> {
    if let (Value::Numeric(x), Value::Numeric(y)) = (a, b) {
        if y.is_zero() {
            return Err(division_by_zero());
        }
        return x
            .checked_rem(*y)
            .map(Value::Numeric)
            .ok_or_else(|| out_of_range(Type::Numeric));
    }
    let (x, y) = (int(a)?, int(b)?);
    if y == 0 {
        return Err(division_by_zero());
    }
    // i64::MIN % -1 overflows in Rust but is 0 in SQL.
    let r = x.checked_rem(y).unwrap_or(0);
    Ok(match a {
        Value::Int2(_) => Value::Int2(r as i16),
        Value::Int4(_) => Value::Int4(r as i32),
        _ => Value::Int8(r),
    })
}

fn div(a: Decimal, b: Decimal) -> PgResult<Value> {
    if b.is_zero() {
        return Err(division_by_zero());
    }
    let q = a
        .checked_div(b)
        .ok_or_else(|| out_of_range(Type::Numeric))?;
    Ok(Value::Numeric(normalize_zero(q.trunc())))
}

/// `-0` prints as `0` in PostgreSQL's numeric.
fn normalize_zero(d: Decimal) -> Decimal {
    if d.is_zero() {
        Decimal::new(0, d.scale())
    } else {
        d
    }
}

fn numeric_call(func: Func, d: Decimal, v: &[Value]) -> PgResult<Value> {
    let out = match func {
        Func::Round | Func::Trunc => {
            let scale = match v.get(1) {
                Some(s) => int(s)?,
                None => 0,
            };
            let strategy = if func == Func::Round {
                RoundingStrategy::MidpointAwayFromZero
            } else {
                RoundingStrategy::ToZero
            };
            round_to(d, scale, strategy)?
        }
        Func::Ceil => d.ceil(),
        Func::Floor => d.floor(),
        Func::Sign => Decimal::from(d.cmp(&Decimal::ZERO) as i8),
        Func::Sqrt => numeric_sqrt(d)?,
        Func::Power => numeric_power(d, numeric(&v[1])?)?,
        other => return Err(PgError::internal(format!("{other:?} on numeric"))),
    };
    Ok(Value::Numeric(normalize_zero(out)))
}

/// Rounds (or truncates) to `scale` decimals; a negative scale rounds to
/// tens, hundreds, ... The result shows exactly `max(scale, 0)` decimals.
fn round_to(d: Decimal, scale: i64, strategy: RoundingStrategy) -> PgResult<Decimal> {
    if scale >= 0 {
        let scale = scale.min(i64::from(DECIMAL_SCALE_MAX)) as u32;
        let mut r = d.round_dp_with_strategy(scale, strategy);
        r.rescale(scale);
        return Ok(r);
    }
    // Past 28 digits to the left of the point everything rounds to zero.
    let digits = (-scale).min(29) as u32;
    let Some(unit) = Decimal::from_i128_with_scale(1, 0).checked_mul(pow10(digits)) else {
        return Ok(Decimal::ZERO);
    };
    let q = d
        .checked_div(unit)
        .ok_or_else(|| out_of_range(Type::Numeric))?;
    q.round_dp_with_strategy(0, strategy)
        .checked_mul(unit)
        .map(|r| r.trunc())
        .ok_or_else(|| out_of_range(Type::Numeric))
}

fn pow10(n: u32) -> Decimal {
    let mut p = Decimal::ONE;
    for _ in 0..n {
        match p.checked_mul(Decimal::TEN) {
            Some(next) => p = next,
            None => return Decimal::MAX,
        }
    }
    p
}

/// The decimal exponent of the leading digit: floor(log10(|d|)); 0 for 0.
fn decimal_exponent(d: Decimal) -> i64 {
    if d.is_zero() {
        return 0;
    }
    let digits = d.mantissa().unsigned_abs().to_string().len() as i64;
    digits - 1 - i64::from(d.scale())
}

/// Rounds half away from zero to `rscale` decimals and shows that many.
fn to_scale(d: Decimal, rscale: i64) -> Decimal {
    let scale = rscale.clamp(0, i64::from(DECIMAL_SCALE_MAX)) as u32;
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    r
}

fn numeric_sqrt(d: Decimal) -> PgResult<Decimal> {
    if d.is_sign_negative() && !d.is_zero() {
        return Err(PgError::new(
            INVALID_ARGUMENT_FOR_POWER,
            "cannot take square root of a negative number",
        ));
    }
    // PostgreSQL's sqrt_var: the weight is in base-10000 digits.
    let weight = decimal_exponent(d).div_euclid(4);
    let sweight = (weight + 1) * 4 / 2 - 1;
    let rscale = (NUMERIC_MIN_SIG_DIGITS - sweight).max(i64::from(d.scale()));
    let root = d.sqrt().ok_or_else(|| out_of_range(Type::Numeric))?;
    Ok(to_scale(root, rscale))
}

fn numeric_power(base: Decimal, exp: Decimal) -> PgResult<Decimal> {
    if base.is_zero() && exp.is_sign_negative() && !exp.is_zero() {
        return Err(PgError::new(
            INVALID_ARGUMENT_FOR_POWER,
            "zero raised to a negative power is undefined",
        ));
    }
    let integral = exp.fract().is_zero();
    if base.is_sign_negative() && !base.is_zero() && !integral {
        return Err(PgError::new(
            INVALID_ARGUMENT_FOR_POWER,
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    if integral {
        if let Some(n) = exp.to_i64().filter(|n| i32::try_from(*n).is_ok()) {
            let rscale = NUMERIC_MIN_SIG_DIGITS.max(i64::from(base.scale()));
            let r = if n >= 0 {
                base.checked_powi(n)
            } else {
                base.checked_powi(-n)
                    .and_then(|p| Decimal::ONE.checked_div(p))
            };
            return r
                .map(|r| to_scale(r, rscale))
                .ok_or_else(|| out_of_range(Type::Numeric));
        }
    }
    // Estimated decimal weight of the result, as PostgreSQL's power_var does.
    let estimate = base.to_f64().unwrap_or(0.0).abs().log10() * exp.to_f64().unwrap_or(0.0);
    let rscale = (NUMERIC_MIN_SIG_DIGITS - estimate as i64)
        .max(i64::from(base.scale()))
        .max(i64::from(exp.scale()));
    base.checked_powd(exp)
        .map(|r| to_scale(r, rscale))
        .ok_or_else(|| out_of_range(Type::Numeric))
}

fn float_call(func: Func, f: f64, v: &[Value]) -> PgResult<f64> {
    Ok(match func {
        Func::Round => f.round_ties_even(),
        Func::Trunc => f.trunc(),
        Func::Ceil => f.ceil(),
        Func::Floor => f.floor(),
        Func::Sign => {
            if f > 0.0 {
                1.0
            } else if f < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Func::Sqrt => {
            if f < 0.0 {
                return Err(PgError::new(
                    INVALID_ARGUMENT_FOR_POWER,
                    "cannot take square root of a negative number",
                ));
            }
            f.sqrt()
        }
        Func::Power => float_power(f, float(&v[1])?)?,
        other => return Err(PgError::internal(format!("{other:?} on float"))),
    })
}

fn float_power(x: f64, y: f64) -> PgResult<f64> {
    if x == 0.0 && y < 0.0 {
        return Err(PgError::new(
            INVALID_ARGUMENT_FOR_POWER,
            "zero raised to a negative power is undefined",
        ));
    }
    if x < 0.0 && y.is_finite() && y.fract() != 0.0 {
        return Err(PgError::new(
            INVALID_ARGUMENT_FOR_POWER,
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    let r = x.powf(y);
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(PgError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow",
        ));
    }
    if r == 0.0 && x != 0.0 && x.is_finite() && y.is_finite() {
        return Err(PgError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: underflow",
        ));
    }
    Ok(r)
}

/// A float as an exact decimal, for callers that need one (`to_char`).
pub(super) fn float_to_decimal(f: f64) -> Option<Decimal> {
    Decimal::from_f64(f)
}
