//! Evaluation of the catalog functions ([`crate::expr::CatalogFn`]) against
//! the statement's catalog snapshot.

use teller_net::types::{Type, Value};
use teller_net::PgResult;

use super::Env;
use crate::catalog::pg::{self, CONSTRAINT_OID_TAG};
use crate::catalog::{Catalog, Relation, TableDesc};
use crate::expr::ops::{array_elements, array_text};
use crate::expr::CatalogFn;

fn oid_of(v: &Value) -> Option<u64> {
    match v {
        Value::Oid(o) => Some(u64::from(*o)),
        Value::Int4(n) => u64::try_from(*n).ok(),
        Value::Int8(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

/// The schema name of a table's schema id.
fn schema_name(catalog: &Catalog, id: u64) -> String {
    catalog
        .schemas
        .get(&id)
        .map_or("public".to_string(), |s| s.name.clone())
}

/// The relation (table, index or sequence) with this oid.
fn relation_name(catalog: &Catalog, oid: u64) -> Option<(String, u64)> {
    if let Some(t) = catalog.table(oid) {
        return Some((t.name.clone(), t.schema_id));
    }
    if let Some(s) = catalog.sequence(oid) {
        return Some((s.name.clone(), s.schema_id));
    }
    if let Some(v) = catalog.view(oid) {
        return Some((v.name.clone(), v.schema_id));
    }
    catalog.tables.values().find_map(|t| {
        t.all_indexes()
            .find(|i| i.oid == oid)
            .map(|i| (i.name.clone(), t.schema_id))
    })
}

/// The table owning a constraint oid and the constraint's row.
fn constraint(catalog: &Catalog, oid: u64) -> Option<(&TableDesc, pg::ConstraintRow)> {
    let oid = u32::try_from(oid).ok()?;
    if oid & CONSTRAINT_OID_TAG == 0 {
        return None;
    }
    let table = u64::from((oid & !CONSTRAINT_OID_TAG) >> 8);
    let t = catalog.table(table)?;
    let row = pg::constraints(t, catalog)
        .into_iter()
        .find(|r| r.oid == oid)?;
    Some((t, row))
}

/// PostgreSQL's `pg_size_pretty`.
fn size_pretty(bytes: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes;
    let mut unit = 0;
    while size.abs() >= 10 * 1024 && unit < units.len() - 1 {
        size = (size + if size >= 0 { 512 } else { -512 }) / 1024;
        unit += 1;
    }
    format!("{size} {}", units[unit])
}

/// Evaluates a catalog function.
pub fn call(env: &Env<'_>, func: CatalogFn, args: &[Value]) -> PgResult<Value> {
    let catalog = env.catalog;
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    if args.iter().any(Value::is_null)
        && !matches!(func, CatalogFn::ArrayToString | CatalogFn::HasPrivilege)
    {
        return Ok(Value::Null);
    }
    Ok(match func {
        CatalogFn::GetUserById => Value::Text(if oid_of(arg(0)) == Some(pg::ROLE_OID.into()) {
            env.user.to_string()
        } else {
            format!("unknown (OID={})", oid_of(arg(0)).unwrap_or(0))
        }),
        CatalogFn::TableIsVisible => {
            let visible = oid_of(arg(0))
                .and_then(|o| relation_name(catalog, o))
                .is_some_and(|(_, schema)| {
                    catalog
                        .schemas
                        .get(&schema)
                        .is_some_and(|s| s.name == crate::catalog::PUBLIC_SCHEMA)
                });
            Value::Bool(visible)
        }
        CatalogFn::FormatType => {
            let oid = oid_of(arg(0)).unwrap_or(0) as u32;
            let typmod = match arg(1) {
                Value::Int4(m) => *m,
                _ => -1,
            };
            match Type::from_oid(oid) {
                Some(t) => Value::Text(pg::format_type(t, typmod)),
                None => Value::Text("???".into()),
            }
        }
        CatalogFn::GetExpr => arg(0).clone(),
        CatalogFn::PartitionAncestors => arg(0).clone(),
        CatalogFn::GetIndexDef => {
            let oid = oid_of(arg(0)).unwrap_or(0);
            let found = catalog.tables.values().find_map(|t| {
                t.all_indexes()
                    .find(|i| i.oid == oid)
                    .map(|i| pg::index_def(t, &schema_name(catalog, t.schema_id), i))
            });
            found.map_or(Value::Null, Value::Text)
        }
        CatalogFn::GetViewDef => match catalog.view(oid_of(arg(0)).unwrap_or(0)) {
            Some(v) => Value::Text(pg::view_def(v)),
            None => Value::Null,
        },
        CatalogFn::GetConstraintDef => match constraint(catalog, oid_of(arg(0)).unwrap_or(0)) {
            Some((t, row)) => Value::Text(pg::constraint_def(t, &row, catalog)),
            None => Value::Null,
        },
        CatalogFn::EncodingToChar => Value::Text(
            if matches!(arg(0), Value::Int4(6)) {
                "UTF8"
            } else {
                ""
            }
            .into(),
        ),
        CatalogFn::ArrayToString => {
            let (Some(array), Some(sep)) = (text(arg(0)), text(arg(1))) else {
                return Ok(Value::Null);
            };
            let null = text(arg(2));
            let parts: Vec<String> = array_elements(array)?
                .into_iter()
                .filter_map(|e| match (e, null) {
                    (Some(s), _) => Some(s),
                    (None, Some(n)) => Some(n.to_string()),
                    (None, None) => None,
                })
                .collect();
            Value::Text(parts.join(sep))
        }
        CatalogFn::ArrayUpper | CatalogFn::ArrayLength => {
            let Some(array) = text(arg(0)) else {
                return Ok(Value::Null);
            };
            let n = array_elements(array)?.len();
            if n == 0 || !matches!(arg(1), Value::Int4(1)) {
                Value::Null
            } else {
                Value::Int4(n as i32)
            }
        }
        CatalogFn::ColDescription => {
            let object = oid_of(arg(0)).unwrap_or(0);
            let sub = match arg(1) {
                Value::Int4(n) => *n,
                _ => 0,
            };
            catalog
                .comments
                .get(&(object, sub))
                .map_or(Value::Null, |c| Value::Text(c.clone()))
        }
        CatalogFn::ObjDescription => catalog
            .comments
            .get(&(oid_of(arg(0)).unwrap_or(0), 0))
            .map_or(Value::Null, |c| Value::Text(c.clone())),
        CatalogFn::RelationIsPublishable | CatalogFn::IsInRecovery => Value::Bool(false),
        CatalogFn::GetTriggerDef
        | CatalogFn::GetRuleDef
        | CatalogFn::GetStatisticsObjDefColumns => Value::Null,
        CatalogFn::SizePretty => match arg(0) {
            Value::Int8(n) => Value::Text(size_pretty(*n)),
            _ => Value::Null,
        },
        CatalogFn::RelationSize => {
            // Sizes are not tracked per relation; estimate from row counts.
            let rows = oid_of(arg(0))
                .and_then(|o| env.shard.row_count(o))
                .unwrap_or(0);
            Value::Int8((rows * 100) as i64)
        }
        CatalogFn::HasPrivilege => Value::Bool(true),
        CatalogFn::GetSerialSequence => {
            let (Some(table), Some(column)) = (text(arg(0)), text(arg(1))) else {
                return Ok(Value::Null);
            };
            let table = table.rsplit('.').next().unwrap_or(table).trim_matches('"');
            let found = catalog
                .tables
                .values()
                .find(|t| t.name == table)
                .and_then(|t| {
                    let c = t.column(column)?;
                    catalog
                        .sequences
                        .values()
                        .find(|s| s.owner == Some((t.id, c.id)))
                        .map(|s| format!("{}.{}", schema_name(catalog, s.schema_id), s.name))
                });
            found.map_or(Value::Null, Value::Text)
        }
        CatalogFn::CurrentSchemas => {
            let mut schemas = Vec::new();
            if arg(0) == &Value::Bool(true) {
                schemas.push(Value::Text("pg_catalog".into()));
            }
            schemas.push(Value::Text(crate::catalog::PUBLIC_SCHEMA.into()));
            Value::Text(array_text(&schemas))
        }
        CatalogFn::RegclassName => {
            let oid = oid_of(arg(0)).unwrap_or(0);
            match relation_name(catalog, oid) {
                Some((name, schema))
                    if schema_name(catalog, schema) == crate::catalog::PUBLIC_SCHEMA =>
                {
                    Value::Text(name)
                }
                Some((name, schema)) => {
                    Value::Text(format!("{}.{name}", schema_name(catalog, schema)))
                }
                None => Value::Text(oid.to_string()),
            }
        }
        CatalogFn::RegtypeName => {
            let oid = oid_of(arg(0)).unwrap_or(0);
            match Type::from_oid(oid as u32) {
                Some(t) => Value::Text(pg::format_type(t, -1)),
                None if oid == 0 => Value::Text("-".into()),
                None => Value::Text(oid.to_string()),
            }
        }
        CatalogFn::RegnamespaceName => {
            let oid = oid_of(arg(0)).unwrap_or(0);
            Value::Text(match oid as u32 {
                pg::PG_CATALOG_OID => "pg_catalog".into(),
                pg::INFORMATION_SCHEMA_OID => "information_schema".into(),
                _ => catalog
                    .schemas
                    .get(&oid)
                    .map_or(oid.to_string(), |s| s.name.clone()),
            })
        }
        CatalogFn::RegclassOid => {
            let Some(name) = text(arg(0)) else {
                return Ok(Value::Null);
            };
            let (schema, rel) = match name.split_once('.') {
                Some((s, r)) => (Some(s), r),
                None => (None, name),
            };
            let db = catalog.database(env.database).map_or(0, |d| d.id);
            let schema_id = catalog
                .schema(db, schema.unwrap_or(crate::catalog::PUBLIC_SCHEMA))
                .map_or(0, |s| s.id);
            match catalog.relation(schema_id, rel) {
                Some(Relation::Table(id) | Relation::Sequence(id) | Relation::View(id)) => {
                    Value::Oid(id as u32)
                }
                Some(Relation::Index(t, i)) => catalog
                    .table(t)
                    .and_then(|t| t.index(i))
                    .map_or(Value::Null, |i| Value::Oid(i.oid as u32)),
                None => return Err(crate::errors::undefined_table(rel)),
            }
        }
    })
}
