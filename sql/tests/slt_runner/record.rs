//! The sqllogictest file format: records separated by blank lines.
//!
//! ```text
//! # comment
//! skipif mysql            conditions apply to the next record only
//! onlyif postgresql
//! statement ok | statement error [regex]
//! <sql lines>
//!
//! query <types> [nosort|rowsort|valuesort] [label] | query error [regex]
//! <sql lines>
//! ----
//! <one value per line, or one row per line with values separated by spaces,
//!  or "N values hashing to <md5>">
//!
//! hash-threshold N        halt        (both honour conditions)
//! ```
//!
//! Parsing never fails: a line the parser does not understand becomes an
//! [`Record::Invalid`] record, which the runner counts as a failure with the
//! reason, so a malformed file is reported instead of silently skipped.

/// The engine names TellerDB answers to in `skipif`/`onlyif`: it is a
/// `postgresql` for the SQLite corpus, and `teller` selects records that hold
/// for TellerDB only (its own clock, its own limits).
pub const TELLER_ENGINES: &[&str] = &["postgresql", "teller"];
/// What a real PostgreSQL server answers to.
pub const POSTGRES_ENGINES: &[&str] = &["postgresql"];

/// How a query's values are ordered before comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortMode {
    Unsorted,
    Rows,
    Values,
}

/// What a query record expects back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// The lines after `----` (values or rows).
    Lines(Vec<String>),
    /// `N values hashing to <md5>`.
    Hash { values: usize, md5: String },
}

/// One record of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Statement {
        sql: String,
        /// `None` for `statement ok`; `Some(regex)` (possibly empty) for
        /// `statement error`.
        error: Option<String>,
    },
    Query {
        sql: String,
        /// One letter per column: `T` text, `I` integer, `R` real.
        types: String,
        sort: SortMode,
        label: Option<String>,
        expected: Expected,
    },
    /// `query error [regex]`: the query must fail.
    QueryError {
        sql: String,
        error: String,
    },
    HashThreshold(usize),
    Halt,
    /// A line the parser could not understand, with the reason.
    Invalid(String),
}

/// A record with where it starts and whether this engine runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// 1-based line of the record's first line (after its conditions).
    pub line: usize,
    pub record: Record,
    /// False when a `skipif <us>` or `onlyif <not us>` applies.
    pub applies: bool,
}

/// Parses a whole file for an engine known by `engines`.
pub fn parse(text: &str, engines: &[&str]) -> Vec<Located> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut records = Vec::new();
    let mut at = 0;
    let mut applies = true;
    while at < lines.len() {
        let line = lines[at].trim_end();
        let words: Vec<&str> = strip_comment(line).split_whitespace().collect();
        if words.is_empty() {
            at += 1;
            continue;
        }
        let start = at + 1;
        at += 1;
        let record = match words[0] {
            "skipif" | "onlyif" => {
                match words.get(1) {
                    Some(engine) => {
                        let is_us = engines.iter().any(|e| engine.eq_ignore_ascii_case(e));
                        applies &= if words[0] == "skipif" { !is_us } else { is_us };
                    }
                    None => records.push(invalid(start, "condition without an engine")),
                }
                continue;
            }
            "halt" => Record::Halt,
            "hash-threshold" => match words.get(1).and_then(|n| n.parse().ok()) {
                Some(n) => Record::HashThreshold(n),
                None => Record::Invalid(format!("bad hash-threshold line: {line}")),
            },
            "statement" => {
                let sql = take_sql(&lines, &mut at);
                match words.get(1) {
                    Some(&"ok") => Record::Statement { sql, error: None },
                    Some(&"error") => Record::Statement {
                        sql,
                        error: Some(rest_after(line, 2)),
                    },
                    _ => Record::Invalid(format!("bad statement line: {line}")),
                }
            }
            "query" => parse_query(line, &words, &lines, &mut at),
            _ => {
                // Skip to the end of whatever this is, so one bad line does not
                // turn the rest of the file into garbage.
                take_sql(&lines, &mut at);
                Record::Invalid(format!("unknown directive: {line}"))
            }
        };
        records.push(Located {
            line: start,
            record,
            applies,
        });
        applies = true;
    }
    records
}

fn invalid(line: usize, why: &str) -> Located {
    Located {
        line,
        record: Record::Invalid(why.to_string()),
        applies: true,
    }
}

/// A `#` starts a comment on directive lines (`onlyif mysql # why`).
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The text of `line` after its first `n` words, trimmed (a regex may hold
/// spaces).
fn rest_after(line: &str, n: usize) -> String {
    let mut rest = line.trim_start();
    for _ in 0..n {
        rest = rest.trim_start();
        rest = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
    }
    rest.trim().to_string()
}

/// SQL lines up to a blank line or `----` (which is left for the caller).
fn take_sql(lines: &[&str], at: &mut usize) -> String {
    let mut sql = Vec::new();
    while *at < lines.len() {
        let line = lines[*at];
        if line.trim().is_empty() || line.trim_end() == "----" {
            break;
        }
        sql.push(line);
        *at += 1;
    }
    sql.join("\n")
}

fn parse_query(line: &str, words: &[&str], lines: &[&str], at: &mut usize) -> Record {
    let sql = take_sql(lines, at);
    let expected_lines = take_expected(lines, at);
    let Some(&types) = words.get(1) else {
        return Record::Invalid(format!("query without types: {line}"));
    };
    if types == "error" {
        return Record::QueryError {
            sql,
            error: rest_after(line, 2),
        };
    }
    if !types.chars().all(|c| matches!(c, 'T' | 'I' | 'R')) {
        return Record::Invalid(format!("bad column types {types:?}"));
    }
    let sort = match words.get(2) {
        None | Some(&"nosort") => SortMode::Unsorted,
        Some(&"rowsort") => SortMode::Rows,
        Some(&"valuesort") => SortMode::Values,
        Some(other) => return Record::Invalid(format!("bad sort mode {other:?}")),
    };
    let expected = match expected_lines.as_slice() {
        [only] => parse_hash(only).unwrap_or_else(|| Expected::Lines(expected_lines.clone())),
        _ => Expected::Lines(expected_lines),
    };
    Record::Query {
        sql,
        types: types.to_string(),
        sort,
        label: words.get(3).map(|l| l.to_string()),
        expected,
    }
}

/// The result lines after `----`, up to a blank line; none without `----`.
fn take_expected(lines: &[&str], at: &mut usize) -> Vec<String> {
    if *at >= lines.len() || lines[*at].trim_end() != "----" {
        return Vec::new();
    }
    *at += 1;
    let mut out = Vec::new();
    while *at < lines.len() && !lines[*at].trim().is_empty() {
        out.push(lines[*at].trim_end().to_string());
        *at += 1;
    }
    out
}

fn parse_hash(line: &str) -> Option<Expected> {
    let (count, rest) = line.split_once(" values hashing to ")?;
    let values = count.trim().parse().ok()?;
    let md5 = rest.trim();
    let is_md5 = md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit());
    is_md5.then(|| Expected::Hash {
        values,
        md5: md5.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_queries_and_conditions() {
        let text = "# c\r\nstatement ok\r\nCREATE TABLE t(a INT)\r\n\r\n\
                    skipif postgresql # no\nstatement error division\nSELECT 1/0\n\n\
                    onlyif postgresql\nquery IT rowsort label-7\nSELECT 1,\n 'a'\n----\n1\na\n\n\
                    query I nosort\nSELECT 2\n----\n3 values hashing to 0123456789abcdef0123456789ABCDEF\n\n\
                    onlyif mysql\nhalt\n\nhash-threshold 8\nquery error ^bad\nSELECT x\n\nbogus line\n";
        let records = parse(text, TELLER_ENGINES);
        let kinds: Vec<_> = records.iter().map(|r| (r.line, r.applies)).collect();
        assert_eq!(
            kinds,
            vec![
                (2, true),
                (6, false),
                (10, true),
                (17, true),
                (23, false),
                (25, true),
                (26, true),
                (29, true)
            ]
        );
        assert_eq!(
            records[0].record,
            Record::Statement {
                sql: "CREATE TABLE t(a INT)".into(),
                error: None
            }
        );
        assert_eq!(
            records[1].record,
            Record::Statement {
                sql: "SELECT 1/0".into(),
                error: Some("division".into())
            }
        );
        assert_eq!(
            records[2].record,
            Record::Query {
                sql: "SELECT 1,\n 'a'".into(),
                types: "IT".into(),
                sort: SortMode::Rows,
                label: Some("label-7".into()),
                expected: Expected::Lines(vec!["1".into(), "a".into()]),
            }
        );
        assert!(matches!(
            &records[3].record,
            Record::Query { expected: Expected::Hash { values: 3, md5 }, .. }
                if md5 == "0123456789abcdef0123456789abcdef"
        ));
        assert_eq!(records[4].record, Record::Halt);
        assert_eq!(records[5].record, Record::HashThreshold(8));
        assert_eq!(
            records[6].record,
            Record::QueryError {
                sql: "SELECT x".into(),
                error: "^bad".into()
            }
        );
        assert!(matches!(records[7].record, Record::Invalid(_)));
    }

    #[test]
    fn query_without_results_and_bad_headers() {
        let records = parse(
            "query I\nSELECT 1 WHERE false\n----\n\nquery X\nSELECT 1\n\nquery I sideways\nSELECT 1\n",
            TELLER_ENGINES,
        );
        assert!(matches!(
            &records[0].record,
            Record::Query { expected: Expected::Lines(l), .. } if l.is_empty()
        ));
        assert!(matches!(records[1].record, Record::Invalid(_)));
        assert!(matches!(records[2].record, Record::Invalid(_)));
    }
}
