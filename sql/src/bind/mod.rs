//! Binding: sqlparser's AST → typed plans against one catalog snapshot.
//!
//! The binder resolves names level by level: each query (and each subquery
//! inside it) is a [`Level`] with the [`Scope`] of its FROM clause. A column
//! that only an enclosing level knows becomes a *correlation*: the subquery
//! reads it as [`Expr::Outer`], and the enclosing level evaluates it for each
//! of its rows and hands the values down (see [`crate::expr::SubLink`]).
//! Errors follow PostgreSQL's wording and SQLSTATEs.

pub mod agg;
pub mod alter;
pub mod copy;
pub mod ddl;
pub mod dml;
pub mod names;
pub mod pgfuncs;
pub mod query;
pub mod scope;
pub mod view;

use std::rc::Rc;

use sqlparser::ast;
use teller_net::session::Column;
use teller_net::types::Type;
use teller_net::{PgError, PgResult, SqlState};

use crate::catalog::{Catalog, DescId};
use crate::errors;
use crate::expr::{self, BindContext, Expr, Resolver, SubLink, SubLinkKind};
use crate::plan::Plan;
use crate::shard::SqlShard;
pub use agg::Aggs;
pub use scope::{Scope, ScopeColumn};

/// What binding needs from the session.
pub struct BindEnv<'a> {
    pub catalog: &'a Rc<Catalog>,
    /// The session's database (0: it does not exist, so only statements
    /// that name no table can run).
    pub database: DescId,
    pub database_name: &'a str,
    /// The schema unqualified names resolve in (`public`).
    pub schema: DescId,
    /// Statistics for estimates.
    pub shard: &'a SqlShard,
}

/// A bound data statement.
#[derive(Clone, Debug)]
pub struct Bound {
    pub command: Command,
    /// Subquery plans, indexed by [`SubLink::id`].
    pub subplans: Vec<Plan>,
}

#[derive(Clone, Debug)]
pub enum Command {
    /// Rows to return.
    Query {
        plan: Plan,
        columns: Vec<Column>,
    },
    Insert(Box<dml::InsertPlan>),
    Update(Box<dml::UpdatePlan>),
    Delete(Box<dml::DeletePlan>),
    Ddl(Box<ddl::Ddl>),
    /// `EXPLAIN`: the plan as text rows.
    Explain(Vec<String>),
    /// `ANALYZE [table]`: refresh row count statistics.
    Analyze(Vec<crate::catalog::TableRef>),
    /// `COPY ... FROM STDIN`: the client's rows are inserted.
    CopyIn {
        insert: Box<dml::InsertPlan>,
        spec: teller_net::copy::CopySpec,
    },
    /// `COPY ... TO STDOUT`: the query's rows go to the client as COPY data.
    CopyOut {
        plan: Plan,
        spec: teller_net::copy::CopySpec,
    },
}

impl Command {
    /// How the wire driver runs it, if it is a COPY.
    pub fn copy_spec(&self) -> Option<&teller_net::copy::CopySpec> {
        match self {
            Command::CopyIn { spec, .. } | Command::CopyOut { spec, .. } => Some(spec),
            _ => None,
        }
    }

    /// The result columns (for Describe), `None` when no rows come back.
    pub fn columns(&self) -> Option<Vec<Column>> {
        match self {
            Command::Query { columns, .. } => Some(columns.clone()),
            Command::Insert(p) => p.returning.as_ref().map(|r| r.columns.clone()),
            Command::Update(p) => p.returning.as_ref().map(|r| r.columns.clone()),
            Command::Delete(p) => p.returning.as_ref().map(|r| r.columns.clone()),
            // COPY sends no RowDescription.
            Command::Ddl(_)
            | Command::Analyze(_)
            | Command::CopyIn { .. }
            | Command::CopyOut { .. } => None,
            Command::Explain(_) => Some(vec![Column::new("QUERY PLAN", Type::Text)]),
        }
    }
}

/// One query level being bound.
#[derive(Debug, Default)]
struct Level {
    scope: Scope,
    /// Enclosing-row expressions this level reads, as `Expr::Outer(i)`.
    correlation: Vec<Expr>,
}

/// A `WITH` query visible by name.
#[derive(Clone, Debug)]
struct CteDef {
    name: String,
    query: Rc<ast::Query>,
    columns: Vec<String>,
    /// How many CTEs were visible where this one was defined.
    visible: usize,
}

/// Binds the statements of one query level and its subqueries.
pub struct Binder<'a> {
    pub env: &'a BindEnv<'a>,
    levels: Vec<Level>,
    pub subplans: Vec<Plan>,
    ctes: Vec<CteDef>,
    /// Tables and views the statement reads (what a view depends on).
    pub depends: Vec<DescId>,
    /// Views being expanded, innermost last (recursion guard).
    expanding: Vec<DescId>,
}

/// Most views expanded inside one another.
pub const VIEW_NESTING_MAX: usize = 32;

/// Where an expression is bound, for "not allowed in" errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clause {
    Select,
    Where,
    Having,
    GroupBy,
    OrderBy,
    JoinOn,
    Values,
    Limit,
    Returning,
    Default,
    Check,
    Update,
    /// Arguments of an aggregate call.
    Aggregate,
}

impl Clause {
    fn aggregate_error(self) -> PgError {
        let message = match self {
            Clause::Aggregate => "aggregate function calls cannot be nested".to_string(),
            Clause::Where => "aggregate functions are not allowed in WHERE".into(),
            Clause::GroupBy => "aggregate functions are not allowed in GROUP BY".into(),
            Clause::JoinOn => "aggregate functions are not allowed in JOIN conditions".into(),
            Clause::Values => "aggregate functions are not allowed in VALUES".into(),
            Clause::Limit => "aggregate functions are not allowed in LIMIT".into(),
            Clause::Returning => "aggregate functions are not allowed in RETURNING".into(),
            Clause::Default => "aggregate functions are not allowed in DEFAULT expressions".into(),
            Clause::Check => "aggregate functions are not allowed in check constraints".into(),
            Clause::Update => "aggregate functions are not allowed in UPDATE".into(),
            other => format!("aggregate functions are not allowed in {other:?}"),
        };
        PgError::new(errors::GROUPING_ERROR, message)
    }
}

impl<'a> Binder<'a> {
    pub fn new(env: &'a BindEnv<'a>) -> Binder<'a> {
        Binder {
            env,
            levels: vec![Level::default()],
            subplans: Vec::new(),
            ctes: Vec::new(),
            depends: Vec::new(),
            expanding: Vec::new(),
        }
    }

    pub fn catalog(&self) -> &'a Catalog {
        self.env.catalog
    }

    /// The scopes of the levels, innermost first (for name lookups).
    pub fn levels_innermost_first(&self) -> impl Iterator<Item = &Scope> {
        self.levels.iter().rev().map(|l| &l.scope)
    }

    fn level(&mut self) -> &mut Level {
        self.levels
            .last_mut()
            .expect("the binder always has a level")
    }

    /// The current level's scope.
    pub fn scope(&self) -> &Scope {
        &self
            .levels
            .last()
            .expect("the binder always has a level")
            .scope
    }

    /// Replaces the current level's scope, returning the old one.
    pub fn set_scope(&mut self, scope: Scope) -> Scope {
        std::mem::replace(&mut self.level().scope, scope)
    }

    /// Binds an expression in the current scope.
    pub fn expr(
        &mut self,
        e: &ast::Expr,
        params: &mut Vec<Option<Type>>,
        aggs: Option<&mut Aggs>,
        clause: Clause,
    ) -> PgResult<Expr> {
        let mut resolver = LevelResolver {
            binder: self,
            aggs,
            clause,
        };
        let mut cx = BindContext {
            params,
            resolver: Some(&mut resolver),
        };
        expr::bind(e, &mut cx)
    }

    /// Binds a boolean condition (WHERE, HAVING, ON, CHECK).
    pub fn condition(
        &mut self,
        e: &ast::Expr,
        params: &mut Vec<Option<Type>>,
        aggs: Option<&mut Aggs>,
        clause: Clause,
    ) -> PgResult<Expr> {
        let bound = self.expr(e, params, aggs, clause)?;
        let what = match clause {
            Clause::Where => "WHERE",
            Clause::Having => "HAVING",
            Clause::JoinOn => "JOIN/ON",
            Clause::Check => "CHECK",
            _ => "a condition",
        };
        match bound.ty(params) {
            Type::Bool => Ok(bound),
            Type::Unknown => {
                let mut cx = BindContext::new(params);
                expr::ops::cast_to(bound, Type::Bool, &mut cx)
            }
            other => Err(PgError::new(
                SqlState::DATATYPE_MISMATCH,
                format!(
                    "argument of {what} must be type boolean, not type {}",
                    other.name()
                ),
            )),
        }
    }

    /// Resolves a column name through the levels, innermost first.
    fn resolve_column(&mut self, parts: &[ast::Ident]) -> PgResult<Option<Expr>> {
        let name = names::ident(parts.last().expect("a name has parts"));
        let qualifier = (parts.len() >= 2).then(|| names::ident(&parts[parts.len() - 2]));
        let current = self.levels.len() - 1;
        for depth in (0..=current).rev() {
            let scope = &self.levels[depth].scope;
            let Some(index) = scope.find(qualifier.as_deref(), &name)? else {
                if let Some(q) = &qualifier {
                    if scope.has_qualifier(q) {
                        return Err(errors::undefined_column(&format!("{q}.{name}")));
                    }
                }
                continue;
            };
            let ty = scope.columns[index].ty;
            let mut e = Expr::Column(index, ty);
            for level in &mut self.levels[depth + 1..=current] {
                let k = match level.correlation.iter().position(|c| *c == e) {
                    Some(k) => k,
                    None => {
                        level.correlation.push(e);
                        level.correlation.len() - 1
                    }
                };
                e = Expr::Outer(k, ty);
            }
            return Ok(Some(e));
        }
        match qualifier {
            Some(q) => Err(scope::missing_from_entry(&q)),
            None => Ok(None),
        }
    }

    /// Binds a subquery expression at a new level.
    fn sublink(
        &mut self,
        query: &ast::Query,
        kind: SubLinkKind,
        lhs: Option<Expr>,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Expr> {
        self.levels.push(Level::default());
        let bound = self.query(query, params);
        let level = self.levels.pop().expect("pushed above");
        let mut out = bound?;
        let width = out.columns.len();
        if kind != SubLinkKind::Exists && width != 1 {
            return Err(PgError::syntax(if width == 0 {
                "subquery must return a column"
            } else {
                "subquery must return only one column"
            }));
        }
        let (lhs, ty) = match kind {
            SubLinkKind::Exists => (None, Type::Bool),
            SubLinkKind::Array => (None, Type::Text),
            SubLinkKind::Scalar => (None, out.columns[0].ty),
            SubLinkKind::Any(_) | SubLinkKind::All(_) => {
                let lhs = lhs.ok_or_else(|| PgError::internal("ANY without left operand"))?;
                let (lt, rt) = (lhs.ty(params), out.columns[0].ty);
                let common = expr::ops::unify(lt, rt).ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_FUNCTION,
                        format!("operator does not exist: {} = {}", lt.name(), rt.name()),
                    )
                    .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
                })?;
                let common = if common == Type::Unknown {
                    Type::Text
                } else {
                    common
                };
                let mut cx = BindContext::new(params);
                let lhs = expr::ops::coerce_to(lhs, common, &mut cx)?;
                if rt != common {
                    out.plan = query::cast_columns(out.plan, &[rt], &[common], params)?;
                }
                (Some(lhs), Type::Bool)
            }
        };
        let id = self.subplans.len();
        self.subplans.push(out.plan);
        Ok(Expr::SubLink(Box::new(SubLink {
            id,
            kind,
            lhs,
            correlation: level.correlation,
            ty,
        })))
    }
}

/// The [`Resolver`] of one level: columns, aggregates, subqueries.
struct LevelResolver<'b, 'a> {
    binder: &'b mut Binder<'a>,
    aggs: Option<&'b mut Aggs>,
    clause: Clause,
}

impl Resolver for LevelResolver<'_, '_> {
    fn column(&mut self, parts: &[ast::Ident]) -> PgResult<Option<Expr>> {
        self.binder.resolve_column(parts)
    }

    fn function(
        &mut self,
        f: &ast::Function,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Option<Expr>> {
        if let Some(seq) = dml::sequence_function(self.binder, f)? {
            return Ok(Some(seq));
        }
        if let Some(e) = pgfuncs::bind_function(self.binder, f, params)? {
            return Ok(Some(e));
        }
        let Some(func) = agg::aggregate_name(f) else {
            return Ok(None);
        };
        if f.over.is_some() {
            return Err(PgError::unsupported(
                "window functions are not supported yet",
            ));
        }
        let Some(aggs) = self.aggs.as_deref_mut() else {
            return Err(self.clause.aggregate_error());
        };
        let call = agg::bind_call(self.binder, func, f, params)?;
        Ok(Some(aggs.add(call)))
    }

    fn subquery(
        &mut self,
        query: &ast::Query,
        kind: SubLinkKind,
        lhs: Option<Expr>,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Expr> {
        let refused = match self.clause {
            Clause::Default => Some("cannot use subquery in DEFAULT expression"),
            Clause::Check => Some("cannot use subquery in check constraint"),
            Clause::Aggregate => Some("subqueries in aggregate arguments are not supported yet"),
            Clause::GroupBy => Some("subqueries in GROUP BY are not supported yet"),
            Clause::Returning => Some("subqueries in RETURNING are not supported yet"),
            _ => None,
        };
        if let Some(message) = refused {
            return Err(PgError::unsupported(message));
        }
        self.binder.sublink(query, kind, lhs, params)
    }

    fn cast(
        &mut self,
        expr: &ast::Expr,
        data_type: &ast::DataType,
        params: &mut Vec<Option<Type>>,
    ) -> PgResult<Option<Expr>> {
        pgfuncs::bind_cast(self.binder, expr, data_type, params)
    }

    fn array_element(&mut self, expr: &ast::Expr) -> Option<Type> {
        pgfuncs::array_element(self.binder, expr)
    }
}

/// Binds a data statement (query, DML, DDL, EXPLAIN); `Ok(None)` when the
/// statement is none of those (the session handles it).
pub fn bind_statement(
    statement: &ast::Statement,
    params: &mut Vec<Option<Type>>,
    env: &BindEnv<'_>,
) -> PgResult<Option<Bound>> {
    let mut binder = Binder::new(env);
    let command = match statement {
        ast::Statement::Query(q) => {
            let out = binder.query(q, params)?;
            let plan = crate::plan::optimize::optimize(out.plan, env)?;
            Command::Query {
                plan,
                columns: out.columns,
            }
        }
        ast::Statement::Insert(insert) => {
            Command::Insert(Box::new(dml::bind_insert(&mut binder, insert, params)?))
        }
        ast::Statement::Update(update) => {
            Command::Update(Box::new(dml::bind_update(&mut binder, update, params)?))
        }
        ast::Statement::Delete(delete) => {
            Command::Delete(Box::new(dml::bind_delete(&mut binder, delete, params)?))
        }
        ast::Statement::Explain {
            statement, analyze, ..
        } => {
            if *analyze {
                return Err(PgError::unsupported("EXPLAIN ANALYZE is not supported yet"));
            }
            if matches!(**statement, ast::Statement::Copy { .. }) {
                return Err(PgError::syntax("syntax error at or near \"COPY\""));
            }
            let Some(inner) = bind_statement(statement, params, env)? else {
                return Err(PgError::unsupported(
                    "EXPLAIN of this statement is not supported",
                ));
            };
            let lines = crate::plan::explain::explain(&inner);
            Command::Explain(lines)
        }
        ast::Statement::Vacuum(_) => Command::Analyze(Vec::new()),
        ast::Statement::Copy { .. } => copy::bind_copy(&mut binder, statement, params)?,
        ast::Statement::Analyze(a) => {
            let tables = match &a.table_name {
                Some(name) => {
                    let parts = names::object_parts(name)?;
                    let (schema, table) = binder.resolve_schema(&parts)?;
                    match env.catalog.relation(schema, table) {
                        Some(crate::catalog::Relation::Table(id)) => {
                            vec![env.catalog.table(id).cloned().expect("named relation")]
                        }
                        _ => return Err(errors::undefined_table(table)),
                    }
                }
                None => env
                    .catalog
                    .tables
                    .values()
                    .filter(|t| t.schema_id == env.schema)
                    .cloned()
                    .collect(),
            };
            Command::Analyze(tables)
        }
        other => match ddl::bind_ddl(&mut binder, other, params)? {
            Some(ddl) => Command::Ddl(Box::new(ddl)),
            None => return Ok(None),
        },
    };
    let subplans = binder
        .subplans
        .into_iter()
        .map(|p| crate::plan::optimize::optimize(p, env))
        .collect::<PgResult<Vec<_>>>()?;
    Ok(Some(Bound { command, subplans }))
}
