//! The txn workload at tiny scale: against a TellerDB node whose table is
//! cut into KiB-sized ranges spread over two shards (each placement runs,
//! reports where its rows are and whether that held), and against
//! PostgreSQL (no ranges: `--placement any` runs, the others fail
//! clearly). `check` passes after the runs and catches a broken total.

mod common;

use common::teller::TellerServer;
use common::{run_json, sql, workload, PgServer, Server};
use serde_json::Value;

fn assert_ran(result: &Value, op: &str, placement: &str) {
    assert_eq!(result["workload"], "txn", "{result}");
    assert_eq!(result["op"], op, "{result}");
    assert_eq!(result["placement"], placement, "{result}");
    assert!(
        result["operations"][op]["count"].as_u64().unwrap_or(0) > 0,
        "no {op}: {result}"
    );
    for key in ["ops_per_sec", "p50_ms", "p99_ms"] {
        assert!(result[key].as_f64().is_some(), "{key}: {result}");
    }
    assert!(result["errors"].get("invariant").is_none(), "{result}");
}

#[test]
fn every_placement_runs_on_teller_and_reports_where_rows_live() {
    let server = TellerServer::start_with_storage(&[
        ("range_split_bytes", "4096"),
        ("rebalance_interval_ms", "20"),
    ]);
    let url = server.url().to_string();
    workload(&format!("txn init --url {url} --rows 1500")).expect("init");
    // Splits cut the table; the rebalancer spreads the ranges.
    workload(&format!(
        "txn placement --url {url} --min-shards 2 --min-ranges-per-shard 2 --stable 1 --timeout 30"
    ))
    .expect("the table spreads over both shards");

    let mut files = Vec::new();
    for (op, placement, shards) in [
        ("transfer", "same-range", None),
        ("transfer", "same-shard", None),
        ("transfer", "cross-shard", Some(2)),
        ("update", "any", None),
    ] {
        let name = format!("{op}-{placement}");
        let result = run_json(
            &server,
            &name,
            &format!("txn run --op {op} --placement {placement} --concurrency 2 --duration 1"),
        );
        assert_ran(&result, op, placement);
        assert!(result["ranges_used"].as_u64().unwrap_or(0) >= 1, "{result}");
        if let Some(n) = shards {
            assert_eq!(result["shards_used"].as_u64(), Some(n), "{result}");
        }
        assert!(result["table_shards"].as_u64() == Some(2), "{result}");
        // Read again at the end: held or not, it is said.
        assert!(result["placement_held"].is_boolean(), "{result}");
        files.push(
            server
                .dir()
                .join(format!("{name}.json"))
                .display()
                .to_string(),
        );
    }
    workload(&format!("txn report {}", files.join(" "))).expect("the results tabulate");
    workload(&format!("txn check --url {url}")).expect("every transfer kept the total");

    sql(
        &server,
        "UPDATE txn_accounts SET balance = balance + 1 WHERE id = 7",
    );
    assert!(workload(&format!("txn check --url {url}")).is_err());
}

#[test]
fn postgres_runs_placement_any_and_refuses_the_others() {
    let pg = PgServer::start();
    let url = pg.url.clone();
    workload(&format!("txn init --url {url} --rows 200")).expect("init");
    let result = run_json(
        &pg,
        "transfer-any",
        "txn run --op transfer --concurrency 2 --duration 0.5",
    );
    assert_ran(&result, "transfer", "any");
    assert_eq!(result["placement_held"], Value::Null, "{result}");
    assert!(result.get("shards_used").is_none(), "{result}");
    let err = workload(&format!(
        "txn run --url {url} --op transfer --placement same-shard --duration 0.5"
    ))
    .expect_err("PostgreSQL has no ranges");
    let text = err.to_string();
    assert!(
        text.contains("SHOW RANGES") && text.contains("--placement any"),
        "{text}"
    );
    let err = workload(&format!("txn placement --url {url}")).expect_err("no ranges");
    assert!(err.to_string().contains("SHOW RANGES"), "{err}");
    // More clients than rows to give each its own: said, not run.
    let err = workload(&format!(
        "txn run --url {url} --op transfer --concurrency 101 --duration 0.5"
    ))
    .expect_err("200 rows make 100 pairs");
    assert!(err.to_string().contains("only 100 units"), "{err}");
    workload(&format!("txn check --url {url}")).expect("total unchanged");
}
