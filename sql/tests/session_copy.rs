//! COPY FROM STDIN and COPY TO STDOUT through the session, with the wire
//! driver's decoding and encoding (`teller_net::copy`).

mod support;

use support::Node;

fn setup() -> support::Sess {
    let node = Node::new();
    let mut s = node.session();
    s.exec(
        "CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL, \
         amount numeric(10,2) DEFAULT 1.5, note varchar(5), seq serial)",
    );
    s
}

#[test]
fn copy_from_text_fills_defaults_and_nulls() {
    let mut s = setup();
    let tag = s
        .copy_from(
            "COPY t (id, name, note) FROM STDIN",
            "1\talice\t\\N\n2\tbob\tx\n3\tc\\td\tyy\n",
        )
        .unwrap();
    assert_eq!(tag, "COPY 3");
    assert_eq!(
        s.query("SELECT id, name, amount, note, seq FROM t ORDER BY id"),
        ["1|alice|1.50|NULL|1", "2|bob|1.50|x|2", "3|c\td|1.50|yy|3"]
    );
    // Every column, in table order; an empty input copies nothing.
    assert_eq!(
        s.copy_from("copy t from stdin;", "4\td\t2.25\tz\t40\n")
            .unwrap(),
        "COPY 1"
    );
    assert_eq!(s.copy_from("COPY t FROM STDIN", "").unwrap(), "COPY 0");
    assert_eq!(s.query("SELECT count(*), sum(amount) FROM t"), ["4|6.75"]);
}

#[test]
fn copy_from_csv_forms() {
    let mut s = setup();
    let tag = s
        .copy_from(
            "COPY t (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)",
            "id,name\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n",
        )
        .unwrap();
    assert_eq!(tag, "COPY 2");
    // The pre-9.0 form and PostgreSQL's boolean words.
    s.copy_from(
        "COPY t (id, name, note) FROM STDIN WITH CSV HEADER DELIMITER AS ';'",
        "id;name;note\n3;c;\n",
    )
    .unwrap();
    s.copy_from(
        "copy t (id, name) from stdin with (format csv, header on, freeze on)",
        "x,y\n4,d\n",
    )
    .unwrap();
    s.copy_from(
        "COPY t (id, name, note) FROM STDIN (DELIMITER '|', NULL 'none')",
        "5|e|none\n",
    )
    .unwrap();
    assert_eq!(
        s.query("SELECT id, name, note FROM t ORDER BY id"),
        [
            "1|a, b|NULL",
            "2|say \"hi\"|NULL",
            "3|c|NULL",
            "4|d|NULL",
            "5|e|NULL"
        ]
    );
}

#[test]
fn copy_from_checks_constraints_and_persists_nothing_on_error() {
    let mut s = setup();
    s.exec("CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES t (id))");
    s.copy_from("COPY t (id, name) FROM STDIN", "1\ta\n")
        .unwrap();
    // A duplicate key in the third batch undoes the first two.
    let e = s
        .copy_from(
            "COPY t (id, name) FROM STDIN",
            "2\tb\n3\tc\n4\td\n5\te\n1\tdup\n",
        )
        .unwrap_err();
    assert_eq!(e.code.code(), "23505");
    assert_eq!(s.query("SELECT count(*) FROM t"), ["1"]);
    let cases = [
        ("COPY t (id, name) FROM STDIN", "9\t\\N\n", "23502"),
        (
            "COPY t (id, name, note) FROM STDIN",
            "9\tn\ttoolong\n",
            "22001",
        ),
        ("COPY t (id, name) FROM STDIN", "x\tn\n", "22P02"),
        ("COPY t (id, name) FROM STDIN", "9\n", "22P04"),
        ("COPY child FROM STDIN", "1\t7\n", "23503"),
    ];
    for (sql, data, code) in cases {
        let e = s.copy_from(sql, data).unwrap_err();
        assert_eq!(e.code.code(), code, "{sql} {data:?}: {e:?}");
    }
    assert_eq!(
        s.copy_from("COPY child FROM STDIN", "1\t1\n").unwrap(),
        "COPY 1"
    );
    assert_eq!(s.query("SELECT count(*) FROM t"), ["1"]);
}

#[test]
fn copy_from_in_a_block() {
    let mut s = setup();
    s.exec("BEGIN");
    s.copy_from("COPY t (id, name) FROM STDIN", "1\ta\n2\tb\n3\tc\n")
        .unwrap();
    assert_eq!(s.query("SELECT count(*) FROM t"), ["3"]);
    s.exec("ROLLBACK");
    assert_eq!(s.query("SELECT count(*) FROM t"), ["0"]);

    // pgbench's client-side load: create or truncate, copy, commit.
    s.exec("BEGIN");
    s.exec("TRUNCATE t");
    s.copy_from(
        "copy t (id, name) from stdin with (freeze on)",
        "1\ta\n2\tb\n",
    )
    .unwrap();
    s.exec("COMMIT");
    assert_eq!(s.query("SELECT count(*) FROM t"), ["2"]);

    // A failed COPY fails the block.
    s.exec("BEGIN");
    let e = s
        .copy_from("COPY t (id, name) FROM STDIN", "3\tc\n1\tdup\n")
        .unwrap_err();
    assert_eq!(e.code.code(), "23505");
    assert_eq!(s.code("SELECT 1"), "25P02");
    let e = s
        .copy_from("COPY t (id, name) FROM STDIN", "4\td\n")
        .unwrap_err();
    assert_eq!(e.code.code(), "25P02");
    s.exec("ROLLBACK");
    assert_eq!(s.query("SELECT count(*) FROM t"), ["2"]);
}

#[test]
fn copy_to_stdout() {
    let mut s = setup();
    s.copy_from(
        "COPY t (id, name, note) FROM STDIN",
        "1\ta\t\\N\n2\tb\\\\c\tx\n3\tq,\"r\tyy\n4\td\t\\N\n",
    )
    .unwrap();
    assert_eq!(
        s.copy_to("COPY t (id, name, note) TO STDOUT").unwrap(),
        "1\ta\t\\N\n2\tb\\\\c\tx\n3\tq,\"r\tyy\n4\td\t\\N\n"
    );
    assert_eq!(
        s.copy_to("COPY (SELECT id, name FROM t WHERE id > 1 ORDER BY id DESC) TO STDOUT WITH (FORMAT csv, HEADER)")
            .unwrap(),
        "id,name\n4,d\n3,\"q,\"\"r\"\n2,b\\c\n"
    );
    assert_eq!(
        s.copy_to("copy t to stdout").unwrap().lines().next(),
        Some("1\ta\t1.50\t\\N\t1")
    );
    // What comes out goes back in.
    s.exec("CREATE TABLE u (id int PRIMARY KEY, name text, amount numeric(10,2), note varchar(5), seq int)");
    let data = s.copy_to("COPY t TO STDOUT").unwrap();
    assert_eq!(s.copy_from("COPY u FROM STDIN", &data).unwrap(), "COPY 4");
    assert_eq!(s.copy_to("COPY u TO STDOUT").unwrap(), data, "round trip");
}

#[test]
fn copy_refusals() {
    let mut s = setup();
    s.exec("CREATE SEQUENCE q");
    let cases = [
        ("COPY t FROM '/tmp/data'", "0A000"),
        ("COPY t TO '/tmp/data'", "0A000"),
        ("COPY t TO PROGRAM 'cat'", "0A000"),
        ("COPY t FROM STDIN (FORMAT binary)", "0A000"),
        ("COPY t FROM STDIN (FORMAT json)", "22023"),
        ("COPY t FROM STDIN (FORMAT csv, FORMAT text)", "42601"),
        ("COPY t FROM STDIN (FORCE_NULL (name))", "0A000"),
        ("COPY t FROM STDIN (QUOTE '''')", "0A000"),
        ("COPY t FROM STDIN (ENCODING 'LATIN1')", "0A000"),
        ("COPY nope FROM STDIN", "42P01"),
        ("COPY t (nope) FROM STDIN", "42703"),
        ("COPY t (id, id) FROM STDIN", "42701"),
        ("COPY t (nope) TO STDOUT", "42703"),
        ("COPY q TO STDOUT", "42809"),
        ("COPY q FROM STDIN", "42809"),
        ("EXPLAIN COPY t TO STDOUT", "42601"),
    ];
    for (sql, code) in cases {
        let e = match s.copy_from(sql, "") {
            Err(e) => e,
            Ok(tag) => panic!("{sql}: {tag}"),
        };
        assert_eq!(e.code.code(), code, "{sql}: {e:?}");
    }
    assert_eq!(
        s.copy_from("COPY q TO STDOUT", "").unwrap_err().message,
        "cannot copy from sequence \"q\""
    );
    assert_eq!(
        s.copy_from("COPY q FROM STDIN", "").unwrap_err().message,
        "cannot copy to sequence \"q\""
    );
}
