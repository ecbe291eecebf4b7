//! Views: CREATE [OR REPLACE] VIEW, reading them, DROP VIEW, dependencies
//! on the tables they read, and their catalog rows.

mod support;

use support::{Node, Sess};

fn setup() -> Sess {
    let node = Node::new();
    let mut s = node.session();
    s.exec(
        "CREATE TABLE t (id int PRIMARY KEY, name text, amount numeric(8,2), extra int);
         INSERT INTO t VALUES (1, 'a', 10.5, 0), (2, 'b', 20, 0), (3, 'c', NULL, 0)",
    );
    s
}

#[test]
fn views_read_like_tables() {
    let mut s = setup();
    assert_eq!(
        s.exec("CREATE VIEW big AS SELECT id, name, amount FROM t WHERE amount > 15"),
        "CREATE VIEW"
    );
    assert_eq!(s.query("SELECT * FROM big"), ["2|b|20.00"]);
    // Column names from a list, the rest from the query; joins; aliases.
    s.exec("CREATE VIEW named (k, label) AS SELECT id, upper(name), 'x' AS tag FROM t");
    assert_eq!(
        s.query(
            "SELECT v.k, v.label, v.tag, t.amount FROM named v JOIN t ON t.id = v.k ORDER BY 1"
        ),
        ["1|A|x|10.50", "2|B|x|20.00", "3|C|x|NULL"]
    );
    let out = s.run("SELECT * FROM named WHERE k = 1").unwrap();
    let columns = out.columns.unwrap();
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["k", "label", "tag"]);
    // An untyped literal column is text.
    assert_eq!(columns[2].ty, teller_net::types::Type::Text);
    // Views over views, aggregates, ORDER BY and LIMIT inside.
    s.exec("CREATE VIEW totals AS SELECT count(*) AS n, sum(amount) AS total FROM t");
    s.exec("CREATE VIEW top1 AS SELECT k, label FROM named ORDER BY k DESC LIMIT 1");
    assert_eq!(s.query("SELECT * FROM totals"), ["3|30.50"]);
    assert_eq!(s.query("SELECT * FROM top1"), ["3|C"]);
    assert_eq!(
        s.query("SELECT label FROM top1 WHERE k IN (SELECT id FROM big UNION SELECT 3)"),
        ["C"]
    );
    // The statement's WITH names do not reach into a view.
    assert_eq!(
        s.query("WITH t AS (SELECT 99 AS id) SELECT count(*) FROM big"),
        ["1"]
    );
    // New rows show through.
    s.exec("INSERT INTO t VALUES (4, 'd', 100, 0)");
    assert_eq!(s.query("SELECT id FROM big ORDER BY id"), ["2", "4"]);
    // Another session sees the view; a rolled-back one never existed.
    let mut other = s;
    other.exec("BEGIN");
    other.exec("CREATE VIEW gone AS SELECT 1 AS one");
    assert_eq!(other.query("SELECT * FROM gone"), ["1"]);
    other.exec("ROLLBACK");
    assert_eq!(other.code("SELECT * FROM gone"), "42P01");
}

#[test]
fn create_view_errors_and_replace() {
    let mut s = setup();
    s.exec("CREATE VIEW v AS SELECT id, name FROM t");
    let cases = [
        ("CREATE VIEW v AS SELECT 1", "42P07"),
        ("CREATE VIEW t AS SELECT 1", "42P07"),
        ("CREATE OR REPLACE VIEW t AS SELECT 1", "42809"),
        ("CREATE VIEW w AS SELECT * FROM nope", "42P01"),
        ("CREATE VIEW w (a, b, c) AS SELECT 1, 2", "42601"),
        ("CREATE VIEW w (a, a) AS SELECT 1, 2", "42701"),
        ("CREATE VIEW w AS SELECT id, id FROM t", "42701"),
        ("CREATE MATERIALIZED VIEW w AS SELECT 1", "0A000"),
        ("CREATE TEMPORARY VIEW w AS SELECT 1", "0A000"),
        // OR REPLACE keeps the existing columns: names, types, count.
        ("CREATE OR REPLACE VIEW v AS SELECT id FROM t", "42P16"),
        (
            "CREATE OR REPLACE VIEW v AS SELECT id, name AS n FROM t",
            "42P16",
        ),
        (
            "CREATE OR REPLACE VIEW v AS SELECT id, amount AS name FROM t",
            "42P16",
        ),
    ];
    for (sql, code) in cases {
        assert_eq!(s.code(sql), code, "{sql}");
    }
    assert_eq!(
        s.error("CREATE OR REPLACE VIEW v AS SELECT id, amount AS name FROM t")
            .message,
        "cannot change data type of view column \"name\" from text to numeric(8,2)"
    );
    // Adding columns at the end is allowed.
    s.exec("CREATE OR REPLACE VIEW v AS SELECT id, name, amount FROM t WHERE id < 3");
    assert_eq!(
        s.query("SELECT * FROM v ORDER BY id"),
        ["1|a|10.50", "2|b|20.00"]
    );
    // A view cannot come to read itself.
    s.exec("CREATE VIEW w AS SELECT id FROM v");
    assert_eq!(
        s.code("CREATE OR REPLACE VIEW v AS SELECT id, 'x'::text AS name, 1.0::numeric(8,2) AS amount FROM w"),
        "42P17"
    );
    // Views are read-only.
    let e = s.error("INSERT INTO v VALUES (9, 'z', 1)");
    assert_eq!(
        (e.code.code(), e.message.as_str()),
        ("0A000", "cannot insert into view \"v\"")
    );
    assert_eq!(s.code("UPDATE v SET name = 'z'"), "0A000");
    assert_eq!(s.code("DELETE FROM v"), "0A000");
    assert_eq!(s.code("TRUNCATE v"), "42809");
}

#[test]
fn dependencies_on_views() {
    let mut s = setup();
    s.exec("CREATE VIEW v AS SELECT id, name FROM t");
    s.exec("CREATE VIEW w AS SELECT name FROM v");
    // DROP TABLE and DROP VIEW refuse while a view reads them.
    let e = s.error("DROP TABLE t");
    assert_eq!(e.code.code(), "2BP01");
    assert_eq!(
        e.message,
        "cannot drop table t because other objects depend on it"
    );
    assert_eq!(s.code("DROP VIEW v"), "2BP01");
    assert_eq!(s.code("DROP VIEW t"), "42809");
    assert_eq!(s.code("DROP VIEW nope"), "42P01");
    assert_eq!(s.exec("DROP VIEW IF EXISTS nope"), "DROP VIEW");
    // ALTER TABLE: changes the views survive are allowed, others refused.
    s.exec("ALTER TABLE t ADD COLUMN more int");
    s.exec("ALTER TABLE t DROP COLUMN extra");
    assert_eq!(s.code("ALTER TABLE t DROP COLUMN name"), "2BP01");
    assert_eq!(s.code("ALTER TABLE t RENAME COLUMN name TO title"), "2BP01");
    assert_eq!(s.code("ALTER TABLE t RENAME TO t2"), "2BP01");
    assert_eq!(s.query("SELECT * FROM w ORDER BY name"), ["a", "b", "c"]);
    // Dropping both together, or with CASCADE.
    assert_eq!(s.exec("DROP VIEW w, v"), "DROP VIEW");
    s.exec("CREATE VIEW v AS SELECT id, name FROM t");
    s.exec("CREATE VIEW w AS SELECT name FROM v");
    assert_eq!(s.exec("DROP TABLE t CASCADE"), "DROP TABLE");
    assert_eq!(s.code("SELECT * FROM v"), "42P01");
    assert_eq!(s.code("SELECT * FROM w"), "42P01");
    // Names are free again.
    s.exec("CREATE TABLE v (x int)");
    assert_eq!(s.exec("DROP TABLE v"), "DROP TABLE");
}

#[test]
fn views_in_the_catalog() {
    let mut s = setup();
    s.exec("CREATE VIEW v (k, label) AS SELECT id, name FROM t WHERE id > 1");
    assert_eq!(
        s.query("SELECT relkind, relnatts FROM pg_class WHERE relname = 'v'"),
        ["v|2"]
    );
    assert_eq!(
        s.query(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'v'::regclass ORDER BY attnum"
        ),
        ["k|integer", "label|text"]
    );
    assert_eq!(
        s.query("SELECT table_type FROM information_schema.tables WHERE table_name = 'v'"),
        ["VIEW"]
    );
    assert_eq!(
        s.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'v' ORDER BY ordinal_position"),
        ["k", "label"]
    );
    let def = s.query("SELECT pg_get_viewdef('v'::regclass)");
    assert_eq!(def, [" SELECT id, name FROM t WHERE id > 1;"]);
    assert_eq!(
        s.query("SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'"),
        ["v| SELECT id, name FROM t WHERE id > 1;"]
    );
    assert_eq!(
        s.query("SELECT table_name FROM information_schema.views"),
        ["v"]
    );
    // COPY reads a view only through a query.
    assert_eq!(s.code("COPY v TO STDOUT"), "42809");
}
