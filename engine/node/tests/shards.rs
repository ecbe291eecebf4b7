//! Connections are spread over all shards, node-wide views gather every shard
//! over the mesh, misbehaving clients on one shard stall nobody else, and the
//! node starts and stops cleanly with any shard count.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{frame, raw_session, TestServer};
use tokio_postgres::SimpleQueryMessage;

async fn first_value(client: &tokio_postgres::Client, sql: &str) -> String {
    let messages = client.simple_query(sql).await.unwrap();
    messages
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a row")
}

async fn shard_tally(
    server: &TestServer,
    connections: usize,
) -> (Vec<tokio_postgres::Client>, BTreeMap<String, u64>) {
    let mut clients = Vec::new();
    let mut tally = BTreeMap::new();
    for _ in 0..connections {
        let client = server.connect().await;
        *tally
            .entry(first_value(&client, "show teller.shard").await)
            .or_insert(0) += 1;
        clients.push(client);
    }
    (clients, tally)
}

#[tokio::test]
async fn connections_spread_over_all_shards_and_show_counts_them_exactly() {
    let server = TestServer::start(2);
    let (clients, tally) = shard_tally(&server, 32).await;
    assert_eq!(tally.len(), 2, "every shard serves clients: {tally:?}");

    // SHOW teller.connections asks every shard over the mesh.
    let messages = clients[0]
        .simple_query("show teller.connections")
        .await
        .unwrap();
    let reported: BTreeMap<String, u64> = messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((r.get(0)?.to_string(), r.get(1)?.parse().ok()?)),
            _ => None,
        })
        .collect();
    assert_eq!(reported, tally);
    let log = server.log();
    assert!(
        log.contains("shard=0") && log.contains("shard=1"),
        "shards appear in the logs"
    );
}

#[tokio::test]
async fn more_shards_than_cpus_run_unpinned() {
    let shards = 4;
    let server = TestServer::start(shards);
    assert!(
        server.log().contains("pinned=false")
            || std::thread::available_parallelism().unwrap().get() >= shards
    );
    let (clients, tally) = shard_tally(&server, 64).await;
    assert_eq!(tally.len(), shards, "{tally:?}");
    assert_eq!(first_value(&clients[0], "show teller.shards").await, "4");
    // A cancel request lands on a random shard and is forwarded to the owner.
    for client in clients.iter().take(8) {
        let token = client.cancel_token();
        let cancel = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        });
        let error = client
            .simple_query("select pg_sleep(20)")
            .await
            .unwrap_err();
        assert_eq!(
            error.code(),
            Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
        );
        cancel.await.unwrap();
    }
}

#[tokio::test]
async fn misbehaving_clients_do_not_stall_other_sessions() {
    let server = TestServer::start(2);
    // Clients that stop mid-message, on every shard.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut stream = raw_session(&server);
        let query = frame::query("select 1");
        stream.write_all(&query[..3]).unwrap();
        stalled.push(stream);
    }
    // Clients that pipeline thousands of queries and never read the answers,
    // so the server's writes to them block.
    let mut flooders = Vec::new();
    for _ in 0..4 {
        let stream = raw_session(&server);
        stream.set_nonblocking(true).unwrap();
        let mut batch = Vec::new();
        for _ in 0..2000 {
            batch.extend(frame::query(
                "values (1, 'padding padding padding padding'), (2, 'more padding')",
            ));
        }
        let mut written = 0;
        let started = Instant::now();
        let mut s = &stream;
        while written < batch.len() && started.elapsed() < Duration::from_secs(2) {
            match s.write(&batch[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("flood write failed: {e}"),
            }
        }
        flooders.push(stream);
    }
    // Meanwhile fresh clients on both shards get answers promptly.
    let started = Instant::now();
    let (clients, tally) = shard_tally(&server, 24).await;
    assert_eq!(tally.len(), 2);
    for client in &clients {
        assert_eq!(first_value(client, "select 'served'").await, "served");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "fresh sessions were held up for {:?}",
        started.elapsed()
    );
    drop(stalled);
    drop(flooders);
}

#[test]
fn sigterm_and_sigint_shut_the_node_down_gracefully() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = TestServer::with_config(2, &[("shutdown_grace_secs", "1")], "");
        // An idle session must not keep the node up past the grace period.
        let mut idle = raw_session(&server);
        let started = Instant::now();
        let status = server.stop_with(signal);
        assert!(
            status.success(),
            "exit status {status} after signal {signal}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shutdown took {:?}",
            started.elapsed()
        );
        assert!(common::closed_by_server(&mut idle));
        let log = server.log();
        assert!(
            log.contains("shutting down") && log.contains("node stopped"),
            "{log}"
        );
    }
}
