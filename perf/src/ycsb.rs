//! YCSB core workloads A-F on `usertable` (10 fields of 100 bytes).
//!
//! | workload | mix | request distribution |
//! |---|---|---|
//! | A | 50% read, 50% update | zipfian |
//! | B | 95% read, 5% update | zipfian |
//! | C | 100% read | zipfian |
//! | D | 95% read, 5% insert | latest |
//! | E | 95% scan (1..=100 rows), 5% insert | zipfian |
//! | F | 50% read, 50% read-modify-write | zipfian |
//!
//! As in YCSB, record number `n` has key `user<fnv64(n)>`, so that inserts in
//! key-number order land all over the keyspace; reads read all fields, updates
//! write one. Zipfian is YCSB's scrambled zipfian (theta 0.99) over the
//! records present; `latest` favours the most recently inserted. Inserted rows
//! are added to the count `init` recorded, which `check` verifies.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::ValueEnum;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use crate::conn::{connect, get_meta, load_parallel, meta_u64, put_meta, quote, CheckReport};
use crate::driver::{OpError, Worker, Workload};
use crate::gen::{astring_exact, fnv64, KeyChooser, Zipfian};

pub const FIELD_COUNT: usize = 10;
pub const FIELD_LENGTH: usize = 100;
/// Rows per loader `INSERT`.
const LOAD_BATCH_ROWS: u64 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CoreWorkload {
    A,
    B,
    C,
    D,
    E,
    F,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Distribution {
    Zipfian,
    Uniform,
    Latest,
}

/// Operation types, in the order of [`Ycsb::op_names`].
const READ: usize = 0;
const UPDATE: usize = 1;
const INSERT: usize = 2;
const SCAN: usize = 3;
const READ_MODIFY_WRITE: usize = 4;

impl CoreWorkload {
    /// Cumulative percentages per operation type.
    fn mix(self) -> [(usize, u32); 2] {
        match self {
            CoreWorkload::A => [(READ, 50), (UPDATE, 100)],
            CoreWorkload::B => [(READ, 95), (UPDATE, 100)],
            CoreWorkload::C => [(READ, 100), (READ, 100)],
            CoreWorkload::D => [(READ, 95), (INSERT, 100)],
            CoreWorkload::E => [(SCAN, 95), (INSERT, 100)],
            CoreWorkload::F => [(READ, 50), (READ_MODIFY_WRITE, 100)],
        }
    }

    fn distribution(self) -> Distribution {
        match self {
            CoreWorkload::D => Distribution::Latest,
            _ => Distribution::Zipfian,
        }
    }
}

/// The key of record number `n`.
pub fn key(n: u64) -> String {
    format!("user{}", fnv64(n))
}

fn columns() -> String {
    (0..FIELD_COUNT)
        .map(|i| format!("field{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates and fills `usertable` (dropping an earlier one).
pub async fn init(
    url: &str,
    records: u64,
    concurrency: usize,
    seed: u64,
) -> Result<(), tokio_postgres::Error> {
    let client = connect(url).await?;
    let fields: Vec<String> = (0..FIELD_COUNT)
        .map(|i| format!("field{i} VARCHAR({FIELD_LENGTH}) NOT NULL"))
        .collect();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS usertable; \
             CREATE TABLE usertable (ycsb_key VARCHAR(255) PRIMARY KEY, {})",
            fields.join(", ")
        ))
        .await?;
    let batches: Vec<u64> = (0..records.div_ceil(LOAD_BATCH_ROWS)).collect();
    load_parallel(url, "ycsb init", concurrency, batches, move |&b| {
        let mut rng = SmallRng::seed_from_u64(seed ^ fnv64(b));
        let rows: Vec<String> = (b * LOAD_BATCH_ROWS..((b + 1) * LOAD_BATCH_ROWS).min(records))
            .map(|n| {
                let values: Vec<String> = (0..FIELD_COUNT)
                    .map(|_| quote(&astring_exact(&mut rng, FIELD_LENGTH)))
                    .collect();
                format!("({}, {})", quote(&key(n)), values.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO usertable (ycsb_key, {}) VALUES {}",
            columns(),
            rows.join(",\n")
        )
    })
    .await?;
    put_meta(
        &client,
        "ycsb",
        &json!({ "records": records, "inserted": 0 }),
    )
    .await
}

/// Verifies the row count (loaded plus inserted) and every field's size.
pub async fn check(url: &str) -> Result<CheckReport, tokio_postgres::Error> {
    let client = connect(url).await?;
    let mut report = CheckReport::default();
    let Some(meta) = get_meta(&client, "ycsb").await? else {
        report.add("metadata", false, "no ycsb metadata: run `ycsb init` first");
        return Ok(report);
    };
    let expected =
        meta_u64(&meta, "records").unwrap_or(0) + meta_u64(&meta, "inserted").unwrap_or(0);
    let count: i64 = client
        .query_one("SELECT count(*) FROM usertable", &[])
        .await?
        .try_get(0)?;
    report.add(
        "row count",
        count == expected as i64,
        format!("{count} rows, expected {expected} (loaded + inserted)"),
    );
    let bad_fields = (0..FIELD_COUNT)
        .map(|i| format!("length(field{i}) <> {FIELD_LENGTH}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let bad: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM usertable WHERE {bad_fields}"),
            &[],
        )
        .await?
        .try_get(0)?;
    report.add(
        "field sizes",
        bad == 0,
        format!("{bad} rows with a field not {FIELD_LENGTH} bytes"),
    );
    let first: i64 = client
        .query_one(
            "SELECT count(*) FROM usertable WHERE ycsb_key = $1",
            &[&key(0)],
        )
        .await?
        .try_get(0)?;
    report.add(
        "record 0 present",
        first == 1,
        format!("{first} rows with key {}", key(0)),
    );
    Ok(report)
}

/// Run-time parameters and the shared insert key sequence.
#[derive(Debug)]
pub struct Ycsb {
    pub workload: CoreWorkload,
    pub distribution: Distribution,
    pub max_scan_length: i64,
    /// Records present before the run that reads and updates draw from:
    /// `--records`, or all that were loaded and inserted so far.
    pub drawn: u64,
    keys: Arc<KeySequence>,
    zipfian: Zipfian,
}

/// The insert key sequence all clients share. Like YCSB's acknowledged
/// counter, keys are drawn only below the first record number whose insert
/// has not finished yet, so that reads do not chase rows still in flight.
#[derive(Debug)]
struct KeySequence {
    /// Records present before the run; this run inserts from here on.
    base: u64,
    /// Next record number to insert.
    next_insert: AtomicU64,
    /// Every record number below this has finished its insert.
    acked: AtomicU64,
    /// Finished inserts at or above `acked` (out of order).
    finished: Mutex<BTreeSet<u64>>,
    /// Rows this run inserted.
    inserted: AtomicU64,
}

impl KeySequence {
    fn new(present: u64) -> Self {
        KeySequence {
            base: present,
            next_insert: AtomicU64::new(present),
            acked: AtomicU64::new(present),
            finished: Mutex::new(BTreeSet::new()),
            inserted: AtomicU64::new(0),
        }
    }

    /// Record number of the `k`-th drawable record when reads draw from the
    /// first `drawn` records plus this run's acknowledged inserts.
    fn record(&self, drawn: u64, k: u64) -> u64 {
        if k < drawn {
            k
        } else {
            self.base + (k - drawn)
        }
    }

    /// Marks record `n`'s insert finished, successful or not (a failed one
    /// must not hold the others back; reading it just finds nothing).
    fn finish(&self, n: u64) {
        let mut finished = self.finished.lock().expect("key sequence lock");
        finished.insert(n);
        let mut acked = self.acked.load(Ordering::Relaxed);
        while finished.remove(&acked) {
            acked += 1;
        }
        self.acked.store(acked, Ordering::Relaxed);
    }
}

impl Ycsb {
    /// Reads the record count `init` recorded (plus earlier runs' inserts).
    /// `records` limits reads and updates to the first `records` of them
    /// (records beyond those present are read as not found); this run's
    /// inserts always continue after the last record present, so that they
    /// never collide. Without metadata, `records` says how many records a
    /// foreign loader put there (the key scheme is YCSB's own).
    pub async fn from_meta(
        url: &str,
        workload: CoreWorkload,
        distribution: Option<Distribution>,
        records: Option<u64>,
        max_scan_length: i64,
    ) -> Result<Option<Ycsb>, tokio_postgres::Error> {
        let client = connect(url).await?;
        let meta = get_meta(&client, "ycsb").await?;
        let present = match (records, &meta) {
            (_, Some(m)) => {
                meta_u64(m, "records").unwrap_or(0) + meta_u64(m, "inserted").unwrap_or(0)
            }
            (Some(r), None) => r,
            (None, None) => return Ok(None),
        };
        let drawn = records.unwrap_or(present);
        if present == 0 || drawn == 0 {
            return Ok(None);
        }
        Ok(Some(Ycsb {
            workload,
            distribution: distribution.unwrap_or(workload.distribution()),
            max_scan_length,
            drawn,
            keys: Arc::new(KeySequence::new(present)),
            zipfian: Zipfian::new(drawn),
        }))
    }

    /// Adds this run's inserts to the recorded row count.
    pub async fn record_inserts(&self, url: &str) -> Result<(), tokio_postgres::Error> {
        let inserted = self.keys.inserted.load(Ordering::Relaxed);
        if inserted == 0 {
            return Ok(());
        }
        let client = connect(url).await?;
        if let Some(mut meta) = get_meta(&client, "ycsb").await? {
            let before = meta_u64(&meta, "inserted").unwrap_or(0);
            meta["inserted"] = json!(before + inserted);
            put_meta(&client, "ycsb", &meta).await?;
        }
        Ok(())
    }
}

pub enum YcsbOp {
    Read(String),
    Update {
        key: String,
        field: usize,
        value: String,
    },
    Insert {
        n: u64,
        values: Vec<String>,
    },
    Scan {
        start: String,
        len: i64,
    },
    ReadModifyWrite {
        key: String,
        field: usize,
        value: String,
    },
}

pub struct YcsbWorker {
    workload: CoreWorkload,
    max_scan_length: i64,
    drawn: u64,
    keys: Arc<KeySequence>,
    client: Client,
    rng: SmallRng,
    chooser: KeyChooser,
    read: Statement,
    update: Vec<Statement>,
    insert: Statement,
    scan: Statement,
}

impl Workload for Ycsb {
    type Worker = YcsbWorker;

    fn name(&self) -> String {
        format!("ycsb-{:?}", self.workload).to_lowercase()
    }

    fn op_names(&self) -> Vec<&'static str> {
        vec!["read", "update", "insert", "scan", "read_modify_write"]
    }

    fn extra(&self, _summary: &crate::stats::Summary) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("records".into(), self.drawn.into());
        m.insert(
            "distribution".into(),
            format!("{:?}", self.distribution).to_lowercase().into(),
        );
        if self.workload == CoreWorkload::E {
            m.insert("max_scan_length".into(), self.max_scan_length.into());
        }
        m
    }

    async fn open(
        &self,
        client: Client,
        _client_id: usize,
        seed: u64,
    ) -> Result<YcsbWorker, tokio_postgres::Error> {
        let cols = columns();
        let read = client
            .prepare(&format!("SELECT {cols} FROM usertable WHERE ycsb_key = $1"))
            .await?;
        let mut update = Vec::with_capacity(FIELD_COUNT);
        for i in 0..FIELD_COUNT {
            update.push(
                client
                    .prepare(&format!(
                        "UPDATE usertable SET field{i} = $1 WHERE ycsb_key = $2"
                    ))
                    .await?,
            );
        }
        let params: Vec<String> = (1..=FIELD_COUNT + 1).map(|i| format!("${i}")).collect();
        let insert = client
            .prepare(&format!(
                "INSERT INTO usertable (ycsb_key, {cols}) VALUES ({})",
                params.join(", ")
            ))
            .await?;
        let scan = client
            .prepare(&format!(
                "SELECT ycsb_key, {cols} FROM usertable WHERE ycsb_key >= $1 \
                 ORDER BY ycsb_key LIMIT $2"
            ))
            .await?;
        let chooser = match self.distribution {
            Distribution::Uniform => KeyChooser::Uniform,
            Distribution::Zipfian => KeyChooser::ScrambledZipfian(self.zipfian.clone()),
            Distribution::Latest => KeyChooser::Latest(self.zipfian.clone()),
        };
        Ok(YcsbWorker {
            workload: self.workload,
            max_scan_length: self.max_scan_length,
            drawn: self.drawn,
            keys: self.keys.clone(),
            client,
            rng: SmallRng::seed_from_u64(seed),
            chooser,
            read,
            update,
            insert,
            scan,
        })
    }
}

impl YcsbWorker {
    fn existing_key(&mut self) -> String {
        let inserted = self.keys.acked.load(Ordering::Relaxed) - self.keys.base;
        let k = self.chooser.next(&mut self.rng, self.drawn + inserted);
        key(self.keys.record(self.drawn, k))
    }

    fn value(&mut self) -> String {
        astring_exact(&mut self.rng, FIELD_LENGTH)
    }

    async fn update(&self, key: &str, field: usize, value: &str) -> Result<(), OpError> {
        self.client
            .execute(&self.update[field], &[&value, &key])
            .await?;
        Ok(())
    }
}

impl Worker for YcsbWorker {
    type Op = YcsbOp;

    fn next_op(&mut self) -> YcsbOp {
        let dice = self.rng.random_range(0..100);
        let kind = self
            .workload
            .mix()
            .iter()
            .find(|(_, upto)| dice < *upto)
            .map_or(READ, |(k, _)| *k);
        match kind {
            UPDATE | READ_MODIFY_WRITE => {
                let key = self.existing_key();
                let field = self.rng.random_range(0..FIELD_COUNT);
                let value = self.value();
                if kind == UPDATE {
                    YcsbOp::Update { key, field, value }
                } else {
                    YcsbOp::ReadModifyWrite { key, field, value }
                }
            }
            INSERT => YcsbOp::Insert {
                n: self.keys.next_insert.fetch_add(1, Ordering::Relaxed),
                values: (0..FIELD_COUNT).map(|_| self.value()).collect(),
            },
            SCAN => YcsbOp::Scan {
                start: self.existing_key(),
                len: self.rng.random_range(1..=self.max_scan_length),
            },
            _ => YcsbOp::Read(self.existing_key()),
        }
    }

    fn kind(&self, op: &YcsbOp) -> usize {
        match op {
            YcsbOp::Read(_) => READ,
            YcsbOp::Update { .. } => UPDATE,
            YcsbOp::Insert { .. } => INSERT,
            YcsbOp::Scan { .. } => SCAN,
            YcsbOp::ReadModifyWrite { .. } => READ_MODIFY_WRITE,
        }
    }

    async fn execute(&mut self, op: &YcsbOp) -> Result<Option<&'static str>, OpError> {
        match op {
            YcsbOp::Read(key) => {
                if self.client.query_opt(&self.read, &[key]).await?.is_none() {
                    return Ok(Some("read_not_found"));
                }
            }
            YcsbOp::Update { key, field, value } => self.update(key, *field, value).await?,
            YcsbOp::Insert { n, values } => {
                let key = key(*n);
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key];
                params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
                let done = self.client.execute(&self.insert, &params).await;
                self.keys.finish(*n);
                done?;
                self.keys.inserted.fetch_add(1, Ordering::Relaxed);
            }
            YcsbOp::Scan { start, len } => {
                self.client.query(&self.scan, &[start, len]).await?;
            }
            YcsbOp::ReadModifyWrite { key, field, value } => {
                if self.client.query_opt(&self.read, &[key]).await?.is_none() {
                    return Ok(Some("read_not_found"));
                }
                self.update(key, *field, value).await?;
            }
        }
        Ok(None)
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_limit_waits_for_the_gap() {
        let keys = KeySequence::new(10);
        keys.finish(11);
        keys.finish(12);
        assert_eq!(keys.acked.load(Ordering::Relaxed), 10);
        keys.finish(10);
        assert_eq!(keys.acked.load(Ordering::Relaxed), 13);
    }

    #[test]
    fn drawn_records_skip_to_this_runs_inserts() {
        let keys = KeySequence::new(100);
        // Reads limited to the first 40 records, then this run's inserts.
        assert_eq!(keys.record(40, 39), 39);
        assert_eq!(keys.record(40, 40), 100);
        assert_eq!(keys.record(40, 42), 102);
        // Without a limit, record numbers are drawn as they are.
        assert_eq!(keys.record(100, 99), 99);
        assert_eq!(keys.record(100, 101), 101);
    }
}
