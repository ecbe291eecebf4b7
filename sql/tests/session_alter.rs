//! ALTER TABLE.

mod support;

use support::Node;

#[test]
fn add_and_drop_columns_without_rewriting_rows() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, a text)");
    s.exec("insert into t values (1, 'x'), (2, 'y')");
    s.exec("alter table t add column b int default 7");
    s.exec("alter table t add column c text");
    assert_eq!(
        s.query("select id, a, b, c from t order by id"),
        vec!["1|x|7|NULL", "2|y|7|NULL"]
    );
    s.exec("insert into t (id, a) values (3, 'z')");
    assert_eq!(s.query("select b from t where id = 3"), vec!["7"]);
    s.exec("alter table t alter column b set default 9");
    s.exec("insert into t (id) values (4)");
    assert_eq!(
        s.query("select b from t order by id"),
        vec!["7", "7", "7", "9"]
    );
    s.exec("alter table t drop column a");
    assert_eq!(s.query("select * from t where id = 1"), vec!["1|7|NULL"]);
    assert_eq!(s.code("select a from t"), "42703");
    // A column added again under the same name is a new column.
    s.exec("alter table t add column a text");
    assert_eq!(s.query("select a from t where id = 1"), vec!["NULL"]);
    assert_eq!(s.code("alter table t add column b int"), "42701");
    s.exec("alter table t add column if not exists b int");
    assert_eq!(s.code("alter table t drop column id"), "2BP01");
    assert_eq!(s.code("alter table t drop column nope"), "42703");
    assert_eq!(s.code("alter table t add column d int not null"), "23502");
    s.exec("alter table t add column d int not null default 0");
    assert_eq!(s.query("select count(*) from t where d = 0"), vec!["4"]);
}

#[test]
fn add_serial_column_fills_existing_rows() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (k text primary key)");
    s.exec("insert into t values ('a'), ('b'), ('c')");
    s.exec("alter table t add column n serial");
    assert_eq!(
        s.query("select k, n from t order by k"),
        vec!["a|1", "b|2", "c|3"]
    );
    s.exec("insert into t (k) values ('d')");
    assert_eq!(s.query("select n from t where k = 'd'"), vec!["4"]);
}

#[test]
fn add_primary_key_rekeys_the_table() {
    let node = Node::new();
    let mut s = node.session();
    // The pgbench way: create without keys, load, then add the key.
    s.exec("create table acc (aid int not null, bid int, abalance int, filler char(84))");
    s.exec("create index acc_bid on acc (bid)");
    s.exec("insert into acc (aid, bid, abalance) values (3, 1, 30), (1, 1, 10), (2, 2, 20)");
    s.exec("alter table acc add primary key (aid)");
    let plan = s
        .query("explain select abalance from acc where aid = 2")
        .join("\n");
    assert!(plan.contains("acc@acc_pkey spans: /2"), "{plan}");
    assert_eq!(
        s.query("select abalance from acc where aid = 2"),
        vec!["20"]
    );
    assert_eq!(
        s.query("select aid from acc where bid = 1 order by aid"),
        vec!["1", "3"]
    );
    assert_eq!(s.code("insert into acc (aid) values (1)"), "23505");
    let out = s.run("select * from acc where aid = 1").unwrap();
    assert_eq!(out.columns.unwrap().len(), 4);
    assert_eq!(s.code("alter table acc add primary key (bid)"), "42P16");
    s.exec("create table dup (a int)");
    s.exec("insert into dup values (1), (1)");
    let e = s.error("alter table dup add primary key (a)");
    assert_eq!(e.code.code(), "23505");
    assert_eq!(e.message, "could not create unique index \"dup_pkey\"");
    assert_eq!(e.detail.as_deref(), Some("Key (a)=(1) is duplicated."));
    s.exec("create table nul (a int)");
    s.exec("insert into nul values (null)");
    assert_eq!(s.code("alter table nul add primary key (a)"), "23502");
}

#[test]
fn constraints_are_validated_when_added() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table p (id int primary key)");
    s.exec("create table t (id int primary key, v int, pid int)");
    s.exec("insert into p values (1)");
    s.exec("insert into t values (1, 5, 1), (2, -1, 9)");
    let e = s.error("alter table t add constraint v_pos check (v > 0)");
    assert_eq!(e.code.code(), "23514");
    assert_eq!(
        e.message,
        "check constraint \"v_pos\" of relation \"t\" is violated by some row"
    );
    assert_eq!(
        s.code("alter table t add foreign key (pid) references p"),
        "23503"
    );
    s.exec("update t set v = 1, pid = 1 where id = 2");
    s.exec("alter table t add constraint v_pos check (v > 0)");
    s.exec("alter table t add foreign key (pid) references p");
    assert_eq!(s.code("insert into t values (3, 0, 1)"), "23514");
    assert_eq!(s.code("insert into t values (3, 1, 7)"), "23503");
    s.exec("alter table t add constraint v_unique unique (v)");
    assert_eq!(s.code("insert into t values (3, 1, 1)"), "23505");
    s.exec("alter table t drop constraint v_unique");
    s.exec("insert into t values (3, 1, 1)");
    s.exec("alter table t drop constraint v_pos");
    s.exec("insert into t values (4, 0, 1)");
    assert_eq!(s.code("alter table t drop constraint nope"), "42704");
    s.exec("alter table t alter column v set not null");
    assert_eq!(s.code("insert into t values (5, null, 1)"), "23502");
    s.exec("alter table t alter column v drop not null");
    s.exec("insert into t values (5, null, 1)");
    assert_eq!(
        s.code("alter table t alter column id drop not null"),
        "42P16"
    );
}

#[test]
fn renames() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, v int check (v > 0))");
    s.exec("insert into t values (1, 1)");
    s.exec("alter table t rename column v to w");
    assert_eq!(s.query("select w from t"), vec!["1"]);
    assert_eq!(s.code("insert into t values (2, 0)"), "23514");
    s.exec("alter table t rename to u");
    assert_eq!(s.query("select w from u"), vec!["1"]);
    assert_eq!(s.code("select * from t"), "42P01");
}

#[test]
fn add_primary_key_streams_over_many_batches() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("CREATE TABLE big (k int NOT NULL, v text)");
    s.exec("CREATE INDEX big_v ON big (v)");
    s.exec("INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 3000) g");
    s.exec("ALTER TABLE big ADD PRIMARY KEY (k)");
    assert_eq!(
        s.query("SELECT count(*), sum(k) FROM big"),
        ["3000|4501500"]
    );
    assert_eq!(s.query("SELECT v FROM big WHERE k = 2999"), ["v2999"]);
    assert_eq!(s.query("SELECT k FROM big WHERE v = 'v1234'"), ["1234"]);
    s.exec("ALTER TABLE big ADD COLUMN n int DEFAULT 7");
    s.exec("ALTER TABLE big ADD CONSTRAINT n_small CHECK (n < 8)");
    assert_eq!(s.query("SELECT sum(n) FROM big"), ["21000"]);

    // A duplicate far apart from its twin is found.
    s.exec("CREATE TABLE dup (k int NOT NULL)");
    s.exec("INSERT INTO dup SELECT g FROM generate_series(1, 2500) g");
    s.exec("INSERT INTO dup VALUES (3)");
    let e = s.error("ALTER TABLE dup ADD PRIMARY KEY (k)");
    assert_eq!(e.code.code(), "23505");
    assert_eq!(e.detail.as_deref(), Some("Key (k)=(3) is duplicated."));
    assert_eq!(s.query("SELECT count(*) FROM dup"), ["2501"]);
}

/// The engine refuses a write batch past its Raft entry limit (8 MiB, about
/// 70,000 pgbench rows), so re-keying must write in bounded batches: the old
/// rows go with each batch of new ones, not in one DeleteRange at the end
/// (`pgbench -i` failed with "a write batch of 11300005 bytes exceeds the
/// Raft entry limit" at scale 1).
#[test]
fn add_primary_key_writes_bounded_batches() {
    /// Keys one re-key batch writes: 1024 new rows and 1024 old ones.
    const REKEY_BATCH_KEYS: u64 = 2 * 1024;
    let node = Node::new();
    let mut s = node.session();
    s.exec("CREATE TABLE acc (aid int NOT NULL, abalance int)");
    s.exec("INSERT INTO acc SELECT g, g % 7 FROM generate_series(1, 2000) g");
    s.exec("INSERT INTO acc SELECT g, g % 7 FROM generate_series(2001, 4000) g");
    let before = node.kv.dump().len();
    node.kv.set_batch_writes_max(Some(REKEY_BATCH_KEYS));
    s.exec("ALTER TABLE acc ADD PRIMARY KEY (aid)");
    node.kv.set_batch_writes_max(None);
    assert_eq!(
        s.query("SELECT count(*), sum(aid), sum(abalance) FROM acc"),
        ["4000|8002000|11997"]
    );
    assert_eq!(s.query("SELECT abalance FROM acc WHERE aid = 3999"), ["2"]);
    // No old row is left behind: the data took as many keys as before
    // (catalog rows change, they do not multiply).
    let after = node.kv.dump().len();
    assert!(
        after.abs_diff(before) < 100,
        "{before} keys before, {after} after"
    );
}

/// TRUNCATE, DROP INDEX, DROP TABLE and DROP DATABASE delete a table's
/// data a page at a time: one DeleteRange over a whole table is one write
/// batch, which the engine refuses past its Raft entry limit (`DROP TABLE`
/// of pgbench's 200,000-row accounts table failed with "a write batch of
/// 19018468 bytes exceeds the Raft entry limit").
#[test]
fn truncate_and_drop_delete_in_bounded_batches() {
    /// Keys one batch may write here: less than any of the tables below.
    const BATCH_KEYS: u64 = 5_000;
    let node = Node::new();
    let mut s = node.session();
    let empty = node.kv.dump().len();
    s.exec("CREATE TABLE t (k int PRIMARY KEY, v text)");
    s.exec("CREATE INDEX t_v ON t (v)");
    s.exec("CREATE TABLE u (k int PRIMARY KEY)");
    for part in 0..3 {
        let (from, to) = (part * 4_000 + 1, part * 4_000 + 4_000);
        s.exec(&format!(
            "INSERT INTO t SELECT g, 'v' || g FROM generate_series({from}, {to}) g"
        ));
        s.exec(&format!(
            "INSERT INTO u SELECT g FROM generate_series({from}, {to}) g"
        ));
    }
    // One batch over a whole table's rows would be refused
    // (`batch_writes_max_counts_every_key_a_delete_range_deletes`).
    node.kv.set_batch_writes_max(Some(BATCH_KEYS));

    s.exec("TRUNCATE u");
    assert_eq!(s.query("SELECT count(*) FROM u"), ["0"]);
    s.exec("DROP INDEX t_v");
    assert_eq!(s.query("SELECT count(*), max(v) FROM t"), ["12000|v9999"]);
    s.exec("CREATE DATABASE other");
    let mut o = node.session_in("other");
    o.exec("CREATE TABLE w (k int PRIMARY KEY)");
    o.exec("INSERT INTO w SELECT g FROM generate_series(1, 4000) g");
    o.exec("INSERT INTO w SELECT g FROM generate_series(4001, 8000) g");
    s.exec("BEGIN");
    s.exec("DROP TABLE t");
    s.exec("DROP TABLE u");
    s.exec("COMMIT");
    s.exec("DROP DATABASE other");
    node.kv.set_batch_writes_max(None);
    // Every row went: only catalog rows (a few more than at the start:
    // descriptor ids, the catalog version) are left.
    let after = node.kv.dump().len();
    assert!(
        after < empty + 20,
        "{empty} keys at the start, {after} after"
    );
}
