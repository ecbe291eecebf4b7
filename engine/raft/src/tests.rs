//! Golden-script tests of the Raft scenarios, plus a few direct unit tests.
//!
//! Each file in `src/testscripts/` is a script of commands (`> cmd`) each
//! followed by its expected output and a blank line; `#` lines are comments.
//! Run with `UPDATE_GOLDEN=1` to rewrite the expectations.
//!
//! The harness is a tiny synchronous cluster: messages are delivered in FIFO
//! order, every `Ready` is persisted at once, partitions drop messages.
//!
//! Commands:
//! * `cluster N [prevote=off] [checkquorum=off] [batch=1]`: nodes 1..=N
//!   (`batch=1`: one entry per append) [window=2] (two appends in flight)
//! * `tick ID|all [COUNT]`: tick nodes (nothing is delivered)
//! * `deliver N`: drain readies, deliver only the first N queued messages
//! * `stabilize`: drain readies and deliver messages until quiet, printing
//!   every message delivered (or dropped) and every read state
//! * `propose ID DATA`, `read ID CTX`, `transfer ID TARGET`, `compact ID`
//! * `partition A B | C D`: only nodes on the same side talk; `heal`
//! * `isolate-out ID`: drop ID's outgoing messages only (asymmetric)
//! * `crash ID` (lose unsent messages), `restart ID` (from durable state)
//! * `add-node ID`: start a new replica with an empty configuration (it
//!   learns the group's configuration from the leader)
//! * `conf ID CHANGE...`: propose a configuration change on node ID; each
//!   change is `add N`, `remove N`, `learner N`, `promote N` or
//!   `remove-learner N`
//! * `status`, `log ID`, `applied ID`, `members ID`
//! * with `cluster N lease` (election timeout 100, max clock offset 10, so
//!   leases last 80 clock units): `clock ID|all T` sets clocks (they start
//!   at 0), `lease-read ID CTX` reads by lease or falls back to ReadIndex

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use crate::*;

struct TestNode {
    node: Option<RawNode>,
    durable: Persisted,
    applied: Vec<String>,
    /// Bootstrap voters passed in `Config::voters`.
    bootstrap: Vec<NodeId>,
    /// This node's clock reading.
    clock: u64,
}

struct Cluster {
    nodes: BTreeMap<NodeId, TestNode>,
    cfg: Config,
    queue: VecDeque<Message>,
    /// Directed links that drop messages.
    cut: BTreeSet<(NodeId, NodeId)>,
}

impl Cluster {
    fn new(n: u64, options: &str) -> Cluster {
        let voters: Vec<NodeId> = (1..=n).collect();
        let mut cfg = Config::new(1, voters.clone(), 42);
        cfg.pre_vote = !options.contains("prevote=off");
        cfg.check_quorum = !options.contains("checkquorum=off");
        if options.contains("batch=1") {
            cfg.append_entries_max = 1;
        }
        if options.contains("window=2") {
            cfg.inflight_appends_max = 2;
        }
        if options.contains("lease") {
            cfg.lease = Some(LeaseConfig {
                election_timeout: 100,
                max_clock_offset: 10,
            });
        }
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            cfg,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
        };
        for &id in &voters {
            c.add_node(id, voters.clone());
        }
        c
    }

    fn add_node(&mut self, id: NodeId, bootstrap: Vec<NodeId>) {
        let tn = TestNode {
            node: None,
            durable: Persisted::default(),
            applied: Vec::new(),
            bootstrap,
            clock: 0,
        };
        assert!(self.nodes.insert(id, tn).is_none(), "node {id} exists");
        self.start(id);
    }

    fn start(&mut self, id: NodeId) {
        let mut cfg = self.cfg.clone();
        cfg.id = id;
        let tn = self.nodes.get_mut(&id).expect("node");
        cfg.voters = tn.bootstrap.clone();
        tn.applied.clear();
        if let Some(s) = &tn.durable.snapshot {
            tn.applied = decode_applied(&s.data);
            cfg.applied = s.meta.index;
        }
        let mut node = RawNode::new(cfg, tn.durable.clone()).expect("valid state");
        node.set_clock(tn.clock);
        tn.node = Some(node);
    }

    fn node(&mut self, id: NodeId) -> &mut RawNode {
        self.nodes
            .get_mut(&id)
            .and_then(|n| n.node.as_mut())
            .expect("node is up")
    }

    /// Drains every ready node once. Returns output lines.
    fn drain_readies(&mut self, out: &mut String) -> bool {
        let mut any = false;
        for (&id, tn) in self.nodes.iter_mut() {
            let Some(node) = tn.node.as_mut() else {
                continue;
            };
            while node.has_ready() {
                any = true;
                let rd = node.ready();
                tn.durable
                    .write(rd.snapshot.as_ref(), &rd.entries, rd.hard_state);
                self.queue.extend(rd.messages);
                self.queue.extend(rd.persisted_messages);
                node.on_persisted(rd.number);
                if let Some(s) = &rd.snapshot {
                    tn.applied = decode_applied(&s.data);
                }
                for e in rd.committed_entries {
                    if e.kind == EntryKind::Normal {
                        tn.applied
                            .push(String::from_utf8_lossy(&e.data).into_owned());
                    }
                }
                for rs in rd.read_states {
                    let _ = writeln!(
                        out,
                        "{id}: read {} at index {}",
                        String::from_utf8_lossy(&rs.ctx),
                        rs.index
                    );
                }
            }
        }
        any
    }

    fn stabilize(&mut self) -> String {
        let mut out = String::new();
        loop {
            let any = self.drain_readies(&mut out);
            if self.queue.is_empty() && !any {
                break;
            }
            for m in std::mem::take(&mut self.queue) {
                self.deliver_one(m, &mut out);
            }
        }
        out
    }

    /// Drains readies, then delivers only the first `n` queued messages.
    fn deliver(&mut self, n: usize) -> String {
        let mut out = String::new();
        self.drain_readies(&mut out);
        for _ in 0..n {
            let Some(m) = self.queue.pop_front() else {
                break;
            };
            self.deliver_one(m, &mut out);
        }
        self.drain_readies(&mut out);
        let _ = writeln!(out, "({} queued)", self.queue.len());
        out
    }

    fn deliver_one(&mut self, m: Message, out: &mut String) {
        let up = self.nodes.get(&m.to).is_some_and(|n| n.node.is_some());
        if self.cut.contains(&(m.from, m.to)) || !up {
            let _ = writeln!(out, "{m} DROPPED");
            return;
        }
        let _ = writeln!(out, "{m}");
        self.node(m.to).step(m).expect("step");
    }

    fn status(&self) -> String {
        let mut out = String::new();
        for (id, tn) in &self.nodes {
            match &tn.node {
                None => {
                    let _ = writeln!(out, "{id}: down");
                }
                Some(n) => {
                    let leader = n.leader().map_or("-".to_string(), |l| l.to_string());
                    let _ = writeln!(
                        out,
                        "{id}: {:?} term={} leader={leader} last={}@{} commit={} applied={}",
                        n.role(),
                        n.term(),
                        n.last_index(),
                        n.log_term(n.last_index()).unwrap_or(0),
                        n.commit_index(),
                        n.applied_index()
                    );
                }
            }
        }
        out
    }

    fn run(&mut self, cmd: &str) -> String {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let id = |i: usize| -> NodeId { args[i].parse().expect("node id") };
        match args[0] {
            "tick" => {
                let count: usize = args.get(2).map_or(1, |c| c.parse().expect("count"));
                let ids: Vec<NodeId> = if args[1] == "all" {
                    self.nodes
                        .iter()
                        .filter(|(_, n)| n.node.is_some())
                        .map(|(&i, _)| i)
                        .collect()
                } else {
                    vec![id(1)]
                };
                for _ in 0..count {
                    for &i in &ids {
                        self.node(i).tick();
                    }
                }
                "ok\n".into()
            }
            "stabilize" => self.stabilize(),
            "deliver" => self.deliver(id(1) as usize),
            "propose" => match self.node(id(1)).propose(args[2].as_bytes().to_vec()) {
                Ok(index) => format!("index {index}\n"),
                Err(e) => format!("error {e:?}\n"),
            },
            "read" => match self.node(id(1)).read_index(args[2].as_bytes().to_vec()) {
                Ok(()) => "ok\n".into(),
                Err(e) => format!("error {e:?}\n"),
            },
            "transfer" => match self.node(id(1)).transfer_leader(id(2)) {
                Ok(()) => "ok\n".into(),
                Err(e) => format!("error {e:?}\n"),
            },
            "compact" => {
                let tn = self.nodes.get_mut(&id(1)).expect("node");
                let data = encode_applied(&tn.applied);
                let node = tn.node.as_mut().expect("up");
                match node.compact(data.clone()) {
                    Some(meta) => {
                        let index = meta.index;
                        tn.durable.compact(Snapshot { meta, data });
                        format!("compacted to {index}\n")
                    }
                    None => "nothing to compact\n".into(),
                }
            }
            "partition" => {
                self.cut.clear();
                let side: BTreeSet<NodeId> = args[1..]
                    .iter()
                    .take_while(|a| **a != "|")
                    .map(|a| a.parse().expect("id"))
                    .collect();
                for &a in self.nodes.keys() {
                    for &b in self.nodes.keys() {
                        if side.contains(&a) != side.contains(&b) {
                            self.cut.insert((a, b));
                        }
                    }
                }
                "ok\n".into()
            }
            "isolate-out" => {
                let a = id(1);
                for &b in self.nodes.keys() {
                    self.cut.insert((a, b));
                }
                "ok\n".into()
            }
            "heal" => {
                self.cut.clear();
                "ok\n".into()
            }
            "crash" => {
                let victim = id(1);
                self.nodes.get_mut(&victim).expect("node").node = None;
                self.queue.retain(|m| m.from != victim);
                "ok\n".into()
            }
            "restart" => {
                self.start(id(1));
                "ok\n".into()
            }
            "status" => self.status(),
            "log" => {
                let n = self.nodes[&id(1)].node.as_ref().expect("up");
                let entries: Vec<String> = (n.first_index()..=n.last_index())
                    .filter_map(|i| n.log_entry(i))
                    .map(|e| e.to_string())
                    .collect();
                format!("first={} [{}]\n", n.first_index(), entries.join(" "))
            }
            "applied" => format!("[{}]\n", self.nodes[&id(1)].applied.join(" ")),
            "clock" => {
                let t: u64 = args[2].parse().expect("time");
                for (&i, tn) in self.nodes.iter_mut() {
                    if args[1] == "all" || args[1].parse() == Ok(i) {
                        tn.clock = t;
                        if let Some(n) = tn.node.as_mut() {
                            n.set_clock(t);
                        }
                    }
                }
                "ok\n".into()
            }
            "lease-read" => match self.node(id(1)).read(args[2].as_bytes().to_vec()) {
                Ok(ReadPath::Lease { index }) => format!("lease read at index {index}\n"),
                Ok(ReadPath::ReadIndex) => "read-index\n".into(),
                Err(e) => format!("error {e:?}\n"),
            },
            "members" => {
                let n = self.nodes[&id(1)].node.as_ref().expect("up");
                format!("{}\n", n.membership())
            }
            "add-node" => {
                self.add_node(id(1), Vec::new());
                "ok\n".into()
            }
            "conf" => {
                let changes = parse_conf_changes(&args[2..]);
                match self.node(id(1)).propose_conf_change(&changes) {
                    Ok(index) => format!("index {index}\n"),
                    Err(e) => format!("error {e:?}\n"),
                }
            }
            other => panic!("unknown command {other}"),
        }
    }
}

fn parse_conf_changes(args: &[&str]) -> Vec<ConfChange> {
    args.chunks(2)
        .map(|pair| {
            let id: NodeId = pair[1].parse().expect("node id");
            match pair[0] {
                "add" => ConfChange::AddVoter(id),
                "remove" => ConfChange::RemoveVoter(id),
                "learner" => ConfChange::AddLearner(id),
                "promote" => ConfChange::PromoteLearner(id),
                "remove-learner" => ConfChange::RemoveLearner(id),
                other => panic!("unknown change {other}"),
            }
        })
        .collect()
}

fn encode_applied(items: &[String]) -> Vec<u8> {
    items.join(",").into_bytes()
}

fn decode_applied(data: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(data);
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::to_string).collect()
    }
}

fn run_script(text: &str) -> String {
    let mut out = String::new();
    let mut cluster: Option<Cluster> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(cmd) = line.strip_prefix("> ") {
            for skipped in lines.by_ref() {
                if skipped.is_empty() {
                    break;
                }
            }
            let _ = writeln!(out, "> {cmd}");
            let result = if let Some(rest) = cmd.strip_prefix("cluster ") {
                let n: u64 = rest
                    .split_whitespace()
                    .next()
                    .expect("size")
                    .parse()
                    .expect("size");
                cluster = Some(Cluster::new(n, rest));
                "ok\n".to_string()
            } else {
                cluster.as_mut().expect("cluster first").run(cmd)
            };
            out.push_str(&result);
            out.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn golden_scripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testscripts");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("testscripts dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    let mut failed = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("read script");
        let actual = run_script(&text);
        if actual != text {
            if update {
                std::fs::write(&path, &actual).expect("write script");
            } else {
                eprintln!("--- {} differs; actual:\n{actual}", path.display());
                failed.push(path);
            }
        }
    }
    assert!(
        failed.is_empty(),
        "golden mismatches (rerun with UPDATE_GOLDEN=1): {failed:?}"
    );
}

fn single_node_leader() -> RawNode {
    let mut n = RawNode::new(Config::new(1, vec![1], 7), Persisted::default()).expect("node");
    while n.role() != Role::Leader {
        n.tick();
    }
    let rd = n.ready();
    n.on_persisted(rd.number);
    let rd = n.ready();
    assert_eq!(rd.committed_entries.len(), 1, "the leader's no-op commits");
    n
}

#[test]
fn leader_counts_itself_only_once_persisted() {
    let mut n = single_node_leader();
    let index = n.propose(b"x".to_vec()).expect("leader");
    let rd = n.ready();
    assert_eq!(rd.entries.len(), 1);
    assert_eq!(n.commit_index(), index - 1, "not durable yet");
    let rd2 = n.ready();
    assert!(rd2.entries.is_empty() && rd2.committed_entries.is_empty());
    n.on_persisted(rd2.number);
    assert_eq!(n.commit_index(), index);
    let rd3 = n.ready();
    assert_eq!(
        rd3.committed_entries
            .iter()
            .map(|e| e.index)
            .collect::<Vec<_>>(),
        vec![index]
    );
}

#[test]
fn follower_ack_waits_for_persistence() {
    let mut f = RawNode::new(Config::new(2, vec![1, 2, 3], 7), Persisted::default()).expect("node");
    let entry = |index| Entry {
        term: 1,
        index,
        kind: EntryKind::Normal,
        data: vec![b'a'],
    };
    let append = Message {
        group: 0,
        from: 1,
        to: 2,
        term: 1,
        kind: MessageKind::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![entry(1), entry(2)],
            commit: 2,
        },
    };
    f.step(append).expect("step");
    let rd = f.ready();
    assert_eq!(rd.entries.len(), 2);
    assert!(
        rd.messages.is_empty(),
        "nothing may be sent before persistence"
    );
    assert_eq!(rd.persisted_messages.len(), 1);
    assert!(
        rd.committed_entries.is_empty(),
        "committed but not durable locally"
    );
    assert_eq!(f.commit_index(), 2);
    f.on_persisted(rd.number);
    let rd = f.ready();
    assert_eq!(rd.committed_entries.len(), 2);
}

#[test]
fn truncated_entries_are_not_reported_persisted() {
    let mut f = RawNode::new(Config::new(2, vec![1, 2, 3], 7), Persisted::default()).expect("node");
    let entry = |term, index| Entry {
        term,
        index,
        kind: EntryKind::Normal,
        data: vec![],
    };
    let append = |term, entries: Vec<Entry>| Message {
        group: 0,
        from: if term == 1 { 1 } else { 3 },
        to: 2,
        term,
        kind: MessageKind::Append {
            prev_index: 0,
            prev_term: 0,
            entries,
            commit: 0,
        },
    };
    f.step(append(1, vec![entry(1, 1), entry(1, 2)]))
        .expect("step");
    let rd1 = f.ready();
    // A new leader overwrites index 2 before the first write is durable.
    f.step(append(2, vec![entry(1, 1), entry(2, 2)]))
        .expect("step");
    let rd2 = f.ready();
    assert_eq!(rd2.entries, vec![entry(2, 2)]);
    f.on_persisted(rd1.number);
    assert_eq!(
        f.persisted_index(),
        1,
        "2@1 was replaced; only index 1 is durable and matching"
    );
    f.on_persisted(rd2.number);
    assert_eq!(f.persisted_index(), 2);
}

#[test]
fn election_timeout_is_deterministic_and_in_range() {
    let ticks_to_campaign = |seed| {
        let mut n =
            RawNode::new(Config::new(1, vec![1, 2, 3], seed), Persisted::default()).expect("node");
        let mut t = 0;
        while n.role() == Role::Follower {
            n.tick();
            t += 1;
        }
        t
    };
    for seed in 0..50 {
        let t = ticks_to_campaign(seed);
        assert_eq!(t, ticks_to_campaign(seed));
        assert!(
            (ELECTION_TICKS_DEFAULT..2 * ELECTION_TICKS_DEFAULT).contains(&t),
            "timeout {t}"
        );
    }
}

#[test]
fn rejects_invalid_config_and_state() {
    let cfg = |id, voters: Vec<u64>| Config::new(id, voters, 1);
    assert_eq!(
        RawNode::new(cfg(0, vec![1]), Persisted::default()).err(),
        Some(ConfigError::InvalidId)
    );
    assert_eq!(
        RawNode::new(cfg(1, vec![1, 2, 1]), Persisted::default()).err(),
        Some(ConfigError::DuplicateVoter(1))
    );
    let bad_conf = Persisted {
        entries: vec![Entry {
            term: 1,
            index: 1,
            kind: EntryKind::ConfChange,
            data: vec![1, 2, 3],
        }],
        ..Persisted::default()
    };
    assert_eq!(
        RawNode::new(cfg(1, vec![1]), bad_conf).err(),
        Some(ConfigError::BadMembership { index: 1 })
    );
    let gap = Persisted {
        hard_state: HardState {
            term: 1,
            vote: None,
            commit: 0,
        },
        snapshot: None,
        entries: vec![Entry {
            term: 1,
            index: 2,
            kind: EntryKind::Normal,
            data: vec![],
        }],
    };
    assert_eq!(
        RawNode::new(cfg(1, vec![1]), gap).err(),
        Some(ConfigError::LogGap {
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn recovers_from_entries_written_without_their_hard_state() {
    // Crash between the entries and the hard state of one Ready: the log
    // holds a term-3 entry, the durable term is still 2 (with a vote).
    let state = Persisted {
        hard_state: HardState {
            term: 2,
            vote: Some(2),
            commit: 1,
        },
        snapshot: None,
        entries: vec![
            Entry {
                term: 1,
                index: 1,
                kind: EntryKind::Empty,
                data: vec![],
            },
            Entry {
                term: 3,
                index: 2,
                kind: EntryKind::Empty,
                data: vec![],
            },
        ],
    };
    let mut n = RawNode::new(Config::new(1, vec![1, 2, 3], 1), state).expect("recovers");
    assert_eq!((n.term(), n.hard_state().vote), (3, None));
    let rd = n.ready();
    assert_eq!(
        rd.hard_state.map(|hs| hs.term),
        Some(3),
        "the adopted term is persisted"
    );
}

fn conf_entry(term: u64, index: u64, m: &Membership) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::ConfChange,
        data: m.encode(),
    }
}

fn append_msg(from: NodeId, to: NodeId, term: u64, entries: Vec<Entry>) -> Message {
    Message {
        group: 0,
        from,
        to,
        term,
        kind: MessageKind::Append {
            prev_index: 0,
            prev_term: 0,
            entries,
            commit: 0,
        },
    }
}

#[test]
fn truncating_a_configuration_entry_reverts_it() {
    let mut f = RawNode::new(Config::new(2, vec![1, 2, 3], 7), Persisted::default()).expect("node");
    let joint = Membership::new(vec![1, 2, 3])
        .apply(&[ConfChange::AddVoter(4)])
        .expect("valid");
    f.step(append_msg(1, 2, 1, vec![conf_entry(1, 1, &joint)]))
        .expect("step");
    assert_eq!(f.membership(), &joint, "takes effect when appended");
    let plain = Entry {
        term: 2,
        index: 1,
        kind: EntryKind::Empty,
        data: vec![],
    };
    f.step(append_msg(3, 2, 2, vec![plain])).expect("step");
    assert_eq!(f.membership(), &Membership::new(vec![1, 2, 3]));
}

#[test]
fn membership_is_recovered_from_log_and_snapshot() {
    let joint = Membership::new(vec![1, 2, 3])
        .apply(&[ConfChange::RemoveVoter(3)])
        .expect("valid");
    let state = Persisted {
        hard_state: HardState {
            term: 1,
            vote: None,
            commit: 1,
        },
        snapshot: None,
        entries: vec![conf_entry(1, 1, &joint)],
    };
    let n = RawNode::new(Config::new(1, vec![1, 2, 3], 1), state).expect("recovers");
    assert_eq!(n.membership(), &joint);
    // A joining replica: no bootstrap voters, configuration from a snapshot.
    let learner = Membership::new(vec![1, 2])
        .apply(&[ConfChange::AddLearner(9)])
        .expect("valid");
    let state = Persisted {
        hard_state: HardState {
            term: 1,
            vote: None,
            commit: 5,
        },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                index: 5,
                term: 1,
                membership: learner.clone(),
            },
            data: vec![],
        }),
        entries: vec![],
    };
    let mut n = RawNode::new(Config::new(9, vec![], 1), state).expect("recovers");
    assert_eq!(n.membership(), &learner);
    for _ in 0..10 * ELECTION_TICKS_DEFAULT {
        n.tick();
    }
    assert_eq!(n.role(), Role::Follower, "a learner never campaigns");
    assert!(!n.has_ready());
}

#[test]
fn malformed_configurations_from_the_network_are_refused() {
    let mut f = RawNode::new(Config::new(2, vec![1, 2, 3], 7), Persisted::default()).expect("node");
    let bad = Entry {
        term: 1,
        index: 1,
        kind: EntryKind::ConfChange,
        data: vec![1, 0],
    };
    assert_eq!(
        f.step(append_msg(1, 2, 1, vec![bad])),
        Err(StepError::Malformed)
    );
    assert_eq!(f.last_index(), 0);
    assert_eq!(f.term(), 0, "nothing of the message was applied");
}

#[test]
fn a_new_leader_changes_membership_only_after_committing_in_its_term() {
    let mut n = RawNode::new(Config::new(1, vec![1], 7), Persisted::default()).expect("node");
    while n.role() != Role::Leader {
        n.tick();
    }
    assert_eq!(
        n.propose_conf_change(&[ConfChange::AddLearner(2)]),
        Err(ProposeError::ConfChange(ConfChangeError::LeaderNotReady))
    );
    let rd = n.ready();
    n.on_persisted(rd.number);
    assert_eq!(n.propose_conf_change(&[ConfChange::AddLearner(2)]), Ok(2));
    assert_eq!(
        n.propose_conf_change(&[ConfChange::AddVoter(3)]),
        Err(ProposeError::ConfChange(ConfChangeError::Pending {
            index: 2
        }))
    );
    // A single voter commits alone; the learner-only change is not joint.
    let rd = n.ready();
    n.on_persisted(rd.number);
    assert_eq!(n.commit_index(), 2);
    assert_eq!(n.membership().learners, vec![2]);
    assert_eq!(n.propose_conf_change(&[ConfChange::AddVoter(3)]), Ok(3));
    // Joint {1} and {1,3}: node 3 has nothing, so the joint entry waits.
    let rd = n.ready();
    n.on_persisted(rd.number);
    assert_eq!(n.commit_index(), 2);
    assert!(n.membership().is_joint());
}
