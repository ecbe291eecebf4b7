//! A deterministic simulator for the KV layer: a single-threaded executor
//! that picks the next task to poll with a seeded RNG, simulated physical
//! time (advanced a little at every step and jumped to the next timer when
//! nothing is runnable), per-clock skew, and task groups that can be killed
//! at once (a crashed gateway or shard).
//!
//! Every run is a function of its seed: a failing interleaving replays
//! exactly. [`SimCluster`] builds stores, ranges, a transport and clients on
//! top of it for tests.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;

use crate::client::KvClient;
use crate::config::KvConfig;
use crate::engine::memory::MemEngine;
use crate::engine::{Engine, LocalBoxFuture};
use crate::env::Env;
use crate::hlc::Hlc;
use crate::keys::Span;
use crate::replica::RangeDesc;
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
        if self.state.killed.borrow().contains(&group) {
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

/// Stores (one per simulated shard), their ranges, a transport, and clients.
pub struct SimCluster {
    pub sim: Sim,
    pub cfg: KvConfig,
    pub transport: Rc<LocalTransport>,
    engines: Vec<Rc<MemEngine>>,
    clocks: Vec<Rc<RefCell<Hlc>>>,
    skews: Vec<i64>,
    next_gateway: Cell<u32>,
}

impl SimCluster {
    /// `stores` stores; ranges split at `splits` (sorted), the `i`-th range
    /// on store `i % stores`. Store `i`'s clock is skewed by `skews[i]`
    /// nanoseconds (missing entries: 0).
    pub fn new(
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
        let cluster = SimCluster {
            sim,
            cfg,
            transport,
            engines: (0..stores).map(|_| Rc::new(MemEngine::new())).collect(),
            clocks: Vec::new(),
            skews: (0..stores)
                .map(|i| skews.get(i).copied().unwrap_or(0))
                .collect(),
            next_gateway: Cell::new(GATEWAY_GROUP_BASE),
        };
        let mut cluster = cluster;
        cluster.clocks = (0..stores)
            .map(|_| Rc::new(RefCell::new(Hlc::new(cluster.cfg.max_offset))))
            .collect();
        for (i, descs) in per_store.into_iter().enumerate() {
            let store = cluster.open_store(i as StoreId);
            let s = store.clone();
            cluster
                .sim
                .block_on(i as u32, Duration::from_secs(1), async move {
                    s.create_ranges(&descs).await
                })
                .expect("create ranges");
            cluster.transport.add_store(store);
        }
        cluster
    }

    fn open_store(&self, id: StoreId) -> Rc<Store> {
        let engine: Rc<dyn Engine> = self.engines[id as usize].clone();
        let env: Rc<dyn Env> = self.sim.env(id, self.skews[id as usize]);
        let clock = self.clocks[id as usize].clone();
        let cfg = self.cfg.clone();
        let store = self
            .sim
            .block_on(id, Duration::from_secs(1), async move {
                Store::open(id, engine, env, clock, cfg).await
            })
            .expect("open store");
        let store = Rc::new(store);
        let weak: std::rc::Weak<dyn Transport> =
            Rc::downgrade(&(self.transport.clone() as Rc<dyn Transport>));
        store.set_transport(weak);
        store
    }

    pub fn stores(&self) -> usize {
        self.engines.len()
    }

    pub fn engine(&self, store: StoreId) -> &Rc<MemEngine> {
        &self.engines[store as usize]
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

    /// Crashes store `id` (its tasks die, its in-memory state is lost; the
    /// engine survives) and restarts it.
    pub fn restart_store(&self, id: StoreId) {
        self.transport.remove_store(id);
        self.sim.kill(id);
        self.sim.revive(id);
        let store = self.open_store(id);
        self.transport.add_store(store);
    }
}
