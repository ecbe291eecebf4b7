//! Identifiers and output column names as PostgreSQL spells them.

use sqlparser::ast;
use teller_net::{PgError, PgResult, SqlState};

use crate::expr;

/// Longest identifier, in bytes (PostgreSQL's NAMEDATALEN - 1).
pub const IDENTIFIER_BYTES_MAX: usize = 63;

/// An identifier's name: unquoted names fold to lower case, quoted ones are
/// kept as written.
pub fn ident(i: &ast::Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    }
}

/// The parts of an object name.
pub fn object_parts(name: &ast::ObjectName) -> PgResult<Vec<String>> {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(i) => Ok(ident(i)),
            None => Err(PgError::syntax(format!("invalid name {name}"))),
        })
        .collect()
}

/// A new object's name, checked for length like PostgreSQL (which
/// truncates with a notice; refusing is clearer).
pub fn new_name(i: &ast::Ident) -> PgResult<String> {
    let name = ident(i);
    if name.len() > IDENTIFIER_BYTES_MAX {
        return Err(PgError::new(
            SqlState::NAME_TOO_LONG,
            format!("identifier \"{name}\" is longer than {IDENTIFIER_BYTES_MAX} bytes"),
        ));
    }
    Ok(name)
}

/// PostgreSQL's output column name for an unaliased expression.
pub fn column_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Function(f) => f
            .name
            .0
            .last()
            .map_or("?column?".into(), |p| p.to_string().to_ascii_lowercase()),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            ast::Expr::Value(_) => {
                expr::resolve_type(data_type).map_or("?column?".into(), |t| t.name().into())
            }
            other => column_name(other),
        },
        ast::Expr::TypedString(ts) => {
            expr::resolve_type(&ts.data_type).map_or("?column?".into(), |t| t.name().into())
        }
        ast::Expr::Nested(inner) => column_name(inner),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map_or("?column?".into(), ident),
        ast::Expr::Exists { .. } => "exists".into(),
        ast::Expr::Subquery(q) => match q.body.as_ref() {
            ast::SetExpr::Select(s) => match s.projection.first() {
                Some(ast::SelectItem::UnnamedExpr(e)) if s.projection.len() == 1 => column_name(e),
                Some(ast::SelectItem::ExprWithAlias { alias, .. }) if s.projection.len() == 1 => {
                    ident(alias)
                }
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        ast::Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_)) => "bool".into(),
        _ => "?column?".into(),
    }
}
