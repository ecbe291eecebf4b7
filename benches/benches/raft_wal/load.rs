//! The closed-loop load: `clients` tasks on the shard each propose one small
//! write to a random range, wait until it is committed and applied, and
//! propose the next, for a warm-up and then a measured window.
//!
//! A proposal is the node's write path below evaluation:
//! `Replication::replicate(range, batch)` on the shard's `RaftReplication`
//! (queue, propose, append to the WAL with one fdatasync per pass for all
//! groups, commit, apply to the memtable, reply). Its commit latency is the
//! time from that call to its resolution. Only proposals that start and end
//! inside the window count; the window's WAL and CPU figures are counter
//! differences across it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use teller_kv::engine::WriteBatch;
use teller_kv::replication::raft::RaftReplication;
use teller_kv::replication::Replication;
use teller_kv::Timestamp;
use teller_node::replica::ShardStorage;
use teller_storage::disk::DmaDisk;

use crate::cpu::{self, CpuSample};
use crate::shard::create_groups;

/// Highest commit latency the histogram holds (longer ones saturate).
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// Significant figures of the latency histogram.
const LATENCY_SIGFIG: u8 = 3;

/// One closed-loop run.
#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    pub groups: u64,
    pub clients: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub value_bytes: usize,
    pub seed: u64,
}

/// What one run measured.
pub struct LoadReport {
    pub config: LoadConfig,
    /// Creating the ranges (flush, group, election each).
    pub create: Duration,
    /// The measured window's actual length.
    pub window: Duration,
    /// Proposals that started and completed inside the window.
    pub proposals: u64,
    /// Their commit latency, in nanoseconds.
    pub latency: Histogram<u64>,
    /// WAL appends (group commits) and fdatasyncs in the window.
    pub wal_appends: u64,
    pub wal_syncs: u64,
    /// CPU used in the window (shard thread and whole process).
    pub cpu: CpuSample,
    /// 1-minute load average at the end of the window.
    pub load_average: f64,
}

impl LoadReport {
    pub fn proposals_per_sec(&self) -> f64 {
        self.proposals as f64 / self.window.as_secs_f64()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    Done,
}

/// State the clients share (one thread: cells, no locks).
struct Shared {
    phase: Cell<Phase>,
    latency: RefCell<Histogram<u64>>,
    proposals: Cell<u64>,
    value: Bytes,
}

/// Creates the ranges, runs the load, and checks that every acknowledged
/// write was applied.
pub async fn run_load(storage: Rc<ShardStorage>, config: LoadConfig) -> Result<LoadReport, String> {
    let create = create_groups(&storage, config.groups).await?;
    let applied_before = applied_sum(&storage.raft, config.groups)?;
    let latency = Histogram::new_with_bounds(1, LATENCY_MAX_NS, LATENCY_SIGFIG)
        .map_err(|e| format!("latency histogram: {e}"))?;
    let shared = Rc::new(Shared {
        phase: Cell::new(Phase::Warmup),
        latency: RefCell::new(latency),
        proposals: Cell::new(0),
        value: Bytes::from(vec![0x5a; config.value_bytes]),
    });
    let clients: Vec<_> = (0..config.clients)
        .map(|id| {
            let raft = storage.raft.clone();
            let shared = shared.clone();
            glommio::spawn_local(client(id as u64, raft, shared, config))
        })
        .collect();
    glommio::timer::sleep(config.warmup).await;
    let start = (Instant::now(), storage.lsm.metrics(), CpuSample::now()?);
    shared.phase.set(Phase::Measure);
    glommio::timer::sleep(config.measure).await;
    shared.phase.set(Phase::Done);
    let end = (Instant::now(), storage.lsm.metrics(), CpuSample::now()?);
    let load_average = cpu::load_average()?;
    let mut acknowledged = 0;
    for c in clients {
        acknowledged += c.await?;
    }
    // Every acknowledged write is an applied entry (warm-up included).
    let applied = applied_sum(&storage.raft, config.groups)? - applied_before;
    if applied < acknowledged {
        return Err(format!(
            "{acknowledged} writes acknowledged but only {applied} entries applied"
        ));
    }
    let latency = shared.latency.borrow().clone();
    Ok(LoadReport {
        config,
        create,
        window: end.0 - start.0,
        proposals: shared.proposals.get(),
        latency,
        wal_appends: end.1.write_groups - start.1.write_groups,
        wal_syncs: end.1.wal_syncs - start.1.wal_syncs,
        cpu: end.2.since(&start.2),
        load_average,
    })
}

/// One closed-loop client; returns how many writes it had acknowledged.
async fn client(
    id: u64,
    raft: Rc<RaftReplication<DmaDisk>>,
    shared: Rc<Shared>,
    config: LoadConfig,
) -> Result<u64, String> {
    let mut rng = SplitMix64(config.seed ^ (id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut seq = 0u64;
    loop {
        let phase = shared.phase.get();
        if phase == Phase::Done {
            return Ok(seq);
        }
        let range = 1 + rng.next() % config.groups;
        let batch = write(range, id, seq, &shared.value);
        let started = Instant::now();
        raft.replicate(range, batch)
            .await
            .map_err(|e| format!("client {id}: write {seq} to range {range}: {e}"))?;
        let elapsed = started.elapsed();
        if phase == Phase::Measure && shared.phase.get() == Phase::Measure {
            let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            shared.latency.borrow_mut().saturating_record(ns.max(1));
            shared.proposals.set(shared.proposals.get() + 1);
        }
        seq += 1;
    }
}

/// A one-key write: key = range (8 B) + client and sequence (8 B).
pub fn write(range: u64, client: u64, seq: u64, value: &Bytes) -> WriteBatch {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&range.to_be_bytes());
    key.extend_from_slice(&((client << 40) | (seq & ((1 << 40) - 1))).to_be_bytes());
    let ts = Timestamp {
        wall_nanos: seq + 1,
        logical: 0,
    };
    let mut batch = WriteBatch::new();
    batch.put(Bytes::from(key), ts, value.clone());
    batch
}

/// Applied Raft indexes summed over ranges `1..=groups`.
fn applied_sum(raft: &RaftReplication<DmaDisk>, groups: u64) -> Result<u64, String> {
    (1..=groups)
        .map(|r| {
            raft.indexes(r)
                .map(|(applied, _, _)| applied)
                .ok_or_else(|| format!("range {r} has no Raft group"))
        })
        .sum()
}

/// splitmix64: a tiny, seeded generator for picking ranges.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
