//! Multi-raft host tests over a tiny synchronous network: every host runs a
//! replica of every range; batches are delivered in FIFO order; each pass
//! is persisted with one append and one sync of a `MemLogStore`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;
use crate::types::EntryKind;

struct Shard {
    host: MultiRaft,
    store: MemLogStore,
    /// Applied normal entries per range.
    applied: BTreeMap<RangeId, Vec<Vec<u8>>>,
    /// Largest number of distinct ranges in one pass's log batch.
    ranges_per_sync_max: usize,
}

struct Net {
    shards: BTreeMap<NodeId, Shard>,
    queue: VecDeque<Batch>,
    down: BTreeSet<NodeId>,
}

impl Net {
    fn new(nodes: u64, ranges: u64, quiesce: bool) -> Net {
        let voters: Vec<NodeId> = (1..=nodes).collect();
        let mut shards = BTreeMap::new();
        for &id in &voters {
            let mut cfg = MultiConfig::new(id);
            cfg.quiesce = quiesce;
            let mut host = MultiRaft::new(cfg);
            for range in 1..=ranges {
                let mut c = Config::new(id, voters.clone(), range * 7919 + id);
                c.group = range;
                host.add_group(c, Persisted::default()).expect("new group");
            }
            let shard = Shard {
                host,
                store: MemLogStore::default(),
                applied: BTreeMap::new(),
                ranges_per_sync_max: 0,
            };
            shards.insert(id, shard);
        }
        Net {
            shards,
            queue: VecDeque::new(),
            down: BTreeSet::new(),
        }
    }

    /// Runs passes and delivers batches until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for (id, s) in self.shards.iter_mut() {
                if self.down.contains(id) {
                    continue;
                }
                while s.host.has_ready() {
                    moved = true;
                    let pass = s.host.ready().expect("pass");
                    self.queue.extend(pass.batches);
                    if !pass.log.is_empty() {
                        let ranges: BTreeSet<RangeId> =
                            pass.log.records.iter().map(LogRecord::range).collect();
                        s.ranges_per_sync_max = s.ranges_per_sync_max.max(ranges.len());
                        s.store.append(&pass.log).expect("append");
                        s.store.sync().expect("sync");
                    }
                    self.queue.extend(s.host.on_persisted(pass.number));
                    for a in pass.applies {
                        let list = s.applied.entry(a.range).or_default();
                        let normal = a.committed_entries.into_iter();
                        list.extend(
                            normal
                                .filter(|e| e.kind == EntryKind::Normal)
                                .map(|e| e.data),
                        );
                    }
                }
            }
            while let Some(b) = self.queue.pop_front() {
                moved = true;
                if self.down.contains(&b.from) || self.down.contains(&b.to) {
                    continue;
                }
                let unknown = self.shard(b.to).host.receive(b).expect("well addressed");
                assert!(unknown.is_empty());
            }
            if !moved {
                return;
            }
        }
        panic!("network never settled");
    }

    fn tick(&mut self, times: usize) {
        for _ in 0..times {
            for (id, s) in self.shards.iter_mut() {
                if !self.down.contains(id) {
                    s.host.tick();
                }
            }
            self.settle();
        }
    }

    fn shard(&mut self, id: NodeId) -> &mut Shard {
        self.shards.get_mut(&id).expect("shard")
    }

    /// The live node leading `range`, if any.
    fn leader(&self, range: RangeId) -> Option<NodeId> {
        self.shards
            .iter()
            .filter(|(id, _)| !self.down.contains(id))
            .find(|(_, s)| {
                s.host
                    .group(range)
                    .is_some_and(|r| r.role() == Role::Leader)
            })
            .map(|(&id, _)| id)
    }

    fn elect_all(&mut self, ranges: u64) {
        for _ in 0..200 {
            if (1..=ranges).all(|r| self.leader(r).is_some()) {
                return;
            }
            self.tick(1);
        }
        panic!("not every range elected a leader");
    }

    fn propose(&mut self, range: RangeId, data: &[u8]) {
        let leader = self.leader(range).expect("leader");
        self.shard(leader)
            .host
            .propose(range, data.to_vec())
            .expect("proposal accepted");
    }

    fn active(&self) -> usize {
        self.shards
            .iter()
            .filter(|(id, _)| !self.down.contains(id))
            .map(|(_, s)| s.host.active_count())
            .sum()
    }
}

#[test]
fn many_groups_commit_with_one_sync_per_pass() {
    const RANGES: u64 = 300;
    let mut net = Net::new(3, RANGES, true);
    net.elect_all(RANGES);
    for range in 1..=RANGES {
        net.propose(range, format!("v{range}").as_bytes());
    }
    net.settle();
    for s in net.shards.values() {
        for range in 1..=RANGES {
            assert_eq!(
                s.applied.get(&range).map(Vec::as_slice),
                Some(&[format!("v{range}").into_bytes()][..]),
                "host {} range {range}",
                s.host.id()
            );
        }
        let st = s.host.stats();
        assert!(s.store.syncs <= st.passes, "at most one sync per pass");
        assert!(
            s.ranges_per_sync_max > RANGES as usize / 3,
            "one sync covers many ranges ({})",
            s.ranges_per_sync_max
        );
    }
}

#[test]
fn heartbeats_are_coalesced_per_node_pair() {
    const RANGES: u64 = 100;
    let mut net = Net::new(3, RANGES, false);
    net.elect_all(RANGES);
    net.tick(4);
    let before: BTreeMap<NodeId, HostStats> = net
        .shards
        .iter()
        .map(|(&id, s)| (id, s.host.stats()))
        .collect();
    // One tick: every leader heartbeats (every second tick), and each host
    // sends each peer at most a batch before and one after its sync.
    net.tick(2);
    let mut beats = 0;
    for (id, s) in &net.shards {
        let d = s.host.stats();
        let b = before[id];
        let batches = d.batches_sent - b.batches_sent;
        beats += d.beats_sent - b.beats_sent;
        let passes = d.passes - b.passes;
        assert!(
            batches <= 2 * 2 * passes,
            "host {id}: {batches} batches in {passes} passes"
        );
        assert_eq!(d.messages_sent, b.messages_sent, "idle: heartbeats only");
    }
    // Each range's leader sent a beat to each of 2 followers, and got a
    // response from each: 4 beats per range per heartbeat round.
    assert_eq!(beats, RANGES * 4);
}

#[test]
fn idle_groups_quiesce_and_wake() {
    const RANGES: u64 = 50;
    let mut net = Net::new(3, RANGES, true);
    net.elect_all(RANGES);
    net.propose(1, b"a");
    net.tick(10);
    assert_eq!(net.active(), 0, "every idle group quiesced");
    let before: Vec<HostStats> = net.shards.values().map(|s| s.host.stats()).collect();
    net.tick(100);
    for (s, b) in net.shards.values().zip(&before) {
        let d = s.host.stats();
        assert_eq!(
            d.group_ticks, b.group_ticks,
            "quiesced groups are not ticked"
        );
        assert_eq!(d.beats_sent, b.beats_sent, "and send no heartbeats");
        assert_eq!(d.messages_sent, b.messages_sent);
        let liveness = d.liveness_beats - b.liveness_beats;
        assert!(
            (2 * 100 / 2 - 2..=2 * 100 / 2 + 2).contains(&liveness),
            "one empty batch per peer per beat interval, got {liveness}"
        );
    }
    // A proposal wakes its group only; it commits and quiesces again.
    net.propose(7, b"b");
    assert_eq!(net.active(), 1);
    net.settle();
    assert!(net.active() >= 1, "followers woke on the append");
    for s in net.shards.values() {
        assert_eq!(s.applied[&7], vec![b"b".to_vec()]);
    }
    net.tick(10);
    assert_eq!(net.active(), 0);
}

#[test]
fn a_dead_leader_node_wakes_the_groups_it_led() {
    const RANGES: u64 = 30;
    let mut net = Net::new(3, RANGES, true);
    net.elect_all(RANGES);
    net.tick(10);
    assert_eq!(net.active(), 0);
    let led: Vec<RangeId> = (1..=RANGES).filter(|&r| net.leader(r) == Some(1)).collect();
    assert!(!led.is_empty(), "node 1 leads some ranges");
    net.down.insert(1);
    net.tick(60);
    let woken: u64 = net
        .shards
        .values()
        .map(|s| s.host.stats().woken_by_liveness)
        .sum();
    assert!(woken >= led.len() as u64, "followers of node 1 woke up");
    assert_eq!(net.shard(2).host.peer_alive(1), Some(false));
    for &range in &led {
        let leader = net.leader(range).expect("re-elected");
        assert_ne!(leader, 1);
        net.propose(range, b"after");
    }
    net.settle();
    for &range in &led {
        assert_eq!(net.shard(2).applied[&range], vec![b"after".to_vec()]);
    }
    // Ranges led elsewhere stayed quiet throughout.
    assert!(net.shard(2).host.stats().group_ticks > 0);
}

#[test]
fn misaddressed_batches_are_refused() {
    let mut net = Net::new(3, 2, true);
    let host = &mut net.shard(1).host;
    let bad = [Batch::new(2, 3), Batch::new(0, 1), Batch::new(1, 1)];
    for b in bad {
        let (from, to) = (b.from, b.to);
        assert_eq!(host.receive(b), Err(HostError::Misrouted { from, to }));
    }
    assert_eq!(
        host.peer_alive(0),
        None,
        "no peer is made up from a bad batch"
    );
    assert_eq!(host.receive(Batch::new(2, 1)), Ok(vec![]));
}
