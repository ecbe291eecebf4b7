//! Queries over tables: joins, aggregates, ordering, subqueries, set
//! operations, CTEs.

mod support;

use support::{Node, Sess};

fn setup() -> Sess {
    let node = Node::new();
    let mut s = node.session();
    s.exec(
        "create table dept (id int primary key, name text not null);
         create table emp (id int primary key, name text, dept int, salary numeric(10,2), boss int);
         insert into dept values (1, 'eng'), (2, 'ops'), (3, 'empty');
         insert into emp values
           (1, 'ann', 1, 100.00, null),
           (2, 'bob', 1, 80.00, 1),
           (3, 'cy', 2, 90.00, 1),
           (4, 'dee', null, 50.00, 3),
           (5, 'eve', 2, null, 3)",
    );
    s
}

#[test]
fn inner_and_outer_joins() {
    let mut s = setup();
    assert_eq!(
        s.query("select e.name, d.name from emp e join dept d on e.dept = d.id order by e.id"),
        vec!["ann|eng", "bob|eng", "cy|ops", "eve|ops"]
    );
    assert_eq!(
        s.query("select e.name, d.name from emp e left join dept d on e.dept = d.id order by e.id"),
        vec!["ann|eng", "bob|eng", "cy|ops", "dee|NULL", "eve|ops"]
    );
    assert_eq!(
        s.query("select e.name, d.name from emp e right join dept d on e.dept = d.id order by d.id, e.id"),
        vec!["ann|eng", "bob|eng", "cy|ops", "eve|ops", "NULL|empty"]
    );
    assert_eq!(
        s.query("select e.name, d.name from emp e full join dept d on e.dept = d.id order by d.id nulls first, e.id"),
        vec!["dee|NULL", "ann|eng", "bob|eng", "cy|ops", "eve|ops", "NULL|empty"]
    );
    assert_eq!(
        s.query("select count(*) from emp cross join dept"),
        vec!["15"]
    );
    assert_eq!(
        s.query("select count(*) from emp, dept where emp.dept = dept.id and dept.name = 'eng'"),
        vec!["2"]
    );
    // Self join, USING and NATURAL.
    assert_eq!(
        s.query("select e.name, b.name from emp e join emp b on e.boss = b.id order by e.id"),
        vec!["bob|ann", "cy|ann", "dee|cy", "eve|cy"]
    );
    assert_eq!(
        s.query("select id, name from dept join (select id from emp) x using (id) order by id"),
        vec!["1|eng", "2|ops", "3|empty"]
    );
    assert_eq!(s.code("select id from emp, dept"), "42702");
    assert_eq!(s.code("select x.id from emp"), "42P01");
    assert_eq!(s.code("select * from emp e join emp e on true"), "42712");
}

#[test]
fn aggregates_and_grouping() {
    let mut s = setup();
    assert_eq!(
        s.query("select dept, count(*), count(salary), sum(salary), min(name), max(salary) from emp group by dept order by dept nulls last"),
        vec![
            "1|2|2|180.00|ann|100.00",
            "2|2|1|90.00|cy|90.00",
            "NULL|1|1|50.00|dee|50.00"
        ]
    );
    assert_eq!(
        s.query("select dept, avg(salary) from emp where dept is not null group by dept having count(*) > 1 order by 1"),
        vec!["1|90.0000000000000000", "2|90.0000000000000000"]
    );
    assert_eq!(
        s.query("select count(*), sum(id), avg(id) from emp where id > 100"),
        vec!["0|NULL|NULL"]
    );
    assert_eq!(
        s.query("select string_agg(name, ',' order by name desc) from emp"),
        vec!["eve,dee,cy,bob,ann"]
    );
    assert_eq!(
        s.query("select count(distinct dept), bool_and(id > 0), bool_or(id > 4) from emp"),
        vec!["2|t|t"]
    );
    assert_eq!(
        s.query("select sum(id) filter (where id % 2 = 0) from emp"),
        vec!["6"]
    );
    assert_eq!(
        s.query("select avg(x) from (values (1), (2)) v(x)"),
        vec!["1.5000000000000000"]
    );
    assert_eq!(
        s.query("select sum(x) from (values (1::int8), (2)) v(x)"),
        vec!["3"]
    );
    assert_eq!(s.code("select name, count(*) from emp"), "42803");
    assert_eq!(
        s.code("select count(*) from emp where count(*) > 1"),
        "42803"
    );
    assert_eq!(s.code("select sum(name) from emp"), "42883");
    assert_eq!(
        s.query("select dept + 1 as d, count(*) from emp group by dept + 1 order by d"),
        vec!["2|2", "3|2", "NULL|1"]
    );
    assert_eq!(
        s.query("select distinct dept from emp order by dept"),
        vec!["1", "2", "NULL"]
    );
}

#[test]
fn ordering_limits_and_distinct_on() {
    let mut s = setup();
    assert_eq!(
        s.query("select name from emp order by salary desc nulls last, name"),
        vec!["ann", "cy", "bob", "dee", "eve"]
    );
    assert_eq!(
        s.query("select name from emp order by salary nulls first limit 2 offset 1"),
        vec!["dee", "bob"]
    );
    assert_eq!(
        s.query("select distinct on (dept) dept, name from emp order by dept, salary desc"),
        vec!["1|ann", "2|eve", "NULL|dee"]
    );
    assert_eq!(
        s.query("select name from emp order by id desc limit 1"),
        vec!["eve"]
    );
    assert_eq!(
        s.query("select id from emp order by 1 desc fetch first 2 rows only"),
        vec!["5", "4"]
    );
    assert_eq!(s.code("select name from emp order by 9"), "42P10");
}

#[test]
fn subqueries() {
    let mut s = setup();
    assert_eq!(
        s.query("select name from emp where salary > (select avg(salary) from emp) order by name"),
        vec!["ann", "cy"]
    );
    assert_eq!(
        s.query("select name from emp where dept in (select id from dept where name = 'ops') order by name"),
        vec!["cy", "eve"]
    );
    assert_eq!(
        s.query("select name from dept d where exists (select 1 from emp e where e.dept = d.id) order by name"),
        vec!["eng", "ops"]
    );
    assert_eq!(
        s.query(
            "select name from dept d where not exists (select 1 from emp e where e.dept = d.id)"
        ),
        vec!["empty"]
    );
    assert_eq!(
        s.query(
            "select name, (select count(*) from emp e where e.dept = d.id) from dept d order by id"
        ),
        vec!["eng|2", "ops|2", "empty|0"]
    );
    assert_eq!(
        s.query("select name from emp e where salary = (select max(salary) from emp x where x.dept = e.dept) order by name"),
        vec!["ann", "cy"]
    );
    assert_eq!(
        s.query(
            "select id from emp where dept not in (select id from dept where id > 1) order by id"
        ),
        vec!["1", "2"]
    );
    assert_eq!(
        s.query("select 1 where 2 > all (select 1 union select 0)"),
        vec!["1"]
    );
    assert_eq!(s.code("select (select id from emp)"), "21000");
    assert_eq!(s.code("select (select id, name from emp)"), "42601");
    assert_eq!(
        s.query("select d.name, x.total from dept d join (select dept, sum(salary) as total from emp group by dept) x on x.dept = d.id order by 1"),
        vec!["eng|180.00", "ops|90.00"]
    );
}

#[test]
fn ctes_set_operations_and_case() {
    let mut s = setup();
    assert_eq!(
        s.query("with rich as (select * from emp where salary >= 90), names(n) as (select name from rich) select n from names order by n"),
        vec!["ann", "cy"]
    );
    assert_eq!(
        s.query("select dept from emp union select id from dept order by 1"),
        vec!["1", "2", "3", "NULL"]
    );
    assert_eq!(
        s.query("select dept from emp union all select id from dept order by 1 limit 3"),
        vec!["1", "1", "1"]
    );
    assert_eq!(
        s.query("select id from dept intersect select dept from emp order by 1"),
        vec!["1", "2"]
    );
    assert_eq!(
        s.query("select id from dept except select dept from emp"),
        vec!["3"]
    );
    assert_eq!(
        s.query("select dept from emp intersect all select dept from emp where id < 3 order by 1"),
        vec!["1", "1"]
    );
    assert_eq!(
        s.query("select name, case when salary >= 90 then 'high' when salary is null then 'none' else 'low' end from emp order by id"),
        vec!["ann|high", "bob|low", "cy|high", "dee|low", "eve|none"]
    );
    assert_eq!(s.code("select 1 union select 1, 2"), "42601");
    assert_eq!(s.code("select 1 union select 'a'"), "22P02");
}

#[test]
fn predicates() {
    let mut s = setup();
    assert_eq!(
        s.query("select name from emp where name like '_e%' order by name"),
        vec!["dee"]
    );
    assert_eq!(
        s.query("select name from emp where name like '%e' order by name"),
        vec!["dee", "eve"]
    );
    assert_eq!(
        s.query("select name from emp where name ilike 'A%'"),
        vec!["ann"]
    );
    assert_eq!(
        s.query("select name from emp where id in (1, 3, 9) order by 1"),
        vec!["ann", "cy"]
    );
    assert_eq!(
        s.query("select name from emp where id between 2 and 3 order by 1"),
        vec!["bob", "cy"]
    );
    assert_eq!(
        s.query("select name from emp where id not between 2 and 4 order by 1"),
        vec!["ann", "eve"]
    );
    assert_eq!(
        s.query("select count(*) from emp where dept is distinct from 1"),
        vec!["3"]
    );
    assert_eq!(
        s.query("select count(*) from emp where dept is not distinct from null"),
        vec!["1"]
    );
    assert_eq!(
        s.query("select count(*) from emp where boss in (1, null)"),
        vec!["2"]
    );
    assert_eq!(
        s.query("select count(*) from emp where boss not in (1, null)"),
        vec!["0"]
    );
}

#[test]
fn every_join_strategy_returns_the_right_rows() {
    let node = Node::new();
    let mut s = node.session();
    s.exec(
        "create table accounts (id int primary key, owner text not null, branch int, balance numeric(12,2));
         create unique index accounts_branch_id on accounts (branch, id) include (balance);
         create table branches (id int primary key, name text);
         create table history (id int, account int, amount numeric(12,2), primary key (account, id));
         create table ledger (id int primary key, total int);
         insert into branches select x, 'b' || x from (values (1),(2),(3),(4)) v(x);
         insert into accounts select x * 10 + y, 'o', x, 0 from (values (1),(2),(3),(4)) a(x), (values (1),(2),(3),(4),(5),(6),(7),(8),(9)) b(y);
         insert into history select x, a.id, x from accounts a, (values (1),(2),(3)) v(x);
         insert into ledger select id, id * 2 from accounts;
         analyze",
    );
    let plan = |s: &mut Sess, q: &str| s.query(&format!("explain {q}")).join("\n");
    let cases = [
        ("select count(*), sum(b.id) from accounts a join branches b on a.branch = b.id", "LookupJoin", "36|90"),
        ("select count(*), sum(l.total) from accounts a join ledger l on l.id = a.id", "MergeJoin", "36|2160"),
        ("select count(*), sum(h.amount) from history h join accounts a on h.account = a.id where h.account = 11", "LookupJoin", "3|6.00"),
        ("select count(*) from accounts a left join branches b on a.branch = b.id where b.name is null", "HashJoin", "0"),
        ("select count(*) from accounts a, branches b", "NestedLoopJoin", "144"),
        ("select count(*), sum(h.amount) from accounts a join history h on h.account = a.id", "Join", "108|216.00"),
    ];
    for (q, strategy, expected) in cases {
        let p = plan(&mut s, q);
        assert!(p.contains(strategy), "{q}:\n{p}");
        assert_eq!(s.query(q), vec![expected], "{q}:\n{p}");
    }
    // Outer joins keep their unmatched rows under every strategy.
    s.exec("insert into accounts values (99, 'z', 9, 0)");
    assert_eq!(
        s.query("select a.id, b.name from accounts a left join branches b on a.branch = b.id where a.id > 40 order by a.id"),
        vec!["41|b4", "42|b4", "43|b4", "44|b4", "45|b4", "46|b4", "47|b4", "48|b4", "49|b4", "99|NULL"]
    );
    assert_eq!(
        s.query(
            "select count(*) from accounts a left join ledger l on l.id = a.id where l.id is null"
        ),
        vec!["1"]
    );
}

#[test]
fn subqueries_where_they_cannot_run_are_refused_cleanly() {
    let mut s = setup();
    assert_eq!(s.code("create table x (a int default (select 1))"), "0A000");
    assert_eq!(
        s.code("create table x (a int check (a > (select 1)))"),
        "0A000"
    );
    assert_eq!(s.code("select sum((select 1)) from emp"), "0A000");
    assert_eq!(
        s.code("select * from emp e left join dept d on d.id = (select 1)"),
        "0A000"
    );
    // Where they can run, they do.
    assert_eq!(
        s.query("select e.name from emp e join dept d on d.id = e.dept and d.id = (select min(id) from dept) order by 1"),
        vec!["ann", "bob"]
    );
}

#[test]
fn update_from_and_delete_using() {
    let node = Node::new();
    let mut s = node.session();
    s.exec(
        "CREATE TABLE acct (id int PRIMARY KEY, bal int, owner text);
         CREATE TABLE pay (acct int, amt int);
         INSERT INTO acct VALUES (1, 100, 'a'), (2, 200, 'b'), (3, 300, 'c');
         INSERT INTO pay VALUES (1, 10), (2, 20), (2, 25), (9, 1)",
    );
    // A row joined twice is updated once.
    assert_eq!(
        s.exec("UPDATE acct SET owner = 'paid' FROM pay WHERE pay.acct = acct.id"),
        "UPDATE 2"
    );
    assert_eq!(
        s.query("SELECT * FROM acct ORDER BY id"),
        ["1|100|paid", "2|200|paid", "3|300|c"]
    );
    let out = s
        .run(
            "UPDATE acct a SET bal = a.bal + p.amt FROM pay p \
             WHERE p.acct = a.id AND p.amt < 25 RETURNING a.id, a.bal, p.*",
        )
        .unwrap();
    let names: Vec<&str> = out
        .columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["id", "bal", "acct", "amt"]);
    assert_eq!(out.tag, "UPDATE 2");
    let mut rows: Vec<String> = out
        .rows
        .iter()
        .map(|r| r.iter().map(support::text).collect::<Vec<_>>().join("|"))
        .collect();
    rows.sort();
    assert_eq!(rows, ["1|110|1|10", "2|220|2|20"]);
    assert_eq!(
        s.query(
            "UPDATE acct SET bal = bal * 2 \
             FROM (SELECT acct, sum(amt) AS s FROM pay GROUP BY acct) t \
             WHERE t.acct = acct.id AND t.s > 40 RETURNING *"
        ),
        ["2|440|paid|2|45"]
    );
    let out = s
        .run(
            "DELETE FROM acct USING pay \
             WHERE pay.acct = acct.id AND pay.amt > 15 RETURNING acct.id",
        )
        .unwrap();
    assert_eq!(out.tag, "DELETE 1");
    assert_eq!(
        s.query("SELECT * FROM acct ORDER BY id"),
        ["1|110|paid", "3|300|c"]
    );
    assert_eq!(
        s.error("UPDATE acct SET bal = 1 FROM acct").message,
        "table name \"acct\" specified more than once"
    );
    assert_eq!(s.code("UPDATE acct SET bal = 1 FROM pay p, pay p"), "42712");
    assert_eq!(
        s.query("UPDATE acct SET bal = amt FROM pay WHERE pay.acct = id RETURNING bal"),
        ["10"]
    );
    assert_eq!(
        s.query(
            "DELETE FROM acct USING pay p JOIN acct b ON b.id = p.acct \
             WHERE acct.id = b.id + 2 RETURNING acct.id"
        ),
        ["3"]
    );
    assert_eq!(s.query("SELECT * FROM acct ORDER BY id"), ["1|10|paid"]);
    // Indexes follow: the updated row is found through its new value.
    s.exec("CREATE INDEX acct_owner ON acct (owner)");
    s.exec("UPDATE acct SET owner = p.amt::text FROM pay p WHERE p.acct = acct.id");
    assert_eq!(s.query("SELECT id FROM acct WHERE owner = '10'"), ["1"]);
    assert!(s
        .query("SELECT id FROM acct WHERE owner = 'paid'")
        .is_empty());
    assert_eq!(
        s.query("INSERT INTO acct VALUES (5, 5, 'e') RETURNING acct.*"),
        ["5|5|e"]
    );
    assert_eq!(
        s.error("DELETE FROM acct RETURNING nope.*").message,
        "missing FROM-clause entry for table \"nope\""
    );
}

#[test]
fn lookup_join_through_a_fixed_key_prefix() {
    // TPC-C's stock-level: the stock key is (warehouse, item); the query
    // fixes the warehouse and joins on the item.
    let node = Node::new();
    let mut s = node.session();
    s.exec(
        "CREATE TABLE stock (w int, i int, qty int, PRIMARY KEY (w, i));
         CREATE TABLE line (w int, o int, n int, i int, PRIMARY KEY (w, o, n));
         INSERT INTO stock SELECT w, i, (i * 7 + w) % 20 FROM generate_series(1, 3) w, generate_series(1, 400) i;
         INSERT INTO line SELECT 2, o, n, (o * 13 + n * 5) % 400 + 1 FROM generate_series(1, 30) o, generate_series(1, 5) n;
         ANALYZE",
    );
    let sql = "SELECT count(DISTINCT s.i) FROM line l, stock s \
               WHERE l.w = $1 AND l.o < $2 AND l.o >= $2 - 20 \
               AND s.w = $1 AND s.i = l.i AND s.qty < $3";
    let plan = s.query(&format!(
        "EXPLAIN {}",
        sql.replace("$1", "2")
            .replace("$2", "25")
            .replace("$3", "10")
    ));
    assert!(
        plan.iter()
            .any(|l| l.contains("LookupJoin (inner) keys: 2, l.i")),
        "{plan:#?}"
    );
    // Also when the fixed value is a parameter (a prepared statement).
    use teller_net::types::Value;
    let params = || vec![Value::Int4(2), Value::Int4(25), Value::Int4(10)];
    let plan = s
        .run_params(&format!("EXPLAIN {sql}"), params(), 100)
        .unwrap();
    let plan: Vec<String> = plan.rows.iter().map(|r| support::text(&r[0])).collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("LookupJoin (inner) keys: $1, l.i")),
        "{plan:#?}"
    );
    let out = s.run_params(sql, params(), 100).unwrap();
    // The same count without the join.
    let expected = s.query(
        "SELECT count(DISTINCT i) FROM line WHERE w = 2 AND o < 25 AND o >= 5 \
         AND (i * 7 + 2) % 20 < 10",
    );
    assert_eq!(support::text(&out.rows[0][0]), expected[0]);
    assert_ne!(expected[0], "0");
}

#[test]
fn in_lists_resolve_unknowns_from_typed_items() {
    let node = Node::new();
    let mut s = node.session();
    assert!(s.query("SELECT 1 WHERE NULL IN (NULL, 1)").is_empty());
    assert!(s.query("SELECT 1 WHERE NULL NOT IN (NULL, 1.0)").is_empty());
    assert_eq!(s.query("SELECT 2 IN (NULL, '2', 3)"), ["t"]);
    assert_eq!(s.query("SELECT 'a' IN (NULL, 'b')"), ["NULL"]);
    assert_eq!(s.code("SELECT NULL IN ('x', 1)"), "22P02");
}
