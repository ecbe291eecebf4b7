//! Private servers for the workload tests: a PostgreSQL ([`PgServer`]) and a
//! TellerDB node ([`teller::TellerServer`]), both behind [`Server`], so that
//! one scenario runs against either.
//!
//! [`PgServer`]: `initdb` into a temporary directory, `pg_ctl start` on a free
//! loopback port, stopped on drop.
//!
//! The binaries are looked up in `$TELLER_PG_BIN`, then `PATH`, then
//! `/usr/lib/postgresql/<version>/bin` (where the Debian package `postgresql`
//! puts them). A missing PostgreSQL fails the test: it is never skipped.
//! PostgreSQL refuses to run as root; as root the server runs as the
//! `postgres` user (created by the Debian package) through `runuser`.

// Shared by several test files, each of which uses only part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod teller;

/// A running server the workloads can be pointed at.
pub trait Server {
    /// `postgres://user@127.0.0.1:port/db`
    fn url(&self) -> &str;
    /// A private directory for result files, removed with the server.
    fn dir(&self) -> &Path;
}

pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    pub url: String,
}

fn find_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TELLER_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "TELLER_PG_BIN={} holds no initdb",
            dir.display()
        );
        return dir;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|d| d.join("initdb").is_file()) {
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|d| d.join("initdb").is_file());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb was not found (looked in $TELLER_PG_BIN, PATH and \
             /usr/lib/postgresql/*/bin): install the Debian package `postgresql` \
             (apt-get install postgresql) or set TELLER_PG_BIN to its bin directory"
        )
    })
}

fn output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).trim() == "0"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

impl PgServer {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    pub fn start() -> PgServer {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let bin = find_bin_dir();
        let run_as = is_root().then(|| "postgres".to_string());
        let dir = std::env::temp_dir().join(format!(
            "teller-perf-pg-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the server directory");
        if let Some(user) = &run_as {
            output(Command::new("chown").arg("-R").arg(user).arg(&dir));
        }
        let port = free_port();
        let server = PgServer {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            run_as,
        };
        let data = server.dir.join("data");
        output(server.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=100",
            server.dir.display()
        );
        output(
            server
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.join("log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
        );
        server
    }
}

impl Server for PgServer {
    fn url(&self) -> &str {
        &self.url
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `teller workload <args>` in-process.
pub fn workload(args: &str) -> Result<(), teller_perf::cli::CliError> {
    teller_perf::run(args.split_whitespace().map(String::from).collect())
}

/// Runs a `run` command with `--json` and returns the parsed result.
pub fn run_json(server: &dyn Server, name: &str, args: &str) -> serde_json::Value {
    let path = server.dir().join(format!("{name}.json"));
    let args = format!(
        "{args} --url {} --quiet --json {}",
        server.url(),
        path.display()
    );
    workload(&args).unwrap_or_else(|e| panic!("{args}: {e}"));
    let text = std::fs::read_to_string(&path).expect("the JSON result was written");
    serde_json::from_str(&text).expect("the JSON result parses")
}

/// Executes SQL on the server (to corrupt data on purpose).
pub fn sql(server: &dyn Server, sql: &str) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async {
        let client = teller_perf::conn::connect(server.url())
            .await
            .expect("connect");
        client.batch_execute(sql).await.expect("execute");
    });
}
