//! Golden scripts, one per anomaly and isolation level, under
//! `tests/testdata/anomalies/<level>/`. Each shows what the level prevents:
//! SERIALIZABLE prevents every anomaly; SNAPSHOT allows write skew (G2-item)
//! and G2 only; READ COMMITTED behaves as PostgreSQL documents (it allows
//! G1c-free non-repeatable reads, read skew, lost updates of read-then-write
//! transactions, PMP and write skew; never dirty writes or dirty reads).
//! `UPDATE_GOLDEN=1` rewrites the files.

mod common;

use std::path::PathBuf;

use teller_kv::Isolation;

fn run_dir(level: &str, isolation: Isolation) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata/anomalies")
        .join(level);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the ten anomaly scripts in {}",
        dir.display()
    );
    for file in files {
        common::script::run_golden(&file, isolation);
    }
}

#[test]
fn serializable() {
    run_dir("serializable", Isolation::Serializable);
}

#[test]
fn snapshot() {
    run_dir("snapshot", Isolation::Snapshot);
}

#[test]
fn read_committed() {
    run_dir("read_committed", Isolation::ReadCommitted);
}

#[test]
fn locking() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/locking");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        common::script::run_golden(&file, Isolation::Serializable);
    }
}
