//! String and binary-string functions. Positions and lengths count
//! characters (code points), as PostgreSQL does for UTF-8 text; `octet_length`
//! and the bytea variants count bytes.

use md5::{Digest, Md5};
use teller_net::types::Value;
use teller_net::{PgError, PgResult, SqlState};

use super::{check_result_len, Func, SUBSTRING_ERROR};

/// Characters per line of PostgreSQL's base64 output.
const BASE64_LINE_CHARS: usize = 76;
const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Argument `i` as text.
pub(super) fn arg(v: &[Value], i: usize) -> PgResult<String> {
    match v.get(i) {
        Some(Value::Text(s)) => Ok(s.clone()),
        other => Err(PgError::internal(format!(
            "text argument expected, got {other:?}"
        ))),
    }
}

fn int(v: &[Value], i: usize) -> PgResult<i64> {
    match v.get(i) {
        Some(Value::Int2(n)) => Ok(i64::from(*n)),
        Some(Value::Int4(n)) => Ok(i64::from(*n)),
        Some(Value::Int8(n)) => Ok(*n),
        other => Err(PgError::internal(format!(
            "integer argument expected, got {other:?}"
        ))),
    }
}

fn bytes(v: &[Value], i: usize) -> PgResult<&[u8]> {
    match v.get(i) {
        Some(Value::Bytea(b)) => Ok(b),
        Some(Value::Text(s)) => Ok(s.as_bytes()),
        other => Err(PgError::internal(format!(
            "bytea argument expected, got {other:?}"
        ))),
    }
}

fn text(s: String) -> PgResult<Value> {
    check_result_len(s.len())?;
    Ok(Value::Text(s))
}

pub(super) fn call(func: Func, v: &[Value]) -> PgResult<Value> {
    match func {
        Func::Upper => text(arg(v, 0)?.to_uppercase()),
        Func::Lower => text(arg(v, 0)?.to_lowercase()),
        Func::Length => Ok(Value::Int4(match &v[0] {
            Value::Bytea(b) => b.len(),
            _ => arg(v, 0)?.chars().count(),
        } as i32)),
        Func::OctetLength => Ok(Value::Int4(bytes(v, 0)?.len() as i32)),
        Func::Substr => substr(
            &arg(v, 0)?,
            int(v, 1)?,
            v.get(2).map(|_| int(v, 2)).transpose()?,
        ),
        Func::StrPos => Ok(Value::Int4(strpos(&arg(v, 0)?, &arg(v, 1)?))),
        Func::Replace => {
            let (s, from, to) = (arg(v, 0)?, arg(v, 1)?, arg(v, 2)?);
            if from.is_empty() {
                return Ok(Value::Text(s));
            }
            let count = s.matches(from.as_str()).count();
            check_result_len(s.len() + count.saturating_mul(to.len()))?;
            text(s.replace(&from, &to))
        }
        Func::Btrim | Func::Ltrim | Func::Rtrim => {
            let chars = if v.len() > 1 { arg(v, 1)? } else { " ".into() };
            text(trim(&arg(v, 0)?, &chars, func))
        }
        Func::Lpad | Func::Rpad => {
            let fill = if v.len() > 2 { arg(v, 2)? } else { " ".into() };
            pad(&arg(v, 0)?, int(v, 1)?, &fill, func == Func::Lpad)
        }
        Func::Left | Func::Right => text(left_right(&arg(v, 0)?, int(v, 1)?, func == Func::Left)),
        Func::Concat => concat(v, ""),
        Func::ConcatWs => match &v[0] {
            Value::Null => Ok(Value::Null),
            _ => concat(&v[1..], &arg(v, 0)?),
        },
        Func::Repeat => {
            let (s, n) = (arg(v, 0)?, int(v, 1)?);
            let n = usize::try_from(n).unwrap_or(0);
            check_result_len(s.len().saturating_mul(n))?;
            text(s.repeat(n))
        }
        Func::Reverse => text(arg(v, 0)?.chars().rev().collect()),
        Func::Initcap => text(initcap(&arg(v, 0)?)),
        Func::SplitPart => split_part(&arg(v, 0)?, &arg(v, 1)?, int(v, 2)?),
        Func::StartsWith => Ok(Value::Bool(arg(v, 0)?.starts_with(arg(v, 1)?.as_str()))),
        Func::Translate => text(translate(&arg(v, 0)?, &arg(v, 1)?, &arg(v, 2)?)),
        Func::Md5 => Ok(Value::Text(hex(&Md5::digest(bytes(v, 0)?)))),
        Func::ToHex => Ok(Value::Text(match &v[0] {
            Value::Int8(n) => format!("{:x}", *n as u64),
            _ => format!("{:x}", int(v, 0)? as i32 as u32),
        })),
        Func::Chr => chr(int(v, 0)?),
        Func::Ascii => Ok(Value::Int4(
            arg(v, 0)?.chars().next().map_or(0, |c| c as i32),
        )),
        Func::Encode => encode(bytes(v, 0)?, &arg(v, 1)?),
        Func::Decode => decode(&arg(v, 0)?, &arg(v, 1)?),
        other => Err(PgError::internal(format!(
            "{other:?} is not a text function"
        ))),
    }
}

/// `substr(s, start [, count])`: characters `start .. start + count`, 1-based,
/// where positions before 1 simply select nothing.
fn substr(s: &str, start: i64, count: Option<i64>) -> PgResult<Value> {
    let end = match count {
        Some(n) if n < 0 => {
            return Err(PgError::new(
                SUBSTRING_ERROR,
                "negative substring length not allowed",
            ))
        }
        Some(n) => start.saturating_add(n),
        None => i64::MAX,
    };
    let out: String = s
        .chars()
        .enumerate()
        .filter(|(i, _)| {
            let pos = *i as i64 + 1;
            pos >= start && pos < end
        })
        .map(|(_, c)| c)
        .collect();
    Ok(Value::Text(out))
}

fn strpos(haystack: &str, needle: &str) -> i32 {
    match haystack.find(needle) {
        Some(byte) => haystack[..byte].chars().count() as i32 + 1,
        None => 0,
    }
}

fn trim(s: &str, chars: &str, func: Func) -> String {
    let set = |c: char| chars.contains(c);
    match func {
        Func::Ltrim => s.trim_start_matches(set),
        Func::Rtrim => s.trim_end_matches(set),
        _ => s.trim_matches(set),
    }
    .to_string()
}

fn pad(s: &str, len: i64, fill: &str, left: bool) -> PgResult<Value> {
    let len = usize::try_from(len).unwrap_or(0);
    let have = s.chars().count();
    if have >= len || fill.is_empty() {
        return Ok(Value::Text(s.chars().take(len).collect()));
    }
    let max_char = fill.chars().map(char::len_utf8).max().unwrap_or(1);
    check_result_len(len.saturating_mul(max_char))?;
    let padding: String = fill.chars().cycle().take(len - have).collect();
    Ok(Value::Text(if left {
        padding + s
    } else {
        s.to_string() + &padding
    }))
}

fn left_right(s: &str, n: i64, left: bool) -> String {
    let count = s.chars().count() as i64;
    let keep = if n >= 0 {
        n.min(count)
    } else {
        (count + n).max(0)
    } as usize;
    if left {
        s.chars().take(keep).collect()
    } else {
        s.chars().skip(count as usize - keep).collect()
    }
}

/// Joins the non-NULL values with `separator`.
fn concat(v: &[Value], separator: &str) -> PgResult<Value> {
    let mut out = String::new();
    let mut first = true;
    for value in v {
        if let Value::Text(s) = value {
            if !first {
                out.push_str(separator);
            }
            out.push_str(s);
            first = false;
            check_result_len(out.len())?;
        }
    }
    Ok(Value::Text(out))
}

/// Upper case after a non-alphanumeric character, lower case after one.
fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if in_word {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        in_word = c.is_alphanumeric();
    }
    out
}

fn split_part(s: &str, delimiter: &str, n: i64) -> PgResult<Value> {
    if n == 0 {
        return Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            "field position must not be zero",
        ));
    }
    let parts: Vec<&str> = if delimiter.is_empty() {
        vec![s]
    } else {
        s.split(delimiter).collect()
    };
    let index = if n > 0 {
        usize::try_from(n - 1).ok()
    } else {
        usize::try_from(parts.len() as i64 + n).ok()
    };
    let part = index.and_then(|i| parts.get(i)).copied().unwrap_or("");
    Ok(Value::Text(part.to_string()))
}

fn translate(s: &str, from: &str, to: &str) -> String {
    let from: Vec<char> = from.chars().collect();
    let to: Vec<char> = to.chars().collect();
    s.chars()
        .filter_map(|c| match from.iter().position(|&f| f == c) {
            Some(i) => to.get(i).copied(),
            None => Some(c),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn chr(code: i64) -> PgResult<Value> {
    const PROGRAM_LIMIT: SqlState = SqlState::PROGRAM_LIMIT_EXCEEDED;
    if code == 0 {
        return Err(PgError::new(PROGRAM_LIMIT, "null character not permitted"));
    }
    if code < 0 {
        return Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            "character number must be positive",
        ));
    }
    if code > 0x10FFFF {
        return Err(PgError::new(
            PROGRAM_LIMIT,
            format!("requested character too large for encoding: {code}"),
        ));
    }
    let c = u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| {
            PgError::new(
                PROGRAM_LIMIT,
                format!("requested character not valid for encoding: {code}"),
            )
        })?;
    Ok(Value::Text(c.to_string()))
}

fn unrecognized_encoding(format: &str) -> PgError {
    PgError::new(
        SqlState::INVALID_PARAMETER_VALUE,
        format!("unrecognized encoding: \"{format}\""),
    )
}

fn encode(data: &[u8], format: &str) -> PgResult<Value> {
    check_result_len(data.len().saturating_mul(4))?;
    let out = match format.to_ascii_lowercase().as_str() {
        "hex" => hex(data),
        "base64" => base64_encode(data),
        "escape" => escape_encode(data),
        _ => return Err(unrecognized_encoding(format)),
    };
    Ok(Value::Text(out))
}

fn decode(data: &str, format: &str) -> PgResult<Value> {
    let out = match format.to_ascii_lowercase().as_str() {
        "hex" => hex_decode(data)?,
        "base64" => base64_decode(data)?,
        "escape" => escape_decode(data)?,
        _ => return Err(unrecognized_encoding(format)),
    };
    Ok(Value::Bytea(out))
}

fn bad_data(message: String) -> PgError {
    PgError::new(SqlState::INVALID_PARAMETER_VALUE, message)
}

fn hex_decode(s: &str) -> PgResult<Vec<u8>> {
    let digits: Vec<char> = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks(2) {
        let nibble = |c: char| {
            c.to_digit(16)
                .ok_or_else(|| bad_data(format!("invalid hexadecimal digit: \"{c}\"")))
        };
        let [hi, lo] = pair else {
            return Err(bad_data(
                "invalid hexadecimal data: odd number of digits".into(),
            ));
        };
        out.push((nibble(*hi)? * 16 + nibble(*lo)?) as u8);
    }
    Ok(out)
}

/// Base64 with a newline after every 76 output characters, as PostgreSQL
/// writes it.
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 4);
    let mut line = 0;
    for chunk in data.chunks(3) {
        if line == BASE64_LINE_CHARS {
            out.push('\n');
            line = 0;
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
        line += 4;
    }
    out
}

fn base64_decode(s: &str) -> PgResult<Vec<u8>> {
    let end_error = || {
        bad_data("invalid base64 end sequence".into())
            .with_hint("Input data is missing padding, is truncated, or is otherwise corrupted.")
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits, mut padding, mut count) = (0u32, 0, 0, 0);
    for c in s.chars().filter(|c| !c.is_ascii_whitespace()) {
        if c == '=' {
            padding += 1;
            count += 1;
            continue;
        }
        let Some(v) = BASE64_ALPHABET.iter().position(|&a| a as char == c) else {
            return Err(bad_data(format!(
                "invalid symbol \"{c}\" found while decoding base64 sequence"
            )));
        };
        if padding > 0 {
            // Padding may end a quad in the middle of the input, as
            // PostgreSQL accepts; anywhere else it is an error.
            if count % 4 != 0 {
                return Err(end_error());
            }
            (acc, bits, padding) = (0, 0, 0);
        }
        acc = (acc << 6) | v as u32;
        bits += 6;
        count += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if count % 4 != 0 || padding > 2 {
        return Err(end_error());
    }
    Ok(out)
}

/// `escape`: NUL and bytes with the high bit as `\ooo`, backslash doubled.
fn escape_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            0 | 0x80..=0xff => out.push_str(&format!("\\{b:03o}")),
            _ => out.push(b as char),
        }
    }
    out
}

fn escape_decode(s: &str) -> PgResult<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = bytes.get(i + 1..i + 4).filter(|d| {
                matches!(d[0], b'0'..=b'3') && d[1..].iter().all(|c| matches!(c, b'0'..=b'7'))
            });
            let Some(d) = octal else {
                return Err(PgError::new(
                    SqlState::INVALID_TEXT_REPRESENTATION,
                    "invalid input syntax for type bytea",
                ));
            };
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        }
    }
    Ok(out)
}
