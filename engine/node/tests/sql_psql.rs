//! psql's describe commands (`\dt`, `\d`, `\d t`, `\d+ t`, `\di`, `\dn`,
//! `\l`) against a real `teller`: they run psql's own catalog queries.

mod common;

use std::process::Command;

use common::TestServer;

fn psql(server: &TestServer, command: &str) -> String {
    let output = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args([
            "-U",
            "teller",
            "-d",
            "teller",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", command])
        .env_remove("PGPASSWORD")
        .output()
        .expect("psql is installed (scripts/install-deps.sh installs postgresql-client)");
    assert!(output.status.success(), "{command}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn setup(server: &TestServer) {
    psql(
        server,
        "create table accounts (id int primary key, owner varchar(20) not null default 'nobody',
                                balance numeric(12,2) check (balance >= 0), branch int);
         create unique index accounts_owner on accounts (owner);
         create table transfers (id bigserial primary key,
                                 account int not null references accounts (id) on delete cascade,
                                 amount numeric(12,2));
         comment on table accounts is 'customer accounts';
         comment on column accounts.balance is 'in cents';",
    );
}

#[test]
fn list_relations_schemas_and_databases() {
    let server = TestServer::start(1);
    setup(&server);
    let dt = psql(&server, "\\dt");
    assert!(dt.contains(" public | accounts  | table | teller"), "{dt}");
    assert!(dt.contains(" public | transfers | table | teller"), "{dt}");
    assert!(dt.contains("(2 rows)"), "{dt}");
    let d = psql(&server, "\\d");
    assert!(d.contains("transfers_id_seq | sequence"), "{d}");
    let di = psql(&server, "\\di");
    assert!(
        di.contains("accounts_owner | index | teller | accounts"),
        "{di}"
    );
    assert!(
        di.contains("accounts_pkey  | index | teller | accounts"),
        "{di}"
    );
    let dn = psql(&server, "\\dn");
    assert!(dn.contains(" public | teller"), "{dn}");
    let l = psql(&server, "\\l");
    assert!(l.contains(" teller   | teller | UTF8"), "{l}");
    assert!(l.contains(" postgres | teller | UTF8"), "{l}");
}

#[test]
fn describe_a_table() {
    let server = TestServer::start(1);
    setup(&server);
    let d = psql(&server, "\\d accounts");
    for line in [
        "Table \"public.accounts\"",
        " id      | integer               |           | not null | ",
        " owner   | character varying(20) |           | not null | 'nobody'",
        " balance | numeric(12,2)         |           |          | ",
        "Indexes:",
        "    \"accounts_pkey\" PRIMARY KEY, btree (id)",
        "    \"accounts_owner\" UNIQUE CONSTRAINT, btree (owner)",
        "Check constraints:",
        "    \"accounts_balance_check\" CHECK (balance >= 0)",
        "Referenced by:",
        "    TABLE \"transfers\" CONSTRAINT \"transfers_account_fkey\" FOREIGN KEY (account) REFERENCES accounts(id) ON DELETE CASCADE",
    ] {
        assert!(d.contains(line), "missing {line:?} in\n{d}");
    }
    let d = psql(&server, "\\d transfers");
    assert!(
        d.contains(" id      | bigint        |           | not null | nextval('transfers_id_seq'::regclass)"),
        "{d}"
    );
    assert!(d.contains("Foreign-key constraints:"), "{d}");
    let plus = psql(&server, "\\d+ accounts");
    assert!(plus.contains("in cents"), "{plus}");
    assert!(plus.contains("Description"), "{plus}");
    let dt_plus = psql(&server, "\\dt+ accounts");
    assert!(dt_plus.contains("customer accounts"), "{dt_plus}");
}

#[test]
fn information_schema_describes_columns() {
    let server = TestServer::start(1);
    setup(&server);
    let out = psql(
        &server,
        "select column_name, data_type, is_nullable, character_maximum_length
           from information_schema.columns where table_name = 'accounts' order by ordinal_position",
    );
    assert!(
        out.contains(" owner       | character varying | NO          |                       20"),
        "{out}"
    );
    let out = psql(
        &server,
        "select constraint_name, constraint_type from information_schema.table_constraints
          where table_name = 'transfers' order by 1",
    );
    assert!(
        out.contains("transfers_account_fkey | FOREIGN KEY"),
        "{out}"
    );
    assert!(
        out.contains("transfers_pkey         | PRIMARY KEY"),
        "{out}"
    );
}

#[test]
fn list_and_describe_views() {
    let server = TestServer::start(1);
    setup(&server);
    psql(
        &server,
        "create view rich (id, who) as select id, owner from accounts where balance > 100",
    );
    let dv = psql(&server, "\\dv");
    assert!(dv.contains(" public | rich | view | teller"), "{dv}");
    assert!(dv.contains("(1 row)"), "{dv}");
    let d = psql(&server, "\\d rich");
    for line in [
        "View \"public.rich\"",
        " id     | integer               |           |          | ",
        " who    | character varying(20) |           |          | ",
    ] {
        assert!(d.contains(line), "missing {line:?} in\n{d}");
    }
    let plus = psql(&server, "\\d+ rich");
    assert!(plus.contains("View definition:"), "{plus}");
    assert!(
        plus.contains(" SELECT id, owner FROM accounts WHERE balance > 100;"),
        "{plus}"
    );
}
