//! `SHOW RANGES` on a real `teller` process with two shards and KiB-sized
//! splits: the table's ranges spread over both shards, and what the
//! statement shows is what the node's log says happened (the ranges each
//! shard owned at start-up, then every split and move).

mod ranges_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ranges_common::{
    assert_tiles_keyspace, load, owners_of, replay, table_id, table_span, test_dir,
    wait_for_placement, write_config, Node, Range,
};
use tokio_postgres::SimpleQueryMessage;

const SHARDS: usize = 2;
const SPLIT_BYTES: u64 = 4096;
const REBALANCE_MS: u64 = 20;
const ROWS: i64 = 600;
/// How long SHOW RANGES may take to agree with the log (a move may be
/// between its adoption and the log line that tells of it).
const AGREE_TIMEOUT: Duration = Duration::from_secs(30);

/// One row of SHOW RANGES, as text (the simple protocol).
#[derive(Clone, Debug)]
struct Shown {
    id: u64,
    start: String,
    end: String,
    shard: usize,
    generation: u64,
    approx_bytes: Option<u64>,
    raw_start: Vec<u8>,
    raw_end: Option<Vec<u8>>,
}

fn unhex_bytea(text: &str) -> Vec<u8> {
    let hex = text.strip_prefix("\\x").expect("bytea in hex");
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

async fn show(client: &tokio_postgres::Client, sql: &str) -> Vec<Shown> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .map(|r| {
            let get = |name: &str| r.get(name).map(str::to_string);
            let num = |name: &str| {
                get(name)
                    .unwrap_or_else(|| panic!("{name} is NULL"))
                    .parse::<u64>()
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
            };
            Shown {
                id: num("range_id"),
                start: get("start_key").expect("start_key"),
                end: get("end_key").expect("end_key"),
                shard: num("shard") as usize,
                generation: num("generation"),
                approx_bytes: get("approx_bytes").map(|b| b.parse().expect("bytes")),
                raw_start: unhex_bytea(&get("raw_start_key").expect("raw_start_key")),
                raw_end: get("raw_end_key").map(|e| unhex_bytea(&e)),
            }
        })
        .collect()
}

/// The rows as the log's range table: id → range.
fn as_table(shown: &[Shown]) -> BTreeMap<u64, Range> {
    shown
        .iter()
        .map(|s| {
            let range = Range {
                start: s.raw_start.clone(),
                end: s.raw_end.clone(),
                owner: s.shard,
                generation: s.generation,
            };
            (s.id, range)
        })
        .collect()
}

/// A table-relative bound as a primary key (`/42`); `None` for the ends.
fn key_value(bound: &str) -> Option<i64> {
    if bound == "/Min" || bound == "/Max" || bound.starts_with('<') {
        return None;
    }
    let value = bound
        .strip_prefix('/')
        .unwrap_or_else(|| panic!("bound {bound} is no primary key"));
    Some(value.parse().unwrap_or_else(|e| panic!("{bound}: {e}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_ranges_lists_the_ranges_of_both_shards_as_the_log_tells() {
    let dir = test_dir("show-ranges");
    write_config(&dir, SPLIT_BYTES, REBALANCE_MS);
    let node = Node::start(&dir, "first", SHARDS, &[]);
    let client = node.connect().await;
    client
        .batch_execute("create table t (id bigint primary key, balance bigint, pad text)")
        .await
        .unwrap();
    load(&client, "t", ROWS, 7).await;
    let (start, end) = table_span(table_id(&client, "t").await);
    wait_for_placement(&node, Duration::from_secs(30), |r| {
        owners_of(r, &start, &end) == vec![0, 1]
    });

    // SHOW RANGES and the log agree once the log has caught up.
    let deadline = Instant::now() + AGREE_TIMEOUT;
    let all = loop {
        let all = show(&client, "SHOW RANGES").await;
        if as_table(&all) == replay(&node.log()) {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "SHOW RANGES {all:?} never matched the log's {:?}",
            replay(&node.log())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_tiles_keyspace(&as_table(&all));
    assert_eq!(all.first().map(|r| r.start.as_str()), Some("/Min"));
    assert_eq!(all.last().map(|r| r.end.as_str()), Some("/Max"));
    // Every range was confirmed by its owner, with a size.
    assert!(all.iter().all(|r| r.approx_bytes.is_some()), "{all:?}");

    // The table's ranges: on both shards, bounds as primary keys, in order.
    let ranges = show(&client, "show ranges from table t").await;
    assert!(ranges.len() >= 2, "{ranges:?}");
    let mut owners: Vec<usize> = ranges.iter().map(|r| r.shard).collect();
    owners.sort();
    owners.dedup();
    assert_eq!(owners, vec![0, 1], "{ranges:?}");
    let first = &ranges[0].start;
    assert!(first == "/Min" || first.starts_with("<before:"), "{first}");
    let last = &ranges[ranges.len() - 1].end;
    assert!(last == "/Max" || last.starts_with("<after:"), "{last}");
    let mut previous = None;
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "{ranges:?}");
        let at = key_value(&pair[0].end).expect("an inner bound is a row key");
        assert!((0..ROWS).contains(&at), "split at {at}");
        assert!(previous < Some(at), "bounds out of order: {ranges:?}");
        previous = Some(at);
    }
    // Each of them is the whole-keyspace listing's range of that id, unless
    // a move came in between (then the table's listing is the newer one).
    let by_id = as_table(&all);
    let same = ranges
        .iter()
        .filter(|r| by_id.get(&r.id).is_some_and(|x| x.owner == r.shard))
        .count();
    assert!(same > 0, "{ranges:?} vs {all:?}");

    // Every shard answers alike: connections land on either shard.
    for _ in 0..4 {
        let other = node.connect().await;
        let seen = show(&other, "show ranges from table t").await;
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|r| r.approx_bytes.is_some()), "{seen:?}");
    }
    eprintln!(
        "{} ranges in the node, {} of table t, owners {:?}",
        all.len(),
        ranges.len(),
        ranges.iter().map(|r| r.shard).collect::<Vec<_>>()
    );
    node.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
