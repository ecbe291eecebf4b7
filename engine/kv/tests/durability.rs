//! Durability of the stores on the LSM backends, on a seeded simulated disk:
//! restarts that crash the disk (unsynced writes dropped, kept or torn)
//! recover every acknowledged write, by replaying the Raft logs on the
//! node's write path; the WAL is truncated as flushes make applied state
//! durable; and disk failures (ENOSPC, EIO) reach clients as `KvError::Io`
//! (SQLSTATE 58030) while the store stays up and keeps serving reads.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use teller_kv::env::Env;
use teller_kv::sim::{Backend, Sim, SimCluster};
use teller_kv::{KvClient, KvConfig, KvError, Request, Response, ScanRequest, Span, TxnOptions};
use teller_storage::disk::Fault;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// One store with two ranges (`[, m)` and `[m, )`).
fn cluster(seed: u64, backend: Backend) -> SimCluster {
    let cfg = KvConfig {
        max_offset: Duration::from_millis(1),
        ..KvConfig::default()
    };
    let sim = Sim::new(seed, Duration::from_micros(2));
    SimCluster::with_backend(backend, sim, cfg, 1, &[b"m"], &[])
}

async fn put(client: &KvClient, pairs: &[(String, String)]) -> Result<(), KvError> {
    let mut txn = client.begin(TxnOptions::default());
    let reqs = pairs
        .iter()
        .map(|(k, v)| Request::Put {
            key: Bytes::from(k.clone()),
            value: Bytes::from(v.clone()),
        })
        .collect();
    if let Err(e) = txn.batch(reqs).await {
        let _ = txn.rollback().await;
        return Err(e);
    }
    txn.commit().await.map(|_| ())
}

/// Every committed key and value, read by a fresh transaction.
async fn dump(client: &KvClient) -> Result<BTreeMap<Bytes, Bytes>, KvError> {
    let mut txn = client.begin(TxnOptions {
        read_only: true,
        ..TxnOptions::default()
    });
    let mut out = BTreeMap::new();
    let mut rest = Some(Span::all());
    while let Some(span) = rest {
        let r = txn
            .batch(vec![Request::Scan(ScanRequest::new(span))])
            .await?;
        let Response::Scan(page) = &r[0] else {
            panic!("scan answered {:?}", r[0])
        };
        out.extend(
            page.rows
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone())),
        );
        rest = page.resume.clone();
    }
    txn.commit().await?;
    Ok(out)
}

fn read_all(c: &SimCluster) -> BTreeMap<Bytes, Bytes> {
    let (client, g) = c.client(0);
    c.sim
        .block_on(
            g,
            Duration::from_secs(30),
            async move { dump(&client).await },
        )
        .expect("read everything")
}

/// Writes `rounds` transactions of 4 keys each (both ranges), returns what
/// was acknowledged.
fn write_rounds(c: &SimCluster, tag: &str, rounds: usize) -> BTreeMap<Bytes, Bytes> {
    let (client, g) = c.client(0);
    let tag = tag.to_owned();
    c.sim.block_on(g, Duration::from_secs(60), async move {
        let mut acked = BTreeMap::new();
        for i in 0..rounds {
            let pairs: Vec<(String, String)> = ["a", "f", "p", "x"]
                .iter()
                .map(|p| {
                    (
                        format!("{p}/{tag}/{i:04}"),
                        format!("{tag}-{i}-{}", "v".repeat(40)),
                    )
                })
                .collect();
            put(&client, &pairs).await.expect("write");
            for (k, v) in pairs {
                acked.insert(Bytes::from(k), Bytes::from(v));
            }
        }
        acked
    })
}

#[test]
fn raft_restarts_replay_the_log_and_keep_every_acknowledged_write() {
    for seed in 1..=3 {
        let c = cluster(seed, Backend::Raft);
        let mut acked = BTreeMap::new();
        for round in 0..4 {
            acked.extend(write_rounds(&c, &format!("r{round}"), 25));
            let before = c.raft(0).expect("raft").applied_entries();
            assert!(before > 0, "writes went through the Raft log");
            c.restart_store(0);
            let raft = c.raft(0).expect("raft");
            // The restarted host re-applied the committed entries the
            // tables did not hold yet: the log was replayed.
            let replayed = raft.applied_entries();
            assert!(
                replayed > 0,
                "seed {seed} round {round}: nothing replayed after a restart"
            );
            let got = read_all(&c);
            for (k, v) in &acked {
                assert_eq!(
                    got.get(k),
                    Some(v),
                    "seed {seed} round {round}: acknowledged write {k:?} lost"
                );
            }
            assert_eq!(got.len(), acked.len(), "seed {seed}: unexpected rows");
        }
    }
}

#[test]
fn raft_groups_commit_concurrent_writes_with_shared_syncs_and_truncate_the_wal() {
    let c = cluster(11, Backend::Raft);
    let raft = c.raft(0).expect("raft");
    let first_lsn_before = c.sim.block_on(0, Duration::from_secs(1), {
        let lsm = raft.lsm().clone();
        async move { lsm.wal_first_lsn().await }
    });
    let (entries0, syncs0) = (raft.applied_entries(), raft.syncs());
    // Eight concurrent writers, 40 transactions each, on both ranges.
    let done = std::rc::Rc::new(std::cell::Cell::new(0));
    for w in 0..8 {
        let (client, g) = c.client(0);
        let done = done.clone();
        c.sim.spawn(
            g,
            Box::pin(async move {
                for i in 0..40 {
                    let pairs = vec![
                        (format!("c/{w}/{i:03}"), "v".repeat(200)),
                        (format!("q/{w}/{i:03}"), "v".repeat(200)),
                    ];
                    put(&client, &pairs).await.expect("write");
                }
                done.set(done.get() + 1);
            }),
        );
    }
    assert!(c
        .sim
        .run_until(Duration::from_secs(120), || done.get() == 8));
    let entries = raft.applied_entries() - entries0;
    let syncs = raft.syncs() - syncs0;
    eprintln!("{entries} entries applied with {syncs} WAL syncs");
    assert!(
        syncs * 2 < entries,
        "group commit: {syncs} syncs for {entries} entries"
    );
    let lsm = raft.lsm().clone();
    assert!(lsm.metrics().flushes > 0, "the memtables were flushed");
    let first_lsn_after = c.sim.block_on(0, Duration::from_secs(1), async move {
        lsm.wal_first_lsn().await
    });
    assert!(
        first_lsn_after > first_lsn_before,
        "the WAL was truncated as applied state became durable ({first_lsn_before:?} -> {first_lsn_after:?})"
    );
    let got = read_all(&c);
    assert_eq!(got.len(), 8 * 40 * 2);
    c.restart_store(0);
    assert_eq!(
        read_all(&c),
        got,
        "the truncated log still recovers everything"
    );
}

/// A disk failure under a write: the client gets `KvError::Io` (58030)
/// naming the cause, the store stays up, reads keep working, and writes
/// resume once the store restarts.
fn disk_failure_is_an_io_error(backend: Backend, fault: Fault) {
    let c = cluster(21, backend);
    let acked = write_rounds(&c, "before", 5);
    // Let the asynchronous intent resolution of the last commits finish: a
    // read that meets an intent resolves it, which is a write.
    c.sim.run_for(Duration::from_secs(1));
    let disk = c.disk(0).expect("simulated disk");
    disk.fail_after(0, fault);
    let (client, g) = c.client(0);
    let result = c.sim.block_on(g, Duration::from_secs(30), async move {
        put(&client, &[("b/failing".into(), "x".into())]).await
    });
    let error = result.expect_err("a write on a failing disk must fail");
    assert!(
        matches!(error, KvError::Io(_)),
        "{backend:?} {fault:?}: expected an I/O error, got {error:?}"
    );
    assert_eq!(error.sqlstate(), "58030");
    let text = error.to_string();
    let cause = match fault {
        Fault::NoSpace => "space",
        Fault::Eio => "I/O",
    };
    assert!(
        text.contains(cause),
        "{backend:?} {fault:?}: the error should name the cause: {text}"
    );
    disk.clear_fault();
    // Still up: reads work, and writes are refused (not hung) until restart.
    let got = read_all(&c);
    for (k, v) in &acked {
        assert_eq!(got.get(k), Some(v));
    }
    let (client, g) = c.client(0);
    let again = c.sim.block_on(g, Duration::from_secs(30), async move {
        put(&client, &[("b/again".into(), "y".into())]).await
    });
    assert!(
        matches!(again, Err(KvError::Io(_))),
        "{backend:?}: writes stay refused until a restart: {again:?}"
    );
    c.restart_store(0);
    let more = write_rounds(&c, "after", 3);
    let got = read_all(&c);
    for (k, v) in acked.iter().chain(more.iter()) {
        assert_eq!(got.get(k), Some(v), "{backend:?}: {k:?} after the restart");
    }
    assert!(!got.contains_key(&b("b/failing")));
}

#[test]
fn disk_full_is_an_io_error_and_the_store_stays_up() {
    for backend in [Backend::Lsm, Backend::Raft] {
        disk_failure_is_an_io_error(backend, Fault::NoSpace);
    }
}

#[test]
fn eio_is_an_io_error_and_the_store_stays_up() {
    for backend in [Backend::Lsm, Backend::Raft] {
        disk_failure_is_an_io_error(backend, Fault::Eio);
    }
}

#[test]
fn an_idle_range_does_not_hold_wal_truncation_back() {
    let c = cluster(31, Backend::Raft);
    let raft = c.raft(0).expect("raft");
    let lsm = raft.lsm().clone();
    // Range `[m, )` gets its descriptor at creation, then nothing more.
    let (client, g) = c.client(0);
    let done = c.sim.block_on(g, Duration::from_secs(120), async move {
        for i in 0..300 {
            let pairs = vec![(format!("busy/{i:04}"), "v".repeat(300))];
            put(&client, &pairs).await.expect("write");
        }
        true
    });
    assert!(done);
    let first = c.sim.block_on(0, Duration::from_secs(1), async move {
        lsm.wal_first_lsn().await
    });
    // The idle range's records were written at the very start; the floor
    // moved far past them because they were re-appended.
    assert!(
        first.0 > 200,
        "the WAL still starts at {first:?}: an idle range holds it back"
    );
    let before = read_all(&c);
    c.restart_store(0);
    assert_eq!(read_all(&c), before);
    let (client, g) = c.client(0);
    c.sim
        .block_on(g, Duration::from_secs(10), async move {
            put(&client, &[("z/after".into(), "1".into())]).await
        })
        .expect("the idle range still takes writes after the restart");
}

/// Writers commit two-key transactions (one key per initial range) while
/// the store crashes again and again at arbitrary points — the disk keeping,
/// dropping or tearing what was not synced — with ranges small enough to
/// split under the load. Every acknowledged transaction must survive, and
/// every transaction must be atomic.
fn crashes_mid_load(backend: Backend, seed: u64) {
    let cfg = KvConfig {
        max_offset: Duration::from_millis(1),
        range_split_bytes: 4 * 1024,
        ..KvConfig::default()
    };
    let sim = Sim::new(seed, Duration::from_micros(5));
    let c = SimCluster::with_backend(backend, sim, cfg, 1, &[b"m"], &[]);
    let acked = std::rc::Rc::new(std::cell::RefCell::new(BTreeMap::new()));
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    const WRITERS: usize = 4;
    const TXNS_PER_WRITER_MAX: usize = 150;
    const CRASHES: usize = 5;
    const ACKS_PER_CRASH: usize = 80;
    for w in 0..WRITERS {
        let (client, g) = c.client(0);
        let (acked, stop) = (acked.clone(), stop.clone());
        let env = c.sim.env(g, 0);
        c.sim.spawn(
            g,
            Box::pin(async move {
                let mut n = 0;
                while !stop.get() && n < TXNS_PER_WRITER_MAX {
                    let name = format!("{w}/{n:05}");
                    n += 1;
                    let pairs = vec![
                        (format!("a/{name}"), format!("v{name}")),
                        (format!("q/{name}"), format!("v{name}")),
                    ];
                    // An error (the store crashed under it) leaves the
                    // transaction's fate unknown: it is simply not counted.
                    match put(&client, &pairs).await {
                        Ok(()) => {
                            acked.borrow_mut().insert(name.clone(), format!("v{name}"));
                        }
                        // Back off as a client would, rather than spin
                        // while the store restarts.
                        Err(_) => env.sleep(Duration::from_millis(1)).await,
                    }
                }
            }),
        );
    }
    let mut restarts = 0;
    for k in 1..=CRASHES {
        // Crash once the load is well under way again, a little after a
        // random number of acknowledgements.
        let target = k * ACKS_PER_CRASH + c.sim.rng_below(ACKS_PER_CRASH as u64 / 2) as usize;
        let progressed = c
            .sim
            .run_until(Duration::from_secs(60), || acked.borrow().len() >= target);
        assert!(progressed, "{backend:?} seed {seed}: the load stalled");
        c.restart_store(0);
        restarts += 1;
    }
    c.sim.advance(Duration::from_millis(20));
    stop.set(true);
    // Let the writers finish their last transaction, and abandoned ones
    // expire so that every intent resolves.
    c.sim.advance(Duration::from_secs(6));
    let got = read_all(&c);
    let acked = acked.borrow();
    assert!(
        acked.len() > 20,
        "{backend:?} seed {seed}: only {} transactions acknowledged",
        acked.len()
    );
    for (name, value) in acked.iter() {
        for prefix in ["a", "q"] {
            let key = Bytes::from(format!("{prefix}/{name}"));
            assert_eq!(
                got.get(&key).map(|v| v.as_ref()),
                Some(value.as_bytes()),
                "{backend:?} seed {seed}: acknowledged {key:?} lost after {restarts} crashes"
            );
        }
    }
    for (key, value) in &got {
        let name = std::str::from_utf8(&key[2..]).expect("utf8");
        let other = if key.starts_with(b"a/") { "q" } else { "a" };
        assert_eq!(
            got.get(&Bytes::from(format!("{other}/{name}"))),
            Some(value),
            "{backend:?} seed {seed}: transaction {name} is half there"
        );
    }
    let ranges = c.transport.ranges().len();
    eprintln!(
        "{backend:?} seed {seed}: {} acknowledged, {} rows, {ranges} ranges, {restarts} crashes",
        acked.len(),
        got.len() / 2
    );
}

/// `CRASH_SEEDS=first..last` sweeps more seeds on the Raft backend
/// (default 1..=3).
#[test]
fn crashes_mid_load_keep_every_acknowledged_transaction() {
    let seeds = std::env::var("CRASH_SEEDS")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some(a.parse::<u64>().ok()?..=b.parse::<u64>().ok()?)
        })
        .unwrap_or(1..=3);
    for seed in seeds {
        crashes_mid_load(Backend::Raft, seed);
    }
    crashes_mid_load(Backend::Lsm, 1);
}
