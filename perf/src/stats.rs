//! Per-operation latency histograms, error counters and the rendering of the
//! live progress line, the final summary and the JSON result.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Highest latency a histogram resolves; slower operations are clamped to it.
pub const LATENCY_MAX_US: u64 = 60_000_000;
/// Significant decimal digits the histograms keep.
const LATENCY_SIGFIG: u8 = 3;

/// An empty latency histogram in microseconds, as every recorder keeps.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Everything one client observed over some interval.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Latency in microseconds of successful operations, by operation type.
    pub latency: Vec<Histogram<u64>>,
    /// Failed operations (after retries), by operation type.
    pub failed: Vec<u64>,
    /// Failed operations by SQLSTATE (or `invariant`).
    pub errors: BTreeMap<String, u64>,
    /// Retried attempts by SQLSTATE.
    pub retries: BTreeMap<String, u64>,
    /// Workload events worth counting (e.g. `new_order_rollback`).
    pub events: BTreeMap<&'static str, u64>,
}

impl Recorder {
    pub fn new(op_count: usize) -> Self {
        Recorder {
            latency: (0..op_count).map(|_| histogram()).collect(),
            failed: vec![0; op_count],
            errors: BTreeMap::new(),
            retries: BTreeMap::new(),
            events: BTreeMap::new(),
        }
    }

    pub fn success(&mut self, op: usize, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency[op].saturating_record(us.clamp(1, LATENCY_MAX_US));
    }

    pub fn failure(&mut self, op: usize, code: &str) {
        self.failed[op] += 1;
        *self.errors.entry(code.to_string()).or_default() += 1;
    }

    pub fn retry(&mut self, code: &str) {
        *self.retries.entry(code.to_string()).or_default() += 1;
    }

    pub fn event(&mut self, name: &'static str) {
        *self.events.entry(name).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            mine.add(theirs).expect("histograms share bounds");
        }
        for (mine, theirs) in self.failed.iter_mut().zip(&other.failed) {
            *mine += theirs;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.retries {
            *self.retries.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.events {
            *self.events.entry(k).or_default() += v;
        }
    }

    /// Successful operations of all types.
    pub fn ops(&self) -> u64 {
        self.latency.iter().map(Histogram::len).sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn all_latency(&self) -> Histogram<u64> {
        let mut all = histogram();
        for h in &self.latency {
            all.add(h).expect("histograms share bounds");
        }
        all
    }
}

/// Microseconds as milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The latency at quantile `q` in milliseconds; 0 for an empty histogram.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        ms(h.value_at_quantile(q))
    }
}

/// One line of live progress: ops/s and p50/p99 per operation type.
pub fn progress_line(
    names: &[&str],
    r: &Recorder,
    elapsed: Duration,
    interval: Duration,
) -> String {
    let secs = interval.as_secs_f64().max(1e-9);
    let mut line = format!(
        "{:>5.0}s {:>8.0} ops/s",
        elapsed.as_secs_f64(),
        r.ops() as f64 / secs
    );
    for (name, h) in names.iter().zip(&r.latency).filter(|(_, h)| !h.is_empty()) {
        line.push_str(&format!(
            " | {name} {:.0}/s p50 {:.2} p99 {:.2}",
            h.len() as f64 / secs,
            quantile_ms(h, 0.5),
            quantile_ms(h, 0.99)
        ));
    }
    let errors = r.error_count();
    if errors > 0 {
        line.push_str(&format!(" | errors {errors}"));
    }
    line
}

/// The measured result of a run.
#[derive(Debug)]
pub struct Summary {
    pub workload: String,
    pub names: Vec<&'static str>,
    pub concurrency: usize,
    pub seed: u64,
    /// Measured window (after ramp-up).
    pub elapsed: Duration,
    pub recorder: Recorder,
}

impl Summary {
    pub fn ops_per_sec(&self) -> f64 {
        self.recorder.ops() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Successful operations of one type, by name.
    pub fn count(&self, name: &str) -> u64 {
        self.names
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| self.recorder.latency[i].len())
    }

    fn op_json(&self, h: &Histogram<u64>, failed: u64) -> Value {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        json!({
            "count": h.len(),
            "errors": failed,
            "ops_per_sec": h.len() as f64 / secs,
            "mean_ms": if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            "p50_ms": quantile_ms(h, 0.5),
            "p95_ms": quantile_ms(h, 0.95),
            "p99_ms": quantile_ms(h, 0.99),
            "p999_ms": quantile_ms(h, 0.999),
            "max_ms": if h.is_empty() { 0.0 } else { ms(h.max()) },
        })
    }

    /// The machine-readable result; `extra` (e.g. tpmC) is merged at the top.
    pub fn to_json(&self, extra: Map<String, Value>) -> Value {
        let r = &self.recorder;
        let mut operations = Map::new();
        for (i, name) in self.names.iter().enumerate() {
            if r.latency[i].is_empty() && r.failed[i] == 0 {
                continue; // not in this workload's mix
            }
            operations.insert(name.to_string(), self.op_json(&r.latency[i], r.failed[i]));
        }
        let all = self.op_json(&r.all_latency(), r.failed.iter().sum());
        let mut top = json!({
            "workload": self.workload,
            "concurrency": self.concurrency,
            "seed": self.seed,
            "duration_s": self.elapsed.as_secs_f64(),
            "ops": r.ops(),
            "ops_per_sec": self.ops_per_sec(),
            "p50_ms": all["p50_ms"],
            "p95_ms": all["p95_ms"],
            "p99_ms": all["p99_ms"],
            "p999_ms": all["p999_ms"],
            "max_ms": all["max_ms"],
            "operations": operations,
            "errors": r.errors,
            "retries": r.retries,
            "events": r.events,
        });
        if let Value::Object(map) = &mut top {
            map.extend(extra);
        }
        top
    }

    /// The human-readable summary table.
    pub fn render(&self, extra: &Map<String, Value>) -> String {
        let r = &self.recorder;
        let mut out = format!(
            "\n{}: {} clients, {:.1} s measured, seed {}\n",
            self.workload,
            self.concurrency,
            self.elapsed.as_secs_f64(),
            self.seed
        );
        out.push_str(&format!(
            "{:<18} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}  (latency ms)\n",
            "operation", "count", "ops/s", "mean", "p50", "p95", "p99", "p99.9", "max", "errors"
        ));
        let all = r.all_latency();
        let rows = self
            .names
            .iter()
            .zip(r.latency.iter().zip(&r.failed))
            .map(|(n, (h, f))| (*n, h, *f))
            .filter(|(_, h, f)| !h.is_empty() || *f > 0)
            .chain(std::iter::once(("total", &all, r.failed.iter().sum())));
        for (name, h, failed) in rows {
            let v = self.op_json(h, failed);
            let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
            out.push_str(&format!(
                "{:<18} {:>9} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}\n",
                name,
                h.len(),
                f("ops_per_sec"),
                f("mean_ms"),
                f("p50_ms"),
                f("p95_ms"),
                f("p99_ms"),
                f("p999_ms"),
                f("max_ms"),
                failed
            ));
        }
        let kv = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push_str(&format!("errors by SQLSTATE: {}\n", or_none(kv(&r.errors))));
        out.push_str(&format!(
            "retries by SQLSTATE: {}\n",
            or_none(kv(&r.retries))
        ));
        if !r.events.is_empty() {
            let events: BTreeMap<String, u64> =
                r.events.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            out.push_str(&format!("events: {}\n", kv(&events)));
        }
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "none".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        let mut a = Recorder::new(2);
        let mut b = Recorder::new(2);
        for ms in 1..=100 {
            a.success(0, Duration::from_millis(ms));
        }
        b.success(1, Duration::from_secs(120)); // clamped to the histogram's top
        b.failure(1, "40001");
        b.retry("40001");
        b.event("new_order_rollback");
        a.merge(&b);
        Summary {
            workload: "test".into(),
            names: vec!["fast", "slow"],
            concurrency: 2,
            seed: 1,
            elapsed: Duration::from_secs(2),
            recorder: a,
        }
    }

    #[test]
    fn json_has_the_stable_fields() {
        let s = summary();
        let v = s.to_json(Map::new());
        assert_eq!(v["ops"], 101);
        assert_eq!(v["ops_per_sec"], 50.5);
        assert_eq!(v["errors"]["40001"], 1);
        assert_eq!(v["retries"]["40001"], 1);
        assert_eq!(v["events"]["new_order_rollback"], 1);
        let fast = &v["operations"]["fast"];
        assert_eq!(fast["count"], 100);
        let p50 = fast["p50_ms"].as_f64().expect("p50");
        assert!((49.9..=50.1).contains(&p50), "{p50}");
        for key in ["p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"] {
            assert!(v[key].is_f64(), "{key}");
        }
        let slow_max = v["operations"]["slow"]["max_ms"].as_f64().expect("max");
        assert!(
            slow_max <= LATENCY_MAX_US as f64 / 1000.0 * 1.001,
            "{slow_max}"
        );
        assert_eq!(s.count("fast"), 100);
    }

    #[test]
    fn summary_and_progress_name_every_active_operation() {
        let s = summary();
        let text = s.render(&Map::new());
        assert!(text.contains("fast") && text.contains("slow") && text.contains("40001=1"));
        let line = progress_line(&s.names, &s.recorder, s.elapsed, s.elapsed);
        assert!(line.contains("fast") && line.contains("errors 1"), "{line}");
    }
}
