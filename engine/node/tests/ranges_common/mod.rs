//! Shared by the range tests: the node's range table rebuilt from its log,
//! and a `teller` process that can be killed and restarted on the same data
//! directory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one start may take to listen.
pub const START_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Starts tried before a test fails.
pub const START_ATTEMPTS: usize = 3;

/// A range as the log tells it: `[start, end)` (`None`: the end of the
/// keyspace) and its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
    pub owner: usize,
    pub generation: u64,
}

impl Range {
    pub fn overlaps(&self, start: &[u8], end: &[u8]) -> bool {
        self.start.as_slice() < end && self.end.as_deref().is_none_or(|e| start < e)
    }
}

/// The value of `name=` in a log line.
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    line[at..].split(' ').next()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn end_of(s: &str) -> Option<Vec<u8>> {
    (s != "max").then(|| unhex(s))
}

fn num<T: std::str::FromStr>(line: &str, name: &str) -> T {
    field(line, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// Every range of the node, by id, rebuilt from one process's log: the
/// ranges each shard owned after start-up, then every split and every
/// adoption of a moved range, in log order.
pub fn replay(log: &str) -> BTreeMap<u64, Range> {
    let mut ranges = BTreeMap::new();
    for line in log.lines() {
        if line.contains("range owned") {
            ranges.insert(
                num(line, "range"),
                Range {
                    start: unhex(field(line, "start").expect("start")),
                    end: end_of(field(line, "end").expect("end")),
                    owner: num(line, "shard"),
                    generation: num(line, "generation"),
                },
            );
        } else if line.contains("range split") {
            let owner = num(line, "store");
            let generation = num(line, "generation");
            let at = unhex(field(line, "split_key").expect("split_key"));
            ranges.insert(
                num(line, "left"),
                Range {
                    start: unhex(field(line, "left_start").expect("left_start")),
                    end: Some(at.clone()),
                    owner,
                    generation,
                },
            );
            ranges.insert(
                num(line, "right"),
                Range {
                    start: at,
                    end: end_of(field(line, "right_end").expect("right_end")),
                    owner,
                    generation,
                },
            );
        } else if line.contains("range adopted") {
            // The destination's line: written before any split of the new
            // range (the source's `range moved` comes later).
            ranges.remove(&num::<u64>(line, "source_range"));
            ranges.insert(
                num(line, "range"),
                Range {
                    start: unhex(field(line, "start").expect("start")),
                    end: end_of(field(line, "end").expect("end")),
                    owner: num(line, "shard"),
                    generation: num(line, "generation"),
                },
            );
        }
    }
    ranges
}

/// Asserts that `ranges` tile the keyspace: no hole, no overlap (one owner
/// for every key).
pub fn assert_tiles_keyspace(ranges: &BTreeMap<u64, Range>) {
    let mut sorted: Vec<&Range> = ranges.values().collect();
    sorted.sort_by(|a, b| a.start.cmp(&b.start));
    let mut next: Option<Vec<u8>> = Some(Vec::new());
    for r in &sorted {
        assert_eq!(
            next.as_deref(),
            Some(r.start.as_slice()),
            "ranges do not tile the keyspace: {sorted:?}"
        );
        next = r.end.clone();
    }
    assert_eq!(
        next, None,
        "the last range does not reach the end: {sorted:?}"
    );
}

/// The shards owning a range that overlaps `[start, end)`.
pub fn owners_of(ranges: &BTreeMap<u64, Range>, start: &[u8], end: &[u8]) -> Vec<usize> {
    let mut owners: Vec<usize> = ranges
        .values()
        .filter(|r| r.overlaps(start, end))
        .map(|r| r.owner)
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// The key span of table `id` (ids below 0xF8 encode as one byte).
pub fn table_span(id: u32) -> (Vec<u8>, Vec<u8>) {
    assert!(id < 0xF7, "table id {id} takes more than one key byte");
    (vec![id as u8], vec![id as u8 + 1])
}

/// The table id of `name`.
pub async fn table_id(client: &tokio_postgres::Client, name: &str) -> u32 {
    let row = client
        .query_one("SELECT oid FROM pg_class WHERE relname = $1", &[&name])
        .await
        .expect("pg_class");
    row.get::<_, u32>(0)
}

/// A `teller` process on a data directory that outlives it.
pub struct Node {
    pub child: Option<Child>,
    pub log: PathBuf,
    pub port: u16,
    pub shards: usize,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// The configuration file of the range tests: `split_bytes` splits, moves
/// every `rebalance_ms`, small WAL segments.
pub fn write_config(dir: &Path, split_bytes: u64, rebalance_ms: u64) -> PathBuf {
    write_config_with(dir, split_bytes, rebalance_ms, 2500)
}

/// [`write_config`], with ranges splitting by load past `load_per_sec`
/// requests a second.
pub fn write_config_with(
    dir: &Path,
    split_bytes: u64,
    rebalance_ms: u64,
    load_per_sec: u64,
) -> PathBuf {
    let path = dir.join("teller.toml");
    let text = teller_node::config::DEFAULT_CONFIG
        .replace(
            "wal_segment_bytes = 16777216",
            "wal_segment_bytes = 1048576",
        )
        .replace(
            "range_split_bytes = 67108864",
            &format!("range_split_bytes = {split_bytes}"),
        )
        .replace(
            "rebalance_interval_ms = 1000",
            &format!("rebalance_interval_ms = {rebalance_ms}"),
        )
        .replace(
            "range_split_requests_per_sec = 2500",
            &format!("range_split_requests_per_sec = {load_per_sec}"),
        );
    std::fs::write(&path, text).expect("config");
    path
}

impl Node {
    /// Starts `teller` on `dir` (config from [`write_config`]), its log in
    /// `dir/<name>.log`, with extra environment variables.
    ///
    /// A start that does not reach "listening" within [`START_ATTEMPT_TIMEOUT`]
    /// is killed and tried again on the same directory (up to
    /// [`START_ATTEMPTS`]): now and then a fresh shard's first storage I/O
    /// never completes under glommio on this VM (also on main; see the
    /// range docs), and a restart recovers.
    pub fn start(dir: &Path, name: &str, shards: usize, env: &[(&str, &str)]) -> Node {
        let mut failures = String::new();
        for attempt in 0..START_ATTEMPTS {
            let log = dir.join(format!("{name}-{attempt}.log"));
            let mut node = Node::spawn(dir, &log, shards, env);
            match node.wait_listening() {
                Ok(()) => return node,
                Err(e) => {
                    node.kill();
                    failures.push_str(&format!("attempt {attempt}: {e}\n{}\n", node.log()));
                }
            }
        }
        panic!("teller did not start:\n{failures}");
    }

    fn spawn(dir: &Path, log: &Path, shards: usize, env: &[(&str, &str)]) -> Node {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_teller"));
        command
            .args(["start", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--shards", &shards.to_string()])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(dir.join("teller.toml"))
            .env(
                "TELLER_LOG",
                std::env::var("TELLER_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"));
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawning teller");
        Node {
            child: Some(child),
            log: log.to_path_buf(),
            port,
            shards,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_ATTEMPT_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("teller exited early ({status})"));
            }
            let listening = self.log().matches("shard listening").count();
            if listening >= self.shards && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not listening after {START_ATTEMPT_TIMEOUT:?}"))
    }

    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=teller dbname=teller",
            self.port
        )
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connecting");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// Whether the process has exited (by itself: a fault point).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    /// SIGKILL, and wait for the process to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the process exits by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exited() {
                self.child.take();
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own, not yet reaped child with a valid signal.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh test directory (removed first if a previous run left it).
pub fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("teller-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    dir
}

/// Waits until `check` holds for the log's range table, up to `timeout`.
pub fn wait_for_placement(
    node: &Node,
    timeout: Duration,
    check: impl Fn(&BTreeMap<u64, Range>) -> bool,
) -> BTreeMap<u64, Range> {
    let deadline = Instant::now() + timeout;
    loop {
        let ranges = replay(&node.log());
        if check(&ranges) {
            return ranges;
        }
        if Instant::now() >= deadline {
            panic!(
                "the ranges never reached the expected placement: {ranges:?}\n{}",
                node.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn pad(i: i64) -> String {
    format!("{i:0>60}")
}

pub async fn load(client: &tokio_postgres::Client, table: &str, rows: i64, balance: i64) {
    const PER_STATEMENT: i64 = 100;
    for first in (0..rows).step_by(PER_STATEMENT as usize) {
        let values: Vec<String> = (first..(first + PER_STATEMENT).min(rows))
            .map(|i| format!("({i}, {balance}, '{}')", pad(i)))
            .collect();
        client
            .batch_execute(&format!(
                "insert into {table} (id, balance, pad) values {}",
                values.join(", ")
            ))
            .await
            .unwrap_or_else(|e| panic!("loading rows from {first}: {e}"));
    }
}

pub async fn total(client: &tokio_postgres::Client, table: &str) -> (i64, i64) {
    let row = client
        .query_one(
            &format!("select count(*), coalesce(sum(balance), 0)::bigint from {table}"),
            &[],
        )
        .await
        .expect("sum");
    (row.get(0), row.get(1))
}

/// One transfer between two accounts with its ledger row `entry`, retried
/// on 40001/40P01; returns the retries.
pub async fn transfer(
    client: &mut tokio_postgres::Client,
    entry: i64,
    from: i64,
    to: i64,
    amount: i64,
) -> u64 {
    let mut retries = 0;
    loop {
        match transfer_once(client, entry, from, to, amount).await {
            Ok(()) => return retries,
            Err(true) => retries += 1,
            Err(false) => panic!("transfer {from} -> {to} failed"),
        }
        assert!(retries < 500, "transfer {from} -> {to} retried 500 times");
    }
}

/// One transfer with its ledger row; `Err(true)` when it may be retried
/// (40001/40P01), `Err(false)` on any other error (logged).
pub async fn transfer_once(
    client: &mut tokio_postgres::Client,
    entry: i64,
    from: i64,
    to: i64,
    amount: i64,
) -> Result<(), bool> {
    let result = async {
        let txn = client.transaction().await?;
        txn.execute(
            "insert into ledger (id, src, dst, amount) values ($1, $2, $3, $4)",
            &[&entry, &from, &to, &amount],
        )
        .await?;
        txn.execute(
            "update accounts set balance = balance - $1 where id = $2",
            &[&amount, &from],
        )
        .await?;
        txn.execute(
            "update accounts set balance = balance + $1 where id = $2",
            &[&amount, &to],
        )
        .await?;
        txn.commit().await
    }
    .await;
    result.map_err(|e: tokio_postgres::Error| {
        let retryable = e
            .code()
            .is_some_and(|c| c.code() == "40001" || c.code() == "40P01");
        if !retryable {
            eprintln!("transfer {from} -> {to}: {e}");
        }
        retryable
    })
}

/// Checks that the balances are exactly `initial` plus the ledger's
/// transfers; returns the ledger's ids.
pub async fn check_ledger(
    client: &tokio_postgres::Client,
    accounts: i64,
    initial: i64,
) -> Vec<i64> {
    let ledger = client
        .query("select id, src, dst, amount from ledger", &[])
        .await
        .expect("ledger");
    let mut balances = vec![initial; accounts as usize];
    for row in &ledger {
        let (src, dst, amount): (i64, i64, i64) = (row.get(1), row.get(2), row.get(3));
        balances[src as usize] -= amount;
        balances[dst as usize] += amount;
    }
    let rows = client
        .query("select id, balance from accounts order by id", &[])
        .await
        .expect("balances");
    let actual: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(actual, balances, "balances against the ledger");
    ledger.iter().map(|r| r.get(0)).collect()
}
