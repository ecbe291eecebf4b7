//! SELECT ... FOR UPDATE / FOR SHARE through the KV locking-read extension.

mod support;

use support::Node;

#[test]
fn for_update_locks_rows_until_the_transaction_ends() {
    let node = Node::new();
    let mut a = node.session();
    let mut b = node.session();
    a.exec("create table t (id int primary key, v int)");
    a.exec("insert into t values (1, 10), (2, 20), (3, 30)");
    a.exec("begin");
    assert_eq!(
        a.query("select v from t where id = 1 for update"),
        vec!["10"]
    );
    let e = b.error("select * from t where id = 1 for update nowait");
    assert_eq!(e.code.code(), "55P03");
    assert_eq!(e.message, "could not obtain lock on row in relation \"t\"");
    assert_eq!(
        b.query("select id from t order by id for update skip locked"),
        vec!["2", "3"]
    );
    assert_eq!(
        b.query("select id from t order by id limit 1 for update skip locked"),
        vec!["2"]
    );
    // A writer of a locked row cannot go ahead (the test KV cannot wait).
    assert_eq!(b.code("update t set v = 11 where id = 1"), "40001");
    // Plain reads are not blocked.
    assert_eq!(b.query("select v from t where id = 1"), vec!["10"]);
    a.exec("update t set v = 12 where id = 1");
    a.exec("commit");
    assert_eq!(
        b.query("select v from t where id = 1 for update nowait"),
        vec!["12"]
    );
}

#[test]
fn for_share_locks_coexist() {
    let node = Node::new();
    let mut a = node.session();
    let mut b = node.session();
    a.exec("create table t (id int primary key, v int)");
    a.exec("insert into t values (1, 10)");
    a.exec("begin");
    b.exec("begin");
    assert_eq!(a.query("select v from t for share"), vec!["10"]);
    assert_eq!(b.query("select v from t for share nowait"), vec!["10"]);
    assert_eq!(b.code("select v from t for update nowait"), "55P03");
    b.exec("rollback");
    a.exec("commit");
}

#[test]
fn locks_through_secondary_indexes_lock_the_rows() {
    let node = Node::new();
    let mut a = node.session();
    let mut b = node.session();
    a.exec("create table t (id int primary key, k text)");
    a.exec("create index t_k on t (k)");
    a.exec("insert into t values (1, 'x'), (2, 'y')");
    a.exec("begin");
    assert_eq!(
        a.query("select id from t where k = 'x' for update"),
        vec!["1"]
    );
    assert_eq!(
        b.code("select id from t where id = 1 for update nowait"),
        "55P03"
    );
    assert_eq!(
        b.query("select id from t where id = 2 for update nowait"),
        vec!["2"]
    );
    a.exec("rollback");
    assert_eq!(b.code("select count(*) from t for update"), "0A000");
    assert_eq!(b.code("select id from t for update of nope"), "42P01");
}
