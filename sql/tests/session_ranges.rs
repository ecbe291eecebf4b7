//! `SHOW RANGES [FROM TABLE t]` through the session, over `MemoryKv`: its
//! one range, then a placement set by the test (ranges cut at row keys, a
//! key inside the table that is no row key, ranges shared with other
//! tables, two shards).

mod support;

use bytes::Bytes;
use support::{Node, Sess};
use teller_net::types::Value;
use teller_sql::encoding::key::{index_key, index_prefix, prefix_successor};
use teller_sql::kv::{RangeDescription, Span};

const COLUMNS: [&str; 8] = [
    "range_id",
    "start_key",
    "end_key",
    "shard",
    "generation",
    "approx_bytes",
    "raw_start_key",
    "raw_end_key",
];

/// `range_id|start_key|end_key|shard|generation` of each row.
fn ranges(s: &mut Sess, sql: &str) -> Vec<String> {
    let out = s.run(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let names: Vec<String> = out
        .columns
        .expect("SHOW RANGES describes its columns")
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, COLUMNS);
    assert_eq!(out.tag, "SHOW");
    out.rows
        .iter()
        .map(|r| {
            r[..5]
                .iter()
                .map(support::text)
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// The id of table `name` in the node's catalog.
fn table_id(node: &Node, name: &str) -> u64 {
    let catalog = node.shard.catalog().latest();
    catalog
        .tables
        .values()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no table {name}"))
        .id
}

/// The primary key of row `id` of a table whose key is one BIGINT.
fn row_key(node: &Node, table: u64, id: i64) -> Bytes {
    let catalog = node.shard.catalog().latest();
    let t = catalog.table(table).expect("table");
    let cols = t.key_columns(&t.primary);
    let primary = u64::from(t.primary.id);
    assert_eq!(primary, 1, "the tests name the primary index 1");
    Bytes::from(index_key(table, primary, &[Value::Int8(id)], &cols).expect("a key encodes"))
}

fn range(id: u64, start: Bytes, end: Option<Bytes>, shard: usize) -> RangeDescription {
    RangeDescription {
        range_id: id,
        span: Span { start, end },
        shard,
        generation: id + 10,
        approx_bytes: Some(id * 1000),
    }
}

#[test]
fn one_range_holds_everything_in_the_double() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table accounts (id bigint primary key, balance bigint)");
    s.exec("insert into accounts values (1, 10), (2, 20)");
    assert_eq!(ranges(&mut s, "SHOW RANGES"), vec!["1|/Min|/Max|0|0"]);
    assert_eq!(
        ranges(&mut s, "show ranges from table accounts"),
        vec!["1|<before:/Min>|<after:/Max>|0|0"]
    );
    // Qualified names resolve as in SELECT; the raw bounds and the size
    // come along.
    let out = s
        .run("SHOW RANGES FROM TABLE teller.public.accounts")
        .unwrap();
    assert_eq!(out.rows.len(), 1);
    let row = &out.rows[0];
    assert_eq!(row[6], Value::Bytea(Vec::new()));
    assert_eq!(row[7], Value::Null);
    match &row[5] {
        Value::Int8(bytes) => assert!(*bytes > 0, "size {bytes}"),
        other => panic!("approx_bytes {other:?}"),
    }
}

#[test]
fn bounds_read_as_primary_keys_of_the_table() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table a (id bigint primary key)");
    s.exec("create table t (id bigint primary key, balance bigint)");
    let (a, t) = (table_id(&node, "a"), table_id(&node, "t"));
    let t_start = Bytes::from(index_prefix(t, 1));
    let t_end = Bytes::from(prefix_successor(&index_prefix(t, 1)).expect("a successor"));
    // A key inside t's index that is no whole row key: the prefix of row
    // 500's key with one byte cut off.
    let row500 = row_key(&node, t, 500);
    let partial = row500.slice(..row500.len() - 1);
    node.kv.set_ranges(vec![
        range(1, Bytes::new(), Some(row_key(&node, a, 7)), 0),
        range(2, row_key(&node, a, 7), Some(t_start.clone()), 1),
        range(3, t_start, Some(row_key(&node, t, -5)), 1),
        range(4, row_key(&node, t, -5), Some(row_key(&node, t, 100)), 0),
        range(5, row_key(&node, t, 100), Some(partial.clone()), 1),
        range(6, partial, Some(t_end.clone()), 0),
        range(7, t_end, None, 1),
    ]);
    assert_eq!(
        ranges(&mut s, "show ranges from table t"),
        vec![
            "3|/Min|/-5|1|13",
            "4|/-5|/100|0|14",
            format!("5|/100|\\x{}|1|15", hex(&row500[..row500.len() - 1])).as_str(),
            format!("6|\\x{}|/Max|0|16", hex(&row500[..row500.len() - 1])).as_str(),
        ]
    );
    // Table a shares its last range with the gap before t.
    assert_eq!(
        ranges(&mut s, "show ranges from table a"),
        vec![
            "1|<before:/Min>|/7|0|11",
            format!("2|/7|<after:/Table/{t}/1>|1|12").as_str(),
        ]
    );
    let all = ranges(&mut s, "show ranges");
    assert_eq!(all.len(), 7);
    assert_eq!(all[0], format!("1|/Min|/Table/{a}/1/7|0|11"));
    assert_eq!(all[6], format!("7|/Table/{t}/2|/Max|1|17"));
}

#[test]
fn range_ids_beyond_int8_are_exact() {
    let node = Node::new();
    let mut s = node.session();
    let mut huge = range(1, Bytes::new(), None, 3);
    huge.range_id = u64::MAX;
    huge.generation = u64::MAX;
    node.kv.set_ranges(vec![huge]);
    assert_eq!(
        ranges(&mut s, "show ranges"),
        vec![format!("{}|/Min|/Max|3|{}", u64::MAX, i64::MAX)]
    );
}

#[test]
fn bad_forms_and_names_fail_clearly() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key)");
    s.exec("create view v as select id from t");
    for (sql, code) in [
        ("show ranges from t", "42601"),
        ("show ranges from table", "42601"),
        ("show ranges for table t", "42601"),
        ("show ranges from table a.b.c.d", "42601"),
        ("show ranges from table nope", "42P01"),
        ("show ranges from table nope.t", "3F000"),
        ("show ranges from table other.public.t", "0A000"),
        ("show ranges from table v", "42809"),
    ] {
        assert_eq!(s.code(sql), code, "{sql}");
    }
    let e = s.error("show ranges from table nope");
    assert_eq!(e.message, "relation \"nope\" does not exist");
    // A quoted name keeps its case.
    s.exec("create table \"Mixed\" (id int primary key)");
    assert_eq!(ranges(&mut s, "show ranges from table \"Mixed\"").len(), 1);
    assert_eq!(s.code("show ranges from table mixed"), "42P01");
    // SHOW of variables still works beside it.
    assert_eq!(
        s.query("show transaction isolation level"),
        vec!["serializable"]
    );
}

#[test]
fn show_ranges_runs_inside_a_transaction_block() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key)");
    s.exec("begin");
    s.exec("insert into t values (1)");
    assert_eq!(ranges(&mut s, "show ranges from table t").len(), 1);
    s.exec("commit");
    assert_eq!(s.query("select count(*) from t"), vec!["1"]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
