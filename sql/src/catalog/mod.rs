//! The catalog: databases, schemas, tables (with columns, indexes and
//! constraints) and sequences, stored in system tables ([`system`]) and
//! loaded into an immutable [`Catalog`] snapshot per catalog version.
//!
//! Invariants and the why:
//! - A [`Catalog`] is immutable and shared (`Rc`): bound statements keep the
//!   snapshot they were bound against, and a statement whose snapshot is not
//!   the one its transaction reads is bound again (see `session`).
//! - Every transaction reads the catalog version key before anything else
//!   ([`cache::current`]); DDL writes it. Under serializable isolation this
//!   orders every transaction against every schema change, on any shard.
//! - A catalog loaded by a transaction that changed the schema is private to
//!   that transaction and never enters the shared per-shard cache: its
//!   version number could be reused by another transaction if this one rolls
//!   back.
//! - Relations (tables, indexes, sequences) share one namespace per schema,
//!   as in PostgreSQL's `pg_class`.

pub mod cache;
pub mod desc;
pub mod pg;
pub mod system;

use std::collections::BTreeMap;
use std::rc::Rc;

use teller_net::{PgError, PgResult, SqlState};

use crate::kv::{KvTxn, Span};
pub use desc::*;

/// The bootstrap database every node starts with.
pub const DEFAULT_DATABASE: &str = "teller";
/// The schema every database starts with.
pub const PUBLIC_SCHEMA: &str = "public";
/// Bootstrap descriptor ids: (database, its public schema).
const BOOTSTRAP: [(&str, DescId, DescId); 2] = [(DEFAULT_DATABASE, 50, 51), ("postgres", 52, 53)];

/// A relation name's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Table(DescId),
    Index(DescId, IndexId),
    Sequence(DescId),
    View(DescId),
}

/// One version of the catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The catalog version it was loaded at (0: never changed, bootstrap).
    pub version: u64,
    pub databases: BTreeMap<DescId, DatabaseDesc>,
    pub schemas: BTreeMap<DescId, SchemaDesc>,
    pub tables: BTreeMap<DescId, TableRef>,
    pub sequences: BTreeMap<DescId, Rc<SequenceDesc>>,
    pub views: BTreeMap<DescId, Rc<ViewDesc>>,
    /// `(object oid, sub id)` → comment.
    pub comments: BTreeMap<(DescId, i32), String>,
    /// `(schema id, name)` → relation.
    relations: BTreeMap<(DescId, String), Relation>,
}

impl Catalog {
    /// The catalog of a store no DDL has touched yet.
    pub fn bootstrap() -> Catalog {
        let mut catalog = Catalog::default();
        for (name, db, schema) in BOOTSTRAP {
            catalog.databases.insert(
                db,
                DatabaseDesc {
                    id: db,
                    name: name.into(),
                },
            );
            catalog.schemas.insert(
                schema,
                SchemaDesc {
                    id: schema,
                    database_id: db,
                    name: PUBLIC_SCHEMA.into(),
                },
            );
        }
        catalog
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseDesc> {
        self.databases.values().find(|d| d.name == name)
    }

    /// The database a session is connected to.
    pub fn session_database(&self, name: &str) -> PgResult<&DatabaseDesc> {
        self.database(name).ok_or_else(|| {
            PgError::new(
                SqlState::INVALID_CATALOG_NAME,
                format!("database \"{name}\" does not exist"),
            )
        })
    }

    pub fn schema(&self, database: DescId, name: &str) -> Option<&SchemaDesc> {
        self.schemas
            .values()
            .find(|s| s.database_id == database && s.name == name)
    }

    pub fn schemas_of(&self, database: DescId) -> impl Iterator<Item = &SchemaDesc> {
        self.schemas
            .values()
            .filter(move |s| s.database_id == database)
    }

    pub fn relation(&self, schema: DescId, name: &str) -> Option<Relation> {
        self.relations.get(&(schema, name.to_string())).copied()
    }

    pub fn table(&self, id: DescId) -> Option<&TableRef> {
        self.tables.get(&id)
    }

    pub fn sequence(&self, id: DescId) -> Option<&Rc<SequenceDesc>> {
        self.sequences.get(&id)
    }

    pub fn view(&self, id: DescId) -> Option<&Rc<ViewDesc>> {
        self.views.get(&id)
    }

    /// The views that read relation `id` directly.
    pub fn views_on(&self, id: DescId) -> Vec<Rc<ViewDesc>> {
        self.views
            .values()
            .filter(|v| v.depends.contains(&id))
            .cloned()
            .collect()
    }

    /// The views that read relation `id`, directly or through other views,
    /// dependents after the views they read (the order to drop in reverse).
    pub fn views_on_transitively(&self, id: DescId) -> Vec<Rc<ViewDesc>> {
        let mut out: Vec<Rc<ViewDesc>> = Vec::new();
        let mut pending = vec![id];
        while let Some(next) = pending.pop() {
            for v in self.views_on(next) {
                if !out.iter().any(|o| o.id == v.id) {
                    pending.push(v.id);
                    out.push(v);
                }
            }
        }
        out
    }

    /// Tables in a schema, by name.
    pub fn tables_in(&self, schema: DescId) -> impl Iterator<Item = &TableRef> {
        self.tables.values().filter(move |t| t.schema_id == schema)
    }

    /// Foreign keys that reference `table`: (referencing table, key).
    pub fn referencing(&self, table: DescId) -> Vec<(TableRef, ForeignKeyDesc)> {
        let mut out = Vec::new();
        for t in self.tables.values() {
            for fk in &t.foreign_keys {
                if fk.ref_table == table {
                    out.push((t.clone(), fk.clone()));
                }
            }
        }
        out
    }

    /// Rebuilds the name index; call after filling the maps.
    fn index_names(&mut self) {
        self.relations.clear();
        for t in self.tables.values() {
            self.relations
                .insert((t.schema_id, t.name.clone()), Relation::Table(t.id));
            for index in t.all_indexes() {
                self.relations.insert(
                    (t.schema_id, index.name.clone()),
                    Relation::Index(t.id, index.id),
                );
            }
        }
        for s in self.sequences.values() {
            self.relations
                .insert((s.schema_id, s.name.clone()), Relation::Sequence(s.id));
        }
        for v in self.views.values() {
            self.relations
                .insert((v.schema_id, v.name.clone()), Relation::View(v.id));
        }
    }

    /// Reads every descriptor through `txn` (one batch of scans).
    pub async fn load<T: KvTxn>(txn: &mut T, version: u64) -> PgResult<Catalog> {
        use system::*;
        if version == 0 {
            return Ok(Catalog::bootstrap());
        }
        let tables = [
            &DATABASES,
            &SCHEMAS,
            &TABLES,
            &COLUMNS,
            &INDEXES,
            &CONSTRAINTS,
            &SEQUENCES,
            &COMMENTS,
            &VIEWS,
        ];
        let spans: Vec<Span> = tables.iter().map(|t| t.span()).collect();
        let results = crate::kv_util::scan_spans(txn, spans).await?;
        let mut catalog = Catalog {
            version,
            ..Catalog::default()
        };
        let mut columns: BTreeMap<DescId, Vec<(usize, ColumnDesc)>> = BTreeMap::new();
        let mut table_descs: BTreeMap<DescId, TableDesc> = BTreeMap::new();
        for (which, rows) in results.into_iter().enumerate() {
            let table = tables[which];
            for kv in rows {
                let (key, row) = table.decode(&kv.key, &kv.value)?;
                match table.id {
                    1 => {
                        let d = decode_database(&key, &row)?;
                        catalog.databases.insert(d.id, d);
                    }
                    2 => {
                        let s = decode_schema(&key, &row)?;
                        catalog.schemas.insert(s.id, s);
                    }
                    3 => {
                        let t = decode_table(&key, &row)?;
                        table_descs.insert(t.id, t);
                    }
                    4 => {
                        let (table, position, column) = decode_column(&key, &row)?;
                        columns.entry(table).or_default().push((position, column));
                    }
                    5 => {
                        let (table, primary, index) = decode_index(&key, &row)?;
                        let t = table_descs.get_mut(&table).ok_or_else(|| {
                            crate::encoding::corrupt(format!("index of missing table {table}"))
                        })?;
                        if primary {
                            t.primary = index;
                        } else {
                            t.indexes.push(index);
                        }
                    }
                    6 => {
                        let table = id(&key[0], "constraint table")?;
                        let t = table_descs.get_mut(&table).ok_or_else(|| {
                            crate::encoding::corrupt(format!("constraint of missing table {table}"))
                        })?;
                        attach_constraint(t, &key, &row)?;
                    }
                    7 => {
                        let s = decode_sequence(&key, &row)?;
                        catalog.sequences.insert(s.id, Rc::new(s));
                    }
                    11 => {
                        let v = decode_view(&key, &row)?;
                        catalog.views.insert(v.id, Rc::new(v));
                    }
                    _ => {
                        let object = id(&key[0], "comment object")?;
                        let sub = int(&key[1], "comment sub id")? as i32;
                        catalog
                            .comments
                            .insert((object, sub), text(&row[0], "comment")?);
                    }
                }
            }
        }
        for (id, mut t) in table_descs {
            let mut cols = columns.remove(&id).unwrap_or_default();
            cols.sort_by_key(|(position, _)| *position);
            t.columns = cols.into_iter().map(|(_, c)| c).collect();
            if t.primary.columns.is_empty() || t.columns.is_empty() {
                return Err(crate::encoding::corrupt(format!(
                    "table {id} has no primary index or no columns"
                )));
            }
            catalog.tables.insert(id, Rc::new(t));
        }
        catalog.index_names();
        Ok(catalog)
    }

    /// A copy with `view` added or replaced (checking view definitions).
    pub fn with_view(&self, view: ViewDesc) -> Catalog {
        let mut next = self.shallow_clone();
        next.views.insert(view.id, Rc::new(view));
        next.index_names();
        next
    }

    /// A copy with `table` added or replaced (used to check DDL in memory).
    pub fn with_table(&self, table: TableDesc) -> Catalog {
        let mut next = self.shallow_clone();
        next.tables.insert(table.id, Rc::new(table));
        next.index_names();
        next
    }

    fn shallow_clone(&self) -> Catalog {
        Catalog {
            version: self.version,
            databases: self.databases.clone(),
            schemas: self.schemas.clone(),
            tables: self.tables.clone(),
            sequences: self.sequences.clone(),
            views: self.views.clone(),
            comments: self.comments.clone(),
            relations: self.relations.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
