//! Binding INSERT, UPDATE and DELETE, and the clauses they share: target
//! columns with assignment coercion, DEFAULT, CHECK constraints, RETURNING,
//! ON CONFLICT, and `SELECT ... FOR UPDATE/SHARE` locking.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use teller_net::session::Column;
use teller_net::types::{Type, Value};
use teller_net::{PgError, PgResult, SqlState};

use super::{names, Binder, Clause, Scope, ScopeColumn};
use crate::catalog::{ColumnDesc, Identity, IndexId, Relation, TableRef, PRIMARY_INDEX_ID};
use crate::errors;
use crate::expr::{self, BindContext, Expr};
use crate::kv::{LockStrength, LockWait};
use crate::plan::{Access, LockSpec, Plan, ScanPlan};

/// How a column gets its value when a statement gives none.
#[derive(Clone, Debug)]
pub enum ColumnDefault {
    Null,
    Expr(Expr),
    /// The hidden primary key of a table declared without one.
    RowId,
}

/// What writing rows of one table needs.
#[derive(Clone, Debug)]
pub struct TableWrite {
    pub table: TableRef,
    /// Per column position.
    pub defaults: Vec<ColumnDefault>,
    /// CHECK constraints: name and predicate over the row.
    pub checks: Vec<(String, Expr)>,
}

/// `RETURNING` expressions over the written row.
#[derive(Clone, Debug)]
pub struct Returning {
    pub exprs: Vec<Expr>,
    pub columns: Vec<Column>,
}

#[derive(Clone, Debug)]
pub enum ConflictAction {
    Nothing,
    /// Assignments and filter over the existing row followed by the
    /// proposed (`excluded`) row.
    Update {
        assignments: Vec<(usize, Expr)>,
        filter: Option<Expr>,
    },
}

#[derive(Clone, Debug)]
pub struct OnConflict {
    /// The unique indexes whose conflicts are handled; empty: all.
    pub arbiters: Vec<IndexId>,
    pub action: ConflictAction,
}

#[derive(Clone, Debug)]
pub struct InsertPlan {
    pub write: TableWrite,
    /// Rows of the target columns' types.
    pub source: Plan,
    /// Table column position of each source column.
    pub targets: Vec<usize>,
    pub on_conflict: Option<OnConflict>,
    pub returning: Option<Returning>,
}

#[derive(Clone, Debug)]
pub struct UpdatePlan {
    pub write: TableWrite,
    /// The rows to update: full table rows, followed by the columns of the
    /// `FROM` items joined to each (`joined` of them).
    pub source: Plan,
    /// Column position and new value (over the source row).
    pub assignments: Vec<(usize, Expr)>,
    /// RETURNING, over the new row followed by the joined columns.
    pub returning: Option<Returning>,
    /// Columns of `UPDATE ... FROM` items after the table's (0: no FROM). A
    /// row that joins several times is updated once, with the first match,
    /// as PostgreSQL does (which match is unspecified there too).
    pub joined: usize,
}

#[derive(Clone, Debug)]
pub struct DeletePlan {
    pub table: TableRef,
    /// Full table rows, followed by the columns of `USING` items (`joined`).
    pub source: Plan,
    /// RETURNING, over the source row.
    pub returning: Option<Returning>,
    /// Columns of `DELETE ... USING` items after the table's (0: none); a
    /// row matched several times is deleted once.
    pub joined: usize,
}

/// A base table named by a DML statement.
pub(super) fn target_table(binder: &Binder<'_>, name: &ast::ObjectName) -> PgResult<TableRef> {
    let parts = names::object_parts(name)?;
    let (schema, table) = binder.resolve_schema(&parts)?;
    match binder.catalog().relation(schema, table) {
        Some(Relation::Table(id)) => binder
            .catalog()
            .table(id)
            .cloned()
            .ok_or_else(|| PgError::internal("relation without table")),
        Some(_) => Err(PgError::new(
            errors::WRONG_OBJECT_TYPE,
            format!("\"{table}\" is not a table"),
        )),
        None => Err(errors::undefined_table(table)),
    }
}

/// The table INSERT, UPDATE or DELETE (`verb`) writes; views are read-only
/// here (PostgreSQL updates simple views through their table).
fn dml_target(binder: &Binder<'_>, name: &ast::ObjectName, verb: &str) -> PgResult<TableRef> {
    let parts = names::object_parts(name)?;
    let (schema, relation) = binder.resolve_schema(&parts)?;
    if let Some(Relation::View(_)) = binder.catalog().relation(schema, relation) {
        return Err(
            PgError::unsupported(format!("cannot {verb} view \"{relation}\""))
                .with_detail("TellerDB views are read-only: write to the tables they read."),
        );
    }
    target_table(binder, name)
}

/// The scope of a table's row under `qualifier`.
pub fn table_scope(table: &TableRef, qualifier: &str) -> Scope {
    Scope::new(
        table
            .columns
            .iter()
            .map(|c| ScopeColumn {
                qualifier: Some(qualifier.to_string()),
                name: c.name.clone(),
                ty: c.ty,
                hidden: c.hidden,
                merged: false,
                source: Some((table.id, c.id)),
                typmod: c.typmod,
                element: None,
            })
            .collect(),
    )
}

fn full_scan(binder: &Binder<'_>, table: &TableRef, alias: &str) -> Plan {
    let rows = binder
        .env
        .shard
        .row_count(table.id)
        .unwrap_or(super::query::DEFAULT_TABLE_ROWS) as f64;
    Plan::Scan(Box::new(ScanPlan {
        table: table.clone(),
        alias: alias.to_string(),
        index: PRIMARY_INDEX_ID,
        access: Access::Full,
        filter: None,
        implied: Vec::new(),
        covering: false,
        reverse: false,
        limit: None,
        lock: None,
        estimate: rows.max(1.0),
    }))
}

/// Parses stored SQL text (a DEFAULT or CHECK expression).
pub fn parse_expr(text: &str) -> PgResult<ast::Expr> {
    Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(crate::session::PARSER_RECURSION_MAX)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| crate::encoding::corrupt(format!("stored expression {text:?}: {e}")))
}

/// Binds a column's default, coerced to its type.
pub fn bind_default(
    binder: &mut Binder<'_>,
    column: &ColumnDesc,
    params: &mut Vec<Option<Type>>,
) -> PgResult<ColumnDefault> {
    if column.hidden {
        return Ok(ColumnDefault::RowId);
    }
    let Some(text) = &column.default else {
        return Ok(ColumnDefault::Null);
    };
    let e = parse_expr(text)?;
    let saved = binder.set_scope(Scope::default());
    let bound = binder.expr(&e, params, None, Clause::Default);
    binder.set_scope(saved);
    Ok(ColumnDefault::Expr(assign(bound?, column, params)?))
}

/// Whether PostgreSQL converts `from` to `to` on assignment (INSERT and
/// UPDATE values) where it would not implicitly: among date and time
/// types, and from anything to a string type (I/O conversion).
fn assignment_cast(from: Type, to: Type) -> bool {
    let datetime = |t: Type| matches!(t, Type::Date | Type::Timestamp | Type::Timestamptz);
    let string = |t: Type| matches!(t, Type::Text | Type::Varchar | Type::Bpchar | Type::Name);
    (datetime(from) && datetime(to)) || string(to)
}

/// Coerces a value expression to a column's type for storing.
pub fn assign(e: Expr, column: &ColumnDesc, params: &mut Vec<Option<Type>>) -> PgResult<Expr> {
    let from = e.ty(params);
    let mut cx = BindContext::new(params);
    let mismatch = || {
        PgError::new(
            SqlState::DATATYPE_MISMATCH,
            format!(
                "column \"{}\" is of type {} but expression is of type {}",
                column.name,
                column.ty.name(),
                from.name()
            ),
        )
        .with_hint("You will need to rewrite or cast the expression.")
    };
    if from != Type::Unknown && from != column.ty && assignment_cast(from, column.ty) {
        return expr::ops::cast_to(e, column.ty, &mut cx).map_err(|_| mismatch());
    }
    expr::ops::coerce_to(e, column.ty, &mut cx).map_err(|err| {
        if err.code == SqlState::DATATYPE_MISMATCH || err.code == SqlState::UNDEFINED_FUNCTION {
            mismatch()
        } else {
            err
        }
    })
}

fn write_parts(
    binder: &mut Binder<'_>,
    table: &TableRef,
    params: &mut Vec<Option<Type>>,
) -> PgResult<TableWrite> {
    let mut defaults = Vec::with_capacity(table.columns.len());
    for c in &table.columns {
        defaults.push(bind_default(binder, c, params)?);
    }
    let saved = binder.set_scope(table_scope(table, &table.name));
    let mut checks = Vec::with_capacity(table.checks.len());
    let result: PgResult<()> = (|| {
        for check in &table.checks {
            let e = parse_expr(&check.expr)?;
            checks.push((
                check.name.clone(),
                binder.condition(&e, params, None, Clause::Check)?,
            ));
        }
        Ok(())
    })();
    binder.set_scope(saved);
    result?;
    Ok(TableWrite {
        table: table.clone(),
        defaults,
        checks,
    })
}

fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

fn column_position(table: &TableRef, name: &str) -> PgResult<usize> {
    table
        .columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| errors::undefined_column_of(name, &table.name))
}

fn identity_always_error(column: &ColumnDesc) -> PgError {
    PgError::new(
        errors::GENERATED_ALWAYS,
        format!(
            "cannot insert a non-DEFAULT value into column \"{}\"",
            column.name
        ),
    )
    .with_detail(format!(
        "Column \"{}\" is an identity column defined as GENERATED ALWAYS.",
        column.name
    ))
    .with_hint("Use OVERRIDING SYSTEM VALUE to override.")
}

/// The INSERT behind `COPY table [(columns)] FROM STDIN`: the rows come
/// from the client, so the source is empty here.
pub(super) fn bind_copy_insert(
    binder: &mut Binder<'_>,
    name: &ast::ObjectName,
    columns: &[ast::Ident],
    params: &mut Vec<Option<Type>>,
) -> PgResult<InsertPlan> {
    let table = target_table(binder, name)?;
    let mut targets = Vec::new();
    if columns.is_empty() {
        targets.extend((0..table.columns.len()).filter(|&i| !table.columns[i].hidden));
    } else {
        for c in columns {
            let name = names::ident(c);
            let pos = column_position(&table, &name)?;
            if targets.contains(&pos) {
                return Err(PgError::new(
                    errors::DUPLICATE_COLUMN,
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            targets.push(pos);
        }
    }
    let write = write_parts(binder, &table, params)?;
    let types = targets.iter().map(|&p| table.columns[p].ty).collect();
    Ok(InsertPlan {
        write,
        source: Plan::Values {
            rows: Vec::new(),
            types,
        },
        targets,
        on_conflict: None,
        returning: None,
    })
}

pub fn bind_insert(
    binder: &mut Binder<'_>,
    insert: &ast::Insert,
    params: &mut Vec<Option<Type>>,
) -> PgResult<InsertPlan> {
    if insert.or.is_some()
        || insert.ignore
        || insert.overwrite
        || insert.partitioned.is_some()
        || !insert.after_columns.is_empty()
        || !insert.assignments.is_empty()
        || insert.replace_into
        || insert.priority.is_some()
        || insert.insert_alias.is_some()
    {
        return Err(PgError::unsupported(
            "this INSERT form is not PostgreSQL syntax",
        ));
    }
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(PgError::unsupported(
            "INSERT INTO a table function is not supported",
        ));
    };
    let table = dml_target(binder, name, "insert into")?;
    let alias = insert
        .table_alias
        .as_ref()
        .map_or_else(|| table.name.clone(), |a| names::ident(&a.alias));
    let targets: Vec<usize> = if insert.columns.is_empty() {
        (0..table.columns.len())
            .filter(|&i| !table.columns[i].hidden)
            .collect()
    } else {
        let mut out = Vec::with_capacity(insert.columns.len());
        for c in &insert.columns {
            let parts = names::object_parts(c)?;
            let name = parts.last().cloned().unwrap_or_default();
            let pos = column_position(&table, &name)?;
            if out.contains(&pos) {
                return Err(PgError::new(
                    errors::DUPLICATE_COLUMN,
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            out.push(pos);
        }
        out
    };
    let write = write_parts(binder, &table, params)?;
    let source = match &insert.source {
        None => Plan::Values {
            rows: vec![targets
                .iter()
                .map(|&p| default_expr(&write.defaults[p], table.columns[p].ty))
                .collect()],
            types: targets.iter().map(|&p| table.columns[p].ty).collect(),
        },
        Some(q) => insert_source(binder, q, &table, &targets, &write, params)?,
    };
    let saved = binder.set_scope(table_scope(&table, &alias));
    let result = (|| -> PgResult<(Option<OnConflict>, Option<Returning>)> {
        let on_conflict = match &insert.on {
            None => None,
            Some(ast::OnInsert::OnConflict(oc)) => {
                Some(on_conflict(binder, &table, &alias, oc, params)?)
            }
            Some(_) => return Err(PgError::unsupported("ON DUPLICATE KEY is MySQL syntax")),
        };
        let returning = insert
            .returning
            .as_ref()
            .map(|r| returning(binder, r, params))
            .transpose()?;
        Ok((on_conflict, returning))
    })();
    binder.set_scope(saved);
    let (on_conflict, returning) = result?;
    Ok(InsertPlan {
        write,
        source,
        targets,
        on_conflict,
        returning,
    })
}

/// The expression a DEFAULT item stands for (rowids and NULLs are filled by
/// the executor: `Const(Null)` here means "use the default").
fn default_expr(default: &ColumnDefault, ty: Type) -> Expr {
    match default {
        ColumnDefault::Expr(e) => e.clone(),
        ColumnDefault::Null | ColumnDefault::RowId => Expr::Const(Value::Null, ty),
    }
}

fn insert_source(
    binder: &mut Binder<'_>,
    q: &ast::Query,
    table: &TableRef,
    targets: &[usize],
    write: &TableWrite,
    params: &mut Vec<Option<Type>>,
) -> PgResult<Plan> {
    let plain_values = q.with.is_none()
        && q.order_by.is_none()
        && q.limit_clause.is_none()
        && q.fetch.is_none()
        && q.locks.is_empty();
    if let (true, ast::SetExpr::Values(values)) = (plain_values, q.body.as_ref()) {
        let mut rows = Vec::with_capacity(values.rows.len());
        for row in &values.rows {
            if row.len() > targets.len() {
                return Err(PgError::syntax(
                    "INSERT has more expressions than target columns",
                ));
            }
            if row.len() < targets.len() {
                return Err(PgError::syntax(
                    "INSERT has more target columns than expressions",
                ));
            }
            let mut bound = Vec::with_capacity(row.len());
            for (e, &pos) in row.iter().zip(targets) {
                let column = &table.columns[pos];
                if is_default_keyword(e) {
                    bound.push(default_expr(&write.defaults[pos], column.ty));
                    continue;
                }
                if column.identity == Some(Identity::Always) {
                    return Err(identity_always_error(column));
                }
                let value = binder.expr(e, params, None, Clause::Values)?;
                bound.push(assign(value, column, params)?);
            }
            rows.push(bound);
        }
        let types = targets.iter().map(|&p| table.columns[p].ty).collect();
        return Ok(Plan::Values { rows, types });
    }
    let out = binder.query(q, params)?;
    if out.columns.len() > targets.len() {
        return Err(PgError::syntax(
            "INSERT has more expressions than target columns",
        ));
    }
    if out.columns.len() < targets.len() {
        return Err(PgError::syntax(
            "INSERT has more target columns than expressions",
        ));
    }
    let mut exprs = Vec::with_capacity(targets.len());
    for (i, (&pos, c)) in targets.iter().zip(&out.columns).enumerate() {
        let column = &table.columns[pos];
        if column.identity == Some(Identity::Always) {
            return Err(identity_always_error(column));
        }
        exprs.push(assign(Expr::Column(i, c.ty), column, params)?);
    }
    let plan = crate::plan::optimize::optimize(out.plan, binder.env)?;
    Ok(Plan::Project {
        input: plan.boxed(),
        names: targets
            .iter()
            .map(|&p| table.columns[p].name.clone())
            .collect(),
        exprs,
    })
}

fn on_conflict(
    binder: &mut Binder<'_>,
    table: &TableRef,
    alias: &str,
    oc: &ast::OnConflict,
    params: &mut Vec<Option<Type>>,
) -> PgResult<OnConflict> {
    let no_match = || {
        PgError::new(
            errors::INVALID_COLUMN_REFERENCE,
            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        )
    };
    let arbiters: Vec<IndexId> = match &oc.conflict_target {
        None => Vec::new(),
        Some(ast::ConflictTarget::Columns(cols)) => {
            let mut ids = Vec::with_capacity(cols.len());
            for c in cols {
                let name = names::ident(c);
                let pos = column_position(table, &name)?;
                ids.push(table.columns[pos].id);
            }
            ids.sort_unstable();
            let index = table
                .all_indexes()
                .find(|i| {
                    let mut cols: Vec<_> = i.columns.iter().map(|c| c.column).collect();
                    cols.sort_unstable();
                    i.unique && cols == ids
                })
                .ok_or_else(no_match)?;
            vec![index.id]
        }
        Some(ast::ConflictTarget::OnConstraint(name)) => {
            let parts = names::object_parts(name)?;
            let name = parts.last().cloned().unwrap_or_default();
            let index = table
                .all_indexes()
                .find(|i| i.unique && i.name == name)
                .ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!(
                            "constraint \"{name}\" for table \"{}\" does not exist",
                            table.name
                        ),
                    )
                })?;
            vec![index.id]
        }
    };
    let action = match &oc.action {
        ast::OnConflictAction::DoNothing => ConflictAction::Nothing,
        ast::OnConflictAction::DoUpdate(update) => {
            if arbiters.is_empty() {
                return Err(PgError::syntax(
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                )
                .with_hint("For example, ON CONFLICT (column_name)."));
            }
            let scope = table_scope(table, alias).concat(&table_scope(table, "excluded"));
            let saved = binder.set_scope(scope);
            let result = (|| -> PgResult<ConflictAction> {
                let assignments = assignments(binder, table, &update.assignments, params)?;
                let filter = update
                    .selection
                    .as_ref()
                    .map(|w| binder.condition(w, params, None, Clause::Where))
                    .transpose()?;
                Ok(ConflictAction::Update {
                    assignments,
                    filter,
                })
            })();
            binder.set_scope(saved);
            result?
        }
    };
    Ok(OnConflict { arbiters, action })
}

/// `SET col = expr, ...` bound in the current scope.
fn assignments(
    binder: &mut Binder<'_>,
    table: &TableRef,
    list: &[ast::Assignment],
    params: &mut Vec<Option<Type>>,
) -> PgResult<Vec<(usize, Expr)>> {
    let mut out: Vec<(usize, Expr)> = Vec::with_capacity(list.len());
    for a in list {
        let ast::AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(PgError::unsupported(
                "assigning to a column list is not supported yet",
            ));
        };
        let parts = names::object_parts(name)?;
        let col_name = parts.last().cloned().unwrap_or_default();
        let pos = column_position(table, &col_name)?;
        if out.iter().any(|(p, _)| *p == pos) {
            return Err(PgError::syntax(format!(
                "multiple assignments to same column \"{col_name}\""
            )));
        }
        let column = &table.columns[pos];
        let value = if is_default_keyword(&a.value) {
            match bind_default(binder, column, params)? {
                ColumnDefault::Expr(e) => e,
                _ => Expr::Const(Value::Null, column.ty),
            }
        } else {
            if column.identity == Some(Identity::Always) {
                return Err(PgError::new(
                    errors::GENERATED_ALWAYS,
                    format!("column \"{col_name}\" can only be updated to DEFAULT"),
                )
                .with_detail(format!(
                    "Column \"{col_name}\" is an identity column defined as GENERATED ALWAYS."
                )));
            }
            let e = binder.expr(&a.value, params, None, Clause::Update)?;
            assign(e, column, params)?
        };
        out.push((pos, value));
    }
    Ok(out)
}

/// `RETURNING` items over the current scope.
fn returning(
    binder: &mut Binder<'_>,
    items: &[ast::SelectItem],
    params: &mut Vec<Option<Type>>,
) -> PgResult<Returning> {
    let scope = binder.scope().clone();
    let mut exprs = Vec::new();
    let mut columns = Vec::new();
    for item in items {
        match item {
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                let qualifier = match item {
                    ast::SelectItem::QualifiedWildcard(
                        ast::SelectItemQualifiedWildcardKind::ObjectName(name),
                        _,
                    ) => {
                        let parts = names::object_parts(name)?;
                        let q = parts.last().cloned().unwrap_or_default();
                        if !scope.has_qualifier(&q) {
                            return Err(super::scope::missing_from_entry(&q));
                        }
                        Some(q)
                    }
                    ast::SelectItem::QualifiedWildcard(..) => {
                        return Err(PgError::unsupported("this RETURNING item is not supported"))
                    }
                    _ => None,
                };
                for (i, c) in scope.columns.iter().enumerate() {
                    let wanted = qualifier
                        .as_deref()
                        .is_none_or(|q| c.qualifier.as_deref() == Some(q));
                    if !c.hidden && wanted {
                        exprs.push(Expr::Column(i, c.ty));
                        let mut column = Column::new(c.name.clone(), c.ty);
                        column.type_modifier = c.typmod;
                        columns.push(column);
                    }
                }
            }
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                let name = match item {
                    ast::SelectItem::ExprWithAlias { alias, .. } => names::ident(alias),
                    _ => names::column_name(e),
                };
                let bound = binder.expr(e, params, None, Clause::Returning)?;
                let ty = match bound.ty(params) {
                    Type::Unknown => Type::Text,
                    t => t,
                };
                let bound = if bound.ty(params) == Type::Unknown {
                    let mut cx = BindContext::new(params);
                    expr::ops::cast_to(bound, Type::Text, &mut cx)?
                } else {
                    bound
                };
                exprs.push(bound);
                columns.push(Column::new(name, ty));
            }
            other => {
                return Err(PgError::unsupported(format!(
                    "RETURNING item {other} is not supported"
                )))
            }
        }
    }
    Ok(Returning { exprs, columns })
}

fn single_table(twj: &ast::TableWithJoins) -> PgResult<(&ast::ObjectName, Option<String>)> {
    if !twj.joins.is_empty() {
        return Err(PgError::unsupported(
            "joins in the target of UPDATE/DELETE are not supported",
        ));
    }
    match &twj.relation {
        ast::TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => Ok((name, alias.as_ref().map(|a| names::ident(&a.name)))),
        _ => Err(PgError::syntax(
            "the target of UPDATE/DELETE must be a table",
        )),
    }
}

/// The lock an UPDATE or DELETE takes on its target rows, at every
/// isolation level. Tables joined in by `FROM`/`USING` are not locked, as in
/// PostgreSQL.
///
/// At READ COMMITTED the statement must compute its new row from the newest
/// committed version (PostgreSQL re-reads a row whose writer it waited for):
/// the locking read waits for a concurrent writer and then reads what it
/// committed. At REPEATABLE READ and SERIALIZABLE the lock turns contention
/// into a queue: without it, concurrent updates of one row all read it, all
/// but one then failed their write as too old, refreshed, failed and retried
/// (16 clients on one row: 13 commits/s; with the lock, a few hundred). The
/// cost is one more replicated write (the lock) per statement.
const TARGET_LOCK: LockSpec = LockSpec {
    strength: LockStrength::Exclusive,
    wait: LockWait::Block,
};

/// The rows UPDATE or DELETE visit: the target table (locked with
/// [`TARGET_LOCK`]), cross-joined with the `FROM` / `USING` items (WHERE then turns the cross join into a join). The
/// binder's scope becomes the joined row's; returns the plan and the number
/// of joined columns.
fn joined_source(
    binder: &mut Binder<'_>,
    table: &TableRef,
    alias: &str,
    from: Option<&Vec<ast::TableWithJoins>>,
    params: &mut Vec<Option<Type>>,
) -> PgResult<(Plan, usize)> {
    let mut scan = full_scan(binder, table, alias);
    if let Plan::Scan(s) = &mut scan {
        s.lock = Some(TARGET_LOCK);
    }
    let Some(from) = from.filter(|f| !f.is_empty()) else {
        return Ok((scan, 0));
    };
    // FROM items cannot see the target row (no LATERAL).
    let target = binder.set_scope(Scope::default());
    let (plan, scope) = binder.from(from, params)?;
    let joined = scope.len();
    let (plan, scope) = super::query::cross((scan, target), (plan, scope))?;
    binder.set_scope(scope);
    Ok((plan, joined))
}

pub fn bind_update(
    binder: &mut Binder<'_>,
    update: &ast::Update,
    params: &mut Vec<Option<Type>>,
) -> PgResult<UpdatePlan> {
    if !update.order_by.is_empty() || update.limit.is_some() || update.or.is_some() {
        return Err(PgError::syntax(
            "UPDATE ... ORDER BY/LIMIT is not PostgreSQL syntax",
        ));
    }
    let (name, alias) = single_table(&update.table)?;
    let table = dml_target(binder, name, "update")?;
    let alias = alias.unwrap_or_else(|| table.name.clone());
    let write = write_parts(binder, &table, params)?;
    let from = match &update.from {
        None => None,
        Some(ast::UpdateTableFromKind::AfterSet(from)) => Some(from),
        Some(ast::UpdateTableFromKind::BeforeSet(_)) => {
            return Err(PgError::syntax("syntax error at or near \"FROM\""))
        }
    };
    let saved = binder.set_scope(table_scope(&table, &alias));
    let result = (|| -> PgResult<UpdatePlan> {
        let (mut source, joined) = joined_source(binder, &table, &alias, from, params)?;
        if let Some(w) = &update.selection {
            let predicate = binder.condition(w, params, None, Clause::Where)?;
            source = Plan::Filter {
                input: source.boxed(),
                predicate,
            };
        }
        let assignments = assignments(binder, &table, &update.assignments, params)?;
        let returning = update
            .returning
            .as_ref()
            .map(|r| returning(binder, r, params))
            .transpose()?;
        Ok(UpdatePlan {
            write,
            source: crate::plan::optimize::optimize(source, binder.env)?,
            assignments,
            returning,
            joined,
        })
    })();
    binder.set_scope(saved);
    result
}

pub fn bind_delete(
    binder: &mut Binder<'_>,
    delete: &ast::Delete,
    params: &mut Vec<Option<Type>>,
) -> PgResult<DeletePlan> {
    if !delete.order_by.is_empty() || delete.limit.is_some() || !delete.tables.is_empty() {
        return Err(PgError::syntax("this DELETE form is not PostgreSQL syntax"));
    }
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
    };
    let [twj] = &from[..] else {
        return Err(PgError::syntax("DELETE needs exactly one table"));
    };
    let (name, alias) = single_table(twj)?;
    let table = dml_target(binder, name, "delete from")?;
    let alias = alias.unwrap_or_else(|| table.name.clone());
    let saved = binder.set_scope(table_scope(&table, &alias));
    let result = (|| -> PgResult<DeletePlan> {
        let (mut source, joined) =
            joined_source(binder, &table, &alias, delete.using.as_ref(), params)?;
        if let Some(w) = &delete.selection {
            let predicate = binder.condition(w, params, None, Clause::Where)?;
            source = Plan::Filter {
                input: source.boxed(),
                predicate,
            };
        }
        let returning = delete
            .returning
            .as_ref()
            .map(|r| returning(binder, r, params))
            .transpose()?;
        Ok(DeletePlan {
            table: table.clone(),
            source: crate::plan::optimize::optimize(source, binder.env)?,
            returning,
            joined,
        })
    })();
    binder.set_scope(saved);
    result
}

/// `nextval('seq')`: resolved to the sequence at bind time.
pub fn sequence_function(binder: &Binder<'_>, f: &ast::Function) -> PgResult<Option<Expr>> {
    let name = match f.name.0.last().and_then(|p| p.as_ident()) {
        Some(i) => names::ident(i),
        None => return Ok(None),
    };
    if name != "nextval" {
        return Ok(None);
    }
    let ast::FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))] = &list.args[..] else {
        return Ok(None);
    };
    let literal = match arg {
        ast::Expr::Value(v) => &v.value,
        ast::Expr::Cast { expr, .. } => match expr.as_ref() {
            ast::Expr::Value(v) => &v.value,
            _ => return Ok(None),
        },
        _ => {
            return Err(PgError::unsupported(
                "nextval() needs the sequence name as a literal",
            ))
        }
    };
    let ast::Value::SingleQuotedString(text) = literal else {
        return Ok(None);
    };
    let parts: Vec<String> = text
        .split('.')
        .map(|p| {
            if p.starts_with('"') && p.ends_with('"') && p.len() >= 2 {
                p[1..p.len() - 1].to_string()
            } else {
                p.to_lowercase()
            }
        })
        .collect();
    let (schema, seq) = binder.resolve_schema(&parts)?;
    match binder.catalog().relation(schema, seq) {
        Some(Relation::Sequence(id)) => Ok(Some(Expr::NextVal(id))),
        Some(_) => Err(PgError::new(
            errors::WRONG_OBJECT_TYPE,
            format!("\"{seq}\" is not a sequence"),
        )),
        None => Err(errors::undefined_table(seq)),
    }
}

/// Marks the scans of a query with `FOR UPDATE/SHARE` row locks.
pub fn apply_locks(mut plan: Plan, locks: &[ast::LockClause]) -> PgResult<Plan> {
    for lock in locks {
        let strength = match lock.lock_type {
            ast::LockType::Share => LockStrength::Share,
            ast::LockType::Update => LockStrength::Exclusive,
        };
        let wait = match lock.nonblock {
            None => LockWait::Block,
            Some(ast::NonBlock::Nowait) => LockWait::NoWait,
            Some(ast::NonBlock::SkipLocked) => LockWait::SkipLocked,
        };
        let of = lock
            .of
            .as_ref()
            .map(names::object_parts)
            .transpose()?
            .and_then(|p| p.last().cloned());
        let spec = LockSpec { strength, wait };
        let mut found = false;
        mark_locks(&mut plan, spec, of.as_deref(), &mut found)?;
        if let (Some(name), false) = (&of, found) {
            return Err(PgError::new(
                SqlState::UNDEFINED_TABLE,
                format!("relation \"{name}\" in FOR UPDATE clause not found in FROM clause"),
            ));
        }
    }
    Ok(plan)
}

fn mark_locks(plan: &mut Plan, spec: LockSpec, of: Option<&str>, found: &mut bool) -> PgResult<()> {
    match plan {
        Plan::Scan(scan) => {
            if of.is_none_or(|n| n == scan.alias) {
                *found = true;
                scan.lock = Some(match scan.lock {
                    Some(old) if old.strength == LockStrength::Exclusive => LockSpec {
                        strength: LockStrength::Exclusive,
                        ..spec
                    },
                    _ => spec,
                });
            }
            Ok(())
        }
        Plan::Aggregate(_) => Err(PgError::unsupported(
            "FOR UPDATE is not allowed with aggregate functions",
        )),
        Plan::Distinct { .. } => Err(PgError::unsupported(
            "FOR UPDATE is not allowed with DISTINCT clause",
        )),
        Plan::SetOp(_) => Err(PgError::unsupported(
            "FOR UPDATE is not allowed with UNION/INTERSECT/EXCEPT",
        )),
        Plan::Values { .. } | Plan::Series { .. } | Plan::TableFn { .. } => Ok(()),
        Plan::Virtual(_) => Err(PgError::unsupported(
            "FOR UPDATE is not allowed on catalog tables",
        )),
        Plan::Join(j) => {
            mark_locks(&mut j.left, spec, of, found)?;
            mark_locks(&mut j.right, spec, of, found)
        }
        Plan::Filter { input, .. }
        | Plan::Project { input, .. }
        | Plan::Sort { input, .. }
        | Plan::Limit { input, .. } => mark_locks(input, spec, of, found),
    }
}
