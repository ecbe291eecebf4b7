//! Scopes: the columns a query level can name, and name resolution with
//! PostgreSQL's errors (ambiguity, unknown tables and columns).

use teller_net::types::Type;
use teller_net::{PgError, PgResult, SqlState};

use crate::catalog::DescId;
use crate::encoding::row::ColumnId;
use crate::errors;

/// A nameable column of a scope, at its position in the scope's row.
#[derive(Clone, Debug)]
pub struct ScopeColumn {
    /// The table alias (or table name) that qualifies it.
    pub qualifier: Option<String>,
    pub name: String,
    pub ty: Type,
    /// Left out of `*` (a hidden rowid) but nameable.
    pub hidden: bool,
    /// The right-hand column of a `USING`/`NATURAL` pair: reachable only
    /// qualified, and left out of `*`.
    pub merged: bool,
    /// The base table column it reads, if any (for RowDescription).
    pub source: Option<(DescId, ColumnId)>,
    pub typmod: i32,
    /// For an array held as text (catalog columns): the element type.
    pub element: Option<Type>,
}

impl ScopeColumn {
    pub fn new(name: impl Into<String>, ty: Type) -> ScopeColumn {
        ScopeColumn {
            qualifier: None,
            name: name.into(),
            ty,
            hidden: false,
            merged: false,
            source: None,
            typmod: -1,
            element: None,
        }
    }
}

/// The columns of a row, in order.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    pub fn new(columns: Vec<ScopeColumn>) -> Scope {
        Scope { columns }
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// This scope followed by `other` (a join's row).
    pub fn concat(&self, other: &Scope) -> Scope {
        let mut columns = self.columns.clone();
        columns.extend(other.columns.iter().cloned());
        Scope { columns }
    }

    /// Every column renamed under one qualifier (a FROM item's alias).
    pub fn qualified(mut self, qualifier: &str) -> Scope {
        for c in &mut self.columns {
            c.qualifier = Some(qualifier.to_string());
        }
        self
    }

    /// Whether some column carries `qualifier`.
    pub fn has_qualifier(&self, qualifier: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.qualifier.as_deref() == Some(qualifier))
    }

    /// The qualifiers in order of first appearance.
    pub fn qualifiers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.columns {
            if let Some(q) = &c.qualifier {
                if !out.contains(q) {
                    out.push(q.clone());
                }
            }
        }
        out
    }

    /// Finds `qualifier.name` (or unqualified `name`): `Ok(None)` when
    /// absent, an error when ambiguous.
    pub fn find(&self, qualifier: Option<&str>, name: &str) -> PgResult<Option<usize>> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            let hit = c.name == name
                && match qualifier {
                    Some(q) => c.qualifier.as_deref() == Some(q),
                    None => !c.merged,
                };
            if hit {
                if found.is_some() {
                    let shown = match qualifier {
                        Some(q) => format!("{q}.{name}"),
                        None => name.to_string(),
                    };
                    return Err(PgError::new(
                        errors::AMBIGUOUS_COLUMN,
                        format!("column reference \"{shown}\" is ambiguous"),
                    ));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

/// The error for a qualified reference whose qualifier no scope knows.
pub fn missing_from_entry(qualifier: &str) -> PgError {
    PgError::new(
        SqlState::UNDEFINED_TABLE,
        format!("missing FROM-clause entry for table \"{qualifier}\""),
    )
}
