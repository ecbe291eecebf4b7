//! pgbench results: its summary (stdout) and its per-transaction log.
//!
//! The script runs `pgbench -n -M prepared -f SCRIPT -T S -P 1 -l
//! --log-prefix P --max-tries N --failures-detailed`. pgbench prints the
//! throughput (`tps = ... (without initial connection time)`) and the count
//! of retries, and writes one log line per transaction per thread file:
//!
//! ```text
//! client_id transaction_no time script_no time_epoch time_us [retries]
//! ```
//!
//! where `time` is the latency in microseconds, or `serialization`,
//! `deadlock` or `failed` for a transaction that failed after its tries.
//! pgbench itself reports only the mean latency, so percentiles come from
//! the log, through the same HDR histogram the workload driver uses.
//! A client that hits any other error aborts (`... aborted in command ...`)
//! and pgbench exits non-zero; aborted clients are counted as errors.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::outcome::ToolResult;
use super::{number_after, ParseError};
use crate::stats::{histogram, LATENCY_MAX_US};

/// What pgbench's summary says.
#[derive(Debug, PartialEq)]
pub struct Summary {
    pub tps: f64,
    pub processed: u64,
    pub retries: u64,
    /// Clients that aborted on an error pgbench does not retry.
    pub aborted_clients: u64,
}

/// Reads pgbench's summary from its output (stdout and stderr together).
pub fn parse_summary(output: &str) -> Result<Summary, ParseError> {
    let tps = number_after(output, "tps =")
        .ok_or_else(|| ParseError("pgbench output has no `tps =` line".into()))?;
    let processed = number_after(output, "number of transactions actually processed:")
        .ok_or_else(|| ParseError("pgbench output has no processed count".into()))?;
    Ok(Summary {
        tps,
        processed: processed as u64,
        retries: number_after(output, "total number of retries:").unwrap_or(0.0) as u64,
        aborted_clients: output.matches("aborted in command").count() as u64,
    })
}

/// One line of the per-transaction log.
#[derive(Debug, PartialEq)]
pub enum LogEntry {
    LatencyUs(u64),
    /// Failed after its tries, with the SQLSTATE pgbench names.
    Failed(&'static str),
    /// Skipped by `--latency-limit` (not used by the script).
    Skipped,
}

pub fn parse_log_line(line: &str) -> Result<LogEntry, ParseError> {
    let time = line
        .split_whitespace()
        .nth(2)
        .ok_or_else(|| ParseError(format!("short pgbench log line: {line:?}")))?;
    Ok(match time {
        "serialization" => LogEntry::Failed("40001"),
        "deadlock" => LogEntry::Failed("40P01"),
        "failed" => LogEntry::Failed("failed"),
        "skipped" => LogEntry::Skipped,
        us => LogEntry::LatencyUs(
            us.parse()
                .map_err(|_| ParseError(format!("bad pgbench log line: {line:?}")))?,
        ),
    })
}

/// Latencies and failures gathered from the log files.
pub struct Log {
    pub latency: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            latency: histogram(),
            errors: BTreeMap::new(),
        }
    }
}

impl Log {
    /// Adds one log file's lines.
    pub fn add(&mut self, text: &str) -> Result<(), ParseError> {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match parse_log_line(line)? {
                LogEntry::LatencyUs(us) => {
                    self.latency.saturating_record(us.clamp(1, LATENCY_MAX_US));
                }
                LogEntry::Failed(code) => *self.errors.entry(code.to_string()).or_default() += 1,
                LogEntry::Skipped => *self.errors.entry("skipped".into()).or_default() += 1,
            }
        }
        Ok(())
    }
}

/// The normalised result of one pgbench run.
pub fn result(output: &str, log: Log) -> Result<Value, ParseError> {
    let summary = parse_summary(output)?;
    let mut errors = log.errors;
    if summary.aborted_clients > 0 {
        errors.insert("aborted".into(), summary.aborted_clients);
    }
    let mut retries = BTreeMap::new();
    if summary.retries > 0 {
        // pgbench does not split retries by cause.
        retries.insert("40001/40P01".to_string(), summary.retries);
    }
    let mut extra = Map::new();
    extra.insert("processed".into(), json!(summary.processed));
    Ok(ToolResult {
        tool: "pgbench",
        unit: "tps",
        ops: log.latency.len(),
        ops_per_sec: summary.tps,
        latency: &log.latency,
        errors,
        retries,
        extra,
    }
    .to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "pgbench (15.18 (Debian 15.18-0+deb12u1))
progress: 1.0 s, 39330.6 tps, lat 0.097 ms stddev 0.414, 0 failed, 0 retried, 0 retries
transaction type: perf/pgbench/tpcb-like.sql
number of transactions actually processed: 79374
number of failed transactions: 2 (0.003%)
number of transactions retried: 10 (0.013%)
total number of retries: 12
latency average = 0.097 ms
tps = 39843.465288 (without initial connection time)
";

    #[test]
    fn summary_figures_are_read() {
        let s = parse_summary(OUTPUT).expect("valid");
        assert_eq!(
            s,
            Summary {
                tps: 39843.465288,
                processed: 79374,
                retries: 12,
                aborted_clients: 0
            }
        );
    }

    #[test]
    fn aborted_clients_are_counted() {
        let text = format!(
            "{OUTPUT}pgbench: error: client 3 script 0 aborted in command 4 query 0: ERROR:  x\n\
             pgbench: error: client 5 script 0 aborted in command 4 query 0: ERROR:  x\n"
        );
        assert_eq!(parse_summary(&text).expect("valid").aborted_clients, 2);
    }

    #[test]
    fn output_without_tps_is_an_error() {
        assert!(parse_summary("pgbench: error: connection refused\n").is_err());
    }

    #[test]
    fn log_lines_give_latencies_and_failures() {
        assert_eq!(
            parse_log_line("0 1 5441 0 1795285120 198471 0"),
            Ok(LogEntry::LatencyUs(5441))
        );
        assert_eq!(
            parse_log_line("2 7 serialization 0 1795285120 198471 31"),
            Ok(LogEntry::Failed("40001"))
        );
        assert_eq!(
            parse_log_line("2 8 deadlock 0 1795285120 198471 1"),
            Ok(LogEntry::Failed("40P01"))
        );
        assert!(parse_log_line("0 1").is_err());
        assert!(parse_log_line("0 1 fast 0 1 2").is_err());
    }

    #[test]
    fn result_combines_summary_and_log() {
        let mut log = Log::default();
        let lines: String = (1..=100)
            .map(|i| format!("0 {i} {} 0 1795285120 0 0\n", i * 100))
            .collect();
        log.add(&lines).expect("valid");
        log.add("1 1 serialization 0 1795285120 0 31\n")
            .expect("valid");
        let v = result(OUTPUT, log).expect("valid");
        assert_eq!(v["tool"], "pgbench");
        assert_eq!(v["ops"], 100);
        assert_eq!(v["ops_per_sec"], 39843.465288);
        assert_eq!(v["errors"]["40001"], 1);
        assert_eq!(v["retries"]["40001/40P01"], 12);
        let p50 = v["p50_ms"].as_f64().expect("p50");
        assert!((4.99..=5.01).contains(&p50), "{p50}");
        let p99 = v["p99_ms"].as_f64().expect("p99");
        assert!((9.89..=9.91).contains(&p99), "{p99}");
    }
}
