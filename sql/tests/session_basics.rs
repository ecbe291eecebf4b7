//! Tables through the session: DDL, DML, queries, transactions.

mod support;

use support::Node;
use teller_net::types::Value;

#[test]
fn create_insert_select_round_trip() {
    let node = Node::new();
    let mut s = node.session();
    assert_eq!(
        s.exec("create table accounts (id int primary key, owner text not null, balance numeric(12,2) default 0)"),
        "CREATE TABLE"
    );
    assert_eq!(
        s.exec("insert into accounts values (1, 'ann', 10.5), (2, 'bob', 20), (3, 'cy', default)"),
        "INSERT 0 3"
    );
    assert_eq!(
        s.query("select id, owner, balance from accounts order by id"),
        vec!["1|ann|10.50", "2|bob|20.00", "3|cy|0.00"]
    );
    assert_eq!(
        s.query("select owner from accounts where id = 2"),
        vec!["bob"]
    );
    assert_eq!(
        s.query("select count(*), sum(balance) from accounts"),
        vec!["3|30.50"]
    );
    let out = s
        .run("select * from accounts where id >= 2 order by id desc")
        .unwrap();
    let names: Vec<_> = out
        .columns
        .unwrap()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, vec!["id", "owner", "balance"]);
    assert_eq!(out.rows.len(), 2);
    assert_eq!(out.rows[0][0], Value::Int4(3));
}

#[test]
fn multi_statement_simple_query_binds_each_statement_in_turn() {
    let node = Node::new();
    let mut s = node.session();
    let out = s
        .run("create table t (a int); insert into t values (1), (2); select sum(a) from t")
        .unwrap();
    assert_eq!(out.tag, "SELECT 1");
    assert_eq!(out.rows, vec![vec![Value::Int8(3)]]);
}

#[test]
fn data_is_shared_between_sessions_and_ddl_is_seen() {
    let node = Node::new();
    let mut a = node.session();
    let mut b = node.session();
    a.exec("create table kv (k text primary key, v int)");
    a.exec("insert into kv values ('x', 1)");
    assert_eq!(b.query("select v from kv where k = 'x'"), vec!["1"]);
    b.exec("drop table kv");
    assert_eq!(a.code("select * from kv"), "42P01");
}

#[test]
fn update_and_delete_with_returning() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, v int)");
    s.exec("insert into t select 1, 10 union all select 2, 20 union all select 3, 30");
    assert_eq!(
        s.query("update t set v = v + 1 where id > 1 returning id, v"),
        vec!["2|21", "3|31"]
    );
    assert_eq!(s.exec("update t set v = 0 where id = 99"), "UPDATE 0");
    assert_eq!(
        s.query("delete from t where v > 25 returning *"),
        vec!["3|31"]
    );
    assert_eq!(
        s.query("select id, v from t order by id"),
        vec!["1|10", "2|21"]
    );
    assert_eq!(s.exec("delete from t"), "DELETE 2");
    assert!(s.query("select * from t").is_empty());
}

#[test]
fn primary_key_updates_move_rows() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, v text)");
    s.exec("insert into t values (1, 'a'), (2, 'b')");
    s.exec("update t set id = id + 10");
    assert_eq!(
        s.query("select id, v from t order by id"),
        vec!["11|a", "12|b"]
    );
    assert_eq!(
        s.query("select v from t where id = 1"),
        Vec::<String>::new()
    );
}

#[test]
fn constraint_errors_have_postgres_codes_and_messages() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, name varchar(3) not null, n int check (n > 0))");
    s.exec("insert into t values (1, 'a', 1)");
    let e = s.error("insert into t values (1, 'b', 2)");
    assert_eq!(e.code.code(), "23505");
    assert_eq!(
        e.message,
        "duplicate key value violates unique constraint \"t_pkey\""
    );
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(1) already exists."));
    let e = s.error("insert into t values (2, null, 2)");
    assert_eq!(e.code.code(), "23502");
    assert_eq!(
        e.message,
        "null value in column \"name\" of relation \"t\" violates not-null constraint"
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("Failing row contains (2, null, 2).")
    );
    let e = s.error("insert into t values (3, 'c', 0)");
    assert_eq!(e.code.code(), "23514");
    assert_eq!(
        e.message,
        "new row for relation \"t\" violates check constraint \"t_n_check\""
    );
    assert_eq!(s.code("insert into t values (4, 'long', 1)"), "22001");
    assert_eq!(s.code("insert into t values (5, 'x', 'y')"), "22P02");
    assert_eq!(s.code("insert into nope values (1)"), "42P01");
    assert_eq!(s.code("insert into t (nope) values (1)"), "42703");
    assert_eq!(s.code("select nope from t"), "42703");
    assert_eq!(s.code("create table t (a int)"), "42P07");
    assert_eq!(s.code("insert into t values (1, 'a', 1, 4)"), "42601");
    // Nothing of the failed statements was written.
    assert_eq!(s.query("select count(*) from t"), vec!["1"]);
}

#[test]
fn tables_without_a_primary_key_get_a_hidden_rowid() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table log (msg text)");
    s.exec("insert into log values ('a'), ('a'), ('b')");
    let out = s.run("select * from log order by msg").unwrap();
    assert_eq!(out.columns.unwrap().len(), 1);
    assert_eq!(out.rows.len(), 3);
    assert_eq!(s.query("select count(distinct rowid) from log"), vec!["3"]);
}

#[test]
fn transaction_blocks_commit_and_roll_back() {
    let node = Node::new();
    let mut s = node.session();
    let mut other = node.session();
    s.exec("create table t (id int primary key)");
    s.exec("begin");
    s.exec("insert into t values (1)");
    assert_eq!(s.query("select count(*) from t"), vec!["1"]);
    assert_eq!(other.query("select count(*) from t"), vec!["0"]);
    s.exec("commit");
    assert_eq!(other.query("select count(*) from t"), vec!["1"]);
    s.exec("begin");
    s.exec("insert into t values (2)");
    s.exec("rollback");
    assert_eq!(s.query("select count(*) from t"), vec!["1"]);
    // A failed block refuses statements and rolls back at COMMIT.
    s.exec("begin");
    s.exec("insert into t values (3)");
    assert_eq!(s.code("insert into t values (1)"), "23505");
    assert_eq!(s.code("select 1"), "25P02");
    assert_eq!(s.exec("commit"), "ROLLBACK");
    assert_eq!(s.query("select id from t order by id"), vec!["1"]);
}

#[test]
fn ddl_in_a_block_is_private_until_commit() {
    let node = Node::new();
    let mut s = node.session();
    let mut other = node.session();
    s.exec("begin");
    s.exec("create table t (id int primary key)");
    s.exec("insert into t values (7)");
    assert_eq!(s.query("select id from t"), vec!["7"]);
    assert_eq!(other.code("select * from t"), "42P01");
    s.exec("commit");
    assert_eq!(other.query("select id from t"), vec!["7"]);
    s.exec("begin");
    s.exec("drop table t");
    s.exec("rollback");
    assert_eq!(other.query("select id from t"), vec!["7"]);
}

#[test]
fn write_conflicts_are_serialization_failures() {
    let node = Node::new();
    let mut a = node.session();
    let mut b = node.session();
    a.exec("create table t (id int primary key, v int)");
    a.exec("insert into t values (1, 0)");
    a.exec("begin");
    b.exec("begin");
    a.exec("update t set v = 1 where id = 1");
    // b's UPDATE reads the row with a lock (at every isolation level) and
    // meets a's: the in-memory KV does not queue, it fails the statement
    // with 40001 (PostgreSQL fails it the same way once a commits).
    let e = b.error("update t set v = 2 where id = 1");
    assert_eq!(e.code.code(), "40001");
    a.exec("commit");
    assert_eq!(b.error("select 1").code.code(), "25P02");
    b.exec("rollback");
    assert_eq!(b.query("select v from t"), vec!["1"]);
}

#[test]
fn portals_stream_rows_in_steps() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key)");
    s.exec("insert into t select * from (values (1),(2),(3),(4),(5),(6),(7)) v");
    let out = s
        .run_params("select id from t order by id", Vec::new(), 3)
        .unwrap();
    assert_eq!(out.tag, "SELECT 7");
    assert_eq!(out.rows.len(), 7);
    let out = s
        .run_params(
            "select id from t where id > $1 order by id",
            vec![Value::Int4(4)],
            2,
        )
        .unwrap();
    let ids: Vec<_> = out.rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, vec![Value::Int4(5), Value::Int4(6), Value::Int4(7)]);
}

#[test]
fn constant_queries_still_work() {
    let node = Node::new();
    let mut s = node.session();
    assert_eq!(s.query("select 1 + 1, 'a' || 'b'"), vec!["2|ab"]);
    assert_eq!(s.query("values (1), (2) limit 1 offset 1"), vec!["2"]);
    assert_eq!(s.query("select 1 where false"), Vec::<String>::new());
    assert_eq!(s.code("select 1/0"), "22012");
    assert_eq!(s.code("select 1 limit -1"), "2201W");
}

#[test]
fn sql_prepare_execute_and_deallocate() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, v text)");
    assert_eq!(
        s.exec("prepare ins (int, text) as insert into t values ($1, $2)"),
        "PREPARE"
    );
    assert_eq!(s.exec("execute ins (1, 'a')"), "INSERT 0 1");
    assert_eq!(s.exec("execute ins(2, 'b')"), "INSERT 0 1");
    s.exec("prepare get as select v from t where id = $1");
    let out = s.run("execute get (2)").unwrap();
    assert_eq!(out.columns.unwrap()[0].name, "v");
    assert_eq!(out.tag, "SELECT 1");
    assert_eq!(s.query("execute get(1)"), vec!["a"]);
    assert_eq!(s.code("prepare get as select 1"), "42P05");
    assert_eq!(s.code("execute nope"), "26000");
    assert_eq!(s.code("execute get (1, 2)"), "42601");
    assert_eq!(s.code("execute ins ('x', 'y')"), "22P02");
    s.exec("deallocate get");
    assert_eq!(s.code("execute get (1)"), "26000");
    s.exec("deallocate all");
    assert_eq!(s.code("execute ins (3, 'c')"), "26000");
}

#[test]
fn generate_series_vacuum_and_the_pgbench_load() {
    let node = Node::new();
    let mut s = node.session();
    assert_eq!(
        s.query("select * from generate_series(1, 3)"),
        vec!["1", "2", "3"]
    );
    assert_eq!(
        s.query("select x from generate_series(10, 1, -4) as g(x)"),
        vec!["10", "6", "2"]
    );
    assert_eq!(
        s.query("select count(*), sum(n) from generate_series(1, 1000) n"),
        vec!["1000|500500"]
    );
    assert_eq!(s.code("select * from generate_series(1, 3, 0)"), "22023");
    // pgbench -i -I dtGvp, at scale 0.01.
    s.exec(
        "drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
    );
    s.exec("create table pgbench_history(tid int,bid int,aid int,delta int,mtime timestamp,filler char(22))");
    s.exec("create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)");
    s.exec("create table pgbench_accounts(aid int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)");
    s.exec("create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)");
    s.exec("begin");
    s.exec("truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers");
    s.exec("insert into pgbench_branches(bid,bbalance) select bid, 0 from generate_series(1, 1) as bid");
    s.exec("insert into pgbench_tellers(tid,bid,tbalance) select tid, (tid - 1) / 10 + 1, 0 from generate_series(1, 10) as tid");
    s.exec("insert into pgbench_accounts(aid,bid,abalance,filler) select aid, (aid - 1) / 100000 + 1, 0, '' from generate_series(1, 1000) as aid");
    s.exec("commit");
    assert_eq!(s.exec("vacuum analyze pgbench_branches"), "VACUUM");
    assert_eq!(s.exec("vacuum"), "VACUUM");
    s.exec("alter table pgbench_branches add primary key (bid)");
    s.exec("alter table pgbench_tellers add primary key (tid)");
    s.exec("alter table pgbench_accounts add primary key (aid)");
    // One pgbench TPC-B transaction.
    s.exec("begin");
    s.exec("update pgbench_accounts set abalance = abalance + 5 where aid = 7");
    assert_eq!(
        s.query("select abalance from pgbench_accounts where aid = 7"),
        vec!["5"]
    );
    s.exec("update pgbench_tellers set tbalance = tbalance + 5 where tid = 3");
    s.exec("update pgbench_branches set bbalance = bbalance + 5 where bid = 1");
    s.exec("insert into pgbench_history (tid, bid, aid, delta, mtime) values (3, 1, 7, 5, current_timestamp)");
    s.exec("end");
    assert_eq!(
        s.query("select count(*), sum(abalance) from pgbench_accounts"),
        vec!["1000|5"]
    );
    let plan = s
        .query("explain select abalance from pgbench_accounts where aid = 7")
        .join("\n");
    assert!(plan.contains("spans: /7"), "{plan}");
}

#[test]
fn a_shard_with_a_stale_catalog_catches_up() {
    // Two shards' SQL state over one store, as the routed KV client will
    // give them: DDL on one is seen by the other's next statements.
    let node = Node::new();
    let other_shard = support::Node {
        kv: node.kv.clone(),
        shard: teller_sql::SqlShard::new(),
        now: node.now.clone(),
    };
    let mut a = node.session();
    let mut b = other_shard.session();
    a.exec("create table t (id int primary key, v int)");
    a.exec("insert into t values (1, 1)");
    // B's shard has not seen the table: the first Parse fails, and the
    // failure makes the session refresh its shard's catalog.
    assert_eq!(b.code("select count(*) from t"), "42P01");
    b.exec("select 1");
    assert_eq!(b.query("select count(*) from t"), vec!["1"]);
    // A schema change under a statement planned against the cached catalog
    // is caught by its first batch; the statement runs again.
    a.exec("alter table t add column w int default 5");
    assert_eq!(b.exec("insert into t (id, v) values (2, 2)"), "INSERT 0 1");
    assert_eq!(
        a.query("select id, w from t order by id"),
        vec!["1|5", "2|5"]
    );
    b.exec("select 1");
    let out = b.run("select * from t where id = 2").unwrap();
    assert_eq!(out.columns.unwrap().len(), 3);
}
