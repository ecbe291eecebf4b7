//! Transactions across the shards of one node, over the real glommio shard
//! mesh: every shard runs its KV store (one range each) and concurrent bank
//! transfers through the SQL layer's KV API (`teller_sql::kv::Kv`, served by
//! `teller_node::kv_client::SqlKv`), with client-side retry on 40001/40P01.
//! Accounts are spread so that most transfers cross shards. At the end the
//! total is exact and every balance equals the ledger's account of it.
//!
//! (The end-to-end variant through tokio-postgres waits for tables in the
//! SQL layer.)

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};
use teller_node::config::StorageConfig;
use teller_node::mesh::{Handler, Mesh, ShardId, MESH_QUEUE_CAPACITY};
use teller_node::range::{node_kv_config, KvShard, StorageSetup};
use teller_node::shard::{ShardRequest, ShardResponse};
use teller_sql::kv::{Batch, Kv, KvError, KvTxn, ScanRequest, Span, TxnOptions};

const SHARDS: usize = 3;
const ACCOUNTS: usize = 24;
const INITIAL: i64 = 100;
const TRANSFERS_PER_SHARD: usize = 30;
const ATTEMPTS_MAX: usize = 200;

/// Shards whose store is open (the test waits for all before its load).
static STORES_OPEN: AtomicUsize = AtomicUsize::new(0);

fn data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("teller-txn-mesh-{}", std::process::id()))
}

/// Account keys spread over the whole first-byte space, so over all shards.
fn account(i: usize) -> Bytes {
    let first = (i * 256 / ACCOUNTS) as u8;
    Bytes::from(vec![first, b'a', i as u8])
}

fn ledger(shard: usize, n: usize) -> Bytes {
    Bytes::from(format!("\u{7f}ledger/{shard}/{n:03}"))
}

fn parse(v: &Bytes) -> i64 {
    std::str::from_utf8(v)
        .expect("utf8")
        .parse()
        .expect("number")
}

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

async fn transfer(
    kv: &impl Kv,
    from: usize,
    to: usize,
    amount: i64,
    key: Bytes,
) -> Result<(), KvError> {
    let mut txn = kv.begin(TxnOptions::default()).await?;
    let mut reads = Batch::new();
    reads.get(account(from)).get(account(to));
    let r = txn.batch(reads).await?;
    let (a, b) = (
        r.get(0)?.map(parse).unwrap_or(0),
        r.get(1)?.map(parse).unwrap_or(0),
    );
    let mut writes = Batch::new();
    writes
        .put(account(from), (a - amount).to_string())
        .put(account(to), (b + amount).to_string())
        .conditional_put(key, format!("{from} {to} {amount}"), None);
    txn.batch(writes).await?;
    txn.commit().await?;
    Ok(())
}

/// A tiny deterministic generator per shard (the test needs no quality).
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

async fn shard_main(
    id: ShardId,
    builder: MeshBuilder<
        teller_node::mesh::Envelope<ShardRequest, ShardResponse>,
        glommio::channels::channel_mesh::Full,
    >,
    done: Arc<Mutex<Vec<Result<usize, String>>>>,
) -> Result<(), String> {
    let kv = Rc::new(KvShard::new(id, SHARDS, node_kv_config()));
    let queue =
        glommio::executor().create_task_queue(Shares::Static(1000), Latency::NotImportant, "mesh");
    let mesh = Mesh::join(builder, id, Rc::new(KvOnly { kv: kv.clone() }), queue).await?;
    kv.set_mesh(mesh.clone());
    // Each shard's store on its own durable storage, as in the node.
    let dir = data_dir().join(format!("shard-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let settings = StorageConfig {
        memtable_bytes: 256 * 1024,
        wal_segment_bytes: 1024 * 1024,
        block_cache_bytes: 1024 * 1024,
        raft_tick_ms: 10,
    };
    let current = glommio::executor().current_task_queue();
    kv.open(StorageSetup {
        dir: &dir,
        settings: &settings,
        writes_queue: current,
        background_queue: current,
    })
    .await?;
    STORES_OPEN.fetch_add(1, Ordering::SeqCst);
    while STORES_OPEN.load(Ordering::SeqCst) < SHARDS {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    let sql = kv.sql_kv();
    if id == 0 {
        let mut txn = sql
            .begin(TxnOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut load = Batch::new();
        for i in 0..ACCOUNTS {
            load.put(account(i), INITIAL.to_string());
        }
        txn.batch(load).await.map_err(|e| e.to_string())?;
        txn.commit().await.map_err(|e| e.to_string())?;
    } else {
        // Wait until shard 0 loaded the accounts.
        loop {
            let mut txn = sql
                .begin(TxnOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let mut b = Batch::new();
            b.get(account(ACCOUNTS - 1));
            let loaded = txn
                .batch(b)
                .await
                .map(|r| r.get(0).map(|v| v.is_some()).unwrap_or(false));
            let _ = txn.commit().await;
            if loaded == Ok(true) {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut seed = id as u64 + 1;
    let mut retries = 0;
    for n in 0..TRANSFERS_PER_SHARD {
        let from = next(&mut seed) as usize % ACCOUNTS;
        let to = (from + 1 + next(&mut seed) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
        let amount = 1 + (next(&mut seed) % 20) as i64;
        let mut ok = false;
        for _ in 0..ATTEMPTS_MAX {
            match transfer(&sql, from, to, amount, ledger(id, n)).await {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) if e.is_retryable() => retries += 1,
                Err(e) => return Err(format!("shard {id} transfer {n}: {e}")),
            }
        }
        if !ok {
            return Err(format!(
                "shard {id} transfer {n} failed {ATTEMPTS_MAX} times"
            ));
        }
    }
    done.lock().expect("results").push(Ok(retries));
    // Shard 0 checks once everyone is done; the others keep serving.
    loop {
        let finished = done.lock().expect("results").len();
        if finished >= SHARDS {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    if id == 0 {
        check(&sql).await.map_err(|e| format!("check: {e}"))?;
        done.lock().expect("results").push(Ok(0));
    } else {
        while done.lock().expect("results").len() < SHARDS + 1 {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(())
}

async fn check(sql: &impl Kv) -> Result<(), String> {
    let mut txn = sql
        .begin(TxnOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut b = Batch::new();
    b.scan(ScanRequest::new(Span::from_key(Bytes::new())));
    let r = txn.batch(b).await.map_err(|e| e.to_string())?;
    txn.commit().await.map_err(|e| e.to_string())?;
    let all = r.scan(0).map_err(|e| e.to_string())?;
    if all.resume.is_some() {
        return Err("scan stopped early".into());
    }
    let is_ledger = |k: &Bytes| k.starts_with(b"\x7fledger/");
    let accounts: Vec<_> = all.rows.iter().filter(|kv| !is_ledger(&kv.key)).collect();
    let ledger: Vec<_> = all.rows.iter().filter(|kv| is_ledger(&kv.key)).collect();
    let total: i64 = accounts.iter().map(|kv| parse(&kv.value)).sum();
    if accounts.len() != ACCOUNTS || total != INITIAL * ACCOUNTS as i64 {
        return Err(format!("{} accounts, total {total}", accounts.len()));
    }
    if ledger.len() != SHARDS * TRANSFERS_PER_SHARD {
        return Err(format!("{} ledger rows", ledger.len()));
    }
    let mut expected = [INITIAL; ACCOUNTS];
    for row in &ledger {
        let s = std::str::from_utf8(&row.value).map_err(|e| e.to_string())?;
        let v: Vec<i64> = s.split(' ').map(|p| p.parse().unwrap_or(-1)).collect();
        expected[v[0] as usize] -= v[2];
        expected[v[1] as usize] += v[2];
    }
    for (i, kv) in accounts.iter().enumerate() {
        let want = expected[(0..ACCOUNTS)
            .position(|a| account(a) == kv.key)
            .ok_or("unknown account")?];
        if parse(&kv.value) != want {
            return Err(format!("account {i}: {} != {want}", parse(&kv.value)));
        }
    }
    Ok(())
}

#[test]
fn bank_transfers_across_shards_over_the_mesh_keep_totals_exact() {
    let _ = std::fs::remove_dir_all(data_dir());
    let builder = MeshBuilder::full(SHARDS, MESH_QUEUE_CAPACITY);
    let done = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..SHARDS)
        .map(|id| {
            let builder = builder.clone();
            let done = done.clone();
            LocalExecutorBuilder::new(Placement::Unbound)
                .name(&format!("txn-shard-{id}"))
                .io_memory(512 * 1024)
                .spawn(move || async move { shard_main(id, builder, done).await })
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
    let results = done.lock().expect("results");
    assert_eq!(
        results.len(),
        SHARDS + 1,
        "every shard finished and shard 0 checked"
    );
    let _ = std::fs::remove_dir_all(data_dir());
}
