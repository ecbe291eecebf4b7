//! Access paths: turning a scan's WHERE conjuncts into key spans of the best
//! index.
//!
//! For each index, equalities (`col = e`, `col IN (e, ...)`) on its leading
//! columns and then one range (`<`, `<=`, `>`, `>=`) on the next column give
//! spans; `e` must not read the row (constants, parameters, enclosing-query
//! values). Equality on every primary key column is a point lookup (a Get).
//! The cheapest index by estimated rows wins; a secondary index that does not
//! cover the query costs a primary lookup per row. Conjuncts the spans
//! guarantee move to [`ScanPlan::implied`]; the rest stay as the filter.

use teller_net::types::Type;

use super::{conjoin, conjuncts, is_row_independent, Access, RangeBound, ScanPlan, SpanExprs};
use crate::catalog::IndexDesc;
use crate::expr::{BinOp, Expr};

/// Most spans one scan may have (IN lists multiply).
pub const SPANS_MAX: usize = 1000;
/// Selectivity assumed for one equality conjunct.
pub const EQ_SELECTIVITY: f64 = 0.1;
/// Selectivity assumed for a range.
pub const RANGE_SELECTIVITY: f64 = 0.3;
/// Selectivity assumed for any other conjunct.
pub const OTHER_SELECTIVITY: f64 = 0.5;

/// The column a key predicate constrains: a bare column, or an integer or
/// text column cast to a wider type of its family (equality only).
fn key_column(e: &Expr, types: &[Type]) -> Option<(usize, bool)> {
    match e {
        Expr::Column(p, _) => Some((*p, true)),
        Expr::Cast(inner, to) => match inner.as_ref() {
            Expr::Column(p, _) => {
                let from = types[*p];
                let ints = |t: Type| matches!(t, Type::Int2 | Type::Int4 | Type::Int8);
                let texts = |t: Type| matches!(t, Type::Text | Type::Varchar | Type::Name);
                if (ints(from) && ints(*to)) || (texts(from) && texts(*to)) {
                    Some((*p, texts(from)))
                } else {
                    None
                }
            }
            _ => None,
        },
        _ => None,
    }
}

/// A comparison `col op e` (either side), normalized to the column's view.
fn comparison(e: &Expr, types: &[Type]) -> Option<(usize, BinOp, Expr, bool)> {
    let Expr::Binary(op, l, r, _) = e else {
        return None;
    };
    let flip = |op: BinOp| match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::LtEq => BinOp::GtEq,
        BinOp::Gt => BinOp::Lt,
        BinOp::GtEq => BinOp::LtEq,
        other => other,
    };
    if !matches!(
        op,
        BinOp::Eq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
    ) {
        return None;
    }
    if let Some((p, exact)) = key_column(l, types) {
        if is_row_independent(r) {
            return Some((p, *op, (**r).clone(), exact));
        }
    }
    if let Some((p, exact)) = key_column(r, types) {
        if is_row_independent(l) {
            return Some((p, flip(*op), (**l).clone(), exact));
        }
    }
    None
}

/// What one index can do with the conjuncts.
struct Candidate {
    spans: Vec<SpanExprs>,
    used: Vec<usize>,
    eq_len: usize,
    range: bool,
}

fn candidate(
    index: &IndexDesc,
    positions: &[usize],
    conj: &[Expr],
    types: &[Type],
) -> Option<Candidate> {
    let mut spans = vec![SpanExprs {
        eq: Vec::new(),
        lower: None,
        upper: None,
    }];
    let mut used = Vec::new();
    let mut eq_len = 0;
    for &p in positions.iter().take(index.columns.len()) {
        let mut found = false;
        for (i, c) in conj.iter().enumerate() {
            if used.contains(&i) {
                continue;
            }
            if let Some((cp, BinOp::Eq, value, _)) = comparison(c, types) {
                if cp == p {
                    for s in &mut spans {
                        s.eq.push(value.clone());
                    }
                    used.push(i);
                    found = true;
                    break;
                }
            }
            if let Expr::InList {
                expr,
                list,
                negated: false,
            } = c
            {
                if key_column(expr, types).map(|k| k.0) == Some(p)
                    && list.iter().all(is_row_independent)
                    && spans.len() * list.len() <= SPANS_MAX
                {
                    let mut next = Vec::with_capacity(spans.len() * list.len());
                    for s in &spans {
                        for v in list {
                            let mut s = s.clone();
                            s.eq.push(v.clone());
                            next.push(s);
                        }
                    }
                    spans = next;
                    used.push(i);
                    found = true;
                    break;
                }
            }
        }
        if !found {
            break;
        }
        eq_len += 1;
    }
    let mut range = false;
    if eq_len < positions.len() {
        let p = positions[eq_len];
        let (mut lower, mut upper) = (None, None);
        for (i, c) in conj.iter().enumerate() {
            if used.contains(&i) {
                continue;
            }
            let Some((cp, op, value, exact)) = comparison(c, types) else {
                continue;
            };
            if cp != p || !exact {
                continue;
            }
            match op {
                BinOp::Gt | BinOp::GtEq if lower.is_none() => {
                    lower = Some(RangeBound {
                        expr: value,
                        inclusive: op == BinOp::GtEq,
                    });
                    used.push(i);
                }
                BinOp::Lt | BinOp::LtEq if upper.is_none() => {
                    upper = Some(RangeBound {
                        expr: value,
                        inclusive: op == BinOp::LtEq,
                    });
                    used.push(i);
                }
                _ => {}
            }
        }
        range = lower.is_some() || upper.is_some();
        for s in &mut spans {
            s.lower = lower.clone();
            s.upper = upper.clone();
        }
    }
    (eq_len > 0 || range).then_some(Candidate {
        spans,
        used,
        eq_len,
        range,
    })
}

/// Estimated selectivity of a predicate (product over its conjuncts).
pub fn selectivity(filter: Option<&Expr>, types: &[Type]) -> f64 {
    let Some(f) = filter else { return 1.0 };
    let mut conj = Vec::new();
    conjuncts(f.clone(), &mut conj);
    conj.iter()
        .map(|c| match comparison(c, types) {
            Some((_, BinOp::Eq, ..)) => EQ_SELECTIVITY,
            Some(_) => RANGE_SELECTIVITY,
            None => OTHER_SELECTIVITY,
        })
        .product()
}

/// Picks the scan's index and spans; `table_rows` is the table's estimate.
pub fn choose(scan: &mut ScanPlan, table_rows: f64, needed: Option<&[usize]>) {
    let types: Vec<Type> = scan.table.columns.iter().map(|c| c.ty).collect();
    let mut conj = Vec::new();
    for implied in scan.implied.drain(..) {
        conj.push(implied);
    }
    if let Some(f) = scan.filter.take() {
        conjuncts(f, &mut conj);
    }
    let mut best: Option<(f64, u32, Candidate)> = None;
    for index in scan.table.all_indexes() {
        let positions = scan.table.key_positions(index);
        let Some(c) = candidate(index, &positions, &conj, &types) else {
            continue;
        };
        let primary = index.id == scan.table.primary.id;
        let full_key = c.eq_len == index.columns.len() && index.unique;
        let mut rows = if full_key {
            c.spans.len() as f64
        } else {
            let mut r = table_rows * EQ_SELECTIVITY.powi(c.eq_len as i32) * c.spans.len() as f64;
            if c.range {
                r *= RANGE_SELECTIVITY;
            }
            r.max(1.0)
        };
        if !primary {
            let covered = needed.is_some_and(|n| {
                crate::table::TableCodec::new(&scan.table)
                    .index(index.id)
                    .is_some_and(|ix| ix.covers(n))
            });
            if !covered {
                rows *= 2.0;
            }
        }
        // Prefer the primary index on ties: no second lookup.
        let better = match &best {
            None => true,
            Some((cost, _, _)) => rows < *cost,
        };
        if better {
            best = Some((rows, index.id, c));
        }
    }
    let residual_types = types;
    match best {
        Some((rows, index, c)) if rows < table_rows.max(1.0) || index == scan.table.primary.id => {
            let mut implied = Vec::new();
            let mut rest = Vec::new();
            for (i, e) in conj.into_iter().enumerate() {
                if c.used.contains(&i) {
                    implied.push(e);
                } else {
                    rest.push(e);
                }
            }
            scan.index = index;
            scan.access = Access::Spans(c.spans);
            let sel = selectivity(conjoin(rest.clone()).as_ref(), &residual_types);
            scan.estimate = (rows * sel).max(1.0);
            scan.implied = implied;
            scan.filter = conjoin(rest);
        }
        _ => {
            scan.index = scan.table.primary.id;
            scan.access = Access::Full;
            let filter = conjoin(conj);
            scan.estimate = (table_rows * selectivity(filter.as_ref(), &residual_types)).max(1.0);
            scan.filter = filter;
        }
    }
}

/// Undoes [`choose`]: every conjunct back in the filter, a full scan.
pub fn reset(scan: &mut ScanPlan) {
    let mut conj: Vec<Expr> = scan.implied.drain(..).collect();
    if let Some(f) = scan.filter.take() {
        conjuncts(f, &mut conj);
    }
    scan.filter = conjoin(conj);
    scan.access = Access::Full;
    scan.index = scan.table.primary.id;
}
