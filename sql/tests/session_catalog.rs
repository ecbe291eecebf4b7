//! pg_catalog and information_schema through SQL, and the functions and
//! casts clients use with them.

mod support;

use support::Node;

#[test]
fn catalog_views_reflect_ddl() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, v text not null, n numeric(5,2) default 1.5)");
    s.exec("create index t_v on t (v desc)");
    s.exec("create sequence s");
    assert_eq!(
        s.query("select relname, relkind from pg_class order by relname"),
        vec!["s|S", "t|r", "t_pkey|i", "t_v|i"]
    );
    assert_eq!(
        s.query("select attname, format_type(atttypid, atttypmod), attnotnull from pg_attribute a join pg_class c on c.oid = a.attrelid where c.relname = 't' order by attnum"),
        vec!["id|integer|t", "v|text|t", "n|numeric(5,2)|f"]
    );
    assert_eq!(
        s.query("select pg_get_indexdef(indexrelid) from pg_index i where indrelid = 't'::regclass order by 1"),
        vec![
            "CREATE INDEX t_v ON public.t USING btree (v DESC)",
            "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)"
        ]
    );
    assert_eq!(
        s.query("select 't'::regclass::oid = (select oid from pg_class where relname = 't')"),
        vec!["t"]
    );
    assert_eq!(
        s.query("select oid::regclass from pg_class where relname = 't_v'"),
        vec!["t_v"]
    );
    assert_eq!(s.code("select 'nope'::regclass"), "42P01");
    assert_eq!(s.query("select adbin from pg_attrdef"), vec!["1.5"]);
    assert_eq!(
        s.query("select count(*) from pg_namespace where nspname !~ '^pg_'"),
        vec!["2"]
    );
    assert_eq!(
        s.query("select table_name, column_name, data_type from information_schema.columns where table_name = 't' and column_name = 'n'"),
        vec!["t|n|numeric"]
    );
    assert_eq!(
        s.query("select datname from pg_database order by 1"),
        vec!["postgres", "teller"]
    );
    s.exec("drop table t");
    assert_eq!(
        s.query("select count(*) from pg_class where relname like 't%'"),
        vec!["0"]
    );
}

#[test]
fn regex_arrays_and_any() {
    let node = Node::new();
    let mut s = node.session();
    assert_eq!(
        s.query("select 'accounts' ~ '^acc', 'accounts' !~ '^acc', 'ABC' ~* 'b'"),
        vec!["t|f|t"]
    );
    assert_eq!(
        s.query("select 'x' OPERATOR(pg_catalog.~) '^(x)$' COLLATE pg_catalog.default"),
        vec!["t"]
    );
    assert_eq!(s.code("select 'x' ~ '('"), "2201B");
    assert_eq!(
        s.query("select 2 = any('{1,2,3}'), 5 = any('{1,2,3}'), 1 < all('{2,3}')"),
        vec!["t|f|t"]
    );
    assert_eq!(
        s.query("select array_to_string(array(select x from generate_series(1, 3) x), ',')"),
        vec!["1,2,3"]
    );
    assert_eq!(s.query("select x from unnest('{a,\"b c\",NULL}'::text[]) with ordinality as u(x, n) order by n"), vec!["a", "b c", "NULL"]);
    assert_eq!(s.query("select ('{10,20,30}'::int2[])[2] + 1"), vec!["21"]);
    assert_eq!(s.query("select array_upper('{4,5}'::int4[], 1)"), vec!["2"]);
    assert_eq!(
        s.query("select current_schemas(true)"),
        vec!["{pg_catalog,public}"]
    );
}

#[test]
fn comments_show_in_pg_description() {
    let node = Node::new();
    let mut s = node.session();
    s.exec("create table t (id int primary key, v text)");
    s.exec("comment on table t is 'the table'");
    s.exec("comment on column t.v is 'a value'");
    assert_eq!(
        s.query("select obj_description('t'::regclass)"),
        vec!["the table"]
    );
    assert_eq!(
        s.query("select col_description(a.attrelid, a.attnum) from pg_attribute a where a.attrelid = 't'::regclass and attname = 'v'"),
        vec!["a value"]
    );
    s.exec("comment on table t is null");
    assert_eq!(
        s.query("select obj_description('t'::regclass)"),
        vec!["NULL"]
    );
}
