//! SQL over several shards of one node, through tokio-postgres: a table
//! created through one shard is seen at the next statement on every shard
//! (the DDL announcement), rows written through any shard are read through
//! every other one, and a prepared statement made before a table existed on
//! one shard binds once the table has been created through another.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use tokio_postgres::SimpleQueryMessage;

/// Connections until every shard serves at least one, by `teller.shard`.
async fn one_client_per_shard(server: &TestServer, shards: usize) -> Vec<tokio_postgres::Client> {
    let mut seen = BTreeSet::new();
    let mut clients = Vec::new();
    for _ in 0..256 {
        let client = server.connect().await;
        let shard: String = client
            .query_one("select current_setting('teller.shard')", &[])
            .await
            .unwrap()
            .get(0);
        if seen.insert(shard) {
            clients.push(client);
        }
        if clients.len() == shards {
            return clients;
        }
    }
    panic!("256 connections reached only shards {seen:?}");
}

fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

#[tokio::test]
async fn ddl_and_rows_are_seen_through_every_shard() {
    let server = TestServer::start(2);
    let clients = one_client_per_shard(&server, 2).await;

    for (round, creator) in clients.iter().enumerate() {
        let table = format!("t{round}");
        creator
            .batch_execute(&format!(
                "create table {table} (id int primary key, amount numeric(12,2) not null)"
            ))
            .await
            .unwrap();
        // Every shard sees the new table at its very next statement, in the
        // simple and in the extended protocol.
        for (i, client) in clients.iter().enumerate() {
            client
                .simple_query(&format!("insert into {table} values ({i}, 10.50)"))
                .await
                .unwrap_or_else(|e| panic!("insert through shard {i}: {e}"));
            let statement = client
                .prepare(&format!(
                    "insert into {table} values ($1, ($2::text)::numeric)"
                ))
                .await
                .unwrap_or_else(|e| panic!("prepare through shard {i}: {e}"));
            client
                .execute(&statement, &[&(100 + i as i32), &"0.25"])
                .await
                .unwrap();
        }
        for client in &clients {
            let messages = client
                .simple_query(&format!(
                    "select count(*) || '/' || sum(amount) from {table}"
                ))
                .await
                .unwrap();
            assert_eq!(first_value(&messages).as_deref(), Some("4/21.50"));
        }
    }

    // A dropped table is gone everywhere at the next statement.
    clients[1].batch_execute("drop table t0").await.unwrap();
    let error = clients[0]
        .simple_query("select * from t0")
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
}
