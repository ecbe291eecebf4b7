//! The server driven by `psql`, PostgreSQL's own interactive client.

mod common;

use std::process::Command;

use common::TestServer;

fn psql(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "teller",
            "-d",
            "teller",
        ])
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env_remove("PGPASSWORD")
        .output()
        .expect("psql is installed (scripts/install-deps.sh installs postgresql-client)")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn psql_select_one_prints_one() {
    let server = TestServer::start(2);
    let output = psql(&server, &["-c", "select 1"]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("?column?") && text.contains("        1") && text.contains("(1 row)"),
        "{text}"
    );
}

#[test]
fn psql_runs_a_script_with_a_transaction_and_settings() {
    let server = TestServer::start(2);
    let dir = server.dir.join("script.sql");
    std::fs::write(
        &dir,
        "begin;\nset local application_name = 'teller-test';\nselect current_setting('application_name') as app;\ncommit;\n\
         select 2 + 2 as four, 'it''s' as quoted, null is null as isnull;\n\\echo done\n",
    )
    .unwrap();
    let output = psql(&server, &["-At", "-f", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "BEGIN\nSET\nteller-test\nCOMMIT\n4|it's|t\ndone\n"
    );
}

#[test]
fn psql_reports_errors_with_sqlstate_and_exit_code() {
    let server = TestServer::start(1);
    let output = psql(
        &server,
        &["-c", "\\set VERBOSITY verbose", "-c", "select 1/0"],
    );
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("22012") && err.contains("division by zero"),
        "{err}"
    );
}

#[test]
fn psql_conninfo_and_show_connections() {
    let server = TestServer::start(2);
    let output = psql(&server, &["-At", "-c", "show teller.connections"]);
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "one row per shard: {lines:?}");
    let total: u64 = lines
        .iter()
        .map(|l| l.split('|').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 1, "only psql itself is connected: {lines:?}");
}
