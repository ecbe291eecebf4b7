//! Expressions over rows: column references and aggregates (resolved by a
//! [`Resolver`] the query binder supplies), subquery expressions
//! ([`SubLink`]), and the predicates `IN (list)`, `BETWEEN`, `LIKE`/`ILIKE`
//! and `IS [NOT] DISTINCT FROM`, with three-valued logic.
//!
//! Subqueries are not evaluated here: evaluation is synchronous, and a
//! subquery reads data. The executor runs the subquery's plan for the current
//! row first and answers [`EvalContext::sublink`] from its result, using
//! [`sublink_value`] for the SQL semantics.

use std::cmp::Ordering;

use sqlparser::ast;
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::{bind_binary, bind_depth, coerce, common_type, compare, eval, is_text, BinOp};
use super::{BindContext, EvalContext, Expr};

/// Resolves the names an expression may use beyond constants and functions.
pub trait Resolver {
    /// A column reference (`a`, `t.a`, `s.t.a`); `Ok(None)` when the name is
    /// not a column here (it may still be a keyword function like `user`).
    fn column(&mut self, parts: &[ast::Ident]) -> PgResult<Option<Expr>>;
    /// Binds `f` if the resolver owns it: aggregate calls and the sequence
    /// functions (`Ok(None)` otherwise: an ordinary scalar function).
    fn function(
        &mut self,
        f: &ast::Function,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Option<Expr>>;
    /// Binds a cast the resolver owns (`::regclass` and friends, which need
    /// the catalog); `Ok(None)` for ordinary casts.
    fn cast(
        &mut self,
        expr: &ast::Expr,
        data_type: &ast::DataType,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Option<Expr>>;
    /// The element type of an array-valued expression, if known.
    fn array_element(&mut self, expr: &ast::Expr) -> Option<Type>;
    /// Binds a subquery expression; `lhs` is already bound.
    fn subquery(
        &mut self,
        query: &ast::Query,
        kind: SubLinkKind,
        lhs: Option<Expr>,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Expr>;
}

/// What a subquery expression asks of its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubLinkKind {
    /// `(SELECT x)`: the one value, NULL for no row, an error for several.
    Scalar,
    /// `EXISTS (SELECT ...)`.
    Exists,
    /// `lhs op ANY (SELECT ...)` (`IN` is `= ANY`).
    Any(BinOp),
    /// `lhs op ALL (SELECT ...)`.
    All(BinOp),
    /// `ARRAY(SELECT ...)`: the values as an array (in text form).
    Array,
}

/// Functions over the catalog, evaluated by the executor (they read the
/// statement's catalog snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogFn {
    GetUserById,
    TableIsVisible,
    FormatType,
    GetExpr,
    GetIndexDef,
    GetConstraintDef,
    EncodingToChar,
    ArrayToString,
    ArrayUpper,
    ArrayLength,
    ColDescription,
    ObjDescription,
    RelationIsPublishable,
    GetTriggerDef,
    GetStatisticsObjDefColumns,
    SizePretty,
    RelationSize,
    HasPrivilege,
    GetSerialSequence,
    IsInRecovery,
    CurrentSchemas,
    /// `x::regclass` of a non-literal: the relation's name.
    RegclassName,
    /// `x::regtype`: the type's name.
    RegtypeName,
    /// `x::regnamespace`: the schema's name.
    RegnamespaceName,
    /// `'name'::regclass` resolved at run time.
    RegclassOid,
    /// `pg_partition_ancestors(rel)` as a value: the relation itself (no
    /// table is partitioned).
    PartitionAncestors,
}

impl CatalogFn {
    pub fn name(self) -> &'static str {
        match self {
            CatalogFn::GetUserById => "pg_get_userbyid",
            CatalogFn::TableIsVisible => "pg_table_is_visible",
            CatalogFn::FormatType => "format_type",
            CatalogFn::GetExpr => "pg_get_expr",
            CatalogFn::GetIndexDef => "pg_get_indexdef",
            CatalogFn::GetConstraintDef => "pg_get_constraintdef",
            CatalogFn::EncodingToChar => "pg_encoding_to_char",
            CatalogFn::ArrayToString => "array_to_string",
            CatalogFn::ArrayUpper => "array_upper",
            CatalogFn::ArrayLength => "array_length",
            CatalogFn::ColDescription => "col_description",
            CatalogFn::ObjDescription => "obj_description",
            CatalogFn::RelationIsPublishable => "pg_relation_is_publishable",
            CatalogFn::GetTriggerDef => "pg_get_triggerdef",
            CatalogFn::GetStatisticsObjDefColumns => "pg_get_statisticsobjdef_columns",
            CatalogFn::SizePretty => "pg_size_pretty",
            CatalogFn::RelationSize => "pg_relation_size",
            CatalogFn::HasPrivilege => "has_table_privilege",
            CatalogFn::GetSerialSequence => "pg_get_serial_sequence",
            CatalogFn::IsInRecovery => "pg_is_in_recovery",
            CatalogFn::CurrentSchemas => "current_schemas",
            CatalogFn::RegclassName => "regclass",
            CatalogFn::RegtypeName => "regtype",
            CatalogFn::RegnamespaceName => "regnamespace",
            CatalogFn::RegclassOid => "regclass",
            CatalogFn::PartitionAncestors => "pg_partition_ancestors",
        }
    }
}

/// Splits an array in PostgreSQL's text form (`{a,"b c",NULL}`) into its
/// elements (`None` for NULL). Nested arrays are flattened.
pub fn array_elements(text: &str) -> PgResult<Vec<Option<String>>> {
    let bad = || {
        PgError::new(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("malformed array literal: \"{text}\""),
        )
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| c.is_whitespace() || *c == '{' || *c == '}')
        {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut item = String::new();
        let quoted = first == '"';
        if quoted {
            chars.next();
            loop {
                match chars.next().ok_or_else(bad)? {
                    '"' => break,
                    '\\' => item.push(chars.next().ok_or_else(bad)?),
                    c => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c == '}' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim().to_string();
        }
        out.push(if !quoted && item.eq_ignore_ascii_case("null") {
            None
        } else {
            Some(item)
        });
        while chars.peek().is_some_and(|c| *c == '}' || c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(_) => return Err(bad()),
        }
    }
    Ok(out)
}

/// An array in text form from its elements.
pub fn array_text(items: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Value::Null => out.push_str("NULL"),
            other => {
                let mut buf = bytes::BytesMut::new();
                teller_net::types::encode_text(other, other.natural_type(), &mut buf);
                let s = String::from_utf8_lossy(&buf).into_owned();
                let plain = !s.is_empty()
                    && !s.eq_ignore_ascii_case("null")
                    && !s
                        .chars()
                        .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\' | ' '));
                if plain {
                    out.push_str(&s);
                } else {
                    out.push('"');
                    for c in s.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
        }
    }
    out.push('}');
    out
}

/// A subquery used as an expression. `id` names the subplan in the
/// statement's plan.
#[derive(Clone, Debug, PartialEq)]
pub struct SubLink {
    pub id: usize,
    pub kind: SubLinkKind,
    pub lhs: Option<Expr>,
    /// Values of the enclosing row the subquery reads (its `Expr::Outer`s),
    /// evaluated in the enclosing row's context. Empty: uncorrelated.
    pub correlation: Vec<Expr>,
    pub ty: Type,
}

pub(super) fn has_resolver(cx: &BindContext<'_>) -> bool {
    cx.resolver.is_some()
}

pub(super) fn resolve_column(
    parts: &[ast::Ident],
    cx: &mut BindContext<'_>,
) -> PgResult<Option<Expr>> {
    match cx.resolver.as_mut() {
        Some(r) => r.column(parts),
        None => Ok(None),
    }
}

pub(super) fn resolve_function(
    f: &ast::Function,
    cx: &mut BindContext<'_>,
) -> PgResult<Option<Expr>> {
    let BindContext { params, resolver } = cx;
    match resolver.as_mut() {
        Some(r) => r.function(f, params),
        None => Ok(None),
    }
}

fn subquery(
    query: &ast::Query,
    kind: SubLinkKind,
    lhs: Option<Expr>,
    cx: &mut BindContext<'_>,
) -> PgResult<Expr> {
    let BindContext { params, resolver } = cx;
    match resolver.as_mut() {
        Some(r) => r.subquery(query, kind, lhs, params),
        None => Err(PgError::unsupported(
            "subqueries are not supported in this context",
        )),
    }
}

/// Whether a binary operator is one this module binds (regular
/// expressions and `OPERATOR(pg_catalog.x)`).
pub(super) fn is_extra_operator(op: &ast::BinaryOperator) -> bool {
    use ast::BinaryOperator as B;
    matches!(
        op,
        B::PGRegexMatch
            | B::PGRegexIMatch
            | B::PGRegexNotMatch
            | B::PGRegexNotIMatch
            | B::PGCustomBinaryOperator(_)
    )
}

/// Binds a regular-expression match or a schema-qualified operator.
pub(super) fn bind_extra_binary(
    left: &ast::Expr,
    op: &ast::BinaryOperator,
    right: &ast::Expr,
    cx: &mut BindContext<'_>,
    depth: usize,
) -> PgResult<Expr> {
    use ast::BinaryOperator as B;
    let symbol = match op {
        B::PGRegexMatch => "~".to_string(),
        B::PGRegexIMatch => "~*".into(),
        B::PGRegexNotMatch => "!~".into(),
        B::PGRegexNotIMatch => "!~*".into(),
        B::PGCustomBinaryOperator(parts) => match &parts[..] {
            [schema, op] if schema.eq_ignore_ascii_case("pg_catalog") => op.clone(),
            [op] => op.clone(),
            _ => {
                return Err(PgError::new(
                    SqlState::UNDEFINED_FUNCTION,
                    format!("operator does not exist: {}", parts.join(".")),
                ))
            }
        },
        other => return Err(PgError::internal(format!("operator {other} is not extra"))),
    };
    let plain = match symbol.as_str() {
        "=" => Some(B::Eq),
        "<>" | "!=" => Some(B::NotEq),
        "<" => Some(B::Lt),
        "<=" => Some(B::LtEq),
        ">" => Some(B::Gt),
        ">=" => Some(B::GtEq),
        "+" => Some(B::Plus),
        "-" => Some(B::Minus),
        "*" => Some(B::Multiply),
        "/" => Some(B::Divide),
        "||" => Some(B::StringConcat),
        _ => None,
    };
    if let Some(plain) = plain {
        let l = bind_depth(left, cx, depth)?;
        let r = bind_depth(right, cx, depth)?;
        return bind_binary(&plain, l, r, cx);
    }
    let (negated, case_insensitive) = match symbol.as_str() {
        "~" => (false, false),
        "~*" => (false, true),
        "!~" => (true, false),
        "!~*" => (true, true),
        other => {
            return Err(PgError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("operator does not exist: {other}"),
            ))
        }
    };
    let text = |e: &ast::Expr, cx: &mut BindContext<'_>| -> PgResult<Expr> {
        let bound = bind_depth(e, cx, depth)?;
        let ty = bound.ty(cx.params);
        if !is_text(ty) {
            return Err(PgError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("operator does not exist: {} {symbol} unknown", ty.name()),
            ));
        }
        coerce(bound, Type::Text, cx, false)
    };
    let expr = text(left, cx)?;
    let pattern = text(right, cx)?;
    Ok(Expr::Regex {
        expr: Box::new(expr),
        pattern: Box::new(pattern),
        negated,
        case_insensitive,
    })
}

/// Casts that need more than a type: to `regclass`/`regtype`/
/// `regnamespace` (through the resolver, which knows the catalog) and to
/// array types (arrays are text inside the SQL layer).
pub(super) fn special_cast(
    expr: &ast::Expr,
    data_type: &ast::DataType,
    cx: &mut BindContext<'_>,
    depth: usize,
) -> PgResult<Option<Expr>> {
    if let ast::DataType::Array(_) = data_type {
        let inner = bind_depth(expr, cx, depth)?;
        let ty = inner.ty(cx.params);
        return Ok(Some(if ty == Type::Text {
            inner
        } else {
            coerce(inner, Type::Text, cx, true)?
        }));
    }
    let BindContext { params, resolver } = cx;
    match resolver.as_mut() {
        Some(r) => r.cast(expr, data_type, params),
        None => Ok(None),
    }
}

/// Coerces `expr` to `ty` as an implicit (assignment-free) conversion.
pub fn coerce_to(expr: Expr, ty: Type, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    coerce(expr, ty, cx, false)
}

/// Coerces `expr` to `ty` as an explicit cast would.
pub fn cast_to(expr: Expr, ty: Type, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    coerce(expr, ty, cx, true)
}

/// The type two expressions are compared or unioned at, if any.
pub fn unify(l: Type, r: Type) -> Option<Type> {
    common_type(l, r)
}

/// Binds a comparison `l op r` of already bound operands.
pub fn compare_exprs(
    op: &ast::BinaryOperator,
    l: Expr,
    r: Expr,
    cx: &mut BindContext<'_>,
) -> PgResult<Expr> {
    bind_binary(op, l, r, cx)
}

fn comparison(op: &ast::BinaryOperator) -> PgResult<BinOp> {
    use ast::BinaryOperator as B;
    Ok(match op {
        B::Eq => BinOp::Eq,
        B::NotEq => BinOp::NotEq,
        B::Lt => BinOp::Lt,
        B::LtEq => BinOp::LtEq,
        B::Gt => BinOp::Gt,
        B::GtEq => BinOp::GtEq,
        other => {
            return Err(PgError::unsupported(format!(
                "operator {other} with ANY/ALL is not supported"
            )))
        }
    })
}

/// Binds the expression forms this module adds; `Ok(None)` if `expr` is
/// none of them.
pub(super) fn bind_more(
    expr: &ast::Expr,
    cx: &mut BindContext<'_>,
    depth: usize,
) -> PgResult<Option<Expr>> {
    use ast::Expr as E;
    Ok(Some(match expr {
        E::InList {
            expr,
            list,
            negated,
        } => {
            let mut items = Vec::with_capacity(list.len());
            let lhs = bind_depth(expr, cx, depth)?;
            let mut ty = lhs.ty(cx.params);
            for item in list {
                let bound = bind_depth(item, cx, depth)?;
                let it = bound.ty(cx.params);
                ty = common_type(ty, it).ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_FUNCTION,
                        format!("operator does not exist: {} = {}", ty.name(), it.name()),
                    )
                    .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
                })?;
                items.push(bound);
            }
            let ty = if ty == Type::Unknown { Type::Text } else { ty };
            let lhs = coerce(lhs, ty, cx, false)?;
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                list.push(coerce(item, ty, cx, false)?);
            }
            Expr::InList {
                expr: Box::new(lhs),
                list,
                negated: *negated,
            }
        }
        E::Between {
            expr,
            negated,
            low,
            high,
        } => {
            use ast::BinaryOperator as B;
            let e = bind_depth(expr, cx, depth)?;
            let lo = bind_depth(low, cx, depth)?;
            let hi = bind_depth(high, cx, depth)?;
            if *negated {
                let a = bind_binary(&B::Lt, e.clone(), lo, cx)?;
                let b = bind_binary(&B::Gt, e, hi, cx)?;
                Expr::Or(Box::new(a), Box::new(b))
            } else {
                let a = bind_binary(&B::GtEq, e.clone(), lo, cx)?;
                let b = bind_binary(&B::LtEq, e, hi, cx)?;
                Expr::And(Box::new(a), Box::new(b))
            }
        }
        E::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char,
        } => bind_like(
            expr,
            pattern,
            escape_char.as_deref(),
            *negated,
            false,
            cx,
            depth,
        )?,
        E::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char,
        } => bind_like(
            expr,
            pattern,
            escape_char.as_deref(),
            *negated,
            true,
            cx,
            depth,
        )?,
        E::IsDistinctFrom(l, r) | E::IsNotDistinctFrom(l, r) => {
            let l = bind_depth(l, cx, depth)?;
            let r = bind_depth(r, cx, depth)?;
            let (lt, rt) = (l.ty(cx.params), r.ty(cx.params));
            let ty = common_type(lt, rt).ok_or_else(|| {
                PgError::new(
                    SqlState::UNDEFINED_FUNCTION,
                    format!("operator does not exist: {} = {}", lt.name(), rt.name()),
                )
            })?;
            let ty = if ty == Type::Unknown { Type::Text } else { ty };
            let l = coerce(l, ty, cx, false)?;
            let r = coerce(r, ty, cx, false)?;
            Expr::IsDistinct(
                Box::new(l),
                Box::new(r),
                matches!(expr, E::IsNotDistinctFrom(..)),
            )
        }
        E::Collate { expr, collation } => {
            let name = collation.to_string().to_ascii_lowercase();
            let name = name.trim_start_matches("pg_catalog.").trim_matches('"');
            if !matches!(name, "default" | "c" | "posix" | "ucs_basic") {
                return Err(PgError::new(
                    SqlState::UNDEFINED_OBJECT,
                    format!("collation \"{name}\" for encoding \"UTF8\" does not exist"),
                ));
            }
            bind_depth(expr, cx, depth)?
        }
        E::CompoundFieldAccess { root, access_chain } => {
            let [ast::AccessExpr::Subscript(ast::Subscript::Index { index })] = &access_chain[..]
            else {
                return Ok(None);
            };
            let element = match cx.resolver.as_mut() {
                Some(r) => r.array_element(root),
                None => None,
            }
            .unwrap_or(Type::Text);
            let array = bind_depth(root, cx, depth)?;
            let index = coerce(bind_depth(index, cx, depth)?, Type::Int4, cx, false)?;
            Expr::Subscript(Box::new(array), Box::new(index), element)
        }
        E::IsUnknown(e) | E::IsNotUnknown(e) => {
            let inner = coerce(bind_depth(e, cx, depth)?, Type::Bool, cx, false)?;
            Expr::IsNull(Box::new(inner), matches!(expr, E::IsUnknown(_)))
        }
        E::Subquery(query) => subquery(query, SubLinkKind::Scalar, None, cx)?,
        E::Exists {
            subquery: q,
            negated,
        } => {
            let link = subquery(q, SubLinkKind::Exists, None, cx)?;
            if *negated {
                Expr::Not(Box::new(link))
            } else {
                link
            }
        }
        E::InSubquery {
            expr,
            subquery: q,
            negated,
        } => {
            let lhs = bind_depth(expr, cx, depth)?;
            let link = subquery(q, SubLinkKind::Any(BinOp::Eq), Some(lhs), cx)?;
            if *negated {
                Expr::Not(Box::new(link))
            } else {
                link
            }
        }
        E::AnyOp {
            left,
            compare_op,
            right,
            ..
        }
        | E::AllOp {
            left,
            compare_op,
            right,
        } => {
            let op = comparison(compare_op)?;
            let E::Subquery(q) = right.as_ref() else {
                let lhs = bind_depth(left, cx, depth)?;
                let array = bind_depth(right, cx, depth)?;
                if !is_text(array.ty(cx.params)) {
                    return Err(PgError::new(
                        SqlState::UNDEFINED_FUNCTION,
                        "op ANY/ALL (array) requires array on right side",
                    ));
                }
                let array = coerce(array, Type::Text, cx, false)?;
                let lhs = default_unknown_text(lhs, cx);
                return Ok(Some(Expr::AnyArray {
                    lhs: Box::new(lhs),
                    op,
                    array: Box::new(array),
                    all: matches!(expr, E::AllOp { .. }),
                }));
            };
            let lhs = bind_depth(left, cx, depth)?;
            let kind = if matches!(expr, E::AnyOp { .. }) {
                SubLinkKind::Any(op)
            } else {
                SubLinkKind::All(op)
            };
            subquery(q, kind, Some(lhs), cx)?
        }
        _ => return Ok(None),
    }))
}

fn bind_like(
    expr: &ast::Expr,
    pattern: &ast::Expr,
    escape: Option<&ast::Expr>,
    negated: bool,
    case_insensitive: bool,
    cx: &mut BindContext<'_>,
    depth: usize,
) -> PgResult<Expr> {
    let text = |e: &ast::Expr, cx: &mut BindContext<'_>| -> PgResult<Expr> {
        let bound = bind_depth(e, cx, depth)?;
        let ty = bound.ty(cx.params);
        if !is_text(ty) {
            let op = if case_insensitive { "~~*" } else { "~~" };
            return Err(PgError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("operator does not exist: {} {op} unknown", ty.name()),
            )
            .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts."));
        }
        coerce(bound, Type::Text, cx, false)
    };
    let e = text(expr, cx)?;
    let p = text(pattern, cx)?;
    let escape = escape.map(|e| text(e, cx)).transpose()?;
    Ok(Expr::Like {
        expr: Box::new(e),
        pattern: Box::new(p),
        escape: escape.map(Box::new),
        negated,
        case_insensitive,
    })
}

/// An untyped literal compared with array elements is text.
fn default_unknown_text(e: Expr, cx: &mut BindContext<'_>) -> Expr {
    match e {
        Expr::Const(v, Type::Unknown) => Expr::Const(v, Type::Text),
        Expr::Param(i) if cx.params[i].is_none() => {
            cx.params[i] = Some(Type::Text);
            Expr::Param(i)
        }
        other => other,
    }
}

/// Evaluates the variants this module adds.
pub(super) fn eval_more(expr: &Expr, cx: &dyn EvalContext) -> PgResult<Value> {
    Ok(match expr {
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, cx)?;
            let mut result = Value::Bool(false);
            if v.is_null() {
                result = Value::Null;
            } else {
                for item in list {
                    let it = eval(item, cx)?;
                    if it.is_null() {
                        result = Value::Null;
                    } else if compare(&v, &it)? == Ordering::Equal {
                        result = Value::Bool(true);
                        break;
                    }
                }
            }
            negate_if(result, *negated)
        }
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
            case_insensitive,
        } => {
            let (v, p) = (eval(expr, cx)?, eval(pattern, cx)?);
            let esc = match escape {
                Some(e) => match eval(e, cx)? {
                    Value::Null => return Ok(Value::Null),
                    Value::Text(s) => escape_char(&s)?,
                    _ => Some('\\'),
                },
                None => Some('\\'),
            };
            match (v, p) {
                (Value::Text(v), Value::Text(p)) => {
                    let hit = if *case_insensitive {
                        like(&v.to_lowercase(), &p.to_lowercase(), esc)?
                    } else {
                        like(&v, &p, esc)?
                    };
                    Value::Bool(hit != *negated)
                }
                _ => Value::Null,
            }
        }
        Expr::IsDistinct(l, r, not) => {
            let (l, r) = (eval(l, cx)?, eval(r, cx)?);
            let same = match (l.is_null(), r.is_null()) {
                (true, true) => true,
                (false, false) => compare(&l, &r)? == Ordering::Equal,
                _ => false,
            };
            Value::Bool(same == *not)
        }
        Expr::SubLink(link) => {
            let lhs = link.lhs.as_ref().map(|e| eval(e, cx)).transpose()?;
            cx.sublink(link, lhs)?
        }
        Expr::AggRef(..) => {
            return Err(PgError::internal("aggregate reference left in a plan"));
        }
        Expr::NextVal(seq) => cx.nextval(*seq)?,
        Expr::Regex {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => match (eval(expr, cx)?, eval(pattern, cx)?) {
            (Value::Text(v), Value::Text(p)) => {
                let hit = super::regex::Regex::new(&p, *case_insensitive)?.is_match(&v)?;
                Value::Bool(hit != *negated)
            }
            _ => Value::Null,
        },
        Expr::Catalog(func, args, _) => {
            let values = args
                .iter()
                .map(|a| eval(a, cx))
                .collect::<PgResult<Vec<_>>>()?;
            cx.catalog_function(*func, &values)?
        }
        Expr::AnyArray {
            lhs,
            op,
            array,
            all,
        } => {
            let l = eval(lhs, cx)?;
            let Value::Text(text) = eval(array, cx)? else {
                return Ok(Value::Null);
            };
            let ty = lhs.ty(&[]);
            let mut values = Vec::new();
            for item in array_elements(&text)? {
                values.push(match item {
                    None => Value::Null,
                    Some(s)
                        if matches!(
                            ty,
                            Type::Unknown | Type::Text | Type::Varchar | Type::Name | Type::Bpchar
                        ) =>
                    {
                        Value::Text(s)
                    }
                    Some(s) => teller_net::types::decode_text(ty, s.as_bytes())?,
                });
            }
            let kind = if *all {
                SubLinkKind::All(*op)
            } else {
                SubLinkKind::Any(*op)
            };
            sublink_value(kind, Some(&l), &values)?
        }
        Expr::Subscript(array, index, ty) => {
            let (Value::Text(text), Value::Int4(i)) = (eval(array, cx)?, eval(index, cx)?) else {
                return Ok(Value::Null);
            };
            let items = array_elements(&text)?;
            match usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| items.get(i))
            {
                Some(Some(s)) => teller_net::types::decode_text(*ty, s.as_bytes())?,
                _ => Value::Null,
            }
        }
        other => return Err(PgError::internal(format!("cannot evaluate {other:?}"))),
    })
}

fn negate_if(v: Value, negated: bool) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(b != negated),
        other => other,
    }
}

fn escape_char(s: &str) -> PgResult<Option<char>> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Ok(None),
        (Some(c), None) => Ok(Some(c)),
        _ => Err(PgError::new(SqlState("22025"), "invalid escape string")
            .with_hint("Escape string must be empty or one character.")),
    }
}

/// SQL `LIKE`: `%` any run, `_` one character, `esc` quotes the next one.
pub fn like(value: &str, pattern: &str, esc: Option<char>) -> PgResult<bool> {
    let v: Vec<char> = value.chars().collect();
    let mut p: Vec<(char, bool)> = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == esc {
            match chars.next() {
                Some(n) => p.push((n, true)),
                None => {
                    return Err(PgError::new(
                        SqlState("22025"),
                        "LIKE pattern must not end with escape character",
                    ))
                }
            }
        } else {
            p.push((c, false));
        }
    }
    // Iterative matching with backtracking to the last `%`: O(|v| * |p|).
    let (mut vi, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some(('%', false)) => {
                star = Some((pi, vi));
                pi += 1;
            }
            Some(('_', false)) => {
                vi += 1;
                pi += 1;
            }
            Some((c, _)) if *c == v[vi] => {
                vi += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp + 1;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return Ok(false),
            },
        }
    }
    Ok(p[pi..].iter().all(|&(c, quoted)| c == '%' && !quoted))
}

/// The value of a subquery expression given the subquery's first-column
/// values for this row (`lhs` for ANY/ALL). Three-valued, as in SQL.
pub fn sublink_value(kind: SubLinkKind, lhs: Option<&Value>, rows: &[Value]) -> PgResult<Value> {
    match kind {
        SubLinkKind::Scalar => match rows {
            [] => Ok(Value::Null),
            [v] => Ok(v.clone()),
            _ => Err(PgError::new(
                SqlState("21000"),
                "more than one row returned by a subquery used as an expression",
            )),
        },
        SubLinkKind::Exists => Ok(Value::Bool(!rows.is_empty())),
        SubLinkKind::Array => Ok(Value::Text(array_text(rows))),
        SubLinkKind::Any(op) | SubLinkKind::All(op) => {
            let all = matches!(kind, SubLinkKind::All(_));
            let Some(lhs) = lhs else {
                return Err(PgError::internal("ANY/ALL without a left operand"));
            };
            if rows.is_empty() {
                return Ok(Value::Bool(all));
            }
            if lhs.is_null() {
                return Ok(Value::Null);
            }
            let mut unknown = false;
            for v in rows {
                if v.is_null() {
                    unknown = true;
                    continue;
                }
                let hit = test(op, compare(lhs, v)?);
                if hit != all {
                    // ANY found a true, or ALL found a false.
                    return Ok(Value::Bool(hit));
                }
            }
            Ok(if unknown {
                Value::Null
            } else {
                Value::Bool(all)
            })
        }
    }
}

/// Whether an ordering satisfies a comparison operator.
pub fn test(op: BinOp, ord: Ordering) -> bool {
    match op {
        BinOp::Eq => ord == Ordering::Equal,
        BinOp::NotEq => ord != Ordering::Equal,
        BinOp::Lt => ord == Ordering::Less,
        BinOp::LtEq => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        BinOp::GtEq => ord != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_wildcards_and_escapes() {
        assert!(like("abc", "abc", Some('\\')).unwrap());
        assert!(like("abc", "a%", Some('\\')).unwrap());
        assert!(like("abc", "%c", Some('\\')).unwrap());
        assert!(like("abc", "_b_", Some('\\')).unwrap());
        assert!(!like("abc", "_b", Some('\\')).unwrap());
        assert!(like("", "%", Some('\\')).unwrap());
        assert!(like("a%c", "a\\%c", Some('\\')).unwrap());
        assert!(!like("abc", "a\\%c", Some('\\')).unwrap());
        assert!(like("aXbXc", "%b%c", Some('\\')).unwrap());
        assert!(like("mississippi", "%iss%ppi", None).unwrap());
        assert!(!like("mississippi", "%iss%ppx", None).unwrap());
        assert!(like("a_c", "a#_c", Some('#')).unwrap());
        assert!(like("x", "x\\", Some('\\')).is_err());
    }

    #[test]
    fn sublinks_follow_three_valued_logic() {
        let one = Value::Int4(1);
        let rows = [Value::Int4(1), Value::Null];
        let any = SubLinkKind::Any(BinOp::Eq);
        assert_eq!(
            sublink_value(any, Some(&one), &rows).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            sublink_value(any, Some(&Value::Int4(2)), &rows).unwrap(),
            Value::Null
        );
        assert_eq!(
            sublink_value(any, Some(&Value::Int4(2)), &[]).unwrap(),
            Value::Bool(false)
        );
        let all = SubLinkKind::All(BinOp::Gt);
        assert_eq!(
            sublink_value(
                all,
                Some(&Value::Int4(5)),
                &[Value::Int4(1), Value::Int4(2)]
            )
            .unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            sublink_value(all, Some(&Value::Int4(1)), &[Value::Int4(1)]).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(
            sublink_value(all, Some(&Value::Null), &[]).unwrap(),
            Value::Bool(true)
        );
        let err = sublink_value(SubLinkKind::Scalar, None, &[one.clone(), one]).unwrap_err();
        assert_eq!(err.code.code(), "21000");
    }
}
