//! PostgreSQL's COPY data formats: text (tab-separated, `\N` for NULL,
//! backslash escapes) and CSV (quoted fields, optional header line).
//!
//! [`CopyDecoder`] turns the byte stream of COPY FROM STDIN into rows of typed
//! values. Data arrives in CopyData messages that split lines anywhere, so the
//! decoder keeps the unfinished line and hands out complete rows only. Its
//! memory is bounded: a line longer than [`COPY_LINE_BYTES_MAX`] is refused
//! before it is buffered further. [`encode_row`] writes one row of COPY TO
//! STDOUT.
//!
//! Errors use PostgreSQL's SQLSTATEs: 22P04 (`bad_copy_file_format`) for
//! malformed lines (wrong column count, unterminated quotes, stray carriage
//! returns), 22P02 and friends from the value decoders, 22021 for invalid
//! UTF-8, 54000 for oversized lines. Each error names the line, as
//! PostgreSQL's `COPY t, line n` context does.

use bytes::{BufMut, BytesMut};

use crate::error::{PgError, PgResult, SqlState};
use crate::session::Column;
use crate::types::{self, Value};

/// The longest line (record) accepted by COPY FROM, in bytes.
pub const COPY_LINE_BYTES_MAX: usize = 16 * 1024 * 1024;

pub const BAD_COPY_FILE_FORMAT: SqlState = SqlState("22P04");

/// How COPY data is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyFormat {
    /// PostgreSQL's text format.
    Text {
        delimiter: u8,
        /// The text that stands for NULL (`\N` by default).
        null: String,
    },
    /// Comma-separated values.
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        /// The unquoted text that stands for NULL (empty by default).
        null: String,
        /// The first line names the columns (skipped on input, written on output).
        header: bool,
    },
}

impl CopyFormat {
    /// Text format with PostgreSQL's defaults.
    pub fn text() -> CopyFormat {
        CopyFormat::Text {
            delimiter: b'\t',
            null: "\\N".into(),
        }
    }

    /// CSV with PostgreSQL's defaults.
    pub fn csv(header: bool) -> CopyFormat {
        CopyFormat::Csv {
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            null: String::new(),
            header,
        }
    }

    /// Checks the options the way PostgreSQL's `ProcessCopyOptions` does.
    pub fn validate(&self) -> PgResult<()> {
        let bad = |m: &str| Err(PgError::new(SqlState::FEATURE_NOT_SUPPORTED, m.to_string()));
        let (delimiter, null) = match self {
            CopyFormat::Text { delimiter, null } => (*delimiter, null),
            CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null,
                ..
            } => {
                if !quote.is_ascii() || !escape.is_ascii() {
                    return bad("COPY quote and escape must be single one-byte characters");
                }
                if delimiter == quote {
                    return bad("COPY delimiter and quote must be different");
                }
                (*delimiter, null)
            }
        };
        if !delimiter.is_ascii() {
            return bad("COPY delimiter must be a single one-byte character");
        }
        if matches!(delimiter, b'\r' | b'\n') || null.contains(['\r', '\n']) {
            return bad("COPY delimiter and null cannot be newline or carriage return");
        }
        if matches!(self, CopyFormat::Text { .. })
            && (delimiter == b'\\' || delimiter.is_ascii_alphanumeric() || delimiter == b'.')
        {
            return bad("COPY delimiter cannot be a backslash, a letter, a digit or a dot");
        }
        if null.as_bytes().contains(&delimiter) {
            return bad("COPY delimiter must not appear in the NULL specification");
        }
        Ok(())
    }
}

/// What direction a COPY statement moves data in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyDirection {
    /// `COPY ... FROM STDIN`: the client sends rows.
    FromStdin,
    /// `COPY ... TO STDOUT`: the server sends rows.
    ToStdout,
}

/// How the driver runs a COPY statement the session recognised.
#[derive(Clone, Debug, PartialEq)]
pub struct CopySpec {
    pub direction: CopyDirection,
    pub format: CopyFormat,
    /// The columns copied, in order: their types decode incoming text and
    /// their names make the CSV header.
    pub columns: Vec<Column>,
}

/// Decodes COPY FROM data into rows.
pub struct CopyDecoder {
    format: CopyFormat,
    columns: Vec<Column>,
    /// The unfinished line.
    line: Vec<u8>,
    /// Whether the unfinished line is inside a CSV quoted field.
    in_quotes: bool,
    /// A CSV escape character (other than the quote) ended the last chunk.
    escape_pending: bool,
    /// Lines seen so far (for messages), the header included.
    line_number: u64,
    header_pending: bool,
    /// The end-of-data marker `\.` was seen: the rest is ignored.
    ended: bool,
}

fn copy_error(code: SqlState, message: impl Into<String>, line: u64) -> PgError {
    let mut error = PgError::new(code, message);
    error.detail = Some(format!("COPY, line {line}"));
    error
}

impl CopyDecoder {
    pub fn new(format: CopyFormat, columns: Vec<Column>) -> CopyDecoder {
        let header_pending = matches!(format, CopyFormat::Csv { header: true, .. });
        CopyDecoder {
            format,
            columns,
            line: Vec::new(),
            in_quotes: false,
            escape_pending: false,
            line_number: 0,
            header_pending,
            ended: false,
        }
    }

    /// Lines decoded so far (the header included).
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// Feeds one CopyData payload; complete rows are appended to `rows`.
    pub fn feed(&mut self, data: &[u8], rows: &mut Vec<Vec<Value>>) -> PgResult<()> {
        let mut at = 0;
        while at < data.len() {
            at += self.feed_until(&data[at..], rows, usize::MAX)?;
        }
        Ok(())
    }

    /// Like [`CopyDecoder::feed`], but stops once `rows` holds `rows_max`
    /// rows; returns the bytes consumed.
    pub fn feed_until(
        &mut self,
        data: &[u8],
        rows: &mut Vec<Vec<Value>>,
        rows_max: usize,
    ) -> PgResult<usize> {
        let (quote, escape) = match &self.format {
            CopyFormat::Csv { quote, escape, .. } => (Some(*quote), *escape),
            CopyFormat::Text { .. } => (None, 0),
        };
        let mut at = 0;
        while at < data.len() && !self.ended {
            let b = data[at];
            at += 1;
            if let Some(q) = quote {
                // An escape inside quotes takes the next byte literally; with
                // escape == quote that is the doubled quote, which toggling
                // twice handles too.
                if self.escape_pending {
                    self.escape_pending = false;
                    self.push(b)?;
                    continue;
                }
                if self.in_quotes && b == escape && escape != q {
                    self.push(b)?;
                    self.escape_pending = true;
                    continue;
                }
                if b == q {
                    self.in_quotes = !self.in_quotes;
                }
            }
            if b == b'\n' && !self.in_quotes {
                let line = std::mem::take(&mut self.line);
                self.finish_line(line, rows)?;
                if rows.len() >= rows_max {
                    return Ok(at);
                }
            } else {
                self.push(b)?;
            }
        }
        // After the end marker the rest of the data is ignored.
        Ok(data.len())
    }

    fn push(&mut self, b: u8) -> PgResult<()> {
        if self.line.len() >= COPY_LINE_BYTES_MAX {
            return Err(copy_error(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                format!("COPY line is longer than {COPY_LINE_BYTES_MAX} bytes"),
                self.line_number + 1,
            ));
        }
        self.line.push(b);
        Ok(())
    }

    /// The data ended (CopyDone): a last line without a newline is decoded.
    pub fn finish(&mut self, rows: &mut Vec<Vec<Value>>) -> PgResult<()> {
        if self.in_quotes && !self.ended {
            return Err(copy_error(
                BAD_COPY_FILE_FORMAT,
                "unterminated CSV quoted field",
                self.line_number + 1,
            ));
        }
        if !self.line.is_empty() && !self.ended {
            let line = std::mem::take(&mut self.line);
            self.finish_line(line, rows)?;
        }
        Ok(())
    }

    fn finish_line(&mut self, mut line: Vec<u8>, rows: &mut Vec<Vec<Value>>) -> PgResult<()> {
        self.line_number += 1;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line == b"\\." {
            self.ended = true;
            return Ok(());
        }
        if self.header_pending {
            self.header_pending = false;
            return Ok(());
        }
        let fields = match &self.format {
            CopyFormat::Text { delimiter, null } => {
                split_text(&line, *delimiter, null.as_bytes(), self.line_number)?
            }
            CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null,
                ..
            } => split_csv(&line, *delimiter, *quote, *escape, null.as_bytes()),
        };
        rows.push(self.typed(fields)?);
        Ok(())
    }

    /// Decodes the fields of one line into the columns' types.
    fn typed(&self, fields: Vec<Option<Vec<u8>>>) -> PgResult<Vec<Value>> {
        let line = self.line_number;
        // An empty line is one empty field in PostgreSQL, so a table with one
        // text column can copy empty strings.
        if fields.len() > self.columns.len() {
            return Err(copy_error(
                BAD_COPY_FILE_FORMAT,
                "extra data after last expected column",
                line,
            ));
        }
        if fields.len() < self.columns.len() {
            let column = &self.columns[fields.len()].name;
            return Err(copy_error(
                BAD_COPY_FILE_FORMAT,
                format!("missing data for column \"{column}\""),
                line,
            ));
        }
        let mut row = Vec::with_capacity(fields.len());
        for (field, column) in fields.into_iter().zip(&self.columns) {
            row.push(match field {
                None => Value::Null,
                Some(bytes) => types::decode_text(column.ty, &bytes).map_err(|e| {
                    let mut e = e;
                    e.detail = Some(format!("COPY, line {line}, column {}", column.name));
                    e
                })?,
            });
        }
        Ok(row)
    }
}

/// Splits a text-format line into fields, undoing backslash escapes. A field
/// whose raw text equals the NULL marker is NULL.
fn split_text(
    line: &[u8],
    delimiter: u8,
    null: &[u8],
    number: u64,
) -> PgResult<Vec<Option<Vec<u8>>>> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut field = Vec::new();
    let mut at = 0;
    while at <= line.len() {
        if at == line.len() || line[at] == delimiter {
            let raw = &line[start..at];
            fields.push(if raw == null {
                None
            } else {
                Some(std::mem::take(&mut field))
            });
            field.clear();
            at += 1;
            start = at;
            continue;
        }
        let b = line[at];
        if b == b'\r' {
            return Err(copy_error(
                BAD_COPY_FILE_FORMAT,
                "literal carriage return found in data",
                number,
            )
            .with_hint("Use \"\\r\" to represent carriage return."));
        }
        if b != b'\\' || at + 1 == line.len() {
            field.push(b);
            at += 1;
            continue;
        }
        at += 1;
        let (value, used) = unescape(&line[at..]);
        field.push(value);
        at += used;
    }
    Ok(fields)
}

/// One backslash escape (the bytes after the backslash): the byte it stands
/// for and how many bytes it used.
fn unescape(rest: &[u8]) -> (u8, usize) {
    let c = rest[0];
    match c {
        b'b' => (8, 1),
        b'f' => (12, 1),
        b'n' => (b'\n', 1),
        b'r' => (b'\r', 1),
        b't' => (b'\t', 1),
        b'v' => (11, 1),
        b'0'..=b'7' => {
            let digits = rest
                .iter()
                .take(3)
                .take_while(|d| matches!(d, b'0'..=b'7'))
                .count();
            let value = rest[..digits]
                .iter()
                .fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            ((value & 0xff) as u8, digits)
        }
        b'x' if rest.get(1).is_some_and(u8::is_ascii_hexdigit) => {
            let digits = rest[1..]
                .iter()
                .take(2)
                .take_while(|d| d.is_ascii_hexdigit())
                .count();
            let text = std::str::from_utf8(&rest[1..1 + digits]).unwrap_or("0");
            (u8::from_str_radix(text, 16).unwrap_or(0), 1 + digits)
        }
        other => (other, 1),
    }
}

/// Splits a CSV record (which may hold newlines inside quotes). An unquoted
/// field equal to the NULL text is NULL; a quoted one never is.
fn split_csv(
    line: &[u8],
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: &[u8],
) -> Vec<Option<Vec<u8>>> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut at = 0;
    loop {
        if at == line.len() || (!in_quotes && line[at] == delimiter) {
            fields.push(if !quoted && field == null {
                None
            } else {
                Some(std::mem::take(&mut field))
            });
            field.clear();
            quoted = false;
            if at == line.len() {
                return fields;
            }
            at += 1;
            continue;
        }
        let b = line[at];
        at += 1;
        if in_quotes && b == escape && line.get(at) == Some(&quote) {
            field.push(quote);
            at += 1;
        } else if in_quotes && b == escape && escape != quote && line.get(at) == Some(&escape) {
            field.push(escape);
            at += 1;
        } else if b == quote {
            in_quotes = !in_quotes;
            quoted = true;
        } else {
            field.push(b);
        }
    }
}

/// Appends one row of COPY TO output, newline included.
pub fn encode_row(format: &CopyFormat, row: &[Value], columns: &[Column], out: &mut BytesMut) {
    for (i, value) in row.iter().enumerate() {
        let ty = columns
            .get(i)
            .map_or_else(|| value.natural_type(), |c| c.ty);
        match format {
            CopyFormat::Text { delimiter, null } => {
                if i > 0 {
                    out.put_u8(*delimiter);
                }
                if value.is_null() {
                    out.put_slice(null.as_bytes());
                } else {
                    let mut text = BytesMut::new();
                    types::encode_text(value, ty, &mut text);
                    escape_text(&text, *delimiter, out);
                }
            }
            CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null,
                ..
            } => {
                if i > 0 {
                    out.put_u8(*delimiter);
                }
                if value.is_null() {
                    out.put_slice(null.as_bytes());
                } else {
                    let mut text = BytesMut::new();
                    types::encode_text(value, ty, &mut text);
                    quote_csv(&text, *delimiter, *quote, *escape, null.as_bytes(), out);
                }
            }
        }
    }
    out.put_u8(b'\n');
}

/// The CSV header line: the column names, quoted where needed.
pub fn encode_header(format: &CopyFormat, columns: &[Column], out: &mut BytesMut) {
    let row: Vec<Value> = columns
        .iter()
        .map(|c| Value::Text(c.name.clone()))
        .collect();
    let text_columns: Vec<Column> = columns
        .iter()
        .map(|c| Column::new(c.name.clone(), crate::types::Type::Text))
        .collect();
    encode_row(format, &row, &text_columns, out);
}

fn escape_text(text: &[u8], delimiter: u8, out: &mut BytesMut) {
    for &b in text {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            8 => out.put_slice(b"\\b"),
            12 => out.put_slice(b"\\f"),
            11 => out.put_slice(b"\\v"),
            d if d == delimiter => {
                out.put_u8(b'\\');
                out.put_u8(d);
            }
            other => out.put_u8(other),
        }
    }
}

fn quote_csv(text: &[u8], delimiter: u8, quote: u8, escape: u8, null: &[u8], out: &mut BytesMut) {
    let needs_quotes = text.is_empty()
        || text == null
        || text == b"\\."
        || text
            .iter()
            .any(|&b| b == delimiter || b == quote || b == b'\n' || b == b'\r');
    if !needs_quotes {
        out.put_slice(text);
        return;
    }
    out.put_u8(quote);
    for &b in text {
        if b == quote || b == escape {
            out.put_u8(escape);
        }
        out.put_u8(b);
    }
    out.put_u8(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Type;

    fn columns(types: &[Type]) -> Vec<Column> {
        types
            .iter()
            .enumerate()
            .map(|(i, &t)| Column::new(format!("c{i}"), t))
            .collect()
    }

    fn decode(format: CopyFormat, types: &[Type], chunks: &[&[u8]]) -> PgResult<Vec<Vec<Value>>> {
        let mut decoder = CopyDecoder::new(format, columns(types));
        let mut rows = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut rows)?;
        }
        decoder.finish(&mut rows)?;
        Ok(rows)
    }

    #[test]
    fn text_format_escapes_nulls_and_split_lines() {
        let rows = decode(
            CopyFormat::text(),
            &[Type::Int4, Type::Text],
            &[b"1\ta\\tb\n2\t\\N\n3", b"\t\\x41\\101\\\\\\.\r\n4\t\n"],
        )
        .expect("decodes");
        assert_eq!(
            rows,
            vec![
                vec![Value::Int4(1), Value::Text("a\tb".into())],
                vec![Value::Int4(2), Value::Null],
                vec![Value::Int4(3), Value::Text("AA\\.".into())],
                vec![Value::Int4(4), Value::Text(String::new())],
            ]
        );
    }

    #[test]
    fn end_marker_stops_the_data() {
        let rows =
            decode(CopyFormat::text(), &[Type::Int4], &[b"1\n\\.\ngarbage\n"]).expect("decodes");
        assert_eq!(rows, vec![vec![Value::Int4(1)]]);
    }

    #[test]
    fn csv_quotes_header_and_nulls() {
        let rows = decode(
            CopyFormat::csv(true),
            &[Type::Int4, Type::Text, Type::Text],
            &[
                b"id,name,note\n1,\"a,\"\"b\"\"\",\n2,\"\",\"line\n",
                b"break\"\n",
            ],
        )
        .expect("decodes");
        assert_eq!(
            rows,
            vec![
                vec![Value::Int4(1), Value::Text("a,\"b\"".into()), Value::Null],
                vec![
                    Value::Int4(2),
                    Value::Text(String::new()),
                    Value::Text("line\nbreak".into())
                ],
            ]
        );
    }

    #[test]
    fn csv_escape_split_across_chunks() {
        let format = CopyFormat::Csv {
            delimiter: b',',
            quote: b'"',
            escape: b'\\',
            null: String::new(),
            header: false,
        };
        let rows = decode(format, &[Type::Text], &[b"\"a\\", b"\"b\"\n"]).expect("decodes");
        assert_eq!(rows, vec![vec![Value::Text("a\"b".into())]]);
    }

    #[test]
    fn malformed_lines_have_postgres_sqlstates() {
        let cases: [(&[u8], &[Type], &str); 5] = [
            (b"1\t2\n", &[Type::Int4], "22P04"),
            (b"1\n", &[Type::Int4, Type::Int4], "22P04"),
            (b"x\n", &[Type::Int4], "22P02"),
            (b"1\r2\n", &[Type::Text], "22P04"),
            (b"\xff\n", &[Type::Text], "22021"),
        ];
        for (data, types, code) in cases {
            let err = decode(CopyFormat::text(), types, &[data]).expect_err("malformed");
            assert_eq!(err.code.code(), code, "{data:?}: {}", err.message);
            assert!(err.detail.is_some_and(|d| d.contains("line 1")));
        }
        let err = decode(CopyFormat::csv(false), &[Type::Text], &[b"\"open\n"]).expect_err("quote");
        assert_eq!(err.code, BAD_COPY_FILE_FORMAT);
    }

    #[test]
    fn overlong_lines_are_refused_before_buffering() {
        let mut decoder = CopyDecoder::new(CopyFormat::text(), columns(&[Type::Text]));
        let chunk = vec![b'a'; 1024 * 1024];
        let mut rows = Vec::new();
        let mut result = Ok(());
        for _ in 0..=COPY_LINE_BYTES_MAX / chunk.len() {
            result = decoder.feed(&chunk, &mut rows);
            if result.is_err() {
                break;
            }
        }
        let err = result.expect_err("too long");
        assert_eq!(err.code, SqlState::PROGRAM_LIMIT_EXCEEDED);
        assert!(decoder.line.len() <= COPY_LINE_BYTES_MAX);
    }

    #[test]
    fn output_round_trips_through_the_decoder() {
        let types = [Type::Int4, Type::Text, Type::Text];
        let rows = vec![
            vec![
                Value::Int4(1),
                Value::Text("a\tb\\c\nd".into()),
                Value::Null,
            ],
            vec![
                Value::Int4(2),
                Value::Text(String::new()),
                Value::Text("\\.".into()),
            ],
            vec![
                Value::Int4(3),
                Value::Text("x,\"y\"".into()),
                Value::Text("NULL".into()),
            ],
        ];
        for format in [CopyFormat::text(), CopyFormat::csv(true)] {
            let mut out = BytesMut::new();
            if matches!(format, CopyFormat::Csv { .. }) {
                encode_header(&format, &columns(&types), &mut out);
            }
            for row in &rows {
                encode_row(&format, row, &columns(&types), &mut out);
            }
            let back = decode(format.clone(), &types, &[&out]).expect("round trip");
            assert_eq!(back, rows, "{format:?}: {}", String::from_utf8_lossy(&out));
        }
        let mut out = BytesMut::new();
        encode_row(&CopyFormat::text(), &rows[0], &columns(&types), &mut out);
        assert_eq!(&out[..], b"1\ta\\tb\\\\c\\nd\t\\N\n");
    }

    #[test]
    fn options_are_validated() {
        assert!(CopyFormat::text().validate().is_ok());
        assert!(CopyFormat::csv(true).validate().is_ok());
        let bad = [
            CopyFormat::Text {
                delimiter: b'\\',
                null: "\\N".into(),
            },
            CopyFormat::Text {
                delimiter: b',',
                null: "a,b".into(),
            },
            CopyFormat::Csv {
                delimiter: b'"',
                quote: b'"',
                escape: b'"',
                null: String::new(),
                header: false,
            },
        ];
        for format in bad {
            assert!(format.validate().is_err(), "{format:?}");
        }
    }
}
