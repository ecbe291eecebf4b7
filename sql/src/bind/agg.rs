//! Aggregates: binding calls (`count(*)`, `sum(DISTINCT x) FILTER (...)`,
//! `string_agg(x, ',' ORDER BY y)`) and rewriting the expressions above an
//! aggregation onto its output row.
//!
//! While a grouped query is bound, aggregate calls become
//! [`Expr::AggRef`]s and columns stay references to the input row. Then
//! [`grouped`] maps every subtree equal to a GROUP BY expression to the
//! group column, every AggRef to its aggregate column, and refuses any
//! input column left over (PostgreSQL's "must appear in the GROUP BY clause").

use sqlparser::ast;
use teller_net::types::Type;
use teller_net::{PgError, PgResult, SqlState};

use super::{names, Binder, Clause, Scope};
use crate::errors;
use crate::expr::{self, BindContext, Expr};
use crate::plan::{map_children, AggCall, AggFunc, SortKey};

/// The aggregate calls of one query level.
#[derive(Debug, Default)]
pub struct Aggs {
    pub calls: Vec<AggCall>,
}

impl Aggs {
    /// Registers a call (equal calls share one slot); returns its reference.
    pub fn add(&mut self, call: AggCall) -> Expr {
        let ty = call.ty;
        let index = match self.calls.iter().position(|c| *c == call) {
            Some(i) => i,
            None => {
                self.calls.push(call);
                self.calls.len() - 1
            }
        };
        Expr::AggRef(index, ty)
    }
}

/// The aggregate a function call names, if any.
pub fn aggregate_name(f: &ast::Function) -> Option<AggFunc> {
    if f.name.0.len() > 2 {
        return None;
    }
    let name = f.name.0.last()?.as_ident().map(names::ident)?;
    Some(match name.as_str() {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "bool_and" | "every" => AggFunc::BoolAnd,
        "bool_or" => AggFunc::BoolOr,
        "string_agg" => AggFunc::StringAgg,
        _ => return None,
    })
}

fn undefined(name: &str, types: &[Type]) -> PgError {
    let list: Vec<_> = types.iter().map(|t| t.name()).collect();
    PgError::new(
        SqlState::UNDEFINED_FUNCTION,
        format!("function {name}({}) does not exist", list.join(", ")),
    )
    .with_hint(
        "No function matches the given name and argument types. You might need to add explicit type casts.",
    )
}

/// Binds the arguments, options and result type of an aggregate call.
pub fn bind_call(
    binder: &mut Binder<'_>,
    func: AggFunc,
    f: &ast::Function,
    params: &mut Vec<Option<Type>>,
) -> PgResult<AggCall> {
    let ast::FunctionArguments::List(list) = &f.args else {
        return Err(PgError::syntax(format!(
            "{}(...) needs an argument list",
            func.name()
        )));
    };
    let distinct = matches!(
        list.duplicate_treatment,
        Some(ast::DuplicateTreatment::Distinct)
    );
    let mut order = Vec::new();
    for clause in &list.clauses {
        match clause {
            ast::FunctionArgumentClause::OrderBy(items) => {
                for item in items {
                    let e = binder.expr(&item.expr, params, None, Clause::Aggregate)?;
                    let desc = matches!(item.options.sort, Some(ast::OrderBySort::Desc));
                    order.push(SortKey {
                        expr: e,
                        desc,
                        nulls_first: item.options.nulls_first.unwrap_or(desc),
                    });
                }
            }
            other => {
                return Err(PgError::unsupported(format!(
                    "{other} in an aggregate call is not supported"
                )))
            }
        }
    }
    let mut args = Vec::with_capacity(list.args.len());
    let mut star = false;
    for arg in &list.args {
        match arg {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                args.push(binder.expr(e, params, None, Clause::Aggregate)?)
            }
            other => {
                return Err(PgError::unsupported(format!(
                    "aggregate argument {other} is not supported"
                )))
            }
        }
    }
    let filter = f
        .filter
        .as_ref()
        .map(|e| binder.condition(e, params, None, Clause::Aggregate))
        .transpose()?;
    let name = func.name();
    if star {
        if func != AggFunc::Count || !args.is_empty() || distinct {
            return Err(PgError::syntax(format!("{name}(*) is not valid")));
        }
        return Ok(AggCall {
            func: AggFunc::CountStar,
            args,
            distinct,
            filter,
            order,
            ty: Type::Int8,
        });
    }
    let expected = if func == AggFunc::StringAgg { 2 } else { 1 };
    if args.len() != expected {
        let types: Vec<Type> = args.iter().map(|a| a.ty(params)).collect();
        return Err(undefined(name, &types));
    }
    let mut cx = BindContext::new(params);
    let arg_ty = args[0].ty(cx.params);
    let (arg_ty, ty) = match func {
        AggFunc::Count => (arg_ty, Type::Int8),
        AggFunc::Sum | AggFunc::Avg => {
            let arg_ty = if arg_ty == Type::Unknown {
                Type::Numeric
            } else {
                arg_ty
            };
            let ty = match (func, arg_ty) {
                (AggFunc::Sum, Type::Int2 | Type::Int4) => Type::Int8,
                (AggFunc::Sum, Type::Int8 | Type::Numeric) => Type::Numeric,
                (AggFunc::Sum, Type::Float4) => Type::Float4,
                (_, Type::Float8 | Type::Float4) => Type::Float8,
                (AggFunc::Avg, Type::Int2 | Type::Int4 | Type::Int8 | Type::Numeric) => {
                    Type::Numeric
                }
                (_, Type::Interval) => Type::Interval,
                _ => return Err(undefined(name, &[arg_ty])),
            };
            (arg_ty, ty)
        }
        AggFunc::Min | AggFunc::Max => {
            let t = if arg_ty == Type::Unknown {
                Type::Text
            } else {
                arg_ty
            };
            if matches!(t, Type::Json | Type::Jsonb) {
                return Err(undefined(name, &[t]));
            }
            (t, t)
        }
        AggFunc::BoolAnd | AggFunc::BoolOr => (Type::Bool, Type::Bool),
        AggFunc::StringAgg => {
            let t = if arg_ty == Type::Bytea {
                Type::Bytea
            } else {
                Type::Text
            };
            (t, t)
        }
        AggFunc::CountStar => unreachable!("handled above"),
    };
    let mut coerced = Vec::with_capacity(args.len());
    for a in args {
        let t = a.ty(cx.params);
        let target = if func == AggFunc::Count { t } else { arg_ty };
        let target = if target == Type::Unknown {
            Type::Text
        } else {
            target
        };
        coerced.push(if t == target {
            a
        } else {
            expr::ops::coerce_to(a, target, &mut cx).map_err(|_| undefined(name, &[t]))?
        });
    }
    Ok(AggCall {
        func,
        args: coerced,
        distinct,
        filter,
        order,
        ty,
    })
}

/// Rewrites an expression bound over the input row of an aggregation onto
/// the aggregation's output row (`group` values, then `aggs`).
/// `group` pairs each GROUP BY expression with its type.
pub fn grouped(e: Expr, group: &[(Expr, Type)], input: &Scope) -> PgResult<Expr> {
    if let Some(g) = group.iter().position(|g| g.0 == e) {
        return Ok(Expr::Column(g, group[g].1));
    }
    match e {
        Expr::AggRef(k, ty) => Ok(Expr::Column(group.len() + k, ty)),
        Expr::Column(i, _) => {
            let c = &input.columns[i];
            let name = match &c.qualifier {
                Some(q) => format!("{q}.{}", c.name),
                None => c.name.clone(),
            };
            Err(PgError::new(
                errors::GROUPING_ERROR,
                format!(
                    "column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"
                ),
            ))
        }
        other => map_children(other, &mut |c| grouped(c, group, input)),
    }
}
