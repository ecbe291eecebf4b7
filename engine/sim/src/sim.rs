//! The discrete-event simulation: nodes, simulated network and disks, clients.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

use teller_raft::{
    Config, Entry, EntryKind, HardState, Index, Message, MessageKind, NodeId, Persisted,
    ProposeError, RawNode, Ready, Role, Snapshot, SnapshotMeta, Term,
};

use crate::app::{decode_op, encode_op, App};
use crate::checker::{Checker, Violation};
use crate::profile::{Knobs, Profile, TICK_UNITS};
use crate::rng::Rng;
use crate::{RunOptions, Stats};

/// Events between durability checks (each walks every committed entry).
const DURABILITY_CHECK_EVENTS: u64 = 64;
/// Most events one run may process: a runaway run is a failure, not a hang.
const EVENTS_MAX: u64 = 5_000_000;

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
    number: u64,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    messages: Vec<Message>,
}

struct PendingRead {
    index: Index,
    /// Appends acknowledged before the read was issued.
    acked_before: usize,
}

struct SimNode {
    id: NodeId,
    raft: Option<RawNode>,
    epoch: u64,
    durable: Persisted,
    disk: VecDeque<DiskJob>,
    /// Jobs at the front of `disk` covered by the fsync in flight.
    disk_busy: usize,
    app: App,
    applied: Index,
    last_compact: Index,
    tick_period: u64,
    reads: Vec<PendingRead>,
    traced: Option<(Role, Term)>,
}

struct Outstanding {
    node: NodeId,
    index: Index,
    deadline: u64,
}

struct Client {
    id: u32,
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
    acked: Vec<(u32, u32)>,
    /// Outstanding reads by ctx: appends acknowledged before issue.
    reads_in_flight: std::collections::BTreeMap<Vec<u8>, usize>,
    checker: Checker,
    pub stats: Stats,
    pub trace: Option<Vec<String>>,
}

impl Sim {
    pub fn new(seed: u64, profile: Profile, opts: &RunOptions) -> Sim {
        let mut rng = Rng::new(seed);
        let knobs = Knobs::draw(profile, opts.fault_phase_ticks, &mut rng);
        let trace = opts.trace;
        let mut sim = Sim {
            knobs,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            cut: BTreeSet::new(),
            clients: Vec::new(),
            acked: Vec::new(),
            reads_in_flight: Default::default(),
            checker: Checker::default(),
            stats: Stats::default(),
            trace: trace.then(Vec::new),
            rng,
        };
        sim.log(format!(
            "seed {seed} profile {} knobs {:?}",
            profile.name(),
            sim.knobs
        ));
        for id in 1..=sim.knobs.nodes {
            let skew = sim.knobs.tick_skew_pct;
            let pct = sim.rng.range(100 - skew, 100 + skew);
            sim.nodes.push(SimNode {
                id,
                raft: None,
                epoch: 0,
                durable: Persisted::default(),
                disk: VecDeque::new(),
                disk_busy: 0,
                app: App::default(),
                applied: 0,
                last_compact: 0,
                tick_period: (TICK_UNITS * pct / 100).max(1),
                reads: Vec::new(),
                traced: None,
            });
            sim.restart(id).expect("fresh node starts");
        }
        for i in 0..sim.knobs.clients {
            sim.clients.push(Client {
                id: i as u32 + 1,
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
        sim.stats.nodes = sim.knobs.nodes;
        sim
    }

    fn log(&mut self, line: String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>7} {line}", self.now));
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

    fn node(&mut self, id: NodeId) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
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
            if self.stats.events % DURABILITY_CHECK_EVENTS == 0 {
                self.check_durability()?;
            }
        }
        self.final_checks()
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick { node, epoch } => {
                let n = self.node(node);
                if n.epoch != epoch {
                    return Ok(());
                }
                let Some(raft) = n.raft.as_mut() else {
                    return Ok(());
                };
                raft.tick();
                let period = n.tick_period;
                let jitter = self.knobs.tick_jitter;
                let delay = period
                    + if jitter > 0 {
                        self.rng.below(jitter + 1)
                    } else {
                        0
                    };
                self.schedule(delay, Event::Tick { node, epoch });
                self.drive(node)
            }
            Event::Deliver(m) => self.deliver(m),
            Event::DiskDone { node, epoch } => self.disk_done(node, epoch),
            Event::Client(c) => self.client(c),
            Event::Fault => {
                self.fault()?;
                let i = self.knobs.fault_interval;
                let delay = self.rng.range(i / 2, i * 3 / 2);
                self.schedule(delay, Event::Fault);
                Ok(())
            }
            Event::Restart(id) => self.restart(id),
            Event::Crash { node, epoch } => {
                if self.node(node).epoch == epoch
                    && self.node(node).raft.is_some()
                    && self.now < self.knobs.faults_end
                {
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
                for id in 1..=self.knobs.nodes {
                    self.restart(id)?;
                }
                Ok(())
            }
        }
    }

    // ----- network -----------------------------------------------------------

    fn send(&mut self, m: Message) {
        if self.rng.chance(self.knobs.loss_ppm) {
            self.stats.dropped += 1;
            self.log(format!("lose {m}"));
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
        let to = m.to;
        if self.cut.contains(&(m.from, to)) || self.node(to).raft.is_none() {
            self.stats.dropped += 1;
            self.log(format!("drop {m}"));
            return Ok(());
        }
        self.stats.delivered += 1;
        if matches!(m.kind, MessageKind::InstallSnapshot { .. }) {
            self.stats.snapshots_sent += 1;
        }
        self.log(format!("recv {m}"));
        let raft = self.node(to).raft.as_mut().expect("up");
        raft.step(m)
            .map_err(|e| format!("step refused a message: {e:?}"))?;
        self.drive(to)
    }

    // ----- node driver -------------------------------------------------------

    /// Drains a node's readies: send, queue disk writes, apply.
    fn drive(&mut self, id: NodeId) -> Result<(), Violation> {
        loop {
            let n = self.node(id);
            let Some(raft) = n.raft.as_mut() else {
                return Ok(());
            };
            if !raft.has_ready() {
                break;
            }
            let rd = raft.ready();
            self.checker.on_log_entries(
                self.nodes[(id - 1) as usize].raft.as_ref().expect("up"),
                &rd.entries,
            )?;
            self.handle_ready(id, rd)?;
        }
        self.compact(id);
        let n = &self.nodes[(id - 1) as usize];
        let raft = n.raft.as_ref().expect("up");
        let state = (raft.role(), raft.term());
        self.stats.max_term = self.stats.max_term.max(state.1);
        self.checker.on_node(raft)?;
        if n.traced != Some(state) {
            self.node(id).traced = Some(state);
            self.log(format!("n{id} is {:?} in term {}", state.0, state.1));
        }
        Ok(())
    }

    fn handle_ready(&mut self, id: NodeId, rd: Ready) -> Result<(), Violation> {
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
                "n{id} installs snapshot {}@{}",
                s.meta.index, s.meta.term
            ));
            let n = self.node(id);
            n.app = App::decode(&s.data);
            n.applied = s.meta.index;
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
            self.apply(id, e)?;
        }
        for rs in read_states {
            let acked_before = self.reads_in_flight.remove(&rs.ctx).unwrap_or(0);
            self.node(id).reads.push(PendingRead {
                index: rs.index,
                acked_before,
            });
        }
        self.serve_reads(id)
    }

    fn apply(&mut self, id: NodeId, e: Entry) -> Result<(), Violation> {
        self.checker.on_applied(id, &e)?;
        let n = self.node(id);
        assert_eq!(e.index, n.applied + 1, "applied out of order");
        n.applied = e.index;
        if e.kind != EntryKind::Normal {
            return Ok(());
        }
        n.app.apply(&e.data);
        let (client, seq) = decode_op(&e.data).expect("op");
        for c in &mut self.clients {
            let Some(o) = &c.outstanding else { continue };
            if o.node != id || o.index != e.index {
                continue;
            }
            if c.id == client && c.seq == seq {
                self.acked.push((client, seq));
                self.stats.acked_appends += 1;
                c.seq += 1;
            }
            c.outstanding = None;
        }
        Ok(())
    }

    fn serve_reads(&mut self, id: NodeId) -> Result<(), Violation> {
        let n = &mut self.nodes[(id - 1) as usize];
        let applied = n.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            n.reads.drain(..).partition(|r| r.index <= applied);
        n.reads = waiting;
        for r in ready {
            let n = &self.nodes[(id - 1) as usize];
            if let Some(&(c, s)) = self.acked[..r.acked_before]
                .iter()
                .find(|(c, s)| !n.app.contains(*c, *s))
            {
                return Err(format!(
                    "stale read on n{id} at index {}: misses acknowledged append {c}:{s}",
                    r.index
                ));
            }
            self.stats.reads_served += 1;
        }
        Ok(())
    }

    fn compact(&mut self, id: NodeId) {
        let every = self.knobs.compact_every;
        let n = self.node(id);
        if n.applied < n.last_compact + every {
            return;
        }
        let data = n.app.encode();
        let raft = n.raft.as_mut().expect("up");
        let Some(index) = raft.compact(data.clone()) else {
            return;
        };
        let term = raft.log_term(index).expect("snapshot term");
        let voters = raft.voters().to_vec();
        n.last_compact = index;
        n.durable.entries.retain(|e| e.index > index);
        n.durable.snapshot = Some(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                voters,
            },
            data,
        });
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

    fn disk_done(&mut self, id: NodeId, epoch: u64) -> Result<(), Violation> {
        let n = self.node(id);
        if n.epoch != epoch || n.raft.is_none() {
            return Ok(());
        }
        let jobs: Vec<DiskJob> = n.disk.drain(..n.disk_busy).collect();
        n.disk_busy = 0;
        let mut last = 0;
        let mut out = Vec::new();
        for job in jobs {
            persist(&mut n.durable, &job);
            last = job.number;
            out.extend(job.messages);
        }
        n.raft.as_mut().expect("up").on_persisted(last);
        if !n.disk.is_empty() {
            self.start_fsync(id);
        }
        for m in out {
            self.send(m);
        }
        self.drive(id)
    }

    // ----- faults ------------------------------------------------------------

    fn fault(&mut self) -> Result<(), Violation> {
        let nodes = self.knobs.nodes;
        // Faults aimed at the leader shake out the interesting cases:
        // uncommitted suffixes, competing terms, lost acknowledgements.
        let leader = self
            .nodes
            .iter()
            .find(|n| n.raft.as_ref().is_some_and(|r| r.role() == Role::Leader))
            .map(|n| n.id);
        let victim = match leader {
            Some(l) if self.rng.flip() => l,
            _ => self.rng.range(1, nodes),
        };
        match self.rng.below(100) {
            0..=29 => {
                let id = victim;
                if self.node(id).raft.is_some() {
                    self.crash(id);
                    let delay = self.rng.range(5, 100) * TICK_UNITS;
                    self.schedule(delay, Event::Restart(id));
                }
            }
            30..=54 => {
                self.cut.clear();
                let mut side: Vec<bool> = (0..nodes).map(|_| self.rng.flip()).collect();
                if self.rng.flip() {
                    // Isolate the victim (often the leader) alone.
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
                self.log(format!("partition {:?}", side));
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
        Ok(())
    }

    /// Asks the current leader (if any) to hand over to a random voter.
    fn transfer(&mut self) -> Result<(), Violation> {
        let leader = self
            .nodes
            .iter()
            .find(|n| n.raft.as_ref().is_some_and(|r| r.role() == Role::Leader));
        let Some(id) = leader.map(|n| n.id) else {
            return Ok(());
        };
        let target = self.rng.range(1, self.knobs.nodes);
        let raft = self.node(id).raft.as_mut().expect("up");
        let outcome = raft.transfer_leader(target);
        self.log(format!("transfer n{id} -> n{target}: {outcome:?}"));
        self.stats.transfers += u64::from(outcome.is_ok());
        self.drive(id)
    }

    fn crash(&mut self, id: NodeId) {
        self.stats.crashes += 1;
        // Half the time, a random prefix of the unacknowledged writes reached
        // the disk before the crash (the fsync finished, its ack did not).
        let pending = self.node(id).disk.len() as u64;
        let survive = if self.rng.flip() {
            self.rng.range(0, pending) as usize
        } else {
            0
        };
        let n = self.node(id);
        let jobs: Vec<DiskJob> = n.disk.drain(..).collect();
        for job in jobs.iter().take(survive) {
            persist(&mut n.durable, job);
        }
        n.disk_busy = 0;
        n.raft = None;
        n.epoch += 1;
        n.reads.clear();
        n.traced = None;
        self.log(format!(
            "crash n{id} ({survive} of {} unacknowledged writes survive)",
            jobs.len()
        ));
    }

    fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.node(id).raft.is_some() {
            return Ok(());
        }
        let mut cfg = Config::new(id, (1..=self.knobs.nodes).collect(), self.rng.next_u64());
        cfg.pre_vote = self.knobs.pre_vote;
        cfg.check_quorum = self.knobs.check_quorum;
        cfg.inflight_appends_max = self.knobs.inflight_max;
        cfg.append_entries_max = self.knobs.append_entries_max;
        let n = self.node(id);
        let (app, applied) = match &n.durable.snapshot {
            Some(s) => (App::decode(&s.data), s.meta.index),
            None => (App::default(), 0),
        };
        cfg.applied = applied;
        let raft = RawNode::new(cfg, n.durable.clone())
            .map_err(|e| format!("n{id} cannot restart: {e:?}"))?;
        n.raft = Some(raft);
        n.app = app;
        n.applied = applied;
        n.last_compact = applied;
        n.epoch += 1;
        let (epoch, period) = (n.epoch, n.tick_period);
        self.checker.on_restart(id);
        self.log(format!("start n{id} from snapshot {applied}"));
        let first = self.rng.range(1, period);
        self.schedule(first, Event::Tick { node: id, epoch });
        self.drive(id)
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
            None => self.rng.range(1, self.knobs.nodes),
        };
        let is_read = self.rng.below(100) < self.knobs.read_pct;
        let (cid, seq) = (self.clients[c].id, self.clients[c].seq);
        let ctx = encode_op(cid, self.clients[c].reads_issued as u32);
        let Some(raft) = self.nodes[(target - 1) as usize].raft.as_mut() else {
            self.clients[c].leader_hint = None;
            return Ok(());
        };
        if is_read {
            match raft.read_index(ctx.clone()) {
                Ok(()) => {
                    self.clients[c].reads_issued += 1;
                    self.reads_in_flight.insert(ctx, self.acked.len());
                }
                Err(e) => self.clients[c].leader_hint = hint(e),
            }
            return self.drive(target);
        }
        match raft.propose(encode_op(cid, seq)) {
            Ok(index) => {
                self.log(format!(
                    "client {cid} proposes {cid}:{seq} at n{target} index {index}"
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
        self.drive(target)
    }

    // ----- checks ------------------------------------------------------------

    fn check_durability(&mut self) -> Result<(), Violation> {
        let stores: Vec<&Persisted> = self.nodes.iter().map(|n| &n.durable).collect();
        self.checker.check_durability(&stores)
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        self.check_durability()?;
        let reference = self.nodes[0].app.clone();
        for n in &self.nodes {
            if n.raft.is_none() {
                return Err(format!("n{} is down at the end", n.id));
            }
            if n.app != reference {
                return Err(format!(
                    "no convergence: n{} applied {} ops (index {}), n1 applied {} ops (index {})",
                    n.id,
                    n.app.list.len(),
                    n.applied,
                    reference.list.len(),
                    self.nodes[0].applied
                ));
            }
        }
        for &(c, s) in &self.acked {
            if !reference.contains(c, s) {
                return Err(format!("lost acknowledged append {c}:{s}"));
            }
        }
        for &(c, s) in &reference.list {
            let client = self.clients.iter().find(|k| k.id == c);
            if client.is_none_or(|k| s > k.seq) {
                return Err(format!("applied op {c}:{s} was never proposed"));
            }
        }
        self.stats.final_len = reference.list.len() as u64;
        self.stats.leaders = self.checker.leaders_elected() as u64;
        self.stats.committed = self.checker.committed_count() as u64;
        Ok(())
    }
}

fn hint(e: ProposeError) -> Option<NodeId> {
    match e {
        ProposeError::NotLeader { leader } => leader,
        _ => None,
    }
}

/// Applies one job to a durable store, as a disk would.
fn persist(d: &mut Persisted, job: &DiskJob) {
    if let Some(s) = &job.snapshot {
        d.snapshot = Some(s.clone());
        d.entries.clear();
    }
    if let Some(first) = job.entries.first() {
        d.entries.retain(|e| e.index < first.index);
        d.entries.extend(job.entries.iter().cloned());
    }
    if let Some(hs) = job.hard_state {
        d.hard_state = hs;
    }
}
