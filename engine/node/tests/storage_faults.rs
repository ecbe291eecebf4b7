//! The shard's disk fails under a running `teller`: a full file system
//! (ENOSPC from a size-limited tmpfs, a real kernel error) and a device whose
//! writes fail with EIO (the test-only fault switch of the shard's disk,
//! `TELLER_TEST_DISK_FAULT_FILE`). In both cases the SQL client gets a clear
//! error with a disk SQLSTATE instead of a hang or a dropped connection, the
//! node stays up and serves reads, further writes fail fast, and after space
//! returns and a restart every acknowledged row is there and writes work
//! again.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a statement may take before the test calls it wedged.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of text per row while filling the disk.
const ROW_BYTES: usize = 16_000;
/// Rows the ENOSPC test may insert before the file system must be full.
const FILL_ROWS_MAX: usize = 20_000;
/// Size of the tmpfs the node starts on, and after space "returns".
const TMPFS_SMALL: &str = "size=16m";
const TMPFS_LARGE: &str = "size=256m";

struct Node {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// A fresh test directory under the system temp dir.
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teller-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    dir
}

/// Starts a one-shard `teller` on `data` with small WAL segments and
/// memtables (so that segments roll and tables are written within a few MiB);
/// `fault_file` arms the disk's fault switch.
fn start(dir: &Path, data: &Path, name: &str, fault_file: Option<&Path>) -> Node {
    let text = teller_node::config::DEFAULT_CONFIG
        .replace(
            "wal_segment_bytes = 16777216",
            "wal_segment_bytes = 1048576",
        )
        .replace("memtable_bytes = 67108864", "memtable_bytes = 262144");
    let config = dir.join("teller.toml");
    std::fs::write(&config, text).expect("config");
    let log = dir.join(format!("{name}.log"));
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_teller"));
    command
        .args(["start", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--shards", "1"])
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(&config)
        .env("TELLER_LOG", "info")
        .env_remove("TELLER_TEST_DISK_FAULT_FILE")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    if let Some(f) = fault_file {
        command.env("TELLER_TEST_DISK_FAULT_FILE", f);
    }
    let child = command.spawn().expect("spawning teller");
    let mut node = Node {
        child: Some(child),
        port,
        log,
    };
    node.wait_listening();
    node
}

impl Node {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("teller exited early ({status}):\n{}", self.log());
            }
            if self.log().contains("shard listening")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("teller did not start:\n{}", self.log());
    }

    fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("teller exited ({status}):\n{}", self.log());
        }
    }

    async fn connect(&self) -> Client {
        let url = format!(
            "host=127.0.0.1 port={} user=teller dbname=teller",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("connecting");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// SIGTERM, and the exit status (SIGKILL after 30 s).
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own, not yet reaped child with a valid signal.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("teller did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A size-limited tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        run(
            "mount",
            &["-t", "tmpfs", "-o", options, "tmpfs", path_str(at)],
        );
        Tmpfs {
            at: at.to_path_buf(),
        }
    }

    fn remount(&self, options: &str) {
        let opts = format!("remount,{options}");
        run("mount", &["-o", &opts, path_str(&self.at)]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs a system command the test needs (mounting needs root, which this
/// test environment has: a failure here is a broken environment, not a skip).
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STATEMENT_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {STATEMENT_TIMEOUT:?}: wedged"))
}

fn row_value(id: i64) -> String {
    format!("{id:08}-").repeat(ROW_BYTES / 9)
}

async fn insert(client: &Client, id: i64) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "insert into t (id, v) values ($1, $2)",
            &[&id, &row_value(id)],
        )
        .await
}

/// Every id in `acked` is in `t` with its value (point reads).
async fn check_rows(client: &Client, acked: &[i64]) {
    for &id in acked {
        let row = timed(
            "point read",
            client.query_opt("select v from t where id = $1", &[&id]),
        )
        .await
        .unwrap_or_else(|e| panic!("a point read of row {id} is served: {e}"));
        let value: String = row
            .unwrap_or_else(|| panic!("acknowledged row {id} is missing"))
            .get(0);
        assert_eq!(value, row_value(id), "row {id}");
    }
}

/// `count(*)` of `t` (a full scan), or the SQLSTATE and message it failed with.
async fn count_rows(client: &Client) -> Result<i64, (String, String)> {
    match timed("count", client.query_one("select count(*) from t", &[])).await {
        Ok(row) => Ok(row.get(0)),
        Err(e) => Err(code_and_message(&e)),
    }
}

/// After a restart: every acknowledged row, and at most the one insert that
/// failed besides (its outcome was unknown to the client).
async fn check_recovered(client: &Client, acked: &[i64]) {
    check_rows(client, acked).await;
    let count = count_rows(client)
        .await
        .unwrap_or_else(|e| panic!("count(*) after the restart: {e:?}"));
    let n = acked.len() as i64;
    assert!(
        (n..=n + 1).contains(&count),
        "{count} rows, {n} acknowledged"
    );
}

/// While writes are refused, a scan is served, or — when it meets the
/// unresolved write of the transaction the failure cut short, which only a
/// write could resolve — fails with the disk error, promptly.
async fn check_scan_while_failed(client: &Client, acked: &[i64]) {
    match count_rows(client).await {
        Ok(count) => assert!(count >= acked.len() as i64, "{count} rows"),
        Err((code, message)) => {
            assert!(code == "58030" || code == "53100", "{code}: {message}");
        }
    }
}

/// The SQLSTATE and message of a failed statement.
fn code_and_message(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error (connection lost?): {e}"));
    (db.code().code().to_string(), db.message().to_string())
}

async fn create_table(client: &Client) {
    timed(
        "create table",
        client.batch_execute("create table t (id bigint primary key, v text)"),
    )
    .await
    .expect("create table");
}

#[tokio::test]
async fn a_full_file_system_fails_writes_clearly_keeps_reads_and_loses_nothing() {
    let dir = test_dir("enospc");
    let data = dir.join("data");
    let fs = Tmpfs::mount(&data, TMPFS_SMALL);
    let mut node = start(&dir, &data, "full", None);
    let client = node.connect().await;
    create_table(&client).await;

    let mut acked = Vec::new();
    let mut failure = None;
    for id in 0..FILL_ROWS_MAX as i64 {
        match timed("insert", insert(&client, id)).await {
            Ok(n) => {
                assert_eq!(n, 1);
                acked.push(id);
            }
            Err(e) => {
                failure = Some(code_and_message(&e));
                break;
            }
        }
    }
    let (code, message) =
        failure.unwrap_or_else(|| panic!("{FILL_ROWS_MAX} rows fit a {TMPFS_SMALL} file system"));
    // 53100 disk_full once the KV layer carries ENOSPC as its own error; it
    // reports every disk error as 58030 io_error today.
    assert!(
        code == "53100" || code == "58030",
        "SQLSTATE {code}: {message}"
    );
    assert!(
        message.contains("no space left on device"),
        "the error names the cause: {message}"
    );
    assert!(
        acked.len() > 100,
        "only {} rows before the disk filled",
        acked.len()
    );

    // The node is up: the same and a new connection read everything acked,
    // and a further write fails fast with the same kind of error.
    node.assert_running();
    check_rows(&client, &acked).await;
    check_scan_while_failed(&client, &acked).await;
    let other = node.connect().await;
    check_rows(&other, &acked).await;
    let again = timed("insert after the failure", insert(&other, -1)).await;
    let (code2, _) = code_and_message(&again.expect_err("the disk is still full"));
    assert!(code2 == "53100" || code2 == "58030", "SQLSTATE {code2}");
    node.assert_running();

    // Space returns; a restart recovers every acknowledged row and takes
    // writes again.
    fs.remount(TMPFS_LARGE);
    node.stop();
    let node = start(&dir, &data, "after", None);
    let client = node.connect().await;
    check_recovered(&client, &acked).await;
    timed("insert after the restart", insert(&client, 1_000_000))
        .await
        .expect("writes work again");
    drop(client);
    drop(node);
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn eio_fails_writes_clearly_keeps_reads_and_loses_nothing() {
    let dir = test_dir("eio");
    let data = dir.join("data");
    let switch = dir.join("fault");
    let mut node = start(&dir, &data, "eio", Some(&switch));
    let client = node.connect().await;
    create_table(&client).await;
    let mut acked = Vec::new();
    for id in 0..200 {
        timed("insert", insert(&client, id))
            .await
            .expect("the disk is healthy");
        acked.push(id);
    }

    std::fs::write(&switch, "eio").expect("arming the fault");
    let e = timed("insert on a failing disk", insert(&client, 10_000))
        .await
        .expect_err("writes fail while the disk fails");
    let (code, message) = code_and_message(&e);
    assert_eq!(code, "58030", "io_error: {message}");
    assert!(message.contains("I/O error"), "{message}");

    node.assert_running();
    check_rows(&client, &acked).await;
    check_scan_while_failed(&client, &acked).await;
    let other = node.connect().await;
    check_rows(&other, &acked).await;
    let again = timed("insert after the failure", insert(&other, 10_001)).await;
    let (code2, message2) = code_and_message(&again.expect_err("writes stay refused"));
    assert_eq!(code2, "58030", "{message2}");
    node.assert_running();

    // The device is replaced (the fault ends); a restart recovers from what
    // reached the disk.
    std::fs::remove_file(&switch).expect("disarming the fault");
    node.stop();
    let node = start(&dir, &data, "after-eio", Some(&switch));
    let client = node.connect().await;
    check_recovered(&client, &acked).await;
    timed("insert after the restart", insert(&client, 20_000))
        .await
        .expect("writes work again");
    drop(client);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
