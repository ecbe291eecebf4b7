//! Running a file of records against a session, and the bookkeeping around
//! whole corpora: per-file reports, expected failures (documented
//! divergences) and the checked-in baseline of pass counts.
//!
//! Invariants:
//! - every record that applies to this engine is counted exactly once, as
//!   passed, failed or expected-failed; records for other engines are skipped;
//! - a file is run in one fresh session, top to bottom, and stops at `halt`
//!   or after `records_max` records, so counts are deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;
use teller_net::PgError;

use super::driver::{Database, QueryResult};
use super::output;
use super::record::{self, Record};

/// How one file is run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Stop after this many records (skipped ones included).
    pub records_max: Option<usize>,
    /// Lines of records expected to fail (documented divergences).
    pub expected_failures: BTreeSet<usize>,
}

/// One failed record.
#[derive(Clone, Debug)]
pub struct Failure {
    pub line: usize,
    pub sql: String,
    pub reason: String,
}

/// What running one file gave.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    pub passed: usize,
    pub failed: usize,
    /// Failures listed as expected (documented divergences).
    pub expected_failed: usize,
    pub skipped: usize,
    /// Records listed as expected failures that passed.
    pub unexpected_passes: Vec<usize>,
    pub failures: Vec<Failure>,
    /// True when `records_max` stopped the file early.
    pub capped: bool,
}

impl FileReport {
    /// Records that ran (passed, failed or expected to fail).
    pub fn ran(&self) -> usize {
        self.passed + self.failed + self.expected_failed
    }

    pub fn pass_percent(&self) -> f64 {
        if self.ran() == 0 {
            100.0
        } else {
            100.0 * self.passed as f64 / self.ran() as f64
        }
    }
}

/// Runs the records of `text` against `session`.
pub fn run_file(db: &mut impl Database, text: &str, options: &Options) -> FileReport {
    let mut report = FileReport::default();
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut seen = 0;
    for located in record::parse(text, db.engines()) {
        if matches!(located.record, Record::HashThreshold(_)) {
            continue;
        }
        if options.records_max.is_some_and(|max| seen >= max) {
            report.capped = true;
            break;
        }
        if !located.applies {
            if !matches!(located.record, Record::Halt) {
                report.skipped += 1;
                seen += 1;
            }
            continue;
        }
        if located.record == Record::Halt {
            break;
        }
        seen += 1;
        let verdict = run_record(db, &located.record, &mut labels);
        let expected_to_fail = options.expected_failures.contains(&located.line);
        match (verdict, expected_to_fail) {
            (Ok(()), false) => report.passed += 1,
            (Ok(()), true) => {
                report.passed += 1;
                report.unexpected_passes.push(located.line);
            }
            (Err(_), true) => report.expected_failed += 1,
            (Err(reason), false) => {
                report.failed += 1;
                report.failures.push(Failure {
                    line: located.line,
                    sql: sql_of(&located.record).to_string(),
                    reason,
                });
            }
        }
    }
    report
}

fn sql_of(record: &Record) -> &str {
    match record {
        Record::Statement { sql, .. }
        | Record::Query { sql, .. }
        | Record::QueryError { sql, .. } => sql,
        _ => "",
    }
}

fn run_record(
    db: &mut impl Database,
    record: &Record,
    labels: &mut HashMap<String, String>,
) -> Result<(), String> {
    match record {
        Record::Statement { sql, error: None } => db.run(sql).map(|_| ()).map_err(|e| describe(&e)),
        Record::Statement {
            sql,
            error: Some(pattern),
        }
        | Record::QueryError {
            sql,
            error: pattern,
        } => match db.run(sql) {
            Ok(_) => Err("succeeded, but an error was expected".to_string()),
            Err(e) => error_matches(&e, pattern),
        },
        Record::Query {
            sql,
            types,
            sort,
            label,
            expected,
        } => {
            let result = match db.run(sql) {
                Ok(Some(result)) => result,
                Ok(None) => return Err("the statement returned no rows".to_string()),
                Err(e) => return Err(describe(&e)),
            };
            let values = query_values(&result, types, *sort)?;
            output::check(expected, &values, types.len())?;
            check_label(label.as_deref(), &values, labels)
        }
        Record::Invalid(why) => Err(format!("cannot parse record: {why}")),
        Record::HashThreshold(_) | Record::Halt => Ok(()),
    }
}

fn query_values(
    result: &QueryResult,
    types: &str,
    sort: record::SortMode,
) -> Result<Vec<String>, String> {
    if result.columns.len() != types.len() {
        return Err(format!(
            "expected {} columns, got {}",
            types.len(),
            result.columns.len()
        ));
    }
    let letters: Vec<char> = types.chars().collect();
    let rows = result
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&result.columns)
                .zip(&letters)
                .map(|((v, c), &l)| output::format_value(v, c.ty, l))
                .collect()
        })
        .collect();
    Ok(output::sorted_values(rows, sort))
}

/// Queries with the same label must give the same values.
fn check_label(
    label: Option<&str>,
    values: &[String],
    labels: &mut HashMap<String, String>,
) -> Result<(), String> {
    let Some(label) = label else { return Ok(()) };
    let hash = output::hash_values(values);
    match labels.get(label) {
        Some(previous) if *previous != hash => Err(format!(
            "result differs from an earlier query labelled {label}"
        )),
        Some(_) => Ok(()),
        None => {
            labels.insert(label.to_string(), hash);
            Ok(())
        }
    }
}

fn describe(e: &PgError) -> String {
    format!("{}: {}", e.code.code(), e.message)
}

/// An empty pattern accepts any error; otherwise the regex must match the
/// message or the SQLSTATE.
fn error_matches(e: &PgError, pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Ok(());
    }
    let re = Regex::new(pattern).map_err(|err| format!("bad error regex {pattern:?}: {err}"))?;
    if re.is_match(&e.message) || re.is_match(e.code.code()) {
        Ok(())
    } else {
        Err(format!("error {} did not match /{pattern}/", describe(e)))
    }
}

/// `path<TAB>line<TAB>divergence` lines; `#` starts a comment.
pub fn parse_expected_failures(text: &str) -> Result<BTreeMap<String, BTreeSet<usize>>, String> {
    let mut out: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (n, line) in data_lines(text) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [path, record_line, divergence] if !divergence.trim().is_empty() => {
                let record_line = record_line
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {n}: bad record line {record_line:?}"))?;
                out.entry(path.trim().to_string())
                    .or_default()
                    .insert(record_line);
            }
            _ => return Err(format!("line {n}: expected path, line and divergence id")),
        }
    }
    Ok(out)
}

/// `path<TAB>passed` lines: the fewest records each file must pass.
pub fn parse_baseline(text: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in data_lines(text) {
        let (path, passed) = line
            .split_once('\t')
            .ok_or_else(|| format!("line {n}: expected path and pass count"))?;
        let passed = passed
            .split('\t')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("line {n}: bad pass count"))?;
        out.insert(path.trim().to_string(), passed);
    }
    Ok(out)
}

/// Writes a baseline: the pass count and, for readers, the records that ran.
pub fn format_baseline(reports: &BTreeMap<String, FileReport>) -> String {
    let mut out = String::from(
        "# SQLite corpus: records each file must pass (path, passed, ran).\n\
         # Rewritten by UPDATE_BASELINE=1 cargo test -p teller-sql --test slt\n",
    );
    for (path, r) in reports {
        out.push_str(&format!("{path}\t{}\t{}\n", r.passed, r.ran()));
    }
    out
}

fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}
