//! The third-party drivers of `scripts/compare-postgres.sh` against a private
//! PostgreSQL, for a second each: the checked-in pgbench scripts run, the
//! installed pgbench and sysbench print what `teller_perf::compare` parses,
//! and the consistency checks the script runs hold. This keeps the harness
//! from rotting when a tool's output changes; the comparison itself is a
//! benchmark and is not run here.
//!
//! pgbench and sysbench must be installed (`scripts/install-deps.sh`); a
//! missing tool fails the test rather than skipping it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{PgServer, Server};
use serde_json::Value;
use teller_perf::compare::outcome::Outcome;
use teller_perf::compare::{pgbench, sysbench};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (scripts/install-deps.sh installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn query(pg: &PgServer, sql: &str) -> String {
    let out = run(Command::new("psql").args([pg.url.as_str(), "-XtAc", sql]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pgbench")
        .join(name)
        .display()
        .to_string()
}

/// Runs one checked-in pgbench script for a second and parses the result.
fn pgbench_run(pg: &PgServer, name: &str) -> Value {
    let prefix = pg.dir().join(format!("{name}-txlog"));
    let out = run(Command::new("pgbench").args([
        "-n",
        "-M",
        "prepared",
        "-f",
        &script(name),
        "-s",
        "1",
        "-c",
        "2",
        "-j",
        "2",
        "-T",
        "1",
        "-l",
        &format!("--log-prefix={}", prefix.display()),
        "--max-tries=32",
        "--failures-detailed",
        &pg.url,
    ]));
    let mut log = pgbench::Log::default();
    for entry in std::fs::read_dir(pg.dir()).expect("list logs").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&format!("{name}-txlog.")) {
            log.add(&std::fs::read_to_string(entry.path()).expect("read log"))
                .expect("pgbench log parses");
        }
    }
    pgbench::result(&text(&out), log).expect("pgbench output parses")
}

fn assert_measured(v: &Value) {
    let o = Outcome::from_json(v).expect("a result the table reads");
    assert!(o.throughput > 0.0, "{v}");
    assert!(o.p50_ms > 0.0 && o.p99_ms >= o.p50_ms, "{v}");
    assert!(v["ops"].as_u64().unwrap_or(0) > 0, "{v}");
    assert_eq!(v["errors"], serde_json::json!({}), "{v}");
}

#[test]
fn pgbench_scripts_run_and_parse() {
    let pg = PgServer::start();
    run(Command::new("pgbench").args(["-i", "-s", "1", "-q", &pg.url]));
    let select = pgbench_run(&pg, "select-only.sql");
    assert_measured(&select);
    let tpcb = pgbench_run(&pg, "tpcb-like.sql");
    assert_measured(&tpcb);
    // One log line per processed transaction.
    assert_eq!(tpcb["ops"], tpcb["processed"], "{tpcb}");
    // The invariant compare-postgres.sh checks after tpcb-like.
    let sums = query(
        &pg,
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || \
         (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || \
         (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || \
         (SELECT sum(delta) FROM pgbench_history)",
    );
    let sums: Vec<&str> = sums.split(' ').collect();
    assert_eq!(sums.len(), 4, "{sums:?}");
    assert!(sums.iter().all(|s| *s == sums[0]), "{sums:?}");
}

#[test]
fn sysbench_runs_and_parses() {
    let pg = PgServer::start();
    let port = pg.url.rsplit(':').next().and_then(|p| p.split('/').next());
    let args = [
        "--db-driver=pgsql".to_string(),
        "--pgsql-host=127.0.0.1".to_string(),
        format!("--pgsql-port={}", port.expect("port in URL")),
        "--pgsql-user=postgres".to_string(),
        "--pgsql-db=postgres".to_string(),
        "--tables=1".to_string(),
        "--table-size=1000".to_string(),
    ];
    run(Command::new("sysbench")
        .arg("oltp_point_select")
        .args(&args)
        .arg("prepare"));
    for test in ["oltp_point_select", "oltp_read_write"] {
        let out = run(Command::new("sysbench").arg(test).args(&args).args([
            "--threads=2",
            "--time=1",
            "--histogram=on",
            "run",
        ]));
        let v = sysbench::result(&text(&out)).expect("sysbench output parses");
        assert_measured(&v);
        assert_eq!(v["latency_samples"], v["ops"], "{test}: {v}");
    }
    // The check compare-postgres.sh runs: read-write keeps the row count.
    assert_eq!(query(&pg, "SELECT count(*) FROM sbtest1"), "1000");
}
