//! The side-by-side table: rounds gathered per workload and side, medians
//! and spreads, ratios TellerDB / PostgreSQL.
//!
//! Input layout, as `scripts/compare-postgres.sh` writes it under `$OUT`:
//!
//! ```text
//! runs/<workload>/<side>-r<N>.json     result of round N (any shape Outcome reads)
//! runs/<workload>/<side>-r<N>.status   `ok` or `failed` (the run's exit)
//! runs/<workload>/<side>-check.status  `ok` or `failed`
//! runs/<workload>/<side>-load.status   `failed` when loading failed (else absent)
//! runs/<workload>/<side>-load.seconds  wall time of the load (in the directory of
//!                                      the first workload that needed it)
//! context.txt                          lines describing the run (optional)
//! ```
//!
//! Sides are `postgres` and `teller`. Each metric (throughput, p50, p99) is
//! summarised on its own over the successful rounds: median, min, max.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::outcome::Outcome;

/// The sides in table order: (directory name, display name).
pub const SIDES: [(&str, &str); 2] = [("postgres", "PostgreSQL"), ("teller", "TellerDB")];
const BASELINE: &str = "postgres";
const CANDIDATE: &str = "teller";

/// Median and range of one metric over rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values; the median of an even count is the mean of the
    /// two middle values.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    fn to_json(self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// Everything one side did on one workload.
#[derive(Debug, Default)]
pub struct SideRounds {
    /// Successful rounds, in order.
    pub outcomes: Vec<Outcome>,
    /// Rounds whose run failed or left no readable result.
    pub failed: usize,
    /// `ok` or `failed`; `None` when no check ran.
    pub check: Option<String>,
    /// Loading the workload's tables failed: no round could run.
    pub load_failed: bool,
    /// The load was killed by the harness's timeout (`timeout` status).
    pub load_timed_out: bool,
    /// Seconds the load took, when this workload loaded the tables.
    pub load_seconds: Option<f64>,
}

impl SideRounds {
    fn metric(&self, f: impl Fn(&Outcome) -> f64) -> Option<Spread> {
        Spread::of(&self.outcomes.iter().map(f).collect::<Vec<_>>())
    }

    pub fn throughput(&self) -> Option<Spread> {
        self.metric(|o| o.throughput)
    }

    pub fn p50(&self) -> Option<Spread> {
        self.metric(|o| o.p50_ms)
    }

    pub fn p99(&self) -> Option<Spread> {
        self.metric(|o| o.p99_ms)
    }

    pub fn unit(&self) -> Option<&str> {
        self.outcomes.first().map(|o| o.unit.as_str())
    }

    fn totals(&self, f: impl Fn(&Outcome) -> &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for o in &self.outcomes {
            for (k, v) in f(o) {
                *total.entry(k.clone()).or_default() += v;
            }
        }
        total
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.totals(|o| &o.errors)
    }

    pub fn retries(&self) -> BTreeMap<String, u64> {
        self.totals(|o| &o.retries)
    }
}

/// One workload with the sides that ran it.
#[derive(Debug)]
pub struct Row {
    pub workload: String,
    pub sides: BTreeMap<String, SideRounds>,
}

impl Row {
    fn unit(&self) -> &str {
        self.sides
            .values()
            .find_map(SideRounds::unit)
            .unwrap_or("ops/s")
    }

    /// Ratio of the medians of one metric, TellerDB / PostgreSQL.
    fn ratio(&self, f: impl Fn(&SideRounds) -> Option<Spread>) -> Option<f64> {
        let pg = f(self.sides.get(BASELINE)?)?.median;
        let teller = f(self.sides.get(CANDIDATE)?)?.median;
        (pg > 0.0).then(|| teller / pg)
    }
}

fn read_side(dir: &Path, side: &str) -> Option<SideRounds> {
    let status = |name: &str| {
        fs::read_to_string(dir.join(format!("{side}-{name}.status")))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let load = status("load");
    let load_seconds = fs::read_to_string(dir.join(format!("{side}-load.seconds")))
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok());
    let mut rounds = SideRounds {
        check: status("check"),
        load_failed: load.as_deref().is_some_and(|s| s != "ok"),
        load_timed_out: load.as_deref() == Some("timeout"),
        load_seconds,
        ..SideRounds::default()
    };
    let mut any = rounds.check.is_some() || load.is_some() || load_seconds.is_some();
    for n in 1.. {
        let round = format!("r{n}");
        let Some(st) = status(&round) else { break };
        any = true;
        let outcome = fs::read_to_string(dir.join(format!("{side}-{round}.json")))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|v| Outcome::from_json(&v).ok());
        match outcome {
            Some(o) if st == "ok" => rounds.outcomes.push(o),
            _ => rounds.failed += 1,
        }
    }
    any.then_some(rounds)
}

/// Reads every workload's rounds under `out/runs`.
pub fn read(out: &Path, workloads: &[String]) -> Vec<Row> {
    workloads
        .iter()
        .map(|w| {
            let dir = out.join("runs").join(w);
            let sides = SIDES
                .iter()
                .filter_map(|(side, _)| Some((side.to_string(), read_side(&dir, side)?)))
                .collect();
            Row {
                workload: w.clone(),
                sides,
            }
        })
        .collect()
}

/// The tables a workload runs on: workloads of one family share a load.
pub fn family(workload: &str) -> &str {
    workload.split('-').next().unwrap_or(workload)
}

/// A figure with about four significant digits, no exponent.
pub fn figure(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(side: Option<&SideRounds>, f: impl Fn(&SideRounds) -> Option<Spread>) -> String {
    let Some(side) = side else {
        return "-".into();
    };
    match f(side) {
        None => "failed".into(),
        Some(s) if side.outcomes.len() == 1 => figure(s.median),
        Some(s) => format!(
            "{} ({}..{})",
            figure(s.median),
            figure(s.min),
            figure(s.max)
        ),
    }
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}"))
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Markdown report: context, the side-by-side table, then rounds,
/// errors, retries and checks per side.
pub fn markdown(rows: &[Row], context: &[String]) -> String {
    let mut out = String::new();
    for line in context {
        out.push_str(&format!("- {line}\n"));
    }
    if !context.is_empty() {
        out.push('\n');
    }
    out.push_str(
        "Median (min..max) over rounds; ratio = TellerDB / PostgreSQL of the medians \
         (throughput: higher is better; latency: lower is better). TPC-C: tpmC and \
         New-Order latency.\n\n",
    );
    out.push_str(
        "| workload | unit | PostgreSQL | TellerDB | ratio | PG p50 ms | TellerDB p50 ms | ratio \
         | PG p99 ms | TellerDB p99 ms | ratio |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for row in rows {
        let pg = row.sides.get(BASELINE);
        let teller = row.sides.get(CANDIDATE);
        let metrics: [fn(&SideRounds) -> Option<Spread>; 3] =
            [SideRounds::throughput, SideRounds::p50, SideRounds::p99];
        let cells: Vec<String> = metrics
            .iter()
            .flat_map(|m| [cell(pg, m), cell(teller, m), ratio_cell(row.ratio(m))])
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            row.workload,
            row.unit(),
            cells.join(" | ")
        ));
    }
    out.push_str("\n| workload | side | rounds ok | errors | retries | check |\n");
    out.push_str("|---|---|--:|---|---|---|\n");
    for row in rows {
        for (side, name) in SIDES {
            let Some(s) = row.sides.get(side) else {
                continue;
            };
            out.push_str(&format!(
                "| {} | {name} | {}/{} | {} | {} | {} |\n",
                row.workload,
                s.outcomes.len(),
                s.outcomes.len() + s.failed,
                counts(&s.errors()),
                counts(&s.retries()),
                if s.load_timed_out {
                    "load timed out"
                } else if s.load_failed {
                    "load failed"
                } else {
                    s.check.as_deref().unwrap_or("not run")
                }
            ));
        }
    }
    let loads: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.sides
                .values()
                .any(|s| s.load_seconds.is_some() || s.load_failed)
        })
        .collect();
    if !loads.is_empty() {
        out.push_str("\nLoad times (wall seconds, loaded once per side and shared by a family's workloads):\n\n");
        out.push_str("| tables | PostgreSQL s | TellerDB s | ratio |\n|---|--:|--:|--:|\n");
        for row in loads {
            let secs = |side: &str| row.sides.get(side).and_then(|s| s.load_seconds);
            let (pg, teller) = (secs(BASELINE), secs(CANDIDATE));
            let show = |side: &str| match row.sides.get(side) {
                Some(s) if s.load_timed_out => "timed out".to_string(),
                Some(s) if s.load_failed => "failed".to_string(),
                Some(s) => s.load_seconds.map_or("-".into(), figure),
                None => "-".into(),
            };
            let ratio = pg.zip(teller).filter(|(p, _)| *p > 0.0).map(|(p, t)| t / p);
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                family(&row.workload),
                show(BASELINE),
                show(CANDIDATE),
                ratio_cell(ratio)
            ));
        }
    }
    out
}

/// The machine-readable report.
pub fn to_json(rows: &[Row], context: &[String]) -> Value {
    let opt = |s: Option<Spread>| s.map_or(Value::Null, Spread::to_json);
    let workloads: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut sides = Map::new();
            for (side, s) in &row.sides {
                let runs: Vec<Value> = s
                    .outcomes
                    .iter()
                    .map(|o| json!({ "throughput": o.throughput, "p50_ms": o.p50_ms, "p99_ms": o.p99_ms }))
                    .collect();
                sides.insert(
                    side.clone(),
                    json!({
                        "rounds_ok": s.outcomes.len(),
                        "rounds_failed": s.failed,
                        "check": s.check,
                        "load_failed": s.load_failed,
                        "load_seconds": s.load_seconds,
                        "throughput": opt(s.throughput()),
                        "p50_ms": opt(s.p50()),
                        "p99_ms": opt(s.p99()),
                        "errors": s.errors(),
                        "retries": s.retries(),
                        "runs": runs,
                    }),
                );
            }
            json!({
                "workload": row.workload,
                "unit": row.unit(),
                "sides": sides,
                "ratio": {
                    "throughput": row.ratio(SideRounds::throughput),
                    "p50_ms": row.ratio(SideRounds::p50),
                    "p99_ms": row.ratio(SideRounds::p99),
                },
            })
        })
        .collect();
    json!({ "context": context, "workloads": workloads })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[3.0, 1.0, 2.0]).expect("values");
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).expect("values");
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn figures_keep_about_four_digits() {
        assert_eq!(figure(27594.4), "27594");
        assert_eq!(figure(34.56), "34.6");
        assert_eq!(figure(0.5312), "0.53");
    }

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).expect("write fixture");
    }

    fn result(ops: f64, p50: f64, p99: f64) -> String {
        json!({ "ops_per_sec": ops, "p50_ms": p50, "p99_ms": p99,
                "errors": { "40001": 1 }, "retries": {} })
        .to_string()
    }

    #[test]
    fn rounds_become_medians_and_ratios() {
        let out = std::env::temp_dir().join(format!("teller-compare-{}", std::process::id()));
        let dir = out.join("runs").join("ycsb-c");
        fs::create_dir_all(&dir).expect("mkdir");
        for (n, (pg, teller)) in [(100.0, 300.0), (120.0, 200.0), (90.0, 250.0)]
            .iter()
            .enumerate()
        {
            let n = n + 1;
            write(&dir, &format!("postgres-r{n}.status"), "ok\n");
            write(&dir, &format!("postgres-r{n}.json"), &result(*pg, 1.0, 4.0));
            write(&dir, &format!("teller-r{n}.status"), "ok\n");
            write(
                &dir,
                &format!("teller-r{n}.json"),
                &result(*teller, 0.5, 2.0),
            );
        }
        // A fourth Teller round failed: reported, not averaged in.
        write(&dir, "teller-r4.status", "failed\n");
        write(&dir, "postgres-check.status", "ok\n");
        write(&dir, "teller-check.status", "failed\n");
        write(&dir, "postgres-load.seconds", "6.3\n");
        write(&dir, "teller-load.seconds", "25.2\n");
        let bank = out.join("runs").join("bank");
        fs::create_dir_all(&bank).expect("mkdir");
        write(&bank, "teller-load.status", "timeout\n");
        write(&bank, "teller-r1.status", "failed\n");

        let rows = read(&out, &["ycsb-c".to_string(), "bank".to_string()]);
        let row = &rows[0];
        let pg = &row.sides["postgres"];
        let teller = &row.sides["teller"];
        assert_eq!(pg.throughput().map(|s| s.median), Some(100.0));
        assert_eq!(teller.throughput().map(|s| s.median), Some(250.0));
        assert_eq!((teller.outcomes.len(), teller.failed), (3, 1));
        assert_eq!(row.ratio(SideRounds::throughput), Some(2.5));
        assert_eq!(row.ratio(SideRounds::p99), Some(0.5));
        assert!(
            !rows[1].sides.contains_key("postgres"),
            "bank never ran on PG"
        );
        assert!(rows[1].sides["teller"].load_failed);

        let md = markdown(&rows, &["machine: test".to_string()]);
        assert!(md.contains("- machine: test"), "{md}");
        assert!(
            md.contains("| ycsb-c | ops/s | 100 (90.0..120) | 250 (200..300) | 2.50 |"),
            "{md}"
        );
        assert!(
            md.contains("| ycsb-c | TellerDB | 3/4 | 40001=3 | 0 | failed |"),
            "{md}"
        );
        assert!(md.contains("| bank | ops/s | - | failed | - |"), "{md}");
        assert!(
            md.contains("| bank | TellerDB | 0/1 | 0 | 0 | load timed out |"),
            "{md}"
        );
        assert!(md.contains("| bank | - | timed out | - |"), "{md}");
        assert!(md.contains("| ycsb | 6.30 | 25.2 | 4.00 |"), "{md}");

        let v = to_json(&rows, &[]);
        assert_eq!(v["workloads"][0]["ratio"]["throughput"], 2.5);
        assert_eq!(v["workloads"][0]["sides"]["teller"]["rounds_failed"], 1);
        assert_eq!(
            v["workloads"][0]["sides"]["postgres"]["throughput"]["min"],
            90.0
        );
        assert_eq!(v["workloads"][1]["ratio"]["throughput"], Value::Null);
        assert_eq!(v["workloads"][0]["sides"]["teller"]["load_seconds"], 25.2);
        fs::remove_dir_all(&out).expect("clean up");
    }
}
