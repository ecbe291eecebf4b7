//! Differential test against real PostgreSQL 15: `pg15/cases.tsv` holds what
//! PostgreSQL 15.18 answered for ~5,400 inputs (text output via the type's
//! output function, SQLSTATE on error, and the type's send function in hex),
//! recorded by `pg15/generate.py` with DateStyle ISO, TimeZone UTC,
//! IntervalStyle postgres, extra_float_digits 1, bytea_output hex. Every row
//! must agree with our codecs, except the documented divergences below.
//!
//! To widen the net, run `generate.py` against a local PostgreSQL 15 with more
//! random cases; it is seeded, so the committed file is reproducible. Known
//! limits not in the corpus: `numeric` beyond `Decimal` (more than 28
//! fractional digits or 96 bits of mantissa) is refused with 22003.

use bytes::BytesMut;
use teller_net::types::{decode_binary, decode_text, encode_binary, encode_text, Type};

const CASES: &str = include_str!("pg15/cases.tsv");

/// Inputs PostgreSQL accepts that TellerDB refuses on purpose, with the reason.
/// Each must fail with the given SQLSTATE; anything else is a mismatch.
const KNOWN_DIVERGENCES: &[(&str, &str, &str, &str)] = &[
    (
        "date",
        "2024-01-02-",
        "22007",
        "PostgreSQL ignores a stray trailing separator",
    ),
    (
        "date",
        "2024--01-02",
        "22007",
        "PostgreSQL ignores a doubled separator",
    ),
    (
        "timestamp",
        "2024-01-02X03:04",
        "22007",
        "PostgreSQL reads X as a military time zone and drops the time",
    ),
    (
        "timestamptz",
        "2024-01-02X03:04",
        "22007",
        "military time zone letters are not supported",
    ),
    (
        "interval",
        "1 day #",
        "22007",
        "PostgreSQL ignores stray punctuation",
    ),
    (
        "interval",
        "- 1 day",
        "22007",
        "a sign separated from its number",
    ),
];

/// COPY text format unescaping.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn codecs_agree_with_postgres_15() {
    let mut mismatches = Vec::new();
    let mut rows = 0;
    for line in CASES.lines() {
        let fields: Vec<String> = line.split('\t').map(unescape).collect();
        let [type_name, input, expected, send_hex] = fields.as_slice() else {
            panic!("malformed line {line:?}");
        };
        rows += 1;
        let ty = Type::ALL
            .into_iter()
            .find(|t| t.name() == type_name)
            .unwrap_or_else(|| panic!("unknown type {type_name}"));
        let known = KNOWN_DIVERGENCES
            .iter()
            .find(|(t, i, _, _)| t == type_name && i == input);
        let ours = decode_text(ty, input.as_bytes());
        let got = match &ours {
            Ok(v) => {
                let mut out = BytesMut::new();
                encode_text(v, ty, &mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
            Err(e) => format!("ERROR:{}", e.code.code()),
        };
        if let Some((_, _, code, _)) = known {
            if got != format!("ERROR:{code}") {
                mismatches.push(format!(
                    "{type_name} {input:?}: documented divergence now gives {got}"
                ));
            }
            continue;
        }
        if &got != expected {
            mismatches.push(format!(
                "{type_name} {input:?}: postgres {expected:?}, ours {got:?}"
            ));
            continue;
        }
        if let Ok(v) = ours {
            let mut out = BytesMut::new();
            encode_binary(&v, ty, &mut out).expect("encodes");
            if &hex(&out) != send_hex {
                mismatches.push(format!(
                    "{type_name} {input:?}: postgres send {send_hex}, ours {}",
                    hex(&out)
                ));
            }
            match decode_binary(ty, &out) {
                Ok(back)
                    if back == v
                        || matches!(v, teller_net::types::Value::Float4(f) if f.is_nan())
                        || matches!(v, teller_net::types::Value::Float8(f) if f.is_nan()) => {}
                other => mismatches.push(format!(
                    "{type_name} {input:?}: binary round trip gave {other:?}"
                )),
            }
        }
    }
    assert!(rows > 2000, "only {rows} rows");
    assert!(
        mismatches.is_empty(),
        "{} of {rows} rows disagree with PostgreSQL 15:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
