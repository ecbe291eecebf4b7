//! Binding of the PostgreSQL system functions and casts clients use to
//! read the catalog: `pg_get_indexdef`, `format_type`,
//! `pg_table_is_visible`, `'t'::regclass`, `ARRAY(SELECT ...)`, ... They are
//! evaluated by the executor against the statement's catalog snapshot
//! ([`crate::exec::pgfuncs`]).

use sqlparser::ast;
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::{names, Binder, Clause};
use crate::catalog::Relation;
use crate::expr::{self, BindContext, CatalogFn, Expr, SubLinkKind};

/// Argument types and result type of a catalog function; `None` when the
/// name is not one.
fn signature(name: &str, arity: usize) -> Option<(CatalogFn, Vec<Type>, Type)> {
    use CatalogFn as F;
    use Type::{Bool, Int4, Int8, Name, Oid, Text};
    let (f, args, ret) = match (name, arity) {
        ("pg_get_userbyid", 1) => (F::GetUserById, vec![Oid], Name),
        ("pg_table_is_visible", 1) => (F::TableIsVisible, vec![Oid], Bool),
        ("format_type", 2) => (F::FormatType, vec![Oid, Int4], Text),
        ("pg_get_expr", 2) => (F::GetExpr, vec![Text, Oid], Text),
        ("pg_get_expr", 3) => (F::GetExpr, vec![Text, Oid, Bool], Text),
        ("pg_get_indexdef", 1) => (F::GetIndexDef, vec![Oid], Text),
        ("pg_get_indexdef", 3) => (F::GetIndexDef, vec![Oid, Int4, Bool], Text),
        ("pg_get_viewdef", 1) => (F::GetViewDef, vec![Oid], Text),
        ("pg_get_viewdef", 2) => (F::GetViewDef, vec![Oid, Bool], Text),
        ("pg_get_constraintdef", 1) => (F::GetConstraintDef, vec![Oid], Text),
        ("pg_get_constraintdef", 2) => (F::GetConstraintDef, vec![Oid, Bool], Text),
        ("pg_encoding_to_char", 1) => (F::EncodingToChar, vec![Int4], Name),
        ("array_to_string", 2) => (F::ArrayToString, vec![Text, Text], Text),
        ("array_to_string", 3) => (F::ArrayToString, vec![Text, Text, Text], Text),
        ("array_upper", 2) => (F::ArrayUpper, vec![Text, Int4], Int4),
        ("array_length", 2) => (F::ArrayLength, vec![Text, Int4], Int4),
        ("col_description", 2) => (F::ColDescription, vec![Oid, Int4], Text),
        ("obj_description", 1) => (F::ObjDescription, vec![Oid], Text),
        ("obj_description", 2) => (F::ObjDescription, vec![Oid, Name], Text),
        ("pg_relation_is_publishable", 1) => (F::RelationIsPublishable, vec![Oid], Bool),
        ("pg_get_ruledef", 1) => (F::GetRuleDef, vec![Oid], Text),
        ("pg_get_ruledef", 2) => (F::GetRuleDef, vec![Oid, Bool], Text),
        ("pg_get_triggerdef", 1) => (F::GetTriggerDef, vec![Oid], Text),
        ("pg_get_triggerdef", 2) => (F::GetTriggerDef, vec![Oid, Bool], Text),
        ("pg_get_statisticsobjdef_columns", 1) => (F::GetStatisticsObjDefColumns, vec![Oid], Text),
        ("pg_size_pretty", 1) => (F::SizePretty, vec![Int8], Text),
        (
            "pg_relation_size" | "pg_table_size" | "pg_total_relation_size" | "pg_indexes_size",
            1,
        ) => (F::RelationSize, vec![Oid], Int8),
        ("pg_get_serial_sequence", 2) => (F::GetSerialSequence, vec![Text, Text], Text),
        ("pg_is_in_recovery", 0) => (F::IsInRecovery, vec![], Bool),
        ("pg_partition_ancestors", 1) => (F::PartitionAncestors, vec![Oid], Oid),
        ("current_schemas", 1) => (F::CurrentSchemas, vec![Bool], Text),
        _ => return None,
    };
    Some((f, args, ret))
}

fn privilege_function(name: &str) -> bool {
    matches!(
        name,
        "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege"
            | "has_column_privilege"
            | "has_sequence_privilege"
            | "has_function_privilege"
            | "pg_has_role"
    )
}

/// Coerces an argument; integers are accepted where an oid is expected.
fn argument(e: Expr, ty: Type, params: &mut Vec<Option<Type>>) -> PgResult<Expr> {
    let from = e.ty(params);
    let mut cx = BindContext::new(params);
    if ty == Type::Oid && matches!(from, Type::Int2 | Type::Int4 | Type::Int8) {
        return expr::ops::cast_to(e, ty, &mut cx);
    }
    expr::ops::coerce_to(e, ty, &mut cx)
}

/// Binds `f` if it is a catalog function or `ARRAY(subquery)`.
pub fn bind_function(
    binder: &mut Binder<'_>,
    f: &ast::Function,
    params: &mut Vec<Option<Type>>,
) -> PgResult<Option<Expr>> {
    let schema_ok = f.name.0.len() == 1
        || (f.name.0.len() == 2 && f.name.0[0].to_string().eq_ignore_ascii_case("pg_catalog"));
    let Some(name) = f.name.0.last().and_then(|p| p.as_ident()).map(names::ident) else {
        return Ok(None);
    };
    if !schema_ok {
        return Ok(None);
    }
    if name == "array" {
        if let ast::FunctionArguments::Subquery(q) = &f.args {
            return binder
                .sublink(q, SubLinkKind::Array, None, params)
                .map(Some);
        }
    }
    let ast::FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let arity = list.args.len();
    let privilege = privilege_function(&name);
    let Some((func, types, ret)) = signature(&name, arity).or_else(|| {
        privilege.then(|| {
            (
                CatalogFn::HasPrivilege,
                vec![Type::Unknown; arity],
                Type::Bool,
            )
        })
    }) else {
        return Ok(None);
    };
    let mut args = Vec::with_capacity(arity);
    for (arg, &ty) in list.args.iter().zip(&types) {
        let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg else {
            return Err(PgError::unsupported(format!(
                "argument {arg} is not supported"
            )));
        };
        let bound = binder.expr(e, params, None, Clause::Select)?;
        args.push(if ty == Type::Unknown {
            let mut cx = BindContext::new(params);
            expr::ops::coerce_to(bound.clone(), Type::Text, &mut cx).unwrap_or(bound)
        } else {
            argument(bound, ty, params)?
        });
    }
    Ok(Some(Expr::Catalog(func, args, ret)))
}

/// The name a cast's target type has, when it is a catalog type.
fn reg_type(data_type: &ast::DataType) -> Option<String> {
    match data_type {
        ast::DataType::Regclass => Some("regclass".into()),
        ast::DataType::Custom(name, _) => {
            let n = name.to_string().to_ascii_lowercase();
            let n = n
                .trim_start_matches("pg_catalog.")
                .trim_matches('"')
                .to_string();
            matches!(
                n.as_str(),
                "regclass" | "regtype" | "regnamespace" | "regproc" | "regprocedure" | "regrole"
            )
            .then_some(n)
        }
        _ => None,
    }
}

/// Binds `x::regclass` (and `regtype`, `regnamespace`, ...): a literal
/// becomes the object's oid now; any other value becomes the object's name
/// when evaluated.
pub fn bind_cast(
    binder: &mut Binder<'_>,
    e: &ast::Expr,
    data_type: &ast::DataType,
    params: &mut Vec<Option<Type>>,
) -> PgResult<Option<Expr>> {
    let Some(kind) = reg_type(data_type) else {
        return Ok(None);
    };
    let inner = binder.expr(e, params, None, Clause::Select)?;
    if let Expr::Const(Value::Text(text), Type::Unknown) = &inner {
        if let Ok(n) = text.trim().parse::<u32>() {
            return Ok(Some(Expr::Const(Value::Oid(n), Type::Oid)));
        }
        let oid = match kind.as_str() {
            "regclass" => {
                let parts: Vec<String> = text
                    .split('.')
                    .map(|p| {
                        let p = p.trim();
                        if p.len() >= 2 && p.starts_with('"') && p.ends_with('"') {
                            p[1..p.len() - 1].to_string()
                        } else {
                            p.to_lowercase()
                        }
                    })
                    .collect();
                let (schema, rel) = binder.resolve_schema(&parts)?;
                match binder.catalog().relation(schema, rel) {
                    Some(Relation::Table(id) | Relation::Sequence(id) | Relation::View(id)) => {
                        id as u32
                    }
                    Some(Relation::Index(t, i)) => binder
                        .catalog()
                        .table(t)
                        .and_then(|t| t.index(i))
                        .map_or(0, |i| i.oid as u32),
                    None => return Err(crate::errors::undefined_table(rel)),
                }
            }
            "regtype" => {
                let parsed =
                    sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
                        .try_with_sql(text)
                        .and_then(|mut p| p.parse_data_type())
                        .map_err(|_| {
                            PgError::new(
                                SqlState::UNDEFINED_OBJECT,
                                format!("type \"{text}\" does not exist"),
                            )
                        })?;
                expr::resolve_type(&parsed)?.oid()
            }
            "regnamespace" => match text.as_str() {
                "pg_catalog" => crate::catalog::pg::PG_CATALOG_OID,
                "information_schema" => crate::catalog::pg::INFORMATION_SCHEMA_OID,
                s => binder
                    .catalog()
                    .schema(binder.env.database, s)
                    .map(|s| s.id as u32)
                    .ok_or_else(|| {
                        PgError::new(
                            crate::errors::INVALID_SCHEMA_NAME,
                            format!("schema \"{s}\" does not exist"),
                        )
                    })?,
            },
            "regrole" if text == binder.env.database_name => crate::catalog::pg::ROLE_OID,
            other => {
                return Err(PgError::unsupported(format!(
                    "casting a name to {other} is not supported"
                )))
            }
        };
        return Ok(Some(Expr::Const(Value::Oid(oid), Type::Oid)));
    }
    let func = match kind.as_str() {
        "regclass" => CatalogFn::RegclassName,
        "regtype" => CatalogFn::RegtypeName,
        "regnamespace" => CatalogFn::RegnamespaceName,
        other => {
            return Err(PgError::unsupported(format!(
                "casting to {other} is not supported"
            )))
        }
    };
    let from = inner.ty(params);
    if matches!(from, Type::Text | Type::Varchar | Type::Name) && func == CatalogFn::RegclassName {
        return Ok(Some(Expr::Catalog(
            CatalogFn::RegclassOid,
            vec![inner],
            Type::Oid,
        )));
    }
    let arg = argument(inner, Type::Oid, params)?;
    Ok(Some(Expr::Catalog(func, vec![arg], Type::Text)))
}

/// The element type of an array-valued expression: a catalog column that
/// is an array, or a cast to an array type.
pub fn array_element(binder: &mut Binder<'_>, e: &ast::Expr) -> Option<Type> {
    match e {
        ast::Expr::Cast {
            data_type:
                ast::DataType::Array(
                    ast::ArrayElemTypeDef::SquareBracket(inner, _)
                    | ast::ArrayElemTypeDef::AngleBracket(inner)
                    | ast::ArrayElemTypeDef::Parenthesis(inner),
                ),
            ..
        } => expr::resolve_type(inner).ok(),
        ast::Expr::Identifier(i) => element_of(binder, None, &names::ident(i)),
        ast::Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let q = names::ident(&parts[parts.len() - 2]);
            element_of(binder, Some(&q), &names::ident(&parts[parts.len() - 1]))
        }
        ast::Expr::Nested(inner) => array_element(binder, inner),
        _ => None,
    }
}

fn element_of(binder: &Binder<'_>, qualifier: Option<&str>, name: &str) -> Option<Type> {
    for level in binder.levels_innermost_first() {
        if let Ok(Some(i)) = level.find(qualifier, name) {
            return level.columns[i].element;
        }
    }
    None
}
