//! A private TellerDB node for the workload tests: the workspace's own
//! `teller` binary started on a free loopback port with a temporary data
//! directory, killed and removed on drop.
//!
//! # Which binary
//!
//! `teller` is a binary of another package (`teller-node`), so
//! `env!("CARGO_BIN_EXE_teller")` is not available here and cargo does not
//! build it for `cargo test -p teller-perf`. The tests therefore look for it
//! next to themselves: a test executable lives in `<target>/<profile>/deps/`,
//! the binary in `<target>/<profile>/teller`. `$TELLER_BIN` overrides the
//! lookup. A missing binary fails the test with the command that builds it;
//! a test never builds it (that would hide a build of the whole node inside
//! a test run). `scripts/test.sh` runs `cargo test --workspace --all-targets`,
//! which builds every binary before any test runs; by hand, run
//! `cargo build -p teller-node --bin teller` first, after any change to the
//! node, or the tests run an older node.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Server;

/// How long a node may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Shards of the test node: two, so that cross-shard transactions run.
const SHARDS: usize = 2;
/// Lines of the node's log shown when a test fails.
const LOG_TAIL_LINES: usize = 40;

pub struct TellerServer {
    child: Child,
    dir: PathBuf,
    url: String,
}

/// The `teller` binary of the build these tests belong to.
pub fn teller_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TELLER_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "TELLER_BIN={} is not a file", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()));
    let bin = profile_dir.join("teller");
    assert!(
        bin.is_file(),
        "{} not found: build the node first with `cargo build -p teller-node --bin teller` \
         (add --release for a release test build; scripts/test.sh builds it), \
         or point TELLER_BIN at a teller binary",
        bin.display()
    );
    bin
}

impl TellerServer {
    pub fn start() -> TellerServer {
        TellerServer::start_with_storage(&[])
    }

    /// A node whose configuration is `teller config` (the embedded
    /// default) with the given `[storage]` settings replaced, e.g.
    /// `("range_split_bytes", "4096")` for many small ranges.
    pub fn start_with_storage(settings: &[(&str, &str)]) -> TellerServer {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "teller-perf-node-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the node directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a loopback port")
            .port();
        let log = std::fs::File::create(dir.join("teller.log")).expect("create the node log");
        let config = dir.join("teller.toml");
        std::fs::write(&config, storage_config(settings)).expect("write the node config");
        let child = Command::new(teller_bin())
            .args(["start", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--config")
            .arg(&config)
            .args(["--shards", &SHARDS.to_string()])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("TELLER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn teller");
        let mut server = TellerServer {
            child,
            dir,
            url: format!("postgres://teller@127.0.0.1:{port}/teller"),
        };
        server.wait_listening(port);
        server
    }

    /// Waits until every shard listens (each logs "shard listening") and
    /// the port accepts; panics with the node's log otherwise.
    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("teller exited at start ({status}):\n{}", self.log());
            }
            let listening = self.log().matches("shard listening").count();
            if listening >= SHARDS && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "teller did not listen within {START_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("teller.log")).unwrap_or_default()
    }
}

/// The embedded default configuration with `settings` of `[storage]`
/// replaced; a setting the default lacks is a test bug.
fn storage_config(settings: &[(&str, &str)]) -> String {
    let out = Command::new(teller_bin())
        .arg("config")
        .output()
        .expect("run `teller config`");
    assert!(out.status.success(), "`teller config` failed");
    let mut text = String::from_utf8(out.stdout).expect("the default config is UTF-8");
    for (name, value) in settings {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("the default config has no setting {name}"))
            .to_string();
        text = text.replace(&line, &format!("{name} = {value}"));
    }
    text
}

impl Server for TellerServer {
    fn url(&self) -> &str {
        &self.url
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TellerServer {
    fn drop(&mut self) {
        // Durability is not under test here: SIGKILL is the quickest stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            eprintln!(
                "--- end of the teller log ({}) ---\n{tail}",
                self.dir.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
