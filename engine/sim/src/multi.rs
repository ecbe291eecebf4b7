//! The multi-raft simulator: nodes each running one `MultiRaft` shard that
//! hosts a replica of every range, over the simulated network, with one
//! `MemLogStore` per shard (one append and one asynchronous sync covering
//! every group; a crash loses what was not synced, or keeps a prefix).
//!
//! Time is in microseconds. A shard runs a pass at most every
//! `PASS_DELAY_US` after input arrives, so inputs of one instant share a
//! pass, a log write and a sync, as in the real shard loop.
//!
//! Closed-loop clients append `(client, seq)` ops to random ranges and wait
//! for the proposing shard to apply them (that is the commit latency). With
//! `checks` on, every range has a `Checker`: election safety, log matching,
//! leader completeness, state-machine safety, commit safety, durability,
//! and at the end convergence and no lost acknowledged append. With faults
//! on: crashes, partitions, loss and duplication, then a healed settle
//! phase. The benchmark (`src/bin/multi_bench.rs`) runs it without faults
//! or checks.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use teller_raft::multi::{
    Apply, Batch, HostError, HostStats, LogRecord, LogStore, MemLogStore, MultiConfig, MultiRaft,
    Pass, RangeId,
};
use teller_raft::{
    Config, Entry, EntryKind, Index, LeaseConfig, NodeId, Persisted, ProposeError, Snapshot,
    ELECTION_TICKS_DEFAULT,
};

use crate::app::{decode_op, encode_op, App};
use crate::checker::{Checker, Violation};
use crate::rng::Rng;

/// A tick of every shard, in µs.
pub const TICK_US: u64 = 50_000;
/// A shard runs its pass this long after input arrives (loop granularity).
const PASS_DELAY_US: u64 = 10;
/// One-way network delay bounds without faults, µs.
const NET_DELAY_US: (u64, u64) = (100, 400);
/// Device sync latency bounds, µs.
const FSYNC_US: (u64, u64) = (300, 1_500);
/// Configured maximum clock offset for leases, µs; clocks stay within it.
const CLOCK_OFFSET_MAX_US: u64 = 5_000;
/// Client request timeout before retrying at another shard, µs.
const CLIENT_TIMEOUT_US: u64 = 2_000_000;
/// Applied entries between compactions of a range in sweeps: often, so
/// that snapshots are installed and compacted logs recovered.
pub const COMPACT_EVERY_SWEEP: u64 = 50;
/// Events between durability checks.
const DURABILITY_CHECK_EVENTS: u64 = 512;
/// A runaway run is a failure, not a hang.
const EVENTS_MAX: u64 = 200_000_000;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct MultiOptions {
    pub nodes: u64,
    pub groups: u64,
    pub clients: usize,
    /// Clients start after this (elections settle first), µs.
    pub warmup_us: u64,
    /// Clients run this long, µs.
    pub load_us: u64,
    /// Then the cluster runs this long without clients, µs.
    pub idle_us: u64,
    pub faults: bool,
    /// Run the per-range checkers (costly for huge group counts).
    pub checks: bool,
    pub quiesce: bool,
    /// Applied entries between compactions of a range (each encodes the
    /// range's whole list: keep it large when the lists grow long).
    pub compact_every: u64,
    pub trace: bool,
}

impl MultiOptions {
    /// A short faulty run with checks, for sweeps.
    pub fn sweep(rng: &mut Rng) -> MultiOptions {
        MultiOptions {
            nodes: if rng.flip() { 3 } else { 5 },
            groups: rng.range(1, 24),
            clients: rng.range(1, 8) as usize,
            warmup_us: 2_000_000,
            load_us: 20_000_000,
            idle_us: 5_000_000,
            faults: true,
            checks: true,
            quiesce: rng.below(4) != 0,
            compact_every: COMPACT_EVERY_SWEEP,
            trace: false,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct MultiReport {
    /// Acknowledged appends during the load phase.
    pub acked: u64,
    /// Commit latency of each acknowledged append, µs.
    pub latencies_us: Vec<u64>,
    pub load_us: u64,
    pub events: u64,
    pub crashes: u64,
    pub syncs: u64,
    /// Host counters summed over shards (of their last incarnation).
    pub hosts: HostStats,
    /// Group ticks and liveness beats during the idle phase only.
    pub idle_group_ticks: u64,
    pub idle_beats: u64,
    pub idle_liveness_beats: u64,
}

#[derive(Debug)]
enum Event {
    Tick { node: NodeId, epoch: u64 },
    Deliver(Batch),
    Pass { node: NodeId, epoch: u64 },
    DiskDone { node: NodeId, epoch: u64 },
    Client(usize),
    Fault,
    Restart(NodeId),
    EndFaults,
    LoadEnd,
}

struct Scheduled {
    time: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

#[derive(Clone, Default)]
struct RangeApp {
    app: App,
    applied: Index,
    last_compact: Index,
}

struct Shard {
    id: NodeId,
    up: bool,
    epoch: u64,
    host: Option<MultiRaft>,
    store: MemLogStore,
    apps: BTreeMap<RangeId, RangeApp>,
    pass_scheduled: bool,
    fsync_inflight: bool,
    last_pass: u64,
    tick_period: u64,
    clock_offset: u64,
}

struct Outstanding {
    node: NodeId,
    range: RangeId,
    index: Index,
    seq: u32,
    issued: u64,
    deadline: u64,
}

struct Client {
    id: u32,
    outstanding: Option<Outstanding>,
    /// Next seq per range (ops are deduplicated per client and range).
    seqs: BTreeMap<RangeId, u32>,
    hints: BTreeMap<RangeId, NodeId>,
}

struct MultiSim {
    rng: Rng,
    opts: MultiOptions,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    shards: Vec<Shard>,
    cut: BTreeSet<(NodeId, NodeId)>,
    loss_ppm: u32,
    dup_ppm: u32,
    net_delay_max: u64,
    clients: Vec<Client>,
    loading: bool,
    /// Per range: acknowledged ops.
    acked: BTreeMap<RangeId, Vec<(u32, u32)>>,
    checkers: BTreeMap<RangeId, Checker>,
    faults_end: u64,
    end: u64,
    report: MultiReport,
    idle_start: Option<HostStats>,
    trace: Option<Vec<String>>,
}

/// Runs one multi-raft simulation. Deterministic in (`seed`, `opts`).
pub fn run_multi(seed: u64, opts: MultiOptions) -> (Result<MultiReport, Violation>, Vec<String>) {
    let mut sim = MultiSim::new(seed, opts);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run()));
    let trace = sim.trace.take().unwrap_or_default();
    let result = match outcome {
        Ok(Ok(())) => Ok(std::mem::take(&mut sim.report)),
        Ok(Err(v)) => Err(v),
        Err(panic) => Err(format!(
            "panic: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into())
        )),
    };
    (result, trace)
}

impl MultiSim {
    fn new(seed: u64, opts: MultiOptions) -> MultiSim {
        let mut rng = Rng::new(seed);
        let load_end = opts.warmup_us + opts.load_us;
        let faults_end = if opts.faults { load_end } else { 0 };
        let end = load_end + opts.idle_us;
        let (loss_ppm, dup_ppm, net_delay_max) = if opts.faults {
            (
                rng.range(0, 20_000) as u32,
                rng.range(0, 20_000) as u32,
                rng.range(400, 20_000),
            )
        } else {
            (0, 0, NET_DELAY_US.1)
        };
        let mut sim = MultiSim {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            shards: Vec::new(),
            cut: BTreeSet::new(),
            loss_ppm,
            dup_ppm,
            net_delay_max,
            clients: Vec::new(),
            loading: false,
            acked: BTreeMap::new(),
            checkers: BTreeMap::new(),
            faults_end,
            end,
            report: MultiReport::default(),
            idle_start: None,
            trace: opts.trace.then(Vec::new),
            rng,
            opts,
        };
        let voters: Vec<NodeId> = (1..=sim.opts.nodes).collect();
        if sim.opts.checks {
            for range in 1..=sim.opts.groups {
                sim.checkers.insert(range, Checker::new(voters.clone()));
            }
        }
        for id in 1..=sim.opts.nodes {
            let skew = if sim.opts.faults { 10 } else { 2 };
            let pct = sim.rng.range(100 - skew, 100 + skew);
            let clock_offset = sim.rng.range(0, CLOCK_OFFSET_MAX_US);
            sim.shards.push(Shard {
                id,
                up: false,
                epoch: 0,
                host: None,
                store: MemLogStore::default(),
                apps: BTreeMap::new(),
                pass_scheduled: false,
                fsync_inflight: false,
                last_pass: 0,
                tick_period: TICK_US * pct / 100,
                clock_offset,
            });
            sim.restart(id).expect("a fresh shard starts");
        }
        for i in 0..sim.opts.clients {
            sim.clients.push(Client {
                id: i as u32 + 1,
                outstanding: None,
                seqs: BTreeMap::new(),
                hints: BTreeMap::new(),
            });
            let at = sim.opts.warmup_us + sim.rng.range(0, 1_000);
            sim.schedule(at, Event::Client(i));
        }
        sim.schedule(sim.opts.warmup_us, Event::LoadEnd);
        if sim.opts.faults {
            let at = sim.rng.range(1, 2_000_000);
            sim.schedule(at, Event::Fault);
            sim.schedule(faults_end, Event::EndFaults);
        }
        sim
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>10} {}", self.now, line()));
        }
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            time: self.now + delay,
            seq: self.seq,
            event,
        });
    }

    fn shard(&mut self, id: NodeId) -> &mut Shard {
        &mut self.shards[(id - 1) as usize]
    }

    fn clock(&self, id: NodeId) -> u64 {
        self.now + self.shards[(id - 1) as usize].clock_offset
    }

    /// A shard's host with its clock set, if the shard is up.
    fn host(&mut self, id: NodeId) -> Option<&mut MultiRaft> {
        let clock = self.clock(id);
        let host = self.shard(id).host.as_mut()?;
        host.set_clock(clock);
        Some(host)
    }

    fn run(&mut self) -> Result<(), Violation> {
        while let Some(s) = self.queue.pop() {
            if s.time > self.end {
                break;
            }
            self.now = s.time;
            self.report.events += 1;
            if self.report.events > EVENTS_MAX {
                return Err(format!("runaway: more than {EVENTS_MAX} events"));
            }
            self.handle(s.event)?;
            if self.opts.checks && self.report.events.is_multiple_of(DURABILITY_CHECK_EVENTS) {
                self.check_durability()?;
            }
        }
        self.finish()
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick { node, epoch } => self.tick(node, epoch),
            Event::Deliver(b) => self.deliver(b),
            Event::Pass { node, epoch } => self.pass(node, epoch),
            Event::DiskDone { node, epoch } => self.disk_done(node, epoch),
            Event::Client(c) => self.client(c),
            Event::Fault => {
                if self.now < self.faults_end {
                    self.fault();
                    let delay = self.rng.range(200_000, 3_000_000);
                    self.schedule(delay, Event::Fault);
                }
                Ok(())
            }
            Event::Restart(id) => self.restart(id),
            Event::EndFaults => {
                self.log(|| "faults end: heal, restart all, no loss".into());
                self.cut.clear();
                self.loss_ppm = 0;
                self.dup_ppm = 0;
                for id in 1..=self.opts.nodes {
                    self.restart(id)?;
                }
                Ok(())
            }
            Event::LoadEnd => {
                if !self.loading && self.now < self.opts.warmup_us + self.opts.load_us {
                    self.loading = true;
                    self.schedule(self.opts.load_us, Event::LoadEnd);
                } else {
                    self.loading = false;
                    self.idle_start = Some(self.host_stats());
                }
                Ok(())
            }
        }
    }

    fn tick(&mut self, id: NodeId, epoch: u64) -> Result<(), Violation> {
        let s = self.shard(id);
        if s.epoch != epoch || !s.up {
            return Ok(());
        }
        let period = s.tick_period;
        self.host(id).expect("up").tick();
        self.schedule(period, Event::Tick { node: id, epoch });
        self.schedule_pass(id);
        Ok(())
    }

    fn schedule_pass(&mut self, id: NodeId) {
        let s = self.shard(id);
        if s.up && !s.pass_scheduled {
            s.pass_scheduled = true;
            let epoch = s.epoch;
            self.schedule(PASS_DELAY_US, Event::Pass { node: id, epoch });
        }
    }

    // ----- network -----------------------------------------------------------

    fn send(&mut self, batches: Vec<Batch>) {
        for b in batches {
            if self.rng.chance(self.loss_ppm) {
                continue;
            }
            let copies = if self.rng.chance(self.dup_ppm) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = self.rng.range(NET_DELAY_US.0, self.net_delay_max);
                self.schedule(delay, Event::Deliver(b.clone()));
            }
        }
    }

    fn deliver(&mut self, b: Batch) -> Result<(), Violation> {
        let to = b.to;
        if self.cut.contains(&(b.from, to)) || !self.shard(to).up {
            return Ok(());
        }
        let unknown = self
            .host(to)
            .expect("up")
            .receive(b)
            .map_err(|e| format!("n{to} refused a batch: {e:?}"))?;
        if !unknown.is_empty() {
            return Err(format!("n{to} got messages for unknown ranges {unknown:?}"));
        }
        self.schedule_pass(to);
        Ok(())
    }

    // ----- passes and the disk -------------------------------------------------

    fn pass(&mut self, id: NodeId, epoch: u64) -> Result<(), Violation> {
        let s = self.shard(id);
        if s.epoch != epoch || !s.up {
            return Ok(());
        }
        s.pass_scheduled = false;
        while self.host(id).expect("up").has_ready() {
            let pass = self
                .host(id)
                .expect("up")
                .ready()
                .map_err(|e| format!("n{id} pass refused: {e:?}"))?;
            self.check_pass(id, &pass)?;
            let Pass {
                number,
                log,
                batches,
                applies,
                ..
            } = pass;
            self.send(batches);
            let s = self.shard(id);
            s.last_pass = number;
            if !log.is_empty() {
                s.store.append(&log).expect("in-memory append");
                if !s.fsync_inflight {
                    s.fsync_inflight = true;
                    let epoch = s.epoch;
                    let delay = self.rng.range(FSYNC_US.0, FSYNC_US.1);
                    self.schedule(delay, Event::DiskDone { node: id, epoch });
                }
            } else if !s.fsync_inflight {
                let out = self.host(id).expect("up").on_persisted(number);
                self.send(out);
            }
            for a in applies {
                self.apply(id, a)?;
            }
        }
        Ok(())
    }

    /// The sync finished: everything appended so far is durable, which
    /// covers every pass handed out (their records were appended then).
    fn disk_done(&mut self, id: NodeId, epoch: u64) -> Result<(), Violation> {
        let s = self.shard(id);
        if s.epoch != epoch || !s.up {
            return Ok(());
        }
        s.store.sync().expect("in-memory sync");
        s.fsync_inflight = false;
        let last = s.last_pass;
        let out = self.host(id).expect("up").on_persisted(last);
        self.send(out);
        self.schedule_pass(id);
        Ok(())
    }

    fn apply(&mut self, id: NodeId, a: Apply) -> Result<(), Violation> {
        let range = a.range;
        if let Some(snap) = &a.snapshot {
            let app = App::decode(&snap.data);
            let ra = self.shard(id).apps.entry(range).or_default();
            ra.app = app;
            ra.applied = snap.meta.index;
        }
        for e in a.committed_entries {
            if let Some(c) = self.checkers.get_mut(&range) {
                c.on_applied(id, &e)?;
            }
            let ra = self.shard(id).apps.entry(range).or_default();
            assert_eq!(e.index, ra.applied + 1, "applied out of order");
            ra.applied = e.index;
            if e.kind != EntryKind::Normal {
                continue;
            }
            ra.app.apply(&e.data);
            let (client, seq) = decode_op(&e.data).expect("op");
            self.maybe_ack(id, range, e.index, client, seq);
        }
        self.maybe_compact(id, range);
        Ok(())
    }

    fn maybe_ack(&mut self, id: NodeId, range: RangeId, index: Index, client: u32, seq: u32) {
        let c = (client - 1) as usize;
        let Some(o) = &self.clients.get(c).and_then(|c| c.outstanding.as_ref()) else {
            return;
        };
        if (o.node, o.range, o.index) != (id, range, index) {
            return;
        }
        let acked_op = o.seq == seq;
        let issued = o.issued;
        let now = self.now;
        let cl = &mut self.clients[c];
        cl.outstanding = None;
        if acked_op {
            *cl.seqs.entry(range).or_insert(1) += 1;
            self.acked.entry(range).or_default().push((client, seq));
            if self.loading {
                self.report.acked += 1;
                self.report.latencies_us.push(now - issued);
            }
        }
        // Closed loop: the next request goes out at once.
        self.schedule(0, Event::Client(c));
    }

    fn maybe_compact(&mut self, id: NodeId, range: RangeId) {
        let every = self.opts.compact_every;
        let ra = self.shard(id).apps.entry(range).or_default();
        if ra.applied < ra.last_compact + every {
            return;
        }
        let data = ra.app.encode();
        let Ok(Some(meta)) = self.host(id).expect("up").compact(range, data.clone()) else {
            return;
        };
        let s = self.shard(id);
        s.apps.entry(range).or_default().last_compact = meta.index;
        s.store
            .compact(range, Snapshot { meta, data })
            .expect("in-memory compaction");
    }

    // ----- clients -----------------------------------------------------------

    fn client(&mut self, c: usize) -> Result<(), Violation> {
        if !self.loading {
            return Ok(());
        }
        if let Some(o) = &self.clients[c].outstanding {
            if self.now < o.deadline {
                return Ok(());
            }
            let range = o.range;
            self.clients[c].hints.remove(&range);
        }
        let range = match &self.clients[c].outstanding {
            Some(o) => o.range, // retry the same op
            None => self.rng.range(1, self.opts.groups),
        };
        let cl = &self.clients[c];
        let seq = *cl.seqs.get(&range).unwrap_or(&1);
        let target = match cl.hints.get(&range) {
            Some(&n) => n,
            None => self.rng.range(1, self.opts.nodes),
        };
        let op = encode_op(cl.id, seq);
        let Some(host) = self.host(target) else {
            self.clients[c].hints.remove(&range);
            self.schedule(TICK_US, Event::Client(c));
            return Ok(());
        };
        match host.propose(range, op) {
            Ok(index) => {
                let (now, deadline) = (self.now, self.now + CLIENT_TIMEOUT_US);
                let issued = self.clients[c]
                    .outstanding
                    .as_ref()
                    .filter(|o| o.range == range && o.seq == seq)
                    .map_or(now, |o| o.issued);
                self.clients[c].outstanding = Some(Outstanding {
                    node: target,
                    range,
                    index,
                    seq,
                    issued,
                    deadline,
                });
                self.clients[c].hints.insert(range, target);
                self.schedule(CLIENT_TIMEOUT_US, Event::Client(c));
                self.schedule_pass(target);
            }
            Err(e) => {
                let hint = match e {
                    HostError::Propose(ProposeError::NotLeader { leader: Some(l) }) => Some(l),
                    _ => None,
                };
                match hint {
                    Some(l) => {
                        self.clients[c].hints.insert(range, l);
                        self.schedule(0, Event::Client(c));
                    }
                    None => {
                        self.clients[c].hints.remove(&range);
                        self.schedule(TICK_US, Event::Client(c));
                    }
                }
                self.schedule_pass(target);
            }
        }
        Ok(())
    }

    // ----- faults --------------------------------------------------------------

    fn fault(&mut self) {
        let n = self.opts.nodes;
        let victim = self.rng.range(1, n);
        match self.rng.below(100) {
            0..=34 => {
                if self.shard(victim).up {
                    self.crash(victim);
                    let delay = self.rng.range(100_000, 3_000_000);
                    self.schedule(delay, Event::Restart(victim));
                }
            }
            35..=69 => {
                self.cut.clear();
                for a in 1..=n {
                    for b in 1..=n {
                        if (a == victim) != (b == victim) {
                            self.cut.insert((a, b));
                        }
                    }
                }
                self.log(|| format!("isolate n{victim}"));
            }
            _ => {
                self.cut.clear();
                self.log(|| "heal".into());
            }
        }
    }

    fn crash(&mut self, id: NodeId) {
        self.report.crashes += 1;
        let pending = self.shard(id).store.unsynced_len() as u64;
        let survive = if self.rng.flip() {
            self.rng.range(0, pending) as usize
        } else {
            0
        };
        let s = self.shard(id);
        s.store.crash(survive);
        s.host = None;
        s.up = false;
        s.epoch += 1;
        s.apps.clear();
        s.pass_scheduled = false;
        s.fsync_inflight = false;
        self.log(|| format!("crash n{id} ({survive} of {pending} unsynced records survive)"));
    }

    fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.shard(id).up {
            return Ok(());
        }
        let voters: Vec<NodeId> = (1..=self.opts.nodes).collect();
        let mut cfg = MultiConfig::new(id);
        cfg.quiesce = self.opts.quiesce;
        let mut host = MultiRaft::new(cfg);
        host.set_clock(self.clock(id));
        let mut apps = BTreeMap::new();
        for range in 1..=self.opts.groups {
            let state: Persisted = self.shard(id).store.load(range).expect("in-memory load");
            let mut c = Config::new(id, voters.clone(), self.rng.next_u64());
            c.group = range;
            c.lease = Some(LeaseConfig {
                election_timeout: u64::from(ELECTION_TICKS_DEFAULT) * TICK_US,
                max_clock_offset: CLOCK_OFFSET_MAX_US,
            });
            let (app, applied) = match &state.snapshot {
                Some(s) => (App::decode(&s.data), s.meta.index),
                None => (App::default(), 0),
            };
            c.applied = applied;
            host.add_group(c, state)
                .map_err(|e| format!("n{id} range {range} cannot start: {e:?}"))?;
            apps.insert(
                range,
                RangeApp {
                    app,
                    applied,
                    last_compact: applied,
                },
            );
            if let Some(ch) = self.checkers.get_mut(&range) {
                ch.on_restart(id);
            }
        }
        let s = self.shard(id);
        s.host = Some(host);
        s.apps = apps;
        s.up = true;
        s.epoch += 1;
        let (epoch, period) = (s.epoch, s.tick_period);
        let first = self.rng.range(1, period);
        self.schedule(first, Event::Tick { node: id, epoch });
        self.schedule_pass(id);
        self.log(|| format!("start n{id}"));
        Ok(())
    }

    // ----- checks ----------------------------------------------------------------

    fn check_pass(&mut self, id: NodeId, pass: &Pass) -> Result<(), Violation> {
        if !self.opts.checks {
            return Ok(());
        }
        let host = self.shards[(id - 1) as usize].host.as_ref().expect("up");
        let mut by_range: BTreeMap<RangeId, Vec<Entry>> = BTreeMap::new();
        for r in &pass.log.records {
            if let LogRecord::Entry { range, entry } = r {
                by_range.entry(*range).or_default().push(entry.clone());
            }
        }
        for (range, entries) in by_range {
            let raft = host.group(range).expect("known range");
            let checker = self.checkers.get_mut(&range).expect("checker");
            checker
                .on_log_entries(raft, &entries)
                .map_err(|v| format!("r{range}: {v}"))?;
        }
        for &range in &pass.touched {
            let raft = host.group(range).expect("known range");
            let checker = self.checkers.get_mut(&range).expect("checker");
            checker
                .on_node(raft)
                .map_err(|v| format!("r{range}: {v}"))?;
        }
        Ok(())
    }

    fn check_durability(&mut self) -> Result<(), Violation> {
        for range in 1..=self.opts.groups {
            let stores: Vec<(NodeId, Persisted)> = self
                .shards
                .iter()
                .map(|s| (s.id, s.store.load(range).expect("in-memory load")))
                .collect();
            let refs: Vec<(NodeId, &Persisted)> = stores.iter().map(|(i, p)| (*i, p)).collect();
            let checker = self.checkers.get_mut(&range).expect("checker");
            checker
                .check_durability(&refs)
                .map_err(|v| format!("r{range}: {v}"))?;
        }
        Ok(())
    }

    fn host_stats(&self) -> HostStats {
        let mut sum = HostStats::default();
        for h in self.shards.iter().filter_map(|s| s.host.as_ref()) {
            let st = h.stats();
            sum.group_ticks += st.group_ticks;
            sum.passes += st.passes;
            sum.batches_sent += st.batches_sent;
            sum.beats_sent += st.beats_sent;
            sum.messages_sent += st.messages_sent;
            sum.liveness_beats += st.liveness_beats;
            sum.woken_by_liveness += st.woken_by_liveness;
            sum.messages_dropped += st.messages_dropped;
        }
        sum
    }

    fn finish(&mut self) -> Result<(), Violation> {
        let end = self.host_stats();
        if let Some(start) = self.idle_start {
            self.report.idle_group_ticks = end.group_ticks - start.group_ticks;
            self.report.idle_beats = end.beats_sent - start.beats_sent;
            self.report.idle_liveness_beats = end.liveness_beats - start.liveness_beats;
        }
        self.report.hosts = end;
        self.report.load_us = self.opts.load_us;
        self.report.syncs = self.shards.iter().map(|s| s.store.syncs).sum();
        if !self.opts.checks {
            return Ok(());
        }
        self.check_durability()?;
        for range in 1..=self.opts.groups {
            self.check_range_converged(range)
                .map_err(|v| format!("r{range}: {v}"))?;
        }
        Ok(())
    }

    fn check_range_converged(&self, range: RangeId) -> Result<(), Violation> {
        let apps: Vec<&RangeApp> = self
            .shards
            .iter()
            .map(|s| {
                s.apps
                    .get(&range)
                    .ok_or(format!("n{} is down at the end", s.id))
            })
            .collect::<Result<_, _>>()?;
        let reference = &apps[0].app;
        for (i, a) in apps.iter().enumerate() {
            if a.app != *reference {
                return Err(format!(
                    "no convergence: n{} applied {} ops, n1 applied {}",
                    i + 1,
                    a.app.list.len(),
                    reference.list.len()
                ));
            }
        }
        for &(c, s) in self.acked.get(&range).into_iter().flatten() {
            if !reference.contains(c, s) {
                return Err(format!("lost acknowledged append {c}:{s}"));
            }
        }
        Ok(())
    }
}
