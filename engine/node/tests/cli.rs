//! The `teller` command line: help, version, configuration errors.

use std::process::Command;

fn teller(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_teller"))
        .args(args)
        .output()
        .expect("running teller")
}

#[test]
fn version_and_help_with_examples() {
    let output = teller(&["version"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("teller {}", env!("CARGO_PKG_VERSION"))
    );

    let help = String::from_utf8_lossy(&teller(&["--help"]).stdout).into_owned();
    assert!(
        help.contains("Examples:") && help.contains("teller start"),
        "{help}"
    );
    let help = String::from_utf8_lossy(&teller(&["start", "--help"]).stdout).into_owned();
    for flag in [
        "--data-dir",
        "--listen",
        "--shards",
        "--config",
        "Examples:",
    ] {
        assert!(help.contains(flag), "start --help lacks {flag}: {help}");
    }
}

#[test]
fn config_prints_the_embedded_default() {
    let output = teller(&["config"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("listen = \"127.0.0.1:5433\"")
            && text.contains("data_dir = \"./teller-data\"")
    );
}

#[test]
fn bad_configuration_is_a_clear_error_not_a_crash() {
    let dir = std::env::temp_dir().join(format!("teller-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("[server]\nlisten = 5\n", "invalid configuration"),
        ("not toml at all [", "invalid configuration"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let output = teller(&["start", "--config", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1));
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(expected), "{err}");
    }
    let output = teller(&[
        "start",
        "--listen",
        "not-an-address",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("server.listen"));
    let output = teller(&["start", "--config", "/nonexistent/teller.toml"]);
    assert_eq!(output.status.code(), Some(1));
    let output = teller(&["start", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_port_taken_by_another_program_fails_the_start_cleanly() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("teller-cli-port-{}", std::process::id()));
    let output = teller(&[
        "start",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--shards",
        "2",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("binding"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shard_failing_at_start_stops_the_node_instead_of_hanging() {
    // Shard 0's device probe cannot open its probe file (it is a directory):
    // the other shard must not wait for it forever.
    let dir = std::env::temp_dir().join(format!("teller-cli-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("shard-0").join("probe")).unwrap();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    drop(holder);
    let mut child = Command::new(env!("CARGO_BIN_EXE_teller"))
        .args([
            "start",
            "--shards",
            "2",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(&dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("teller hung after a shard failed to start");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("probing the data device"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `teller start --shards 1` on `port` with `data` as its data directory.
fn start_command(data: &std::path::Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_teller"));
    command
        .args([
            "start",
            "--shards",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(data);
    command
}

fn free_port() -> u16 {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    holder.local_addr().unwrap().port()
}

fn wait_listening(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs a second node that must be refused; returns its stderr.
fn refused_start(data: &std::path::Path, port: u16) -> String {
    let output = start_command(data, port).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_second_node_on_the_same_data_dir_or_port_is_refused() {
    let dir = std::env::temp_dir().join(format!("teller-cli-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let spawn = |data: &std::path::Path| {
        start_command(data, port)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = spawn(&dir.join("a"));
    wait_listening(port, "first node");
    // Same data directory, another port.
    let err = refused_start(&dir.join("a"), free_port());
    assert!(err.contains("in use by another teller process"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    // Another data directory, same port.
    let err = refused_start(&dir.join("b"), port);
    assert!(err.contains("is another server listening there"), "{err}");
    let _ = first.kill();
    let _ = first.wait();
    // Once the first node is gone (SIGKILL), its data directory can be used again.
    let mut again = spawn(&dir.join("a"));
    wait_listening(port, "restart after kill");
    let _ = again.kill();
    let _ = again.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
