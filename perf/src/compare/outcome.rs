//! One run's headline figures, read from any result JSON the comparison
//! produces, and the JSON shape the third-party drivers are normalised to.
//!
//! The headline of a workload is what its users compare: ops/s for YCSB and
//! bank, transactions per second for pgbench and sysbench, and for TPC-C the
//! tpmC with New-Order latency (the transaction tpmC counts), not the mix.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::ParseError;
use crate::stats::{ms, quantile_ms};

/// Headline figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub throughput: f64,
    /// `ops/s`, `tps` or `tpmC`.
    pub unit: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Failed operations by SQLSTATE (or a tool's own label).
    pub errors: BTreeMap<String, u64>,
    /// Retried attempts by SQLSTATE (or a tool's own label).
    pub retries: BTreeMap<String, u64>,
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn number(v: &Value, key: &str) -> Result<f64, ParseError> {
    v[key]
        .as_f64()
        .ok_or_else(|| ParseError(format!("result has no number `{key}`")))
}

impl Outcome {
    /// Reads a `teller workload` result or a normalised pgbench/sysbench one.
    pub fn from_json(v: &Value) -> Result<Outcome, ParseError> {
        let (throughput, unit, latency) = if v.get("tpmC").is_some() {
            let new_order = &v["operations"]["new_order"];
            // A run without a single New-Order has no latency to report.
            let latency = if new_order.is_object() { new_order } else { v };
            (number(v, "tpmC")?, "tpmC".to_string(), latency)
        } else {
            let unit = v["unit"].as_str().unwrap_or("ops/s").to_string();
            (number(v, "ops_per_sec")?, unit, v)
        };
        Ok(Outcome {
            throughput,
            unit,
            p50_ms: number(latency, "p50_ms")?,
            p99_ms: number(latency, "p99_ms")?,
            errors: counts(&v["errors"]),
            retries: counts(&v["retries"]),
        })
    }
}

/// The result JSON of a third-party driver run, in the shape the workload
/// driver writes (`ops_per_sec`, `p50_ms` ... `max_ms`, `errors`, `retries`)
/// plus the `tool` and the throughput `unit`.
pub struct ToolResult<'a> {
    pub tool: &'a str,
    pub unit: &'a str,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub latency: &'a Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
    pub retries: BTreeMap<String, u64>,
    /// Further figures worth keeping (queries per second, ...).
    pub extra: Map<String, Value>,
}

impl ToolResult<'_> {
    pub fn to_json(&self) -> Value {
        let h = self.latency;
        let mut v = json!({
            "tool": self.tool,
            "unit": self.unit,
            "ops": self.ops,
            "ops_per_sec": self.ops_per_sec,
            "latency_samples": h.len(),
            "mean_ms": if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            "p50_ms": quantile_ms(h, 0.5),
            "p95_ms": quantile_ms(h, 0.95),
            "p99_ms": quantile_ms(h, 0.99),
            "p999_ms": quantile_ms(h, 0.999),
            "max_ms": if h.is_empty() { 0.0 } else { ms(h.max()) },
            "errors": self.errors,
            "retries": self.retries,
        });
        if let Value::Object(m) = &mut v {
            m.extend(self.extra.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram;

    #[test]
    fn driver_results_use_ops_per_second() {
        let v = json!({
            "ops_per_sec": 950.0, "p50_ms": 1.8, "p99_ms": 25.4,
            "errors": { "40001": 2 }, "retries": { "40001": 234 },
        });
        let o = Outcome::from_json(&v).expect("valid");
        assert_eq!((o.throughput, o.unit.as_str()), (950.0, "ops/s"));
        assert_eq!((o.p50_ms, o.p99_ms), (1.8, 25.4));
        assert_eq!(o.errors["40001"], 2);
        assert_eq!(o.retries["40001"], 234);
    }

    #[test]
    fn tpcc_results_use_tpmc_and_new_order_latency() {
        let v = json!({
            "ops_per_sec": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "tpmC": 2565.0,
            "operations": { "new_order": { "p50_ms": 34.6, "p99_ms": 1037.8 } },
            "errors": {}, "retries": {},
        });
        let o = Outcome::from_json(&v).expect("valid");
        assert_eq!((o.throughput, o.unit.as_str()), (2565.0, "tpmC"));
        assert_eq!((o.p50_ms, o.p99_ms), (34.6, 1037.8));
    }

    #[test]
    fn a_result_without_throughput_is_rejected() {
        let err = Outcome::from_json(&json!({ "p50_ms": 1.0 })).expect_err("invalid");
        assert!(err.0.contains("ops_per_sec"), "{err}");
    }

    #[test]
    fn tool_results_read_back_as_outcomes() {
        let mut h = histogram();
        for us in 1..=1000 {
            h.record(us).expect("in range");
        }
        let r = ToolResult {
            tool: "pgbench",
            unit: "tps",
            ops: 1000,
            ops_per_sec: 500.0,
            latency: &h,
            errors: BTreeMap::from([("40001".to_string(), 3)]),
            retries: BTreeMap::new(),
            extra: Map::new(),
        };
        let o = Outcome::from_json(&r.to_json()).expect("valid");
        assert_eq!((o.throughput, o.unit.as_str()), (500.0, "tps"));
        assert!((0.49..=0.51).contains(&o.p50_ms), "{}", o.p50_ms);
        assert!((0.98..=1.0).contains(&o.p99_ms), "{}", o.p99_ms);
        assert_eq!(o.errors["40001"], 3);
    }
}
