//! The transaction protocol's mechanisms one at a time: uncertainty
//! restarts, timestamp-cache pushes, lock timeout, bounded deadlock
//! detection, clean-up of records and intents, GC with AS OF SYSTEM TIME,
//! and a store restart.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use teller_kv::engine::Engine;
use teller_kv::env::Env;
use teller_kv::keys::{engine_span, Span as KeySpan, NS_DATA, NS_LOCK, NS_TXN};
use teller_kv::sim::{Backend, Sim, SimCluster};
use teller_kv::sync::Signal;
use teller_kv::{
    BatchOptions, KvClient, KvConfig, KvError, Request, Response, RetryReason, Timestamp,
    TxnOptions,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Two stores: `[, m)` on store 0, `[m, )` on store 1; store 1's clock runs
/// `skew` ahead.
fn cluster(seed: u64, skew: Duration, cfg: KvConfig, backend: Backend) -> SimCluster {
    let sim = Sim::new(seed, Duration::from_micros(1));
    SimCluster::with_backend(backend, sim, cfg, 2, &[b"m"], &[0, skew.as_nanos() as i64])
}

/// Per transaction: its group, how it ended, and how long its last request
/// took (simulated nanoseconds).
type Outcomes = Rc<RefCell<Vec<(u32, Result<Timestamp, KvError>, u64)>>>;

fn cfg() -> KvConfig {
    KvConfig {
        max_offset: Duration::from_millis(1),
        ..KvConfig::default()
    }
}

async fn write(client: &KvClient, pairs: &[(&str, &str)]) -> Result<Timestamp, KvError> {
    let mut txn = client.begin(TxnOptions::default());
    txn.batch(
        pairs
            .iter()
            .map(|(k, v)| Request::Put {
                key: b(k),
                value: b(v),
            })
            .collect(),
    )
    .await?;
    txn.commit().await
}

fn value(r: &Response) -> Option<Bytes> {
    match r {
        Response::Get(v) => v.clone(),
        other => panic!("not a get: {other:?}"),
    }
}

#[test]
fn a_value_written_just_before_a_read_under_skew_is_seen_through_uncertainty() {
    for backend in Backend::ALL {
        a_value_written_just_before_a_read_under_skew_is_seen_through_uncertainty_on(backend);
    }
}

fn a_value_written_just_before_a_read_under_skew_is_seen_through_uncertainty_on(backend: Backend) {
    let c = cluster(3, Duration::from_micros(500), cfg(), backend);
    let (writer, gw) = c.client(1);
    let written = c.sim.block_on(gw, Duration::from_secs(5), async move {
        write(&writer, &[("n", "v1")]).await
    });
    let written = written.expect("write");
    let (reader, gr) = c.client(0);
    let (seen, start, end) = c.sim.block_on(gr, Duration::from_secs(5), async move {
        let mut txn = reader.begin(TxnOptions::default());
        let start = txn.timestamp();
        let r = txn
            .batch(vec![Request::Get {
                key: b("n"),
                lock: None,
            }])
            .await
            .expect("read");
        let end = txn.timestamp();
        txn.commit().await.expect("commit");
        (value(&r[0]), start, end)
    });
    assert!(
        start < written,
        "the reader's clock must be behind the write for this test"
    );
    assert_eq!(
        seen,
        Some(b("v1")),
        "a write that finished before the read began was missed"
    );
    assert!(
        end >= written,
        "the read restarted at the value's timestamp"
    );
}

#[test]
fn an_uncertainty_restart_that_invalidates_earlier_reads_fails_with_reason_and_key() {
    for backend in Backend::ALL {
        an_uncertainty_restart_that_invalidates_earlier_reads_fails_with_reason_and_key_on(backend);
    }
}

fn an_uncertainty_restart_that_invalidates_earlier_reads_fails_with_reason_and_key_on(
    backend: Backend,
) {
    let c = cluster(4, Duration::from_micros(500), cfg(), backend);
    let (setup, g) = c.client(0);
    c.sim
        .block_on(g, Duration::from_secs(5), async move {
            write(&setup, &[("a", "0")]).await
        })
        .expect("setup");
    c.sim.advance(Duration::from_millis(20));
    let (reader, gr) = c.client(0);
    let (writer, gw) = c.client(1);
    let result = Rc::new(RefCell::new(None));
    let out = result.clone();
    let (read_a, written) = (Signal::new(), Signal::new());
    let (read_a_tx, written_rx) = (read_a.clone(), written.clone());
    c.sim.spawn(
        gr,
        Box::pin(async move {
            let mut txn = reader.begin(TxnOptions::default());
            txn.batch(vec![Request::Get {
                key: b("a"),
                lock: None,
            }])
            .await
            .expect("first read");
            read_a_tx.fire();
            // Let the writer (whose clock is ahead) commit a and n.
            written_rx.wait().await;
            let r = txn
                .batch(vec![Request::Get {
                    key: b("n"),
                    lock: None,
                }])
                .await;
            *out.borrow_mut() = Some(r.map(|r| value(&r[0])));
        }),
    );
    c.sim.spawn(
        gw,
        Box::pin(async move {
            read_a.wait().await;
            write(&writer, &[("a", "1"), ("n", "1")])
                .await
                .expect("writer");
            written.fire();
        }),
    );
    c.sim.run_for(Duration::from_secs(5));
    let got = result.borrow_mut().take().expect("reader finished");
    match got {
        Err(KvError::Retry {
            reason: RetryReason::Uncertainty,
            key,
        }) => assert_eq!(key, Some(b("a"))),
        other => panic!("{backend:?}: expected an uncertainty failure naming a, got {other:?}"),
    }
}

#[test]
fn a_write_below_a_read_is_pushed_above_it() {
    for backend in Backend::ALL {
        a_write_below_a_read_is_pushed_above_it_on(backend);
    }
}

fn a_write_below_a_read_is_pushed_above_it_on(backend: Backend) {
    let c = cluster(5, Duration::ZERO, cfg(), backend);
    let (early, g1) = c.client(0);
    let (late, g2) = c.client(0);
    let early_txn = Rc::new(RefCell::new(Some(early.begin(TxnOptions::default()))));
    c.sim.advance(Duration::from_millis(10));
    let read_ts = c.sim.block_on(g2, Duration::from_secs(5), async move {
        let mut txn = late.begin(TxnOptions::default());
        txn.batch(vec![Request::Get {
            key: b("k"),
            lock: None,
        }])
        .await
        .expect("read");
        let ts = txn.timestamp();
        txn.commit().await.expect("commit");
        ts
    });
    let t = early_txn.clone();
    let commit_ts = c.sim.block_on(g1, Duration::from_secs(5), async move {
        let mut txn = t.borrow_mut().take().expect("txn");
        let start = txn.timestamp();
        txn.batch(vec![Request::Put {
            key: b("k"),
            value: b("v"),
        }])
        .await
        .expect("write");
        assert!(start < read_ts);
        txn.commit()
            .await
            .expect("blind write commits after a refresh")
    });
    assert!(
        commit_ts > read_ts,
        "write at {commit_ts} not above the read at {read_ts}"
    );
}

#[test]
fn lock_timeout_and_bounded_deadlock_detection() {
    for backend in Backend::ALL {
        lock_timeout_and_bounded_deadlock_detection_on(backend);
    }
}

fn lock_timeout_and_bounded_deadlock_detection_on(backend: Backend) {
    let c = cluster(6, Duration::ZERO, cfg(), backend);
    let (c1, g1) = c.client(0);
    let (c2, g2) = c.client(0);
    let sim = c.sim.clone();
    // Lock timeout: t2 gives up on t1's lock after 200 ms.
    let (timed_out, waited) = c.sim.block_on(g1, Duration::from_secs(30), async move {
        let mut t1 = c1.begin(TxnOptions::default());
        t1.batch(vec![Request::Put {
            key: b("x"),
            value: b("1"),
        }])
        .await
        .expect("t1");
        let mut t2 = c2.begin(TxnOptions::default());
        let start = sim.now_nanos();
        let options = BatchOptions {
            lock_timeout: Some(Duration::from_millis(200)),
            ..BatchOptions::default()
        };
        let r = t2
            .batch_with(
                vec![Request::Put {
                    key: b("x"),
                    value: b("2"),
                }],
                options,
            )
            .await;
        let waited = Duration::from_nanos(sim.now_nanos() - start);
        t1.rollback().await.expect("rollback");
        (r, waited)
    });
    assert!(
        matches!(timed_out, Err(KvError::LockTimeout { .. })),
        "{timed_out:?}"
    );
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(400),
        "{waited:?}"
    );
    let _ = g2;

    // Deadlock: opposite-order locking, both second requests in flight at
    // once. One gets 40P01 well within the liveness interval; the other
    // commits.
    let (c3, g3) = c.client(0);
    let (c4, g4) = c.client(1);
    let outcomes: Outcomes = Rc::new(RefCell::new(Vec::new()));
    let barrier = Rc::new(RefCell::new(0u32));
    for (client, group, first, second) in [(c3, g3, "p", "q"), (c4, g4, "q", "p")] {
        let outcomes = outcomes.clone();
        let barrier = barrier.clone();
        let sim = c.sim.clone();
        c.sim.spawn(
            group,
            Box::pin(async move {
                let mut txn = client.begin(TxnOptions::default());
                txn.batch(vec![Request::Put {
                    key: b(first),
                    value: b(first),
                }])
                .await
                .expect("first lock");
                *barrier.borrow_mut() += 1;
                while *barrier.borrow() < 2 {
                    sim.env(0, 0).sleep(Duration::from_micros(10)).await;
                }
                let start = sim.now_nanos();
                let r = txn
                    .batch(vec![Request::Put {
                        key: b(second),
                        value: b(second),
                    }])
                    .await;
                let result = match r {
                    Ok(_) => txn.commit().await,
                    Err(e) => Err(e),
                };
                outcomes
                    .borrow_mut()
                    .push((group, result, sim.now_nanos() - start));
            }),
        );
    }
    c.sim
        .run_until(Duration::from_secs(30), || outcomes.borrow().len() == 2);
    let outcomes = outcomes.borrow();
    assert_eq!(outcomes.len(), 2, "both transactions finish");
    let victims: Vec<_> = outcomes
        .iter()
        .filter(|(_, r, _)| matches!(r, Err(KvError::Deadlock { .. })))
        .collect();
    let winners: Vec<_> = outcomes.iter().filter(|(_, r, _)| r.is_ok()).collect();
    assert_eq!((victims.len(), winners.len()), (1, 1), "{outcomes:?}");
    let detect = Duration::from_nanos(victims[0].2);
    assert!(
        detect < Duration::from_millis(100),
        "deadlock detected after {detect:?}"
    );
}

/// Versions (tombstones included) in namespace `ns`.
/// Live (non-tombstone) versions in namespace `ns`. The LSM backends turn a
/// removed version into a tombstone at its timestamp (dropped later by
/// compaction); the memory engine removes it: both count one live version
/// fewer.
fn versions(engine: &dyn Engine, ns: u8) -> usize {
    let (s, e) = engine_span(ns, &KeySpan::all());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = engine.scan_versions(&s, &e, usize::MAX);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r
            .expect("scan")
            .iter()
            .filter(|(_, v)| v.value.is_some())
            .count(),
        std::task::Poll::Pending => panic!("engine read pending"),
    }
}

fn count(engine: &dyn Engine, ns: u8) -> usize {
    let (s, e) = engine_span(ns, &KeySpan::all());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = engine.scan(&s, &e, Timestamp::MAX, false, usize::MAX);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r
            .expect("scan")
            .iter()
            .filter(|(_, v)| v.value.is_some())
            .count(),
        std::task::Poll::Pending => panic!("engine read pending"),
    }
}

#[test]
fn commits_leave_no_records_or_intents_behind() {
    for backend in Backend::ALL {
        commits_leave_no_records_or_intents_behind_on(backend);
    }
}

fn commits_leave_no_records_or_intents_behind_on(backend: Backend) {
    let c = cluster(8, Duration::ZERO, cfg(), backend);
    let (client, g) = c.client(0);
    c.sim
        .block_on(g, Duration::from_secs(5), async move {
            // One range: one-phase, the record never outlives the commit.
            write(&client, &[("a", "1"), ("b", "1")]).await?;
            // Two ranges: the record stays until the other range's intent is
            // resolved in the background.
            write(&client, &[("c", "1"), ("x", "1")]).await?;
            let mut txn = client.begin(TxnOptions::default());
            txn.batch(vec![
                Request::Put {
                    key: b("d"),
                    value: b("1"),
                },
                Request::Put {
                    key: b("y"),
                    value: b("1"),
                },
            ])
            .await?;
            txn.rollback().await
        })
        .expect("writes");
    c.sim.run_for(Duration::from_secs(1));
    for store in 0..2 {
        let engine = c.engine(store);
        assert_eq!(
            count(&*engine, NS_TXN),
            0,
            "store {store} keeps transaction records"
        );
        assert_eq!(
            count(&*engine, NS_LOCK),
            0,
            "store {store} keeps lock records"
        );
    }
}

#[test]
fn gc_removes_old_versions_and_as_of_system_time_reads_within_the_horizon() {
    for backend in Backend::ALL {
        gc_removes_old_versions_and_as_of_system_time_reads_within_the_horizon_on(backend);
    }
}

fn gc_removes_old_versions_and_as_of_system_time_reads_within_the_horizon_on(backend: Backend) {
    let cfg = KvConfig {
        gc_horizon: Duration::from_secs(10),
        ..cfg()
    };
    let c = cluster(9, Duration::ZERO, cfg, backend);
    let (client, g) = c.client(0);
    let cl = client.clone();
    let t1 = c
        .sim
        .block_on(g, Duration::from_secs(5), async move {
            write(&cl, &[("k", "v1")]).await
        })
        .expect("v1");
    c.sim.advance(Duration::from_secs(5));
    let cl = client.clone();
    let t2 = c
        .sim
        .block_on(g, Duration::from_secs(5), async move {
            write(&cl, &[("k", "v2")]).await
        })
        .expect("v2");
    let as_of = |ts: Timestamp| {
        let cl = client.clone();
        c.sim.block_on(g, Duration::from_secs(5), async move {
            let mut txn = cl.begin(TxnOptions {
                as_of: Some(ts),
                ..TxnOptions::default()
            });
            let r = txn
                .batch(vec![Request::Get {
                    key: b("k"),
                    lock: None,
                }])
                .await;
            let _ = txn.commit().await;
            r.map(|r| value(&r[0]))
        })
    };
    assert_eq!(as_of(t1).expect("historical read"), Some(b("v1")));
    assert_eq!(as_of(t2).expect("latest read"), Some(b("v2")));
    let before = versions(&*c.engine(0), NS_DATA);
    c.sim.advance(Duration::from_secs(20));
    let store = c.transport.store(0).expect("store 0");
    c.sim
        .block_on(0, Duration::from_secs(5), async move { store.gc().await })
        .expect("gc");
    assert_eq!(
        versions(&*c.engine(0), NS_DATA),
        before - 1,
        "GC removes exactly the shadowed version"
    );
    assert!(
        matches!(as_of(t1), Err(KvError::BelowGcThreshold { .. })),
        "read below the GC threshold"
    );
    let cl = client.clone();
    let latest = c.sim.block_on(g, Duration::from_secs(5), async move {
        let mut txn = cl.begin(TxnOptions::default());
        let r = txn
            .batch(vec![Request::Get {
                key: b("k"),
                lock: None,
            }])
            .await;
        txn.commit().await.expect("commit");
        r.map(|r| value(&r[0]))
    });
    assert_eq!(
        latest.expect("read"),
        Some(b("v2")),
        "GC kept the live version"
    );
}

#[test]
fn a_store_restart_keeps_data_and_pending_transactions_and_pushes_later_writes() {
    for backend in Backend::ALL {
        a_store_restart_keeps_data_and_pending_transactions_and_pushes_later_writes_on(backend);
    }
}

fn a_store_restart_keeps_data_and_pending_transactions_and_pushes_later_writes_on(
    backend: Backend,
) {
    let c = cluster(10, Duration::ZERO, cfg(), backend);
    let (client, g) = c.client(0);
    let cl = client.clone();
    let (mut txn, read_ts) = c.sim.block_on(g, Duration::from_secs(5), async move {
        let mut reader = cl.begin(TxnOptions::default());
        reader
            .batch(vec![Request::Get {
                key: b("r"),
                lock: None,
            }])
            .await
            .expect("read r");
        let read_ts = reader.timestamp();
        reader.commit().await.expect("commit reader");
        let mut txn = cl.begin(TxnOptions::default());
        txn.batch(vec![Request::Put {
            key: b("n"),
            value: b("pending"),
        }])
        .await
        .expect("write n");
        (txn, read_ts)
    });
    c.restart_store(1);
    let cl = client.clone();
    let (committed, seen) = c.sim.block_on(g, Duration::from_secs(5), async move {
        let committed = txn
            .batch(vec![Request::Put {
                key: b("r"),
                value: b("w"),
            }])
            .await;
        committed.expect("write r after restart");
        let ts = txn.commit().await.expect("commit after restart");
        let mut check = cl.begin(TxnOptions::default());
        let r = check
            .batch(vec![Request::Get {
                key: b("n"),
                lock: None,
            }])
            .await
            .expect("read");
        check.commit().await.expect("commit check");
        (ts, value(&r[0]))
    });
    assert_eq!(seen, Some(b("pending")));
    assert!(
        committed > read_ts,
        "a write after the restart went below a read served before it"
    );
}

#[test]
fn gc_cleans_up_after_a_gateway_that_died_holding_intents() {
    for backend in Backend::ALL {
        gc_cleans_up_after_a_gateway_that_died_holding_intents_on(backend);
    }
}

fn gc_cleans_up_after_a_gateway_that_died_holding_intents_on(backend: Backend) {
    let cfg = KvConfig {
        gc_horizon: Duration::from_secs(10),
        ..cfg()
    };
    let c = cluster(12, Duration::ZERO, cfg, backend);
    let (client, g) = c.client(0);
    let txn = c.sim.block_on(g, Duration::from_secs(5), async move {
        let mut txn = client.begin(TxnOptions::default());
        txn.batch(vec![
            Request::Put {
                key: b("a"),
                value: b("1"),
            },
            Request::Put {
                key: b("x"),
                value: b("1"),
            },
        ])
        .await
        .expect("write");
        txn
    });
    // The gateway dies: no rollback, no heartbeats.
    std::mem::forget(txn);
    c.sim.kill(g);
    let gc_all = |c: &SimCluster| {
        for id in 0..2 {
            let store = c.transport.store(id).expect("store");
            c.sim
                .block_on(id, Duration::from_secs(5), async move { store.gc().await })
                .expect("gc");
        }
    };
    gc_all(&c);
    assert_eq!(
        count(&*c.engine(0), NS_LOCK) + count(&*c.engine(1), NS_LOCK),
        2,
        "live intents are kept"
    );
    c.sim.advance(Duration::from_secs(6));
    gc_all(&c);
    assert_eq!(
        count(&*c.engine(0), NS_LOCK) + count(&*c.engine(1), NS_LOCK),
        0,
        "expired intents resolved"
    );
    c.sim.advance(Duration::from_secs(20));
    gc_all(&c);
    assert_eq!(
        count(&*c.engine(0), NS_TXN) + count(&*c.engine(1), NS_TXN),
        0,
        "old records deleted"
    );
}

#[test]
fn locking_readers_of_one_key_queue_in_arrival_order_without_retries() {
    for backend in Backend::ALL {
        locking_readers_queue_on(backend);
    }
}

/// Per transaction (in arrival order): the value it read, or how it failed.
type ReadOutcomes = Rc<RefCell<Vec<(u32, Result<u64, KvError>)>>>;

/// Eight transactions arrive one after another at a key the first holds,
/// each reading it with an exclusive lock and writing back its value + 1.
/// Each waits its turn, then finds the previous writer's newer version: it
/// keeps the lock it took while it moves its timestamp forward (nothing it
/// read changed), so the queue order holds — the i-th to arrive reads i —
/// and no one retries or fails.
fn locking_readers_queue_on(backend: Backend) {
    const CLIENTS: u32 = 8;
    let c = cluster(9, Duration::ZERO, cfg(), backend);
    let (c0, g0) = c.client(0);
    c.sim
        .block_on(g0, Duration::from_secs(10), async move {
            write(&c0, &[("x", "0")]).await
        })
        .expect("setup");
    let outcomes: ReadOutcomes = Rc::new(RefCell::new(Vec::new()));
    for i in 0..CLIENTS {
        let (client, group) = c.client(0);
        let outcomes = outcomes.clone();
        let sim = c.sim.clone();
        c.sim.spawn(
            group,
            Box::pin(async move {
                // The waiters begin first (their read timestamps are older
                // than every commit ahead of them), then arrive 2 ms apart
                // after the first, which begins last and holds the lock
                // 30 ms: all queue behind it in this order.
                if i == 0 {
                    sim.env(0, 0).sleep(Duration::from_millis(1)).await;
                }
                let mut txn = client.begin(TxnOptions::default());
                sim.env(0, 0)
                    .sleep(Duration::from_millis(2 * u64::from(i)))
                    .await;
                let result = async {
                    let read = txn
                        .batch(vec![Request::Get {
                            key: b("x"),
                            lock: Some(teller_kv::Strength::Exclusive),
                        }])
                        .await?;
                    let n: u64 = std::str::from_utf8(&value(&read[0]).expect("x exists"))
                        .expect("utf-8")
                        .parse()
                        .expect("a number");
                    if i == 0 {
                        sim.env(0, 0).sleep(Duration::from_millis(30)).await;
                    }
                    txn.batch(vec![Request::Put {
                        key: b("x"),
                        value: b(&(n + 1).to_string()),
                    }])
                    .await?;
                    txn.commit().await?;
                    Ok(n)
                }
                .await;
                outcomes.borrow_mut().push((i, result));
            }),
        );
    }
    c.sim.run_until(Duration::from_secs(30), || {
        outcomes.borrow().len() == CLIENTS as usize
    });
    let outcomes = outcomes.borrow();
    assert_eq!(
        outcomes.len(),
        CLIENTS as usize,
        "every transaction finishes"
    );
    // Each waiter finds its predecessor's newer version once, when its turn
    // comes, and keeps its lock then. (Dropping the lock sent it to the end
    // of the queue: every waiter then bounced at every hand-off, ~8x the
    // waits.)
    let stats = c
        .transport
        .store(1)
        .expect("store 1 (keys from m) up")
        .stats();
    assert_eq!(
        stats.locks_kept_behind_newer_versions,
        u64::from(CLIENTS) - 1,
        "{stats:?}"
    );
    assert!(
        stats.lock_waits <= 2 * u64::from(CLIENTS),
        "each waiter waits about once: {stats:?}"
    );
    for (i, result) in outcomes.iter() {
        assert_eq!(
            result.as_ref().ok(),
            Some(&u64::from(*i)),
            "transaction {i} (in arrival order) reads {i}: {outcomes:?}"
        );
    }
}

#[test]
fn a_reader_resolves_a_dead_gateways_intents_in_bulk() {
    for backend in Backend::ALL {
        dead_intents_resolved_in_bulk_on(backend);
    }
}

/// A gateway writes 3,000 intents in one range and dies. Once its
/// heartbeat expired, a scan meets the intents; the first meeting aborts the
/// transaction, and each meeting resolves its intents from there on, a
/// budget at a time (not one key per meeting), so the scan costs a few
/// evaluations, not thousands. (A committed transaction whose background
/// resolution died is resolved the same way.)
fn dead_intents_resolved_in_bulk_on(backend: Backend) {
    const KEYS: usize = 3000;
    let c = cluster(14, Duration::ZERO, cfg(), backend);
    let (writer, g) = c.client(0);
    let txn = c.sim.block_on(g, Duration::from_secs(30), async move {
        let mut txn = writer.begin(TxnOptions::default());
        for first in (0..KEYS).step_by(500) {
            txn.batch(
                (first..first + 500)
                    .map(|i| Request::Put {
                        key: b(&format!("k{i:05}")),
                        value: Bytes::from(vec![b'v'; 100]),
                    })
                    .collect(),
            )
            .await
            .expect("bulk write");
        }
        txn
    });
    // The gateway dies: no commit, no rollback, no heartbeats.
    std::mem::forget(txn);
    c.sim.kill(g);
    c.sim.advance(Duration::from_secs(6));
    let leftover = count(&*c.engine(0), NS_LOCK);
    assert_eq!(leftover, KEYS, "the dead transaction's intents");
    let before = c.transport.store(0).expect("store 0").stats();
    let (reader, g2) = c.client(0);
    let rows = c
        .sim
        .block_on(g2, Duration::from_secs(30), async move {
            let mut txn = reader.begin(TxnOptions::default());
            let mut rows = 0;
            let mut rest = Some(KeySpan::new(&b"k"[..], &b"l"[..]));
            while let Some(span) = rest {
                let r = txn
                    .batch(vec![Request::Scan(teller_kv::ScanRequest::new(span))])
                    .await?;
                let Response::Scan(page) = &r[0] else {
                    panic!("scan answered {:?}", r[0])
                };
                rows += page.rows.len();
                rest = page.resume.clone();
            }
            txn.commit().await?;
            Ok::<_, KvError>(rows)
        })
        .expect("scan");
    assert_eq!(rows, 0, "the aborted transaction's rows are not seen");
    let after = c.transport.store(0).expect("store 0").stats();
    let evaluations = after.evaluations - before.evaluations;
    assert!(
        evaluations < 50,
        "{leftover} leftover intents cost {evaluations} evaluations"
    );
    assert_eq!(count(&*c.engine(0), NS_LOCK), 0, "every intent resolved");
}
