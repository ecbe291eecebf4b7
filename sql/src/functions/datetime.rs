//! Date and time functions: `date_trunc`, `date_part`/`EXTRACT`, `age` and
//! `make_date`, on the proleptic Gregorian calendar in UTC (the only time
//! zone sessions accept today, so `timestamptz` fields are UTC fields).
//!
//! `EXTRACT` returns exact numerics with PostgreSQL's scales (`second` has 6
//! decimals, `milliseconds` 3, `epoch` 6 for timestamps and intervals, none
//! for dates); `date_part` returns the same quantity as a double.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use teller_net::types::{Interval, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::Func;

pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
pub(crate) const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const UNIX_TO_POSTGRES_DAYS: i64 = 10_957;
/// Julian day number of 2000-01-01.
const POSTGRES_EPOCH_JDATE: i64 = 2_451_545;
/// Dates PostgreSQL accepts: 4713-11-24 BC to 5874897-12-31, in days from 2000-01-01.
const DATE_DAYS_MIN: i64 = -2_451_545;
const DATE_DAYS_MAX: i64 = 2_145_031_948;
const DATETIME_FIELD_OVERFLOW: SqlState = SqlState("22008");

/// A timestamp split into calendar fields (astronomical years: 0 is 1 BC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fields {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub micros: i64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count from 0000-03-01 so the leap day ends each 4-year cycle.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(crate) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Calendar fields of a PostgreSQL timestamp (microseconds since 2000-01-01).
pub(crate) fn fields(micros: i64) -> Fields {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let time = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days + UNIX_TO_POSTGRES_DAYS);
    Fields {
        year,
        month,
        day,
        hour: time / 3_600_000_000,
        minute: time / 60_000_000 % 60,
        second: time / MICROS_PER_SECOND % 60,
        micros: time % MICROS_PER_SECOND,
    }
}

/// Days since 2000-01-01 of a date.
pub(crate) fn pg_days(year: i64, month: i64, day: i64) -> i64 {
    days_from_civil(year, month, day) - UNIX_TO_POSTGRES_DAYS
}

fn to_micros(f: &Fields) -> i64 {
    pg_days(f.year, f.month, f.day) * MICROS_PER_DAY
        + ((f.hour * 60 + f.minute) * 60 + f.second) * MICROS_PER_SECOND
        + f.micros
}

/// The microseconds of a timestamp-like value (a date is its midnight).
pub(crate) fn timestamp_micros(v: &Value) -> PgResult<i64> {
    match v {
        Value::Timestamp(t) | Value::Timestamptz(t) => Ok(*t),
        Value::Date(d) => Ok(i64::from(*d) * MICROS_PER_DAY),
        other => Err(PgError::internal(format!(
            "timestamp expected, got {other:?}"
        ))),
    }
}

/// ISO day of week: Monday 1 ... Sunday 7.
fn isodow(days: i64) -> i64 {
    // 2000-01-01 was a Saturday.
    (days + 5).rem_euclid(7) + 1
}

fn day_of_year(f: &Fields) -> i64 {
    pg_days(f.year, f.month, f.day) - pg_days(f.year, 1, 1) + 1
}

/// ISO 8601 (year, week) of a date.
fn iso_week(year: i64, days: i64) -> (i64, i64) {
    // The ISO year's week 1 holds its first Thursday; its Monday starts it.
    let week1_monday = |y: i64| {
        let jan4 = pg_days(y, 1, 4);
        jan4 - (isodow(jan4) - 1)
    };
    let mut iso_year = year;
    if days < week1_monday(year) {
        iso_year -= 1;
    } else if days >= week1_monday(year + 1) {
        iso_year += 1;
    }
    (iso_year, (days - week1_monday(iso_year)) / 7 + 1)
}

pub(super) fn call(func: Func, v: &[Value]) -> PgResult<Value> {
    match func {
        Func::DateTrunc => date_trunc(&super::text::arg(v, 0)?, &v[1]),
        Func::Extract => Ok(Value::Numeric(part(&super::text::arg(v, 0)?, &v[1])?)),
        Func::DatePart => {
            // date_part has no date variant: a date is read as a timestamp.
            let source = match &v[1] {
                Value::Date(d) => Value::Timestamp(i64::from(*d) * MICROS_PER_DAY),
                other => other.clone(),
            };
            let d = part(&super::text::arg(v, 0)?, &source)?;
            Ok(Value::Float8(d.to_f64().unwrap_or(f64::NAN)))
        }
        Func::Age => age(timestamp_micros(&v[0])?, timestamp_micros(&v[1])?),
        Func::MakeDate => make_date(&v[0], &v[1], &v[2]),
        other => Err(PgError::internal(format!(
            "{other:?} is not a date function"
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Timestamptz(_) => "timestamp with time zone",
        Value::Date(_) => "date",
        Value::Time(_) => "time without time zone",
        Value::Interval(_) => "interval",
        _ => "timestamp without time zone",
    }
}

fn unit_not_recognized(unit: &str, v: &Value) -> PgError {
    PgError::new(
        SqlState::INVALID_PARAMETER_VALUE,
        format!("unit \"{unit}\" not recognized for type {}", type_name(v)),
    )
}

fn unit_not_supported(unit: &str, v: &Value) -> PgError {
    PgError::new(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!("unit \"{unit}\" not supported for type {}", type_name(v)),
    )
}

/// Units are case-insensitive and accept PostgreSQL's plural and short forms.
fn canonical_unit(unit: &str) -> String {
    let lower = unit.to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => "microseconds",
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => "milliseconds",
        "second" | "seconds" | "s" | "sec" | "secs" => "second",
        "minute" | "minutes" | "m" | "min" | "mins" => "minute",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "day" | "days" | "d" => "day",
        "week" | "weeks" | "w" => "week",
        "month" | "months" | "mon" | "mons" => "month",
        "quarter" | "qtr" => "quarter",
        "year" | "years" | "y" | "yr" | "yrs" => "year",
        "decade" | "decades" | "dec" | "decs" => "decade",
        "century" | "centuries" | "c" | "cent" => "century",
        "millennium" | "millennia" | "mil" | "mils" => "millennium",
        other => other,
    };
    canonical.to_string()
}

fn date_trunc(unit: &str, v: &Value) -> PgResult<Value> {
    let micros = timestamp_micros(v)?;
    let f = fields(micros);
    let start_of_day = Fields {
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
        ..f
    };
    let year_start = |year: i64| Fields {
        year,
        month: 1,
        day: 1,
        ..start_of_day
    };
    let truncated = match canonical_unit(unit).as_str() {
        "microseconds" => f,
        "milliseconds" => Fields {
            micros: f.micros / 1000 * 1000,
            ..f
        },
        "second" => Fields { micros: 0, ..f },
        "minute" => Fields {
            second: 0,
            micros: 0,
            ..f
        },
        "hour" => Fields {
            minute: 0,
            second: 0,
            micros: 0,
            ..f
        },
        "day" => start_of_day,
        "week" => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let monday = days - (isodow(days) - 1);
            Fields {
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
                ..fields(monday * MICROS_PER_DAY)
            }
        }
        "month" => Fields {
            day: 1,
            ..start_of_day
        },
        "quarter" => Fields {
            month: (f.month - 1) / 3 * 3 + 1,
            day: 1,
            ..start_of_day
        },
        "year" => year_start(f.year),
        "decade" => year_start(f.year.div_euclid(10) * 10),
        "century" => year_start((f.year + 99).div_euclid(100) * 100 - 99),
        "millennium" => year_start((f.year + 999).div_euclid(1000) * 1000 - 999),
        _ => return Err(unit_not_recognized(unit, v)),
    };
    let out = to_micros(&truncated);
    Ok(match v {
        Value::Timestamp(_) => Value::Timestamp(out),
        _ => Value::Timestamptz(out),
    })
}

/// A decimal `n / 10^scale` shown with `scale` decimals.
fn fixed(n: i64, scale: u32) -> Decimal {
    Decimal::new(n, scale)
}

/// The quantity `EXTRACT(unit FROM v)` yields, as an exact numeric.
fn part(unit: &str, v: &Value) -> PgResult<Decimal> {
    let canonical = canonical_unit(unit);
    match v {
        Value::Interval(iv) => interval_part(&canonical, unit, iv, v),
        Value::Time(t) => time_part(&canonical, unit, *t, v),
        Value::Date(d) => date_part_of_date(&canonical, unit, i64::from(*d), v),
        _ => timestamp_part(&canonical, unit, timestamp_micros(v)?, v),
    }
}

fn timestamp_part(canonical: &str, unit: &str, micros: i64, v: &Value) -> PgResult<Decimal> {
    let f = fields(micros);
    let second_micros = f.second * MICROS_PER_SECOND + f.micros;
    Ok(match canonical {
        "microseconds" => fixed(second_micros, 0),
        "milliseconds" => fixed(second_micros, 3),
        "second" => fixed(second_micros, 6),
        "minute" => fixed(f.minute, 0),
        "hour" => fixed(f.hour, 0),
        "epoch" => fixed(micros, 6)
            .checked_add(fixed(UNIX_TO_POSTGRES_DAYS * 86_400, 0))
            .ok_or_else(|| unit_not_supported(unit, v))?,
        "timezone" | "timezone_hour" | "timezone_minute" => match v {
            Value::Timestamptz(_) => Decimal::ZERO,
            _ => return Err(unit_not_supported(unit, v)),
        },
        _ => date_fields_part(canonical, unit, &f, micros.div_euclid(MICROS_PER_DAY), v)?,
    })
}

fn date_part_of_date(canonical: &str, unit: &str, days: i64, v: &Value) -> PgResult<Decimal> {
    match canonical {
        "epoch" => Ok(fixed((days + UNIX_TO_POSTGRES_DAYS) * 86_400, 0)),
        "microseconds" | "milliseconds" | "second" | "minute" | "hour" | "timezone"
        | "timezone_hour" | "timezone_minute" => Err(unit_not_supported(unit, v)),
        _ => date_fields_part(canonical, unit, &fields(days * MICROS_PER_DAY), days, v),
    }
}

/// Fields that depend on the date only.
fn date_fields_part(
    canonical: &str,
    unit: &str,
    f: &Fields,
    days: i64,
    v: &Value,
) -> PgResult<Decimal> {
    // PostgreSQL numbers years without a year 0: astronomical 0 is 1 BC.
    let year = if f.year > 0 { f.year } else { f.year - 1 };
    let n = match canonical {
        "day" => f.day,
        "month" => f.month,
        "quarter" => (f.month - 1) / 3 + 1,
        "year" => year,
        "decade" => f.year.div_euclid(10),
        "century" if year > 0 => (year + 99) / 100,
        "century" => -((99 - year) / 100),
        "millennium" if year > 0 => (year + 999) / 1000,
        "millennium" => -((999 - year) / 1000),
        "dow" => isodow(days) % 7,
        "isodow" => isodow(days),
        "doy" => day_of_year(f),
        "week" => iso_week(f.year, days).1,
        "isoyear" => {
            let y = iso_week(f.year, days).0;
            if y > 0 {
                y
            } else {
                y - 1
            }
        }
        "julian" if matches!(v, Value::Date(_)) => days + POSTGRES_EPOCH_JDATE,
        "julian" => return Err(unit_not_supported(unit, v)),
        _ => return Err(unit_not_recognized(unit, v)),
    };
    Ok(fixed(n, 0))
}

fn time_part(canonical: &str, unit: &str, t: i64, v: &Value) -> PgResult<Decimal> {
    let second_micros = t % 60_000_000;
    Ok(match canonical {
        "microseconds" => fixed(second_micros, 0),
        "milliseconds" => fixed(second_micros, 3),
        "second" => fixed(second_micros, 6),
        "minute" => fixed(t / 60_000_000 % 60, 0),
        "hour" => fixed(t / 3_600_000_000, 0),
        "epoch" => fixed(t, 6),
        "day" | "month" | "year" | "week" | "quarter" | "decade" | "century" | "millennium"
        | "dow" | "isodow" | "doy" | "isoyear" => return Err(unit_not_supported(unit, v)),
        _ => return Err(unit_not_recognized(unit, v)),
    })
}

fn interval_part(canonical: &str, unit: &str, iv: &Interval, v: &Value) -> PgResult<Decimal> {
    let years = i64::from(iv.months / 12);
    let second_micros = iv.micros % 60_000_000;
    Ok(match canonical {
        "microseconds" => fixed(second_micros, 0),
        "milliseconds" => fixed(second_micros, 3),
        "second" => fixed(second_micros, 6),
        "minute" => fixed(iv.micros / 60_000_000 % 60, 0),
        "hour" => fixed(iv.micros / 3_600_000_000, 0),
        "day" => fixed(i64::from(iv.days), 0),
        "month" => fixed(i64::from(iv.months % 12), 0),
        "quarter" => fixed(i64::from(iv.months % 12) / 3 + 1, 0),
        "year" => fixed(years, 0),
        "decade" => fixed(years / 10, 0),
        "century" => fixed(years / 100, 0),
        "millennium" => fixed(years / 1000, 0),
        "epoch" => {
            // A year is 365.25 days (31,557,600 s) and a month 30 days.
            let whole_seconds = years * 31_557_600
                + i64::from(iv.months % 12) * 30 * 86_400
                + i64::from(iv.days) * 86_400;
            let mut epoch = fixed(whole_seconds, 0)
                .checked_add(fixed(iv.micros, 6))
                .ok_or_else(|| unit_not_supported(unit, v))?;
            epoch.rescale(6);
            epoch
        }
        "dow" | "isodow" | "doy" | "week" | "isoyear" | "julian" | "timezone" => {
            return Err(unit_not_supported(unit, v))
        }
        _ => return Err(unit_not_recognized(unit, v)),
    })
}

/// `age(a, b)`: the symbolic difference in years, months, days and time,
/// borrowing like PostgreSQL's `timestamp_age` (a month borrowed is the length
/// of the month of the earlier argument's fields).
pub(crate) fn age(a: i64, b: i64) -> PgResult<Value> {
    let (f1, f2) = (fields(a), fields(b));
    let sign = if a < b { -1 } else { 1 };
    let mut usec = sign * (f1.micros - f2.micros);
    let mut sec = sign * (f1.second - f2.second);
    let mut min = sign * (f1.minute - f2.minute);
    let mut hour = sign * (f1.hour - f2.hour);
    let mut mday = sign * (f1.day - f2.day);
    let mut mon = sign * (f1.month - f2.month);
    let mut year = sign * (f1.year - f2.year);
    while usec < 0 {
        usec += MICROS_PER_SECOND;
        sec -= 1;
    }
    while sec < 0 {
        sec += 60;
        min -= 1;
    }
    while min < 0 {
        min += 60;
        hour -= 1;
    }
    while hour < 0 {
        hour += 24;
        mday -= 1;
    }
    while mday < 0 {
        let from = if a < b { f1 } else { f2 };
        mday += days_in_month(from.year, from.month);
        mon -= 1;
    }
    while mon < 0 {
        mon += 12;
        year -= 1;
    }
    let months = i32::try_from(sign * (year * 12 + mon)).map_err(|_| interval_out_of_range())?;
    let days = i32::try_from(sign * mday).map_err(|_| interval_out_of_range())?;
    let micros = sign * (((hour * 60 + min) * 60 + sec) * MICROS_PER_SECOND + usec);
    Ok(Value::Interval(Interval {
        months,
        days,
        micros,
    }))
}

fn interval_out_of_range() -> PgError {
    PgError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        "interval out of range",
    )
}

fn make_date(y: &Value, m: &Value, d: &Value) -> PgResult<Value> {
    let int = |v: &Value| match v {
        Value::Int4(n) => Ok(i64::from(*n)),
        other => Err(PgError::internal(format!("int4 expected, got {other:?}"))),
    };
    let (year, month, day) = (int(y)?, int(m)?, int(d)?);
    let out_of_range = || {
        PgError::new(
            DATETIME_FIELD_OVERFLOW,
            format!("date field value out of range: {year}-{month:02}-{day:02}"),
        )
    };
    // Negative years are BC: -1 is 1 BC, astronomical year 0.
    let astronomical = match year {
        0 => return Err(out_of_range()),
        y if y < 0 => y + 1,
        y => y,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(astronomical, month) {
        return Err(out_of_range());
    }
    let days = pg_days(astronomical, month, day);
    if !(DATE_DAYS_MIN..=DATE_DAYS_MAX).contains(&days) {
        return Err(PgError::new(
            DATETIME_FIELD_OVERFLOW,
            format!("date out of range: \"{year}-{month:02}-{day:02}\""),
        ));
    }
    Ok(Value::Date(days as i32))
}
