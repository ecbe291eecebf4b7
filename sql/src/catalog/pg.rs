//! `pg_catalog` and `information_schema`: read-only views of the catalog
//! in PostgreSQL's shapes, computed from a [`Catalog`] snapshot when a
//! query scans them. They hold the columns psql's `\d`, `\dt`, `\d+`, `\l`,
//! `\di`, `\dn` and common drivers read; columns TellerDB has no concept
//! for hold PostgreSQL's neutral values (no tablespaces, no ACLs, no
//! triggers). Tables that stay empty (policies, triggers, publications,
//! inheritance, rules) exist so that the queries naming them run.
//!
//! Arrays are text in PostgreSQL's array literal form (`{1,2}`); the
//! `array` column of a definition records the element type for subscripts.
//!
//! OIDs: a table, sequence or database is its descriptor id; an index its
//! own descriptor id; a constraint of a table `CONSTRAINT_OID_TAG |
//! table << 8 | n`; namespaces `pg_catalog` 11 and `information_schema`
//! 13000; the only role (the connected user) 10.

use teller_net::types::{Type, Value};

use super::{Catalog, DescId, FkAction, TableDesc, ViewDesc};
use crate::encoding::key::{Direction, Nulls};
use crate::vars::Vars;

pub const PG_CATALOG_OID: u32 = 11;
pub const INFORMATION_SCHEMA_OID: u32 = 13000;
pub const ROLE_OID: u32 = 10;
pub const BTREE_AM_OID: u32 = 403;
pub const HEAP_AM_OID: u32 = 2;
pub const DEFAULT_COLLATION_OID: u32 = 100;
/// High bits of synthesized constraint OIDs.
pub const CONSTRAINT_OID_TAG: u32 = 0x4000_0000;
/// High bits of synthesized column-default OIDs.
pub const ATTRDEF_OID_TAG: u32 = 0x2000_0000;

/// A column of a virtual table: name, type, and the element type when it
/// is an array (held as text).
pub type VirtualColumn = (&'static str, Type, Option<Type>);

/// A virtual table's definition.
pub struct VirtualDef {
    pub schema: &'static str,
    pub name: &'static str,
    pub columns: &'static [VirtualColumn],
}

/// A virtual table, by its index in [`DEFS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualTable(pub usize);

impl VirtualTable {
    pub fn def(self) -> &'static VirtualDef {
        &DEFS[self.0]
    }

    /// The table `schema.name` (`schema` `None`: the search path, where
    /// `pg_catalog` comes first).
    pub fn find(schema: Option<&str>, name: &str) -> Option<VirtualTable> {
        DEFS.iter()
            .position(|d| {
                d.name == name
                    && match schema {
                        Some(s) => d.schema == s,
                        None => d.schema == "pg_catalog",
                    }
            })
            .map(VirtualTable)
    }
}

use Type::{Bool as B, Int2 as I2, Int4 as I4, Int8 as I8, Name as N, Oid as O, Text as T};

const fn c(name: &'static str, ty: Type) -> VirtualColumn {
    (name, ty, None)
}

const fn a(name: &'static str, element: Type) -> VirtualColumn {
    (name, Type::Text, Some(element))
}

pub static DEFS: &[VirtualDef] = &[
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_namespace",
        columns: &[
            c("oid", O),
            c("nspname", N),
            c("nspowner", O),
            a("nspacl", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_class",
        columns: &[
            c("oid", O),
            c("relname", N),
            c("relnamespace", O),
            c("reltype", O),
            c("reloftype", O),
            c("relowner", O),
            c("relam", O),
            c("relfilenode", O),
            c("reltablespace", O),
            c("relpages", I4),
            c("reltuples", Type::Float4),
            c("relallvisible", I4),
            c("reltoastrelid", O),
            c("relhasindex", B),
            c("relisshared", B),
            c("relpersistence", T),
            c("relkind", T),
            c("relnatts", I2),
            c("relchecks", I2),
            c("relhasrules", B),
            c("relhastriggers", B),
            c("relhassubclass", B),
            c("relrowsecurity", B),
            c("relforcerowsecurity", B),
            c("relispopulated", B),
            c("relreplident", T),
            c("relispartition", B),
            c("relrewrite", O),
            a("relacl", T),
            a("reloptions", T),
            c("relpartbound", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_attribute",
        columns: &[
            c("attrelid", O),
            c("attname", N),
            c("atttypid", O),
            c("attstattarget", I4),
            c("attlen", I2),
            c("attnum", I2),
            c("attndims", I4),
            c("atttypmod", I4),
            c("attbyval", B),
            c("attalign", T),
            c("attstorage", T),
            c("attcompression", T),
            c("attnotnull", B),
            c("atthasdef", B),
            c("atthasmissing", B),
            c("attidentity", T),
            c("attgenerated", T),
            c("attisdropped", B),
            c("attislocal", B),
            c("attinhcount", I4),
            c("attcollation", O),
            a("attacl", T),
            a("attoptions", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_type",
        columns: &[
            c("oid", O),
            c("typname", N),
            c("typnamespace", O),
            c("typowner", O),
            c("typlen", I2),
            c("typbyval", B),
            c("typtype", T),
            c("typcategory", T),
            c("typispreferred", B),
            c("typisdefined", B),
            c("typdelim", T),
            c("typrelid", O),
            c("typelem", O),
            c("typarray", O),
            c("typalign", T),
            c("typstorage", T),
            c("typnotnull", B),
            c("typbasetype", O),
            c("typtypmod", I4),
            c("typndims", I4),
            c("typcollation", O),
            c("typdefault", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_index",
        columns: &[
            c("indexrelid", O),
            c("indrelid", O),
            c("indnatts", I2),
            c("indnkeyatts", I2),
            c("indisunique", B),
            c("indnullsnotdistinct", B),
            c("indisprimary", B),
            c("indisexclusion", B),
            c("indimmediate", B),
            c("indisclustered", B),
            c("indisvalid", B),
            c("indcheckxmin", B),
            c("indisready", B),
            c("indislive", B),
            c("indisreplident", B),
            c("indkey", T),
            c("indoption", T),
            c("indexprs", T),
            c("indpred", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_database",
        columns: &[
            c("oid", O),
            c("datname", N),
            c("datdba", O),
            c("encoding", I4),
            c("datlocprovider", T),
            c("datistemplate", B),
            c("datallowconn", B),
            c("datconnlimit", I4),
            c("dattablespace", O),
            c("datcollate", T),
            c("datctype", T),
            c("daticulocale", T),
            c("datcollversion", T),
            a("datacl", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_constraint",
        columns: &[
            c("oid", O),
            c("conname", N),
            c("connamespace", O),
            c("contype", T),
            c("condeferrable", B),
            c("condeferred", B),
            c("convalidated", B),
            c("conrelid", O),
            c("contypid", O),
            c("conindid", O),
            c("conparentid", O),
            c("confrelid", O),
            c("confupdtype", T),
            c("confdeltype", T),
            c("confmatchtype", T),
            c("conislocal", B),
            c("coninhcount", I4),
            c("connoinherit", B),
            a("conkey", I2),
            a("confkey", I2),
            c("conbin", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_attrdef",
        columns: &[c("oid", O), c("adrelid", O), c("adnum", I2), c("adbin", T)],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_description",
        columns: &[
            c("objoid", O),
            c("classoid", O),
            c("objsubid", I4),
            c("description", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_am",
        columns: &[
            c("oid", O),
            c("amname", N),
            c("amhandler", O),
            c("amtype", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_collation",
        columns: &[
            c("oid", O),
            c("collname", N),
            c("collnamespace", O),
            c("collowner", O),
            c("collprovider", T),
            c("collisdeterministic", B),
            c("collencoding", I4),
            c("collcollate", T),
            c("collctype", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_roles",
        columns: &[
            c("oid", O),
            c("rolname", N),
            c("rolsuper", B),
            c("rolinherit", B),
            c("rolcreaterole", B),
            c("rolcreatedb", B),
            c("rolcanlogin", B),
            c("rolreplication", B),
            c("rolconnlimit", I4),
            c("rolpassword", T),
            c("rolvaliduntil", Type::Timestamptz),
            c("rolbypassrls", B),
            a("rolconfig", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_user",
        columns: &[
            c("usename", N),
            c("usesysid", O),
            c("usecreatedb", B),
            c("usesuper", B),
            c("userepl", B),
            c("usebypassrls", B),
            c("passwd", T),
            c("valuntil", Type::Timestamptz),
            a("useconfig", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_tables",
        columns: &[
            c("schemaname", N),
            c("tablename", N),
            c("tableowner", N),
            c("tablespace", N),
            c("hasindexes", B),
            c("hasrules", B),
            c("hastriggers", B),
            c("rowsecurity", B),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_indexes",
        columns: &[
            c("schemaname", N),
            c("tablename", N),
            c("indexname", N),
            c("tablespace", N),
            c("indexdef", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_settings",
        columns: &[
            c("name", T),
            c("setting", T),
            c("unit", T),
            c("category", T),
            c("short_desc", T),
            c("context", T),
            c("vartype", T),
            c("source", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_policy",
        columns: &[
            c("oid", O),
            c("polname", N),
            c("polrelid", O),
            c("polcmd", T),
            c("polpermissive", B),
            a("polroles", O),
            c("polqual", T),
            c("polwithcheck", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_statistic_ext",
        columns: &[
            c("oid", O),
            c("stxrelid", O),
            c("stxname", N),
            c("stxnamespace", O),
            c("stxowner", O),
            c("stxstattarget", I4),
            a("stxkeys", I2),
            a("stxkind", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_publication",
        columns: &[
            c("oid", O),
            c("pubname", N),
            c("pubowner", O),
            c("puballtables", B),
            c("pubinsert", B),
            c("pubupdate", B),
            c("pubdelete", B),
            c("pubtruncate", B),
            c("pubviaroot", B),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_publication_namespace",
        columns: &[c("oid", O), c("pnpubid", O), c("pnnspid", O)],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_publication_rel",
        columns: &[
            c("oid", O),
            c("prpubid", O),
            c("prrelid", O),
            c("prqual", T),
            a("prattrs", I2),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_trigger",
        columns: &[
            c("oid", O),
            c("tgrelid", O),
            c("tgparentid", O),
            c("tgname", N),
            c("tgfoid", O),
            c("tgtype", I2),
            c("tgenabled", T),
            c("tgisinternal", B),
            c("tgconstrrelid", O),
            c("tgconstrindid", O),
            c("tgconstraint", O),
            c("tgdeferrable", B),
            c("tginitdeferred", B),
            c("tgnargs", I2),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_rewrite",
        columns: &[
            c("oid", O),
            c("rulename", N),
            c("ev_class", O),
            c("ev_type", T),
            c("ev_enabled", T),
            c("is_instead", B),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_inherits",
        columns: &[
            c("inhrelid", O),
            c("inhparent", O),
            c("inhseqno", I4),
            c("inhdetachpending", B),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_tablespace",
        columns: &[c("oid", O), c("spcname", N), c("spcowner", O)],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_extension",
        columns: &[
            c("oid", O),
            c("extname", N),
            c("extowner", O),
            c("extnamespace", O),
            c("extversion", T),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_sequence",
        columns: &[
            c("seqrelid", O),
            c("seqtypid", O),
            c("seqstart", I8),
            c("seqincrement", I8),
            c("seqmax", I8),
            c("seqmin", I8),
            c("seqcache", I8),
            c("seqcycle", B),
        ],
    },
    VirtualDef {
        schema: "information_schema",
        name: "schemata",
        columns: &[
            c("catalog_name", N),
            c("schema_name", N),
            c("schema_owner", N),
        ],
    },
    VirtualDef {
        schema: "pg_catalog",
        name: "pg_views",
        columns: &[
            c("schemaname", N),
            c("viewname", N),
            c("viewowner", N),
            c("definition", T),
        ],
    },
    VirtualDef {
        schema: "information_schema",
        name: "views",
        columns: &[
            c("table_catalog", N),
            c("table_schema", N),
            c("table_name", N),
            c("view_definition", T),
            c("check_option", T),
            c("is_updatable", T),
            c("is_insertable_into", T),
            c("is_trigger_updatable", T),
            c("is_trigger_deletable", T),
            c("is_trigger_insertable_into", T),
        ],
    },
    VirtualDef {
        schema: "information_schema",
        name: "tables",
        columns: &[
            c("table_catalog", N),
            c("table_schema", N),
            c("table_name", N),
            c("table_type", T),
            c("is_insertable_into", T),
            c("is_typed", T),
        ],
    },
    VirtualDef {
        schema: "information_schema",
        name: "columns",
        columns: &[
            c("table_catalog", N),
            c("table_schema", N),
            c("table_name", N),
            c("column_name", N),
            c("ordinal_position", I4),
            c("column_default", T),
            c("is_nullable", T),
            c("data_type", T),
            c("character_maximum_length", I4),
            c("numeric_precision", I4),
            c("numeric_scale", I4),
            c("udt_name", N),
            c("is_identity", T),
            c("identity_generation", T),
        ],
    },
    VirtualDef {
        schema: "information_schema",
        name: "table_constraints",
        columns: &[
            c("constraint_catalog", N),
            c("constraint_schema", N),
            c("constraint_name", N),
            c("table_catalog", N),
            c("table_schema", N),
            c("table_name", N),
            c("constraint_type", T),
            c("is_deferrable", T),
            c("initially_deferred", T),
        ],
    },
    VirtualDef {
        schema: "information_schema",
        name: "key_column_usage",
        columns: &[
            c("constraint_catalog", N),
            c("constraint_schema", N),
            c("constraint_name", N),
            c("table_catalog", N),
            c("table_schema", N),
            c("table_name", N),
            c("column_name", N),
            c("ordinal_position", I4),
        ],
    },
];

/// What rows of the virtual tables depend on besides the catalog.
pub struct VirtualCx<'a> {
    pub catalog: &'a Catalog,
    pub database: &'a str,
    pub user: &'a str,
    pub vars: &'a Vars,
    /// Row counts per table (statistics), for `reltuples`.
    pub rows: &'a dyn Fn(DescId) -> Option<u64>,
}

fn name(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn oid(id: u64) -> Value {
    Value::Oid(id as u32)
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// `pg_catalog.format_type(type, typmod)` for our types.
pub fn format_type(ty: Type, typmod: i32) -> String {
    let m = typmod - 4;
    match ty {
        Type::Bool => "boolean".into(),
        Type::Int2 => "smallint".into(),
        Type::Int4 => "integer".into(),
        Type::Int8 => "bigint".into(),
        Type::Float4 => "real".into(),
        Type::Float8 => "double precision".into(),
        Type::Numeric if typmod >= 4 => format!("numeric({},{})", m >> 16, m & 0xFFFF),
        Type::Numeric => "numeric".into(),
        Type::Varchar if typmod >= 4 => format!("character varying({m})"),
        Type::Varchar => "character varying".into(),
        Type::Bpchar if typmod >= 4 => format!("character({m})"),
        Type::Bpchar => "bpchar".into(),
        Type::Timestamp => "timestamp without time zone".into(),
        Type::Timestamptz => "timestamp with time zone".into(),
        Type::Time => "time without time zone".into(),
        other => other.name().into(),
    }
}

/// The schema (id, name) of the session's database that holds `schema_id`.
fn schemas(cx: &VirtualCx<'_>) -> Vec<(DescId, String)> {
    let Some(db) = cx.catalog.database(cx.database) else {
        return Vec::new();
    };
    cx.catalog
        .schemas_of(db.id)
        .map(|s| (s.id, s.name.clone()))
        .collect()
}

/// Tables of the session's database, with their schema name.
fn tables<'c>(cx: &VirtualCx<'c>) -> Vec<(&'c TableDesc, String)> {
    let schemas = schemas(cx);
    cx.catalog
        .tables
        .values()
        .filter_map(|t| {
            schemas
                .iter()
                .find(|(id, _)| *id == t.schema_id)
                .map(|(_, n)| (&**t, n.clone()))
        })
        .collect()
}

/// `character_maximum_length`, `numeric_precision`, `numeric_scale` of
/// information_schema.columns.
fn column_sizes(ty: Type, typmod: i32) -> (Value, Value, Value) {
    let m = typmod - 4;
    match ty {
        Type::Varchar | Type::Bpchar if typmod >= 4 => (Value::Int4(m), Value::Null, Value::Null),
        Type::Numeric if typmod >= 4 => {
            (Value::Null, Value::Int4(m >> 16), Value::Int4(m & 0xFFFF))
        }
        Type::Int2 => (Value::Null, Value::Int4(16), Value::Int4(0)),
        Type::Int4 => (Value::Null, Value::Int4(32), Value::Int4(0)),
        Type::Int8 => (Value::Null, Value::Int4(64), Value::Int4(0)),
        _ => (Value::Null, Value::Null, Value::Null),
    }
}

/// `data_type` of information_schema.columns.
fn data_type_name(ty: Type, typmod: i32) -> String {
    match ty {
        Type::Varchar | Type::Bpchar | Type::Numeric => format_type(ty, -1),
        other => format_type(other, typmod),
    }
}

/// Views of the session's database, with their schema name.
fn views<'c>(cx: &VirtualCx<'c>) -> Vec<(&'c ViewDesc, String)> {
    let schemas = schemas(cx);
    cx.catalog
        .views
        .values()
        .filter_map(|v| {
            schemas
                .iter()
                .find(|(id, _)| *id == v.schema_id)
                .map(|(_, n)| (&**v, n.clone()))
        })
        .collect()
}

/// `pg_get_viewdef`: the stored query, as PostgreSQL prints it (a leading
/// space, a trailing semicolon), though in sqlparser's layout.
pub fn view_def(v: &ViewDesc) -> String {
    format!(" {};", v.query)
}

/// The attribute number of a column: its column id, stable across
/// ALTER TABLE like PostgreSQL's (with gaps where columns were dropped).
pub fn attnum(t: &TableDesc, column: u32) -> i16 {
    t.column_by_id(column).map_or(0, |c| c.id as i16)
}

fn key_list(t: &TableDesc, ids: &[u32]) -> Value {
    let items: Vec<Value> = ids.iter().map(|&id| Value::Int2(attnum(t, id))).collect();
    Value::Text(crate::expr::ops::array_text(&items))
}

/// A table's constraints as (oid, name, type, definition columns...).
pub struct ConstraintRow {
    pub oid: u32,
    pub name: String,
    pub kind: char,
    pub index_oid: u32,
    pub referenced: u64,
    pub columns: Vec<u32>,
    pub ref_columns: Vec<u32>,
    pub check: Option<String>,
    pub on_update: char,
    pub on_delete: char,
}

/// The constraints of a table as pg_constraint sees them.
pub fn constraints(t: &TableDesc, catalog: &Catalog) -> Vec<ConstraintRow> {
    let mut out = Vec::new();
    let mut n = 0u32;
    let mut next_oid = || {
        n += 1;
        CONSTRAINT_OID_TAG | ((t.id as u32) << 8) | n
    };
    if !t.has_rowid() {
        out.push(ConstraintRow {
            oid: next_oid(),
            name: t.primary.name.clone(),
            kind: 'p',
            index_oid: t.primary.oid as u32,
            referenced: 0,
            columns: t.primary.columns.iter().map(|c| c.column).collect(),
            ref_columns: Vec::new(),
            check: None,
            on_update: ' ',
            on_delete: ' ',
        });
    }
    for index in t.indexes.iter().filter(|i| i.unique) {
        out.push(ConstraintRow {
            oid: next_oid(),
            name: index.name.clone(),
            kind: 'u',
            index_oid: index.oid as u32,
            referenced: 0,
            columns: index.columns.iter().map(|c| c.column).collect(),
            ref_columns: Vec::new(),
            check: None,
            on_update: ' ',
            on_delete: ' ',
        });
    }
    for check in &t.checks {
        out.push(ConstraintRow {
            oid: next_oid(),
            name: check.name.clone(),
            kind: 'c',
            index_oid: 0,
            referenced: 0,
            columns: Vec::new(),
            ref_columns: Vec::new(),
            check: Some(check.expr.clone()),
            on_update: ' ',
            on_delete: ' ',
        });
    }
    for fk in &t.foreign_keys {
        let index_oid = catalog
            .table(fk.ref_table)
            .and_then(|r| {
                r.all_indexes().find(|i| {
                    let mut a: Vec<u32> = i.columns.iter().map(|c| c.column).collect();
                    let mut b = fk.ref_columns.clone();
                    a.sort_unstable();
                    b.sort_unstable();
                    i.unique && a == b
                })
            })
            .map_or(0, |i| i.oid as u32);
        let code = |a: FkAction| a.code();
        out.push(ConstraintRow {
            oid: next_oid(),
            name: fk.name.clone(),
            kind: 'f',
            index_oid,
            referenced: fk.ref_table,
            columns: fk.columns.clone(),
            ref_columns: fk.ref_columns.clone(),
            check: None,
            on_update: code(fk.on_update),
            on_delete: code(fk.on_delete),
        });
    }
    out
}

/// `CREATE [UNIQUE] INDEX name ON schema.table USING btree (cols)`.
pub fn index_def(t: &TableDesc, schema: &str, index: &super::IndexDesc) -> String {
    let cols: Vec<String> = index
        .columns
        .iter()
        .map(|ic| {
            let mut s = t
                .column_by_id(ic.column)
                .map_or("?".to_string(), |c| c.name.clone());
            match (ic.direction, ic.nulls) {
                (Direction::Asc, Nulls::Last) => {}
                (Direction::Asc, Nulls::First) => s.push_str(" NULLS FIRST"),
                (Direction::Desc, Nulls::First) => s.push_str(" DESC"),
                (Direction::Desc, Nulls::Last) => s.push_str(" DESC NULLS LAST"),
            }
            s
        })
        .collect();
    let mut def = format!(
        "CREATE {}INDEX {} ON {schema}.{} USING btree ({})",
        if index.unique { "UNIQUE " } else { "" },
        index.name,
        t.name,
        cols.join(", ")
    );
    if !index.stored.is_empty() {
        let stored: Vec<String> = index
            .stored
            .iter()
            .filter_map(|id| t.column_by_id(*id))
            .map(|c| c.name.clone())
            .collect();
        def.push_str(&format!(" INCLUDE ({})", stored.join(", ")));
    }
    def
}

/// `pg_get_constraintdef` of a constraint row.
pub fn constraint_def(t: &TableDesc, row: &ConstraintRow, catalog: &Catalog) -> String {
    let names = |table: &TableDesc, ids: &[u32]| -> String {
        ids.iter()
            .filter_map(|id| table.column_by_id(*id))
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match row.kind {
        'p' => format!("PRIMARY KEY ({})", names(t, &row.columns)),
        'u' => format!("UNIQUE ({})", names(t, &row.columns)),
        'c' => format!("CHECK ({})", row.check.clone().unwrap_or_default()),
        _ => {
            let Some(r) = catalog.table(row.referenced) else {
                return String::new();
            };
            let mut def = format!(
                "FOREIGN KEY ({}) REFERENCES {}({})",
                names(t, &row.columns),
                r.name,
                names(r, &row.ref_columns)
            );
            let action = |c: char| match c {
                'r' => Some("RESTRICT"),
                'c' => Some("CASCADE"),
                'n' => Some("SET NULL"),
                'd' => Some("SET DEFAULT"),
                _ => None,
            };
            if let Some(a) = action(row.on_update) {
                def.push_str(&format!(" ON UPDATE {a}"));
            }
            if let Some(a) = action(row.on_delete) {
                def.push_str(&format!(" ON DELETE {a}"));
            }
            def
        }
    }
}

/// The rows of a virtual table.
pub fn rows(table: VirtualTable, cx: &VirtualCx<'_>) -> Vec<Vec<Value>> {
    let def = table.def();
    let catalog = cx.catalog;
    let mut out: Vec<Vec<Value>> = Vec::new();
    let bool_ = Value::Bool;
    match (def.schema, def.name) {
        ("pg_catalog", "pg_namespace") => {
            out.push(vec![
                oid(PG_CATALOG_OID.into()),
                name("pg_catalog"),
                oid(ROLE_OID.into()),
                Value::Null,
            ]);
            out.push(vec![
                oid(INFORMATION_SCHEMA_OID.into()),
                name("information_schema"),
                oid(ROLE_OID.into()),
                Value::Null,
            ]);
            for (id, n) in schemas(cx) {
                out.push(vec![oid(id), name(&n), oid(ROLE_OID.into()), Value::Null]);
            }
        }
        ("pg_catalog", "pg_class") => {
            for (t, _) in tables(cx) {
                let rows = (cx.rows)(t.id).unwrap_or(0) as f32;
                let visible = t.columns.iter().filter(|c| !c.hidden).count() as i16;
                let mut row = class_row(
                    t.id,
                    &t.name,
                    t.schema_id,
                    "r",
                    HEAP_AM_OID,
                    visible,
                    t.checks.len() as i16,
                    true,
                    rows,
                );
                // PostgreSQL implements foreign keys with triggers on both
                // tables; psql reads this flag before listing them.
                let triggers = !t.foreign_keys.is_empty() || !catalog.referencing(t.id).is_empty();
                row[RELHASTRIGGERS] = Value::Bool(triggers);
                out.push(row);
                for index in t.all_indexes() {
                    if index.id == t.primary.id && t.has_rowid() {
                        continue;
                    }
                    out.push(class_row(
                        index.oid,
                        &index.name,
                        t.schema_id,
                        "i",
                        BTREE_AM_OID,
                        index.columns.len() as i16,
                        0,
                        false,
                        rows,
                    ));
                }
            }
            let schema_ids: Vec<DescId> = schemas(cx).into_iter().map(|(id, _)| id).collect();
            for s in catalog
                .sequences
                .values()
                .filter(|s| schema_ids.contains(&s.schema_id))
            {
                out.push(class_row(
                    s.id,
                    &s.name,
                    s.schema_id,
                    "S",
                    0,
                    3,
                    0,
                    false,
                    1.0,
                ));
            }
            for (v, _) in views(cx) {
                let mut row = class_row(
                    v.id,
                    &v.name,
                    v.schema_id,
                    "v",
                    0,
                    v.columns.len() as i16,
                    0,
                    false,
                    -1.0,
                );
                // A view is a `_RETURN` rule in PostgreSQL.
                row[RELHASRULES] = Value::Bool(true);
                out.push(row);
            }
        }
        ("pg_catalog", "pg_attribute") => {
            for (t, _) in tables(cx) {
                for c in t.columns.iter().filter(|c| !c.hidden) {
                    let n = c.id as i16;
                    out.push(vec![
                        oid(t.id),
                        name(&c.name),
                        oid(c.ty.oid().into()),
                        Value::Int4(-1),
                        Value::Int2(type_len(c.ty)),
                        Value::Int2(n),
                        Value::Int4(0),
                        Value::Int4(c.typmod),
                        bool_(type_len(c.ty) > 0),
                        text("i"),
                        text(if type_len(c.ty) > 0 { "p" } else { "x" }),
                        text(""),
                        bool_(!c.nullable),
                        bool_(c.default.is_some()),
                        bool_(!c.missing.is_null()),
                        text(match c.identity {
                            Some(super::Identity::Always) => "a",
                            Some(super::Identity::ByDefault) => "d",
                            None => "",
                        }),
                        text(""),
                        bool_(false),
                        bool_(true),
                        Value::Int4(0),
                        oid(if is_collatable(c.ty) {
                            DEFAULT_COLLATION_OID.into()
                        } else {
                            0
                        }),
                        Value::Null,
                        Value::Null,
                    ]);
                }
                for index in t.all_indexes() {
                    for (i, ic) in index.columns.iter().enumerate() {
                        let Some(c) = t.column_by_id(ic.column) else {
                            continue;
                        };
                        out.push(vec![
                            oid(index.oid),
                            name(&c.name),
                            oid(c.ty.oid().into()),
                            Value::Int4(-1),
                            Value::Int2(type_len(c.ty)),
                            Value::Int2(i as i16 + 1),
                            Value::Int4(0),
                            Value::Int4(c.typmod),
                            bool_(type_len(c.ty) > 0),
                            text("i"),
                            text("p"),
                            text(""),
                            bool_(false),
                            bool_(false),
                            bool_(false),
                            text(""),
                            text(""),
                            bool_(false),
                            bool_(true),
                            Value::Int4(0),
                            oid(0),
                            Value::Null,
                            Value::Null,
                        ]);
                    }
                }
            }
            for (v, _) in views(cx) {
                for (i, c) in v.columns.iter().enumerate() {
                    out.push(vec![
                        oid(v.id),
                        name(&c.name),
                        oid(c.ty.oid().into()),
                        Value::Int4(-1),
                        Value::Int2(type_len(c.ty)),
                        Value::Int2(i as i16 + 1),
                        Value::Int4(0),
                        Value::Int4(c.typmod),
                        bool_(type_len(c.ty) > 0),
                        text("i"),
                        text(if type_len(c.ty) > 0 { "p" } else { "x" }),
                        text(""),
                        bool_(false),
                        bool_(false),
                        bool_(false),
                        text(""),
                        text(""),
                        bool_(false),
                        bool_(true),
                        Value::Int4(0),
                        oid(if is_collatable(c.ty) {
                            DEFAULT_COLLATION_OID.into()
                        } else {
                            0
                        }),
                        Value::Null,
                        Value::Null,
                    ]);
                }
            }
        }
        ("pg_catalog", "pg_type") => {
            for ty in Type::ALL.into_iter().filter(|t| *t != Type::Unknown) {
                out.push(vec![
                    oid(ty.oid().into()),
                    name(ty.name()),
                    oid(PG_CATALOG_OID.into()),
                    oid(ROLE_OID.into()),
                    Value::Int2(type_len(ty)),
                    bool_(type_len(ty) > 0 && type_len(ty) <= 8),
                    text("b"),
                    text(type_category(ty)),
                    bool_(matches!(
                        ty,
                        Type::Text | Type::Float8 | Type::Bool | Type::Timestamptz | Type::Oid
                    )),
                    bool_(true),
                    text(","),
                    oid(0),
                    oid(0),
                    oid(0),
                    text("i"),
                    text(if type_len(ty) > 0 { "p" } else { "x" }),
                    bool_(false),
                    oid(0),
                    Value::Int4(-1),
                    Value::Int4(0),
                    oid(if is_collatable(ty) {
                        DEFAULT_COLLATION_OID.into()
                    } else {
                        0
                    }),
                    Value::Null,
                ]);
            }
        }
        ("pg_catalog", "pg_index") => {
            for (t, _) in tables(cx) {
                for index in t.all_indexes() {
                    let primary = index.id == t.primary.id;
                    if primary && t.has_rowid() {
                        continue;
                    }
                    let keys: Vec<String> = index
                        .columns
                        .iter()
                        .map(|ic| attnum(t, ic.column).to_string())
                        .chain(index.stored.iter().map(|id| attnum(t, *id).to_string()))
                        .collect();
                    let options: Vec<String> = index
                        .columns
                        .iter()
                        .map(|ic| {
                            let desc = u8::from(ic.direction == Direction::Desc);
                            let first = u8::from(ic.nulls == Nulls::First) * 2;
                            (desc | first).to_string()
                        })
                        .collect();
                    let natts = (index.columns.len() + index.stored.len()) as i16;
                    out.push(vec![
                        oid(index.oid),
                        oid(t.id),
                        Value::Int2(natts),
                        Value::Int2(index.columns.len() as i16),
                        bool_(index.unique),
                        bool_(false),
                        bool_(primary),
                        bool_(false),
                        bool_(true),
                        bool_(false),
                        bool_(true),
                        bool_(false),
                        bool_(true),
                        bool_(true),
                        bool_(false),
                        text(&keys.join(" ")),
                        text(&options.join(" ")),
                        Value::Null,
                        Value::Null,
                    ]);
                }
            }
        }
        ("pg_catalog", "pg_database") => {
            for d in catalog.databases.values() {
                out.push(vec![
                    oid(d.id),
                    name(&d.name),
                    oid(ROLE_OID.into()),
                    Value::Int4(6),
                    text("c"),
                    bool_(false),
                    bool_(true),
                    Value::Int4(-1),
                    oid(1663),
                    text("C"),
                    text("C"),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ]);
            }
        }
        ("pg_catalog", "pg_constraint") => {
            for (t, _) in tables(cx) {
                for r in constraints(t, catalog) {
                    out.push(vec![
                        oid(r.oid.into()),
                        name(&r.name),
                        oid(t.schema_id),
                        text(&r.kind.to_string()),
                        bool_(false),
                        bool_(false),
                        bool_(true),
                        oid(t.id),
                        oid(0),
                        oid(r.index_oid.into()),
                        oid(0),
                        oid(r.referenced),
                        text(&r.on_update.to_string()),
                        text(&r.on_delete.to_string()),
                        text(if r.kind == 'f' { "s" } else { " " }),
                        bool_(true),
                        Value::Int4(0),
                        bool_(r.kind == 'c'),
                        if r.columns.is_empty() {
                            Value::Null
                        } else {
                            key_list(t, &r.columns)
                        },
                        match catalog.table(r.referenced) {
                            Some(rt) if r.kind == 'f' => key_list(rt, &r.ref_columns),
                            _ => Value::Null,
                        },
                        r.check.map_or(Value::Null, Value::Text),
                    ]);
                }
            }
        }
        ("pg_catalog", "pg_attrdef") => {
            for (t, _) in tables(cx) {
                for c in t.columns.iter().filter(|c| !c.hidden) {
                    if let Some(d) = &c.default {
                        let n = attnum(t, c.id);
                        out.push(vec![
                            oid((ATTRDEF_OID_TAG | ((t.id as u32) << 8) | n as u32).into()),
                            oid(t.id),
                            Value::Int2(n),
                            text(d),
                        ]);
                    }
                }
            }
        }
        ("pg_catalog", "pg_description") => {
            for ((object, sub), comment) in &catalog.comments {
                out.push(vec![
                    oid(*object),
                    oid(1259),
                    Value::Int4(*sub),
                    text(comment),
                ]);
            }
        }
        ("pg_catalog", "pg_am") => {
            out.push(vec![
                oid(HEAP_AM_OID.into()),
                name("heap"),
                oid(0),
                text("t"),
            ]);
            out.push(vec![
                oid(BTREE_AM_OID.into()),
                name("btree"),
                oid(0),
                text("i"),
            ]);
        }
        ("pg_catalog", "pg_collation") => {
            for (o, n) in [
                (DEFAULT_COLLATION_OID, "default"),
                (950, "C"),
                (951, "POSIX"),
            ] {
                out.push(vec![
                    oid(o.into()),
                    name(n),
                    oid(PG_CATALOG_OID.into()),
                    oid(ROLE_OID.into()),
                    text(if o == DEFAULT_COLLATION_OID { "d" } else { "c" }),
                    bool_(true),
                    Value::Int4(-1),
                    text("C"),
                    text("C"),
                ]);
            }
        }
        ("pg_catalog", "pg_roles") => {
            out.push(vec![
                oid(ROLE_OID.into()),
                name(cx.user),
                bool_(true),
                bool_(true),
                bool_(true),
                bool_(true),
                bool_(true),
                bool_(true),
                Value::Int4(-1),
                text("********"),
                Value::Null,
                bool_(true),
                Value::Null,
            ]);
        }
        ("pg_catalog", "pg_user") => {
            out.push(vec![
                name(cx.user),
                oid(ROLE_OID.into()),
                bool_(true),
                bool_(true),
                bool_(true),
                bool_(true),
                text("********"),
                Value::Null,
                Value::Null,
            ]);
        }
        ("pg_catalog", "pg_tables") => {
            for (t, schema) in tables(cx) {
                out.push(vec![
                    name(&schema),
                    name(&t.name),
                    name(cx.user),
                    Value::Null,
                    bool_(!t.has_rowid() || !t.indexes.is_empty()),
                    bool_(false),
                    bool_(false),
                    bool_(false),
                ]);
            }
        }
        ("pg_catalog", "pg_indexes") => {
            for (t, schema) in tables(cx) {
                for index in t.all_indexes() {
                    if index.id == t.primary.id && t.has_rowid() {
                        continue;
                    }
                    out.push(vec![
                        name(&schema),
                        name(&t.name),
                        name(&index.name),
                        Value::Null,
                        text(&index_def(t, &schema, index)),
                    ]);
                }
            }
        }
        ("pg_catalog", "pg_settings") => {
            for (n, v, d) in cx.vars.all() {
                out.push(vec![
                    text(&n),
                    text(&v),
                    Value::Null,
                    text("Ungrouped"),
                    text(&d),
                    text("user"),
                    text("string"),
                    text("default"),
                ]);
            }
        }
        ("pg_catalog", "pg_tablespace") => {
            out.push(vec![oid(1663), name("pg_default"), oid(ROLE_OID.into())]);
        }
        ("pg_catalog", "pg_sequence") => {
            let schema_ids: Vec<DescId> = schemas(cx).into_iter().map(|(id, _)| id).collect();
            for s in catalog
                .sequences
                .values()
                .filter(|s| schema_ids.contains(&s.schema_id))
            {
                out.push(vec![
                    oid(s.id),
                    oid(Type::Int8.oid().into()),
                    Value::Int8(s.start),
                    Value::Int8(s.increment),
                    Value::Int8(s.max),
                    Value::Int8(s.min),
                    Value::Int8(1),
                    bool_(s.cycle),
                ]);
            }
        }
        ("information_schema", "schemata") => {
            for n in ["pg_catalog", "information_schema"] {
                out.push(vec![name(cx.database), name(n), name(cx.user)]);
            }
            for (_, n) in schemas(cx) {
                out.push(vec![name(cx.database), name(&n), name(cx.user)]);
            }
        }
        ("information_schema", "tables") => {
            for (t, schema) in tables(cx) {
                out.push(vec![
                    name(cx.database),
                    name(&schema),
                    name(&t.name),
                    text("BASE TABLE"),
                    text("YES"),
                    text("NO"),
                ]);
            }
            for (v, schema) in views(cx) {
                out.push(vec![
                    name(cx.database),
                    name(&schema),
                    name(&v.name),
                    text("VIEW"),
                    text("NO"),
                    text("NO"),
                ]);
            }
        }
        ("pg_catalog", "pg_views") => {
            for (v, schema) in views(cx) {
                out.push(vec![
                    name(&schema),
                    name(&v.name),
                    name(cx.user),
                    text(&view_def(v)),
                ]);
            }
        }
        ("information_schema", "views") => {
            for (v, schema) in views(cx) {
                out.push(vec![
                    name(cx.database),
                    name(&schema),
                    name(&v.name),
                    text(&view_def(v)),
                    text("NONE"),
                    text("NO"),
                    text("NO"),
                    text("NO"),
                    text("NO"),
                    text("NO"),
                ]);
            }
        }
        ("information_schema", "columns") => {
            for (t, schema) in tables(cx) {
                for (i, c) in t.columns.iter().filter(|c| !c.hidden).enumerate() {
                    let (length, precision, scale) = column_sizes(c.ty, c.typmod);
                    let data_type = data_type_name(c.ty, c.typmod);
                    out.push(vec![
                        name(cx.database),
                        name(&schema),
                        name(&t.name),
                        name(&c.name),
                        Value::Int4(i as i32 + 1),
                        c.default.clone().map_or(Value::Null, Value::Text),
                        text(if c.nullable { "YES" } else { "NO" }),
                        text(&data_type),
                        length,
                        precision,
                        scale,
                        name(c.ty.name()),
                        text(if c.identity.is_some() { "YES" } else { "NO" }),
                        match c.identity {
                            Some(super::Identity::Always) => text("ALWAYS"),
                            Some(super::Identity::ByDefault) => text("BY DEFAULT"),
                            None => Value::Null,
                        },
                    ]);
                }
            }
            for (v, schema) in views(cx) {
                for (i, c) in v.columns.iter().enumerate() {
                    let (length, precision, scale) = column_sizes(c.ty, c.typmod);
                    out.push(vec![
                        name(cx.database),
                        name(&schema),
                        name(&v.name),
                        name(&c.name),
                        Value::Int4(i as i32 + 1),
                        Value::Null,
                        text("YES"),
                        text(&data_type_name(c.ty, c.typmod)),
                        length,
                        precision,
                        scale,
                        name(c.ty.name()),
                        text("NO"),
                        Value::Null,
                    ]);
                }
            }
        }
        ("information_schema", "table_constraints") => {
            for (t, schema) in tables(cx) {
                for r in constraints(t, catalog) {
                    let kind = match r.kind {
                        'p' => "PRIMARY KEY",
                        'u' => "UNIQUE",
                        'c' => "CHECK",
                        _ => "FOREIGN KEY",
                    };
                    out.push(vec![
                        name(cx.database),
                        name(&schema),
                        name(&r.name),
                        name(cx.database),
                        name(&schema),
                        name(&t.name),
                        text(kind),
                        text("NO"),
                        text("NO"),
                    ]);
                }
            }
        }
        ("information_schema", "key_column_usage") => {
            for (t, schema) in tables(cx) {
                for r in constraints(t, catalog)
                    .into_iter()
                    .filter(|r| r.kind != 'c')
                {
                    for (i, id) in r.columns.iter().enumerate() {
                        let Some(c) = t.column_by_id(*id) else {
                            continue;
                        };
                        out.push(vec![
                            name(cx.database),
                            name(&schema),
                            name(&r.name),
                            name(cx.database),
                            name(&schema),
                            name(&t.name),
                            name(&c.name),
                            Value::Int4(i as i32 + 1),
                        ]);
                    }
                }
            }
        }
        // Tables with no rows in TellerDB: policies, extended statistics,
        // publications, triggers, inheritance, extensions.
        _ => {}
    }
    debug_assert!(
        out.iter().all(|r| r.len() == def.columns.len()),
        "{}",
        def.name
    );
    out
}

/// Position of `relhasrules` in a pg_class row.
const RELHASRULES: usize = 19;
/// Position of `relhastriggers` in a pg_class row.
const RELHASTRIGGERS: usize = 20;

#[allow(clippy::too_many_arguments)]
fn class_row(
    id: u64,
    relname: &str,
    schema: DescId,
    kind: &str,
    am: u32,
    natts: i16,
    checks: i16,
    has_index: bool,
    tuples: f32,
) -> Vec<Value> {
    vec![
        oid(id),
        name(relname),
        oid(schema),
        oid(0),
        oid(0),
        oid(ROLE_OID.into()),
        oid(am.into()),
        oid(id),
        oid(0),
        Value::Int4(0),
        Value::Float4(tuples),
        Value::Int4(0),
        oid(0),
        Value::Bool(has_index),
        Value::Bool(false),
        text("p"),
        text(kind),
        Value::Int2(natts),
        Value::Int2(checks),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(true),
        text("d"),
        Value::Bool(false),
        oid(0),
        Value::Null,
        Value::Null,
        Value::Null,
    ]
}

fn type_len(ty: Type) -> i16 {
    match ty {
        Type::Bool => 1,
        Type::Int2 => 2,
        Type::Int4 | Type::Float4 | Type::Date | Type::Oid => 4,
        Type::Int8 | Type::Float8 | Type::Time | Type::Timestamp | Type::Timestamptz => 8,
        Type::Interval | Type::Uuid => 16,
        Type::Name => 64,
        _ => -1,
    }
}

fn is_collatable(ty: Type) -> bool {
    matches!(ty, Type::Text | Type::Varchar | Type::Bpchar | Type::Name)
}

fn type_category(ty: Type) -> &'static str {
    match ty {
        Type::Bool => "B",
        Type::Int2
        | Type::Int4
        | Type::Int8
        | Type::Float4
        | Type::Float8
        | Type::Numeric
        | Type::Oid => "N",
        Type::Text | Type::Varchar | Type::Bpchar | Type::Name => "S",
        Type::Date | Type::Time | Type::Timestamp | Type::Timestamptz => "D",
        Type::Interval => "T",
        _ => "U",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_consistent() {
        let class = VirtualTable::find(None, "pg_class").expect("pg_class");
        assert_eq!(class.def().columns[RELHASTRIGGERS].0, "relhastriggers");
        for def in DEFS {
            let mut names: Vec<&str> = def.columns.iter().map(|c| c.0).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), def.columns.len(), "{}", def.name);
        }
        let catalog = Catalog::bootstrap();
        let vars = Vars::new("teller", 0, 1);
        let cx = VirtualCx {
            catalog: &catalog,
            database: "teller",
            user: "teller",
            vars: &vars,
            rows: &|_| None,
        };
        for (i, def) in DEFS.iter().enumerate() {
            for row in rows(VirtualTable(i), &cx) {
                assert_eq!(row.len(), def.columns.len(), "{}", def.name);
            }
        }
        assert_eq!(
            format_type(Type::Numeric, ((12 << 16) | 2) + 4),
            "numeric(12,2)"
        );
        assert_eq!(format_type(Type::Varchar, 24), "character varying(20)");
    }
}
