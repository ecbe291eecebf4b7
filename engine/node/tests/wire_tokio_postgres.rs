//! The server driven by tokio-postgres, a client nobody here wrote: simple and
//! extended protocol, prepared statements with parameters of every supported
//! type in binary and text, portals with row limits, pipelining, transaction
//! status, errors with SQLSTATEs, and cancellation.

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use common::TestServer;
use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type as PgType;
use tokio_postgres::SimpleQueryMessage;

fn simple_rows(messages: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_query_returns_text_rows_and_command_tags() {
    let server = TestServer::start(2);
    let client = server.connect().await;
    let rows = simple_rows(
        client
            .simple_query("select 1, 'x' || 'y' as xy, null; select 2.50 * 2")
            .await
            .unwrap(),
    );
    assert_eq!(
        rows,
        vec![
            vec![Some("1".into()), Some("xy".into()), None],
            vec![Some("5.00".into())]
        ]
    );
    let messages = client.simple_query("").await.unwrap();
    assert!(messages
        .iter()
        .all(|m| !matches!(m, SimpleQueryMessage::Row(_))));
    let messages = client
        .simple_query("values (1, 'a'), (2, 'b')")
        .await
        .unwrap();
    let tag = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    assert_eq!(tag, Some(2));
}

#[tokio::test]
async fn prepared_statements_round_trip_every_type_in_binary() {
    let server = TestServer::start(2);
    let client = server.connect().await;

    let statement = client
        .prepare("select $1::int2, $2::int4, $3::int8, $4::float4, $5::float8, $6::bool, $7::text, $8::varchar, $9::bytea")
        .await
        .unwrap();
    assert_eq!(
        statement.params(),
        &[
            PgType::INT2,
            PgType::INT4,
            PgType::INT8,
            PgType::FLOAT4,
            PgType::FLOAT8,
            PgType::BOOL,
            PgType::TEXT,
            PgType::VARCHAR,
            PgType::BYTEA
        ]
    );
    let bytes: Vec<u8> = vec![0, 1, 2, 255];
    let row = client
        .query_one(
            &statement,
            &[
                &-7i16,
                &i32::MIN,
                &i64::MAX,
                &1.5f32,
                &-2.25e300f64,
                &true,
                &"héllo",
                &"v",
                &bytes,
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>(0), -7);
    assert_eq!(row.get::<_, i32>(1), i32::MIN);
    assert_eq!(row.get::<_, i64>(2), i64::MAX);
    assert_eq!(row.get::<_, f32>(3), 1.5);
    assert_eq!(row.get::<_, f64>(4), -2.25e300);
    assert!(row.get::<_, bool>(5));
    assert_eq!(row.get::<_, String>(6), "héllo");
    assert_eq!(row.get::<_, String>(7), "v");
    assert_eq!(row.get::<_, Vec<u8>>(8), bytes);

    let date = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let ts = date.and_hms_micro_opt(23, 59, 58, 123_456).unwrap();
    let tstz = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(ts, chrono::Utc);
    let id = uuid::Uuid::from_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
    let doc = serde_json::json!({"a": [1, 2, {"b": null}]});
    let money = Decimal::from_str("-12345678901234.5678").unwrap();
    let row = client
        .query_one(
            "select $1::date, $2::timestamp, $3::timestamptz, $4::uuid, $5::jsonb, $6::numeric, $7::json",
            &[&date, &ts, &tstz, &id, &doc, &money, &doc],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, chrono::NaiveDate>(0), date);
    assert_eq!(row.get::<_, chrono::NaiveDateTime>(1), ts);
    assert_eq!(row.get::<_, chrono::DateTime<chrono::Utc>>(2), tstz);
    assert_eq!(row.get::<_, uuid::Uuid>(3), id);
    assert_eq!(row.get::<_, serde_json::Value>(4), doc);
    assert_eq!(row.get::<_, Decimal>(5), money);
    assert_eq!(row.get::<_, serde_json::Value>(6), doc);

    // NULL parameters and results.
    let row = client
        .query_one(
            "select $1::int4, $2::text",
            &[&None::<i32>, &None::<String>],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), None);
    assert_eq!(row.get::<_, Option<String>>(1), None);
}

#[tokio::test]
async fn text_format_of_every_type_matches_postgres() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    let rows = simple_rows(
        client
            .simple_query(
                "select 1::int2, 2::int8, 1.5::float4, 0.1::float8, 1e100::float8, true, false, \
                 'ab'::bytea, '2024-02-29'::date, '2024-01-02 03:04:05.5'::timestamp, \
                 '2024-01-02 03:04:05+02'::timestamptz, '1 year 2 mons 3 days 04:05:06'::interval, \
                 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid, 1.50::numeric, '12:30'::time",
            )
            .await
            .unwrap(),
    );
    let expected = [
        "1",
        "2",
        "1.5",
        "0.1",
        "1e+100",
        "t",
        "f",
        "\\x6162",
        "2024-02-29",
        "2024-01-02 03:04:05.5",
        "2024-01-02 01:04:05+00",
        "1 year 2 mons 3 days 04:05:06",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "1.50",
        "12:30:00",
    ];
    let got: Vec<String> = rows[0].iter().map(|v| v.clone().unwrap()).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn parameter_types_are_inferred_from_context() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    let statement = client
        .prepare("select $1 + 1, $2 || 'x', $3")
        .await
        .unwrap();
    assert_eq!(
        statement.params(),
        &[PgType::INT4, PgType::TEXT, PgType::TEXT]
    );
    assert_eq!(statement.columns()[0].type_(), &PgType::INT4);
    let row = client
        .query_one(&statement, &[&41i32, &"a", &"b"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, String>(1), "ax");
    assert_eq!(row.get::<_, String>(2), "b");
}

#[tokio::test]
async fn portals_suspend_at_the_row_limit() {
    let server = TestServer::start(1);
    let mut client = server.connect().await;
    let transaction = client.transaction().await.unwrap();
    let statement = transaction
        .prepare("values (1), (2), (3), (4), (5)")
        .await
        .unwrap();
    let portal = transaction.bind(&statement, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = transaction.query_portal(&portal, 2).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 2);
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    transaction.commit().await.unwrap();
}

#[tokio::test]
async fn pipelined_queries_are_answered_in_order() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    let statement = client.prepare("select $1::int8 * 2").await.unwrap();
    let futures: Vec<_> = (0..200i64)
        .map(|i| {
            let client = &client;
            let statement = &statement;
            async move {
                client
                    .query_one(statement, &[&i])
                    .await
                    .unwrap()
                    .get::<_, i64>(0)
            }
        })
        .collect();
    let results = futures_join_all(futures).await;
    assert_eq!(results, (0..200).map(|i| i * 2).collect::<Vec<_>>());
}

async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    // tokio-postgres pipelines requests issued before earlier ones complete:
    // poll them all concurrently.
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.unwrap()).collect()
}

#[tokio::test]
async fn errors_carry_sqlstates_and_failed_blocks_refuse_statements() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    let cases: &[(&str, &SqlState)] = &[
        ("select 1/0", &SqlState::DIVISION_BY_ZERO),
        (
            "select 2147483647 + 1",
            &SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        ),
        ("select 'abc'::int4", &SqlState::INVALID_TEXT_REPRESENTATION),
        ("select nosuchfunc(1)", &SqlState::UNDEFINED_FUNCTION),
        ("select nosuchcolumn", &SqlState::UNDEFINED_COLUMN),
        ("selec 1", &SqlState::SYNTAX_ERROR),
        ("set nosuchvar = 1", &SqlState::UNDEFINED_OBJECT),
        (
            "set server_version = '1'",
            &SqlState::CANT_CHANGE_RUNTIME_PARAM,
        ),
        (
            "create materialized view v as select 1",
            &SqlState::FEATURE_NOT_SUPPORTED,
        ),
        (
            "select '2024-13-01'::date",
            &SqlState::DATETIME_FIELD_OVERFLOW,
        ),
    ];
    for (sql, code) in cases {
        let error = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(error.code(), Some(*code), "{sql}: {error:?}");
    }

    client.batch_execute("begin").await.unwrap();
    assert!(client.simple_query("select 1/0").await.is_err());
    let error = client.simple_query("select 1").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    client.batch_execute("rollback").await.unwrap();
    // After the block ends the session works again.
    let rows = simple_rows(client.simple_query("select 3").await.unwrap());
    assert_eq!(rows, vec![vec![Some("3".into())]]);
}

#[tokio::test]
async fn set_and_show_and_transaction_isolation() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    let show = |sql: &'static str| {
        let client = &client;
        async move {
            simple_rows(client.simple_query(sql).await.unwrap())[0][0]
                .clone()
                .unwrap()
        }
    };
    assert_eq!(
        show("show transaction isolation level").await,
        "serializable"
    );
    client
        .batch_execute("set application_name = 'bank-app'")
        .await
        .unwrap();
    assert_eq!(show("show application_name").await, "bank-app");
    assert_eq!(
        show("select current_setting('application_name')").await,
        "bank-app"
    );
    client
        .batch_execute("begin isolation level repeatable read")
        .await
        .unwrap();
    assert_eq!(show("show transaction_isolation").await, "repeatable read");
    client
        .batch_execute("set local extra_float_digits = 3")
        .await
        .unwrap();
    assert_eq!(show("show extra_float_digits").await, "3");
    client.batch_execute("commit").await.unwrap();
    assert_eq!(show("show extra_float_digits").await, "1");
    assert_eq!(show("show transaction_isolation").await, "serializable");
    // SET inside a rolled-back block is undone, as in PostgreSQL.
    client
        .batch_execute("begin; set application_name = 'other'; rollback")
        .await
        .unwrap();
    assert_eq!(show("show application_name").await, "bank-app");
    client.batch_execute("reset all").await.unwrap();
    assert_eq!(show("show application_name").await, "");
}

#[tokio::test]
async fn cancel_request_stops_a_running_statement() {
    let server = TestServer::start(2);
    let client = server.connect().await;
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let started = Instant::now();
    let error = client
        .simple_query("select pg_sleep(30)")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancel took {:?}",
        started.elapsed()
    );
    canceller.await.unwrap();
    // The connection is still usable.
    let rows = simple_rows(client.simple_query("select 'still here'").await.unwrap());
    assert_eq!(rows[0][0].as_deref(), Some("still here"));
}

#[tokio::test]
async fn cancel_with_a_wrong_key_is_ignored() {
    let server = TestServer::start(1);
    let victim = server.connect().await;
    // A cancel token of another connection never cancels this one.
    let other = server.connect().await;
    let token = other.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let rows = simple_rows(
        victim
            .simple_query("select pg_sleep(0.5), 1")
            .await
            .unwrap(),
    );
    assert_eq!(rows[0][1].as_deref(), Some("1"));
    canceller.await.unwrap();
}
