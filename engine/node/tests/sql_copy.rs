//! COPY against a real `teller` with psql: a dump-style script with inline
//! `COPY ... FROM stdin` data, `\copy` from and to files, and `COPY ... TO
//! STDOUT` in CSV, on two shards so that the rows land on ranges owned by
//! either.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::TestServer;

/// Runs psql with `script` on stdin; its stdout.
fn psql(server: &TestServer, args: &[&str], script: &str) -> String {
    let mut child = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-U", "teller", "-d", "teller", "-X", "-q", "-A", "-t"])
        .args(["-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql is installed (scripts/install-deps.sh installs postgresql-client)");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .expect("script written");
    let output = child.wait_with_output().expect("psql ran");
    assert!(output.status.success(), "{script}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn psql_copies_in_and_out() {
    let server = TestServer::start(2);
    // As pg_dump writes it: the data follows the statement, ending at `\.`.
    let mut script = String::from(
        "create table items (id int primary key, name text not null, price numeric(8,2), tag varchar(4));\n\
         create index items_name on items (name);\n\
         COPY items (id, name, price, tag) FROM stdin;\n",
    );
    for i in 1..=500 {
        let tag = if i % 7 == 0 {
            "\\N".to_string()
        } else {
            format!("t{}", i % 10)
        };
        script.push_str(&format!("{i}\titem {i}\t{}.25\t{tag}\n", i % 100));
    }
    script.push_str("\\.\nselect count(*), sum(price), count(tag) from items;\n");
    let out = psql(&server, &[], &script);
    assert_eq!(out.trim(), "500|24875.00|429");

    // The index was maintained, and a failed COPY leaves nothing behind.
    let out = psql(
        &server,
        &[],
        "select id from items where name = 'item 42';\n",
    );
    assert_eq!(out.trim(), "42");
    let dir = std::env::temp_dir().join(format!("teller-copy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "id,name\n501,ok\n502,fine\n1,duplicate\n").unwrap();
    let output = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-U", "teller", "-d", "teller", "-X"])
        .arg("-c")
        .arg(format!(
            "\\copy items (id, name) from '{}' with (format csv, header)",
            bad.display()
        ))
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("duplicate key value"), "{stderr}");
    let out = psql(&server, &[], "select count(*) from items where id > 500;\n");
    assert_eq!(out.trim(), "0");

    // \copy out and back in, through a file.
    let file = dir.join("items.csv");
    psql(
        &server,
        &[
            "-c",
            &format!(
                "\\copy (select id, name, price, tag from items where id <= 20 order by id) to '{}' with csv header",
                file.display()
            ),
        ],
        "",
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("id,name,price,tag\n1,item 1,1.25,t1\n"),
        "{text}"
    );
    assert!(text.contains("\n7,item 7,7.25,\n"), "{text}");
    psql(
        &server,
        &[
            "-c",
            "create table copied (id int primary key, name text, price numeric(8,2), tag varchar(4))",
            "-c",
            &format!("\\copy copied from '{}' csv header", file.display()),
        ],
        "",
    );
    let out = psql(
        &server,
        &[],
        "select count(*), sum(price), count(tag) from copied;\n\
         copy (select id, tag from copied where id in (6, 7) order by id) to stdout;\n",
    );
    assert_eq!(out, "20|215.00|18\n6\tt6\n7\t\\N\n");
    std::fs::remove_dir_all(&dir).ok();
}
