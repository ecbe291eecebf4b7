use std::rc::Rc;

use futures_lite::future::block_on;
use teller_net::types::{Type, Value};

use super::system::{self, table_kvs};
use super::*;
use crate::encoding::key::{Direction, Nulls};
use crate::kv::memory::MemoryKv;
use crate::kv::{Batch, Kv, KvTxn, TxnOptions};

fn table() -> TableDesc {
    let column = |id, name: &str, ty, nullable| ColumnDesc {
        id,
        name: name.into(),
        ty,
        typmod: -1,
        nullable,
        default: None,
        hidden: false,
        identity: None,
        missing: Value::Null,
    };
    let mut amount = column(3, "amount", Type::Numeric, true);
    amount.typmod = ((12 << 16) | 2) + 4;
    amount.default = Some("0.00".into());
    amount.missing = Value::Numeric("0.00".parse().unwrap());
    TableDesc {
        id: 100,
        schema_id: 51,
        name: "accounts".into(),
        columns: vec![
            column(1, "id", Type::Int8, false),
            column(2, "owner", Type::Text, true),
            amount,
        ],
        next_column_id: 4,
        primary: IndexDesc {
            id: PRIMARY_INDEX_ID,
            oid: 101,
            name: "accounts_pkey".into(),
            unique: true,
            columns: vec![IndexColumn {
                column: 1,
                direction: Direction::Asc,
                nulls: Nulls::Last,
            }],
            stored: Vec::new(),
        },
        indexes: vec![IndexDesc {
            id: 2,
            oid: 102,
            name: "accounts_owner_idx".into(),
            unique: false,
            columns: vec![IndexColumn {
                column: 2,
                direction: Direction::Desc,
                nulls: Nulls::First,
            }],
            stored: vec![3],
        }],
        next_index_id: 3,
        checks: vec![CheckDesc {
            name: "accounts_amount_check".into(),
            expr: "amount >= 0".into(),
        }],
        foreign_keys: vec![ForeignKeyDesc {
            name: "accounts_id_fkey".into(),
            columns: vec![1],
            ref_table: 100,
            ref_columns: vec![1],
            on_delete: FkAction::Cascade,
            on_update: FkAction::NoAction,
        }],
    }
}

#[test]
fn descriptors_round_trip_through_the_system_tables() {
    let kv = MemoryKv::new();
    let t = table();
    block_on(async {
        let mut txn = kv.begin(TxnOptions::default()).await.unwrap();
        let mut batch = Batch::new();
        let bootstrap = Catalog::bootstrap();
        for d in bootstrap.databases.values() {
            let (k, v) = system::database_kv(d).unwrap();
            batch.put(k, v);
        }
        for s in bootstrap.schemas.values() {
            let (k, v) = system::schema_kv(s).unwrap();
            batch.put(k, v);
        }
        for (k, v) in table_kvs(&t).unwrap() {
            batch.put(k, v);
        }
        let seq = SequenceDesc {
            id: 103,
            schema_id: 51,
            name: "accounts_id_seq".into(),
            start: 1,
            increment: 1,
            min: 1,
            max: i64::MAX,
            cycle: false,
            owner: Some((100, 1)),
        };
        let (k, v) = system::sequence_kv(&seq).unwrap();
        batch.put(k, v);
        txn.batch(batch).await.unwrap();
        txn.commit().await.unwrap();

        let mut txn = kv.begin(TxnOptions::default()).await.unwrap();
        let catalog = Catalog::load(&mut txn, 7).await.unwrap();
        assert_eq!(catalog.version, 7);
        assert_eq!(**catalog.table(100).unwrap(), t);
        assert_eq!(**catalog.sequence(103).unwrap(), seq);
        assert_eq!(catalog.relation(51, "accounts"), Some(Relation::Table(100)));
        assert_eq!(
            catalog.relation(51, "accounts_owner_idx"),
            Some(Relation::Index(100, 2))
        );
        assert_eq!(
            catalog.relation(51, "accounts_id_seq"),
            Some(Relation::Sequence(103))
        );
        assert_eq!(catalog.relation(53, "accounts"), None);
        assert_eq!(catalog.database("teller").unwrap().id, 50);
        assert_eq!(catalog.referencing(100).len(), 1);
    });
}

#[test]
fn a_store_without_ddl_has_the_bootstrap_catalog() {
    let kv = MemoryKv::new();
    block_on(async {
        let mut txn = kv.begin(TxnOptions::default()).await.unwrap();
        assert_eq!(cache::read_version(&mut txn).await.unwrap(), 0);
        let shared = cache::CatalogCache::new();
        let catalog = cache::current(&mut txn, &shared).await.unwrap();
        assert!(catalog.database(DEFAULT_DATABASE).is_some());
        assert!(catalog.database("postgres").is_some());
        assert!(catalog.tables.is_empty());
        // A second transaction of the same version gets the cached snapshot.
        let again = cache::current(&mut txn, &shared).await.unwrap();
        assert!(Rc::ptr_eq(&catalog, &again));
    });
}

#[test]
fn the_cache_only_moves_forward() {
    let cache = cache::CatalogCache::new();
    let v2 = Rc::new(Catalog {
        version: 2,
        ..Catalog::bootstrap()
    });
    let v1 = Rc::new(Catalog {
        version: 1,
        ..Catalog::bootstrap()
    });
    cache.offer(&v2);
    cache.offer(&v1);
    assert_eq!(cache.latest().version, 2);
    assert!(cache.get(1).is_none());
    assert!(cache.get(2).is_some());
}

#[test]
fn corrupt_descriptor_rows_are_data_corrupted_errors() {
    let kv = MemoryKv::new();
    block_on(async {
        let mut txn = kv.begin(TxnOptions::default()).await.unwrap();
        let mut batch = Batch::new();
        // An index row of a table that does not exist.
        let (k, v) = table_kvs(&table())
            .unwrap()
            .into_iter()
            .find(|(k, _)| k.starts_with(&[5]))
            .unwrap();
        batch.put(k, v);
        batch.put(
            system::TABLES.key(&[Value::Int8(9)]).unwrap(),
            bytes::Bytes::from_static(b"\x01\x09"),
        );
        txn.batch(batch).await.unwrap();
        let error = Catalog::load(&mut txn, 1).await.unwrap_err();
        assert_eq!(error.code, crate::encoding::DATA_CORRUPTED);
    });
}

#[test]
fn view_descriptors_round_trip() {
    let view = ViewDesc {
        id: 123,
        schema_id: 51,
        name: "odd view".into(),
        query: "SELECT a AS \"x:y\" FROM t".into(),
        columns: vec![
            ViewColumn {
                name: "x:y".into(),
                ty: Type::Numeric,
                typmod: ((8 << 16) | 2) + 4,
            },
            ViewColumn {
                name: "back\\slash\nnew line".into(),
                ty: Type::Text,
                typmod: -1,
            },
        ],
        depends: vec![100, 101],
    };
    let (key, value) = system::view_kv(&view).unwrap();
    let (k, row) = system::VIEWS.decode(&key, &value).unwrap();
    assert_eq!(system::decode_view(&k, &row).unwrap(), view);
    let empty = ViewDesc {
        columns: Vec::new(),
        depends: Vec::new(),
        ..view
    };
    let (key, value) = system::view_kv(&empty).unwrap();
    let (k, row) = system::VIEWS.decode(&key, &value).unwrap();
    assert_eq!(system::decode_view(&k, &row).unwrap(), empty);
}
