//! Crashes around splits and moves of ranges, on a real `teller` process:
//! SIGKILL while ranges split and move under an insert load, and an abort
//! at each step of a move. After a restart every acknowledged row is back
//! with its value, and every key has exactly one owner (the restarted
//! node's ranges tile the keyspace).

mod ranges_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ranges_common::{
    assert_tiles_keyspace, check_ledger, load, replay, test_dir, total, transfer_once,
    write_config, Node,
};

const SHARDS: usize = 2;
const SPLIT_BYTES: u64 = 4096;
const REBALANCE_MS: u64 = 20;
const WRITERS: i64 = 4;

fn value(id: i64) -> String {
    format!("value-{id:0>40}")
}

/// Writers inserting acknowledged rows until `stop` or an error (the node
/// died); returns the ids acknowledged.
fn start_writers(
    node: &Node,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<i64>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let url = node.url();
            let stop = stop.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = w * 1_000_000 + n;
                    let sql = "insert into kv (id, v) values ($1, $2)";
                    match client.execute(sql, &[&id, &value(id)]).await {
                        Ok(_) => acked.lock().expect("acked").push(id),
                        Err(e) if e.code().is_some_and(|c| c.code() == "40001") => continue,
                        Err(_) => return,
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

/// Every acknowledged row is back with its value; returns the row count.
async fn check_rows(node: &Node, acked: &[i64]) -> i64 {
    let client = node.connect().await;
    let rows = client
        .query("select id, v from kv", &[])
        .await
        .expect("reading the rows back");
    let found: BTreeMap<i64, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for id in acked {
        assert_eq!(
            found.get(id),
            Some(&value(*id)),
            "acknowledged row {id} lost or changed ({} rows back, {} acknowledged)",
            found.len(),
            acked.len()
        );
    }
    for (id, v) in &found {
        assert_eq!(v, &value(*id), "row {id} has a wrong value");
    }
    found.len() as i64
}

fn moves(node: &Node) -> usize {
    node.log().matches("range moved").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_survive_sigkill_after_splits_and_moves() {
    let dir = test_dir("ranges-sigkill");
    write_config(&dir, SPLIT_BYTES, REBALANCE_MS);
    let mut node = Node::start(&dir, "first", SHARDS, &[]);
    node.connect()
        .await
        .batch_execute("create table kv (id bigint primary key, v text)")
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers = start_writers(&node, stop.clone(), acked.clone());
    let deadline = Instant::now() + Duration::from_secs(40);
    while moves(&node) < 4 || acked.lock().expect("acked").len() < 600 {
        assert!(Instant::now() < deadline, "too few moves:\n{}", node.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("acked").clone();
    let first_log = node.log();
    let node = Node::start(&dir, "second", SHARDS, &[]);
    let back = check_rows(&node, &acked).await;
    let ranges = replay(&node.log());
    assert_tiles_keyspace(&ranges);
    eprintln!(
        "{} acknowledged, {back} rows back; {} splits and {} moves before the kill; {} ranges after",
        acked.len(),
        first_log.matches("range split").count(),
        first_log.matches("range moved").count(),
        ranges.len()
    );
    // The node goes on splitting and moving after the restart.
    let client = node.connect().await;
    client
        .execute("update kv set v = v where id % 2 = 0", &[])
        .await
        .unwrap();
    assert_eq!(check_rows(&node, &acked).await, back);
    node.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_totals_stay_exact_across_a_sigkill_while_ranges_move() {
    const ACCOUNTS: i64 = 200;
    const INITIAL: i64 = 1000;
    let dir = test_dir("ranges-bank-kill");
    write_config(&dir, SPLIT_BYTES, REBALANCE_MS);
    let mut node = Node::start(&dir, "first", SHARDS, &[]);
    let client = node.connect().await;
    client
        .batch_execute(
            "create table accounts (id bigint primary key, balance bigint, pad text); \
             create table ledger (id bigint primary key, src bigint, dst bigint, amount bigint)",
        )
        .await
        .unwrap();
    load(&client, "accounts", ACCOUNTS, INITIAL).await;
    drop(client);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = node.url();
            let acked = acked.clone();
            tokio::spawn(async move {
                let Ok((mut client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                let mut state = w as u64 * 7919 + 1;
                for n in 0.. {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let from = ((state >> 33) % ACCOUNTS as u64) as i64;
                    let to = (from + 1 + ((state >> 17) % (ACCOUNTS as u64 - 1)) as i64) % ACCOUNTS;
                    let entry = w * 1_000_000 + n;
                    let amount = 1 + (state % 50) as i64;
                    // Only errors from the dying node end a writer.
                    match transfer_once(&mut client, entry, from, to, amount).await {
                        Ok(()) => acked.lock().expect("acked").push(entry),
                        Err(retryable) if retryable => continue,
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(40);
    while moves(&node) < 3 || acked.lock().expect("acked").len() < 150 {
        assert!(Instant::now() < deadline, "too few moves:\n{}", node.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("acked").clone();
    let moved = moves(&node);
    let node = Node::start(&dir, "second", SHARDS, &[]);
    let client = node.connect().await;
    assert_eq!(
        total(&client, "accounts").await,
        (ACCOUNTS, ACCOUNTS * INITIAL)
    );
    let ledger = check_ledger(&client, ACCOUNTS, INITIAL).await;
    for id in &acked {
        assert!(ledger.contains(id), "acknowledged transfer {id} lost");
    }
    assert_tiles_keyspace(&replay(&node.log()));
    eprintln!(
        "{} transfers acknowledged, {} in the ledger after the restart; {moved} moves before the kill",
        acked.len(),
        ledger.len()
    );
    node.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a node that aborts at `point` of its first move, loads rows until
/// it does, restarts it and checks the rows and the placement. Returns the
/// restarted node's log and the test directory.
async fn crash_at(point: &str) -> (String, std::path::PathBuf) {
    let dir = test_dir(&format!("ranges-fault-{point}"));
    write_config(&dir, SPLIT_BYTES, REBALANCE_MS);
    let env = [(teller_node::range_move::FAULT_ENV, point)];
    let mut node = Node::start(&dir, "first", SHARDS, &env);
    node.connect()
        .await
        .batch_execute("create table kv (id bigint primary key, v text)")
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers = start_writers(&node, stop.clone(), acked.clone());
    assert!(
        node.wait_exit(Duration::from_secs(40)),
        "no move reached {point}:\n{}",
        node.log()
    );
    assert!(node.log().contains("fault injected"), "{}", node.log());
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("acked").clone();
    let node = Node::start(&dir, "second", SHARDS, &[]);
    let back = check_rows(&node, &acked).await;
    let log = node.log();
    assert_tiles_keyspace(&replay(&log));
    // Writes work on every range after the restart.
    node.connect()
        .await
        .execute("update kv set v = v", &[])
        .await
        .unwrap();
    assert_eq!(check_rows(&node, &acked).await, back);
    eprintln!("{point}: {} acknowledged, {back} rows back", acked.len());
    node.stop();
    (log, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_each_step_of_a_move_leaves_one_owner_and_every_row() {
    // The destination's tables are written, but it never adopted the range:
    // the source still owns it, the destination deletes the leftovers.
    let (log, dir) = crash_at("streamed").await;
    assert!(
        log.contains("deleting data outside the shard's ranges"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Both claim the span: the higher generation wins, the source drops its
    // copy.
    let (log, dir) = crash_at("adopted").await;
    assert!(log.contains("dropping a copy"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
    // The source cleared its descriptor but not its data.
    let (log, dir) = crash_at("removed").await;
    assert!(
        log.contains("deleting data outside the shard's ranges"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
