//! sysbench results: its summary and its latency histogram.
//!
//! The script runs `sysbench <oltp_point_select|oltp_read_write>
//! --db-driver=pgsql --histogram=on --report-interval=1 ... run`. The
//! summary gives transactions (events) and queries with their rates and the
//! `ignored errors` (deadlocks and serialization failures, after which the
//! Lua script restarts the transaction: retries, not failures). The
//! histogram lists latency buckets in milliseconds with their counts:
//!
//! ```text
//!        0.665 |***                                      1
//! ```
//!
//! sysbench computes one percentile only, so p50 and p99 come from these
//! buckets, re-recorded into an HDR histogram (the bucket value is sysbench's
//! own rounding, about 1.5% wide). A fatal error stops sysbench with a
//! `FATAL:` line; those are counted as errors.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::outcome::ToolResult;
use super::{number_after, ParseError};
use crate::stats::{histogram, LATENCY_MAX_US};

/// The rate in parentheses on the line starting with `label`:
/// `transactions: 453 (170.43 per sec.)` gives 170.43.
fn rate_after(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_once('('))
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|w| w.parse().ok())
}

/// A histogram line: (latency in microseconds, count).
fn histogram_line(line: &str) -> Option<(u64, u64)> {
    let (value, bar) = line.split_once('|')?;
    let ms: f64 = value.trim().parse().ok()?;
    let count: u64 = bar.trim_start_matches('*').trim().parse().ok()?;
    Some(((ms * 1000.0).round() as u64, count))
}

/// Latencies from the histogram lines of the output.
pub fn parse_histogram(output: &str) -> Histogram<u64> {
    let mut h = histogram();
    for (us, count) in output.lines().filter_map(histogram_line) {
        h.saturating_record_n(us.clamp(1, LATENCY_MAX_US), count);
    }
    h
}

/// The normalised result of one sysbench run.
pub fn result(output: &str) -> Result<Value, ParseError> {
    let missing = |what: &str| ParseError(format!("sysbench output has no {what}"));
    let transactions =
        number_after(output, "transactions:").ok_or_else(|| missing("transactions"))?;
    let tps = rate_after(output, "transactions:").ok_or_else(|| missing("transaction rate"))?;
    let latency = parse_histogram(output);
    if latency.is_empty() && transactions > 0.0 {
        return Err(missing("latency histogram (run with --histogram=on)"));
    }
    let mut errors = BTreeMap::new();
    let fatal = output.matches("FATAL:").count() as u64;
    if fatal > 0 {
        errors.insert("fatal".to_string(), fatal);
    }
    let mut retries = BTreeMap::new();
    let ignored = number_after(output, "ignored errors:").unwrap_or(0.0) as u64;
    if ignored > 0 {
        // Deadlocks and serialization failures; sysbench does not split them.
        retries.insert("40001/40P01".to_string(), ignored);
    }
    let mut extra = Map::new();
    extra.insert(
        "queries_per_sec".into(),
        json!(rate_after(output, "queries:").unwrap_or(0.0)),
    );
    extra.insert(
        "reconnects".into(),
        json!(number_after(output, "reconnects:").unwrap_or(0.0) as u64),
    );
    Ok(ToolResult {
        tool: "sysbench",
        unit: "tps",
        ops: transactions as u64,
        ops_per_sec: tps,
        latency: &latency,
        errors,
        retries,
        extra,
    }
    .to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)
[ 1s ] thds: 4 tps: 158.74 qps: 3327.49 (r/w/o: 2348.11/631.95/347.42) lat (ms,99%): 15.00 err/s: 4.99 reconn/s: 0.00
Latency histogram (values are in milliseconds)
       value  ------------- distribution ------------- count
       0.665 |***                                      50
       1.000 |******                                   49
      995.51 |*                                        1

SQL statistics:
    queries performed:
        read:                            6538
        total:                           9309
    transactions:                        100    (170.43 per sec.)
    queries:                             9309   (3502.20 per sec.)
    ignored errors:                      14     (5.27 per sec.)
    reconnects:                          0      (0.00 per sec.)
";

    #[test]
    fn summary_and_histogram_are_read() {
        let v = result(OUTPUT).expect("valid");
        assert_eq!(v["tool"], "sysbench");
        assert_eq!(v["ops"], 100);
        assert_eq!(v["ops_per_sec"], 170.43);
        assert_eq!(v["queries_per_sec"], 3502.2);
        assert_eq!(v["retries"]["40001/40P01"], 14);
        assert_eq!(v["latency_samples"], 100);
        let p50 = v["p50_ms"].as_f64().expect("p50");
        assert!((0.66..=0.67).contains(&p50), "{p50}");
        let p99 = v["p99_ms"].as_f64().expect("p99");
        assert!((0.99..=1.01).contains(&p99), "{p99}");
        let max = v["max_ms"].as_f64().expect("max");
        assert!((995.0..=996.0).contains(&max), "{max}");
    }

    #[test]
    fn progress_lines_are_not_histogram_lines() {
        assert_eq!(histogram_line("       0.665 |***      50"), Some((665, 50)));
        assert_eq!(
            histogram_line("[ 1s ] thds: 4 tps: 158.74 | x"),
            None,
            "progress lines must not count"
        );
    }

    #[test]
    fn fatal_errors_count_and_missing_summary_fails() {
        let text = format!("{OUTPUT}FATAL: `thread_run' function failed\n");
        assert_eq!(result(&text).expect("valid")["errors"]["fatal"], 1);
        assert!(result("FATAL: connection refused\n").is_err());
    }
}
