//! Every workload at tiny scale against a private PostgreSQL and against a
//! TellerDB node (the workspace's `teller` binary, see `common/teller.rs`):
//! init, a short run, check. Benchmarks cannot rot, and `check` is shown to
//! catch a broken invariant, not only to pass. Each scenario is one function
//! over [`Server`], run once per server kind.

mod common;

use common::teller::TellerServer;
use common::{run_json, sql, workload, PgServer, Server};
use serde_json::Value;

fn ops(result: &Value, op: &str) -> u64 {
    result["operations"][op]["count"].as_u64().unwrap_or(0)
}

fn assert_result_shape(result: &Value) {
    assert!(
        result["ops_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
        "{result}"
    );
    for key in ["p50_ms", "p99_ms", "p999_ms"] {
        assert!(result[key].is_f64(), "{key} missing: {result}");
    }
    assert!(result["errors"].is_object(), "{result}");
    for (name, op) in result["operations"].as_object().expect("operations") {
        for key in ["count", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"] {
            assert!(op.get(key).is_some(), "{name}.{key} missing: {result}");
        }
    }
}

#[test]
fn bank_keeps_the_total_on_postgres() {
    bank_keeps_the_total(&PgServer::start());
}

#[test]
fn bank_keeps_the_total_on_teller() {
    bank_keeps_the_total(&TellerServer::start());
}

fn bank_keeps_the_total(server: &dyn Server) {
    let url = server.url();
    workload(&format!("bank init --url {url} --accounts 100")).expect("init");
    let result = run_json(
        server,
        "bank",
        "bank run --concurrency 4 --duration 2 --sum-percent 10",
    );
    assert_result_shape(&result);
    assert!(ops(&result, "transfer") > 0, "{result}");
    assert!(ops(&result, "balance_sum") > 0, "{result}");
    assert!(result["errors"].get("invariant").is_none(), "{result}");
    assert_eq!(result["isolation"], "serializable", "{result}");
    assert_eq!(result["accounts"], 100, "{result}");
    workload(&format!("bank check --url {url}")).expect("the total is unchanged");

    // A lost update breaks the total: check must say so.
    sql(
        server,
        "UPDATE bank_accounts SET balance = balance + 1 WHERE id = 0",
    );
    assert!(workload(&format!("bank check --url {url}")).is_err());
}

#[test]
fn ycsb_core_workloads_run_on_postgres() {
    ycsb_core_workloads_run(&PgServer::start());
}

#[test]
fn ycsb_core_workloads_run_on_teller() {
    ycsb_core_workloads_run(&TellerServer::start());
}

fn ycsb_core_workloads_run(server: &dyn Server) {
    let url = server.url();
    workload(&format!("ycsb init --url {url} --records 1000")).expect("init");
    workload(&format!("ycsb check --url {url}")).expect("loaded rows check");
    let mut inserted = 0;
    for (w, secs) in [
        ("a", 0.6),
        ("b", 0.2),
        ("c", 0.2),
        ("d", 0.4),
        ("e", 0.4),
        ("f", 0.3),
    ] {
        let result = run_json(
            server,
            &format!("ycsb-{w}"),
            &format!("ycsb run --workload {w} --concurrency 4 --duration {secs}"),
        );
        assert_result_shape(&result);
        assert_eq!(result["errors"], serde_json::json!({}), "{w}: {result}");
        let distribution = if w == "d" { "latest" } else { "zipfian" };
        assert_eq!(result["distribution"], distribution, "{w}: {result}");
        let expected: &[&str] = match w {
            "a" | "b" => &["read", "update"],
            "c" => &["read"],
            "d" => &["read", "insert"],
            "e" => &["scan", "insert"],
            _ => &["read", "read_modify_write"],
        };
        for op in expected {
            assert!(ops(&result, op) > 0, "{w}: no {op}: {result}");
        }
        inserted += ops(&result, "insert");
    }
    assert!(inserted > 0);
    // Row count = loaded + inserted, all fields 100 bytes.
    workload(&format!("ycsb check --url {url}")).expect("ycsb check");

    // An operation budget stops the run; uniform distribution works.
    let result = run_json(
        server,
        "ycsb-budget",
        "ycsb run --workload a --distribution uniform --concurrency 2 --operations 200 --seed 7",
    );
    assert_eq!(result["ops"].as_u64(), Some(200), "{result}");

    sql(
        server,
        "DELETE FROM usertable WHERE ycsb_key IN (SELECT ycsb_key FROM usertable LIMIT 1)",
    );
    assert!(workload(&format!("ycsb check --url {url}")).is_err());
}

#[test]
fn tpcc_stays_consistent_on_postgres() {
    tpcc_stays_consistent(&PgServer::start());
}

#[test]
fn tpcc_stays_consistent_on_teller() {
    tpcc_stays_consistent(&TellerServer::start());
}

fn tpcc_stays_consistent(server: &dyn Server) {
    let url = server.url();
    workload(&format!(
        "tpcc init --url {url} --warehouses 2 --items 1000 --customers 30"
    ))
    .expect("init");
    workload(&format!("tpcc check --url {url}")).expect("consistent after load");
    let result = run_json(server, "tpcc", "tpcc run --concurrency 4 --duration 2");
    assert_result_shape(&result);
    for op in ["new_order", "payment"] {
        assert!(ops(&result, op) > 0, "no {op}: {result}");
    }
    assert!(result["tpmC"].as_f64().unwrap_or(0.0) > 0.0, "{result}");
    assert!(result["efficiency_pct"].is_f64(), "{result}");
    assert_eq!(result["isolation"], "serializable", "{result}");
    assert_eq!(result["think_time"], false, "{result}");
    workload(&format!("tpcc check --url {url}")).expect("consistent after run");

    // Condition 1 catches a warehouse YTD that drifted from its districts'.
    sql(
        server,
        "UPDATE warehouse SET w_ytd = w_ytd + 1 WHERE w_id = 1",
    );
    assert!(workload(&format!("tpcc check --url {url}")).is_err());
}

#[test]
fn run_without_init_fails_clearly_on_postgres() {
    run_without_init_fails_clearly(&PgServer::start());
}

#[test]
fn run_without_init_fails_clearly_on_teller() {
    run_without_init_fails_clearly(&TellerServer::start());
}

fn run_without_init_fails_clearly(server: &dyn Server) {
    let err = workload(&format!("bank run --url {} --duration 1", server.url()))
        .expect_err("no bank tables");
    assert!(err.to_string().contains("bank init"), "{err}");
}

/// PostgreSQL only: the sessions are killed with `pg_terminate_backend`.
#[test]
fn rate_limit_and_reconnection() {
    let pg = PgServer::start();
    let url = pg.url.clone();
    workload(&format!("bank init --url {url} --accounts 100")).expect("init");

    // --rate schedules operations: 2 s at 100 ops/s is about 200 operations.
    let result = run_json(
        &pg,
        "rate",
        "bank run --concurrency 2 --duration 2 --rate 100",
    );
    let ops = result["ops"].as_u64().unwrap_or(0);
    assert!(
        (150..=210).contains(&ops),
        "{ops} operations at 100 ops/s for 2 s"
    );

    // Killed sessions are counted (as reconnections, and as failures under
    // their SQLSTATE when an operation was in flight) and clients reconnect.
    // The run's sessions carry their own application_name, so that the killer
    // cannot mistake the earlier run's closing sessions for them. It waits
    // until the four clients are connected, then terminates the run's
    // sessions, again until at least four were hit.
    let killed_url = format!("{url}?application_name=perf_killed");
    let killer = std::thread::spawn({
        let pg_url = url.clone();
        move || {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            rt.block_on(async {
                let client = teller_perf::conn::connect(&pg_url).await.expect("connect");
                let run_sessions = "FROM pg_stat_activity WHERE application_name = 'perf_killed'";
                for _ in 0..400 {
                    let row = client
                        .query_one(&format!("SELECT count(*) {run_sessions}"), &[])
                        .await
                        .expect("count sessions");
                    if row.get::<_, i64>(0) >= 4 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let mut terminated = 0;
                for _ in 0..20 {
                    let row = client
                        .query_one(
                            &format!("SELECT count(pg_terminate_backend(pid)) {run_sessions}"),
                            &[],
                        )
                        .await
                        .expect("terminate sessions");
                    terminated += row.get::<_, i64>(0);
                    if terminated >= 4 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            });
        }
    });
    let path = pg.dir().join("killed.json");
    let args = format!(
        "bank run --concurrency 4 --duration 3 --url {killed_url} --quiet --json {}",
        path.display()
    );
    workload(&args).unwrap_or_else(|e| panic!("{args}: {e}"));
    killer.join().expect("killer thread");
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the JSON result"))
            .expect("the JSON result parses");
    // A session killed mid-operation fails it (57P01, or 08006 once the
    // connection is gone); one killed between operations fails none. Either
    // way its client reconnects, and nothing else goes wrong.
    assert!(
        result["events"]["reconnect"].as_u64().unwrap_or(0) >= 1,
        "no reconnection counted: {result}"
    );
    let errors = result["errors"].as_object().expect("errors");
    assert!(
        errors.keys().all(|k| k == "57P01" || k.starts_with("08")),
        "errors other than the killed sessions': {result}"
    );
    // At most one failed operation per killed session: the client reconnects
    // right after the first.
    let failed: u64 = errors.values().filter_map(Value::as_u64).sum();
    assert!(
        failed <= result["events"]["reconnect"].as_u64().unwrap_or(0),
        "{result}"
    );
    // Work went on after the reconnection.
    assert!(result["ops"].as_u64().unwrap_or(0) > 100, "{result}");
    workload(&format!("bank check --url {url}")).expect("total unchanged");
}
