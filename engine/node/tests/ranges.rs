//! Ranges that split and move between the shards of a real `teller`
//! process, seen through tokio-postgres: a table loaded at a KiB split size
//! ends up in many ranges over both shards, and SQL transactions stay exact
//! while its ranges split and move under them.
//!
//! The range table comes from the node's log: the ranges each shard owns
//! after start-up, then every `range split` and `range moved` line.

mod ranges_common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ranges_common::{
    assert_tiles_keyspace, check_ledger, load, owners_of, pad, replay, table_id, table_span,
    test_dir, total, transfer, wait_for_placement, write_config, write_config_with, Node,
};

const SHARDS: usize = 2;
/// Small enough that a few hundred rows make dozens of ranges.
const SPLIT_BYTES: u64 = 4096;
const REBALANCE_MS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_table_splits_into_ranges_spread_over_both_shards() {
    let dir = test_dir("ranges-spread");
    write_config(&dir, SPLIT_BYTES, REBALANCE_MS);
    let node = Node::start(&dir, "first", SHARDS, &[]);
    let client = node.connect().await;
    client
        .batch_execute("create table t (id bigint primary key, balance bigint, pad text)")
        .await
        .unwrap();
    let rows = 1500;
    load(&client, "t", rows, 7).await;
    let (start, end) = table_span(table_id(&client, "t").await);
    // Splits alone keep the table on one shard; the rebalancer spreads it.
    let ranges = wait_for_placement(&node, Duration::from_secs(30), |r| {
        owners_of(r, &start, &end) == vec![0, 1]
    });
    let table_ranges = ranges.values().filter(|r| r.overlaps(&start, &end)).count();
    assert!(
        table_ranges >= 8,
        "{rows} rows at {SPLIT_BYTES}-byte splits make only {table_ranges} ranges"
    );
    assert_tiles_keyspace(&ranges);
    let moved = node.log().matches("range moved").count();
    assert!(moved >= 1, "no range moved");
    // Every row is there, read through both shards' connections.
    for _ in 0..4 {
        let c = node.connect().await;
        assert_eq!(total(&c, "t").await, (rows, 7 * rows));
        let row = c
            .query_one("select pad from t where id = 1234", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), pad(1234));
    }
    // Both shards hold about as many ranges.
    let count = |s: usize| ranges.values().filter(|r| r.owner == s).count() as i64;
    let settled = wait_for_placement(&node, Duration::from_secs(30), |r| {
        let c = |s: usize| r.values().filter(|x| x.owner == s).count() as i64;
        (c(0) - c(1)).abs() <= 1
    });
    eprintln!(
        "{} ranges ({} of the table) after {moved} moves; then {} vs {} per shard, settled at {} vs {}",
        ranges.len(),
        table_ranges,
        count(0),
        count(1),
        settled.values().filter(|r| r.owner == 0).count(),
        settled.values().filter(|r| r.owner == 1).count(),
    );
    node.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_stay_exact_while_ranges_split_and_move() {
    let dir = test_dir("ranges-bank");
    write_config(&dir, SPLIT_BYTES, REBALANCE_MS);
    let node = Arc::new(Node::start(&dir, "first", SHARDS, &[]));
    let client = node.connect().await;
    client
        .batch_execute(
            "create table accounts (id bigint primary key, balance bigint, pad text); \
             create table ledger (id bigint primary key, src bigint, dst bigint, amount bigint)",
        )
        .await
        .unwrap();
    const ACCOUNTS: i64 = 200;
    const INITIAL: i64 = 1000;
    load(&client, "accounts", ACCOUNTS, INITIAL).await;
    let expected = (ACCOUNTS, ACCOUNTS * INITIAL);
    let stop = Arc::new(AtomicBool::new(false));
    let transfers = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let node = node.clone();
        let stop = stop.clone();
        let transfers = transfers.clone();
        writers.push(tokio::spawn(async move {
            let mut client = node.connect().await;
            let mut state = w * 7919 + 1;
            let mut retries = 0;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let from = ((state >> 33) % ACCOUNTS as u64) as i64;
                let to = (from + 1 + ((state >> 17) % (ACCOUNTS as u64 - 1)) as i64) % ACCOUNTS;
                let entry = w as i64 * 1_000_000 + n;
                retries += transfer(&mut client, entry, from, to, 1 + (state % 50) as i64).await;
                transfers.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            retries
        }));
    }
    // Readers sum every balance while the writers run: always exact.
    let mut sums = 0;
    let (start, end) = table_span(table_id(&client, "accounts").await);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let reader = node.connect().await;
        assert_eq!(total(&reader, "accounts").await, expected, "a sum mid-run");
        sums += 1;
        let ranges = replay(&node.log());
        let spread = owners_of(&ranges, &start, &end) == vec![0, 1];
        let moves = node.log().matches("range moved").count();
        if spread && moves >= 3 && transfers.load(Ordering::Relaxed) >= 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no spread after 40 s: {moves} moves, {} transfers",
            transfers.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut retries = 0;
    for w in writers {
        retries += w.await.expect("writer");
    }
    assert_eq!(total(&client, "accounts").await, expected, "the final sum");
    // Every committed transfer is in the ledger once, and the balances are
    // exactly the initial ones plus the ledger.
    let ledger = check_ledger(&client, ACCOUNTS, INITIAL).await;
    assert_eq!(ledger.len() as u64, transfers.load(Ordering::Relaxed));
    let log = node.log();
    let ranges = replay(&log);
    assert_tiles_keyspace(&ranges);
    eprintln!(
        "{} transfers ({retries} retries), {sums} exact sums, {} splits, {} moves, {} ranges",
        transfers.load(Ordering::Relaxed),
        log.matches("range split").count(),
        log.matches("range moved").count(),
        ranges.len()
    );
    drop(client);
    if let Ok(node) = Arc::try_unwrap(node) {
        node.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_small_table_splits_by_load_and_spreads() {
    let dir = test_dir("ranges-load");
    // The default split size: 100 accounts never split by size.
    write_config_with(&dir, 64 << 20, REBALANCE_MS, 300);
    let node = Arc::new(Node::start(&dir, "first", SHARDS, &[]));
    let client = node.connect().await;
    client
        .batch_execute(
            "create table accounts (id bigint primary key, balance bigint, pad text); \
             create table ledger (id bigint primary key, src bigint, dst bigint, amount bigint)",
        )
        .await
        .unwrap();
    const ACCOUNTS: i64 = 100;
    const INITIAL: i64 = 1000;
    load(&client, "accounts", ACCOUNTS, INITIAL).await;
    let (start, end) = table_span(table_id(&client, "accounts").await);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let node = node.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut client = node.connect().await;
                let mut state = w * 104729 + 3;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let from = ((state >> 33) % ACCOUNTS as u64) as i64;
                    let to = (from + 1 + ((state >> 17) % (ACCOUNTS as u64 - 1)) as i64) % ACCOUNTS;
                    let entry = w as i64 * 1_000_000 + n;
                    transfer(&mut client, entry, from, to, 1 + (state % 9) as i64).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let ranges = wait_for_placement(&node, Duration::from_secs(60), |r| {
        owners_of(r, &start, &end) == vec![0, 1]
    });
    stop.store(true, Ordering::Relaxed);
    let mut transfers = 0;
    for w in writers {
        transfers += w.await.expect("writer");
    }
    let log = node.log();
    let load_splits = log
        .lines()
        .filter(|l| l.contains("range split") && l.contains("reason=load"))
        .count();
    assert!(load_splits >= 1, "no split by load:\n{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("range split") && l.contains("reason=size"))
            .count(),
        0,
        "a 100-row table split by size"
    );
    assert_eq!(
        total(&client, "accounts").await,
        (ACCOUNTS, ACCOUNTS * INITIAL)
    );
    let ledger = check_ledger(&client, ACCOUNTS, INITIAL).await;
    assert_eq!(ledger.len() as i64, transfers);
    assert_tiles_keyspace(&ranges);
    eprintln!(
        "{transfers} transfers; {load_splits} splits by load, {} moves, the table in {} ranges",
        log.matches("range moved").count(),
        ranges.values().filter(|r| r.overlaps(&start, &end)).count()
    );
    drop(client);
    if let Ok(node) = Arc::try_unwrap(node) {
        node.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
