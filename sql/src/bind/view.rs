//! Views: `CREATE [OR REPLACE] VIEW`, `DROP VIEW`, and the dependency rules
//! that keep stored view queries bindable.
//!
//! A view is its query as SQL text plus the names and types of its columns
//! ([`ViewDesc`]). Reading it binds the text again as a derived table
//! (`Binder::view` in `query.rs`), so it always sees the current tables.
//! `depends` holds every table and view the query reads, through nested
//! views too; it decides what `DROP ... [CASCADE]` must refuse or take
//! along, and which views an `ALTER TABLE` must still be able to bind
//! (a change that breaks one, or changes its column types, is refused: a
//! view's text does not follow renames the way PostgreSQL's stored parse
//! trees do).
//!
//! Views are read-only: INSERT, UPDATE, DELETE and COPY FROM refuse them
//! (PostgreSQL updates simple views through their table).

use sqlparser::ast;
use teller_net::types::Type;
use teller_net::{PgError, PgResult, SqlState};

use super::ddl::{Ddl, DdlOp};
use super::{names, BindEnv, Binder};
use crate::catalog::{Catalog, DescId, Relation, TableDesc, ViewColumn, ViewDesc};
use crate::errors;

/// SQLSTATE 42P16 `invalid_table_definition`.
const INVALID_TABLE_DEFINITION: SqlState = SqlState("42P16");
/// SQLSTATE 42P17 `invalid_object_definition`.
const INVALID_OBJECT_DEFINITION: SqlState = SqlState("42P17");

/// `CREATE [OR REPLACE] VIEW name [(columns)] AS query`.
pub fn create_view(binder: &mut Binder<'_>, cv: &ast::CreateView) -> PgResult<Ddl> {
    if cv.materialized {
        return Err(PgError::unsupported("materialized views are not supported"));
    }
    if cv.temporary {
        return Err(PgError::unsupported("temporary views are not supported"));
    }
    if cv.or_alter
        || cv.secure
        || cv.to.is_some()
        || cv.params.is_some()
        || !cv.cluster_by.is_empty()
        || cv.comment.is_some()
        || cv.if_not_exists
        || cv.copy_grants
    {
        return Err(PgError::syntax(
            "this CREATE VIEW form is not PostgreSQL syntax",
        ));
    }
    if !matches!(cv.options, ast::CreateTableOptions::None) {
        return Err(PgError::unsupported(
            "CREATE VIEW ... WITH (options) is not supported",
        ));
    }
    let parts = names::object_parts(&cv.name)?;
    let (schema, name) = binder.resolve_schema(&parts)?;
    let name = name.to_string();
    let replacing = match binder.catalog().relation(schema, &name) {
        None => None,
        Some(Relation::View(id)) if cv.or_replace => binder.catalog().view(id).cloned(),
        Some(Relation::View(_)) | Some(Relation::Table(_)) | Some(Relation::Sequence(_))
            if !cv.or_replace =>
        {
            return Err(PgError::new(
                errors::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ))
        }
        Some(_) => {
            return Err(PgError::new(
                errors::WRONG_OBJECT_TYPE,
                format!("\"{name}\" is not a view"),
            ))
        }
    };
    let mut params = Vec::new();
    binder.depends.clear();
    let out = binder.query(&cv.query, &mut params)?;
    if !params.is_empty() {
        return Err(PgError::new(SqlState("42P02"), "there is no parameter $1"));
    }
    if cv.columns.len() > out.columns.len() {
        return Err(PgError::syntax(
            "CREATE VIEW specifies more column names than columns",
        ));
    }
    let mut columns: Vec<ViewColumn> = Vec::with_capacity(out.columns.len());
    for (i, c) in out.columns.iter().enumerate() {
        let name = match cv.columns.get(i) {
            Some(def) => {
                if def.data_type.is_some() || def.options.is_some() {
                    return Err(PgError::syntax("a view column list takes names only"));
                }
                names::ident(&def.name)
            }
            None => c.name.clone(),
        };
        if columns.iter().any(|o| o.name == name) {
            return Err(PgError::new(
                errors::DUPLICATE_COLUMN,
                format!("column \"{name}\" specified more than once"),
            ));
        }
        // Unknown-typed outputs (`SELECT 'a'`) become text, as in
        // PostgreSQL 10 and later.
        let ty = if c.ty == Type::Unknown {
            Type::Text
        } else {
            c.ty
        };
        columns.push(ViewColumn {
            name,
            ty,
            typmod: c.type_modifier,
        });
    }
    let depends = std::mem::take(&mut binder.depends);
    let id = match &replacing {
        Some(old) => {
            if depends.contains(&old.id) {
                return Err(PgError::new(
                    INVALID_OBJECT_DEFINITION,
                    format!("infinite recursion detected in rules for relation \"{name}\""),
                ));
            }
            if columns.len() < old.columns.len() {
                return Err(PgError::new(
                    INVALID_TABLE_DEFINITION,
                    "cannot drop columns from view",
                ));
            }
            for (new, was) in columns.iter().zip(&old.columns) {
                if new.name != was.name {
                    return Err(PgError::new(
                        INVALID_TABLE_DEFINITION,
                        format!(
                            "cannot change name of view column \"{}\" to \"{}\"",
                            was.name, new.name
                        ),
                    )
                    .with_hint(
                        "Use ALTER VIEW ... RENAME COLUMN ... to change name of view column instead.",
                    ));
                }
                if new.ty != was.ty {
                    return Err(PgError::new(
                        INVALID_TABLE_DEFINITION,
                        format!(
                            "cannot change data type of view column \"{}\" from {} to {}",
                            was.name,
                            crate::catalog::pg::format_type(was.ty, was.typmod),
                            crate::catalog::pg::format_type(new.ty, new.typmod)
                        ),
                    ));
                }
            }
            old.id
        }
        None => 0,
    };
    let view = ViewDesc {
        id,
        schema_id: schema,
        name,
        query: cv.query.to_string(),
        columns,
        depends,
    };
    Ok(Ddl {
        op: DdlOp::CreateView(Box::new(view)),
        tag: "CREATE VIEW",
        notices: Vec::new(),
    })
}

/// `DROP VIEW [IF EXISTS] names [CASCADE]`.
pub fn drop_views(
    binder: &Binder<'_>,
    names_list: &[ast::ObjectName],
    if_exists: bool,
    cascade: bool,
) -> PgResult<Ddl> {
    let catalog = binder.catalog();
    let mut ids = Vec::new();
    let mut notices = Vec::new();
    for n in names_list {
        let parts = names::object_parts(n)?;
        let (schema, name) = binder.resolve_schema(&parts)?;
        match catalog.relation(schema, name) {
            Some(Relation::View(id)) => ids.push(id),
            Some(_) => {
                return Err(PgError::new(
                    errors::WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is not a view"),
                )
                .with_hint(format!(
                    "Use DROP {} to remove it.",
                    kind_word(catalog, schema, name)
                )))
            }
            None if if_exists => notices.push(format!("view \"{name}\" does not exist, skipping")),
            None => {
                return Err(PgError::new(
                    SqlState::UNDEFINED_TABLE,
                    format!("view \"{name}\" does not exist"),
                ))
            }
        }
    }
    let mut views = Vec::new();
    for &id in &ids {
        let name = catalog
            .view(id)
            .map_or_else(String::new, |v| v.name.clone());
        views.extend(dependents(
            catalog,
            id,
            "view",
            &name,
            &ids,
            cascade,
            &mut notices,
        )?);
    }
    for id in ids {
        if !views.contains(&id) {
            views.push(id);
        }
    }
    Ok(Ddl {
        op: DdlOp::DropViews(views),
        tag: "DROP VIEW",
        notices,
    })
}

fn kind_word(catalog: &Catalog, schema: DescId, name: &str) -> &'static str {
    match catalog.relation(schema, name) {
        Some(Relation::Sequence(_)) => "SEQUENCE",
        Some(Relation::Index(..)) => "INDEX",
        _ => "TABLE",
    }
}

/// The views that must go with relation `id` (a `kind` named `name`) when
/// it is dropped: an error without CASCADE, else their ids (notices added).
/// Views in `dropping` are being dropped anyway.
pub fn dependents(
    catalog: &Catalog,
    id: DescId,
    kind: &str,
    name: &str,
    dropping: &[DescId],
    cascade: bool,
    notices: &mut Vec<String>,
) -> PgResult<Vec<DescId>> {
    let views: Vec<_> = catalog
        .views_on_transitively(id)
        .into_iter()
        .filter(|v| !dropping.contains(&v.id))
        .collect();
    if views.is_empty() {
        return Ok(Vec::new());
    }
    if !cascade {
        return Err(PgError::new(
            errors::DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot drop {kind} {name} because other objects depend on it"),
        )
        .with_detail(
            views
                .iter()
                .map(|v| format!("view {} depends on {kind} {name}", v.name))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
    }
    for v in &views {
        notices.push(format!("drop cascades to view {}", v.name));
    }
    Ok(views.iter().map(|v| v.id).collect())
}

/// Refuses a change to `table` (its new descriptor) that a view reading it
/// could no longer bind, or would read with other column types.
pub fn check_views_after_alter(binder: &Binder<'_>, table: &TableDesc) -> PgResult<()> {
    let catalog = binder.catalog();
    let views = catalog.views_on_transitively(table.id);
    if views.is_empty() {
        return Ok(());
    }
    let next = std::rc::Rc::new(catalog.with_table(table.clone()));
    let env = BindEnv {
        catalog: &next,
        database: binder.env.database,
        database_name: binder.env.database_name,
        schema: binder.env.schema,
        shard: binder.env.shard,
    };
    let old_name = catalog
        .table(table.id)
        .map_or(table.name.as_str(), |t| t.name.as_str());
    for view in views {
        let mut check = Binder::new(&env);
        if check.view_rows(&view).is_err() {
            return Err(PgError::new(
                errors::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot alter table {old_name} because other objects depend on it"),
            )
            .with_detail(format!("view {} depends on table {old_name}", view.name))
            .with_hint("Drop the view, alter the table, then create the view again."));
        }
    }
    Ok(())
}
