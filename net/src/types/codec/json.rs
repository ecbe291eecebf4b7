//! `json` and `jsonb` as text: checked to be one well-formed JSON value (RFC 8259
//! as PostgreSQL's lexer reads it) and kept as given.
//!
//! The checker is recursive descent with a depth bound ([`DEPTH_MAX`]) so a
//! client cannot overflow the stack with `[[[[...`. Like PostgreSQL, `\u` escapes
//! must pair surrogates correctly, and `jsonb` refuses `\u0000` (22P05) because
//! it cannot store it in text. The `jsonb` binary form is a version byte (1)
//! followed by the text.

use super::bad_binary;
use crate::error::{PgError, PgResult, SqlState};

/// The `jsonb` binary format version PostgreSQL speaks.
pub(super) const JSONB_VERSION: u8 = 1;
/// Deepest nesting of arrays and objects accepted.
const DEPTH_MAX: usize = 1000;

pub(super) fn decode_jsonb_binary(raw: &[u8]) -> PgResult<String> {
    match raw.split_first() {
        Some((&JSONB_VERSION, rest)) => {
            let s = super::text::verify_utf8(rest)?;
            validate(s, true)?;
            Ok(s.to_owned())
        }
        Some((v, _)) => Err(bad_binary(format!("unsupported jsonb version number {v}"))),
        None => Err(bad_binary(
            "incorrect binary data format: jsonb needs a version byte",
        )),
    }
}

/// Checks that `s` is exactly one JSON value with optional surrounding whitespace.
pub(super) fn validate(s: &str, jsonb: bool) -> PgResult<()> {
    let mut p = Parser {
        b: s.as_bytes(),
        i: 0,
        jsonb,
    };
    p.skip_ws();
    p.value(0)?;
    p.skip_ws();
    if p.i != p.b.len() {
        return Err(p.error("Expected end of input"));
    }
    Ok(())
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

    fn value(&mut self, depth: usize) -> PgResult<()> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
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

    fn object(&mut self, depth: usize) -> PgResult<()> {
        self.nest(depth)?;
        self.i += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("Expected string or \"}\""));
            }
            self.string()?;
            self.skip_ws();
            self.expect(b':', "Expected \":\"")?;
            self.skip_ws();
            self.value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.error("Expected \",\" or \"}\"")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> PgResult<()> {
        self.nest(depth)?;
        self.i += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.error("Expected \",\" or \"]\"")),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> PgResult<()> {
        let end = self.i + word.len();
        let alnum_follows = self
            .b
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if self.b.get(self.i..end) != Some(word) || alnum_follows {
            return Err(self.error("Token is invalid"));
        }
        self.i = end;
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> PgResult<()> {
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
        Ok(())
    }

    fn hex4(&mut self) -> PgResult<u32> {
        let hex = self
            .b
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| {
                u32::from_str_radix(h, 16)
                    .ok()
                    .filter(|_| h.bytes().all(|c| c.is_ascii_hexdigit()))
            })
            .ok_or_else(|| self.error("\"\\u\" must be followed by four hexadecimal digits"))?;
        self.i += 4;
        Ok(hex)
    }

    fn string(&mut self) -> PgResult<()> {
        self.i += 1;
        loop {
            match self.peek() {
                None => return Err(self.error("The input string ended unexpectedly")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(c) if c < 0x20 => {
                    return Err(
                        self.error(&format!("Character with value 0x{c:02x} must be escaped"))
                    )
                }
                Some(b'\\') => {
                    self.i += 1;
                    self.escape()?;
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// One escape after the backslash.
    fn escape(&mut self) -> PgResult<()> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 1;
                Ok(())
            }
            Some(b'u') => {
                self.i += 1;
                let unit = self.hex4()?;
                if unit == 0 && self.jsonb {
                    return Err(PgError::new(
                        SqlState::UNTRANSLATABLE_CHARACTER,
                        "unsupported Unicode escape sequence",
                    )
                    .with_detail("\\u0000 cannot be converted to text."));
                }
                match unit {
                    0xD800..=0xDBFF => {
                        if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                            return Err(self.error(
                                "Unicode high surrogate must be followed by a low surrogate",
                            ));
                        }
                        self.i += 2;
                        if !(0xDC00..=0xDFFF).contains(&self.hex4()?) {
                            return Err(self.error(
                                "Unicode high surrogate must be followed by a low surrogate",
                            ));
                        }
                        Ok(())
                    }
                    0xDC00..=0xDFFF => {
                        Err(self.error("Unicode low surrogate must follow a high surrogate"))
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(self.error("Escape sequence is invalid")),
        }
    }
}
