//! `date`, `time`, `timestamp` and `timestamptz`, and the calendar under them.
//!
//! Representation (PostgreSQL's): a date is days since 2000-01-01, a time is
//! microseconds since midnight (0..=24:00:00), a timestamp is microseconds since
//! 2000-01-01 00:00:00 (UTC for `timestamptz`). ±infinity are the extreme
//! integers (`i32::MIN/MAX`, `i64::MIN/MAX`). The calendar is proleptic Gregorian
//! with astronomical years internally (1 BC is year 0), printed as `0001 BC`.
//!
//! Valid ranges are PostgreSQL's: dates from 4714-11-24 BC (Julian day 0) to
//! 5874897-12-31, timestamps from 4714-11-24 BC to 294276-12-31 23:59:59.999999.
//!
//! Text input accepts the ISO forms `[Y]YYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD`,
//! `MM-DD-YYYY` (DateStyle MDY for a short first field, two-digit years mapped
//! to 1970..2069), then `T` or spaces and `HH:MM[:SS[.frac]]` (with `AM`/`PM`
//! anywhere), then a zone
//! (`Z`, `UTC`, `GMT`, `±HH`, `±HHMM`, `±HH:MM[:SS]`) and `BC`/`AD`, plus
//! `infinity`, `-infinity` and `epoch` (not `+infinity`, as in PostgreSQL).
//! Fractions round to microseconds through a double, as PostgreSQL's
//! `ParseFractionalSecond` does. Words that need a clock (`now`, `today`, ...)
//! are refused (0A000): this layer has no clock; the SQL layer resolves them.
//! Errors: unparseable 22007, a field out of range (month 13) 22008, a value out
//! of the type's range 22008, a zone offset past ±15:59:59 22009.

use crate::error::{PgError, PgResult, SqlState};

pub(super) const USECS_PER_SEC: i64 = 1_000_000;
pub(super) const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
pub(super) const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
pub(super) const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_EPOCH_DAYS: i64 = 10_957;
/// 4714-11-24 BC, Julian day 0, in days since 2000-01-01.
const DATE_MIN: i64 = -2_451_545;
/// 5874898-01-01, the first date past the range (exclusive).
const DATE_END: i64 = 2_147_483_494 - 2_451_545;
/// 4714-11-24 BC 00:00:00 in microseconds since 2000-01-01.
const TIMESTAMP_MIN: i64 = DATE_MIN * USECS_PER_DAY;
/// 294277-01-01 00:00:00 (exclusive).
const TIMESTAMP_END: i64 = 106_751_983 * USECS_PER_DAY;
/// Largest zone displacement PostgreSQL accepts, in hours.
const TZ_HOURS_MAX: i64 = 15;

const _: () = assert!(TIMESTAMP_MIN == -211_813_488_000_000_000);
const _: () = assert!(TIMESTAMP_END == 9_223_371_331_200_000_000);

// ---------------------------------------------------------------- calendar

/// Days since 2000-01-01 of a proleptic Gregorian date (astronomical year).
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    debug_assert!((1..=12).contains(&month) && (1..=31).contains(&day));
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - UNIX_TO_PG_EPOCH_DAYS
}

/// The (astronomical year, month, day) of a day count since 2000-01-01.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + UNIX_TO_PG_EPOCH_DAYS + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(super) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(super) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

// ---------------------------------------------------------------- output

/// `YYYY-MM-DD` with ` BC` for years ≤ 0, without the suffix (returned apart).
fn push_date(out: &mut String, days: i64) -> bool {
    let (year, month, day) = civil_from_days(days);
    let (shown, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    out.push_str(&format!("{shown:04}-{month:02}-{day:02}"));
    bc
}

/// `HH:MM:SS[.ffffff]`, trailing fraction zeros trimmed.
fn push_time(out: &mut String, micros: i64) {
    let hours = micros / USECS_PER_HOUR;
    let minutes = micros / USECS_PER_MINUTE % 60;
    let seconds = micros / USECS_PER_SEC % 60;
    out.push_str(&format!("{hours:02}:{minutes:02}:{seconds:02}"));
    push_fraction(out, micros % USECS_PER_SEC);
}

/// `.ffffff` of a non-zero microsecond count, trailing zeros trimmed.
pub(super) fn push_fraction(out: &mut String, micros: i64) {
    if micros != 0 {
        let digits = format!("{:06}", micros.unsigned_abs());
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

pub(super) fn format_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let mut out = String::with_capacity(16);
            if push_date(&mut out, days.into()) {
                out.push_str(" BC");
            }
            out
        }
    }
}

pub(super) fn format_time(micros: i64) -> String {
    let mut out = String::with_capacity(15);
    push_time(&mut out, micros);
    out
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+00][ BC]`.
pub(super) fn format_timestamp(micros: i64, with_zone: bool) -> String {
    match micros {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let mut out = String::with_capacity(32);
    let bc = push_date(&mut out, micros.div_euclid(USECS_PER_DAY));
    out.push(' ');
    push_time(&mut out, micros.rem_euclid(USECS_PER_DAY));
    if with_zone {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

// ---------------------------------------------------------------- binary range checks

fn range_error(what: &str) -> PgError {
    PgError::new(
        SqlState::DATETIME_FIELD_OVERFLOW,
        format!("{what} out of range"),
    )
}

/// `date_recv`: a finite date must be in PostgreSQL's range.
pub(super) fn check_date(days: i32) -> PgResult<i32> {
    let finite_ok = (DATE_MIN..DATE_END).contains(&i64::from(days));
    if days == i32::MIN || days == i32::MAX || finite_ok {
        Ok(days)
    } else {
        Err(range_error("date"))
    }
}

/// `time_recv`: 00:00:00 to 24:00:00 inclusive.
pub(super) fn check_time(micros: i64) -> PgResult<i64> {
    if (0..=USECS_PER_DAY).contains(&micros) {
        Ok(micros)
    } else {
        Err(range_error("time"))
    }
}

/// `timestamp_recv`: ±infinity or within PostgreSQL's range.
pub(super) fn check_timestamp(micros: i64) -> PgResult<i64> {
    if micros == i64::MIN || micros == i64::MAX || (TIMESTAMP_MIN..TIMESTAMP_END).contains(&micros)
    {
        Ok(micros)
    } else {
        Err(range_error("timestamp"))
    }
}

// ---------------------------------------------------------------- input

/// Why a date/time string was refused, mapped to PostgreSQL's messages by
/// [`DtErr::into_pg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DtErr {
    BadFormat,
    FieldOverflow,
    TzOverflow,
    NeedsClock,
}

impl DtErr {
    pub(super) fn into_pg(self, type_name: &str, input: &str) -> PgError {
        match self {
            DtErr::BadFormat => PgError::new(
                SqlState::INVALID_DATETIME_FORMAT,
                format!("invalid input syntax for type {type_name}: \"{input}\""),
            ),
            DtErr::FieldOverflow => PgError::new(
                SqlState::DATETIME_FIELD_OVERFLOW,
                format!("date/time field value out of range: \"{input}\""),
            ),
            DtErr::TzOverflow => PgError::new(
                SqlState::INVALID_TIME_ZONE_DISPLACEMENT_VALUE,
                format!("time zone displacement out of range: \"{input}\""),
            ),
            DtErr::NeedsClock => PgError::unsupported(format!(
                "{type_name} input \"{input}\" needs the current time, which this layer does not read"
            )),
        }
    }
}

/// The fields of a date/time string.
#[derive(Debug, Default, PartialEq)]
struct Fields {
    /// (astronomical year, month, day), already validated.
    date: Option<(i64, u32, u32)>,
    /// Microseconds since midnight, 0..=24:00:00.
    time: Option<i64>,
    /// Zone displacement east of UTC, in seconds.
    zone: Option<i64>,
}

enum Parsed {
    Infinity,
    NegInfinity,
    Epoch,
    Fields(Fields),
}

/// A cursor over the ASCII-lowercased input.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
        self.i > start
    }

    /// A run of digits as (value, digit count); the value saturates.
    fn digits(&mut self) -> Option<(i64, usize)> {
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
            self.i += 1;
        }
        (self.i > start).then_some((v, self.i - start))
    }

    /// The next word (letters only) if it is exactly `w`; consumed only then.
    fn word(&mut self, w: &str) -> bool {
        let end = self.i + w.len();
        let next_is_letter = self.b.get(end).is_some_and(u8::is_ascii_alphabetic);
        if self.b.get(self.i..end) == Some(w.as_bytes()) && !next_is_letter {
            self.i = end;
            true
        } else {
            false
        }
    }
}

fn parse(s: &str) -> Result<Parsed, DtErr> {
    let lower = s.trim().to_ascii_lowercase();
    match lower.as_str() {
        "infinity" => return Ok(Parsed::Infinity),
        "-infinity" => return Ok(Parsed::NegInfinity),
        "epoch" => return Ok(Parsed::Epoch),
        "now" | "today" | "tomorrow" | "yesterday" => return Err(DtErr::NeedsClock),
        "allballs" => {
            return Ok(Parsed::Fields(Fields {
                time: Some(0),
                ..Fields::default()
            }))
        }
        _ => {}
    }
    let mut c = Cursor {
        b: lower.as_bytes(),
        i: 0,
    };
    let mut fields = Fields::default();
    let mut era: Option<bool> = None;
    let mut meridiem: Option<bool> = None;
    // PostgreSQL also takes AM/PM before the time (`pm 04:05`).
    if c.word("am") || c.word("pm") {
        meridiem = Some(c.b[c.i - 2] == b'p');
        c.skip_ws();
    }
    // A leading run of digits followed by ':' is a time; anything else starting
    // with a digit is a date.
    let starts_with_time = {
        let rest = &c.b[c.i..];
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        n > 0 && rest.get(n) == Some(&b':')
    };
    let mut raw_date = None;
    let mut clock = None;
    if !starts_with_time {
        raw_date = Some(parse_date_fields(&mut c)?);
        if c.peek() == Some(b't') && c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
            c.i += 1;
            clock = Some(parse_time_fields(&mut c)?);
        }
    }
    loop {
        let had_space = c.skip_ws();
        let Some(next) = c.peek() else { break };
        if next.is_ascii_digit() && clock.is_none() && (had_space || raw_date.is_none()) {
            clock = Some(parse_time_fields(&mut c)?);
        } else if era.is_none() && had_space && (c.word("bc") || c.word("ad")) {
            era = Some(c.b[c.i - 2] == b'b');
        } else if meridiem.is_none() && (c.word("am") || c.word("pm")) {
            meridiem = Some(c.b[c.i - 2] == b'p');
        } else if fields.zone.is_none() && (clock.is_some() || had_space) {
            fields.zone = Some(parse_zone(&mut c)?);
        } else {
            return Err(DtErr::BadFormat);
        }
    }
    match (clock, meridiem) {
        (Some((hour, rest)), meridiem) => fields.time = Some(clock_micros(hour, rest, meridiem)?),
        // A date with AM/PM and no time is that hour: `2024-01-02 pm` is noon.
        (None, Some(pm)) if raw_date.is_some() => fields.time = Some(clock_micros(0, 0, Some(pm))?),
        (None, Some(_)) => return Err(DtErr::BadFormat),
        (None, None) => {}
    }
    if let Some((y, m, d, short_year)) = raw_date {
        fields.date = Some(validate_date(y, m, d, short_year, era == Some(true))?);
    } else if era.is_some() {
        return Err(DtErr::BadFormat);
    }
    Ok(Parsed::Fields(fields))
}

/// `Y-M-D`, `Y/M/D`, `M-D-Y`, `YYYYMMDD`: returns (year, month, day, two-digit year).
fn parse_date_fields(c: &mut Cursor<'_>) -> Result<(i64, i64, i64, bool), DtErr> {
    let (a, a_len) = c.digits().ok_or(DtErr::BadFormat)?;
    let sep = match c.peek() {
        Some(s @ (b'-' | b'/' | b'.')) => s,
        _ if a_len == 8 => return Ok((a / 10_000, a / 100 % 100, a % 100, false)),
        _ => return Err(DtErr::BadFormat),
    };
    c.i += 1;
    let (b, b_len) = c.digits().ok_or(DtErr::BadFormat)?;
    if !c.eat(sep) {
        return Err(DtErr::BadFormat);
    }
    let (d, d_len) = c.digits().ok_or(DtErr::BadFormat)?;
    if b_len > 2 || a_len > 9 || d_len > 9 {
        return Err(DtErr::FieldOverflow);
    }
    if a_len >= 3 {
        if d_len > 2 {
            return Err(DtErr::BadFormat);
        }
        Ok((a, b, d, false))
    } else {
        // DateStyle MDY: month, day, year.
        Ok((d, a, b, d_len <= 2))
    }
}

/// Applies the era and two-digit-year rules, checks month and day.
fn validate_date(
    year: i64,
    month: i64,
    day: i64,
    short_year: bool,
    bc: bool,
) -> Result<(i64, u32, u32), DtErr> {
    let year = if bc {
        if year <= 0 {
            return Err(DtErr::FieldOverflow);
        }
        1 - year
    } else if short_year {
        if year < 70 {
            year + 2000
        } else {
            year + 1900
        }
    } else if year <= 0 {
        return Err(DtErr::FieldOverflow);
    } else {
        year
    };
    let month = u32::try_from(month)
        .ok()
        .filter(|m| (1..=12).contains(m))
        .ok_or(DtErr::FieldOverflow)?;
    let day = u32::try_from(day)
        .ok()
        .filter(|d| (1..=days_in_month(year, month)).contains(d))
        .ok_or(DtErr::FieldOverflow)?;
    Ok((year, month, day))
}

/// `H:MM[:SS[.frac]]` as (hour, microseconds past the hour); the hour is
/// checked by [`clock_micros`] once AM/PM is known.
fn parse_time_fields(c: &mut Cursor<'_>) -> Result<(i64, i64), DtErr> {
    let (hour, _) = c.digits().ok_or(DtErr::BadFormat)?;
    if !c.eat(b':') {
        return Err(DtErr::BadFormat);
    }
    // Like PostgreSQL, empty minutes, seconds or fraction count as zero
    // (`12:`, `12:00:`, `12:00:00.`).
    let minute = c.digits().map_or(0, |(v, _)| v);
    let mut second = 0;
    let mut frac = 0;
    if c.eat(b':') {
        second = c.digits().map_or(0, |(v, _)| v);
        if c.eat(b'.') {
            frac = parse_fraction(c);
        }
    }
    if minute > 59 || second > 60 {
        return Err(DtErr::FieldOverflow);
    }
    Ok((
        hour,
        minute * USECS_PER_MINUTE + second * USECS_PER_SEC + frac,
    ))
}

/// Microseconds since midnight, 00:00:00 to 24:00:00. With AM/PM (`pm` is
/// `Some(true)`) the hour must be 0..=12 and 12 AM is midnight, as in PostgreSQL.
fn clock_micros(hour: i64, rest: i64, pm: Option<bool>) -> Result<i64, DtErr> {
    let hour = match pm {
        Some(_) if hour > 12 => return Err(DtErr::FieldOverflow),
        Some(false) if hour == 12 => 0,
        Some(true) if hour < 12 => hour + 12,
        _ => hour,
    };
    if hour > 24 {
        return Err(DtErr::FieldOverflow);
    }
    let total = hour * USECS_PER_HOUR + rest;
    if total > USECS_PER_DAY {
        return Err(DtErr::FieldOverflow);
    }
    Ok(total)
}

/// Digits after a decimal point (possibly none) as microseconds.
fn parse_fraction(c: &mut Cursor<'_>) -> i64 {
    let start = c.i;
    while c.peek().is_some_and(|d| d.is_ascii_digit()) {
        c.i += 1;
    }
    // The bytes are ASCII digits, so this is valid UTF-8.
    fraction_micros(std::str::from_utf8(&c.b[start..c.i]).unwrap_or(""))
}

/// `ParseFractionalSecond`: PostgreSQL reads `.digits` as a double and rounds
/// `frac * 10^6` half to even, so `.16207650` is 162076 µs (the double is a
/// hair below ...765). Done the same way here to print the same microseconds.
pub(super) fn fraction_micros(digits: &str) -> i64 {
    if digits.is_empty() {
        return 0;
    }
    let frac: f64 = format!("0.{digits}").parse().unwrap_or(0.0);
    (frac * 1_000_000.0).round_ties_even() as i64
}

/// `z`, `utc`, `gmt`, `±HH`, `±HHMM`, `±HH:MM[:SS]` as seconds east.
fn parse_zone(c: &mut Cursor<'_>) -> Result<i64, DtErr> {
    if c.word("z") || c.word("utc") || c.word("gmt") {
        return Ok(0);
    }
    let negative = match c.peek() {
        Some(b'+') => false,
        Some(b'-') => true,
        _ => return Err(DtErr::BadFormat),
    };
    c.i += 1;
    let (first, len) = c.digits().ok_or(DtErr::BadFormat)?;
    let (hours, minutes, seconds) = if c.eat(b':') {
        let (m, _) = c.digits().ok_or(DtErr::BadFormat)?;
        let s = if c.eat(b':') {
            c.digits().ok_or(DtErr::BadFormat)?.0
        } else {
            0
        };
        (first, m, s)
    } else {
        // PostgreSQL reads run-together digits as hours and two minute digits.
        match len {
            1 | 2 => (first, 0, 0),
            _ => (first / 100, first % 100, 0),
        }
    };
    if hours > TZ_HOURS_MAX || minutes >= 60 || seconds >= 60 {
        return Err(DtErr::TzOverflow);
    }
    let east = hours * 3600 + minutes * 60 + seconds;
    Ok(if negative { -east } else { east })
}

fn date_out_of_range(input: &str) -> PgError {
    PgError::new(
        SqlState::DATETIME_FIELD_OVERFLOW,
        format!("date out of range: \"{input}\""),
    )
}

/// `date_in`. A time or zone after the date is accepted and ignored.
pub(super) fn parse_date(s: &str) -> PgResult<i32> {
    let err = |e: DtErr| e.into_pg("date", s);
    match parse(s).map_err(err)? {
        Parsed::Infinity => Ok(i32::MAX),
        Parsed::NegInfinity => Ok(i32::MIN),
        Parsed::Epoch => Ok(days_from_civil(1970, 1, 1) as i32),
        Parsed::Fields(Fields {
            date: Some((y, m, d)),
            ..
        }) => {
            let days = days_from_civil(y, m, d);
            if !(DATE_MIN..DATE_END).contains(&days) {
                return Err(date_out_of_range(s));
            }
            i32::try_from(days).map_err(|_| date_out_of_range(s))
        }
        Parsed::Fields(_) => Err(err(DtErr::BadFormat)),
    }
}

/// `time_in`. A date before the time and a zone after it are ignored.
pub(super) fn parse_time(s: &str) -> PgResult<i64> {
    let type_name = "time";
    match parse(s).map_err(|e| e.into_pg(type_name, s))? {
        Parsed::Fields(Fields { time: Some(t), .. }) => Ok(t),
        _ => Err(DtErr::BadFormat.into_pg(type_name, s)),
    }
}

/// `timestamp_in` / `timestamptz_in`. Without a zone the input is UTC (the
/// session zone); `timestamp` ignores a zone, as PostgreSQL does.
pub(super) fn parse_timestamp(s: &str, with_zone: bool) -> PgResult<i64> {
    let type_name = if with_zone {
        "timestamp with time zone"
    } else {
        "timestamp"
    };
    let fields = match parse(s).map_err(|e| e.into_pg(type_name, s))? {
        Parsed::Infinity => return Ok(i64::MAX),
        Parsed::NegInfinity => return Ok(i64::MIN),
        Parsed::Epoch => return Ok(days_from_civil(1970, 1, 1) * USECS_PER_DAY),
        Parsed::Fields(f) => f,
    };
    let Some((y, m, d)) = fields.date else {
        return Err(DtErr::BadFormat.into_pg(type_name, s));
    };
    let zone = if with_zone {
        fields.zone.unwrap_or(0)
    } else {
        0
    };
    let micros = i128::from(days_from_civil(y, m, d)) * i128::from(USECS_PER_DAY)
        + i128::from(fields.time.unwrap_or(0))
        - i128::from(zone) * i128::from(USECS_PER_SEC);
    i64::try_from(micros)
        .ok()
        .filter(|t| (TIMESTAMP_MIN..TIMESTAMP_END).contains(t))
        .ok_or_else(|| {
            PgError::new(
                SqlState::DATETIME_FIELD_OVERFLOW,
                format!("timestamp out of range: \"{s}\""),
            )
        })
}
