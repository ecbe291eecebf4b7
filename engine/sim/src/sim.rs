//! The discrete-event simulation: nodes, simulated network and disks, clients.
//!
//! Each node hosts one replica of every Raft group (like a shard hosting many
//! ranges). A node has one disk: one fsync covers the queued writes of all its
//! groups (group commit), and a crash takes down all its replicas at once.
//! Nodes after the founders start outside every group (an empty
//! configuration) until membership churn adds them; removed replicas keep
//! running, as zombies that must not disturb the group.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use teller_raft::{
    ConfChange, Config, Entry, EntryKind, HardState, Index, LeaseConfig, Message, MessageKind,
    NodeId, Persisted, ProposeError, RawNode, ReadPath, Ready, Role, Snapshot, Term,
    ELECTION_TICKS_DEFAULT,
};

use crate::app::{decode_op, encode_op, App};
use crate::checker::{Checker, Violation};
use crate::profile::{Knobs, Profile, TICK_UNITS};
use crate::rng::Rng;
use crate::{RunOptions, Stats};

/// Events between durability checks (each walks recent committed entries).
const DURABILITY_CHECK_EVENTS: u64 = 64;
/// Most events one run may process: a runaway run is a failure, not a hang.
const EVENTS_MAX: u64 = 10_000_000;
/// Membership churn never grows a group beyond this many voters.
const CHURN_VOTERS_MAX: usize = 5;
/// With `RunOptions::clock_offset_violation`, clock offsets reach this many
/// election timeouts, far beyond any configured bound.
const VIOLATION_OFFSET_ELECTIONS: u64 = 20;

type Group = usize;

#[derive(Debug)]
enum Event {
    Tick { node: NodeId, epoch: u64 },
    Deliver(Message),
    DiskDone { node: NodeId, epoch: u64 },
    Client(usize),
    Fault,
    Restart(NodeId),
    Crash { node: NodeId, epoch: u64 },
    EndFaults,
    Transfer,
    Churn,
    ClockJump,
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
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// One `Ready`'s durable writes and the messages waiting on them.
struct DiskJob {
    group: Group,
    number: u64,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    messages: Vec<Message>,
}

#[derive(Clone, Copy)]
struct PendingRead {
    index: Index,
    /// Appends of this group acknowledged before the read was issued.
    acked_before: usize,
    /// Longest list any read of this group returned before this one was
    /// issued: a linearizable read returns at least as much.
    min_len: usize,
}

/// One group's replica on one node.
struct Replica {
    raft: Option<RawNode>,
    durable: Persisted,
    app: App,
    applied: Index,
    last_compact: Index,
    reads: Vec<PendingRead>,
    traced: Option<(Role, Term)>,
    traced_commit: Index,
}

struct SimNode {
    id: NodeId,
    up: bool,
    epoch: u64,
    disk: VecDeque<DiskJob>,
    /// Jobs at the front of `disk` covered by the fsync in flight.
    disk_busy: usize,
    tick_period: u64,
    /// This node's clock reads `now + clock_offset`.
    clock_offset: u64,
    replicas: Vec<Replica>,
}

struct Outstanding {
    node: NodeId,
    index: Index,
    deadline: u64,
}

struct Client {
    id: u32,
    group: Group,
    /// Seq of the op being appended (acknowledged ops have lower seqs).
    seq: u32,
    outstanding: Option<Outstanding>,
    leader_hint: Option<NodeId>,
    reads_issued: u64,
}

pub struct Sim {
    rng: Rng,
    knobs: Knobs,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    nodes: Vec<SimNode>,
    cut: BTreeSet<(NodeId, NodeId)>,
    clients: Vec<Client>,
    /// Per group: acknowledged appends, in acknowledgement order.
    acked: Vec<Vec<(u32, u32)>>,
    /// Outstanding ReadIndex reads by (group, ctx).
    reads_in_flight: BTreeMap<(Group, Vec<u8>), PendingRead>,
    /// Per group: the longest list any served read returned.
    read_len_max: Vec<usize>,
    /// Clock offsets are drawn from `[0, clock_offset_bound]`: the
    /// configured maximum, or far beyond it in a violating run.
    clock_offset_bound: u64,
    checkers: Vec<Checker>,
    pub stats: Stats,
    pub trace: Option<Vec<String>>,
}

impl Sim {
    pub fn new(seed: u64, profile: Profile, opts: &RunOptions) -> Sim {
        let mut rng = Rng::new(seed);
        let mut knobs = Knobs::draw(profile, opts.fault_phase_ticks, &mut rng);
        let election_units = u64::from(ELECTION_TICKS_DEFAULT) * TICK_UNITS;
        let clock_offset_bound = if opts.clock_offset_violation {
            knobs.lease = true;
            knobs.clock_jump_interval = knobs.clock_jump_interval.clamp(1, 50 * TICK_UNITS);
            VIOLATION_OFFSET_ELECTIONS * election_units
        } else {
            knobs.clock_offset_max
        };
        let groups = knobs.groups;
        let knobs_nodes = knobs.nodes;
        let mut sim = Sim {
            knobs,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            cut: BTreeSet::new(),
            clients: Vec::new(),
            acked: vec![Vec::new(); groups],
            reads_in_flight: BTreeMap::new(),
            read_len_max: vec![0; groups],
            clock_offset_bound,
            checkers: (0..groups)
                .map(|_| Checker::new((1..=knobs_nodes).collect()))
                .collect(),
            stats: Stats::default(),
            trace: opts.trace.then(Vec::new),
            rng,
        };
        let line = format!(
            "seed {seed} profile {} knobs {:?}",
            profile.name(),
            sim.knobs
        );
        sim.log(line);
        for id in 1..=sim.knobs.total_nodes() {
            let skew = sim.knobs.tick_skew_pct;
            let pct = sim.rng.range(100 - skew, 100 + skew);
            let clock_offset = sim.rng.range(0, sim.clock_offset_bound);
            let replicas = (0..groups)
                .map(|_| Replica {
                    raft: None,
                    durable: Persisted::default(),
                    app: App::default(),
                    applied: 0,
                    last_compact: 0,
                    reads: Vec::new(),
                    traced: None,
                    traced_commit: 0,
                })
                .collect();
            sim.nodes.push(SimNode {
                id,
                up: false,
                epoch: 0,
                disk: VecDeque::new(),
                disk_busy: 0,
                tick_period: (TICK_UNITS * pct / 100).max(1),
                clock_offset,
                replicas,
            });
            sim.restart(id).expect("fresh node starts");
        }
        for i in 0..sim.knobs.clients {
            sim.clients.push(Client {
                id: i as u32 + 1,
                group: i % groups,
                seq: 1,
                outstanding: None,
                leader_hint: None,
                reads_issued: 0,
            });
            let at = sim.rng.range(1, sim.knobs.client_interval);
            sim.schedule(at, Event::Client(i));
        }
        let at = sim.knobs.transfer_interval;
        sim.schedule(at, Event::Transfer);
        if sim.knobs.fault_interval > 0 {
            let at = sim.rng.range(1, sim.knobs.fault_interval);
            sim.schedule(at, Event::Fault);
            sim.schedule(sim.knobs.faults_end, Event::EndFaults);
        }
        if sim.knobs.churn_interval > 0 {
            let at = sim.rng.range(1, sim.knobs.churn_interval);
            sim.schedule(at, Event::Churn);
        }
        if sim.knobs.clock_jump_interval > 0 {
            let at = sim.rng.range(1, sim.knobs.clock_jump_interval);
            sim.schedule(at, Event::ClockJump);
        }
        sim.stats.nodes = sim.knobs.total_nodes();
        sim.stats.groups = groups as u64;
        sim
    }

    fn log(&mut self, line: String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>7} {line}", self.now));
        }
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        let time = self.now + delay;
        self.queue.push(Scheduled {
            time,
            seq: self.seq,
            event,
        });
    }

    fn node(&mut self, id: NodeId) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
    }

    fn replica(&mut self, id: NodeId, g: Group) -> &mut Replica {
        &mut self.nodes[(id - 1) as usize].replicas[g]
    }

    /// A replica's Raft node, with its clock set to the node's clock now
    /// (every input to a node goes through here or sets the clock itself).
    fn raft(&mut self, id: NodeId, g: Group) -> Option<&mut RawNode> {
        let clock = self.clock(id);
        let raft = self.replica(id, g).raft.as_mut()?;
        raft.set_clock(clock);
        Some(raft)
    }

    /// Node `id`'s clock reading: simulated time plus its current offset.
    fn clock(&self, id: NodeId) -> u64 {
        self.now + self.nodes[(id - 1) as usize].clock_offset
    }

    /// The node currently leading group `g`, if any (the highest term wins).
    fn leader_of(&self, g: Group) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|n| n.replicas[g].raft.as_ref())
            .filter(|r| r.role() == Role::Leader)
            .max_by_key(|r| r.term())
            .map(|r| r.id())
    }

    /// Runs to the end. Returns the first violated invariant.
    pub fn run(&mut self) -> Result<(), Violation> {
        while let Some(s) = self.queue.pop() {
            if s.time > self.knobs.end {
                break;
            }
            self.now = s.time;
            self.stats.events += 1;
            if self.stats.events > EVENTS_MAX {
                return Err(format!("runaway: more than {EVENTS_MAX} events"));
            }
            self.handle(s.event)?;
            if self.stats.events.is_multiple_of(DURABILITY_CHECK_EVENTS) {
                self.check_durability()?;
            }
        }
        self.final_checks()
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick { node, epoch } => self.tick(node, epoch),
            Event::Deliver(m) => self.deliver(m),
            Event::DiskDone { node, epoch } => self.disk_done(node, epoch),
            Event::Client(c) => self.client(c),
            Event::Fault => {
                self.fault();
                let i = self.knobs.fault_interval;
                let delay = self.rng.range(i / 2, i * 3 / 2);
                self.schedule(delay, Event::Fault);
                Ok(())
            }
            Event::Restart(id) => self.restart(id),
            Event::Crash { node, epoch } => {
                let n = self.node(node);
                if n.epoch == epoch && n.up && self.now < self.knobs.faults_end {
                    self.crash(node);
                    // A supervisor restarts the process at once: the node is
                    // back while the messages it sent are still in flight.
                    let delay = self.rng.range(1, 2 * TICK_UNITS);
                    self.schedule(delay, Event::Restart(node));
                }
                Ok(())
            }
            Event::Transfer => {
                if self.now < self.knobs.clients_end {
                    let i = self.knobs.transfer_interval;
                    let delay = self.rng.range(i / 2, i * 3 / 2);
                    self.schedule(delay, Event::Transfer);
                }
                self.transfer()
            }
            Event::ClockJump => {
                if self.now < self.knobs.faults_end {
                    let i = self.knobs.clock_jump_interval;
                    let delay = self.rng.range(i / 2, i * 3 / 2);
                    self.schedule(delay, Event::ClockJump);
                    self.clock_jump();
                }
                Ok(())
            }
            Event::Churn => {
                if self.now < self.knobs.faults_end {
                    let i = self.knobs.churn_interval;
                    let delay = self.rng.range(i / 2, i * 3 / 2);
                    self.schedule(delay, Event::Churn);
                    self.churn()?;
                }
                Ok(())
            }
            Event::EndFaults => {
                self.log("faults end: heal, restart all, no loss".into());
                self.queue.retain(|s| {
                    !matches!(
                        s.event,
                        Event::Fault | Event::Restart(_) | Event::Crash { .. }
                    )
                });
                self.cut.clear();
                self.knobs.loss_ppm = 0;
                self.knobs.dup_ppm = 0;
                for id in 1..=self.knobs.total_nodes() {
                    self.restart(id)?;
                }
                Ok(())
            }
        }
    }

    fn tick(&mut self, id: NodeId, epoch: u64) -> Result<(), Violation> {
        let n = self.node(id);
        if n.epoch != epoch || !n.up {
            return Ok(());
        }
        let period = n.tick_period;
        for g in 0..self.knobs.groups {
            self.raft(id, g).expect("up").tick();
            self.drive(id, g)?;
        }
        let jitter = self.knobs.tick_jitter;
        let delay = period
            + if jitter > 0 {
                self.rng.below(jitter + 1)
            } else {
                0
            };
        self.schedule(delay, Event::Tick { node: id, epoch });
        Ok(())
    }

    // ----- network -----------------------------------------------------------

    fn send(&mut self, m: Message) {
        if self.rng.chance(self.knobs.loss_ppm) {
            self.stats.dropped += 1;
            self.log(format!("g{} lose {m}", m.group));
            return;
        }
        let copies = if self.rng.chance(self.knobs.dup_ppm) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.range(1, self.knobs.delay_max);
            self.schedule(delay, Event::Deliver(m.clone()));
        }
    }

    fn deliver(&mut self, m: Message) -> Result<(), Violation> {
        let (to, g) = (m.to, m.group as Group);
        if self.cut.contains(&(m.from, to)) || !self.node(to).up {
            self.stats.dropped += 1;
            self.log(format!("g{g} drop {m}"));
            return Ok(());
        }
        self.stats.delivered += 1;
        if matches!(m.kind, MessageKind::InstallSnapshot { .. }) {
            self.stats.snapshots_sent += 1;
        }
        self.log(format!("g{g} recv {m}"));
        let raft = self.raft(to, g).expect("up");
        raft.step(m)
            .map_err(|e| format!("step refused a message: {e:?}"))?;
        self.drive(to, g)
    }

    // ----- replica driver ----------------------------------------------------

    /// Drains a replica's readies: send, queue disk writes, apply.
    fn drive(&mut self, id: NodeId, g: Group) -> Result<(), Violation> {
        loop {
            let Some(raft) = self.raft(id, g) else {
                return Ok(());
            };
            if !raft.has_ready() {
                break;
            }
            let rd = raft.ready();
            let raft = self.nodes[(id - 1) as usize].replicas[g]
                .raft
                .as_ref()
                .expect("up");
            self.checkers[g].on_log_entries(raft, &rd.entries)?;
            self.handle_ready(id, g, rd)?;
        }
        let raft = self.nodes[(id - 1) as usize].replicas[g]
            .raft
            .as_ref()
            .expect("up");
        let state = (raft.role(), raft.term());
        self.stats.max_term = self.stats.max_term.max(state.1);
        // Checked before compaction, so every newly committed entry is
        // still in the log where the checker first sees it.
        self.checkers[g].on_node(raft)?;
        self.check_leases(g)?;
        self.compact(id, g);
        if self.replica(id, g).traced != Some(state) {
            self.replica(id, g).traced = Some(state);
            self.log(format!("g{g} n{id} is {:?} in term {}", state.0, state.1));
        }
        if self.trace.is_some() {
            let commit = raft_commit(&self.nodes[(id - 1) as usize].replicas[g]);
            let r = self.replica(id, g);
            if r.traced_commit != commit {
                r.traced_commit = commit;
                self.log(format!("g{g} n{id} commit {commit}"));
            }
        }
        Ok(())
    }

    fn handle_ready(&mut self, id: NodeId, g: Group, rd: Ready) -> Result<(), Violation> {
        let Ready {
            number,
            hard_state,
            snapshot,
            entries,
            messages,
            persisted_messages,
            committed_entries,
            read_states,
        } = rd;
        for m in messages {
            self.send(m);
        }
        if let Some(s) = &snapshot {
            self.log(format!(
                "g{g} n{id} installs snapshot {}@{}",
                s.meta.index, s.meta.term
            ));
            let r = self.replica(id, g);
            r.app = App::decode(&s.data);
            r.applied = s.meta.index;
        }
        let vouches = persisted_messages.iter().any(|m| {
            matches!(
                m.kind,
                MessageKind::VoteResponse { granted: true, .. }
                    | MessageKind::AppendResponse { reject: false, .. }
            )
        });
        if vouches && self.rng.chance(self.knobs.buggify_crash_ppm) {
            let epoch = self.node(id).epoch;
            let delay = self.rng.range(0, self.knobs.disk_delay_max);
            self.schedule(delay, Event::Crash { node: id, epoch });
        }
        let job = DiskJob {
            group: g,
            number,
            snapshot,
            entries,
            hard_state,
            messages: persisted_messages,
        };
        let n = self.node(id);
        n.disk.push_back(job);
        if n.disk_busy == 0 {
            self.start_fsync(id);
        }
        for e in committed_entries {
            self.apply(id, g, e)?;
        }
        for rs in read_states {
            let Some(mut read) = self.reads_in_flight.remove(&(g, rs.ctx)) else {
                continue; // a read issued before a crash of this node
            };
            read.index = rs.index;
            self.replica(id, g).reads.push(read);
        }
        self.serve_reads(id, g)
    }

    fn apply(&mut self, id: NodeId, g: Group, e: Entry) -> Result<(), Violation> {
        self.checkers[g].on_applied(id, &e)?;
        let r = self.replica(id, g);
        assert_eq!(e.index, r.applied + 1, "applied out of order");
        r.applied = e.index;
        if e.kind != EntryKind::Normal {
            return Ok(());
        }
        r.app.apply(&e.data);
        let (client, seq) = decode_op(&e.data).expect("op");
        for c in self.clients.iter_mut().filter(|c| c.group == g) {
            let Some(o) = &c.outstanding else { continue };
            if o.node != id || o.index != e.index {
                continue;
            }
            if c.id == client && c.seq == seq {
                self.acked[g].push((client, seq));
                self.stats.acked_appends += 1;
                c.seq += 1;
            }
            c.outstanding = None;
        }
        Ok(())
    }

    fn serve_reads(&mut self, id: NodeId, g: Group) -> Result<(), Violation> {
        let r = &mut self.nodes[(id - 1) as usize].replicas[g];
        let applied = r.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            r.reads.drain(..).partition(|read| read.index <= applied);
        r.reads = waiting;
        for read in ready {
            let app = &self.nodes[(id - 1) as usize].replicas[g].app;
            let acked = &self.acked[g][..read.acked_before];
            if let Some(&(c, s)) = acked.iter().find(|(c, s)| !app.contains(*c, *s)) {
                return Err(format!(
                    "stale read in g{g} on n{id} at index {}: misses acknowledged append {c}:{s}",
                    read.index
                ));
            }
            let len = app.list.len();
            if len < read.min_len {
                return Err(format!(
                    "stale read in g{g} on n{id} at index {}: returns {len} items, an earlier read returned {}",
                    read.index, read.min_len
                ));
            }
            self.read_len_max[g] = self.read_len_max[g].max(len);
            self.stats.reads_served += 1;
        }
        Ok(())
    }

    fn compact(&mut self, id: NodeId, g: Group) {
        let every = self.knobs.compact_every;
        let r = self.replica(id, g);
        if r.applied < r.last_compact + every {
            return;
        }
        let data = r.app.encode();
        let raft = r.raft.as_mut().expect("up");
        let Some(meta) = raft.compact(data.clone()) else {
            return;
        };
        r.last_compact = meta.index;
        r.durable.compact(Snapshot { meta, data });
    }

    // ----- disk --------------------------------------------------------------

    fn start_fsync(&mut self, id: NodeId) {
        let n = self.node(id);
        assert_eq!(n.disk_busy, 0);
        n.disk_busy = n.disk.len();
        let epoch = n.epoch;
        let delay = self.rng.range(1, self.knobs.disk_delay_max);
        self.schedule(delay, Event::DiskDone { node: id, epoch });
    }

    /// One fsync finished: every job it covered, across groups, is durable.
    fn disk_done(&mut self, id: NodeId, epoch: u64) -> Result<(), Violation> {
        let clock = self.clock(id);
        let n = self.node(id);
        if n.epoch != epoch || !n.up {
            return Ok(());
        }
        let jobs: Vec<DiskJob> = n.disk.drain(..n.disk_busy).collect();
        n.disk_busy = 0;
        let mut last: BTreeMap<Group, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for job in jobs {
            n.replicas[job.group].durable.write(
                job.snapshot.as_ref(),
                &job.entries,
                job.hard_state,
            );
            last.insert(job.group, job.number);
            out.extend(job.messages);
        }
        for (&g, &number) in &last {
            let raft = n.replicas[g].raft.as_mut().expect("up");
            raft.set_clock(clock);
            raft.on_persisted(number);
        }
        if !n.disk.is_empty() {
            self.start_fsync(id);
        }
        for m in out {
            self.send(m);
        }
        for &g in last.keys() {
            self.drive(id, g)?;
        }
        Ok(())
    }

    // ----- faults ------------------------------------------------------------

    fn fault(&mut self) {
        let nodes = self.knobs.total_nodes();
        // Faults aimed at a leader shake out the interesting cases:
        // uncommitted suffixes, competing terms, lost acknowledgements.
        let g = self.rng.below(self.knobs.groups as u64) as Group;
        let victim = match self.leader_of(g) {
            Some(l) if self.rng.flip() => l,
            _ => self.rng.range(1, nodes),
        };
        match self.rng.below(100) {
            0..=29 => {
                if self.node(victim).up {
                    self.crash(victim);
                    let delay = self.rng.range(5, 100) * TICK_UNITS;
                    self.schedule(delay, Event::Restart(victim));
                }
            }
            30..=54 => {
                self.cut.clear();
                let mut side: Vec<bool> = (0..nodes).map(|_| self.rng.flip()).collect();
                if self.rng.flip() {
                    // Isolate the victim (often a leader) alone.
                    side = (1..=nodes).map(|id| id == victim).collect();
                }
                for a in 1..=nodes {
                    for b in 1..=nodes {
                        if side[(a - 1) as usize] != side[(b - 1) as usize] {
                            self.cut.insert((a, b));
                        }
                    }
                }
                self.stats.partitions += 1;
                self.log(format!("partition {side:?}"));
            }
            55..=69 => {
                self.cut.clear();
                for a in 1..=nodes {
                    for b in 1..=nodes {
                        if a != b && self.rng.below(100) < 30 {
                            self.cut.insert((a, b));
                        }
                    }
                }
                self.stats.partitions += 1;
                self.log(format!("asymmetric cut {:?}", self.cut));
            }
            _ => {
                self.cut.clear();
                self.log("heal".into());
            }
        }
    }

    /// Asks the leader of a random group to hand over to a random voter.
    fn transfer(&mut self) -> Result<(), Violation> {
        let g = self.rng.below(self.knobs.groups as u64) as Group;
        let Some(id) = self.leader_of(g) else {
            return Ok(());
        };
        let target = self.rng.range(1, self.knobs.total_nodes());
        let outcome = self.raft(id, g).expect("up").transfer_leader(target);
        self.log(format!("g{g} transfer n{id} -> n{target}: {outcome:?}"));
        self.stats.transfers += u64::from(outcome.is_ok());
        self.drive(id, g)
    }

    /// A random node's clock jumps, forwards or backwards, to a new offset
    /// within the bound (the node's Raft clock never goes backwards: it
    /// stalls until it catches up). Aimed at a leader half the time.
    fn clock_jump(&mut self) {
        let g = self.rng.below(self.knobs.groups as u64) as Group;
        let id = match self.leader_of(g) {
            Some(l) if self.rng.flip() => l,
            _ => self.rng.range(1, self.knobs.total_nodes()),
        };
        let offset = self.rng.range(0, self.clock_offset_bound);
        let old = std::mem::replace(&mut self.node(id).clock_offset, offset);
        self.stats.clock_jumps += 1;
        self.log(format!("clock of n{id} jumps: offset {old} -> {offset}"));
    }

    /// Asks the leader of a random group for a random membership change:
    /// add or remove a learner or voter, promote a learner, or swap a voter
    /// for an outsider (two voter changes in one joint step). Refusals
    /// (a change in progress, a learner behind) are part of the test.
    fn churn(&mut self) -> Result<(), Violation> {
        let g = self.rng.below(self.knobs.groups as u64) as Group;
        let Some(id) = self.leader_of(g) else {
            return Ok(());
        };
        let m = self.raft(id, g).expect("up").membership().clone();
        let outsiders: Vec<NodeId> = (1..=self.knobs.total_nodes())
            .filter(|&n| !m.is_member(n))
            .collect();
        let outsider = self.pick(&outsiders);
        let learner = self.pick(&m.learners);
        let voter = self.pick(&m.voters);
        let room = m.voters.len() < CHURN_VOTERS_MAX;
        let changes = match self.rng.below(6) {
            0 => outsider.map(ConfChange::AddLearner).into_iter().collect(),
            1 => learner
                .map(ConfChange::PromoteLearner)
                .into_iter()
                .collect(),
            2 if room => outsider.map(ConfChange::AddVoter).into_iter().collect(),
            3 if m.voters.len() > 1 => voter.map(ConfChange::RemoveVoter).into_iter().collect(),
            4 => learner.map(ConfChange::RemoveLearner).into_iter().collect(),
            _ => match (outsider, voter) {
                (Some(o), Some(v)) => vec![ConfChange::AddVoter(o), ConfChange::RemoveVoter(v)],
                _ => Vec::new(),
            },
        };
        if changes.is_empty() {
            return Ok(());
        }
        let outcome = self.raft(id, g).expect("up").propose_conf_change(&changes);
        self.log(format!(
            "g{g} conf change at n{id} {changes:?}: {outcome:?}"
        ));
        self.stats.conf_changes += u64::from(outcome.is_ok());
        self.drive(id, g)
    }

    fn pick(&mut self, ids: &[NodeId]) -> Option<NodeId> {
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.rng.below(ids.len() as u64) as usize])
    }

    fn crash(&mut self, id: NodeId) {
        self.stats.crashes += 1;
        // Half the time, a random prefix of the unacknowledged writes reached
        // the disk before the crash (the fsync finished, its ack did not).
        let pending = self.node(id).disk.len() as u64;
        let torn_inside = self.rng.flip();
        let survive = if self.rng.flip() {
            self.rng.range(0, pending) as usize
        } else {
            0
        };
        let n = self.node(id);
        let jobs: Vec<DiskJob> = n.disk.drain(..).collect();
        for job in jobs.iter().take(survive) {
            n.replicas[job.group].durable.write(
                job.snapshot.as_ref(),
                &job.entries,
                job.hard_state,
            );
        }
        // The next write may be torn inside: snapshot and entries reached
        // the disk, its hard state did not.
        if let Some(job) = jobs.get(survive).filter(|_| torn_inside) {
            n.replicas[job.group]
                .durable
                .write(job.snapshot.as_ref(), &job.entries, None);
        }
        n.disk_busy = 0;
        n.up = false;
        n.epoch += 1;
        for r in &mut n.replicas {
            r.raft = None;
            r.reads.clear();
            r.traced = None;
        }
        let total = jobs.len();
        self.log(format!(
            "crash n{id} ({survive} of {total} unacknowledged writes survive)"
        ));
    }

    fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.node(id).up {
            return Ok(());
        }
        for g in 0..self.knobs.groups {
            // Founders bootstrap with the initial voters; spares join empty.
            let voters = if id <= self.knobs.nodes {
                (1..=self.knobs.nodes).collect()
            } else {
                Vec::new()
            };
            let mut cfg = Config::new(id, voters, self.rng.next_u64());
            cfg.group = g as u64;
            cfg.pre_vote = self.knobs.pre_vote;
            cfg.check_quorum = self.knobs.check_quorum;
            cfg.inflight_appends_max = self.knobs.inflight_max;
            cfg.append_entries_max = self.knobs.append_entries_max;
            cfg.lease = self.knobs.lease.then_some(LeaseConfig {
                election_timeout: u64::from(ELECTION_TICKS_DEFAULT) * TICK_UNITS,
                max_clock_offset: self.knobs.clock_offset_max,
            });
            let clock = self.clock(id);
            let r = self.replica(id, g);
            let (app, applied) = match &r.durable.snapshot {
                Some(s) => (App::decode(&s.data), s.meta.index),
                None => (App::default(), 0),
            };
            cfg.applied = applied;
            let mut raft = RawNode::new(cfg, r.durable.clone())
                .map_err(|e| format!("g{g} n{id} cannot restart: {e:?}"))?;
            raft.set_clock(clock);
            r.raft = Some(raft);
            r.app = app;
            r.applied = applied;
            r.last_compact = applied;
            self.checkers[g].on_restart(id);
            self.log(format!("g{g} start n{id} from snapshot {applied}"));
        }
        let n = self.node(id);
        n.up = true;
        n.epoch += 1;
        let (epoch, period) = (n.epoch, n.tick_period);
        let first = self.rng.range(1, period);
        self.schedule(first, Event::Tick { node: id, epoch });
        for g in 0..self.knobs.groups {
            self.drive(id, g)?;
        }
        Ok(())
    }

    // ----- clients -----------------------------------------------------------

    fn client(&mut self, c: usize) -> Result<(), Violation> {
        if self.now >= self.knobs.clients_end {
            return Ok(());
        }
        let interval = self.knobs.client_interval;
        self.schedule(interval, Event::Client(c));
        if let Some(o) = &self.clients[c].outstanding {
            if self.now < o.deadline {
                return Ok(());
            }
            self.clients[c].outstanding = None;
            self.clients[c].leader_hint = None;
        }
        let target = match self.clients[c].leader_hint {
            Some(l) => l,
            None => self.rng.range(1, self.knobs.total_nodes()),
        };
        let is_read = self.rng.below(100) < self.knobs.read_pct;
        let (cid, seq, g) = (
            self.clients[c].id,
            self.clients[c].seq,
            self.clients[c].group,
        );
        let ctx = encode_op(cid, self.clients[c].reads_issued as u32);
        let pending = PendingRead {
            index: 0,
            acked_before: self.acked[g].len(),
            min_len: self.read_len_max[g],
        };
        let Some(raft) = self.raft(target, g) else {
            self.clients[c].leader_hint = None;
            return Ok(());
        };
        if is_read {
            match raft.read(ctx.clone()) {
                Ok(ReadPath::Lease { index }) => {
                    self.clients[c].reads_issued += 1;
                    self.stats.lease_reads += 1;
                    let read = PendingRead { index, ..pending };
                    self.replica(target, g).reads.push(read);
                    self.serve_reads(target, g)?;
                }
                Ok(ReadPath::ReadIndex) => {
                    self.clients[c].reads_issued += 1;
                    self.reads_in_flight.insert((g, ctx), pending);
                }
                Err(e) => self.clients[c].leader_hint = hint(e),
            }
            return self.drive(target, g);
        }
        match raft.propose(encode_op(cid, seq)) {
            Ok(index) => {
                self.log(format!(
                    "g{g} client {cid} proposes {cid}:{seq} at n{target} index {index}"
                ));
                let deadline = self.now + self.knobs.client_timeout;
                self.clients[c].outstanding = Some(Outstanding {
                    node: target,
                    index,
                    deadline,
                });
            }
            Err(e) => self.clients[c].leader_hint = hint(e),
        }
        self.drive(target, g)
    }

    // ----- checks ------------------------------------------------------------

    fn check_durability(&mut self) -> Result<(), Violation> {
        for g in 0..self.knobs.groups {
            let stores: Vec<(NodeId, &Persisted)> = self
                .nodes
                .iter()
                .map(|n| (n.id, &n.replicas[g].durable))
                .collect();
            self.checkers[g]
                .check_durability(&stores)
                .map_err(|v| format!("g{g}: {v}"))?;
        }
        Ok(())
    }

    /// The lease invariant itself, checked after every event of a group:
    /// while a replica holds a valid lease by its clock now, no replica
    /// leads a higher term (`node/lease.rs`). Stale reads are the symptom;
    /// this catches the cause even when no client happens to read.
    fn check_leases(&self, g: Group) -> Result<(), Violation> {
        if !self.knobs.lease {
            return Ok(());
        }
        let rafts = || {
            self.nodes
                .iter()
                .filter_map(|n| n.replicas[g].raft.as_ref())
        };
        let Some(top) = rafts()
            .filter(|r| r.role() == Role::Leader)
            .map(|r| r.term())
            .max()
        else {
            return Ok(());
        };
        for r in rafts().filter(|r| r.term() < top) {
            let clock = self.clock(r.id()).max(r.clock());
            if let Some(until) = r.lease_until().filter(|&u| clock < u) {
                return Err(format!(
                    "lease overlap in g{g}: n{} holds a lease of term {} until {until} \
                     (its clock reads {clock}) while term {top} has a leader",
                    r.id(),
                    r.term()
                ));
            }
        }
        Ok(())
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        self.check_durability()?;
        for g in 0..self.knobs.groups {
            self.final_checks_group(g)
                .map_err(|v| format!("g{g}: {v}"))?;
            self.stats.leaders += self.checkers[g].leaders_elected() as u64;
            self.stats.committed += self.checkers[g].committed_count() as u64;
        }
        Ok(())
    }

    /// Every member of the latest committed configuration (voters and
    /// learners) holds the same list; removed replicas may lag behind.
    fn final_checks_group(&mut self, g: Group) -> Result<(), Violation> {
        let members = self.checkers[g].committed_membership().members();
        let first = members[0];
        let reference = self.nodes[(first - 1) as usize].replicas[g].app.clone();
        let reference_applied = self.nodes[(first - 1) as usize].replicas[g].applied;
        for &id in &members {
            let n = &self.nodes[(id - 1) as usize];
            let r = &n.replicas[g];
            if r.raft.is_none() {
                return Err(format!("n{} is down at the end", n.id));
            }
            if r.app != reference {
                return Err(format!(
                    "no convergence: n{} applied {} ops (index {}), n{first} applied {} ops (index {})",
                    n.id,
                    r.app.list.len(),
                    r.applied,
                    reference.list.len(),
                    reference_applied
                ));
            }
        }
        for &(c, s) in &self.acked[g] {
            if !reference.contains(c, s) {
                return Err(format!("lost acknowledged append {c}:{s}"));
            }
        }
        for &(c, s) in &reference.list {
            let client = self.clients.iter().find(|k| k.id == c && k.group == g);
            if client.is_none_or(|k| s > k.seq) {
                return Err(format!("applied op {c}:{s} was never proposed"));
            }
        }
        self.stats.final_len += reference.list.len() as u64;
        Ok(())
    }
}

fn raft_commit(r: &Replica) -> Index {
    r.raft.as_ref().map_or(0, |raft| raft.commit_index())
}

fn hint(e: ProposeError) -> Option<NodeId> {
    match e {
        ProposeError::NotLeader { leader } => leader,
        _ => None,
    }
}
