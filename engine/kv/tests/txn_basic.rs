//! Basic transactional behaviour through the coordinator, on a simulated
//! cluster of three stores with several ranges.

use std::time::Duration;

use bytes::Bytes;
use teller_kv::sim::{Sim, SimCluster};
use teller_kv::{
    Isolation, KvClient, KvConfig, KvError, Request, Response, ScanRequest, Span, TxnOptions,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cluster(seed: u64) -> SimCluster {
    let cfg = KvConfig {
        max_offset: Duration::from_millis(1),
        ..KvConfig::default()
    };
    SimCluster::new(
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
    let c = cluster(1);
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
    let c = cluster(2);
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
