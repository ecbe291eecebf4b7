//! The `teller` binary over a data directory it wrote before: each shard
//! recovers its storage and Raft logs (after SIGKILL and after a graceful
//! stop) before it listens, and a damaged storage directory stops the node
//! with an error naming the shard directory and the corruption, not a
//! panic.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SHARDS: usize = 2;
const START_TIMEOUT: Duration = Duration::from_secs(60);

struct Node {
    child: Child,
    log: PathBuf,
    port: u16,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// Starts `teller` on `dir` with small WAL segments; the log goes to
/// `dir/<name>.log`.
fn start(dir: &Path, name: &str) -> Node {
    let port = free_port();
    let config = dir.join("teller.toml");
    let text = teller_node::config::DEFAULT_CONFIG.replace(
        "wal_segment_bytes = 16777216",
        "wal_segment_bytes = 1048576",
    );
    std::fs::write(&config, text).expect("config");
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_teller"))
        .args(["start", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--shards", &SHARDS.to_string()])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&config)
        .env("TELLER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawning teller");
    Node { child, log, port }
}

impl Node {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("teller exited early ({status}):\n{}", self.log());
            }
            let listening = self.log().matches("shard listening").count();
            if listening >= SHARDS && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("teller did not start:\n{}", self.log());
    }

    fn signal(mut self, signal: i32) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own, not yet reaped child with a valid signal.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("teller did not exit after signal {signal}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_exit(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("teller did not exit:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `shard storage recovered` lines of a log.
fn recoveries(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("shard storage recovered"))
        .collect()
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    line[at..].split_whitespace().next()
}

#[test]
fn teller_recovers_its_shards_after_sigkill_and_after_a_graceful_stop() {
    let dir = std::env::temp_dir().join(format!("teller-durable-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");

    let mut first = start(&dir, "first");
    first.wait_listening();
    let (status, log) = first.signal(libc::SIGKILL);
    assert!(!status.success());
    for line in recoveries(&log) {
        assert_eq!(
            field(line, "ranges"),
            Some("0"),
            "a fresh directory: {line}"
        );
    }
    for shard in 0..SHARDS {
        let shard_dir = dir.join("data").join(format!("shard-{shard}"));
        let names: Vec<String> = std::fs::read_dir(&shard_dir)
            .expect("shard directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n == "MANIFEST"), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("wal-")), "{names:?}");
    }

    // After SIGKILL: each shard finds its range's Raft log and replays it.
    let mut second = start(&dir, "second");
    second.wait_listening();
    let log = second.log();
    let lines = recoveries(&log);
    assert_eq!(lines.len(), SHARDS, "{log}");
    for line in &lines {
        assert_eq!(field(line, "ranges"), Some("1"), "{line}");
        let records: u64 = field(line, "raft_records")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(records > 0, "the range's log was in the WAL: {line}");
    }
    let (status, _) = second.signal(libc::SIGTERM);
    assert!(status.success(), "a graceful stop exits cleanly");

    // After a graceful stop (which flushes), it starts again just as well.
    let mut third = start(&dir, "third");
    third.wait_listening();
    assert_eq!(recoveries(&third.log()).len(), SHARDS);
    let (status, _) = third.signal(libc::SIGTERM);
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_storage_stops_the_node_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("teller-durable-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    let mut first = start(&dir, "first");
    first.wait_listening();
    let (status, _) = first.signal(libc::SIGTERM);
    assert!(status.success());
    // Garble shard 1's manifest (keep its length: a damaged block).
    let manifest = dir.join("data").join("shard-1").join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).expect("manifest");
    for b in bytes.iter_mut().take(64) {
        *b ^= 0x5a;
    }
    std::fs::write(&manifest, bytes).expect("write manifest");
    let (status, log) = start(&dir, "damaged").wait_exit();
    assert!(!status.success(), "teller must refuse damaged storage");
    assert!(
        log.contains("shard-1") && log.contains("corrupt"),
        "the error names the shard directory and the corruption:\n{log}"
    );
    assert!(!log.contains("panicked"), "no panic:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- SQL through tokio-postgres, SIGKILL mid-load ------------------------

const SQL_WRITERS: u64 = 6;
const SQL_ACKS_BEFORE_KILL: usize = 120;

async fn connect(port: u16) -> tokio_postgres::Client {
    let url = format!("host=127.0.0.1 port={port} user=teller dbname=teller");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connecting to teller");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// One transaction of two rows sharing `txn`; `Ok(false)` on a retryable
/// conflict, `Err` once the server is gone.
async fn insert_pair(client: &tokio_postgres::Client, txn: i64) -> Result<bool, String> {
    let sql = format!(
        "begin; insert into ledger (id, txn, v) values ({a}, {txn}, 'v{a}'); \
         insert into ledger (id, txn, v) values ({b}, {txn}, 'v{b}'); commit",
        a = 2 * txn,
        b = 2 * txn + 1
    );
    match client.batch_execute(&sql).await {
        Ok(()) => Ok(true),
        Err(e) => {
            let retry = e.code().is_some_and(|c| {
                *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            });
            let _ = client.batch_execute("rollback").await;
            if retry {
                Ok(false)
            } else {
                Err(e.to_string())
            }
        }
    }
}

/// Writers insert pairs until the server dies; returns the acknowledged
/// transaction numbers.
fn sql_load_and_kill(node: Node, round: i64) -> Vec<i64> {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let port = node.port;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..SQL_WRITERS as i64)
        .map(|w| {
            let acked = acked.clone();
            rt.spawn(async move {
                let client = connect(port).await;
                for n in 0.. {
                    let txn = round * 10_000_000 + w * 100_000 + n;
                    loop {
                        match insert_pair(&client, txn).await {
                            Ok(true) => break,
                            Ok(false) => continue,
                            Err(_) => return, // the server is gone
                        }
                    }
                    acked.lock().expect("acks").push(txn);
                }
            })
        })
        .collect();
    let started = Instant::now();
    let deadline = started + START_TIMEOUT;
    while acked.lock().expect("acks").len() < SQL_ACKS_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the SQL load made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "round {round}: {} two-row transactions acknowledged in {:?} by {SQL_WRITERS} connections",
        acked.lock().expect("acks").len(),
        started.elapsed()
    );
    let (status, log) = node.signal(libc::SIGKILL);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "teller must die by SIGKILL:\n{log}"
    );
    rt.block_on(async {
        for w in writers {
            let _ = w.await;
        }
    });
    let acked = acked.lock().expect("acks").clone();
    acked
}

/// Every row: txn -> the ids it holds, with values checked.
fn sql_rows(port: u16) -> std::collections::BTreeMap<i64, Vec<i64>> {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async {
        let client = connect(port).await;
        let rows = client
            .query("select id, txn, v from ledger order by id", &[])
            .await
            .expect("reading the ledger");
        let mut out: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for row in rows {
            let (id, txn, v): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
            assert_eq!(v, format!("v{id}"), "row {id} has a wrong value");
            out.entry(txn).or_default().push(id);
        }
        out
    })
}

#[test]
fn sql_writes_acknowledged_before_sigkill_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("teller-durable-sql-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    let mut node = start(&dir, "sql-0");
    node.wait_listening();
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(async {
            connect(node.port)
                .await
                .batch_execute("create table ledger (id int8 primary key, txn int8, v text)")
                .await
                .expect("create table");
        });
    let mut acked = Vec::new();
    for round in 0..2 {
        acked.extend(sql_load_and_kill(node, round));
        node = start(&dir, &format!("sql-{}", round + 1));
        node.wait_listening();
        let rows = sql_rows(node.port);
        for txn in &acked {
            assert_eq!(
                rows.get(txn).map(Vec::len),
                Some(2),
                "round {round}: acknowledged transaction {txn} lost or torn"
            );
        }
        for (txn, ids) in &rows {
            assert_eq!(
                ids,
                &vec![2 * txn, 2 * txn + 1],
                "round {round}: transaction {txn} is not atomic"
            );
        }
        eprintln!(
            "round {round}: {} acknowledged, {} recovered",
            acked.len(),
            rows.len()
        );
    }
    let (status, _) = node.signal(libc::SIGTERM);
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
