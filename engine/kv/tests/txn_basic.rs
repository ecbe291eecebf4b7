//! Basic transactional behaviour through the coordinator, on a simulated
//! cluster of three stores with several ranges.

use std::time::Duration;

use bytes::Bytes;
use teller_kv::sim::{Backend, Sim, SimCluster};
use teller_kv::{
    Isolation, KvClient, KvConfig, KvError, Request, Response, ScanRequest, Span, TxnOptions,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cluster(seed: u64, backend: Backend) -> SimCluster {
    let cfg = KvConfig {
        max_offset: Duration::from_millis(1),
        ..KvConfig::default()
    };
    SimCluster::with_backend(
        backend,
        Sim::new(seed, Duration::from_micros(5)),
        cfg,
        3,
        &[b"g", b"p"],
        &[],
    )
}

async fn put(client: &KvClient, pairs: &[(&str, &str)]) -> Result<(), KvError> {
    let mut txn = client.begin(TxnOptions::default());
    let reqs = pairs
        .iter()
        .map(|(k, v)| Request::Put {
            key: b(k),
            value: b(v),
        })
        .collect();
    txn.batch(reqs).await?;
    txn.commit().await?;
    Ok(())
}

async fn get(client: &KvClient, key: &str) -> Result<Option<Bytes>, KvError> {
    let mut txn = client.begin(TxnOptions::default());
    let r = txn
        .batch(vec![Request::Get {
            key: b(key),
            lock: None,
        }])
        .await?;
    txn.commit().await?;
    match &r[0] {
        Response::Get(v) => Ok(v.clone()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn write_then_read_across_ranges() {
    for backend in Backend::ALL {
        write_then_read_across_ranges_on(backend);
    }
}

fn write_then_read_across_ranges_on(backend: Backend) {
    let c = cluster(1, backend);
    let (client, g) = c.client(0);
    let got = c.sim.block_on(g, Duration::from_secs(10), async move {
        put(&client, &[("a", "1"), ("h", "2"), ("z", "3")])
            .await
            .unwrap();
        let mut txn = client.begin(TxnOptions::default());
        let r = txn
            .batch(vec![Request::Scan(ScanRequest::new(Span::all()))])
            .await
            .unwrap();
        txn.commit().await.unwrap();
        (r, get(&client, "h").await.unwrap())
    });
    match &got.0[0] {
        Response::Scan(s) => {
            let keys: Vec<_> = s.rows.iter().map(|kv| kv.key.clone()).collect();
            assert_eq!(keys, vec![b("a"), b("h"), b("z")]);
            assert!(s.resume.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got.1, Some(b("2")));
}

#[test]
fn rollback_discards_and_own_writes_are_visible() {
    for backend in Backend::ALL {
        rollback_discards_and_own_writes_are_visible_on(backend);
    }
}

fn rollback_discards_and_own_writes_are_visible_on(backend: Backend) {
    let c = cluster(2, backend);
    let (client, g) = c.client(1);
    let (own, after) = c.sim.block_on(g, Duration::from_secs(10), async move {
        let mut txn = client.begin(TxnOptions {
            isolation: Isolation::Snapshot,
            ..TxnOptions::default()
        });
        txn.batch(vec![Request::Put {
            key: b("k"),
            value: b("v"),
        }])
        .await
        .unwrap();
        let own = txn
            .batch(vec![Request::Get {
                key: b("k"),
                lock: None,
            }])
            .await
            .unwrap();
        txn.rollback().await.unwrap();
        (own, get(&client, "k").await.unwrap())
    });
    assert_eq!(own, vec![Response::Get(Some(b("v")))]);
    assert_eq!(after, None);
}

/// Scans over more keys than one engine chunk, with the transaction's own
/// inserts, overwrites and deletes mixed in, forward, reverse and paged,
/// agree with a model.
#[test]
fn scans_across_chunks_with_own_intents_match_a_model() {
    for backend in Backend::ALL {
        scans_across_chunks_with_own_intents_match_a_model_on(backend);
    }
}

fn scans_across_chunks_with_own_intents_match_a_model_on(backend: Backend) {
    use std::collections::BTreeMap;
    let c = cluster(5, backend);
    let (client, g) = c.client(0);
    let ok = c.sim.block_on(g, Duration::from_secs(60), async move {
        let mut model: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        let mut load = client.begin(TxnOptions::default());
        let mut reqs = Vec::new();
        for i in 0..700u32 {
            let key = Bytes::from(format!("k{:05}", i * 2));
            model.insert(key.clone(), b("old"));
            reqs.push(Request::Put {
                key,
                value: b("old"),
            });
        }
        load.batch(reqs).await.unwrap();
        load.commit().await.unwrap();
        let mut txn = client.begin(TxnOptions::default());
        let mut reqs = Vec::new();
        for i in 0..1400u32 {
            let key = Bytes::from(format!("k{i:05}"));
            if i % 3 == 0 {
                model.insert(key.clone(), b("new"));
                reqs.push(Request::Put {
                    key,
                    value: b("new"),
                });
            } else if i % 5 == 0 {
                model.remove(&key);
                reqs.push(Request::Delete { key });
            }
        }
        txn.batch(reqs).await.unwrap();
        let span = Span::new(&b"k"[..], &b"l"[..]);
        for reverse in [false, true] {
            // A page of one row per batch is 1400 batches: on the memory
            // engine only (the LSM backends run the other page sizes).
            let limits: &[Option<u64>] = match backend {
                Backend::Memory => &[None, Some(1), Some(97), Some(1000)],
                _ => &[None, Some(97), Some(1000)],
            };
            for &limit in limits {
                let mut got: Vec<(Bytes, Bytes)> = Vec::new();
                let mut rest = Some(span.clone());
                while let Some(s) = rest {
                    let mut scan = ScanRequest::new(s);
                    scan.reverse = reverse;
                    scan.limit_rows = limit;
                    let r = txn.batch(vec![Request::Scan(scan)]).await.unwrap();
                    let Response::Scan(page) = &r[0] else {
                        panic!()
                    };
                    if let Some(n) = limit {
                        assert!(page.rows.len() as u64 <= n);
                    }
                    got.extend(
                        page.rows
                            .iter()
                            .map(|kv| (kv.key.clone(), kv.value.clone())),
                    );
                    rest = page.resume.clone();
                }
                let mut want: Vec<(Bytes, Bytes)> =
                    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                if reverse {
                    want.reverse();
                }
                assert_eq!(got.len(), want.len(), "reverse {reverse} limit {limit:?}");
                assert!(
                    got == want,
                    "reverse {reverse} limit {limit:?}: rows differ"
                );
            }
        }
        txn.rollback().await.unwrap();
        true
    });
    assert!(ok);
}
