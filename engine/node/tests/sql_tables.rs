//! Tables through the real `teller` binary with tokio-postgres: every
//! supported column type round-trips through prepared statements (binary)
//! and the simple protocol (text); errors carry PostgreSQL's SQLSTATEs.

mod common;

use std::str::FromStr;

use common::TestServer;
use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type as PgType;
use tokio_postgres::SimpleQueryMessage;

#[tokio::test]
async fn every_column_type_round_trips_through_a_table() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    client
        .batch_execute(
            "create table every (
               id int8 primary key, i2 int2, i4 int4, f4 float4, f8 float8, b bool,
               t text, v varchar(10), c char(3), by bytea, d date, ts timestamp,
               tz timestamptz, iv interval, u uuid, j jsonb, n numeric(20,4))",
        )
        .await
        .unwrap();
    let insert = client
        .prepare(
            "insert into every (id, i2, i4, f4, f8, b, t, v, c, by, d, ts, tz, u, j, n)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .await
        .unwrap();
    assert_eq!(insert.params()[0], PgType::INT8);
    assert_eq!(insert.params()[15], PgType::NUMERIC);
    let date = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let ts = date.and_hms_micro_opt(23, 59, 58, 123_456).unwrap();
    let tz = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(ts, chrono::Utc);
    let id = uuid::Uuid::from_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
    let doc = serde_json::json!({"a": [1, 2, {"b": null}]});
    let money = Decimal::from_str("-1234567890.1234").unwrap();
    let bytes: Vec<u8> = vec![0, 1, 2, 255];
    let n = client
        .execute(
            &insert,
            &[
                &1i64,
                &-7i16,
                &i32::MIN,
                &1.5f32,
                &-2.25e300f64,
                &true,
                &"héllo",
                &"v",
                &"ab",
                &bytes,
                &date,
                &ts,
                &tz,
                &id,
                &doc,
                &money,
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Interval has no tokio-postgres Rust type: set it through SQL.
    client
        .execute(
            "update every set iv = '1 day 02:03:04' where id = $1",
            &[&1i64],
        )
        .await
        .unwrap();
    let row = client
        .query_one("select * from every where id = $1", &[&1i64])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>("i2"), -7);
    assert_eq!(row.get::<_, i32>("i4"), i32::MIN);
    assert_eq!(row.get::<_, f32>("f4"), 1.5);
    assert_eq!(row.get::<_, f64>("f8"), -2.25e300);
    assert!(row.get::<_, bool>("b"));
    assert_eq!(row.get::<_, String>("t"), "héllo");
    assert_eq!(row.get::<_, String>("v"), "v");
    assert_eq!(row.get::<_, String>("c"), "ab ");
    assert_eq!(row.get::<_, Vec<u8>>("by"), bytes);
    assert_eq!(row.get::<_, chrono::NaiveDate>("d"), date);
    assert_eq!(row.get::<_, chrono::NaiveDateTime>("ts"), ts);
    assert_eq!(row.get::<_, chrono::DateTime<chrono::Utc>>("tz"), tz);
    assert_eq!(row.get::<_, uuid::Uuid>("u"), id);
    assert_eq!(row.get::<_, serde_json::Value>("j"), doc);
    assert_eq!(row.get::<_, Decimal>("n"), money);
    // The same row in text format, through the simple protocol.
    let messages = client
        .simple_query("select i2, c, by, d, ts, tz, iv, u, n from every")
        .await
        .unwrap();
    let SimpleQueryMessage::Row(row) = &messages[1] else {
        panic!("{messages:?}")
    };
    let text: Vec<&str> = (0..9).map(|i| row.get(i).unwrap()).collect();
    assert_eq!(
        text,
        [
            "-7",
            "ab ",
            "\\x000102ff",
            "2024-02-29",
            "2024-02-29 23:59:58.123456",
            "2024-02-29 23:59:58.123456+00",
            "1 day 02:03:04",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "-1234567890.1234"
        ]
    );
    // Every type as a key: lookups through each column's index.
    for column in [
        "i2", "i4", "f4", "f8", "b", "t", "v", "c", "by", "d", "ts", "tz", "iv", "u", "n",
    ] {
        client
            .batch_execute(&format!("create index every_{column} on every ({column})"))
            .await
            .unwrap();
        let sql = format!(
            "select count(*) from every where {column} = (select {column} from every where id = 1)"
        );
        let count: i64 = client.query_one(&sql, &[]).await.unwrap().get(0);
        assert_eq!(count, 1, "{sql}");
    }
}

#[tokio::test]
async fn constraint_errors_reach_the_client_with_their_sqlstates() {
    let server = TestServer::start(1);
    let client = server.connect().await;
    client
        .batch_execute(
            "create table p (id int primary key);
             create table c (id int primary key, pid int not null references p, v int check (v > 0));
             insert into p values (1);",
        )
        .await
        .unwrap();
    let cases: &[(&str, &SqlState)] = &[
        ("insert into p values (1)", &SqlState::UNIQUE_VIOLATION),
        (
            "insert into c values (1, null, 1)",
            &SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "insert into c values (1, 2, 1)",
            &SqlState::FOREIGN_KEY_VIOLATION,
        ),
        ("insert into c values (1, 1, 0)", &SqlState::CHECK_VIOLATION),
        ("select * from nope", &SqlState::UNDEFINED_TABLE),
        ("select nope from p", &SqlState::UNDEFINED_COLUMN),
        ("create table p (a int)", &SqlState::DUPLICATE_TABLE),
        ("select id, count(*) from p", &SqlState::GROUPING_ERROR),
    ];
    for (sql, code) in cases {
        let error = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(error.code(), Some(*code), "{sql}: {error:?}");
    }
    let error = client
        .execute("insert into p values ($1)", &[&1i32])
        .await
        .unwrap_err();
    let db = error.as_db_error().unwrap();
    assert_eq!(db.constraint(), None);
    assert_eq!(
        db.message(),
        "duplicate key value violates unique constraint \"p_pkey\""
    );
    assert_eq!(db.detail(), Some("Key (id)=(1) already exists."));
}

#[tokio::test]
async fn transactions_and_portals_over_the_wire() {
    let server = TestServer::start(1);
    let mut client = server.connect().await;
    client
        .batch_execute("create table t (id int primary key, v text); insert into t select n, 'r' || n from generate_series(1, 1000) n")
        .await
        .unwrap();
    let transaction = client.transaction().await.unwrap();
    transaction
        .execute("update t set v = 'changed' where id <= $1", &[&10i32])
        .await
        .unwrap();
    let statement = transaction
        .prepare("select id, v from t where id > $1 order by id")
        .await
        .unwrap();
    let portal = transaction.bind(&statement, &[&990i32]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = transaction.query_portal(&portal, 3).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 3);
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, (991..=1000).collect::<Vec<_>>());
    transaction.rollback().await.unwrap();
    let changed: i64 = client
        .query_one("select count(*) from t where v = 'changed'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(changed, 0);
    let all: Vec<i32> = client
        .query(
            "select id from t where id between 500 and 504 order by id desc",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(all, vec![504, 503, 502, 501, 500]);
}
