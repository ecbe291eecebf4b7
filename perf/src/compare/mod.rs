//! Support for `scripts/compare-postgres.sh`, the side-by-side benchmark of
//! TellerDB and PostgreSQL: normalising the results of the third-party
//! drivers and turning many rounds into one table.
//!
//! The script runs every workload in rounds, alternating the sides (PG,
//! TellerDB, PG, TellerDB, ...), and leaves for each run a JSON result and a
//! status file. Three kinds of runs produce results:
//!
//! - `teller workload` runs write their JSON result directly;
//! - `pgbench` runs are turned into the same shape by [`pgbench`], from its
//!   summary and its per-transaction log (`-l`), so that percentiles come from
//!   an HDR histogram exactly as the workload driver's do;
//! - `sysbench` runs are turned into it by [`sysbench`], from its summary and
//!   its latency histogram (`--histogram`).
//!
//! [`outcome`] reads any of these results as one [`outcome::Outcome`] (the
//! headline throughput, its unit, p50 and p99), and [`table`] gathers the
//! rounds: median and spread (min..max) per side and metric, and the ratio
//! TellerDB / PostgreSQL of the medians, as Markdown and as JSON.
//!
//! # Invariants
//!
//! - A round counts only if its run exited successfully and its JSON parses;
//!   failed rounds are reported as such, never averaged in.
//! - Ratios are always TellerDB over PostgreSQL: above 1 is better for
//!   throughput and worse for latency.
//! - Nothing here talks to a database: it reads files the script wrote, so
//!   every piece is unit-tested on fixed text.

pub mod cli;
pub mod outcome;
pub mod pgbench;
pub mod sysbench;
pub mod table;

use std::fmt;

/// Why a result could not be read.
#[derive(Debug, PartialEq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The number following `label` on the first line that starts with it
/// (after leading blanks), e.g. `tps = 123.4 (...)` with label `tps =`.
pub(crate) fn number_after(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|word| word.trim_end_matches(['s', ',']).parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_after_finds_labelled_values() {
        let text = "a\n  tps = 12.5 (without initial connection time)\n    total time:   2.65s\n";
        assert_eq!(number_after(text, "tps ="), Some(12.5));
        assert_eq!(number_after(text, "total time:"), Some(2.65));
        assert_eq!(number_after(text, "missing"), None);
    }
}
