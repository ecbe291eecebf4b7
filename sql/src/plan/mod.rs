//! Query plans: the operator tree the binder builds ([`crate::bind`]), the
//! optimizer rewrites ([`optimize`]) and the executor runs ([`crate::exec`]).
//!
//! Every node produces rows of a fixed width; expressions inside a node
//! refer to its input's columns by position ([`Expr::Column`]). A join's row
//! is its left row followed by its right row.
//!
//! The plan is bound to one catalog snapshot (it holds `Rc`s of table
//! descriptors) and to no parameter values: key spans are kept as
//! expressions and evaluated when the scan opens, so a prepared statement is
//! planned once and run many times.

pub mod access;
pub mod explain;
pub mod join;
pub mod optimize;

use teller_net::types::Type;
use teller_net::PgResult;

use crate::catalog::{IndexId, TableRef};
use crate::expr::Expr;

/// A node of a query plan.
#[derive(Clone, Debug)]
pub enum Plan {
    /// Literal rows (`VALUES`, or the one empty row of a `SELECT` without
    /// `FROM`).
    Values {
        rows: Vec<Vec<Expr>>,
        types: Vec<Type>,
    },
    Scan(Box<ScanPlan>),
    Filter {
        input: Box<Plan>,
        predicate: Expr,
    },
    Project {
        input: Box<Plan>,
        exprs: Vec<Expr>,
        names: Vec<String>,
    },
    Join(Box<JoinPlan>),
    Aggregate(Box<AggPlan>),
    Sort {
        input: Box<Plan>,
        keys: Vec<SortKey>,
    },
    Limit {
        input: Box<Plan>,
        limit: Option<Expr>,
        offset: Option<Expr>,
    },
    /// Removes duplicate rows; with `on`, keeps the first row of each group
    /// of equal `on` values (`DISTINCT ON`, input sorted by them).
    Distinct {
        input: Box<Plan>,
        on: Option<Vec<Expr>>,
    },
    SetOp(Box<SetOpPlan>),
    /// Rows of a catalog view (`pg_catalog`, `information_schema`).
    Virtual(crate::catalog::pg::VirtualTable),
    /// A set-returning function (`unnest`, `pg_partition_ancestors`): one
    /// value column, then an ordinality column `WITH ORDINALITY`.
    TableFn {
        func: TableFn,
        args: Vec<Expr>,
        ordinality: bool,
        ty: Type,
    },
    /// `generate_series(start, stop [, step])` of integers.
    Series {
        start: Expr,
        stop: Expr,
        step: Option<Expr>,
        ty: Type,
    },
}

/// Set-returning functions besides `generate_series`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFn {
    /// The elements of an array (in text form).
    Unnest,
    /// A relation and its partition ancestors: just itself in TellerDB.
    PartitionAncestors,
}

/// How a scan reaches its rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// Every entry of the index.
    Full,
    /// The union of these key spans (sorted and disjoint at run time).
    Spans(Vec<SpanExprs>),
}

/// Equalities on the first index columns, then an optional range on the
/// next one. Values are expressions of the key columns' types.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanExprs {
    pub eq: Vec<Expr>,
    pub lower: Option<RangeBound>,
    pub upper: Option<RangeBound>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RangeBound {
    pub expr: Expr,
    pub inclusive: bool,
}

/// Row locking of `SELECT ... FOR UPDATE/SHARE`, and the lock an UPDATE or
/// DELETE takes on the rows it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockSpec {
    pub strength: crate::kv::LockStrength,
    pub wait: crate::kv::LockWait,
}

/// A read of one table through one index.
#[derive(Clone, Debug)]
pub struct ScanPlan {
    pub table: TableRef,
    /// The name the query calls the table by (for EXPLAIN).
    pub alias: String,
    pub index: IndexId,
    pub access: Access,
    /// Checked on each row (full table row layout).
    pub filter: Option<Expr>,
    /// Conjuncts of the WHERE clause the access spans already guarantee
    /// (kept so a later rewrite can choose another access path).
    pub implied: Vec<Expr>,
    /// A secondary index that holds every column the query uses: no lookup
    /// of the primary row.
    pub covering: bool,
    /// Highest key first.
    pub reverse: bool,
    /// Most rows the scan needs to return (a pushed-down LIMIT).
    pub limit: Option<Expr>,
    pub lock: Option<LockSpec>,
    /// Estimated rows returned (after the filter).
    pub estimate: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

impl JoinKind {
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::Inner => "inner",
            JoinKind::Left => "left",
            JoinKind::Right => "right",
            JoinKind::Full => "full",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum JoinStrategy {
    /// Every left row against every right row (materialized, bounded).
    NestedLoop,
    /// Builds a hash table on the right input's keys, probes with the left.
    Hash {
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
    },
    /// Both inputs arrive ordered on their keys (ascending).
    Merge {
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
    },
    /// The right input is a scan of a table; for each batch of left rows its
    /// index is read at the keys the left rows give (a prefix of the
    /// index's columns).
    Lookup { left_keys: Vec<Expr> },
}

#[derive(Clone, Debug)]
pub struct JoinPlan {
    pub kind: JoinKind,
    pub left: Plan,
    pub right: Plan,
    pub strategy: JoinStrategy,
    /// Checked on the joined row (left row then right row).
    pub condition: Option<Expr>,
    pub estimate: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
    StringAgg,
}

impl AggFunc {
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::CountStar | AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::BoolAnd => "bool_and",
            AggFunc::BoolOr => "bool_or",
            AggFunc::StringAgg => "string_agg",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    pub args: Vec<Expr>,
    pub distinct: bool,
    pub filter: Option<Expr>,
    /// `ORDER BY` inside the call (`string_agg(x, ',' ORDER BY y)`).
    pub order: Vec<SortKey>,
    pub ty: Type,
}

/// Groups rows by `group` and computes `aggs` per group. Output: the group
/// values, then the aggregate values. Without `group`, exactly one row.
#[derive(Clone, Debug)]
pub struct AggPlan {
    pub input: Plan,
    pub group: Vec<Expr>,
    pub aggs: Vec<AggCall>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOpKind {
    Union,
    Intersect,
    Except,
}

#[derive(Clone, Debug)]
pub struct SetOpPlan {
    pub kind: SetOpKind,
    pub all: bool,
    pub left: Plan,
    pub right: Plan,
}

impl Plan {
    /// Number of columns of the rows this node produces.
    pub fn width(&self) -> usize {
        match self {
            Plan::Values { types, .. } => types.len(),
            Plan::Series { .. } => 1,
            Plan::Virtual(v) => v.def().columns.len(),
            Plan::TableFn { ordinality, .. } => 1 + usize::from(*ordinality),
            Plan::Scan(scan) => scan.table.columns.len(),
            Plan::Project { exprs, .. } => exprs.len(),
            Plan::Join(join) => join.left.width() + join.right.width(),
            Plan::Aggregate(agg) => agg.group.len() + agg.aggs.len(),
            Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input, .. } => input.width(),
            Plan::SetOp(op) => op.left.width(),
        }
    }

    /// Estimated rows produced, for join ordering and strategy choice.
    pub fn estimate(&self) -> f64 {
        match self {
            Plan::Values { rows, .. } => rows.len() as f64,
            Plan::Series { .. } => 1000.0,
            Plan::Virtual(_) => 100.0,
            Plan::TableFn { .. } => 10.0,
            Plan::Scan(scan) => scan.estimate,
            Plan::Join(join) => join.estimate,
            Plan::Filter { input, .. } => input.estimate() * 0.33,
            Plan::Aggregate(agg) if agg.group.is_empty() => 1.0,
            Plan::Aggregate(agg) => (agg.input.estimate() * 0.1).max(1.0),
            Plan::Project { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Distinct { input, .. } => input.estimate(),
            Plan::Limit { input, .. } => input.estimate().min(100.0),
            Plan::SetOp(op) => op.left.estimate() + op.right.estimate(),
        }
    }

    /// The filter or project input, for rewrites.
    pub fn boxed(self) -> Box<Plan> {
        Box::new(self)
    }
}

/// The direct child expressions of `e`.
pub fn expr_children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Const(..)
        | Expr::Param(_)
        | Expr::Column(..)
        | Expr::Outer(..)
        | Expr::AggRef(..)
        | Expr::NextVal(_) => Vec::new(),
        Expr::Not(a)
        | Expr::Neg(a, _)
        | Expr::IsNull(a, _)
        | Expr::IsBool(a, ..)
        | Expr::Cast(a, _) => {
            vec![a]
        }
        Expr::Binary(_, a, b, _) | Expr::And(a, b) | Expr::Or(a, b) | Expr::IsDistinct(a, b, _) => {
            vec![a, b]
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
            ..
        } => {
            let mut out: Vec<&Expr> = operand.iter().map(|b| b.as_ref()).collect();
            for (c, r) in branches {
                out.push(c);
                out.push(r);
            }
            out.extend(otherwise.iter().map(|b| b.as_ref()));
            out
        }
        Expr::Func(_, args, _) => args.iter().collect(),
        Expr::SubLink(link) => link.lhs.iter().chain(&link.correlation).collect(),
        Expr::InList { expr, list, .. } => std::iter::once(expr.as_ref()).chain(list).collect(),
        Expr::Like {
            expr,
            pattern,
            escape,
            ..
        } => {
            let mut out = vec![expr.as_ref(), pattern.as_ref()];
            out.extend(escape.iter().map(|b| b.as_ref()));
            out
        }
        Expr::Regex { expr, pattern, .. } => vec![expr, pattern],
        Expr::Catalog(_, args, _) => args.iter().collect(),
        Expr::AnyArray { lhs, array, .. } => vec![lhs, array],
        Expr::Subscript(a, i, _) => vec![a, i],
    }
}

type Mapper<'f> = &'f mut dyn FnMut(Expr) -> PgResult<Expr>;

/// Rebuilds `e` with `f` applied to each direct child (not recursively).
pub fn map_children(e: Expr, f: Mapper<'_>) -> PgResult<Expr> {
    let go = |b: Box<Expr>, f: Mapper<'_>| f(*b).map(Box::new);
    let all = |v: Vec<Expr>, f: Mapper<'_>| v.into_iter().map(f).collect::<PgResult<Vec<_>>>();
    Ok(match e {
        Expr::Not(a) => Expr::Not(go(a, f)?),
        Expr::Neg(a, t) => Expr::Neg(go(a, f)?, t),
        Expr::IsNull(a, p) => Expr::IsNull(go(a, f)?, p),
        Expr::IsBool(a, w, p) => Expr::IsBool(go(a, f)?, w, p),
        Expr::Cast(a, t) => Expr::Cast(go(a, f)?, t),
        Expr::Binary(op, a, b, t) => Expr::Binary(op, go(a, f)?, go(b, f)?, t),
        Expr::And(a, b) => Expr::And(go(a, f)?, go(b, f)?),
        Expr::Or(a, b) => Expr::Or(go(a, f)?, go(b, f)?),
        Expr::IsDistinct(a, b, n) => Expr::IsDistinct(go(a, f)?, go(b, f)?, n),
        Expr::Case {
            operand,
            branches,
            otherwise,
            ty,
        } => {
            let operand = operand.map(|o| go(o, f)).transpose()?;
            let mut out = Vec::with_capacity(branches.len());
            for (c, r) in branches {
                out.push((f(c)?, f(r)?));
            }
            let otherwise = otherwise.map(|o| go(o, f)).transpose()?;
            Expr::Case {
                operand,
                branches: out,
                otherwise,
                ty,
            }
        }
        Expr::Func(func, args, t) => Expr::Func(func, all(args, f)?, t),
        Expr::SubLink(mut link) => {
            link.lhs = link.lhs.map(&mut *f).transpose()?;
            link.correlation = all(std::mem::take(&mut link.correlation), f)?;
            Expr::SubLink(link)
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => Expr::InList {
            expr: go(expr, f)?,
            list: all(list, f)?,
            negated,
        },
        Expr::Like {
            expr,
            pattern,
            escape,
            negated,
            case_insensitive,
        } => Expr::Like {
            expr: go(expr, f)?,
            pattern: go(pattern, f)?,
            escape: escape.map(|e| go(e, f)).transpose()?,
            negated,
            case_insensitive,
        },
        Expr::Regex {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => Expr::Regex {
            expr: go(expr, f)?,
            pattern: go(pattern, f)?,
            negated,
            case_insensitive,
        },
        Expr::Catalog(func, args, t) => Expr::Catalog(func, all(args, f)?, t),
        Expr::AnyArray {
            lhs,
            op,
            array,
            all: every,
        } => Expr::AnyArray {
            lhs: go(lhs, f)?,
            op,
            array: go(array, f)?,
            all: every,
        },
        Expr::Subscript(a, i, t) => Expr::Subscript(go(a, f)?, go(i, f)?, t),
        leaf => leaf,
    })
}

/// Rebuilds `e` bottom-up, replacing each node by `f(node)` after its
/// children have been rewritten.
pub fn rewrite(e: Expr, f: Mapper<'_>) -> PgResult<Expr> {
    let e = map_children(e, &mut |c| rewrite(c, f))?;
    f(e)
}

/// Whether any node of `e` satisfies `pred`.
pub fn any_node(e: &Expr, pred: &mut dyn FnMut(&Expr) -> bool) -> bool {
    if pred(e) {
        return true;
    }
    expr_children(e).into_iter().any(|c| any_node(c, pred))
}

/// The input columns `e` reads.
pub fn columns_used(e: &Expr, out: &mut Vec<usize>) {
    if let Expr::Column(i, _) = e {
        if !out.contains(i) {
            out.push(*i);
        }
    }
    for c in expr_children(e) {
        columns_used(c, out);
    }
}

/// Whether `e` reads no input column and no subquery (a run-time constant:
/// parameters and functions of them are fine).
pub fn is_row_independent(e: &Expr) -> bool {
    !any_node(e, &mut |n| {
        matches!(
            n,
            Expr::Column(..)
                | Expr::SubLink(_)
                | Expr::AggRef(..)
                | Expr::Outer(..)
                | Expr::NextVal(_)
        )
    })
}

/// Shifts every column reference by `by` (for moving an expression into a
/// join's combined row), or maps it through `map`.
pub fn remap_columns(e: Expr, map: &dyn Fn(usize) -> usize) -> Expr {
    rewrite(e, &mut |n| {
        Ok(match n {
            Expr::Column(i, t) => Expr::Column(map(i), t),
            other => other,
        })
    })
    .expect("remapping columns cannot fail")
}

/// Splits a predicate into its AND-ed conjuncts.
pub fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::And(a, b) => {
            conjuncts(*a, out);
            conjuncts(*b, out);
        }
        other => out.push(other),
    }
}

/// AND-s predicates together (`None` for none).
pub fn conjoin(mut preds: Vec<Expr>) -> Option<Expr> {
    let first = if preds.is_empty() {
        return None;
    } else {
        preds.remove(0)
    };
    Some(
        preds
            .into_iter()
            .fold(first, |acc, p| Expr::And(Box::new(acc), Box::new(p))),
    )
}
