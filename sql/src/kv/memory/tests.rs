use std::collections::BTreeMap;

use bytes::Bytes;
use futures_lite::future::block_on;

use super::*;
use crate::encoding::testing::Rng;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn begin(kv: &MemoryKv) -> MemoryTxn {
    kv.begin(TxnOptions::default()).await.expect("begin")
}

async fn get(txn: &mut MemoryTxn, key: &str) -> Option<Bytes> {
    let mut batch = Batch::new();
    batch.get(b(key));
    let response = txn.batch(batch).await.expect("get");
    response.get(0).expect("get").cloned()
}

async fn put(txn: &mut MemoryTxn, key: &str, value: &str) {
    let mut batch = Batch::new();
    batch.put(b(key), b(value));
    txn.batch(batch).await.expect("put");
}

async fn scan(txn: &mut MemoryTxn, scan: ScanRequest) -> ScanResponse {
    let mut batch = Batch::new();
    batch.scan(scan);
    let response = txn.batch(batch).await.expect("scan");
    response.scan(0).expect("scan").clone()
}

fn keys(rows: &[KeyValue]) -> Vec<&str> {
    rows.iter()
        .map(|kv| std::str::from_utf8(&kv.key).expect("utf8"))
        .collect()
}

async fn seed(kv: &MemoryKv, pairs: &[(&str, &str)]) {
    let mut txn = begin(kv).await;
    for (k, v) in pairs {
        put(&mut txn, k, v).await;
    }
    txn.commit().await.expect("commit");
}

#[test]
fn get_put_delete_and_own_writes() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("a", "1"), ("b", "2")]).await;
        let mut txn = begin(&kv).await;
        let mut batch = Batch::new();
        batch
            .get(b("a"))
            .put(b("a"), b("10"))
            .get(b("a"))
            .delete(b("b"))
            .get(b("b"))
            .get(b("zz"));
        let r = txn.batch(batch).await.expect("batch");
        assert_eq!(r.responses.len(), 6);
        assert_eq!(r.get(0).expect("get"), Some(&b("1")));
        assert_eq!(r.responses[1], Response::Written);
        assert_eq!(r.get(2).expect("get"), Some(&b("10")));
        assert_eq!(r.get(4).expect("get"), None);
        assert_eq!(r.get(5).expect("get"), None);
        assert!(r.scan(0).is_err());

        // Others do not see uncommitted writes.
        let mut other = begin(&kv).await;
        assert_eq!(get(&mut other, "a").await, Some(b("1")));
        txn.commit().await.expect("commit");
        let mut later = begin(&kv).await;
        assert_eq!(get(&mut later, "a").await, Some(b("10")));
        assert_eq!(get(&mut later, "b").await, None);
        // The older snapshot still sees what it saw.
        assert_eq!(get(&mut other, "a").await, Some(b("1")));
        assert_eq!(get(&mut other, "b").await, Some(b("2")));
    });
}

#[test]
fn scans_forward_reverse_and_limits() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(
            &kv,
            &[
                ("a", "1"),
                ("b", "22"),
                ("c", "333"),
                ("d", "4"),
                ("e", "5"),
            ],
        )
        .await;
        let mut txn = begin(&kv).await;
        // Own writes merge into scans: a new key, a changed one, a deleted one.
        let mut batch = Batch::new();
        batch
            .put(b("bb"), b("x"))
            .put(b("c"), b("3"))
            .delete(b("d"));
        txn.batch(batch).await.expect("writes");

        let span = Span::new(b("b"), b("e"));
        let all = scan(&mut txn, ScanRequest::new(span.clone())).await;
        assert_eq!(keys(&all.rows), ["b", "bb", "c"]);
        assert_eq!(all.rows[2].value, b("3"));
        assert_eq!(all.resume, None);

        let reverse = scan(
            &mut txn,
            ScanRequest {
                reverse: true,
                ..ScanRequest::new(Span::from_key(b("")))
            },
        )
        .await;
        assert_eq!(keys(&reverse.rows), ["e", "c", "bb", "b", "a"]);

        let limited = scan(
            &mut txn,
            ScanRequest {
                limit_rows: Some(2),
                ..ScanRequest::new(span.clone())
            },
        )
        .await;
        assert_eq!(keys(&limited.rows), ["b", "bb"]);
        assert_eq!(limited.resume, Some(Span::new(b("c"), b("e"))));

        let limited = scan(
            &mut txn,
            ScanRequest {
                limit_rows: Some(2),
                reverse: true,
                ..ScanRequest::new(span.clone())
            },
        )
        .await;
        assert_eq!(keys(&limited.rows), ["c", "bb"]);
        assert_eq!(limited.resume, Some(Span::new(b("b"), b("bb"))));

        // Exactly at the end: no resume span.
        let exact = scan(
            &mut txn,
            ScanRequest {
                limit_rows: Some(3),
                ..ScanRequest::new(span.clone())
            },
        )
        .await;
        assert_eq!(exact.resume, None);

        // A byte limit lets the crossing row through, and at least one row.
        let bytes = scan(
            &mut txn,
            ScanRequest {
                limit_bytes: Some(3),
                ..ScanRequest::new(span.clone())
            },
        )
        .await;
        assert_eq!(keys(&bytes.rows), ["b"]);
        let zero = scan(
            &mut txn,
            ScanRequest {
                limit_bytes: Some(0),
                ..ScanRequest::new(span.clone())
            },
        )
        .await;
        assert_eq!(keys(&zero.rows), ["b"]);
        let none = scan(
            &mut txn,
            ScanRequest {
                limit_rows: Some(0),
                ..ScanRequest::new(span.clone())
            },
        )
        .await;
        assert!(none.rows.is_empty());
        assert_eq!(none.resume, Some(span));
    });
}

#[test]
fn delete_range_covers_committed_and_own_writes() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("a", "1"), ("b", "2"), ("c", "3")]).await;
        let mut txn = begin(&kv).await;
        put(&mut txn, "bb", "x").await;
        let mut batch = Batch::new();
        batch.delete_range(Span::new(b("b"), b("c")));
        txn.batch(batch).await.expect("delete range");
        let rows = scan(&mut txn, ScanRequest::new(Span::from_key(b("")))).await;
        assert_eq!(keys(&rows.rows), ["a", "c"]);
        txn.commit().await.expect("commit");
        assert_eq!(keys(&kv.dump()), ["a", "c"]);
    });
}

#[test]
fn batch_writes_max_counts_every_key_a_delete_range_deletes() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("a", "1"), ("b", "2"), ("c", "3")]).await;
        kv.set_batch_writes_max(Some(2));
        let mut txn = begin(&kv).await;
        let mut batch = Batch::new();
        batch.delete_range(Span::from_key(b("")));
        assert!(matches!(txn.batch(batch).await, Err(KvError::Internal(_))));
        let mut batch = Batch::new();
        batch.delete_range(Span::new(b("a"), b("c")));
        txn.batch(batch).await.expect("two keys fit");
        txn.commit().await.expect("commit");
        assert_eq!(keys(&kv.dump()), ["c"]);
    });
}

#[test]
fn conditional_put_and_batch_atomicity() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("taken", "1")]).await;
        let mut txn = begin(&kv).await;
        let mut batch = Batch::new();
        batch
            .conditional_put(b("new"), b("v"), None)
            .conditional_put(b("taken"), b("2"), Some(b("1")));
        txn.batch(batch).await.expect("conditions hold");

        let mut batch = Batch::new();
        batch
            .put(b("side"), b("effect"))
            .conditional_put(b("new"), b("again"), None);
        let e = txn.batch(batch).await.expect_err("duplicate");
        assert_eq!(
            e,
            KvError::ConditionFailed {
                index: 1,
                key: b("new"),
                actual: Some(b("v")),
            }
        );
        assert_eq!(e.to_pg_error().code.code(), "23505");
        assert!(!e.ends_transaction());
        // The failed batch left nothing behind; the transaction goes on.
        assert_eq!(get(&mut txn, "side").await, None);
        assert_eq!(get(&mut txn, "taken").await, Some(b("2")));
        txn.commit().await.expect("commit");
        assert_eq!(keys(&kv.dump()), ["new", "taken"]);
    });
}

#[test]
fn first_committer_wins() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("k", "0")]).await;
        let mut t1 = begin(&kv).await;
        let mut t2 = begin(&kv).await;
        put(&mut t1, "k", "1").await;
        put(&mut t2, "k", "2").await;
        t1.commit().await.expect("first commits");
        let e = t2.commit().await.expect_err("second conflicts");
        assert_eq!(
            e,
            KvError::Retry {
                reason: RetryReason::WriteConflict,
                key: Some(b("k")),
            }
        );
        assert_eq!(e.to_pg_error().code.code(), "40001");

        // Writing a key already overwritten since the snapshot fails at once.
        let mut t3 = begin(&kv).await;
        let mut t4 = begin(&kv).await;
        put(&mut t3, "k", "3").await;
        t3.commit().await.expect("commit");
        let mut batch = Batch::new();
        batch.put(b("k"), b("4"));
        let e = t4.batch(batch).await.expect_err("conflict");
        assert!(e.is_retryable() && e.ends_transaction());

        // Disjoint keys do not conflict.
        let mut t5 = begin(&kv).await;
        let mut t6 = begin(&kv).await;
        put(&mut t5, "x", "5").await;
        put(&mut t6, "y", "6").await;
        t5.commit().await.expect("commit");
        t6.commit().await.expect("commit");
        assert_eq!(keys(&kv.dump()), ["k", "x", "y"]);
    });
}

#[test]
fn read_committed_sees_new_commits_per_batch() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("k", "0")]).await;
        let options = TxnOptions {
            isolation: Isolation::ReadCommitted,
            read_only: false,
        };
        let mut rc = kv.begin(options).await.expect("begin");
        let mut si = kv
            .begin(TxnOptions {
                isolation: Isolation::Snapshot,
                read_only: false,
            })
            .await
            .expect("begin");
        assert_eq!(rc.isolation(), Isolation::ReadCommitted);
        put(&mut rc, "mine", "1").await;
        seed(&kv, &[("k", "1")]).await;
        assert_eq!(get(&mut rc, "k").await, Some(b("1")));
        assert_eq!(get(&mut si, "k").await, Some(b("0")));
        // A key written before a concurrent commit still conflicts.
        seed(&kv, &[("mine", "theirs")]).await;
        let e = rc.commit().await.expect_err("lost update prevented");
        assert!(e.is_retryable());
    });
}

#[test]
fn rollback_and_drop_discard_writes() {
    block_on(async {
        let kv = MemoryKv::new();
        let mut t = begin(&kv).await;
        put(&mut t, "a", "1").await;
        t.rollback().await.expect("rollback");
        let mut t = begin(&kv).await;
        put(&mut t, "b", "1").await;
        drop(t);
        assert!(kv.dump().is_empty());
        assert!(kv.store.borrow().open.is_empty());
    });
}

#[test]
fn read_only_refuses_writes() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("a", "1")]).await;
        let mut t = kv
            .begin(TxnOptions {
                read_only: true,
                ..TxnOptions::default()
            })
            .await
            .expect("begin");
        assert_eq!(get(&mut t, "a").await, Some(b("1")));
        let mut batch = Batch::new();
        batch.delete(b("a"));
        let e = t.batch(batch).await.expect_err("read only");
        assert_eq!(e, KvError::ReadOnly);
        assert_eq!(e.to_pg_error().code.code(), "25006");
        t.commit().await.expect("commit");
        assert_eq!(keys(&kv.dump()), ["a"]);
    });
}

#[test]
fn injected_faults() {
    block_on(async {
        let kv = MemoryKv::new();
        let mut t = begin(&kv).await;
        kv.fail_next(KvError::Deadlock { key: None });
        kv.fail_next(KvError::LockTimeout { key: b("k") });
        let mut batch = Batch::new();
        batch.get(b("k"));
        let e = t.batch(batch.clone()).await.expect_err("deadlock");
        assert_eq!(e.to_pg_error().code.code(), "40P01");
        let e = t.batch(batch.clone()).await.expect_err("lock timeout");
        assert_eq!(e.to_pg_error().code.code(), "55P03");
        t.batch(batch).await.expect("faults used up");
        kv.fail_next(KvError::Io("EIO".into()));
        let mut batch = Batch::new();
        batch.put(b("k"), b("v"));
        let e = t.batch(batch).await.expect_err("io");
        assert_eq!(e.to_pg_error().code.code(), "58030");
        assert_eq!(get(&mut t, "k").await, None);
    });
}

#[test]
fn commit_fault_rolls_back() {
    block_on(async {
        let kv = MemoryKv::new();
        let mut t = begin(&kv).await;
        put(&mut t, "k", "v").await;
        kv.fail_next(KvError::Io("EIO".into()));
        let e = t.commit().await.expect_err("io");
        assert_eq!(e.to_pg_error().code.code(), "58030");
        assert!(kv.dump().is_empty());
        assert!(kv.store.borrow().open.is_empty());
    });
}

#[test]
fn old_versions_are_pruned() {
    block_on(async {
        let kv = MemoryKv::new();
        for i in 0..100 {
            seed(&kv, &[("k", &i.to_string())]).await;
        }
        assert_eq!(kv.versions(), 1);
        // An open snapshot keeps what it can see.
        let mut reader = begin(&kv).await;
        for i in 0..10 {
            seed(&kv, &[("k", &format!("new{i}"))]).await;
        }
        assert_eq!(get(&mut reader, "k").await, Some(b("99")));
        assert_eq!(kv.versions(), 11);
        drop(reader);
        seed(&kv, &[("k", "last")]).await;
        assert_eq!(kv.versions(), 1);
        let mut t = begin(&kv).await;
        let mut batch = Batch::new();
        batch.delete(b("k"));
        t.batch(batch).await.expect("delete");
        t.commit().await.expect("commit");
        assert_eq!(kv.versions(), 0);
    });
}

/// Random transactions against a `BTreeMap` model; scans are paged through
/// random limits and an engine cap, both directions.
#[test]
fn property_matches_model() {
    block_on(async {
        let mut rng = Rng::new(2024);
        let kv = MemoryKv::new();
        let mut model: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        let key =
            |rng: &mut Rng| Bytes::from(vec![b'a' + rng.below(6) as u8; 1 + rng.below(2) as usize]);
        for round in 0..400 {
            kv.set_scan_rows_max(if rng.chance(2) {
                Some(1 + rng.below(3))
            } else {
                None
            });
            let mut txn = begin(&kv).await;
            let mut local = model.clone();
            for _ in 0..rng.below(6) {
                let mut batch = Batch::new();
                let k = key(&mut rng);
                match rng.below(4) {
                    0 => {
                        let v = Bytes::from(round.to_string());
                        batch.put(k.clone(), v.clone());
                        local.insert(k, v);
                    }
                    1 => {
                        batch.delete(k.clone());
                        local.remove(&k);
                    }
                    2 => {
                        let (a, b) = (key(&mut rng), key(&mut rng));
                        let (a, b) = if a <= b { (a, b) } else { (b, a) };
                        if a == b {
                            continue;
                        }
                        batch.delete_range(Span::new(a.clone(), b.clone()));
                        local.retain(|k, _| !(a <= *k && *k < b));
                    }
                    _ => {
                        batch.get(k.clone());
                        let r = txn.batch(batch).await.expect("get");
                        assert_eq!(r.get(0).expect("get"), local.get(&k));
                        continue;
                    }
                }
                txn.batch(batch).await.expect("write");
            }
            // Page through everything.
            let reverse = rng.chance(2);
            let mut span = Some(Span::from_key(Bytes::new()));
            let mut seen = Vec::new();
            while let Some(s) = span {
                let r = scan(
                    &mut txn,
                    ScanRequest {
                        span: s,
                        lock: None,
                        limit_rows: rng.chance(2).then(|| rng.below(4)),
                        limit_bytes: rng.chance(3).then(|| rng.below(8)),
                        reverse,
                    },
                )
                .await;
                seen.extend(r.rows.into_iter().map(|kv| (kv.key, kv.value)));
                span = r.resume;
            }
            let mut want: Vec<(Bytes, Bytes)> = local.clone().into_iter().collect();
            if reverse {
                want.reverse();
            }
            assert_eq!(seen, want, "round {round}");
            if rng.chance(3) {
                txn.rollback().await.expect("rollback");
            } else {
                txn.commit().await.expect("commit");
                model = local;
            }
            let dump: Vec<(Bytes, Bytes)> =
                kv.dump().into_iter().map(|kv| (kv.key, kv.value)).collect();
            assert_eq!(dump, model.clone().into_iter().collect::<Vec<_>>());
        }
        assert_eq!(kv.versions(), model.len());
    });
}

fn locking(span: Span, strength: LockStrength, wait: LockWait) -> ScanRequest {
    ScanRequest {
        lock: Some(RowLock { strength, wait }),
        ..ScanRequest::new(span)
    }
}

async fn try_scan(txn: &mut MemoryTxn, request: ScanRequest) -> Result<Vec<String>, KvError> {
    let mut batch = Batch::new();
    batch.scan(request);
    let response = txn.batch(batch).await?;
    Ok(keys(&response.scan(0)?.rows)
        .into_iter()
        .map(str::to_string)
        .collect())
}

#[test]
fn locking_reads_exclude_writers_and_other_lockers() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("a", "1"), ("b", "2"), ("c", "3")]).await;
        let all = || Span::from_key(b(""));
        let mut t1 = begin(&kv).await;
        let mut t2 = begin(&kv).await;
        let locked = try_scan(
            &mut t1,
            locking(Span::point(b"a"), LockStrength::Exclusive, LockWait::Block),
        )
        .await
        .unwrap();
        assert_eq!(locked, ["a"]);
        // NOWAIT fails, SKIP LOCKED leaves the row out, a plain read sees it.
        let e = try_scan(
            &mut t2,
            locking(all(), LockStrength::Exclusive, LockWait::NoWait),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, KvError::LockTimeout { .. }), "{e:?}");
        assert_eq!(
            try_scan(
                &mut t2,
                locking(all(), LockStrength::Share, LockWait::SkipLocked)
            )
            .await
            .unwrap(),
            ["b", "c"]
        );
        assert_eq!(scan(&mut t2, ScanRequest::new(all())).await.rows.len(), 3);
        // Writing a row another transaction locked fails (it would wait).
        let mut batch = Batch::new();
        batch.put(b("a"), b("x"));
        let e = t2.batch(batch).await.unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        // Share locks coexist; they block writers and exclusive lockers.
        let mut t3 = begin(&kv).await;
        assert_eq!(
            try_scan(
                &mut t3,
                locking(Span::point(b"b"), LockStrength::Share, LockWait::NoWait)
            )
            .await
            .unwrap(),
            ["b"]
        );
        let e = try_scan(
            &mut t1,
            locking(Span::point(b"b"), LockStrength::Exclusive, LockWait::NoWait),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, KvError::LockTimeout { .. }));
        // Ending a transaction releases its locks.
        t1.commit().await.unwrap();
        t2.rollback().await.unwrap();
        t3.rollback().await.unwrap();
        let mut t4 = begin(&kv).await;
        assert_eq!(
            try_scan(
                &mut t4,
                locking(all(), LockStrength::Exclusive, LockWait::NoWait)
            )
            .await
            .unwrap(),
            ["a", "b", "c"]
        );
        // A row committed after the locker's snapshot is a serialization
        // failure, not a silent lock of a newer version.
        let mut old = begin(&kv).await;
        drop(t4);
        seed(&kv, &[("b", "20")]).await;
        let e = try_scan(
            &mut old,
            locking(all(), LockStrength::Exclusive, LockWait::Block),
        )
        .await
        .unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
    });
}

#[test]
fn locking_scans_honour_row_limits_and_resume() {
    block_on(async {
        let kv = MemoryKv::new();
        seed(&kv, &[("a", "1"), ("b", "2"), ("c", "3")]).await;
        let mut t1 = begin(&kv).await;
        let mut t2 = begin(&kv).await;
        try_scan(
            &mut t1,
            locking(Span::point(b"a"), LockStrength::Exclusive, LockWait::Block),
        )
        .await
        .unwrap();
        let mut request = locking(
            Span::from_key(b("")),
            LockStrength::Exclusive,
            LockWait::SkipLocked,
        );
        request.limit_rows = Some(1);
        let mut batch = Batch::new();
        batch.scan(request);
        let response = t2.batch(batch).await.unwrap();
        let first = response.scan(0).unwrap();
        assert_eq!(keys(&first.rows), ["b"]);
        let resume = first.resume.clone().expect("more rows");
        assert!(resume.contains(b"c") && !resume.contains(b"b"));
    });
}
