//! Turning result values into the strings sqllogictest compares, the way the
//! reference runner (SQLite's `sqllogictest.c`) prints them, and comparing
//! them with a record's expectation.
//!
//! - `NULL` for a null in any column.
//! - `I` columns: integers as `%d`; reals and numerics truncated toward zero
//!   (the reference reads every `I` value with `sqlite3_column_int64`).
//! - `R` columns: any number as `%.3f`.
//! - `T` columns and everything else: the PostgreSQL text form; an empty
//!   string is `(empty)`, and bytes outside printable ASCII become `@`.
//! - Booleans keep PostgreSQL's text form (`t`/`f`) whatever the column letter:
//!   SQLite answers comparisons with integers, PostgreSQL with booleans, and
//!   that difference is a documented divergence, not something to paper over.

use std::cmp::Ordering;

use md5::{Digest, Md5};
use teller_net::types::{encode_text, Decimal, Type, Value};

use super::record::{Expected, SortMode};

/// Formats one value for a column with type letter `letter`.
pub fn format_value(value: &Value, ty: Type, letter: char) -> String {
    match (value, letter) {
        (Value::Null, _) => "NULL".to_string(),
        (Value::Bool(b), _) => if *b { "t" } else { "f" }.to_string(),
        (v, 'I') => match as_integer(v) {
            Some(n) => n.to_string(),
            None => text_form(v, ty),
        },
        (v, 'R') => match as_real(v) {
            Some(f) => format!("{f:.3}"),
            None => text_form(v, ty),
        },
        (v, _) => text_form(v, ty),
    }
}

fn as_integer(v: &Value) -> Option<i128> {
    match v {
        Value::Int2(n) => Some(i128::from(*n)),
        Value::Int4(n) => Some(i128::from(*n)),
        Value::Int8(n) => Some(i128::from(*n)),
        Value::Float4(f) => float_to_integer(f64::from(*f)),
        Value::Float8(f) => float_to_integer(*f),
        Value::Numeric(d) => d
            .trunc()
            .mantissa()
            .checked_div(10i128.pow(d.trunc().scale())),
        _ => None,
    }
}

fn float_to_integer(f: f64) -> Option<i128> {
    // `as` saturates; NaN has no integer form and keeps its text.
    (!f.is_nan()).then_some(f.trunc() as i128)
}

fn as_real(v: &Value) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    match v {
        Value::Int2(n) => Some(f64::from(*n)),
        Value::Int4(n) => Some(f64::from(*n)),
        Value::Int8(n) => Some(*n as f64),
        Value::Float4(f) => Some(f64::from(*f)),
        Value::Float8(f) => Some(*f),
        Value::Numeric(d) => Decimal::to_f64(d),
        _ => None,
    }
}

fn text_form(v: &Value, ty: Type) -> String {
    let mut out = bytes::BytesMut::new();
    match v {
        Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        other => encode_text(other, ty, &mut out),
    }
    if out.is_empty() {
        return "(empty)".to_string();
    }
    out.iter()
        .map(|&b| {
            if (b' '..=b'~').contains(&b) {
                b as char
            } else {
                '@'
            }
        })
        .collect()
}

/// Sorts formatted rows as the record asks and flattens them into values.
pub fn sorted_values(mut rows: Vec<Vec<String>>, sort: SortMode) -> Vec<String> {
    if sort == SortMode::Rows {
        rows.sort_by(|a, b| compare_rows(a, b));
    }
    let mut values: Vec<String> = rows.into_iter().flatten().collect();
    if sort == SortMode::Values {
        values.sort();
    }
    values
}

fn compare_rows(a: &[String], b: &[String]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The reference runner's result hash: MD5 over every value followed by `\n`.
pub fn hash_values(values: &[String]) -> String {
    let mut md5 = Md5::new();
    for v in values {
        md5.update(v.as_bytes());
        md5.update(b"\n");
    }
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks values (`width` per row) against the expectation; the error says how
/// they differ.
pub fn check(expected: &Expected, values: &[String], width: usize) -> Result<(), String> {
    match expected {
        Expected::Hash { values: n, md5 } => {
            let got = hash_values(values);
            if *n == values.len() && *md5 == got {
                Ok(())
            } else {
                Err(format!(
                    "expected {n} values hashing to {md5}, got {} values hashing to {got}",
                    values.len()
                ))
            }
        }
        Expected::Lines(lines) => {
            if lines.len() == values.len() && lines.iter().zip(values).all(|(l, v)| l == v) {
                return Ok(());
            }
            // One row per line, values separated by single spaces.
            if width > 0 && lines.len() * width == values.len() {
                let rows = values.chunks(width).map(|r| r.join(" "));
                if lines.iter().zip(rows).all(|(l, r)| *l == r) {
                    return Ok(());
                }
            }
            Err(format!(
                "expected:\n    {}\ngot:\n    {}",
                preview(lines),
                preview(values)
            ))
        }
    }
}

/// The first values of a list, for failure messages.
fn preview(values: &[String]) -> String {
    const SHOWN_MAX: usize = 12;
    let mut out: Vec<&str> = values.iter().take(SHOWN_MAX).map(String::as_str).collect();
    if values.len() > SHOWN_MAX {
        out.push("...");
    }
    if out.is_empty() {
        "(no rows)".to_string()
    } else {
        out.join("\n    ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_reference() {
        let f = |v: Value, ty: Type, l: char| format_value(&v, ty, l);
        assert_eq!(f(Value::Int4(-7), Type::Int4, 'I'), "-7");
        assert_eq!(f(Value::Float8(-2.9), Type::Float8, 'I'), "-2");
        assert_eq!(
            f(Value::Numeric(Decimal::new(4250, 2)), Type::Numeric, 'I'),
            "42"
        );
        assert_eq!(f(Value::Int4(3), Type::Int4, 'R'), "3.000");
        assert_eq!(f(Value::Float8(2.0 / 3.0), Type::Float8, 'R'), "0.667");
        assert_eq!(f(Value::Null, Type::Int4, 'I'), "NULL");
        assert_eq!(f(Value::Text(String::new()), Type::Text, 'T'), "(empty)");
        assert_eq!(f(Value::Text("a\tb".into()), Type::Text, 'T'), "a@b");
        assert_eq!(f(Value::Bool(false), Type::Bool, 'I'), "f");
        assert_eq!(f(Value::Int4(5), Type::Int4, 'T'), "5");
    }

    #[test]
    fn sorts_and_hashes() {
        let rows = vec![
            vec!["b".to_string(), "1".to_string()],
            vec!["a".to_string(), "2".to_string()],
        ];
        assert_eq!(
            sorted_values(rows.clone(), SortMode::Rows),
            ["a", "2", "b", "1"]
        );
        assert_eq!(
            sorted_values(rows.clone(), SortMode::Values),
            ["1", "2", "a", "b"]
        );
        assert_eq!(
            sorted_values(rows, SortMode::Unsorted),
            ["b", "1", "a", "2"]
        );
        // printf '1\n2\n' | md5sum
        assert_eq!(
            hash_values(&["1".into(), "2".into()]),
            "6ddb4095eb719e2a9f0a3f95677d24e0"
        );
    }

    #[test]
    fn checks_values_rows_and_hashes() {
        let values: Vec<String> = ["1", "a b", "2", "c"].map(String::from).to_vec();
        let lines = |l: &[&str]| Expected::Lines(l.iter().map(|s| s.to_string()).collect());
        assert!(check(&lines(&["1", "a b", "2", "c"]), &values, 2).is_ok());
        assert!(check(&lines(&["1 a b", "2 c"]), &values, 2).is_ok());
        assert!(check(&lines(&["1 a b", "2 d"]), &values, 2).is_err());
        assert!(check(&lines(&[]), &values, 2).is_err());
        let hash = Expected::Hash {
            values: 4,
            md5: hash_values(&values),
        };
        assert!(check(&hash, &values, 2).is_ok());
        let wrong_count = Expected::Hash {
            values: 3,
            md5: hash_values(&values),
        };
        assert!(check(&wrong_count, &values, 2).is_err());
    }
}
