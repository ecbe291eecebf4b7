//! Indexes, sequences, foreign keys and other DDL through the session.

mod support;

use support::Node;

#[test]
fn secondary_indexes_are_backfilled_maintained_and_enforced() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, email text, score int)");
    s.exec("insert into t values (1, 'a@x', 10), (2, 'b@x', 20), (3, null, 30), (4, null, 40)");
    s.exec("create unique index t_email on t (email)");
    s.exec("create index t_score on t (score desc)");
    let plan = s
        .query("explain select id from t where email = 'b@x'")
        .join("\n");
    assert!(plan.contains("t@t_email"), "{plan}");
    assert_eq!(s.query("select id from t where email = 'b@x'"), vec!["2"]);
    // NULLs are distinct in a unique index.
    s.exec("insert into t values (5, null, 50)");
    let e = s.error("insert into t values (6, 'a@x', 60)");
    assert_eq!(e.code.code(), "23505");
    assert_eq!(
        e.message,
        "duplicate key value violates unique constraint \"t_email\""
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("Key (email)=(a@x) already exists.")
    );
    // Updates move index entries; the old key is free again.
    s.exec("update t set email = 'c@x' where id = 1");
    assert_eq!(
        s.query("select id from t where email = 'a@x'"),
        Vec::<String>::new()
    );
    assert_eq!(s.query("select id from t where email = 'c@x'"), vec!["1"]);
    s.exec("insert into t values (6, 'a@x', 60)");
    // Range scans on a DESC index.
    let plan = s
        .query("explain select id from t where score >= 30 and score < 50")
        .join("\n");
    assert!(plan.contains("t@t_score"), "{plan}");
    assert_eq!(
        s.query("select id from t where score >= 30 and score < 50 order by id"),
        vec!["3", "4"]
    );
    assert_eq!(
        s.query("select id from t where score > 45 order by score desc"),
        vec!["6", "5"]
    );
    s.exec("delete from t where score > 45");
    assert_eq!(s.query("select count(*) from t where score > 0"), vec!["4"]);
    assert_eq!(
        s.query("select id from t where email = 'a@x'"),
        Vec::<String>::new()
    );
    // A unique index over duplicates cannot be built.
    s.exec("insert into t values (7, 'd@x', 10)");
    let e = s.error("create unique index t_score_u on t (score)");
    assert_eq!(e.code.code(), "23505");
    assert_eq!(e.message, "could not create unique index \"t_score_u\"");
    assert_eq!(e.detail.as_deref(), Some("Key (score)=(10) is duplicated."));
    assert_eq!(s.code("create index t_score on t (id)"), "42P07");
    s.exec("drop index t_email");
    assert_eq!(s.code("drop index t_email"), "42704");
    s.exec("drop index if exists t_email");
    assert_eq!(s.code("drop index t_pkey"), "2BP01");
    assert_eq!(s.query("select id from t where email = 'c@x'"), vec!["1"]);
}

#[test]
fn composite_keys_and_prefix_scans() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table ol (w int, d int, o int, n int, qty int, primary key (w, d, o, n))");
    s.exec(
        "insert into ol select w, d, o, n, w + d + o + n from
           (values (1), (2)) a(w), (values (1), (2)) b(d), (values (1), (2), (3)) c(o), (values (1), (2)) e(n)",
    );
    assert_eq!(
        s.query("select count(*) from ol where w = 1 and d = 2"),
        vec!["6"]
    );
    assert_eq!(
        s.query("select o, n from ol where w = 2 and d = 1 and o >= 2 order by o desc, n desc"),
        vec!["3|2", "3|1", "2|2", "2|1"]
    );
    assert_eq!(
        s.query("select qty from ol where w = 2 and d = 2 and o = 3 and n = 1"),
        vec!["8"]
    );
    let plan = s
        .query("explain select * from ol where w = 1 and d = 2 and o = 3 and n = 1")
        .join("\n");
    assert!(plan.contains("spans: /1/2/3/1"), "{plan}");
    assert_eq!(s.code("insert into ol values (1, 1, 1, 1, 0)"), "23505");
}

#[test]
fn sequences_serial_and_identity() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id serial primary key, v text)");
    s.exec("insert into t (v) values ('a'), ('b')");
    s.exec("insert into t (v) values ('c')");
    assert_eq!(
        s.query("select id, v from t order by id"),
        vec!["1|a", "2|b", "3|c"]
    );
    assert_eq!(s.query("select id from t where v = 'c'"), vec!["3"]);
    s.exec("create sequence s increment by 5 start with 10");
    assert_eq!(s.query("select nextval('s'), nextval('s')"), vec!["10|15"]);
    assert_eq!(s.query("select nextval('s')"), vec!["20"]);
    // Sequences do not roll back.
    s.exec("begin");
    s.query("select nextval('s')");
    s.exec("rollback");
    assert_eq!(s.query("select nextval('s')"), vec!["30"]);
    s.exec("create sequence small maxvalue 2");
    s.query("select nextval('small'), nextval('small')");
    assert_eq!(s.code("select nextval('small')"), "2200H");
    s.exec("create table g (id int generated always as identity primary key, v int)");
    s.exec("insert into g (v) values (7)");
    assert_eq!(s.query("select id, v from g"), vec!["1|7"]);
    assert_eq!(s.code("insert into g values (5, 8)"), "428C9");
    assert_eq!(s.code("select nextval('nope')"), "42P01");
    s.exec("drop table t");
    assert_eq!(s.code("select nextval('t_id_seq')"), "42P01");
}

#[test]
fn foreign_keys_are_enforced_both_ways() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table p (id int primary key, name text)");
    s.exec("create table c (id int primary key, pid int references p (id), note text)");
    s.exec("create table cc (id int primary key, pid int references p on delete cascade)");
    s.exec("insert into p values (1, 'one'), (2, 'two')");
    s.exec("insert into c values (10, 1, 'x'), (11, null, 'y')");
    let e = s.error("insert into c values (12, 3, 'z')");
    assert_eq!(e.code.code(), "23503");
    assert_eq!(
        e.message,
        "insert or update on table \"c\" violates foreign key constraint \"c_pid_fkey\""
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("Key (pid)=(3) is not present in table \"p\".")
    );
    let e = s.error("delete from p where id = 1");
    assert_eq!(e.code.code(), "23503");
    assert_eq!(
        e.message,
        "update or delete on table \"p\" violates foreign key constraint \"c_pid_fkey\" on table \"c\""
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("Key (id)=(1) is still referenced from table \"c\".")
    );
    assert_eq!(s.code("update p set id = 5 where id = 1"), "23503");
    assert_eq!(s.code("update c set pid = 9 where id = 10"), "23503");
    s.exec("insert into cc values (1, 2), (2, 2)");
    s.exec("delete from p where id = 2");
    assert_eq!(s.query("select count(*) from cc"), vec!["0"]);
    // A parent and child inserted by one statement (self reference).
    s.exec("create table tree (id int primary key, parent int references tree (id))");
    s.exec("insert into tree values (1, null), (2, 1), (3, 2)");
    assert_eq!(s.code("insert into tree values (4, 40)"), "23503");
    assert_eq!(s.code("drop table p"), "2BP01");
    assert_eq!(s.code("truncate p"), "0A000");
    s.exec("truncate p, c, cc");
    assert_eq!(s.query("select count(*) from c"), vec!["0"]);
    s.exec("drop table p cascade");
    s.exec("insert into c values (20, 99, 'orphan allowed now')");
}

#[test]
fn databases_and_schemas() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create database shop");
    assert_eq!(s.code("create database shop"), "42P04");
    assert_eq!(s.code("begin; create database x"), "25001");
    s.exec("rollback");
    let mut shop = node.session_in("shop");
    shop.exec("create table items (id int primary key)");
    shop.exec("insert into items values (1)");
    assert_eq!(s.code("select * from items"), "42P01");
    s.exec("create table items (id int primary key, name text)");
    assert_eq!(shop.query("select count(*) from items"), vec!["1"]);
    assert_eq!(s.code("drop database teller"), "55006");
    s.exec("drop database shop");
    assert_eq!(shop.code("select * from items"), "3D000");
    assert_eq!(shop.query("select 1"), vec!["1"]);
    s.exec("create schema app");
    s.exec("create table app.things (id int primary key)");
    s.exec("insert into app.things values (1)");
    assert_eq!(s.query("select id from app.things"), vec!["1"]);
    assert_eq!(s.code("select * from things"), "42P01");
    assert_eq!(s.code("select * from nope.things"), "3F000");
    assert_eq!(s.code("drop schema app"), "2BP01");
}

#[test]
fn column_types_are_fitted_on_write() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, c char(4), v varchar(5), n numeric(5,2))");
    s.exec("insert into t values (1, 'ab', 'abc  ', 1.005)");
    assert_eq!(
        s.query("select c || '|', v || '|', n from t"),
        vec!["ab  ||abc  ||1.01"]
    );
    assert_eq!(s.code("insert into t values (2, 'abcde', 'x', 1)"), "22001");
    let e = s.error("insert into t values (3, 'a', 'x', 1000)");
    assert_eq!(e.code.code(), "22003");
    assert_eq!(e.message, "numeric field overflow");
    // NaN is refused by the exact decimal (a documented divergence).
    assert_eq!(s.code("insert into t values (4, 'a', 'x', 'nan')"), "0A000");
    assert_eq!(
        s.code("insert into t values (2147483648, 'a', 'x', 1)"),
        "22003"
    );
    assert_eq!(s.code("insert into t values ('x', 'a', 'x', 1)"), "22P02");
    assert_eq!(s.code("insert into t (id, n) values (5, true)"), "42804");
    // Assignment converts anything to a string type, as in PostgreSQL.
    s.exec("insert into t (id, c) values (5, 1.5)");
    assert_eq!(s.query("select c from t where id = 5"), vec!["1.5 "]);
}

#[test]
fn insert_on_conflict_and_insert_select() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table kv (k text primary key, v int, u int unique)");
    s.exec("insert into kv values ('a', 1, 1)");
    assert_eq!(
        s.exec("insert into kv values ('a', 2, 2) on conflict do nothing"),
        "INSERT 0 0"
    );
    assert_eq!(
        s.exec("insert into kv values ('b', 2, 1) on conflict do nothing"),
        "INSERT 0 0"
    );
    assert_eq!(
        s.query("insert into kv values ('a', 5, 5) on conflict (k) do update set v = kv.v + excluded.v returning k, v, u"),
        vec!["a|6|1"]
    );
    assert_eq!(
        s.exec("insert into kv values ('a', 0, 0) on conflict (k) do update set v = 0 where kv.v > 100"),
        "INSERT 0 0"
    );
    assert_eq!(
        s.code("insert into kv values ('c', 1, 7), ('c', 2, 8) on conflict (k) do update set v = excluded.v"),
        "21000"
    );
    assert_eq!(
        s.code("insert into kv values ('z', 1, 1) on conflict (v) do nothing"),
        "42P10"
    );
    s.exec("create table copy (k text primary key, v int)");
    assert_eq!(
        s.exec("insert into copy (k, v) select k, v from kv where v > 0"),
        "INSERT 0 1"
    );
    assert_eq!(s.query("select k, v from copy"), vec!["a|6"]);
}

#[test]
fn the_memory_limit_is_a_clean_error() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table big (id int primary key, pad text)");
    let pad = "x".repeat(1000);
    for chunk in 0..4 {
        let values: Vec<String> = (0..100)
            .map(|i| format!("({}, '{pad}')", chunk * 100 + i))
            .collect();
        s.exec(&format!("insert into big values {}", values.join(",")));
    }
    // A cross product of 400 x 400 rows of 1 KB each needs ~160 MB to sort.
    let e = s.error("select a.pad || b.pad from big a, big b order by 1");
    assert_eq!(e.code.code(), "53200");
    assert!(e.message.contains("working memory"), "{}", e.message);
    assert_eq!(s.query("select count(*) from big"), vec!["400"]);
}
