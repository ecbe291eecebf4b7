//! A deterministic simulator for the KV layer: a single-threaded executor
//! that picks the next task to poll with a seeded RNG, simulated physical
//! time (advanced a little at every step and jumped to the next timer when
//! nothing is runnable), per-clock skew, and task groups that can be killed
//! at once (a crashed gateway or shard).
//!
//! Every run is a function of its seed: a failing interleaving replays
//! exactly. [`SimCluster`] builds stores, ranges, a transport and clients on
//! top of it for tests, over any [`Backend`]: the in-memory engine, the LSM
//! on a simulated disk, or the LSM with every range a Raft group (the
//! node's write path).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;

mod disk;

pub use disk::StoreDisk;

use teller_storage::disk::{SimDisk, SimDiskOptions};
use teller_storage::sst::TableOptions;
use teller_storage::wal::WalConfig;
use teller_storage::{Engine as LsmCore, EngineConfig};

use crate::client::KvClient;
use crate::config::KvConfig;
use crate::engine::lsm::LsmEngine;
use crate::engine::memory::MemEngine;
use crate::engine::{Engine, LocalBoxFuture};
use crate::env::Env;
use crate::hlc::Hlc;
use crate::keys::Span;
use crate::replica::RangeDesc;
use crate::replication::raft::{RaftConfig, RaftReplication};
use crate::replication::recovery::RaftRecovery;
use crate::replication::{DirectApply, Replication};
use crate::store::Store;
use crate::transport::{LocalTransport, StoreId, Transport};

/// Simulated time starts here (2023-11-14), so timestamps look real.
pub const SIM_EPOCH_NANOS: u64 = 1_700_000_000_000_000_000;
/// Most task polls of one [`Sim::run_until`] before it gives up (a livelock
/// in a test must fail, not hang).
pub const SIM_STEPS_MAX: u64 = 50_000_000;

/// SplitMix64: small, fast, good enough for schedules.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }
}

struct TaskWaker {
    id: u64,
    ready: Arc<Mutex<BTreeSet<u64>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // The simulator is single-threaded; the lock is never contended.
        self.ready
            .lock()
            .expect("sim ready set poisoned")
            .insert(self.id);
    }
}

struct Task {
    future: LocalBoxFuture<'static, ()>,
    group: u32,
}

struct SimState {
    now: Cell<u64>,
    rng: RefCell<Rng>,
    next_task: Cell<u64>,
    tasks: RefCell<HashMap<u64, Task>>,
    ready: Arc<Mutex<BTreeSet<u64>>>,
    timers: RefCell<BTreeMap<(u64, u64), Waker>>,
    next_timer: Cell<u64>,
    killed: RefCell<HashSet<u32>>,
    shut_down: Cell<bool>,
    step_jitter_nanos: u64,
}

/// The simulator; clones share it.
#[derive(Clone)]
pub struct Sim {
    state: Rc<SimState>,
}

impl Sim {
    /// A simulator whose schedule derives from `seed`; every poll advances
    /// time by up to `step_jitter` (uniformly).
    pub fn new(seed: u64, step_jitter: Duration) -> Sim {
        Sim {
            state: Rc::new(SimState {
                now: Cell::new(SIM_EPOCH_NANOS),
                rng: RefCell::new(Rng::new(seed)),
                next_task: Cell::new(0),
                tasks: RefCell::new(HashMap::new()),
                ready: Arc::new(Mutex::new(BTreeSet::new())),
                timers: RefCell::new(BTreeMap::new()),
                next_timer: Cell::new(0),
                killed: RefCell::new(HashSet::new()),
                shut_down: Cell::new(false),
                step_jitter_nanos: u64::try_from(step_jitter.as_nanos()).unwrap_or(u64::MAX),
            }),
        }
    }

    pub fn now_nanos(&self) -> u64 {
        self.state.now.get()
    }

    pub fn random_u64(&self) -> u64 {
        self.state.rng.borrow_mut().next_u64()
    }

    pub fn rng_below(&self, n: u64) -> u64 {
        self.state.rng.borrow_mut().below(n)
    }

    /// An [`Env`] for tasks of `group`, whose clock reads `skew_nanos` off
    /// the simulated time.
    pub fn env(&self, group: u32, skew_nanos: i64) -> Rc<SimEnv> {
        Rc::new(SimEnv {
            sim: self.clone(),
            group,
            skew_nanos,
        })
    }

    /// Runs `future` as a task of `group` (dropped at once if the group was
    /// killed).
    pub fn spawn(&self, group: u32, future: LocalBoxFuture<'static, ()>) {
        if self.state.shut_down.get() || self.state.killed.borrow().contains(&group) {
            return;
        }
        let id = self.state.next_task.get();
        self.state.next_task.set(id + 1);
        self.state
            .tasks
            .borrow_mut()
            .insert(id, Task { future, group });
        self.state
            .ready
            .lock()
            .expect("sim ready set poisoned")
            .insert(id);
    }

    /// Drops every task of `group` (a crash) and refuses new ones until
    /// [`Sim::revive`].
    pub fn kill(&self, group: u32) {
        self.state.killed.borrow_mut().insert(group);
        let doomed: Vec<u64> = self
            .state
            .tasks
            .borrow()
            .iter()
            .filter(|(_, t)| t.group == group)
            .map(|(id, _)| *id)
            .collect();
        for id in doomed {
            let task = self.state.tasks.borrow_mut().remove(&id);
            // Dropped outside the borrow: a drop may spawn (and be refused).
            drop(task);
        }
    }

    /// Drops every task and timer and refuses new tasks: the end of a
    /// simulation. Tasks hold the simulator through their environments, so
    /// without this a finished simulation's pending tasks (heartbeat loops,
    /// a store's background work) would keep it all alive.
    pub fn shutdown(&self) {
        self.state.shut_down.set(true);
        let tasks = std::mem::take(&mut *self.state.tasks.borrow_mut());
        drop(tasks);
        let timers = std::mem::take(&mut *self.state.timers.borrow_mut());
        drop(timers);
        self.state
            .ready
            .lock()
            .expect("sim ready set poisoned")
            .clear();
    }

    pub fn revive(&self, group: u32) {
        self.state.killed.borrow_mut().remove(&group);
    }

    /// Tasks alive.
    pub fn tasks(&self) -> usize {
        self.state.tasks.borrow().len()
    }

    fn sleep_until(&self, deadline: u64) -> LocalBoxFuture<'static, ()> {
        Box::pin(SimSleep {
            sim: self.clone(),
            deadline,
            key: None,
        })
    }

    /// Polls one ready task; `false` if none was ready.
    fn step(&self) -> bool {
        let id = {
            let mut ready = self.state.ready.lock().expect("sim ready set poisoned");
            if ready.is_empty() {
                return false;
            }
            let pick = self.state.rng.borrow_mut().below(ready.len() as u64) as usize;
            let id = *ready.iter().nth(pick).expect("picked within len");
            ready.remove(&id);
            id
        };
        let jitter = match self.state.step_jitter_nanos {
            0 => 0,
            j => self.state.rng.borrow_mut().below(j + 1),
        };
        self.state.now.set(self.state.now.get() + jitter);
        let Some(mut task) = self.state.tasks.borrow_mut().remove(&id) else {
            return true; // finished or killed since it was woken
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            ready: self.state.ready.clone(),
        }));
        let mut cx = Context::from_waker(&waker);
        if task.future.as_mut().poll(&mut cx).is_pending()
            && !self.state.killed.borrow().contains(&task.group)
        {
            self.state.tasks.borrow_mut().insert(id, task);
        }
        self.fire_timers();
        true
    }

    fn fire_timers(&self) {
        let now = self.state.now.get();
        loop {
            let due = {
                let mut timers = self.state.timers.borrow_mut();
                match timers.first_key_value() {
                    Some((&(deadline, seq), _)) if deadline <= now => {
                        timers.remove(&(deadline, seq))
                    }
                    _ => None,
                }
            };
            match due {
                Some(waker) => waker.wake(),
                None => return,
            }
        }
    }

    /// Jumps time to the next timer; `false` if there is none.
    fn advance_to_timer(&self) -> bool {
        let next = self
            .state
            .timers
            .borrow()
            .first_key_value()
            .map(|(&(d, _), _)| d);
        match next {
            Some(deadline) => {
                self.state.now.set(self.state.now.get().max(deadline));
                self.fire_timers();
                true
            }
            None => false,
        }
    }

    /// Runs tasks until `done()` holds (`true`), or nothing can run and no
    /// timer is set (`false`). Time jumps over idle periods, but never past
    /// `time_limit` of simulated time from now (`false` then too).
    pub fn run_until(&self, time_limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let stop_at = self
            .now_nanos()
            .saturating_add(u64::try_from(time_limit.as_nanos()).unwrap_or(u64::MAX));
        for _ in 0..SIM_STEPS_MAX {
            if done() {
                return true;
            }
            if self.step() {
                continue;
            }
            let next = self
                .state
                .timers
                .borrow()
                .first_key_value()
                .map(|(&(d, _), _)| d);
            match next {
                Some(d) if d <= stop_at => {
                    self.advance_to_timer();
                }
                _ => return done(),
            }
        }
        panic!("simulation did not settle in {SIM_STEPS_MAX} steps");
    }

    /// Moves simulated time forward by `d`, running whatever becomes
    /// runnable on the way (timers fire in order).
    pub fn advance(&self, d: Duration) {
        let target = self
            .now_nanos()
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        loop {
            while self.step() {}
            let next = self
                .state
                .timers
                .borrow()
                .first_key_value()
                .map(|(&(d, _), _)| d);
            match next {
                Some(deadline) if deadline <= target => {
                    self.advance_to_timer();
                }
                _ => break,
            }
        }
        self.state.now.set(self.state.now.get().max(target));
        self.fire_timers();
        while self.step() {}
    }

    /// Runs until no task is runnable, letting at most `time_limit` of
    /// simulated time pass through timers.
    pub fn run_for(&self, time_limit: Duration) {
        self.run_until(time_limit, || false);
    }

    /// Runs `future` to completion as a task of `group`.
    ///
    /// # Panics
    /// If it does not complete within `time_limit` of simulated time.
    pub fn block_on<T: 'static>(
        &self,
        group: u32,
        time_limit: Duration,
        future: impl Future<Output = T> + 'static,
    ) -> T {
        let slot: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let out = slot.clone();
        self.spawn(
            group,
            Box::pin(async move {
                let v = future.await;
                *out.borrow_mut() = Some(v);
            }),
        );
        let done = self.run_until(time_limit, || slot.borrow().is_some());
        assert!(
            done,
            "future did not complete within {time_limit:?} of simulated time"
        );
        let value = slot.borrow_mut().take().expect("completed");
        value
    }
}

struct SimSleep {
    sim: Sim,
    deadline: u64,
    key: Option<(u64, u64)>,
}

impl Future for SimSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sim.now_nanos() >= self.deadline {
            if let Some(key) = self.key.take() {
                self.sim.state.timers.borrow_mut().remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let seq = self.sim.state.next_timer.get();
                self.sim.state.next_timer.set(seq + 1);
                let key = (self.deadline, seq);
                self.key = Some(key);
                key
            }
        };
        self.sim
            .state
            .timers
            .borrow_mut()
            .insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for SimSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.sim.state.timers.borrow_mut().remove(&key);
        }
    }
}

/// The [`Env`] of one simulated shard or gateway.
pub struct SimEnv {
    sim: Sim,
    group: u32,
    skew_nanos: i64,
}

impl Env for SimEnv {
    fn now_nanos(&self) -> u64 {
        self.sim.now_nanos().saturating_add_signed(self.skew_nanos)
    }

    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()> {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sim
            .sleep_until(self.sim.now_nanos().saturating_add(nanos))
    }

    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        self.sim.spawn(self.group, task);
    }

    fn random_u64(&self) -> u64 {
        self.sim.random_u64()
    }
}

/// Groups `0..GATEWAY_GROUP_BASE` are stores; gateways count from here.
pub const GATEWAY_GROUP_BASE: u32 = 1000;

/// What the simulated stores keep their data in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// [`MemEngine`], written directly ([`DirectApply`]); survives a store
    /// restart whole (a durable engine in the abstract).
    Memory,
    /// The LSM on a seeded `SimDisk`, every write a synced WAL batch
    /// ([`LsmEngine::direct`]). A restart crashes the disk: what was not
    /// synced may be lost or torn, and the store recovers from the rest.
    Lsm,
    /// The LSM on a `SimDisk` in Raft mode: every range a single-voter Raft
    /// group whose log is the store's WAL ([`RaftReplication`]), the node's
    /// write path. A restart crashes the disk and replays the logs.
    Raft,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Memory, Backend::Lsm, Backend::Raft];
}

/// The LSM configuration of simulated stores: small memtables, tables and
/// WAL segments, so that flushes, compactions and segment recycling happen
/// within a test's few hundred writes.
pub fn sim_lsm_config(raft_log: bool, seed: u64) -> EngineConfig {
    EngineConfig {
        wal: WalConfig {
            segment_bytes: 64 * 4096,
            batch_bytes_max: 256 * 1024,
            segments_free_max: 2,
            zero_fill: false,
        },
        memtable_bytes: 32 * 1024,
        immutable_memtables_max: 3,
        table: TableOptions {
            block_bytes: 1024,
            restart_interval: 8,
            bloom_bits_per_key: 10,
        },
        block_cache_bytes: 256 * 1024,
        target_file_bytes: 32 * 1024,
        l0_compaction_trigger: 2,
        l0_stall_tables: 8,
        level1_bytes: 128 * 1024,
        level_multiplier: 4,
        raft_log,
        seed,
    }
}

/// Idle ranges' Raft pins are re-appended this many records behind the end.
pub const SIM_STALE_PIN_RECORDS: u64 = 64;

/// The directory of every simulated store on its own `SimDisk`.
const SIM_STORE_DIR: &str = "/store";

/// One store's engine, log and, for the LSM backends, disk and handles.
struct Slot {
    engine: Rc<dyn Engine>,
    log: Rc<dyn Replication>,
    /// The simulated disk (it outlives every life of the store).
    disk: Option<SimDisk>,
    /// This life's handle on it, fenced when the store crashes.
    store_disk: Option<StoreDisk>,
    lsm: Option<Rc<LsmEngine<StoreDisk>>>,
    raft: Option<Rc<RaftReplication<StoreDisk>>>,
}

/// Stores (one per simulated shard), their ranges, a transport, and clients.
pub struct SimCluster {
    pub sim: Sim,
    pub cfg: KvConfig,
    pub transport: Rc<LocalTransport>,
    pub backend: Backend,
    slots: RefCell<Vec<Slot>>,
    clocks: Vec<Rc<RefCell<Hlc>>>,
    skews: Vec<i64>,
    next_gateway: Cell<u32>,
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        // Pending tasks hold the simulator, the stores and their engines.
        self.sim.shutdown();
    }
}

impl SimCluster {
    /// `stores` stores on [`Backend::Memory`]; see [`SimCluster::with_backend`].
    pub fn new(
        sim: Sim,
        cfg: KvConfig,
        stores: usize,
        splits: &[&[u8]],
        skews: &[i64],
    ) -> SimCluster {
        SimCluster::with_backend(Backend::Memory, sim, cfg, stores, splits, skews)
    }

    /// `stores` stores on `backend`; ranges split at `splits` (sorted), the
    /// `i`-th range on store `i % stores`. Store `i`'s clock is skewed by
    /// `skews[i]` nanoseconds (missing entries: 0).
    pub fn with_backend(
        backend: Backend,
        sim: Sim,
        cfg: KvConfig,
        stores: usize,
        splits: &[&[u8]],
        skews: &[i64],
    ) -> SimCluster {
        assert!(stores > 0);
        let transport = Rc::new(LocalTransport::new());
        let mut starts: Vec<Bytes> = vec![Bytes::new()];
        starts.extend(splits.iter().map(|s| Bytes::copy_from_slice(s)));
        let mut per_store: Vec<Vec<RangeDesc>> = vec![Vec::new(); stores];
        for (i, start) in starts.iter().enumerate() {
            let span = Span {
                start: start.clone(),
                end: starts.get(i + 1).cloned(),
            };
            per_store[i % stores].push(RangeDesc {
                id: i as u64 + 1,
                span,
            });
        }
        let clocks = (0..stores)
            .map(|_| Rc::new(RefCell::new(Hlc::new(cfg.max_offset))))
            .collect();
        let cluster = SimCluster {
            sim,
            cfg,
            transport,
            backend,
            slots: RefCell::new(Vec::new()),
            clocks,
            skews: (0..stores)
                .map(|i| skews.get(i).copied().unwrap_or(0))
                .collect(),
            next_gateway: Cell::new(GATEWAY_GROUP_BASE),
        };
        for id in 0..stores as StoreId {
            let disk = (backend != Backend::Memory).then(|| {
                SimDisk::new(SimDiskOptions {
                    seed: cluster.sim.random_u64(),
                })
            });
            let slot = cluster.open_slot(id, disk);
            cluster.slots.borrow_mut().push(slot);
        }
        for (i, descs) in per_store.into_iter().enumerate() {
            let store = cluster.open_store(i as StoreId);
            let s = store.clone();
            cluster
                .sim
                .block_on(i as u32, Duration::from_secs(10), async move {
                    s.create_ranges(&descs).await
                })
                .expect("create ranges");
            cluster.transport.add_store(store);
        }
        cluster
    }

    /// Opens store `id`'s engine and log (recovering them from `disk`).
    fn open_slot(&self, id: StoreId, disk: Option<SimDisk>) -> Slot {
        let env: Rc<dyn Env> = self.sim.env(id, self.skews[id as usize]);
        match (self.backend, disk) {
            (Backend::Memory, _) => {
                let engine: Rc<dyn Engine> = Rc::new(MemEngine::new());
                Slot {
                    log: Rc::new(DirectApply::new(engine.clone())),
                    engine,
                    disk: None,
                    store_disk: None,
                    lsm: None,
                    raft: None,
                }
            }
            (backend, Some(disk)) => self.open_lsm_slot(id, backend, disk, env),
            (_, None) => panic!("an LSM backend needs a disk"),
        }
    }

    fn open_lsm_slot(
        &self,
        id: StoreId,
        backend: Backend,
        disk: SimDisk,
        env: Rc<dyn Env>,
    ) -> Slot {
        let raft_mode = backend == Backend::Raft;
        let config = sim_lsm_config(raft_mode, self.sim.random_u64());
        let seed = self.sim.random_u64();
        let store_disk = StoreDisk::new(disk.clone());
        let d = store_disk.clone();
        let open_env = env.clone();
        let (lsm, raft) = self.sim.block_on(id, Duration::from_secs(10), async move {
            let dir = std::path::Path::new(SIM_STORE_DIR);
            let mut recovery = RaftRecovery::new();
            let (lsm, recovered) = LsmCore::open(d, dir, config, |r| recovery.visit(r))
                .await
                .expect("open the simulated LSM");
            let lsm = Rc::new(lsm);
            if !raft_mode {
                return (lsm, None);
            }
            let log = recovery
                .finish(&recovered.applied)
                .expect("recover the Raft logs");
            let mut raft_config = RaftConfig::new(u64::from(id) + 1, seed);
            // Re-append idle ranges' pins often, so tests exercise it.
            raft_config.stale_pin_records = SIM_STALE_PIN_RECORDS;
            let raft = RaftReplication::open(lsm.clone(), log, open_env, raft_config)
                .await
                .expect("open the Raft host");
            (lsm, Some(raft))
        });
        let background = lsm.clone();
        self.sim.spawn(
            id,
            Box::pin(async move { background.run_background().await }),
        );
        let (engine, log): (Rc<LsmEngine<StoreDisk>>, Rc<dyn Replication>) = match &raft {
            Some(raft) => {
                let runner = raft.clone();
                self.sim
                    .spawn(id, Box::pin(async move { runner.run().await }));
                (Rc::new(LsmEngine::raft(lsm)), raft.clone())
            }
            None => {
                let engine = Rc::new(LsmEngine::direct(lsm, env));
                let dyn_engine: Rc<dyn Engine> = engine.clone();
                (engine, Rc::new(DirectApply::new(dyn_engine)))
            }
        };
        Slot {
            engine: engine.clone(),
            log,
            disk: Some(disk),
            store_disk: Some(store_disk),
            lsm: Some(engine),
            raft,
        }
    }

    fn open_store(&self, id: StoreId) -> Rc<Store> {
        let (engine, log) = {
            let slots = self.slots.borrow();
            let slot = &slots[id as usize];
            (slot.engine.clone(), slot.log.clone())
        };
        let env: Rc<dyn Env> = self.sim.env(id, self.skews[id as usize]);
        let clock = self.clocks[id as usize].clone();
        let cfg = self.cfg.clone();
        let store = self
            .sim
            .block_on(id, Duration::from_secs(10), async move {
                Store::open(id, engine, log, env, clock, cfg).await
            })
            .expect("open store");
        let weak: std::rc::Weak<dyn Transport> =
            Rc::downgrade(&(self.transport.clone() as Rc<dyn Transport>));
        store.set_transport(weak);
        store
    }

    pub fn stores(&self) -> usize {
        self.slots.borrow().len()
    }

    /// Store `store`'s engine (as it is now: a restart replaces it on the
    /// LSM backends).
    pub fn engine(&self, store: StoreId) -> Rc<dyn Engine> {
        self.slots.borrow()[store as usize].engine.clone()
    }

    /// Store `store`'s simulated disk (LSM backends).
    pub fn disk(&self, store: StoreId) -> Option<SimDisk> {
        self.slots.borrow()[store as usize].disk.clone()
    }

    /// Store `store`'s Raft host ([`Backend::Raft`]).
    pub fn raft(&self, store: StoreId) -> Option<Rc<RaftReplication<StoreDisk>>> {
        self.slots.borrow()[store as usize].raft.clone()
    }

    /// A client on a new gateway, co-located with `store` (sharing its
    /// clock). Returns the client and its task group (for [`Sim::kill`]).
    pub fn client(&self, store: StoreId) -> (KvClient, u32) {
        let group = self.next_gateway.get();
        self.next_gateway.set(group + 1);
        let env: Rc<dyn Env> = self.sim.env(group, self.skews[store as usize]);
        let transport: Rc<dyn Transport> = self.transport.clone();
        let client = KvClient::new(
            transport,
            env,
            self.clocks[store as usize].clone(),
            self.cfg.clone(),
        );
        (client, group)
    }

    /// Crashes store `id` (its tasks die, its in-memory state is lost) and
    /// restarts it. The memory engine survives whole; on the LSM backends
    /// the disk crashes (unsynced writes dropped, kept or torn) and the
    /// store recovers from it.
    pub fn restart_store(&self, id: StoreId) {
        self.transport.remove_store(id);
        let disk = {
            let slots = self.slots.borrow();
            let slot = &slots[id as usize];
            if let Some(raft) = &slot.raft {
                raft.stop();
            }
            if let Some(lsm) = &slot.lsm {
                lsm.fence();
            }
            if let Some(store_disk) = &slot.store_disk {
                store_disk.fence();
            }
            slot.disk.clone()
        };
        self.sim.kill(id);
        self.sim.revive(id);
        if let Some(disk) = &disk {
            disk.crash();
            let slot = self.open_slot(id, Some(disk.clone()));
            self.slots.borrow_mut()[id as usize] = slot;
        }
        let store = self.open_store(id);
        self.transport.add_store(store);
    }
}
