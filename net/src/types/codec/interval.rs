//! `interval` in IntervalStyle `postgres`.
//!
//! Output: `1 year 2 mons 3 days 04:05:06.789`; zero fields are left out, the
//! clock part appears when non-zero or when everything is zero (`00:00:00`).
//! Like PostgreSQL, a positive field right after a negative one gets a `+`
//! (`-1 days +02:03:00`), and months print as `mon(s)` for compatibility.
//!
//! Input, postgres style: `[@] {number unit | [±]H:MM[:SS[.frac]] | [±]Y-M |
//! number} ... [ago]` with the units PostgreSQL knows (microseconds to
//! millennia, with their abbreviations). Fractions cascade the way
//! `DecodeInterval` does (years to whole months, months to 30-day days then
//! microseconds, days to microseconds), so `1.5 months` is `1 mon 15 days`. A
//! bare number before a clock is days, a trailing one seconds. Each unit may
//! appear once (seconds with a fraction also claim ms and us).
//!
//! Input, ISO 8601: `P[nY][nM][nW][nD][T[nH][nM][nS]]`, upper case, no spaces;
//! numbers are `strtod` values within ±10^15 whose fraction is `value - trunc`
//! (so `P2.8M` is 2 months and 23.999… days, as PostgreSQL computes it), and
//! designators may repeat and add up.
//!
//! Errors: malformed 22007; a field past PostgreSQL's `int`/`int64` while
//! parsing 22015; years and months that fit alone but not together 22008.

use super::datetime::{
    fraction_micros, push_fraction, USECS_PER_DAY, USECS_PER_HOUR, USECS_PER_MINUTE, USECS_PER_SEC,
};
use crate::error::{PgError, PgResult, SqlState};
use crate::types::Interval;

const MONTHS_PER_YEAR: i64 = 12;
const DAYS_PER_MONTH: i64 = 30;
const DAYS_PER_WEEK: i64 = 7;

pub(super) fn format(iv: &Interval) -> String {
    let years = i64::from(iv.months / 12);
    let months = i64::from(iv.months % 12);
    let t = iv.micros;
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    for (value, unit) in [
        (years, "year"),
        (months, "mon"),
        (i64::from(iv.days), "day"),
    ] {
        if value == 0 {
            continue;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value == 1 { "" } else { "s" }
        ));
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || t != 0 {
        if !is_zero {
            out.push(' ');
        }
        if t < 0 {
            out.push('-');
        } else if is_before {
            out.push('+');
        }
        let hours = (t / USECS_PER_HOUR).unsigned_abs();
        let minutes = (t / USECS_PER_MINUTE % 60).unsigned_abs();
        let seconds = (t / USECS_PER_SEC % 60).unsigned_abs();
        out.push_str(&format!("{hours:02}:{minutes:02}:{seconds:02}"));
        push_fraction(&mut out, t % USECS_PER_SEC);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Decade,
    Century,
    Millennium,
}

impl Unit {
    fn from_word(w: &str) -> Option<Unit> {
        Some(match w {
            "us" | "usec" | "usecs" | "useconds" | "microsecon" | "microsecond"
            | "microseconds" => Unit::Microsecond,
            "ms" | "msec" | "msecs" | "mseconds" | "millisecon" | "millisecond"
            | "milliseconds" => Unit::Millisecond,
            "s" | "sec" | "secs" | "second" | "seconds" => Unit::Second,
            "m" | "min" | "mins" | "minute" | "minutes" => Unit::Minute,
            "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hour,
            "d" | "day" | "days" => Unit::Day,
            "w" | "week" | "weeks" => Unit::Week,
            "mon" | "mons" | "month" | "months" => Unit::Month,
            "y" | "yr" | "yrs" | "year" | "years" => Unit::Year,
            "dec" | "decade" | "decades" | "decs" => Unit::Decade,
            "c" | "cent" | "century" | "centuries" => Unit::Century,
            "mil" | "mils" | "millennium" | "millennia" | "millenniums" => Unit::Millennium,
            _ => return None,
        })
    }

    /// The bit this unit claims; a unit given twice is an error, as in PostgreSQL.
    fn mask(self) -> u32 {
        1 << (self as u32)
    }
}

/// The clock part of an interval claims hours, minutes and seconds.
const TIME_MASK: u32 = (1 << Unit::Hour as u32) | (1 << Unit::Minute as u32) | ALL_SECONDS_MASK;
/// Seconds with a fraction also claim milliseconds and microseconds
/// (PostgreSQL's `DTK_ALL_SECS_M`): `1.5 s 3 ms` is refused.
const ALL_SECONDS_MASK: u32 =
    (1 << Unit::Second as u32) | (1 << Unit::Millisecond as u32) | (1 << Unit::Microsecond as u32);

/// Why an interval string was refused.
enum Err {
    BadFormat,
    /// A field overflowed while parsing (22015).
    Overflow,
    /// The fields parsed but years and months do not fit together (22008).
    OutOfRange,
}

type Res<T> = Result<T, Err>;

/// PostgreSQL's `pg_itm_in`: fields accumulated before they are folded into an
/// [`Interval`], wide enough that only the final fold can overflow.
#[derive(Default)]
struct Acc {
    years: i64,
    months: i64,
    days: i64,
    micros: i64,
    mask: u32,
}

fn add(a: i64, b: i64) -> Res<i64> {
    a.checked_add(b).ok_or(Err::Overflow)
}

fn mul(a: i64, b: i64) -> Res<i64> {
    a.checked_mul(b).ok_or(Err::Overflow)
}

impl Acc {
    fn claim(&mut self, mask: u32) -> Res<()> {
        if self.mask & mask != 0 {
            return Err(Err::BadFormat);
        }
        self.mask |= mask;
        Ok(())
    }

    /// `AdjustFractMicroseconds`: `frac * scale` microseconds, rounded.
    fn fract_micros(&mut self, frac: f64, scale: i64) -> Res<()> {
        if frac == 0.0 {
            return Ok(());
        }
        let scaled = frac * scale as f64;
        if !scaled.is_finite() || scaled.abs() >= i64::MAX as f64 {
            return Err(Err::Overflow);
        }
        let mut usec = scaled as i64;
        let rest = scaled - usec as f64;
        if rest > 0.5 {
            usec += 1;
        } else if rest < -0.5 {
            usec -= 1;
        }
        self.micros = add(self.micros, usec)?;
        Ok(())
    }

    /// `AdjustFractDays`: whole days, the rest as microseconds.
    fn fract_days(&mut self, frac: f64, scale: i64) -> Res<()> {
        if frac == 0.0 {
            return Ok(());
        }
        let scaled = frac * scale as f64;
        let whole = scaled as i64;
        self.days = add(self.days, whole)?;
        self.fract_micros(scaled - whole as f64, USECS_PER_DAY)
    }

    /// `AdjustFractYears`: rounded whole months.
    fn fract_years(&mut self, frac: f64, scale: i64) -> Res<()> {
        let months = (frac * scale as f64 * MONTHS_PER_YEAR as f64).round_ties_even();
        self.months = add(self.months, months as i64)?;
        Ok(())
    }

    /// A `number unit` field of the postgres style: each unit at most once.
    fn apply(&mut self, value: i64, frac: f64, unit: Unit) -> Res<()> {
        let mask = if unit == Unit::Second && frac != 0.0 {
            ALL_SECONDS_MASK
        } else {
            unit.mask()
        };
        self.claim(mask)?;
        self.add_unit(value, frac, unit)
    }

    /// Adds `value.frac` units, cascading the fraction like `DecodeInterval`.
    fn add_unit(&mut self, value: i64, frac: f64, unit: Unit) -> Res<()> {
        let micros = |acc: &mut Acc, scale: i64| -> Res<()> {
            acc.micros = add(acc.micros, mul(value, scale)?)?;
            acc.fract_micros(frac, scale)
        };
        match unit {
            Unit::Microsecond => micros(self, 1),
            Unit::Millisecond => micros(self, 1_000),
            Unit::Second => micros(self, USECS_PER_SEC),
            Unit::Minute => micros(self, USECS_PER_MINUTE),
            Unit::Hour => micros(self, USECS_PER_HOUR),
            Unit::Day => {
                self.days = add(self.days, value)?;
                self.fract_micros(frac, USECS_PER_DAY)
            }
            Unit::Week => {
                self.days = add(self.days, mul(value, DAYS_PER_WEEK)?)?;
                self.fract_days(frac, DAYS_PER_WEEK)
            }
            Unit::Month => {
                self.months = add(self.months, value)?;
                self.fract_days(frac, DAYS_PER_MONTH)
            }
            Unit::Year | Unit::Decade | Unit::Century | Unit::Millennium => {
                let scale = match unit {
                    Unit::Year => 1,
                    Unit::Decade => 10,
                    Unit::Century => 100,
                    _ => 1000,
                };
                self.years = add(self.years, mul(value, scale)?)?;
                self.fract_years(frac, scale)
            }
        }
    }

    fn negate(&mut self) -> Res<()> {
        for f in [
            &mut self.years,
            &mut self.months,
            &mut self.days,
            &mut self.micros,
        ] {
            *f = f.checked_neg().ok_or(Err::Overflow)?;
        }
        Ok(())
    }

    /// `itmin2interval`: each field must fit PostgreSQL's `int` while parsing
    /// (22015); only folding years into months can then overflow (22008).
    fn finish(self) -> Res<Interval> {
        let int = |v: i64| i32::try_from(v).map_err(|_| Err::Overflow);
        let (years, months, days) = (int(self.years)?, int(self.months)?, int(self.days)?);
        let total = i64::from(years) * MONTHS_PER_YEAR + i64::from(months);
        Ok(Interval {
            months: i32::try_from(total).map_err(|_| Err::OutOfRange)?,
            days,
            micros: self.micros,
        })
    }
}

/// `[+-]digits[.digits]` as (integer part, signed fraction).
fn parse_number(text: &str) -> Res<(i64, f64)> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let frac_digits = frac_part.unwrap_or("");
    if (int_part.is_empty() && frac_digits.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_digits)
    {
        return Err(Err::BadFormat);
    }
    let mut value: i64 = 0;
    for b in int_part.bytes() {
        value = add(mul(value, 10)?, i64::from(b - b'0'))?;
    }
    let mut frac = if frac_digits.is_empty() {
        0.0
    } else {
        format!("0.{frac_digits}")
            .parse::<f64>()
            .map_err(|_| Err::BadFormat)?
    };
    if negative {
        value = -value;
        frac = -frac;
    }
    Ok((value, frac))
}

/// A clock token `[±]H:MM[:SS[.frac]]` or `[±]MM:SS.frac`, in microseconds.
fn parse_clock(text: &str) -> Res<i64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let parts: Vec<&str> = unsigned.split(':').collect();
    let int = |s: &str| -> Res<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Err::BadFormat);
        }
        s.parse::<i64>().map_err(|_| Err::Overflow)
    };
    let seconds = |s: &str| -> Res<(i64, i64)> {
        match s.split_once('.') {
            Some((whole, frac)) => Ok((int(whole)?, clock_fraction(frac)?)),
            None => Ok((int(s)?, 0)),
        }
    };
    let (hours, minutes, (secs, frac)) = match parts.as_slice() {
        [m, s] if s.contains('.') => (0, int(m)?, seconds(s)?),
        [h, m] => (int(h)?, int(m)?, (0, 0)),
        [h, m, s] => (int(h)?, int(m)?, seconds(s)?),
        _ => return Err(Err::BadFormat),
    };
    if minutes > 59 || secs > 59 {
        return Err(Err::Overflow);
    }
    let total = add(
        mul(hours, USECS_PER_HOUR)?,
        minutes * USECS_PER_MINUTE + secs * USECS_PER_SEC + frac,
    )?;
    Ok(if negative { -total } else { total })
}

/// `[±]Y-M`: the sign applies to both; months must be 0..=11.
fn parse_year_month(text: &str) -> Res<(i64, i64)> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (years, months) = unsigned.split_once('-').ok_or(Err::BadFormat)?;
    let (years, _) = parse_number(years)?;
    let (months, _) = parse_number(months)?;
    if months > 11 {
        return Err(Err::Overflow);
    }
    Ok(if negative {
        (-years, -months)
    } else {
        (years, months)
    })
}

/// Fraction digits as microseconds, rounded like PostgreSQL (see
/// [`fraction_micros`]).
fn clock_fraction(digits: &str) -> Res<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Err::BadFormat);
    }
    Ok(fraction_micros(digits))
}

#[derive(Debug)]
enum Token<'a> {
    Number(&'a str),
    Clock(&'a str),
    /// SQL-standard `[±]Y-M`.
    YearMonth(&'a str),
    Word(&'a str),
}

fn tokenize(s: &str) -> Res<Vec<Token<'_>>> {
    let b = s.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || (c == b'@' && tokens.is_empty()) {
            i += 1;
            continue;
        }
        let start = i;
        let numeric_start = c.is_ascii_digit()
            || c == b'.'
            || (matches!(c, b'+' | b'-')
                && b.get(i + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == b'.'));
        if numeric_start {
            i += 1;
            while let Some(&n) = b.get(i) {
                let inner_dash = n == b'-'
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !(n.is_ascii_digit() || matches!(n, b'.' | b':') || inner_dash) {
                    break;
                }
                i += 1;
            }
            let text = &s[start..i];
            tokens.push(if text.contains(':') {
                Token::Clock(text)
            } else if text[1..].contains('-') {
                Token::YearMonth(text)
            } else {
                Token::Number(text)
            });
        } else if c.is_ascii_alphabetic() {
            while b.get(i).is_some_and(u8::is_ascii_alphabetic) {
                i += 1;
            }
            tokens.push(Token::Word(&s[start..i]));
        } else {
            return Err(Err::BadFormat);
        }
    }
    Ok(tokens)
}

fn parse_postgres(s: &str) -> Res<Interval> {
    let mut tokens = tokenize(s)?;
    let ago = matches!(tokens.last(), Some(Token::Word("ago")));
    if ago {
        tokens.pop();
    }
    if tokens.is_empty() {
        return Err(Err::BadFormat);
    }
    let mut acc = Acc::default();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        match token {
            Token::Number(n) => {
                let (value, frac) = parse_number(n)?;
                match tokens.get(i + 1) {
                    Some(Token::Word(w)) => {
                        acc.apply(value, frac, Unit::from_word(w).ok_or(Err::BadFormat)?)?;
                        i += 1;
                    }
                    Some(Token::Clock(_)) => acc.apply(value, frac, Unit::Day)?,
                    None => acc.apply(value, frac, Unit::Second)?,
                    Some(Token::Number(_) | Token::YearMonth(_)) => return Err(Err::BadFormat),
                }
            }
            Token::Clock(c) => {
                acc.claim(TIME_MASK)?;
                acc.micros = add(acc.micros, parse_clock(c)?)?;
            }
            Token::YearMonth(ym) => {
                acc.claim(Unit::Year.mask() | Unit::Month.mask())?;
                let (years, months) = parse_year_month(ym)?;
                acc.years = add(acc.years, years)?;
                acc.months = add(acc.months, months)?;
            }
            Token::Word(_) => return Err(Err::BadFormat),
        }
        i += 1;
    }
    if ago {
        acc.negate()?;
    }
    acc.finish()
}

/// ISO 8601 designators after the leading `P`.
fn parse_iso(body: &str) -> Res<Interval> {
    let mut acc = Acc::default();
    let mut in_time = false;
    let b = body.as_bytes();
    let mut i = 0;
    if b.is_empty() {
        return Err(Err::BadFormat);
    }
    while i < b.len() {
        if b[i] == b'T' && !in_time {
            in_time = true;
            i += 1;
            continue;
        }
        let (value, frac, len) = parse_iso_number(&body[i..])?;
        i += len;
        let unit = match (in_time, b.get(i)) {
            (false, Some(b'Y')) => Unit::Year,
            (false, Some(b'M')) => Unit::Month,
            (false, Some(b'W')) => Unit::Week,
            (false, Some(b'D')) => Unit::Day,
            (true, Some(b'H')) => Unit::Hour,
            (true, Some(b'M')) => Unit::Minute,
            (true, Some(b'S')) => Unit::Second,
            _ => return Err(Err::BadFormat),
        };
        // ISO designators may repeat and add up, as in PostgreSQL.
        acc.add_unit(value, frac, unit)?;
        i += 1;
    }
    acc.finish()
}

/// `ParseISO8601Number`: a `strtod` number (`-`, digits, point, exponent; no
/// `+`) split into integer part and fraction, within ±10^15. Returns the parts
/// and the bytes consumed.
fn parse_iso_number(text: &str) -> Res<(i64, f64, usize)> {
    let b = text.as_bytes();
    if !b
        .first()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.'))
    {
        return Err(Err::BadFormat);
    }
    let mut i = usize::from(b[0] == b'-');
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa_digits = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        mantissa_digits += digits(&mut i);
    }
    if mantissa_digits == 0 {
        return Err(Err::BadFormat);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    let value: f64 = text[..i].parse().map_err(|_| Err::BadFormat)?;
    if !(-1e15..=1e15).contains(&value) {
        return Err(Err::Overflow);
    }
    let whole = value.trunc();
    // |whole| ≤ 10^15, exactly representable in both f64 and i64.
    Ok((whole as i64, value - whole, i))
}

/// `interval_in` with IntervalStyle postgres.
pub(super) fn parse(s: &str) -> PgResult<Interval> {
    // ISO 8601: an upper-case `P` first, no surrounding spaces, as in PostgreSQL.
    let parsed = match s.strip_prefix('P') {
        Some(body) => parse_iso(body),
        None => parse_postgres(&s.trim().to_ascii_lowercase()),
    };
    parsed.map_err(|e| match e {
        Err::BadFormat => PgError::new(
            SqlState::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type interval: \"{s}\""),
        ),
        Err::Overflow => PgError::new(
            SqlState::INTERVAL_FIELD_OVERFLOW,
            format!("interval field value out of range: \"{s}\""),
        ),
        Err::OutOfRange => PgError::new(SqlState::DATETIME_FIELD_OVERFLOW, "interval out of range"),
    })
}
