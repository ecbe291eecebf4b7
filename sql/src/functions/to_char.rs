//! `to_char`: formatting timestamps and numbers with PostgreSQL's template
//! patterns.
//!
//! - **Timestamps:** `YYYY YYY YY Y IYYY MM MON Mon mon MONTH Month month DD
//!   DDD D ID DAY Day day DY Dy dy IW Q CC J HH HH12 HH24 MI SS SSSS MS US
//!   AM PM am pm A.M. P.M. a.m. p.m. TZ tz OF`, with the `FM` prefix (no
//!   padding) and `TH`/`th` suffix (ordinals). Text in double quotes and
//!   backslash-escaped characters are copied.
//! - **Numbers:** `9 0 . D , G S MI PL PR FM TH th`. Overflow prints `#` in
//!   every digit position, as PostgreSQL does. `EEEE`, `RN` and `V` are
//!   refused (0A000) rather than printed wrongly.

use rust_decimal::{Decimal, RoundingStrategy};
use teller_net::types::Value;
use teller_net::{PgError, PgResult};

use super::datetime::{self, Fields, MICROS_PER_DAY};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
/// Width of blank-padded month and day names (the longest, "September").
const NAME_WIDTH: usize = 9;
/// Longest template accepted, in bytes.
pub const TEMPLATE_BYTES_MAX: usize = 4096;

pub(super) fn to_char(value: &Value, template: &str) -> PgResult<Value> {
    if template.len() > TEMPLATE_BYTES_MAX {
        return Err(PgError::new(
            teller_net::SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("to_char templates are limited to {TEMPLATE_BYTES_MAX} bytes"),
        ));
    }
    Ok(Value::Text(match value {
        Value::Timestamp(t) => format_timestamp(*t, template, false),
        Value::Timestamptz(t) => format_timestamp(*t, template, true),
        Value::Date(d) => format_timestamp(i64::from(*d) * MICROS_PER_DAY, template, false),
        other => format_number(number(other)?, template)?,
    }))
}

fn number(v: &Value) -> PgResult<Option<Decimal>> {
    Ok(match v {
        Value::Int2(n) => Some(Decimal::from(*n)),
        Value::Int4(n) => Some(Decimal::from(*n)),
        Value::Int8(n) => Some(Decimal::from(*n)),
        Value::Numeric(d) => Some(*d),
        // A float beyond a decimal's range prints as overflow (`#`).
        Value::Float4(f) => super::math::float_to_decimal(f64::from(*f)),
        Value::Float8(f) => super::math::float_to_decimal(*f),
        other => return Err(PgError::internal(format!("to_char of {other:?}"))),
    })
}

/// Timestamp patterns, longest first so that `HH24` wins over `HH`.
const DATE_PATTERNS: &[&str] = &[
    "A.M.", "P.M.", "a.m.", "p.m.", "HH24", "HH12", "IYYY", "YYYY", "SSSS", "MONTH", "Month",
    "month", "YYY", "MON", "Mon", "mon", "DAY", "Day", "day", "DDD", "AM", "PM", "am", "pm", "HH",
    "MI", "SS", "MS", "US", "YY", "MM", "DD", "DY", "Dy", "dy", "ID", "IW", "CC", "TZ", "tz", "OF",
    "Y", "D", "Q", "J",
];

fn format_timestamp(micros: i64, template: &str, with_zone: bool) -> String {
    let f = datetime::fields(micros);
    let days = micros.div_euclid(MICROS_PER_DAY);
    let mut out = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(r) = copy_literal(rest, &mut out) {
            rest = r;
            continue;
        }
        let (fill_mode, after_fm) = match rest.strip_prefix("FM") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        match DATE_PATTERNS.iter().find(|p| after_fm.starts_with(**p)) {
            Some(pattern) => {
                let mut text = date_field(pattern, &f, days, fill_mode, with_zone);
                rest = &after_fm[pattern.len()..];
                if let Some((with_suffix, r)) = ordinal_suffix(rest, &text) {
                    text = with_suffix;
                    rest = r;
                }
                out.push_str(&text);
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Quoted text and backslash escapes are copied; returns the rest.
fn copy_literal<'a>(rest: &'a str, out: &mut String) -> Option<&'a str> {
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"').unwrap_or(quoted.len());
        out.push_str(&quoted[..end]);
        return Some(quoted.get(end + 1..).unwrap_or(""));
    }
    let escaped = rest.strip_prefix('\\')?;
    let c = escaped.chars().next()?;
    out.push(c);
    Some(&escaped[c.len_utf8()..])
}

/// `TH`/`th` after a number appends its English ordinal suffix.
fn ordinal_suffix<'a>(rest: &'a str, number: &str) -> Option<(String, &'a str)> {
    let upper = rest.starts_with("TH");
    if !upper && !rest.starts_with("th") {
        return None;
    }
    let n: i64 = number.trim().parse().ok()?;
    let suffix = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    let suffix = if upper {
        suffix.to_uppercase()
    } else {
        suffix.to_string()
    };
    Some((format!("{number}{suffix}"), &rest[2..]))
}

fn padded(n: i64, width: usize, fill_mode: bool) -> String {
    if fill_mode {
        n.to_string()
    } else if n < 0 {
        format!("-{:0width$}", -n, width = width)
    } else {
        format!("{n:0width$}")
    }
}

fn name(full: &str, pattern: &str, fill_mode: bool) -> String {
    let short = matches!(pattern, "MON" | "Mon" | "mon" | "DY" | "Dy" | "dy");
    let base: String = if short {
        full.chars().take(3).collect()
    } else {
        full.to_string()
    };
    let cased = if pattern.chars().all(|c| c.is_ascii_uppercase()) {
        base.to_uppercase()
    } else if pattern.chars().all(|c| c.is_ascii_lowercase()) {
        base.to_lowercase()
    } else {
        base
    };
    if short || fill_mode {
        cased
    } else {
        format!("{cased:<NAME_WIDTH$}")
    }
}

fn date_field(pattern: &str, f: &Fields, days: i64, fm: bool, with_zone: bool) -> String {
    // Years are printed without a year 0 (1 BC is astronomical 0).
    let year = if f.year > 0 { f.year } else { 1 - f.year };
    let hour12 = if f.hour % 12 == 0 { 12 } else { f.hour % 12 };
    let pm = f.hour >= 12;
    let dow = (days + 6).rem_euclid(7); // 0 = Sunday; 2000-01-01 was a Saturday.
    let doy = days - datetime::pg_days(f.year, 1, 1) + 1;
    match pattern {
        "YYYY" => padded(year, 4, fm),
        "YYY" => padded(year % 1000, 3, fm),
        "YY" => padded(year % 100, 2, fm),
        "Y" => padded(year % 10, 1, fm),
        "IYYY" => padded(iso_year_week(f, days).0, 4, fm),
        "IW" => padded(iso_year_week(f, days).1, 2, fm),
        "MM" => padded(f.month, 2, fm),
        "MONTH" | "Month" | "month" | "MON" | "Mon" | "mon" => {
            name(MONTHS[(f.month - 1) as usize], pattern, fm)
        }
        "DAY" | "Day" | "day" | "DY" | "Dy" | "dy" => name(DAYS[dow as usize], pattern, fm),
        "DD" => padded(f.day, 2, fm),
        "DDD" => padded(doy, 3, fm),
        "D" => (dow + 1).to_string(),
        "ID" => (if dow == 0 { 7 } else { dow }).to_string(),
        "Q" => ((f.month - 1) / 3 + 1).to_string(),
        "CC" => padded((year + 99) / 100, 2, fm),
        "J" => (days + 2_451_545).to_string(),
        "HH" | "HH12" => padded(hour12, 2, fm),
        "HH24" => padded(f.hour, 2, fm),
        "MI" => padded(f.minute, 2, fm),
        "SS" => padded(f.second, 2, fm),
        "SSSS" => ((f.hour * 60 + f.minute) * 60 + f.second).to_string(),
        "MS" => padded(f.micros / 1000, 3, fm),
        "US" => padded(f.micros, 6, fm),
        "AM" | "PM" => (if pm { "PM" } else { "AM" }).to_string(),
        "am" | "pm" => (if pm { "pm" } else { "am" }).to_string(),
        "A.M." | "P.M." => (if pm { "P.M." } else { "A.M." }).to_string(),
        "a.m." | "p.m." => (if pm { "p.m." } else { "a.m." }).to_string(),
        "TZ" if with_zone => "UTC".to_string(),
        "tz" if with_zone => "utc".to_string(),
        "OF" if with_zone => "+00".to_string(),
        _ => String::new(),
    }
}

fn iso_year_week(f: &Fields, days: i64) -> (i64, i64) {
    let week1_monday = |y: i64| {
        let jan4 = datetime::pg_days(y, 1, 4);
        jan4 - (jan4 + 5).rem_euclid(7)
    };
    let mut y = f.year;
    if days < week1_monday(y) {
        y -= 1;
    } else if days >= week1_monday(y + 1) {
        y += 1;
    }
    (y, (days - week1_monday(y)) / 7 + 1)
}

/// A parsed number template.
#[derive(Default)]
struct NumberTemplate {
    /// Digit positions (`9` or `0`) before and after the decimal point.
    int_digits: usize,
    frac_digits: usize,
    /// Index among the integer positions of the first `0` (forces zeros).
    first_zero: Option<usize>,
    has_point: bool,
    fill_mode: bool,
    /// An explicit sign pattern (S, MI, PR, SG) replaces the default sign.
    explicit_sign: bool,
    /// `S` before the digits: the sign sits just before the first digit.
    leading_sign: bool,
    /// The `9`/`0` characters after the point, in order.
    frac_pattern: Vec<char>,
}

fn parse_number_template(template: &str) -> PgResult<NumberTemplate> {
    let mut t = NumberTemplate {
        fill_mode: template.contains("FM"),
        ..Default::default()
    };
    for unsupported in ["EEEE", "RN", "rn", "V"] {
        if template.contains(unsupported) {
            return Err(PgError::unsupported(format!(
                "to_char pattern {unsupported} is not supported yet"
            )));
        }
    }
    t.explicit_sign = ["S", "MI", "PR"].iter().any(|p| template.contains(p));
    t.leading_sign = template
        .trim_start_matches("FM")
        .trim_start()
        .starts_with('S');
    for c in template.chars() {
        match c {
            '9' | '0' if t.has_point => {
                t.frac_digits += 1;
                t.frac_pattern.push(c);
            }
            '9' | '0' => {
                if c == '0' && t.first_zero.is_none() {
                    t.first_zero = Some(t.int_digits);
                }
                t.int_digits += 1;
            }
            '.' | 'D' if !t.has_point => t.has_point = true,
            _ => {}
        }
    }
    Ok(t)
}

fn format_number(value: Option<Decimal>, template: &str) -> PgResult<String> {
    let t = parse_number_template(template)?;
    let rounded = value.map(|d| {
        d.round_dp_with_strategy(t.frac_digits as u32, RoundingStrategy::MidpointAwayFromZero)
    });
    let negative = rounded.is_some_and(|d| d.is_sign_negative() && !d.is_zero());
    let digits = rounded.map(|d| {
        let mut abs = d.abs();
        abs.rescale(t.frac_digits as u32);
        let text = abs.to_string();
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let int = if int == "0" {
            String::new()
        } else {
            int.to_string()
        };
        (int, frac.to_string())
    });
    let overflow = match &digits {
        None => true,
        Some((int, _)) => int.len() > t.int_digits,
    };
    let (int, frac) = digits.unwrap_or_default();
    let mut body = String::new();
    let mut int_pos = 0;
    let mut frac_pos = 0;
    let mut printed_digit = false;
    let mut rest = template;
    let frac_chars: Vec<char> = frac.chars().collect();
    let sign_char = if negative { '-' } else { '+' };
    // A zero value prints one `0` before the point when nothing else would
    // show it: without a point, or in fill mode with an all-zero fraction.
    let zero_before_point = !t.has_point || (t.fill_mode && frac.trim_end_matches('0').is_empty());
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("FM") {
            rest = r;
            continue;
        }
        if let Some(r) = copy_literal(rest, &mut body) {
            rest = r;
            continue;
        }
        let pattern = ["MI", "PL", "PR", "SG", "TH", "th"]
            .into_iter()
            .find(|p| rest.starts_with(p));
        if let Some(p) = pattern {
            rest = &rest[2..];
            match p {
                "MI" => body.push(if negative { '-' } else { ' ' }),
                "PL" => body.push(if negative { ' ' } else { '+' }),
                "SG" => body.push(sign_char),
                "PR" if negative => {
                    body.insert(first_non_blank(&body), '<');
                    body.push('>');
                }
                "PR" => body.push(' '),
                _ => {
                    let n = int.parse::<i64>().unwrap_or(0);
                    let n = n.to_string();
                    if let Some((with, _)) = ordinal_suffix(p, &n) {
                        body.push_str(&with[n.len()..]);
                    }
                }
            }
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        rest = &rest[c.len_utf8()..];
        match c {
            '9' | '0' if int_pos < t.int_digits => {
                let lead = t.int_digits.saturating_sub(int.len());
                let ch = if overflow {
                    '#'
                } else if int_pos >= lead {
                    printed_digit = true;
                    int.as_bytes()[int_pos - lead] as char
                } else if t.first_zero.is_some_and(|z| int_pos >= z)
                    || (int_pos + 1 == t.int_digits && zero_before_point)
                {
                    printed_digit = true;
                    '0'
                } else {
                    ' '
                };
                body.push(ch);
                int_pos += 1;
            }
            '9' | '0' => {
                let ch = if overflow {
                    '#'
                } else {
                    frac_chars.get(frac_pos).copied().unwrap_or('0')
                };
                body.push(ch);
                frac_pos += 1;
            }
            '.' | 'D' => body.push('.'),
            ',' | 'G' => body.push(if printed_digit { ',' } else { ' ' }),
            'S' if t.leading_sign => {}
            'S' => body.push(sign_char),
            other => body.push(other),
        }
    }
    if t.leading_sign || !t.explicit_sign {
        let at = first_non_blank(&body);
        let default = if negative { '-' } else { ' ' };
        body.insert(at, if t.leading_sign { sign_char } else { default });
    }
    if t.fill_mode {
        body = body.trim_start().to_string();
        if t.has_point && !overflow {
            body = strip_fm_fraction(&body, &t.frac_pattern);
        }
    }
    Ok(body)
}

fn first_non_blank(body: &str) -> usize {
    body.find(|c: char| c != ' ').unwrap_or(body.len())
}

/// In fill mode, trailing zeros printed by `9` positions after the point go
/// (those printed by `0` positions stay).
fn strip_fm_fraction(body: &str, frac_pattern: &[char]) -> String {
    let Some(point) = body.find('.') else {
        return body.to_string();
    };
    let (int, frac) = body.split_at(point + 1);
    let digits_end = frac
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(frac.len());
    let (digits, tail) = frac.split_at(digits_end);
    let mut keep: Vec<char> = digits.chars().collect();
    while keep.last() == Some(&'0') && frac_pattern.get(keep.len() - 1) == Some(&'9') {
        keep.pop();
    }
    format!("{int}{}{tail}", keep.into_iter().collect::<String>())
}
