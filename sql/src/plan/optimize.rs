//! The optimizer: rewrites a bound plan into the one the executor runs.
//!
//! 1. **Predicate pushdown.** WHERE conjuncts move down through joins into
//!    scans (outer joins only on their preserved side); inner-join trees are
//!    reordered ([`super::join`]); every scan chooses its access path
//!    ([`super::access`]). Conjuncts with subqueries stay in filters, where
//!    the executor can run the subqueries.
//! 2. **Order and limits.** A sort the chosen index already delivers is
//!    dropped (reversing the scan when the order is the index's reverse), and
//!    a LIMIT over a scan whose rows need no more filtering becomes the
//!    scan's row limit.
//! 3. **Covering.** A secondary-index scan that holds every column the query
//!    reads skips the primary-row lookup.

use teller_net::PgResult;

use super::{
    access, any_node, columns_used, conjoin, conjuncts, join, remap_columns, Access, JoinKind,
    Plan, ScanPlan, SortKey,
};
use crate::bind::query::DEFAULT_TABLE_ROWS;
use crate::bind::BindEnv;
use crate::encoding::key::{Direction, Nulls};
use crate::expr::{BinOp, Expr};

/// Optimizes a plan (see the module docs).
pub fn optimize(plan: Plan, env: &BindEnv<'_>) -> PgResult<Plan> {
    let plan = push(plan, env)?;
    let plan = projects(plan)?;
    let plan = orders(plan);
    let width = plan.width();
    let plan = covering(plan, &(0..width).collect::<Vec<_>>());
    Ok(plan)
}

fn table_rows(scan: &ScanPlan, env: &BindEnv<'_>) -> f64 {
    env.shard
        .row_count(scan.table.id)
        .unwrap_or(DEFAULT_TABLE_ROWS)
        .max(1) as f64
}

fn has_sublink(e: &Expr) -> bool {
    any_node(e, &mut |n| matches!(n, Expr::SubLink(_) | Expr::NextVal(_)))
}

/// Pushes filters down, recursively.
fn push(plan: Plan, env: &BindEnv<'_>) -> PgResult<Plan> {
    Ok(match plan {
        Plan::Filter { input, predicate } => {
            let mut conj = Vec::new();
            conjuncts(predicate, &mut conj);
            place(*input, conj, env)?
        }
        Plan::Join(j) if j.kind == JoinKind::Inner => place(Plan::Join(j), Vec::new(), env)?,
        Plan::Join(mut j) => {
            let lw = j.left.width();
            let mut to_right = Vec::new();
            let mut keep = Vec::new();
            if let Some(c) = j.condition.take() {
                let mut cs = Vec::new();
                conjuncts(c, &mut cs);
                for c in cs {
                    let mut cols = Vec::new();
                    columns_used(&c, &mut cols);
                    // In a LEFT join's ON clause a conjunct on the right side
                    // only filters the right input.
                    if j.kind == JoinKind::Left
                        && !cols.is_empty()
                        && cols.iter().all(|&x| x >= lw)
                        && !has_sublink(&c)
                    {
                        to_right.push(remap_columns(c, &|x| x - lw));
                    } else {
                        keep.push(c);
                    }
                }
            }
            if keep.iter().any(has_sublink) {
                return Err(teller_net::PgError::unsupported(
                    "subqueries in outer join conditions are not supported yet",
                ));
            }
            let left = push(j.left, env)?;
            let right = place(j.right, to_right, env)?;
            let (lk, rk, rest) = join::equi_keys(keep, lw);
            let mut right = right;
            let strategy = join::choose_strategy(j.kind, &left, &mut right, lk, rk);
            let estimate = left.estimate().max(right.estimate());
            Plan::Join(Box::new(super::JoinPlan {
                kind: j.kind,
                left,
                right,
                strategy,
                condition: conjoin(rest),
                estimate,
            }))
        }
        Plan::Scan(mut scan) => {
            let rows = table_rows(&scan, env);
            access::choose(&mut scan, rows, None);
            Plan::Scan(scan)
        }
        Plan::Project {
            input,
            exprs,
            names,
        } => Plan::Project {
            input: push(*input, env)?.boxed(),
            exprs,
            names,
        },
        Plan::Aggregate(mut agg) => {
            agg.input = push(agg.input, env)?;
            Plan::Aggregate(agg)
        }
        Plan::Sort { input, keys } => Plan::Sort {
            input: push(*input, env)?.boxed(),
            keys,
        },
        Plan::Limit {
            input,
            limit,
            offset,
        } => Plan::Limit {
            input: push(*input, env)?.boxed(),
            limit,
            offset,
        },
        Plan::Distinct { input, on } => Plan::Distinct {
            input: push(*input, env)?.boxed(),
            on,
        },
        Plan::SetOp(mut op) => {
            op.left = push(op.left, env)?;
            op.right = push(op.right, env)?;
            Plan::SetOp(op)
        }
        leaf @ (Plan::Values { .. }
        | Plan::Series { .. }
        | Plan::Virtual(_)
        | Plan::TableFn { .. }) => leaf,
    })
}

/// Places conjuncts (over `input`'s row) as low as they can go.
fn place(input: Plan, conj: Vec<Expr>, env: &BindEnv<'_>) -> PgResult<Plan> {
    match input {
        Plan::Scan(mut scan) => {
            let (mut pushable, stay): (Vec<Expr>, Vec<Expr>) =
                conj.into_iter().partition(|c| !has_sublink(c));
            if let Some(f) = scan.filter.take() {
                pushable.insert(0, f);
            }
            scan.filter = conjoin(pushable);
            let rows = table_rows(&scan, env);
            access::choose(&mut scan, rows, None);
            Ok(wrap(Plan::Scan(scan), stay))
        }
        Plan::Filter { input, predicate } => {
            let mut all = Vec::new();
            conjuncts(predicate, &mut all);
            all.extend(conj);
            place(*input, all, env)
        }
        Plan::Join(j) if j.kind == JoinKind::Inner => {
            let tree = Plan::Join(j);
            join::plan_inner(tree, conj, &mut |p, c| place(p, c, env))
        }
        Plan::Join(j) => {
            let lw = j.left.width();
            let mut down_left = Vec::new();
            let mut down_right = Vec::new();
            let mut stay = Vec::new();
            for c in conj {
                let mut cols = Vec::new();
                columns_used(&c, &mut cols);
                let left_only = !cols.is_empty() && cols.iter().all(|&x| x < lw);
                let right_only = !cols.is_empty() && cols.iter().all(|&x| x >= lw);
                if has_sublink(&c) {
                    stay.push(c);
                } else if left_only && matches!(j.kind, JoinKind::Left) {
                    down_left.push(c);
                } else if right_only && matches!(j.kind, JoinKind::Right) {
                    down_right.push(remap_columns(c, &|x| x - lw));
                } else {
                    stay.push(c);
                }
            }
            let mut j = *j;
            if !down_left.is_empty() {
                j.left = wrap(j.left, down_left);
            }
            if !down_right.is_empty() {
                j.right = wrap(j.right, down_right);
            }
            let pushed = push(Plan::Join(Box::new(j)), env)?;
            Ok(wrap(pushed, stay))
        }
        other => {
            let pushed = push(other, env)?;
            Ok(wrap(pushed, conj))
        }
    }
}

fn wrap(plan: Plan, conj: Vec<Expr>) -> Plan {
    match conjoin(conj) {
        None => plan,
        Some(predicate) => Plan::Filter {
            input: plan.boxed(),
            predicate,
        },
    }
}

/// Merges stacked projections and drops those that pass their input
/// through unchanged.
fn projects(plan: Plan) -> PgResult<Plan> {
    let plan = map_inputs(plan, &mut projects)?;
    // An aggregation reads through a column-only projection directly.
    if let Plan::Aggregate(mut agg) = plan {
        if let Plan::Project { input, exprs, .. } = &agg.input {
            if exprs.iter().all(|e| matches!(e, Expr::Column(..))) {
                let map: Vec<usize> = exprs
                    .iter()
                    .map(|e| match e {
                        Expr::Column(c, _) => *c,
                        _ => unreachable!("checked above"),
                    })
                    .collect();
                let remap = |e: Expr| remap_columns(e, &|i| map[i]);
                agg.group = agg.group.into_iter().map(remap).collect();
                for call in &mut agg.aggs {
                    call.args = std::mem::take(&mut call.args)
                        .into_iter()
                        .map(remap)
                        .collect();
                    call.filter = call.filter.take().map(remap);
                    for k in &mut call.order {
                        k.expr = remap(k.expr.clone());
                    }
                }
                agg.input = (**input).clone();
            }
        }
        return Ok(Plan::Aggregate(agg));
    }
    let Plan::Project {
        input,
        exprs,
        names,
    } = plan
    else {
        return Ok(plan);
    };
    let input = match *input {
        Plan::Project {
            input: inner,
            exprs: inner_exprs,
            ..
        } if !inner_exprs.iter().any(has_sublink) => {
            let exprs = exprs
                .into_iter()
                .map(|e| {
                    super::rewrite(e, &mut |n| {
                        Ok(match n {
                            Expr::Column(i, _) => inner_exprs[i].clone(),
                            other => other,
                        })
                    })
                })
                .collect::<PgResult<Vec<_>>>()?;
            return projects(Plan::Project {
                input: inner,
                exprs,
                names,
            });
        }
        other => other,
    };
    let identity = exprs.len() == input.width()
        && exprs
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, Expr::Column(c, _) if *c == i));
    if identity {
        return Ok(input);
    }
    Ok(Plan::Project {
        input: input.boxed(),
        exprs,
        names,
    })
}

/// Applies `f` to each input of a plan node.
fn map_inputs(plan: Plan, f: &mut dyn FnMut(Plan) -> PgResult<Plan>) -> PgResult<Plan> {
    Ok(match plan {
        Plan::Filter { input, predicate } => Plan::Filter {
            input: f(*input)?.boxed(),
            predicate,
        },
        Plan::Project {
            input,
            exprs,
            names,
        } => Plan::Project {
            input: f(*input)?.boxed(),
            exprs,
            names,
        },
        Plan::Join(mut j) => {
            j.left = f(j.left)?;
            j.right = f(j.right)?;
            Plan::Join(j)
        }
        Plan::Aggregate(mut a) => {
            a.input = f(a.input)?;
            Plan::Aggregate(a)
        }
        Plan::Sort { input, keys } => Plan::Sort {
            input: f(*input)?.boxed(),
            keys,
        },
        Plan::Limit {
            input,
            limit,
            offset,
        } => Plan::Limit {
            input: f(*input)?.boxed(),
            limit,
            offset,
        },
        Plan::Distinct { input, on } => Plan::Distinct {
            input: f(*input)?.boxed(),
            on,
        },
        Plan::SetOp(mut op) => {
            op.left = f(op.left)?;
            op.right = f(op.right)?;
            Plan::SetOp(op)
        }
        leaf @ (Plan::Scan(_)
        | Plan::Values { .. }
        | Plan::Series { .. }
        | Plan::Virtual(_)
        | Plan::TableFn { .. }) => leaf,
    })
}

/// Drops sorts an index delivers and pushes limits into scans.
fn orders(plan: Plan) -> Plan {
    match plan {
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let input = orders(*input);
            let need = match (&limit, &offset) {
                (Some(l), None) => Some(l.clone()),
                (Some(l), Some(o)) => Some(Expr::Binary(
                    BinOp::Add,
                    Box::new(l.clone()),
                    Box::new(o.clone()),
                    teller_net::types::Type::Int8,
                )),
                _ => None,
            };
            let input = match need {
                Some(n) => push_limit(input, n),
                None => input,
            };
            Plan::Limit {
                input: input.boxed(),
                limit,
                offset,
            }
        }
        Plan::Sort { input, keys } => {
            let input = orders(*input);
            match sorted_by(input, &keys) {
                (plan, true) => plan,
                (input, false) => Plan::Sort {
                    input: input.boxed(),
                    keys,
                },
            }
        }
        Plan::Filter { input, predicate } => Plan::Filter {
            input: orders(*input).boxed(),
            predicate,
        },
        Plan::Project {
            input,
            exprs,
            names,
        } => Plan::Project {
            input: orders(*input).boxed(),
            exprs,
            names,
        },
        Plan::Join(mut j) => {
            j.left = orders(j.left);
            j.right = orders(j.right);
            Plan::Join(j)
        }
        Plan::Aggregate(mut a) => {
            a.input = orders(a.input);
            Plan::Aggregate(a)
        }
        Plan::Distinct { input, on } => Plan::Distinct {
            input: orders(*input).boxed(),
            on,
        },
        Plan::SetOp(mut op) => {
            op.left = orders(op.left);
            op.right = orders(op.right);
            Plan::SetOp(op)
        }
        other => other,
    }
}

/// `input`, and whether its scan delivers `keys` (then set to, reversed if
/// needed; otherwise untouched).
fn sorted_by(mut input: Plan, keys: &[SortKey]) -> (Plan, bool) {
    let mut positions: Vec<(usize, bool, bool)> = Vec::with_capacity(keys.len());
    for k in keys {
        match k.expr {
            Expr::Column(p, _) => positions.push((p, k.desc, k.nulls_first)),
            _ => return (input, false),
        }
    }
    // Map the keys through column-only projections down to the scan.
    fn scan_of<'p>(plan: &'p Plan, positions: &mut [(usize, bool, bool)]) -> Option<&'p ScanPlan> {
        match plan {
            Plan::Scan(scan) => Some(scan),
            Plan::Filter { input, .. } => scan_of(input, positions),
            Plan::Project { input, exprs, .. } => {
                for p in positions.iter_mut() {
                    match exprs.get(p.0) {
                        Some(Expr::Column(q, _)) => p.0 = *q,
                        _ => return None,
                    }
                }
                scan_of(input, positions)
            }
            _ => None,
        }
    }
    fn set_reverse(plan: &mut Plan, reverse: bool) {
        match plan {
            Plan::Scan(scan) => scan.reverse = reverse,
            Plan::Filter { input, .. } | Plan::Project { input, .. } => set_reverse(input, reverse),
            _ => {}
        }
    }
    let decision = scan_of(&input, &mut positions).and_then(|scan| scan_order(scan, &positions));
    match decision {
        Some(reverse) => {
            set_reverse(&mut input, reverse);
            (input, true)
        }
        None => (input, false),
    }
}

/// Whether the scan's index order is `positions` (`Some(false)`) or its
/// reverse (`Some(true)`).
fn scan_order(scan: &ScanPlan, positions: &[(usize, bool, bool)]) -> Option<bool> {
    let index = scan.table.index(scan.index)?;
    let key_positions = scan.table.key_positions(index);
    let fixed = match &scan.access {
        Access::Spans(spans) if spans.len() == 1 => spans[0].eq.len(),
        Access::Spans(_) => 0,
        Access::Full => 0,
    };
    let mut j = 0;
    let mut reverse: Option<bool> = None;
    for &(p, desc, nulls_first) in positions {
        // Skip index columns held constant by the span's equalities.
        while j < fixed && key_positions[j] != p {
            j += 1;
        }
        if j >= index.columns.len() || key_positions[j] != p {
            return None;
        }
        let col = index.columns[j];
        let forward = (col.direction == Direction::Desc) == desc
            && (col.nulls == Nulls::First) == nulls_first;
        let backward = (col.direction == Direction::Desc) != desc
            && (col.nulls == Nulls::First) != nulls_first;
        let this = if forward {
            false
        } else if backward {
            true
        } else {
            return None;
        };
        if reverse.is_some_and(|r| r != this) {
            return None;
        }
        reverse = Some(this);
        j += 1;
    }
    Some(reverse.unwrap_or(false))
}

/// Gives a scan below a LIMIT its row limit when no filter or join can drop
/// rows between them.
fn push_limit(plan: Plan, need: Expr) -> Plan {
    match plan {
        Plan::Scan(mut scan) if scan.filter.is_none() => {
            scan.limit = Some(need);
            Plan::Scan(scan)
        }
        Plan::Project {
            input,
            exprs,
            names,
        } => Plan::Project {
            input: push_limit(*input, need).boxed(),
            exprs,
            names,
        },
        other => other,
    }
}

/// Marks covering secondary-index scans; `needed` are the output columns
/// the parent reads.
fn covering(plan: Plan, needed: &[usize]) -> Plan {
    let used = |exprs: &[&Expr]| {
        let mut out = Vec::new();
        for e in exprs {
            columns_used(e, &mut out);
        }
        out
    };
    match plan {
        Plan::Scan(mut scan) => {
            let mut cols = needed.to_vec();
            if let Some(f) = &scan.filter {
                columns_used(f, &mut cols);
            }
            // A locking read locks the primary rows, so it always visits them.
            if scan.index != scan.table.primary.id && scan.lock.is_none() {
                let codec = crate::table::TableCodec::new(&scan.table);
                scan.covering = codec.index(scan.index).is_some_and(|ix| ix.covers(&cols));
            }
            Plan::Scan(scan)
        }
        Plan::Filter { input, predicate } => {
            let mut cols = needed.to_vec();
            columns_used(&predicate, &mut cols);
            Plan::Filter {
                input: covering(*input, &cols).boxed(),
                predicate,
            }
        }
        Plan::Project {
            input,
            exprs,
            names,
        } => {
            let cols = used(&exprs.iter().collect::<Vec<_>>());
            Plan::Project {
                input: covering(*input, &cols).boxed(),
                exprs,
                names,
            }
        }
        Plan::Join(mut j) => {
            let lw = j.left.width();
            let mut cols = needed.to_vec();
            if let Some(c) = &j.condition {
                columns_used(c, &mut cols);
            }
            let mut rcols: Vec<usize> = Vec::new();
            match &j.strategy {
                super::JoinStrategy::Hash {
                    left_keys,
                    right_keys,
                }
                | super::JoinStrategy::Merge {
                    left_keys,
                    right_keys,
                } => {
                    for k in left_keys {
                        columns_used(k, &mut cols);
                    }
                    for k in right_keys {
                        columns_used(k, &mut rcols);
                    }
                }
                super::JoinStrategy::Lookup { left_keys } => {
                    for k in left_keys {
                        columns_used(k, &mut cols);
                    }
                    if let Plan::Scan(scan) = &j.right {
                        let index = scan.table.index(scan.index);
                        if let Some(index) = index {
                            rcols.extend(
                                scan.table
                                    .key_positions(index)
                                    .into_iter()
                                    .take(left_keys.len()),
                            );
                        }
                    }
                }
                super::JoinStrategy::NestedLoop => {}
            }
            let lcols: Vec<usize> = cols.iter().copied().filter(|&c| c < lw).collect();
            rcols.extend(cols.iter().filter(|&&c| c >= lw).map(|&c| c - lw));
            j.left = covering(j.left, &lcols);
            j.right = covering(j.right, &rcols);
            Plan::Join(j)
        }
        Plan::Aggregate(mut a) => {
            let mut cols = Vec::new();
            for g in &a.group {
                columns_used(g, &mut cols);
            }
            for call in &a.aggs {
                for arg in &call.args {
                    columns_used(arg, &mut cols);
                }
                if let Some(f) = &call.filter {
                    columns_used(f, &mut cols);
                }
                for k in &call.order {
                    columns_used(&k.expr, &mut cols);
                }
            }
            a.input = covering(a.input, &cols);
            Plan::Aggregate(a)
        }
        Plan::Sort { input, keys } => {
            let mut cols = needed.to_vec();
            for k in &keys {
                columns_used(&k.expr, &mut cols);
            }
            Plan::Sort {
                input: covering(*input, &cols).boxed(),
                keys,
            }
        }
        Plan::Limit {
            input,
            limit,
            offset,
        } => Plan::Limit {
            input: covering(*input, needed).boxed(),
            limit,
            offset,
        },
        Plan::Distinct { input, on } => {
            let width = input.width();
            Plan::Distinct {
                input: covering(*input, &(0..width).collect::<Vec<_>>()).boxed(),
                on,
            }
        }
        Plan::SetOp(mut op) => {
            let width = op.left.width();
            let all: Vec<usize> = (0..width).collect();
            op.left = covering(op.left, &all);
            op.right = covering(op.right, &all);
            Plan::SetOp(op)
        }
        leaf @ (Plan::Values { .. }
        | Plan::Series { .. }
        | Plan::Virtual(_)
        | Plan::TableFn { .. }) => leaf,
    }
}
