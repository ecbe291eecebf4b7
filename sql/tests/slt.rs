//! sqllogictest files run against the real `SqlSession`, in-process.
//!
//! - `own_files_pass`: every record of `tests/slt/*.slt` must pass.
//! - `sqlite_corpus_meets_baseline`: the SQLite corpus in `../shared/slt/sqlite`
//!   (outside the repository; skipped with a note when absent) runs with this
//!   engine as `postgresql`. The pass rate of each file is printed, and each
//!   file must pass at least as many records as `tests/slt_sqlite_baseline.tsv`
//!   records, so a regression fails while an improvement is recorded with
//!   `UPDATE_BASELINE=1`. Records listed in `tests/slt_divergences.tsv` are
//!   documented SQLite-vs-PostgreSQL differences (docs/sql-conformance.md) and
//!   are expected to fail.
//!
//! - `sqlite_corpus_on_postgres`: only with `SLT_POSTGRES_URL` set. Runs the
//!   corpus (uncapped) against a real PostgreSQL and writes every record it
//!   fails to `SLT_POSTGRES_OUT` (default `target/slt-postgres-failures.tsv`) in
//!   the divergence list's format: the raw material for that reviewed list.
//!
//! Environment: `SLT_FILTER=<substring>` runs only matching files,
//! `SLT_VERBOSE=1` prints every failure, `SLT_SQLITE_DIR` points elsewhere.

mod slt_runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use slt_runner::corpus::{self, FileReport, Options};
use slt_runner::driver::{self, Database};
use slt_runner::postgres::PostgresDb;

/// Records run per SQLite corpus file. The biggest files hold ~14,000
/// records; the cap keeps the whole corpus within a couple of minutes in the
/// dev profile (measured figures in docs/sql-conformance.md).
const SQLITE_RECORDS_PER_FILE_MAX: usize = 3_000;
/// Failures printed per file unless `SLT_VERBOSE` is set.
const FAILURES_SHOWN_MAX: usize = 3;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `.slt`/`.test` files under `dir`, sorted, filtered by `SLT_FILTER`.
fn test_files(dir: &Path) -> Vec<PathBuf> {
    let filter = std::env::var("SLT_FILTER").unwrap_or_default();
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("slt" | "test")
            ) && path.to_string_lossy().contains(&filter)
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn run_path(path: &Path, options: &Options) -> FileReport {
    run_path_on(&mut driver::new_session(), path, options)
}

fn run_path_on(db: &mut impl Database, path: &Path, options: &Options) -> FileReport {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    corpus::run_file(db, &text, options)
}

fn print_report(name: &str, report: &FileReport, seconds: f64) {
    println!(
        "{name}: {}/{} passed ({:.1}%), {} expected failures, {} skipped{}, {seconds:.2} s",
        report.passed,
        report.ran(),
        report.pass_percent(),
        report.expected_failed,
        report.skipped,
        if report.capped { ", capped" } else { "" },
    );
    let shown = if std::env::var_os("SLT_VERBOSE").is_some() {
        usize::MAX
    } else {
        FAILURES_SHOWN_MAX
    };
    for f in report.failures.iter().take(shown) {
        println!(
            "  line {}: {}\n    {}",
            f.line,
            f.sql.replace('\n', " "),
            f.reason
        );
    }
}

#[test]
fn own_files_pass() {
    let root = manifest_dir().join("tests/slt");
    let files = test_files(&root);
    assert!(
        !files.is_empty() || std::env::var_os("SLT_FILTER").is_some(),
        "no .slt files in {}",
        root.display()
    );
    let mut failed = Vec::new();
    for path in files {
        let name = relative(&path, &root);
        let started = Instant::now();
        let report = run_path(&path, &Options::default());
        print_report(&name, &report, started.elapsed().as_secs_f64());
        if report.failed > 0 || report.ran() == 0 {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "files with failures: {failed:?}");
}

fn sqlite_dir() -> PathBuf {
    match std::env::var_os("SLT_SQLITE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => manifest_dir().join("../../shared/slt/sqlite"),
    }
}

/// The files that must pass completely, apart from the reviewed
/// SQLite-vs-PostgreSQL divergences: `select1`–`select5` and `evidence/`.
fn must_pass_whole(name: &str) -> bool {
    name.starts_with("evidence/")
        || matches!(
            name,
            "select1.test" | "select2.test" | "select3.test" | "select4.test" | "select5.test"
        )
}

#[test]
fn sqlite_corpus_meets_baseline() {
    let root = sqlite_dir();
    if !root.is_dir() {
        println!(
            "note: SQLite corpus not found at {}; skipping",
            root.display()
        );
        return;
    }
    let baseline_path = manifest_dir().join("tests/slt_sqlite_baseline.tsv");
    let baseline_text = std::fs::read_to_string(&baseline_path).unwrap_or_default();
    let baseline = corpus::parse_baseline(&baseline_text).expect("baseline parses");
    let divergences_text =
        std::fs::read_to_string(manifest_dir().join("tests/slt_divergences.tsv"))
            .expect("tests/slt_divergences.tsv is checked in");
    let expected_failures =
        corpus::parse_expected_failures(&divergences_text).expect("divergence list parses");

    let started = Instant::now();
    let mut reports = BTreeMap::new();
    let (mut passed, mut ran) = (0, 0);
    for path in test_files(&root) {
        let name = relative(&path, &root);
        let options = Options {
            // The files the conformance bar names run whole; the others are
            // capped to keep the suite short.
            records_max: (!must_pass_whole(&name)).then_some(SQLITE_RECORDS_PER_FILE_MAX),
            expected_failures: expected_failures.get(&name).cloned().unwrap_or_default(),
        };
        let file_started = Instant::now();
        let report = run_path(&path, &options);
        print_report(&name, &report, file_started.elapsed().as_secs_f64());
        passed += report.passed;
        ran += report.ran();
        reports.insert(name, report);
    }
    println!(
        "SQLite corpus: {passed}/{ran} records passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    if std::env::var_os("UPDATE_BASELINE").is_some() {
        if std::env::var_os("SLT_FILTER").is_some() {
            panic!("UPDATE_BASELINE needs the whole corpus: unset SLT_FILTER");
        }
        std::fs::write(&baseline_path, corpus::format_baseline(&reports))
            .expect("baseline is writable");
        println!("baseline written to {}", baseline_path.display());
        return;
    }
    let mut problems = Vec::new();
    for (name, report) in &reports {
        let floor = baseline.get(name).copied().unwrap_or(0);
        if report.passed < floor {
            problems.push(format!(
                "{name}: {} records pass, the baseline says {floor}",
                report.passed
            ));
        } else if report.passed > floor {
            println!(
                "{name}: improved from {floor} to {} (record it with UPDATE_BASELINE=1)",
                report.passed
            );
        }
        if must_pass_whole(name) && report.failed > 0 {
            problems.push(format!(
                "{name}: {} records fail that are not on the reviewed divergence list",
                report.failed
            ));
        }
        // Not an error: a record that expects an error passes whenever the
        // statement fails for any reason, divergence or missing feature.
        for line in &report.unexpected_passes {
            println!("note: {name}:{line} is listed in slt_divergences.tsv but passes");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn sqlite_corpus_on_postgres() {
    let Some(url) = std::env::var("SLT_POSTGRES_URL").ok() else {
        println!("note: SLT_POSTGRES_URL not set; not comparing with PostgreSQL");
        return;
    };
    let root = sqlite_dir();
    let out_path = std::env::var_os("SLT_POSTGRES_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../target/slt-postgres-failures.tsv"));
    let mut out = String::from(
        "# Records PostgreSQL fails: path, line, divergence id (to fill in), reason\n",
    );
    for path in test_files(&root) {
        let name = relative(&path, &root);
        let mut db = PostgresDb::connect(&url).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let report = run_path_on(&mut db, &path, &Options::default());
        print_report(&name, &report, started.elapsed().as_secs_f64());
        for f in &report.failures {
            let reason = f.reason.replace('\n', " ");
            out.push_str(&format!("{name}\t{}\t?\t# {reason}\n", f.line));
        }
    }
    std::fs::write(&out_path, out).expect("output is writable");
    println!("failures written to {}", out_path.display());
}
