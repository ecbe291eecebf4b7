//! `txn report FILE...`: the medians of repeated `txn run --json` results,
//! one table row per (operation, placement, clients), as
//! `scripts/bench-txn.sh` prints it and `perf/RESULTS.md` records it.

use serde_json::Value;

/// Runs of one configuration.
#[derive(Debug, Default)]
struct Cell {
    op: String,
    placement: String,
    clients: u64,
    ops_per_sec: Vec<f64>,
    p50_ms: Vec<f64>,
    p99_ms: Vec<f64>,
    /// Runs whose placement held / was checked.
    held: usize,
    checked: usize,
    errors: u64,
    retries: u64,
    ranges_used: Vec<u64>,
    shards_used: Vec<u64>,
}

fn sum_counts(v: &Value) -> u64 {
    v.as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    assert!(!v.is_empty(), "median of nothing");
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn spread(v: &[f64], digits: usize) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.digits$} ({min:.digits$}..{max:.digits$})", median(v))
}

/// The markdown table of the results `(name, JSON)`, in the order their
/// configurations first appear. Results of other workloads are refused.
pub fn table(results: &[(String, Value)]) -> Result<String, String> {
    let mut cells: Vec<Cell> = Vec::new();
    for (name, r) in results {
        if r["workload"] != "txn" {
            return Err(format!("{name}: not a txn result"));
        }
        let text = |k: &str| r[k].as_str().map(str::to_string);
        let num = |k: &str| {
            r[k].as_f64()
                .ok_or_else(|| format!("{name}: no number {k}"))
        };
        let (op, placement) = match (text("op"), text("placement")) {
            (Some(o), Some(p)) => (o, p),
            _ => return Err(format!("{name}: no op or placement")),
        };
        let clients = r["concurrency"].as_u64().unwrap_or(0);
        let at = cells
            .iter()
            .position(|c| c.op == op && c.placement == placement && c.clients == clients);
        let cell = match at {
            Some(i) => &mut cells[i],
            None => {
                cells.push(Cell {
                    op,
                    placement,
                    clients,
                    ..Cell::default()
                });
                cells.last_mut().expect("just pushed")
            }
        };
        cell.ops_per_sec.push(num("ops_per_sec")?);
        cell.p50_ms.push(num("p50_ms")?);
        cell.p99_ms.push(num("p99_ms")?);
        if let Some(held) = r["placement_held"].as_bool() {
            cell.checked += 1;
            cell.held += usize::from(held);
        }
        cell.errors += sum_counts(&r["errors"]);
        cell.retries += sum_counts(&r["retries"]);
        cell.ranges_used.extend(r["ranges_used"].as_u64());
        cell.shards_used.extend(r["shards_used"].as_u64());
    }
    let mut out = String::from(
        "| op | placement | clients | runs | ops/s | p50 ms | p99 ms | ranges / shards used | placement held | errors | retries |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for c in &cells {
        let used = match (c.ranges_used.iter().max(), c.shards_used.iter().max()) {
            (Some(r), Some(s)) => format!("{r} / {s}"),
            _ => "unknown".into(),
        };
        let held = if c.checked == 0 {
            "unknown".to_string()
        } else {
            format!("{}/{}", c.held, c.checked)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {used} | {held} | {} | {} |\n",
            c.op,
            c.placement,
            c.clients,
            c.ops_per_sec.len(),
            spread(&c.ops_per_sec, 0),
            spread(&c.p50_ms, 2),
            spread(&c.p99_ms, 2),
            c.errors,
            c.retries,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(op: &str, placement: &str, clients: u64, ops: f64, held: Value) -> Value {
        json!({
            "workload": "txn", "op": op, "placement": placement, "concurrency": clients,
            "ops_per_sec": ops, "p50_ms": ops / 1000.0, "p99_ms": ops / 100.0,
            "placement_held": held, "errors": {"40001": 1}, "retries": {"40001": 2},
            "ranges_used": 4, "shards_used": 2
        })
    }

    #[test]
    fn medians_per_configuration_in_first_seen_order() {
        let results: Vec<(String, Value)> = [
            result("transfer", "cross-shard", 8, 300.0, json!(true)),
            result("update", "any", 1, 1000.0, Value::Null),
            result("transfer", "cross-shard", 8, 100.0, json!(false)),
            result("transfer", "cross-shard", 8, 200.0, json!(true)),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("r{i}"), r))
        .collect();
        let t = table(&results).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert_eq!(
            lines[2],
            "| transfer | cross-shard | 8 | 3 | 200 (100..300) | 0.20 (0.10..0.30) | \
             2.00 (1.00..3.00) | 4 / 2 | 2/3 | 3 | 6 |"
        );
        assert!(
            lines[3].starts_with("| update | any | 1 | 1 | 1000 (1000..1000) |"),
            "{t}"
        );
        assert!(lines[3].contains("| unknown |"), "{t}");
    }

    #[test]
    fn medians_and_foreign_results() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        let bank = vec![("b".to_string(), json!({"workload": "bank"}))];
        assert!(table(&bank).unwrap_err().contains("not a txn result"));
    }
}
