//! Acknowledged writes survive SIGKILL of a real process.
//!
//! The parent test runs this test binary again as a child process that is a
//! node in all but the pgwire front door: two shards on glommio executors,
//! joined by the real shard mesh, each with its store on durable storage
//! (`KvShard::open`: the LSM on O_DIRECT files, every range a Raft group
//! whose log is the shard's WAL). The child's writers commit transactions
//! of two keys on different shards through the mesh KV path and print an
//! `ACK` line after each commit returns. The parent SIGKILLs the child in
//! the middle of the load, restarts it over the same directory in verify
//! mode (recovery replays the logs), and checks that every acknowledged
//! transaction is there with its values, and that every transaction is
//! atomic: both of its keys or neither. Twice, so the second load and kill
//! run over recovered storage.
//!
//! (`durable_restart.rs` makes the same check through tokio-postgres and
//! the `teller` binary.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};
use teller_kv::{KvClient, KvError, Request, Response, ScanRequest, Span, TxnOptions};
use teller_node::config::StorageConfig;
use teller_node::mesh::{Handler, Mesh, ShardId, MESH_QUEUE_CAPACITY};
use teller_node::range::{node_kv_config, KvShard, StorageSetup};
use teller_node::shard::{ShardRequest, ShardResponse};

const SHARDS: usize = 2;
const WRITERS_PER_SHARD: usize = 4;
/// Acknowledgements the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 150;
/// The child stops writing after this many transactions per writer (the
/// parent kills it well before).
const TXNS_PER_WRITER_MAX: usize = 100_000;
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
const ENV_DIR: &str = "TELLER_DURABLE_KILL_DIR";
const ENV_MODE: &str = "TELLER_DURABLE_KILL_MODE";
const ENV_TAG: &str = "TELLER_DURABLE_KILL_TAG";

// ----- the child ---------------------------------------------------------

struct KvOnly {
    kv: Rc<KvShard>,
}

impl Handler<ShardRequest, ShardResponse> for KvOnly {
    async fn handle(&self, _from: ShardId, request: ShardRequest) -> ShardResponse {
        match request {
            ShardRequest::Kv(batch) => ShardResponse::Kv(Box::new(self.kv.execute(*batch).await)),
            _ => ShardResponse::Done,
        }
    }
}

/// A key whose first byte puts it on shard `shard`'s range (ranges are cut
/// at first-byte boundaries `i * 256 / SHARDS`).
fn key_on(shard: usize, name: &str) -> Bytes {
    let first = (shard * 256 / SHARDS + 1) as u8;
    let mut k = vec![first];
    k.extend_from_slice(name.as_bytes());
    Bytes::from(k)
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // The parent reads lines; a line must be whole and flushed before the
    // acknowledged write can be counted.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn write_pair(client: &KvClient, a: &Bytes, b: &Bytes, value: &str) -> Result<(), KvError> {
    let mut txn = client.begin(TxnOptions::default());
    let reqs = vec![
        Request::Put {
            key: a.clone(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        },
        Request::Put {
            key: b.clone(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        },
    ];
    if let Err(e) = txn.batch(reqs).await {
        let _ = txn.rollback().await;
        return Err(e);
    }
    txn.commit().await.map(|_| ())
}

async fn writer(client: KvClient, shard: usize, w: usize, tag: String) {
    for n in 0..TXNS_PER_WRITER_MAX {
        let name = format!("{tag}/{shard}/{w}/{n:06}");
        // One key on this shard, one on the other: a cross-shard commit.
        let a = key_on(shard, &name);
        let b = key_on((shard + 1) % SHARDS, &name);
        let value = format!("v-{name}");
        loop {
            match write_pair(&client, &a, &b, &value).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() => continue,
                Err(e) => {
                    print_line(&format!("ERROR {name}: {e}"));
                    return;
                }
            }
        }
        print_line(&format!("ACK {name} {value}"));
    }
}

async fn dump(client: &KvClient) -> Result<Vec<(Bytes, Bytes)>, KvError> {
    let mut txn = client.begin(TxnOptions {
        read_only: true,
        ..TxnOptions::default()
    });
    let mut rows = Vec::new();
    let mut rest = Some(Span::all());
    while let Some(span) = rest {
        let r = txn
            .batch(vec![Request::Scan(ScanRequest::new(span))])
            .await?;
        let Response::Scan(page) = &r[0] else {
            return Err(KvError::Internal(format!("scan answered {:?}", r[0])));
        };
        rows.extend(
            page.rows
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone())),
        );
        rest = page.resume.clone();
    }
    txn.commit().await?;
    Ok(rows)
}

async fn child_shard(
    id: ShardId,
    dir: PathBuf,
    mode: String,
    tag: String,
    builder: MeshBuilder<
        teller_node::mesh::Envelope<ShardRequest, ShardResponse>,
        glommio::channels::channel_mesh::Full,
    >,
    open: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
) -> Result<(), String> {
    let kv = Rc::new(KvShard::new(id, SHARDS, node_kv_config()));
    let queue =
        glommio::executor().create_task_queue(Shares::Static(1000), Latency::NotImportant, "mesh");
    let mesh = Mesh::join(builder, id, Rc::new(KvOnly { kv: kv.clone() }), queue).await?;
    kv.set_mesh(mesh.clone());
    let shard_dir = dir.join(format!("shard-{id}"));
    std::fs::create_dir_all(&shard_dir).map_err(|e| e.to_string())?;
    let settings = StorageConfig {
        memtable_bytes: 128 * 1024,
        wal_segment_bytes: 1024 * 1024,
        block_cache_bytes: 1024 * 1024,
        raft_tick_ms: 10,
    };
    let current = glommio::executor().current_task_queue();
    kv.open(StorageSetup {
        dir: &shard_dir,
        settings: &settings,
        writes_queue: current,
        background_queue: current,
    })
    .await?;
    open.fetch_add(1, Ordering::SeqCst);
    while open.load(Ordering::SeqCst) < SHARDS {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    if mode == "load" {
        let tasks: Vec<_> = (0..WRITERS_PER_SHARD)
            .map(|w| glommio::spawn_local(writer(kv.client.clone(), id, w, tag.clone())))
            .collect();
        for t in tasks {
            t.await;
        }
    } else if id == 0 {
        let rows = dump(&kv.client).await.map_err(|e| e.to_string())?;
        for (k, v) in rows {
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            let value = String::from_utf8_lossy(&v).into_owned();
            print_line(&format!("ROW {} {name} {value}", k[0]));
        }
        print_line("VERIFY_DONE");
    }
    finished.fetch_add(1, Ordering::SeqCst);
    // Keep serving the other shard until it is done too.
    while finished.load(Ordering::SeqCst) < SHARDS {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    kv.close().await;
    mesh.close();
    Ok(())
}

/// The child process (run by the parent with the environment set).
#[test]
#[ignore = "the child process of durable_writes_survive_sigkill_and_restart"]
fn durable_kill_child() {
    let dir = PathBuf::from(std::env::var(ENV_DIR).expect("child needs its data directory"));
    let mode = std::env::var(ENV_MODE).expect("child needs its mode");
    let tag = std::env::var(ENV_TAG).unwrap_or_default();
    let builder = MeshBuilder::full(SHARDS, MESH_QUEUE_CAPACITY);
    let open = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..SHARDS)
        .map(|id| {
            let (builder, dir, mode, tag) =
                (builder.clone(), dir.clone(), mode.clone(), tag.clone());
            let (open, finished) = (open.clone(), finished.clone());
            LocalExecutorBuilder::new(Placement::Unbound)
                .name(&format!("kill-shard-{id}"))
                .io_memory(512 * 1024)
                .spawn(move || async move {
                    child_shard(id, dir, mode, tag, builder, open, finished).await
                })
                .expect("start shard")
        })
        .collect();
    for (id, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("shard {id}: {e}"),
            Err(e) => panic!("shard {id} panicked: {e:?}"),
        }
    }
}

// ----- the parent --------------------------------------------------------

fn child(dir: &Path, mode: &str, tag: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "durable_kill_child", "--nocapture"])
        .env(ENV_DIR, dir)
        .env(ENV_MODE, mode)
        .env(ENV_TAG, tag)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the child")
}

fn sigkill(pid: libc::pid_t) {
    // SAFETY: plain kill(2) on the pid of our own child process, which has
    // not been reaped yet (the caller waits for it afterwards).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Kills the child if it is still running after `CHILD_TIMEOUT` (a hung
/// child must fail the test, not hang it). Set the flag to stand it down.
fn watchdog(pid: libc::pid_t) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < CHILD_TIMEOUT {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !flag.load(Ordering::SeqCst) {
            sigkill(pid);
        }
    });
    done
}

/// Lines of the child's stdout with `prefix`, until EOF; calls `stop` once
/// `enough` lines arrived.
fn read_lines(
    child: &mut std::process::Child,
    prefix: &str,
    enough: usize,
    mut stop: impl FnMut(),
) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = Vec::new();
    let mut stopped = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child stdout");
        assert!(!line.starts_with("ERROR"), "the child failed: {line}");
        if let Some(rest) = line.strip_prefix(prefix) {
            lines.push(rest.to_owned());
        }
        if !stopped && lines.len() >= enough {
            stopped = true;
            stop();
        }
    }
    lines
}

/// Loads until `ACKS_BEFORE_KILL` acknowledgements, SIGKILLs the child, and
/// returns every acknowledged `(name, value)` (including lines still in the
/// pipe when it died: those were acknowledged too).
fn load_and_kill(dir: &Path, tag: &str) -> BTreeMap<String, String> {
    let mut c = child(dir, "load", tag);
    let pid = c.id() as libc::pid_t;
    let guard = watchdog(pid);
    let started = Instant::now();
    let acks = read_lines(&mut c, "ACK ", ACKS_BEFORE_KILL, || sigkill(pid));
    let elapsed = started.elapsed();
    let status = c.wait().expect("waiting for the child");
    guard.store(true, Ordering::SeqCst);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the child must die by SIGKILL mid-load (status {status})"
    );
    assert!(
        acks.len() >= ACKS_BEFORE_KILL,
        "only {} acknowledgements before the kill",
        acks.len()
    );
    eprintln!(
        "{tag}: {} transactions acknowledged in {elapsed:?} from the child's spawn \
         (recovery included), {WRITERS_PER_SHARD} writers per shard",
        acks.len()
    );
    acks.iter()
        .map(|l| {
            let (name, value) = l.split_once(' ').expect("ACK name value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Restarts over `dir` and returns every row: name -> (shards holding it, value).
fn verify(dir: &Path) -> BTreeMap<String, (BTreeSet<u8>, String)> {
    let mut c = child(dir, "verify", "");
    let guard = watchdog(c.id() as libc::pid_t);
    let rows = read_lines(&mut c, "ROW ", usize::MAX, || {});
    let status = c.wait().expect("waiting for the verifier");
    guard.store(true, Ordering::SeqCst);
    assert!(status.success(), "the verifier failed: {status}");
    let mut out: BTreeMap<String, (BTreeSet<u8>, String)> = BTreeMap::new();
    for row in rows {
        let mut parts = row.splitn(3, ' ');
        let (first, name, value) = (
            parts.next().expect("first byte"),
            parts.next().expect("name"),
            parts.next().expect("value"),
        );
        let entry = out.entry(name.to_owned()).or_default();
        entry.0.insert(first.parse().expect("first byte"));
        entry.1 = value.to_owned();
    }
    out
}

#[test]
fn durable_writes_survive_sigkill_and_restart() {
    let dir = std::env::temp_dir().join(format!("teller-durable-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data directory");
    let mut acked = BTreeMap::new();
    for round in 0..2 {
        acked.extend(load_and_kill(&dir, &format!("r{round}")));
        let rows = verify(&dir);
        for (name, value) in &acked {
            let row = rows.get(name);
            assert!(
                row.is_some_and(|(shards, v)| shards.len() == SHARDS && v == value),
                "round {round}: acknowledged transaction {name} lost or torn: {row:?}"
            );
        }
        for (name, (shards, value)) in &rows {
            assert_eq!(
                shards.len(),
                SHARDS,
                "round {round}: transaction {name} is half there (not atomic)"
            );
            assert_eq!(value, &format!("v-{name}"), "round {round}: {name}");
        }
        eprintln!(
            "round {round}: {} acknowledged, {} recovered",
            acked.len(),
            rows.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
