//! Join planning: the order of a tree of inner joins and each join's
//! strategy.
//!
//! **Order.** The inputs of an inner-join tree (and its WHERE conjuncts) are
//! flattened; single-input conjuncts are pushed into their input; then a
//! greedy pass starts from the smallest input and repeatedly joins the input
//! that gives the smallest estimated result, preferring inputs connected by
//! an equality (so a chain or star of equalities never becomes a cross
//! product). Cost is the estimated row count; a join whose right keys cover
//! a unique index of a base table keeps the left's cardinality.
//!
//! **Strategy.** With equality keys: an *index lookup join* when the right
//! input is a table scan whose index starts with the keys and the left input
//! is small against it; a *merge join* when both inputs come ordered on the
//! keys by their index; else a *hash join* building on the right input.
//! Without keys: a nested loop.

use teller_net::types::Type;
use teller_net::PgResult;

use super::{
    access, any_node, columns_used, conjoin, conjuncts, remap_columns, Access, JoinKind, JoinPlan,
    JoinStrategy, Plan,
};
use crate::expr::{BinOp, Expr};

/// A lookup join is chosen when the left side is at most this fraction of
/// the right side's rows (a lookup costs about two rows of a scan).
pub const LOOKUP_MAX_LEFT_FRACTION: f64 = 0.5;

/// Splits equalities between the two sides into key pairs; the rest is the
/// residual condition. `lw` is the left width; expressions are over the
/// joined row.
pub fn equi_keys(preds: Vec<Expr>, lw: usize) -> (Vec<Expr>, Vec<Expr>, Vec<Expr>) {
    let (mut lk, mut rk, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for p in preds {
        if let Expr::Binary(BinOp::Eq, a, b, _) = &p {
            let side = |e: &Expr| -> Option<bool> {
                if any_node(e, &mut |n| matches!(n, Expr::SubLink(_) | Expr::NextVal(_))) {
                    return None;
                }
                let mut cols = Vec::new();
                columns_used(e, &mut cols);
                if cols.is_empty() {
                    None
                } else if cols.iter().all(|&c| c < lw) {
                    Some(true)
                } else if cols.iter().all(|&c| c >= lw) {
                    Some(false)
                } else {
                    None
                }
            };
            match (side(a), side(b)) {
                (Some(true), Some(false)) => {
                    lk.push((**a).clone());
                    rk.push(remap_columns((**b).clone(), &|c| c - lw));
                    continue;
                }
                (Some(false), Some(true)) => {
                    lk.push((**b).clone());
                    rk.push(remap_columns((**a).clone(), &|c| c - lw));
                    continue;
                }
                _ => {}
            }
        }
        rest.push(p);
    }
    (lk, rk, rest)
}

/// The key positions a plan's rows come out ordered by (ascending, NULLs
/// last), if known.
pub fn ordering(plan: &Plan) -> Option<Vec<usize>> {
    match plan {
        Plan::Scan(scan) if !scan.reverse => {
            let single = match &scan.access {
                Access::Full => true,
                Access::Spans(spans) => spans.len() == 1,
            };
            let index = scan.table.index(scan.index)?;
            let asc = index.columns.iter().all(|c| {
                c.direction == crate::encoding::key::Direction::Asc
                    && c.nulls == crate::encoding::key::Nulls::Last
            });
            (single && asc).then(|| scan.table.key_positions(index))
        }
        Plan::Filter { input, .. } => ordering(input),
        _ => None,
    }
}

fn bare_columns(keys: &[Expr]) -> Option<Vec<usize>> {
    keys.iter()
        .map(|k| match k {
            Expr::Column(p, _) => Some(*p),
            _ => None,
        })
        .collect()
}

fn same_key_family(a: Type, b: Type) -> bool {
    let ints = |t: Type| matches!(t, Type::Int2 | Type::Int4 | Type::Int8);
    let texts = |t: Type| matches!(t, Type::Text | Type::Varchar | Type::Name);
    a == b || (ints(a) && ints(b)) || (texts(a) && texts(b))
}

/// Picks the strategy of a join; may turn the right scan into the inner
/// side of a lookup join (its index changed to the lookup index).
pub fn choose_strategy(
    kind: JoinKind,
    left: &Plan,
    right: &mut Plan,
    left_keys: Vec<Expr>,
    right_keys: Vec<Expr>,
) -> JoinStrategy {
    if left_keys.is_empty() {
        return JoinStrategy::NestedLoop;
    }
    let Some(rcols) = bare_columns(&right_keys) else {
        return JoinStrategy::Hash {
            left_keys,
            right_keys,
        };
    };
    // Lookup: the right side is a table whose index starts with the keys,
    // possibly after (or between) columns the scan fixes to constants
    // (`s_w_id = $1 AND s_i_id = ol_i_id` looks up `/w/i`).
    if matches!(kind, JoinKind::Inner | JoinKind::Left) {
        if let Plan::Scan(scan) = right {
            if scan.limit.is_none() && !scan.reverse {
                let table_rows = scan.estimate.max(1.0);
                let small = left.estimate() <= table_rows * LOOKUP_MAX_LEFT_FRACTION;
                let fixed = constant_equalities(scan);
                // (key expressions in index order, index id, primary)
                let mut best: Option<(Vec<Expr>, u32, bool)> = None;
                for index in scan.table.all_indexes() {
                    let Some(keys) = lookup_keys(
                        &scan.table.key_positions(index),
                        &rcols,
                        &left_keys,
                        &fixed,
                        &scan.table.columns,
                    ) else {
                        continue;
                    };
                    let primary = index.id == scan.table.primary.id;
                    let better = match &best {
                        None => true,
                        Some((b, _, bp)) => (keys.len(), primary) > (b.len(), *bp),
                    };
                    if better {
                        best = Some((keys, index.id, primary));
                    }
                }
                if let (Some((keys, index, _)), true) = (best, small) {
                    access::reset(scan);
                    scan.index = index;
                    return JoinStrategy::Lookup { left_keys: keys };
                }
            }
        }
    }
    // Merge: both sides ordered on the keys, in key order.
    if matches!(kind, JoinKind::Inner | JoinKind::Left) {
        if let (Some(lo), Some(ro), Some(lcols)) =
            (ordering(left), ordering(right), bare_columns(&left_keys))
        {
            let n = lcols.len();
            let typed = left_keys
                .iter()
                .zip(&right_keys)
                .all(|(l, r)| same_key_family(l.ty(&[]), r.ty(&[])));
            if lo.len() >= n
                && ro.len() >= n
                && lo[..n] == lcols[..]
                && ro[..n] == rcols[..]
                && typed
            {
                return JoinStrategy::Merge {
                    left_keys,
                    right_keys,
                };
            }
        }
    }
    JoinStrategy::Hash {
        left_keys,
        right_keys,
    }
}

/// Columns a scan fixes to a value that does not depend on its row
/// (`col = 1`, `col = $1`), with that value.
fn constant_equalities(scan: &super::ScanPlan) -> Vec<(usize, Expr)> {
    let mut conj: Vec<Expr> = scan.implied.clone();
    if let Some(f) = &scan.filter {
        super::conjuncts(f.clone(), &mut conj);
    }
    let constant = |e: &Expr| {
        !any_node(e, &mut |n| {
            matches!(
                n,
                Expr::Column(..) | Expr::SubLink(_) | Expr::NextVal(_) | Expr::AggRef(..)
            )
        })
    };
    let mut out: Vec<(usize, Expr)> = Vec::new();
    for c in conj {
        let Expr::Binary(BinOp::Eq, a, b, _) = c else {
            continue;
        };
        let pair = match (a.as_ref(), b.as_ref()) {
            (Expr::Column(p, _), other) | (other, Expr::Column(p, _)) if constant(other) => {
                Some((*p, other.clone()))
            }
            _ => None,
        };
        if let Some((p, e)) = pair {
            if !out.iter().any(|(q, _)| *q == p) {
                out.push((p, e));
            }
        }
    }
    out
}

/// The lookup key expressions (over the left row) for an index with key
/// `positions`: its leading columns, each a join key (`rcols[i]` ↔
/// `left_keys[i]`) or fixed by the scan, covering every join key; `None`
/// when the index does not serve.
fn lookup_keys(
    positions: &[usize],
    rcols: &[usize],
    left_keys: &[Expr],
    fixed: &[(usize, Expr)],
    columns: &[crate::catalog::ColumnDesc],
) -> Option<Vec<Expr>> {
    let mut keys = Vec::new();
    let mut joined = 0;
    for &p in positions {
        if let Some(i) = rcols.iter().position(|&c| c == p) {
            if !same_key_family(columns[p].ty, left_keys[i].ty(&[])) {
                return None;
            }
            keys.push(left_keys[i].clone());
            joined += 1;
        } else if let Some((_, e)) = fixed.iter().find(|(q, _)| *q == p) {
            // A parameter's type is not known here; its value is cast to the
            // key column's type when the lookup key is built (an
            // out-of-range value matches nothing, as the equality would).
            let param = matches!(e, Expr::Param(_));
            if !param && !same_key_family(columns[p].ty, e.ty(&[])) {
                break;
            }
            keys.push(e.clone());
        } else {
            break;
        }
    }
    if joined < rcols.len() {
        return None;
    }
    // Constants after the last join key narrow each lookup too; keep them.
    Some(keys)
}

/// Estimated rows of joining `left` and `right` on `right_keys`.
fn join_estimate(left: f64, right: &Plan, right_keys: &[Expr]) -> f64 {
    if right_keys.is_empty() {
        return left * right.estimate();
    }
    if let (Plan::Scan(scan), Some(cols)) = (right, bare_columns(right_keys)) {
        let unique = scan
            .table
            .all_indexes()
            .any(|i| i.unique && scan.table.key_positions(i).iter().all(|p| cols.contains(p)));
        if unique {
            return left.max(1.0);
        }
    }
    left.max(right.estimate())
}

/// An input of a flattened inner-join tree.
struct Input {
    plan: Plan,
    /// Its first column in the original layout.
    offset: usize,
    width: usize,
}

/// Flattens nested inner joins into inputs and conjuncts over the original
/// layout (left to right).
fn flatten(plan: Plan, offset: usize, inputs: &mut Vec<Input>, preds: &mut Vec<Expr>) {
    match plan {
        Plan::Join(j)
            if j.kind == JoinKind::Inner && matches!(j.strategy, JoinStrategy::NestedLoop) =>
        {
            let lw = j.left.width();
            if let Some(c) = j.condition {
                let mut cs = Vec::new();
                conjuncts(c, &mut cs);
                for c in cs {
                    preds.push(remap_columns(c, &|i| i + offset));
                }
            }
            flatten(j.left, offset, inputs, preds);
            flatten(j.right, offset + lw, inputs, preds);
        }
        other => {
            let width = other.width();
            inputs.push(Input {
                plan: other,
                offset,
                width,
            });
        }
    }
}

/// Plans a tree of inner joins with extra conjuncts `above` (over its
/// layout); `place` pushes conjuncts into a single input.
pub fn plan_inner(
    tree: Plan,
    above: Vec<Expr>,
    place: &mut dyn FnMut(Plan, Vec<Expr>) -> PgResult<Plan>,
) -> PgResult<Plan> {
    let total = tree.width();
    let mut inputs = Vec::new();
    let mut preds = above;
    flatten(tree, 0, &mut inputs, &mut preds);
    let owner = |col: usize, inputs: &[Input]| {
        inputs
            .iter()
            .position(|i| col >= i.offset && col < i.offset + i.width)
            .expect("column within the join's layout")
    };
    // Classify conjuncts by the inputs they read.
    let mut local: Vec<Vec<Expr>> = (0..inputs.len()).map(|_| Vec::new()).collect();
    let mut joins: Vec<(Vec<usize>, Expr)> = Vec::new();
    let mut top = Vec::new();
    for p in preds {
        if any_node(&p, &mut |n| matches!(n, Expr::SubLink(_))) {
            top.push(p);
            continue;
        }
        let mut cols = Vec::new();
        columns_used(&p, &mut cols);
        let mut owners: Vec<usize> = cols.iter().map(|&c| owner(c, &inputs)).collect();
        owners.sort_unstable();
        owners.dedup();
        match owners.len() {
            0 => top.push(p),
            1 => {
                let off = inputs[owners[0]].offset;
                local[owners[0]].push(remap_columns(p, &|c| c - off));
            }
            _ => joins.push((owners, p)),
        }
    }
    let mut placed = Vec::with_capacity(inputs.len());
    for (input, conj) in inputs.into_iter().zip(local) {
        let plan = if conj.is_empty() {
            place(input.plan, Vec::new())?
        } else {
            place(input.plan, conj)?
        };
        placed.push(Some(Input {
            plan,
            offset: input.offset,
            width: input.width,
        }));
    }
    // Greedy order.
    let first = (0..placed.len())
        .min_by(|&a, &b| {
            let ea = placed[a].as_ref().map_or(f64::MAX, |i| i.plan.estimate());
            let eb = placed[b].as_ref().map_or(f64::MAX, |i| i.plan.estimate());
            ea.partial_cmp(&eb).unwrap_or(std::cmp::Ordering::Equal)
        })
        .expect("a join has inputs");
    let start = placed[first].take().expect("present");
    let mut joined = vec![first];
    // layout[k] = original column at position k of the accumulated row.
    let mut layout: Vec<usize> = (start.offset..start.offset + start.width).collect();
    let mut acc = start.plan;
    let mut remaining_joins = joins;
    while placed.iter().any(Option::is_some) {
        let connected = |i: usize, js: &[(Vec<usize>, Expr)], joined: &[usize]| {
            js.iter().any(|(owners, _)| {
                owners.contains(&i) && owners.iter().all(|o| *o == i || joined.contains(o))
            })
        };
        let mut best: Option<(usize, f64)> = None;
        let any_connected = (0..placed.len())
            .any(|i| placed[i].is_some() && connected(i, &remaining_joins, &joined));
        for (i, slot) in placed.iter().enumerate() {
            let Some(input) = slot else { continue };
            if any_connected && !connected(i, &remaining_joins, &joined) {
                continue;
            }
            let keys: Vec<Expr> = remaining_joins
                .iter()
                .filter(|(owners, _)| {
                    owners.contains(&i) && owners.iter().all(|o| *o == i || joined.contains(o))
                })
                .filter_map(|(_, p)| match p {
                    Expr::Binary(BinOp::Eq, a, b, _) => {
                        let inside = |e: &Expr| {
                            let mut cols = Vec::new();
                            columns_used(e, &mut cols);
                            !cols.is_empty()
                                && cols
                                    .iter()
                                    .all(|&c| c >= input.offset && c < input.offset + input.width)
                        };
                        if inside(a) {
                            Some(remap_columns((**a).clone(), &|c| c - input.offset))
                        } else if inside(b) {
                            Some(remap_columns((**b).clone(), &|c| c - input.offset))
                        } else {
                            None
                        }
                    }
                    _ => None,
                })
                .collect();
            let estimate = join_estimate(acc.estimate(), &input.plan, &keys);
            if best.is_none_or(|(_, e)| estimate < e) {
                best = Some((i, estimate));
            }
        }
        let (next, estimate) = best.expect("an input remains");
        let input = placed[next].take().expect("present");
        joined.push(next);
        // Conjuncts now fully available.
        let mut now = Vec::new();
        let mut later = Vec::new();
        for (owners, p) in remaining_joins {
            if owners.iter().all(|o| joined.contains(o)) {
                now.push(p);
            } else {
                later.push((owners, p));
            }
        }
        remaining_joins = later;
        let lw = layout.len();
        let position = |col: usize, layout: &[usize]| -> usize {
            match layout.iter().position(|&c| c == col) {
                Some(k) => k,
                None => lw + (col - input.offset),
            }
        };
        let now: Vec<Expr> = now
            .into_iter()
            .map(|p| remap_columns(p, &|c| position(c, &layout)))
            .collect();
        let (lk, rk, rest) = equi_keys(now, lw);
        let mut right = input.plan;
        let strategy = choose_strategy(JoinKind::Inner, &acc, &mut right, lk, rk);
        acc = Plan::Join(Box::new(JoinPlan {
            kind: JoinKind::Inner,
            left: acc,
            right,
            strategy,
            condition: conjoin(rest),
            estimate,
        }));
        layout.extend(input.offset..input.offset + input.width);
    }
    // Back to the original column order.
    if layout.iter().enumerate().any(|(k, &c)| k != c) {
        let mut exprs = vec![Expr::Column(0, Type::Unknown); total];
        for (k, &c) in layout.iter().enumerate() {
            exprs[c] = Expr::Column(k, Type::Unknown);
        }
        let names = (0..total).map(|i| format!("c{i}")).collect();
        acc = Plan::Project {
            input: acc.boxed(),
            exprs,
            names,
        };
    }
    if let Some(predicate) = conjoin(top) {
        acc = Plan::Filter {
            input: acc.boxed(),
            predicate,
        };
    }
    Ok(acc)
}
