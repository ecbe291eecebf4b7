//! `json` and `jsonb` as text.
//!
//! Both are parsed by one recursive-descent parser (RFC 8259 as PostgreSQL's
//! lexer reads it) with a depth bound ([`DEPTH_MAX`]) so a client cannot
//! overflow the stack with `[[[[...`. Like PostgreSQL, `\u` escapes must pair
//! surrogates correctly.
//!
//! `json` keeps the document exactly as given. `jsonb` stores the normalised
//! text PostgreSQL would print for it (`jsonb_out`): object keys sorted by
//! length then bytes, duplicate keys resolved to the last value, `", "` and
//! `": "` separators, string escapes decoded and re-escaped minimally, numbers
//! printed as `numeric` prints them (`1e2` → `100`, `-0.0` → `0.0`), and
//! `\u0000` refused (22P05) because text cannot hold it. The `jsonb` binary form
//! is a version byte (1) followed by that text.

use super::bad_binary;
use crate::error::{PgError, PgResult, SqlState};

/// The `jsonb` binary format version PostgreSQL speaks.
pub(super) const JSONB_VERSION: u8 = 1;
/// Deepest nesting of arrays and objects accepted.
const DEPTH_MAX: usize = 1000;
/// `numeric`'s limits: 32768 base-10000 digits before the point...
const INTEGER_DIGITS_MAX: i64 = 4 * 32768;
/// ... and a display scale of at most `NUMERIC_DSCALE_MAX`.
const DSCALE_MAX: i64 = 0x3FFF;

pub(super) fn decode_jsonb_binary(raw: &[u8]) -> PgResult<String> {
    match raw.split_first() {
        Some((&JSONB_VERSION, rest)) => normalize_jsonb(super::text::verify_utf8(rest)?),
        Some((v, _)) => Err(bad_binary(format!("unsupported jsonb version number {v}"))),
        None => Err(bad_binary(
            "incorrect binary data format: jsonb needs a version byte",
        )),
    }
}

/// Checks that `s` is exactly one JSON value with optional surrounding whitespace.
pub(super) fn validate(s: &str) -> PgResult<()> {
    parse_document(s, false).map(drop)
}

/// Parses `s` as `jsonb` and returns the text PostgreSQL would print for it.
pub(super) fn normalize_jsonb(s: &str) -> PgResult<String> {
    let node = parse_document(s, true)?;
    let mut out = String::with_capacity(s.len());
    node.write(&mut out);
    Ok(out)
}

fn parse_document(s: &str, jsonb: bool) -> PgResult<Node> {
    let mut p = Parser {
        b: s.as_bytes(),
        i: 0,
        jsonb,
    };
    p.skip_ws();
    let node = p.value(0)?;
    p.skip_ws();
    if p.i != p.b.len() {
        return Err(p.error("Expected end of input"));
    }
    Ok(node)
}

/// A parsed document. Numbers keep their text (normalised for `jsonb`).
enum Node {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// `jsonb_out`'s layout.
    fn write(self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Node::Number(n) => out.push_str(&n),
            Node::String(s) => write_string(&s, out),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Node::Object(mut pairs) => {
                // Stable sort by (length, bytes); of equal keys the last given wins.
                pairs.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
                let mut unique: Vec<(String, Node)> = Vec::with_capacity(pairs.len());
                for (key, value) in pairs {
                    match unique.last_mut() {
                        Some(last) if last.0 == key => last.1 = value,
                        _ => unique.push((key, value)),
                    }
                }
                out.push('{');
                for (i, (key, value)) in unique.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_string(&key, out);
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// PostgreSQL's `escape_json`.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number as `numeric_out` prints it: the exponent folded into the
/// digits, display scale `max(0, fraction digits - exponent)`, no negative zero.
/// `None` past `numeric`'s limits ([`INTEGER_DIGITS_MAX`], [`DSCALE_MAX`]).
fn numeric_text(number: &str) -> Option<String> {
    let (negative, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let leading_zeros = int_part
        .bytes()
        .chain(frac_part.bytes())
        .take_while(|&d| d == b'0')
        .count();
    let significant_int_digits = int_part.len() as i64 - leading_zeros as i64 + exponent;
    let all_zero = leading_zeros == int_part.len() + frac_part.len();
    let dscale = (frac_part.len() as i64).checked_sub(exponent)?;
    if dscale > DSCALE_MAX || (!all_zero && significant_int_digits > INTEGER_DIGITS_MAX) {
        return None;
    }
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    // The point sits after `point` digits (may be outside the digit string).
    let point = int_part.len() as i64 + exponent;
    let scale = (frac_part.len() as i64 - exponent).max(0);
    let digit_at = |i: i64| -> u8 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(b'0')
    };
    let mut int_digits: String = (0..point.max(0)).map(|i| char::from(digit_at(i))).collect();
    let trimmed = int_digits.trim_start_matches('0').len();
    int_digits.drain(..int_digits.len() - trimmed);
    if int_digits.is_empty() {
        int_digits.push('0');
    }
    let frac_digits: String = (point..point + scale)
        .map(|i| char::from(digit_at(i)))
        .collect();
    let is_zero = int_digits == "0" && frac_digits.bytes().all(|d| d == b'0');
    let mut out = String::with_capacity(int_digits.len() + frac_digits.len() + 2);
    if negative && !is_zero {
        out.push('-');
    }
    out.push_str(&int_digits);
    if scale > 0 {
        out.push('.');
        out.push_str(&frac_digits);
    }
    Some(out)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    jsonb: bool,
}

impl Parser<'_> {
    fn error(&self, detail: &str) -> PgError {
        PgError::new(
            SqlState::INVALID_TEXT_REPRESENTATION,
            "invalid input syntax for type json",
        )
        .with_detail(format!("{detail} at byte {}.", self.i))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> PgResult<()> {
        if self.peek() != Some(c) {
            return Err(self.error(what));
        }
        self.i += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> PgResult<Node> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Node::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true", Node::Bool(true)),
            Some(b'f') => self.literal(b"false", Node::Bool(false)),
            Some(b'n') => self.literal(b"null", Node::Null),
            Some(_) => Err(self.error("Token is invalid")),
            None => Err(self.error("The input string ended unexpectedly")),
        }
    }

    fn nest(&self, depth: usize) -> PgResult<()> {
        if depth > DEPTH_MAX {
            return Err(PgError::new(
                SqlState::STATEMENT_TOO_COMPLEX,
                "stack depth limit exceeded",
            )
            .with_detail(format!("JSON nesting deeper than {DEPTH_MAX} levels")));
        }
        Ok(())
    }

    /// After an element: `true` when another follows (`,`), `false` at `close`.
    fn more(&mut self, close: u8, what: &str) -> PgResult<bool> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.skip_ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.error(what)),
        }
    }

    fn object(&mut self, depth: usize) -> PgResult<Node> {
        self.nest(depth)?;
        self.i += 1;
        self.skip_ws();
        let mut pairs = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Node::Object(pairs));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("Expected string"));
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':', "Expected \":\"")?;
            self.skip_ws();
            pairs.push((key, self.value(depth)?));
            if !self.more(b'}', "Expected \",\" or \"}\"")? {
                return Ok(Node::Object(pairs));
            }
        }
    }

    fn array(&mut self, depth: usize) -> PgResult<Node> {
        self.nest(depth)?;
        self.i += 1;
        self.skip_ws();
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Node::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            if !self.more(b']', "Expected \",\" or \"]\"")? {
                return Ok(Node::Array(items));
            }
        }
    }

    fn literal(&mut self, word: &[u8], node: Node) -> PgResult<Node> {
        let end = self.i + word.len();
        let alnum_follows = self
            .b
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if self.b.get(self.i..end) != Some(word) || alnum_follows {
            return Err(self.error("Token is invalid"));
        }
        self.i = end;
        Ok(node)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> PgResult<Node> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("Token is invalid")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.error("Token is invalid"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("Token is invalid"));
            }
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            return Err(self.error("Token is invalid"));
        }
        // The token is ASCII: digits, sign, point and exponent only.
        let text = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
        if !self.jsonb {
            return Ok(Node::Number(text));
        }
        numeric_text(&text).map(Node::Number).ok_or_else(|| {
            PgError::new(
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                "value overflows numeric format",
            )
        })
    }

    fn hex4(&mut self) -> PgResult<u32> {
        let unit = self
            .b
            .get(self.i..self.i + 4)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .map(|h| {
                h.iter().fold(0, |acc, &c| {
                    acc * 16 + char::from(c).to_digit(16).unwrap_or(0)
                })
            })
            .ok_or_else(|| self.error("\"\\u\" must be followed by four hexadecimal digits"))?;
        self.i += 4;
        Ok(unit)
    }

    /// A string token, escapes decoded.
    fn string(&mut self) -> PgResult<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("The input string ended unexpectedly")),
                Some(b'"') => {
                    self.i += 1;
                    // Input was UTF-8 and escapes decode to whole characters.
                    return String::from_utf8(out)
                        .map_err(|_| self.error("Invalid UTF-8 in string"));
                }
                Some(c) if c < 0x20 => {
                    return Err(
                        self.error(&format!("Character with value 0x{c:02x} must be escaped"))
                    )
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.escape()?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// One escape after the backslash, as the character it stands for.
    fn escape(&mut self) -> PgResult<char> {
        let simple = match self.peek() {
            Some(b'"') => Some('"'),
            Some(b'\\') => Some('\\'),
            Some(b'/') => Some('/'),
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b't') => Some('\t'),
            Some(b'u') => None,
            _ => return Err(self.error("Escape sequence is invalid")),
        };
        self.i += 1;
        if let Some(c) = simple {
            return Ok(c);
        }
        let unit = self.hex4()?;
        if !self.jsonb {
            // `json` keeps the text as given and, like PostgreSQL 15, does not
            // check that surrogates pair up; the decoded value is never used.
            return Ok(char::REPLACEMENT_CHARACTER);
        }
        if unit == 0 {
            return Err(PgError::new(
                SqlState::UNTRANSLATABLE_CHARACTER,
                "unsupported Unicode escape sequence",
            )
            .with_detail("\\u0000 cannot be converted to text."));
        }
        let code = match unit {
            0xD800..=0xDBFF => {
                let pair_error = "Unicode high surrogate must be followed by a low surrogate";
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(self.error(pair_error));
                }
                self.i += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error(pair_error));
                }
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => {
                return Err(self.error("Unicode low surrogate must follow a high surrogate"))
            }
            _ => unit,
        };
        char::from_u32(code).ok_or_else(|| self.error("Invalid Unicode escape"))
    }
}
