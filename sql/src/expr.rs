//! Scalar expressions: binding (name resolution and type checking, with
//! PostgreSQL's errors) of sqlparser's AST into a typed [`Expr`], and its
//! evaluation with three-valued NULL logic, checked arithmetic and casts.
//!
//! Types are decided at bind time so a statement can be described before it
//! runs. Untyped string literals and parameters take the type their context
//! asks for (`$1 + 1` makes `$1` an int4), and fall back to text.

use std::cmp::Ordering;

use sqlparser::ast;

pub mod ops;
pub use ops::{CatalogFn, Resolver, SubLink, SubLinkKind};
pub mod regex;
use teller_net::types::{decode_text, Decimal, Type, Value};
use teller_net::{PgError, PgResult, SqlState};

/// Seconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
pub const POSTGRES_EPOCH_UNIX_SECS: i64 = 946_684_800;
/// Longest time `pg_sleep` may sleep, in seconds.
pub const SLEEP_MAX_SECS: f64 = 3600.0;
/// Deepest expression nesting accepted.
pub const EXPR_DEPTH_MAX: usize = 512;

/// A bound, typed scalar expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(Value, Type),
    /// Parameter `$n` (0-based index here).
    Param(usize),
    Not(Box<Expr>),
    Neg(Box<Expr>, Type),
    Binary(BinOp, Box<Expr>, Box<Expr>, Type),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    IsBool(Box<Expr>, bool, bool),
    Cast(Box<Expr>, Type),
    Case {
        operand: Option<Box<Expr>>,
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
        ty: Type,
    },
    Func(Func, Vec<Expr>, Type),
    // Variants over rows (see `ops`): columns, subqueries, predicates.
    /// Column `i` of the row being evaluated.
    Column(usize, Type),
    /// Value `i` of the correlation values of the enclosing query's row.
    Outer(usize, Type),
    /// A subquery's result for the current row.
    SubLink(Box<SubLink>),
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<Box<Expr>>,
        negated: bool,
        case_insensitive: bool,
    },
    /// `IS [NOT] DISTINCT FROM`; `true` for `IS NOT DISTINCT FROM`.
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    /// An aggregate call while binding, replaced before planning ends.
    AggRef(usize, Type),
    /// `nextval(sequence)`: the executor fetches values before evaluating.
    NextVal(u64),
    /// `~`, `!~`, `~*`, `!~*`: POSIX regular expression match.
    Regex {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    /// A function over the catalog (`pg_get_indexdef`, `format_type`, ...).
    Catalog(CatalogFn, Vec<Expr>, Type),
    /// `lhs op ANY/ALL (array)`: arrays are text in PostgreSQL's array
    /// literal form (`{a,b}`) inside the SQL layer.
    AnyArray {
        lhs: Box<Expr>,
        op: BinOp,
        array: Box<Expr>,
        all: bool,
    },
    /// `array[index]` (1-based) of an array in text form, as `ty`.
    Subscript(Box<Expr>, Box<Expr>, Type),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

pub use crate::functions::Func;

/// What binding needs to know about the session.
pub struct BindContext<'a> {
    /// Parameter types declared by the client or inferred so far.
    pub params: &'a mut Vec<Option<Type>>,
    /// Resolves column references, aggregates and subqueries; `None` where
    /// no rows are in scope (constant expressions).
    pub resolver: Option<&'a mut dyn Resolver>,
}

impl<'a> BindContext<'a> {
    /// A context without rows in scope.
    pub fn new(params: &'a mut Vec<Option<Type>>) -> BindContext<'a> {
        BindContext {
            params,
            resolver: None,
        }
    }
}

/// What evaluation needs from the session.
pub trait EvalContext {
    fn param(&self, index: usize) -> &Value;
    fn setting(&self, name: &str) -> PgResult<String>;
    fn database(&self) -> &str;
    fn user(&self) -> &str;
    fn process_id(&self) -> i32;
    /// Current time, microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;
    /// `pg_sleep` asks for a pause; the session performs it asynchronously.
    fn request_sleep(&self, seconds: f64);
    /// Start of the current transaction (`now()`), microseconds since the
    /// Unix epoch. Sessions that track transactions override this.
    fn transaction_micros(&self) -> i64 {
        self.now_micros()
    }
    /// Start of the current statement (`statement_timestamp()`).
    fn statement_micros(&self) -> i64 {
        self.now_micros()
    }
    /// 64 random bits from the session's seeded generator (`random()`,
    /// `gen_random_uuid()`); contexts without one refuse.
    fn random_u64(&self) -> PgResult<u64> {
        Err(PgError::unsupported(
            "random numbers are not available in this context",
        ))
    }
    /// Column `index` of the current row.
    fn column(&self, index: usize) -> Option<&Value> {
        let _ = index;
        None
    }
    /// Correlation value `index` (a column of an enclosing query's row).
    fn outer(&self, index: usize) -> Option<&Value> {
        let _ = index;
        None
    }
    /// The value of a subquery expression for the current row.
    fn sublink(&self, link: &SubLink, lhs: Option<Value>) -> PgResult<Value> {
        let _ = (link, lhs);
        Err(PgError::unsupported("subqueries are not supported here"))
    }
    /// The next value of a sequence (fetched by the executor beforehand).
    fn nextval(&self, sequence: u64) -> PgResult<Value> {
        let _ = sequence;
        Err(PgError::unsupported("nextval is not supported here"))
    }
    /// A catalog function of the evaluated arguments.
    fn catalog_function(&self, func: CatalogFn, args: &[Value]) -> PgResult<Value> {
        let _ = args;
        Err(PgError::unsupported(format!(
            "{} is not available here",
            func.name()
        )))
    }
}

impl Expr {
    pub fn ty(&self, params: &[Option<Type>]) -> Type {
        match self {
            Expr::Const(_, ty)
            | Expr::Neg(_, ty)
            | Expr::Binary(_, _, _, ty)
            | Expr::Cast(_, ty) => *ty,
            Expr::Case { ty, .. } | Expr::Func(_, _, ty) => *ty,
            Expr::Column(_, ty) | Expr::Outer(_, ty) | Expr::AggRef(_, ty) => *ty,
            Expr::SubLink(link) => link.ty,
            Expr::InList { .. } | Expr::Like { .. } | Expr::IsDistinct(..) => Type::Bool,
            Expr::NextVal(_) => Type::Int8,
            Expr::Regex { .. } | Expr::AnyArray { .. } => Type::Bool,
            Expr::Catalog(_, _, ty) | Expr::Subscript(_, _, ty) => *ty,
            Expr::Param(i) => params.get(*i).copied().flatten().unwrap_or(Type::Unknown),
            Expr::Not(_) | Expr::And(..) | Expr::Or(..) | Expr::IsNull(..) | Expr::IsBool(..) => {
                Type::Bool
            }
        }
    }
}

/// Binds a sqlparser expression. No column references are possible yet.
pub fn bind(expr: &ast::Expr, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    bind_depth(expr, cx, 0)
}

pub(crate) fn bind_depth(
    expr: &ast::Expr,
    cx: &mut BindContext<'_>,
    depth: usize,
) -> PgResult<Expr> {
    if depth > EXPR_DEPTH_MAX {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("expression nesting exceeds {EXPR_DEPTH_MAX} levels"),
        ));
    }
    let d = depth + 1;
    use ast::Expr as E;
    Ok(match expr {
        E::Value(v) => bind_literal(&v.value, cx)?,
        E::Nested(inner) => bind_depth(inner, cx, d)?,
        E::TypedString(ts) => {
            let ty = resolve_type(&ts.data_type)?;
            let text = literal_text(&ts.value.value).ok_or_else(|| {
                PgError::syntax(format!("syntax error at or near \"{}\"", ts.value))
            })?;
            Expr::Const(decode_text(ty, text.as_bytes())?, ty)
        }
        E::Cast {
            expr, data_type, ..
        } => match ops::special_cast(expr, data_type, cx, d)? {
            Some(e) => e,
            None => {
                let ty = resolve_type(data_type)?;
                let inner = bind_depth(expr, cx, d)?;
                coerce(inner, ty, cx, true)?
            }
        },
        E::UnaryOp { op, expr } => {
            let inner = bind_depth(expr, cx, d)?;
            match op {
                ast::UnaryOperator::Not => {
                    Expr::Not(Box::new(coerce(inner, Type::Bool, cx, false)?))
                }
                ast::UnaryOperator::Minus => {
                    // Fold negative literals so that -2147483648 is an int4.
                    if let ast::Expr::Value(v) = expr.as_ref() {
                        if let ast::Value::Number(n, _) = &v.value {
                            return bind_number(&format!("-{n}"));
                        }
                    }
                    let inner = default_unknown(inner, Type::Numeric, cx);
                    let ty = inner.ty(cx.params);
                    require_numeric(ty, "-")?;
                    Expr::Neg(Box::new(inner), ty)
                }
                ast::UnaryOperator::Plus => inner,
                other => {
                    return Err(PgError::unsupported(format!(
                        "operator {other} is not supported"
                    )))
                }
            }
        }
        E::BinaryOp { left, op, right } if ops::is_extra_operator(op) => {
            ops::bind_extra_binary(left, op, right, cx, d)?
        }
        E::BinaryOp { left, op, right } => {
            let l = bind_depth(left, cx, d)?;
            let r = bind_depth(right, cx, d)?;
            bind_binary(op, l, r, cx)?
        }
        E::IsNull(e) => Expr::IsNull(Box::new(bind_depth(e, cx, d)?), true),
        E::IsNotNull(e) => Expr::IsNull(Box::new(bind_depth(e, cx, d)?), false),
        E::IsTrue(e) => is_bool(bind_depth(e, cx, d)?, true, true, cx)?,
        E::IsNotTrue(e) => is_bool(bind_depth(e, cx, d)?, true, false, cx)?,
        E::IsFalse(e) => is_bool(bind_depth(e, cx, d)?, false, true, cx)?,
        E::IsNotFalse(e) => is_bool(bind_depth(e, cx, d)?, false, false, cx)?,
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => bind_case(
            operand.as_deref(),
            conditions,
            else_result.as_deref(),
            cx,
            d,
        )?,
        E::Function(f) => match ops::resolve_function(f, cx)? {
            Some(e) => e,
            None => bind_function(f, cx, d)?,
        },
        E::Substring { .. }
        | E::Position { .. }
        | E::Trim { .. }
        | E::Extract { .. }
        | E::Ceil { .. }
        | E::Floor { .. } => crate::functions::bind_special(expr, cx, d)?,
        E::Identifier(ident) => match ops::resolve_column(std::slice::from_ref(ident), cx)? {
            Some(e) => e,
            None => bind_keyword_function(&ident.value, cx)?,
        },
        E::CompoundIdentifier(parts) if ops::has_resolver(cx) => ops::resolve_column(parts, cx)?
            .ok_or_else(|| {
                let name: Vec<_> = parts.iter().map(|p| p.value.as_str()).collect();
                PgError::new(
                    SqlState::UNDEFINED_COLUMN,
                    format!("column \"{}\" does not exist", name.join(".")),
                )
            })?,
        E::CompoundIdentifier(parts) => {
            let name: Vec<_> = parts.iter().map(|p| p.value.as_str()).collect();
            return Err(PgError::new(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{}\" does not exist", name.join(".")),
            ));
        }
        other => match ops::bind_more(other, cx, d)? {
            Some(e) => e,
            None => {
                return Err(PgError::unsupported(format!(
                    "expression not supported yet: {other}"
                )))
            }
        },
    })
}

fn literal_text(value: &ast::Value) -> Option<String> {
    match value {
        ast::Value::SingleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s)
        | ast::Value::UnicodeStringLiteral(s) => Some(s.clone()),
        ast::Value::DollarQuotedString(s) => Some(s.value.clone()),
        _ => None,
    }
}

fn bind_literal(value: &ast::Value, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    match value {
        ast::Value::Number(n, _) => bind_number(n),
        ast::Value::Boolean(b) => Ok(Expr::Const(Value::Bool(*b), Type::Bool)),
        ast::Value::Null => Ok(Expr::Const(Value::Null, Type::Unknown)),
        ast::Value::Placeholder(p) => {
            let index = p
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n >= 1)
                .ok_or_else(|| PgError::syntax(format!("syntax error at or near \"{p}\"")))?;
            const PARAMS_MAX: usize = u16::MAX as usize;
            if index > PARAMS_MAX {
                return Err(PgError::new(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    format!("there are at most {PARAMS_MAX} parameters"),
                ));
            }
            if cx.params.len() < index {
                cx.params.resize(index, None);
            }
            Ok(Expr::Param(index - 1))
        }
        other => match literal_text(other) {
            Some(text) => Ok(Expr::Const(Value::Text(text), Type::Unknown)),
            None => Err(PgError::unsupported(format!(
                "literal not supported yet: {other}"
            ))),
        },
    }
}

/// Integer literals are int4, int8 or numeric by size; others are numeric.
fn bind_number(text: &str) -> PgResult<Expr> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(match i32::try_from(n) {
            Ok(n) => Expr::Const(Value::Int4(n), Type::Int4),
            Err(_) => Expr::Const(Value::Int8(n), Type::Int8),
        });
    }
    match decode_text(Type::Numeric, text.as_bytes()) {
        Ok(value) => Ok(Expr::Const(value, Type::Numeric)),
        // Beyond the 28 digits our decimal holds (PostgreSQL's numeric has no
        // such limit): a literal like 1e100 is kept as double precision.
        Err(error) => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Expr::Const(Value::Float8(f), Type::Float8)),
            _ => Err(error),
        },
    }
}

/// Maps a SQL type name to a [`Type`].
pub fn resolve_type(data_type: &ast::DataType) -> PgResult<Type> {
    use ast::DataType as D;
    Ok(match data_type {
        D::Boolean | D::Bool => Type::Bool,
        D::SmallInt(_) | D::Int2(_) => Type::Int2,
        D::Int(_) | D::Integer(_) | D::Int4(_) => Type::Int4,
        D::BigInt(_) | D::Int8(_) => Type::Int8,
        D::Real | D::Float4 => Type::Float4,
        D::DoublePrecision | D::Float8 | D::Double(_) => Type::Float8,
        D::Float(p) => match p {
            ast::ExactNumberInfo::Precision(p) if *p <= 24 => Type::Float4,
            _ => Type::Float8,
        },
        D::Numeric(_) | D::Decimal(_) | D::Dec(_) => Type::Numeric,
        D::Text | D::String(_) => Type::Text,
        D::Varchar(_) | D::CharacterVarying(_) | D::CharVarying(_) => Type::Varchar,
        D::Char(_) | D::Character(_) => Type::Bpchar,
        D::Bytea => Type::Bytea,
        D::Date => Type::Date,
        D::Time(_, _) => Type::Time,
        D::Timestamp(_, tz) => match tz {
            ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => Type::Timestamptz,
            _ => Type::Timestamp,
        },
        D::Interval { .. } => Type::Interval,
        D::Uuid => Type::Uuid,
        D::JSON => Type::Json,
        D::JSONB => Type::Jsonb,
        D::Custom(name, _) => {
            let name = name.to_string().to_ascii_lowercase();
            let name = name.trim_start_matches("pg_catalog.").trim_matches('"');
            Type::ALL
                .into_iter()
                .find(|t| t.name() == name && *t != Type::Unknown)
                .or(match name {
                    "timestamptz" => Some(Type::Timestamptz),
                    "oid" => Some(Type::Oid),
                    "name" => Some(Type::Name),
                    _ => None,
                })
                .ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!("type \"{name}\" does not exist"),
                    )
                })?
        }
        other => {
            return Err(PgError::new(
                SqlState::UNDEFINED_OBJECT,
                format!("type \"{other}\" is not supported yet"),
            ))
        }
    })
}

pub(crate) fn is_numeric(ty: Type) -> bool {
    matches!(
        ty,
        Type::Int2 | Type::Int4 | Type::Int8 | Type::Numeric | Type::Float4 | Type::Float8
    )
}

pub(crate) fn is_text(ty: Type) -> bool {
    matches!(
        ty,
        Type::Text | Type::Varchar | Type::Bpchar | Type::Name | Type::Unknown
    )
}

fn require_numeric(ty: Type, op: &str) -> PgResult<()> {
    if is_numeric(ty) {
        Ok(())
    } else {
        Err(PgError::new(
            SqlState::UNDEFINED_FUNCTION,
            format!("operator does not exist: {op} {}", ty.name()),
        )
        .with_hint("No operator matches the given name and argument type. You might need to add an explicit type cast."))
    }
}

/// Position in the numeric promotion order, or `None` if not numeric.
fn numeric_rank(ty: Type) -> Option<u8> {
    match ty {
        Type::Int2 => Some(0),
        Type::Int4 => Some(1),
        Type::Int8 => Some(2),
        Type::Numeric => Some(3),
        Type::Float4 => Some(4),
        Type::Float8 => Some(5),
        _ => None,
    }
}

/// The common type of two operands, resolving unknowns from the other side.
pub(crate) fn common_type(l: Type, r: Type) -> Option<Type> {
    match (l, r) {
        (Type::Unknown, Type::Unknown) => Some(Type::Text),
        (Type::Unknown, t) | (t, Type::Unknown) => Some(t),
        (a, b) if a == b => Some(a),
        (a, b) if is_text(a) && is_text(b) => Some(Type::Text),
        (a, b) => match (numeric_rank(a), numeric_rank(b)) {
            (Some(x), Some(y)) => Some(if x >= y { a } else { b }),
            _ => match (a, b) {
                (Type::Date, Type::Timestamp) | (Type::Timestamp, Type::Date) => {
                    Some(Type::Timestamp)
                }
                (Type::Json, Type::Jsonb) | (Type::Jsonb, Type::Json) => Some(Type::Jsonb),
                // Integers compare with oids as oids (the catalog's ids).
                (Type::Oid, Type::Int2 | Type::Int4 | Type::Int8)
                | (Type::Int2 | Type::Int4 | Type::Int8, Type::Oid) => Some(Type::Oid),
                _ => None,
            },
        },
    }
}

/// An unknown-typed expression (literal or parameter) takes `ty`.
fn default_unknown(expr: Expr, ty: Type, cx: &mut BindContext<'_>) -> Expr {
    match expr {
        Expr::Param(i) if cx.params[i].is_none() => {
            cx.params[i] = Some(ty);
            Expr::Param(i)
        }
        other => other,
    }
}

/// Converts `expr` to `ty`: literals are parsed now, parameters get the type,
/// others get a cast (implicit casts only between numeric or text types).
pub(crate) fn coerce(
    expr: Expr,
    ty: Type,
    cx: &mut BindContext<'_>,
    explicit: bool,
) -> PgResult<Expr> {
    let from = expr.ty(cx.params);
    if from == ty {
        return Ok(expr);
    }
    match expr {
        Expr::Const(Value::Null, _) => Ok(Expr::Const(Value::Null, ty)),
        Expr::Const(Value::Text(text), Type::Unknown) => {
            Ok(Expr::Const(decode_text(ty, text.as_bytes())?, ty))
        }
        Expr::Param(i) if cx.params[i].is_none() => {
            cx.params[i] = Some(ty);
            Ok(Expr::Param(i))
        }
        Expr::Const(value, _) if explicit => Ok(Expr::Const(cast_value(value, from, ty)?, ty)),
        expr => {
            let implicit = (is_numeric(from) && is_numeric(ty))
                || (is_text(from) && is_text(ty))
                || (from == Type::Date && ty == Type::Timestamp)
                || (matches!(from, Type::Int2 | Type::Int4 | Type::Int8) && ty == Type::Oid);
            if explicit || implicit {
                Ok(Expr::Cast(Box::new(expr), ty))
            } else {
                Err(PgError::new(
                    SqlState::DATATYPE_MISMATCH,
                    format!(
                        "argument of type {} cannot be used as {}",
                        from.name(),
                        ty.name()
                    ),
                ))
            }
        }
    }
}

fn is_bool(e: Expr, which: bool, positive: bool, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    Ok(Expr::IsBool(
        Box::new(coerce(e, Type::Bool, cx, false)?),
        which,
        positive,
    ))
}

fn bind_binary(
    op: &ast::BinaryOperator,
    l: Expr,
    r: Expr,
    cx: &mut BindContext<'_>,
) -> PgResult<Expr> {
    use ast::BinaryOperator as B;
    let op = match op {
        B::And => {
            let l = coerce(l, Type::Bool, cx, false)?;
            let r = coerce(r, Type::Bool, cx, false)?;
            return Ok(Expr::And(Box::new(l), Box::new(r)));
        }
        B::Or => {
            let l = coerce(l, Type::Bool, cx, false)?;
            let r = coerce(r, Type::Bool, cx, false)?;
            return Ok(Expr::Or(Box::new(l), Box::new(r)));
        }
        B::Plus => BinOp::Add,
        B::Minus => BinOp::Sub,
        B::Multiply => BinOp::Mul,
        B::Divide => BinOp::Div,
        B::Modulo => BinOp::Mod,
        B::StringConcat => BinOp::Concat,
        B::Eq => BinOp::Eq,
        B::NotEq => BinOp::NotEq,
        B::Lt => BinOp::Lt,
        B::LtEq => BinOp::LtEq,
        B::Gt => BinOp::Gt,
        B::GtEq => BinOp::GtEq,
        other => {
            return Err(PgError::unsupported(format!(
                "operator {other} is not supported yet"
            )))
        }
    };
    let (lt, rt) = (l.ty(cx.params), r.ty(cx.params));
    if op == BinOp::Concat {
        let l = coerce_to_text(l, cx)?;
        let r = coerce_to_text(r, cx)?;
        return Ok(Expr::Binary(op, Box::new(l), Box::new(r), Type::Text));
    }
    let Some(common) = common_type(lt, rt) else {
        return Err(PgError::new(
            SqlState::UNDEFINED_FUNCTION,
            format!("operator does not exist: {} {} {}", lt.name(), op_symbol(op), rt.name()),
        )
        .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts."));
    };
    // Arithmetic on two unknowns: PostgreSQL cannot choose either; numeric is
    // the useful guess for parameters and literals alike.
    let common = if is_arithmetic(op) && lt == Type::Unknown && rt == Type::Unknown {
        Type::Numeric
    } else {
        common
    };
    let l = coerce(l, common, cx, false)?;
    let r = coerce(r, common, cx, false)?;
    let ty = if is_arithmetic(op) {
        require_numeric(common, op_symbol(op))?;
        common
    } else {
        Type::Bool
    };
    Ok(Expr::Binary(op, Box::new(l), Box::new(r), ty))
}

pub(crate) fn coerce_to_text(e: Expr, cx: &mut BindContext<'_>) -> PgResult<Expr> {
    let ty = e.ty(cx.params);
    if is_text(ty) {
        coerce(e, Type::Text, cx, false)
    } else {
        coerce(e, Type::Text, cx, true)
    }
}

fn is_arithmetic(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod
    )
}

fn op_symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Concat => "||",
        BinOp::Eq => "=",
        BinOp::NotEq => "<>",
        BinOp::Lt => "<",
        BinOp::LtEq => "<=",
        BinOp::Gt => ">",
        BinOp::GtEq => ">=",
    }
}

fn bind_case(
    operand: Option<&ast::Expr>,
    conditions: &[ast::CaseWhen],
    else_result: Option<&ast::Expr>,
    cx: &mut BindContext<'_>,
    depth: usize,
) -> PgResult<Expr> {
    let operand = operand.map(|o| bind_depth(o, cx, depth)).transpose()?;
    let mut branches = Vec::with_capacity(conditions.len());
    for when in conditions {
        let condition = bind_depth(&when.condition, cx, depth)?;
        let condition = match &operand {
            Some(op) => {
                let ty =
                    common_type(op.ty(cx.params), condition.ty(cx.params)).unwrap_or(Type::Text);
                coerce(condition, ty, cx, false)?
            }
            None => coerce(condition, Type::Bool, cx, false)?,
        };
        branches.push((condition, bind_depth(&when.result, cx, depth)?));
    }
    let otherwise = else_result.map(|e| bind_depth(e, cx, depth)).transpose()?;
    let mut ty = Type::Unknown;
    for result in branches.iter().map(|b| &b.1).chain(otherwise.iter()) {
        let rt = result.ty(cx.params);
        if rt == Type::Unknown {
            continue; // an untyped NULL or literal takes the others' type
        }
        ty = common_type(ty, rt).ok_or_else(|| {
            PgError::new(
                SqlState::DATATYPE_MISMATCH,
                format!(
                    "CASE types {} and {} cannot be matched",
                    ty.name(),
                    rt.name()
                ),
            )
        })?;
    }
    let ty = if ty == Type::Unknown { Type::Text } else { ty };
    let mut coerced = Vec::with_capacity(branches.len());
    for (condition, result) in branches {
        coerced.push((condition, coerce(result, ty, cx, false)?));
    }
    let otherwise = otherwise.map(|e| coerce(e, ty, cx, false)).transpose()?;
    let operand = match operand {
        Some(op) => {
            let first = coerced.first().map_or(Type::Text, |(c, _)| c.ty(cx.params));
            Some(Box::new(coerce(op, first, cx, false)?))
        }
        None => None,
    };
    Ok(Expr::Case {
        operand,
        branches: coerced,
        otherwise: otherwise.map(Box::new),
        ty,
    })
}

/// SQL keywords that are really functions: CURRENT_TIMESTAMP, CURRENT_USER, ...
fn bind_keyword_function(name: &str, _cx: &mut BindContext<'_>) -> PgResult<Expr> {
    let (func, ty) = match name.to_ascii_lowercase().as_str() {
        "current_timestamp" | "localtimestamp" => (Func::Now, Type::Timestamptz),
        "current_date" => (Func::CurrentDate, Type::Date),
        "current_user" | "session_user" | "user" | "current_role" => {
            (Func::CurrentUser, Type::Name)
        }
        "current_schema" => (Func::CurrentSchema, Type::Name),
        "current_catalog" => (Func::CurrentDatabase, Type::Name),
        _ => {
            return Err(PgError::new(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{name}\" does not exist"),
            ))
        }
    };
    Ok(Expr::Func(func, Vec::new(), ty))
}

fn bind_function(f: &ast::Function, cx: &mut BindContext<'_>, depth: usize) -> PgResult<Expr> {
    let name = f
        .name
        .0
        .last()
        .map(|p| p.to_string().to_ascii_lowercase())
        .unwrap_or_default();
    let schema_ok = f.name.0.len() == 1
        || (f.name.0.len() == 2 && f.name.0[0].to_string().eq_ignore_ascii_case("pg_catalog"));
    let mut args = Vec::new();
    match &f.args {
        ast::FunctionArguments::None => return bind_keyword_function(&name, cx),
        ast::FunctionArguments::List(list) => {
            if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                return Err(PgError::unsupported(format!(
                    "{name}(...) with clauses is not supported yet"
                )));
            }
            for arg in &list.args {
                match arg {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                        args.push(bind_depth(e, cx, depth)?)
                    }
                    other => {
                        return Err(PgError::unsupported(format!(
                            "function argument {other} is not supported yet"
                        )))
                    }
                }
            }
        }
        ast::FunctionArguments::Subquery(_) => {
            return Err(PgError::unsupported("subqueries are not supported yet"))
        }
    }
    if f.filter.is_some() || f.over.is_some() || !f.within_group.is_empty() {
        return Err(PgError::unsupported(format!(
            "{name}(...) with FILTER/OVER/WITHIN GROUP is not supported yet"
        )));
    }
    if !schema_ok {
        let types: Vec<Type> = args.iter().map(|a| a.ty(cx.params)).collect();
        return Err(crate::functions::undefined_function(&name, &types));
    }
    crate::functions::bind(&name, args, cx)
}

/// Evaluates a bound expression.
pub fn eval(expr: &Expr, cx: &dyn EvalContext) -> PgResult<Value> {
    Ok(match expr {
        Expr::Const(v, _) => v.clone(),
        Expr::Param(i) => cx.param(*i).clone(),
        Expr::Not(e) => match eval(e, cx)? {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        Expr::Neg(e, ty) => negate(eval(e, cx)?, *ty)?,
        Expr::And(l, r) => {
            let l = eval(l, cx)?;
            if l == Value::Bool(false) {
                return Ok(l);
            }
            match (l, eval(r, cx)?) {
                (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                _ => Value::Null,
            }
        }
        Expr::Or(l, r) => {
            let l = eval(l, cx)?;
            if l == Value::Bool(true) {
                return Ok(l);
            }
            match (l, eval(r, cx)?) {
                (_, Value::Bool(true)) => Value::Bool(true),
                (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                _ => Value::Null,
            }
        }
        Expr::IsNull(e, positive) => Value::Bool(eval(e, cx)?.is_null() == *positive),
        Expr::IsBool(e, which, positive) => {
            let matches = eval(e, cx)? == Value::Bool(*which);
            Value::Bool(matches == *positive)
        }
        Expr::Cast(e, ty) => {
            let value = eval(e, cx)?;
            let from = value.natural_type();
            cast_value(value, from, *ty)?
        }
        Expr::Binary(op, l, r, ty) => {
            let l = eval(l, cx)?;
            let r = eval(r, cx)?;
            if l.is_null() || r.is_null() {
                return Ok(Value::Null);
            }
            binary(*op, l, r, *ty)?
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
            ..
        } => {
            let operand = operand.as_ref().map(|o| eval(o, cx)).transpose()?;
            for (condition, result) in branches {
                let c = eval(condition, cx)?;
                let hit = match &operand {
                    Some(o) => !o.is_null() && !c.is_null() && compare(o, &c)? == Ordering::Equal,
                    None => c == Value::Bool(true),
                };
                if hit {
                    return eval(result, cx);
                }
            }
            match otherwise {
                Some(e) => eval(e, cx)?,
                None => Value::Null,
            }
        }
        Expr::Func(func, args, _) => crate::functions::call(*func, args, cx)?,
        Expr::Column(i, _) => cx
            .column(*i)
            .cloned()
            .ok_or_else(|| PgError::internal(format!("no column {i} in this row")))?,
        Expr::Outer(i, _) => cx
            .outer(*i)
            .cloned()
            .ok_or_else(|| PgError::internal(format!("no correlation value {i}")))?,
        other => ops::eval_more(other, cx)?,
    })
}

pub(crate) fn out_of_range(ty: Type) -> PgError {
    let name = match ty {
        Type::Int2 => "smallint out of range",
        Type::Int4 => "integer out of range",
        Type::Int8 => "bigint out of range",
        Type::Numeric => "numeric field overflow",
        _ => "value out of range: overflow",
    };
    PgError::new(SqlState::NUMERIC_VALUE_OUT_OF_RANGE, name)
}

pub(crate) fn division_by_zero() -> PgError {
    PgError::new(SqlState::DIVISION_BY_ZERO, "division by zero")
}

fn negate(v: Value, ty: Type) -> PgResult<Value> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Int2(n) => Value::Int2(n.checked_neg().ok_or_else(|| out_of_range(ty))?),
        Value::Int4(n) => Value::Int4(n.checked_neg().ok_or_else(|| out_of_range(ty))?),
        Value::Int8(n) => Value::Int8(n.checked_neg().ok_or_else(|| out_of_range(ty))?),
        Value::Float4(f) => Value::Float4(-f),
        Value::Float8(f) => Value::Float8(-f),
        Value::Numeric(d) => Value::Numeric(-d),
        other => return Err(PgError::internal(format!("negating {other:?}"))),
    })
}

/// Checked integer arithmetic in i64, then narrowed to the result type.
fn int_op(op: BinOp, a: i64, b: i64, ty: Type) -> PgResult<i64> {
    let r = match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div if b == 0 => return Err(division_by_zero()),
        BinOp::Div => a.checked_div(b),
        BinOp::Mod if b == 0 => return Err(division_by_zero()),
        // i64::MIN % -1 overflows in Rust but is 0 in SQL.
        BinOp::Mod => Some(a.checked_rem(b).unwrap_or(0)),
        _ => unreachable!("not arithmetic: {op:?}"),
    };
    let r = r.ok_or_else(|| out_of_range(ty))?;
    let fits = match ty {
        Type::Int2 => i16::try_from(r).is_ok(),
        Type::Int4 => i32::try_from(r).is_ok(),
        _ => true,
    };
    if fits {
        Ok(r)
    } else {
        Err(out_of_range(ty))
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(n) => Some(i64::from(*n)),
        Value::Int4(n) => Some(i64::from(*n)),
        Value::Int8(n) => Some(*n),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    match v {
        Value::Float4(f) => Some(f64::from(*f)),
        Value::Float8(f) => Some(*f),
        Value::Numeric(d) => d.to_f64(),
        other => as_i64(other).map(|n| n as f64),
    }
}

fn binary(op: BinOp, l: Value, r: Value, ty: Type) -> PgResult<Value> {
    match op {
        BinOp::Concat => match (l, r) {
            (Value::Text(a), Value::Text(b)) => Ok(Value::Text(a + &b)),
            (a, b) => Err(PgError::internal(format!("concatenating {a:?} and {b:?}"))),
        },
        BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => {
            let ord = compare(&l, &r)?;
            Ok(Value::Bool(match op {
                BinOp::Eq => ord == Ordering::Equal,
                BinOp::NotEq => ord != Ordering::Equal,
                BinOp::Lt => ord == Ordering::Less,
                BinOp::LtEq => ord != Ordering::Greater,
                BinOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        _ => arithmetic(op, &l, &r, ty),
    }
}

fn arithmetic(op: BinOp, l: &Value, r: &Value, ty: Type) -> PgResult<Value> {
    match ty {
        Type::Int2 | Type::Int4 | Type::Int8 => {
            let (a, b) = (as_i64(l), as_i64(r));
            let (Some(a), Some(b)) = (a, b) else {
                return Err(PgError::internal("integer operands expected"));
            };
            let n = int_op(op, a, b, ty)?;
            Ok(match ty {
                Type::Int2 => Value::Int2(n as i16),
                Type::Int4 => Value::Int4(n as i32),
                _ => Value::Int8(n),
            })
        }
        Type::Numeric => {
            let (Value::Numeric(a), Value::Numeric(b)) = (l, r) else {
                return Err(PgError::internal("numeric operands expected"));
            };
            let result = match op {
                BinOp::Add => a.checked_add(*b),
                BinOp::Sub => a.checked_sub(*b),
                BinOp::Mul => a.checked_mul(*b),
                BinOp::Div | BinOp::Mod if b.is_zero() => return Err(division_by_zero()),
                BinOp::Div => a.checked_div(*b),
                BinOp::Mod => a.checked_rem(*b),
                _ => None,
            };
            result.map(Value::Numeric).ok_or_else(|| out_of_range(ty))
        }
        Type::Float4 | Type::Float8 => {
            let (Some(a), Some(b)) = (as_f64(l), as_f64(r)) else {
                return Err(PgError::internal("float operands expected"));
            };
            let result = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div | BinOp::Mod if b == 0.0 => return Err(division_by_zero()),
                BinOp::Div => a / b,
                BinOp::Mod => a % b,
                _ => unreachable!(),
            };
            if result.is_infinite() && a.is_finite() && b.is_finite() {
                return Err(out_of_range(ty));
            }
            Ok(if ty == Type::Float4 {
                Value::Float4(result as f32)
            } else {
                Value::Float8(result)
            })
        }
        other => Err(PgError::internal(format!("arithmetic on {}", other.name()))),
    }
}

/// Compares two non-null values of one type (numerics across widths).
pub fn compare(l: &Value, r: &Value) -> PgResult<Ordering> {
    use Value as V;
    Ok(match (l, r) {
        (V::Bool(a), V::Bool(b)) => a.cmp(b),
        (V::Text(a), V::Text(b)) => a.cmp(b),
        (V::Bytea(a), V::Bytea(b)) => a.cmp(b),
        (V::Numeric(a), V::Numeric(b)) => a.cmp(b),
        (V::Date(a), V::Date(b)) => a.cmp(b),
        (V::Time(a), V::Time(b))
        | (V::Timestamp(a), V::Timestamp(b))
        | (V::Timestamptz(a), V::Timestamptz(b)) => a.cmp(b),
        (V::Uuid(a), V::Uuid(b)) => a.cmp(b),
        (V::Oid(a), V::Oid(b)) => a.cmp(b),
        (V::Interval(a), V::Interval(b)) => interval_micros(a).cmp(&interval_micros(b)),
        (V::Json(a), V::Json(b)) => a.cmp(b),
        (a, b) => match (as_i64(a), as_i64(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => match (as_f64(a), as_f64(b)) {
                // PostgreSQL orders NaN above every other float.
                (Some(x), Some(y)) => x
                    .partial_cmp(&y)
                    .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan())),
                _ => return Err(PgError::internal(format!("comparing {a:?} with {b:?}"))),
            },
        },
    })
}

fn interval_micros(i: &teller_net::types::Interval) -> i128 {
    // PostgreSQL compares intervals with 30-day months and 24-hour days.
    (i128::from(i.months) * 30 + i128::from(i.days)) * 86_400_000_000 + i128::from(i.micros)
}

/// Casts a value between types, going through text where no direct path exists.
pub fn cast_value(value: Value, from: Type, to: Type) -> PgResult<Value> {
    use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
    if value.is_null() || from == to {
        return Ok(value);
    }
    let int_to = |n: i64| -> PgResult<Value> {
        Ok(match to {
            Type::Int2 => Value::Int2(i16::try_from(n).map_err(|_| out_of_range(to))?),
            Type::Int4 => Value::Int4(i32::try_from(n).map_err(|_| out_of_range(to))?),
            Type::Int8 => Value::Int8(n),
            Type::Numeric => Value::Numeric(Decimal::from(n)),
            Type::Float4 => Value::Float4(n as f32),
            Type::Float8 => Value::Float8(n as f64),
            Type::Bool if to == Type::Bool => Value::Bool(n != 0),
            _ => return cast_via_text(Value::Int8(n), Type::Int8, to),
        })
    };
    match (&value, to) {
        (Value::Int2(_) | Value::Int4(_) | Value::Int8(_), Type::Oid) => {
            let n = as_i64(&value).unwrap_or_default();
            // PostgreSQL reads a negative int4 as the oid of its bits.
            u32::try_from(n)
                .or_else(|_| i32::try_from(n).map(|n| n as u32))
                .map(Value::Oid)
                .map_err(|_| PgError::new(SqlState::NUMERIC_VALUE_OUT_OF_RANGE, "OID out of range"))
        }
        (Value::Oid(o), Type::Int8) => Ok(Value::Int8(i64::from(*o))),
        (Value::Int2(_) | Value::Int4(_) | Value::Int8(_), _)
            if is_numeric(to) || to == Type::Bool =>
        {
            int_to(as_i64(&value).unwrap_or_default())
        }
        (Value::Numeric(d), Type::Int2 | Type::Int4 | Type::Int8) => {
            // Round half away from zero, as PostgreSQL does.
            let rounded =
                d.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
            int_to(rounded.to_i64().ok_or_else(|| out_of_range(to))?)
        }
        (Value::Numeric(d), Type::Float4 | Type::Float8) => {
            let f = d.to_f64().ok_or_else(|| out_of_range(to))?;
            Ok(if to == Type::Float4 {
                Value::Float4(f as f32)
            } else {
                Value::Float8(f)
            })
        }
        (Value::Float4(_) | Value::Float8(_), _) if is_numeric(to) => {
            let f = as_f64(&value).unwrap_or_default();
            match to {
                Type::Float4 => Ok(Value::Float4(f as f32)),
                Type::Float8 => Ok(Value::Float8(f)),
                Type::Numeric => Decimal::from_f64(f)
                    .map(Value::Numeric)
                    .ok_or_else(|| PgError::unsupported(format!("cannot convert {f} to numeric"))),
                _ => {
                    if !f.is_finite() || f.round() < i64::MIN as f64 || f.round() > i64::MAX as f64
                    {
                        return Err(out_of_range(to));
                    }
                    // rint(): round half to even, as PostgreSQL does.
                    int_to(f.round_ties_even() as i64)
                }
            }
        }
        (Value::Date(d), Type::Timestamp | Type::Timestamptz) => {
            let micros = i64::from(*d) * 86_400_000_000;
            Ok(if to == Type::Timestamp {
                Value::Timestamp(micros)
            } else {
                Value::Timestamptz(micros)
            })
        }
        (Value::Timestamp(t) | Value::Timestamptz(t), Type::Date) => {
            Ok(Value::Date(t.div_euclid(86_400_000_000) as i32))
        }
        (Value::Timestamp(t), Type::Timestamptz) => Ok(Value::Timestamptz(*t)),
        (Value::Timestamptz(t), Type::Timestamp) => Ok(Value::Timestamp(*t)),
        (Value::Json(s), Type::Json | Type::Jsonb) => Ok(Value::Json(s.clone())),
        (Value::Text(s), _) if is_text(to) => Ok(Value::Text(s.clone())),
        _ => cast_via_text(value, from, to),
    }
}

fn cast_via_text(value: Value, from: Type, to: Type) -> PgResult<Value> {
    let mut text = bytes::BytesMut::new();
    match &value {
        Value::Text(s) => text.extend_from_slice(s.as_bytes()),
        other => teller_net::types::encode_text(other, from, &mut text),
    }
    if is_text(to) {
        return String::from_utf8(text.to_vec())
            .map(Value::Text)
            .map_err(|_| PgError::internal("non-UTF-8 text form"));
    }
    if !is_text(from) {
        let allowed = matches!(
            (from, to),
            (Type::Bool, Type::Int4) | (Type::Int4, Type::Bool)
        );
        if !allowed {
            return Err(PgError::new(
                SqlState::CANNOT_COERCE,
                format!("cannot cast type {} to {}", from.name(), to.name()),
            ));
        }
    }
    decode_text(to, &text)
}
