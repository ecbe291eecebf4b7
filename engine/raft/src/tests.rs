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
//! * `status`, `log ID`, `applied ID`

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use crate::*;

struct TestNode {
    node: Option<RawNode>,
    durable: Persisted,
    applied: Vec<String>,
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
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            cfg,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
        };
        for id in voters {
            c.nodes.insert(
                id,
                TestNode {
                    node: None,
                    durable: Persisted::default(),
                    applied: Vec::new(),
                },
            );
            c.start(id);
        }
        c
    }

    fn start(&mut self, id: NodeId) {
        let mut cfg = self.cfg.clone();
        cfg.id = id;
        let tn = self.nodes.get_mut(&id).expect("node");
        tn.applied.clear();
        if let Some(s) = &tn.durable.snapshot {
            tn.applied = decode_applied(&s.data);
            cfg.applied = s.meta.index;
        }
        tn.node = Some(RawNode::new(cfg, tn.durable.clone()).expect("valid state"));
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
                    Some(index) => {
                        let term = node.log_term(index).expect("snapshot term");
                        let voters = node.voters().to_vec();
                        let snap = Snapshot {
                            meta: SnapshotMeta {
                                index,
                                term,
                                voters,
                            },
                            data,
                        };
                        tn.durable.compact(snap);
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
            other => panic!("unknown command {other}"),
        }
    }
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
        RawNode::new(cfg(4, vec![1, 2]), Persisted::default()).err(),
        Some(ConfigError::NotAVoter)
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
