//! Character types, `bytea` and `uuid`.
//!
//! Every text input is UTF-8 without NUL (PostgreSQL's server encoding is UTF8
//! and its strings are C strings); a bad sequence is reported like
//! `pg_verifymbstr` does, naming the bytes of the offending character (22021).
//! `name` text input is cut to 63 bytes at a character boundary (`NAMEDATALEN -
//! 1`); a longer binary `name` is refused (42622), as `namerecv` does.
//! `bytea` prints as `\x` and lowercase hex; it reads hex (whitespace between
//! byte pairs allowed, not inside one) or the escape format (`\\`, `\ooo`,
//! other bytes literal).

use bytes::{BufMut, BytesMut};

use super::bad_text;
use crate::error::{PgError, PgResult, SqlState};

/// `NAMEDATALEN - 1`: the longest identifier PostgreSQL keeps, in bytes.
pub(super) const NAME_BYTES_MAX: usize = 63;

/// Checks that `raw` is UTF-8 without NUL bytes.
pub(super) fn verify_utf8(raw: &[u8]) -> PgResult<&str> {
    let s = std::str::from_utf8(raw).map_err(|e| {
        let bad = raw.get(e.valid_up_to()..).unwrap_or_default();
        invalid_sequence(bad)
    })?;
    match s.bytes().position(|b| b == 0) {
        Some(at) => Err(invalid_sequence(&raw[at..])),
        None => Ok(s),
    }
}

/// 22021 naming the bytes of the character that starts `bad`, as many as its
/// lead byte announces (PostgreSQL's `report_invalid_encoding`).
fn invalid_sequence(bad: &[u8]) -> PgError {
    let len = match bad.first() {
        Some(b) if b & 0xE0 == 0xC0 => 2,
        Some(b) if b & 0xF0 == 0xE0 => 3,
        Some(b) if b & 0xF8 == 0xF0 => 4,
        _ => 1,
    };
    let shown: Vec<String> = bad.iter().take(len).map(|b| format!("0x{b:02x}")).collect();
    PgError::new(
        SqlState::CHARACTER_NOT_IN_REPERTOIRE,
        format!(
            "invalid byte sequence for encoding \"UTF8\": {}",
            shown.join(" ")
        ),
    )
}

/// `namein`: at most [`NAME_BYTES_MAX`] bytes, never splitting a character.
pub(super) fn truncate_name(s: &str) -> &str {
    if s.len() <= NAME_BYTES_MAX {
        return s;
    }
    let mut end = NAME_BYTES_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `namerecv`: unlike text input, a binary name that is too long is an error.
pub(super) fn check_name_binary(s: &str) -> PgResult<&str> {
    if s.len() > NAME_BYTES_MAX {
        return Err(
            PgError::new(SqlState::NAME_TOO_LONG, "identifier too long").with_detail(format!(
                "Identifier must be less than {} characters.",
                NAME_BYTES_MAX + 1
            )),
        );
    }
    Ok(s)
}

pub(super) fn format_bytea(bytes: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + 2 * bytes.len());
    out.put_slice(b"\\x");
    for b in bytes {
        out.put_u8(HEX[usize::from(b >> 4)]);
        out.put_u8(HEX[usize::from(b & 0x0F)]);
    }
}

/// `byteain`: hex format after `\x`, else the escape format.
pub(super) fn parse_bytea(s: &str) -> PgResult<Vec<u8>> {
    match s.strip_prefix("\\x") {
        Some(hex) => parse_bytea_hex(hex),
        None => parse_bytea_escape(s),
    }
}

fn parse_bytea_hex(hex: &str) -> PgResult<Vec<u8>> {
    let invalid_param = |m: String| PgError::new(SqlState::INVALID_PARAMETER_VALUE, m);
    let digit = |c: char| {
        c.to_digit(16)
            .ok_or_else(|| invalid_param(format!("invalid hexadecimal digit: \"{c}\"")))
    };
    let mut out = Vec::with_capacity(hex.len() / 2);
    let mut chars = hex.chars();
    while let Some(hi) = chars.next() {
        // Whitespace may separate byte pairs, never split one (as `hex_decode`).
        if matches!(hi, ' ' | '\n' | '\t' | '\r') {
            continue;
        }
        let hi = digit(hi)?;
        let lo = chars.next().ok_or_else(|| {
            invalid_param("invalid hexadecimal data: odd number of digits".into())
        })?;
        let lo = digit(lo)?;
        // Both are hex digits (< 16), so the byte fits.
        out.push((hi * 16 + lo) as u8);
    }
    Ok(out)
}

fn parse_bytea_escape(s: &str) -> PgResult<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let octal = |j: usize, max: u8| b.get(j).filter(|&&c| (b'0'..=max).contains(&c)).copied();
        match (
            b.get(i + 1),
            octal(i + 1, b'3'),
            octal(i + 2, b'7'),
            octal(i + 3, b'7'),
        ) {
            (_, Some(d1), Some(d2), Some(d3)) => {
                out.push(((d1 - b'0') << 6) | ((d2 - b'0') << 3) | (d3 - b'0'));
                i += 4;
            }
            (Some(b'\\'), ..) => {
                out.push(b'\\');
                i += 2;
            }
            _ => {
                return Err(PgError::new(
                    SqlState::INVALID_TEXT_REPRESENTATION,
                    "invalid input syntax for type bytea",
                ))
            }
        }
    }
    Ok(out)
}

pub(super) fn format_uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `uuid_in`: 32 hex digits, either case, an optional hyphen after any group of
/// four digits, optionally wrapped in braces.
pub(super) fn parse_uuid(s: &str) -> PgResult<[u8; 16]> {
    let bad = || bad_text("uuid", s);
    let inner = match s.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or_else(bad)?,
        None => s,
    };
    let b = inner.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    for (n, byte) in out.iter_mut().enumerate() {
        let hi = b
            .get(i)
            .and_then(|&c| char::from(c).to_digit(16))
            .ok_or_else(bad)?;
        let lo = b
            .get(i + 1)
            .and_then(|&c| char::from(c).to_digit(16))
            .ok_or_else(bad)?;
        *byte = (hi * 16 + lo) as u8;
        i += 2;
        if n % 2 == 1 && n < 15 && b.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    if i != b.len() {
        return Err(bad());
    }
    Ok(out)
}
