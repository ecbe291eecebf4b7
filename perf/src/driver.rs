//! The workload-agnostic run loop.
//!
//! One tokio task per simulated client, each with its own connection (and so
//! its own prepared statements). A client picks an operation, waits for its
//! slot when a rate limit is set, executes it with bounded retries of
//! serialization failures and deadlocks, records the latency into its own
//! [`Recorder`], and starts over until the duration or the operation budget
//! is used up. A reporter task gathers the clients' interval recorders once
//! per second for the progress line.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_postgres::Client;

use crate::conn::{connect, is_retryable, is_session_fatal, sqlstate};
use crate::stats::{progress_line, Recorder, Summary};

/// Clients of a run when `--concurrency` is not given (TPC-C has its own).
pub const CONCURRENCY_DEFAULT: usize = 8;
/// Retries of one operation after `40001`/`40P01` before it counts as failed.
pub const RETRIES_MAX: u32 = 32;
/// First pause before retrying a serialization failure or deadlock; it
/// doubles per attempt up to the maximum, and the actual pause is a uniform
/// random fraction of it (full jitter) so that conflicting clients spread out.
const RETRY_BACKOFF_BASE: Duration = Duration::from_micros(500);
const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(50);
/// Violated invariants described on stderr per process; the rest are counted.
const INVARIANT_REPORTS_MAX: u64 = 10;
static INVARIANT_REPORTS: AtomicU64 = AtomicU64::new(0);
/// Live progress period.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// Event counted each time a client replaces a closed connection.
pub const RECONNECT_EVENT: &str = "reconnect";
/// Upper bound of the pause between reconnection attempts.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How a run is driven; independent of the workload.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub url: String,
    pub concurrency: usize,
    /// Measured duration after ramp-up; `None` runs until the budget is used.
    pub duration: Option<Duration>,
    pub ramp_up: Duration,
    /// Total operations per second over all clients.
    pub rate: Option<f64>,
    /// Total operations to start over all clients.
    pub operations: Option<u64>,
    pub seed: u64,
    pub progress: bool,
}

/// Why one operation failed.
#[derive(Debug)]
pub enum OpError {
    Db(tokio_postgres::Error),
    /// The workload saw a result that breaks its invariant.
    Invariant(String),
}

impl From<tokio_postgres::Error> for OpError {
    fn from(e: tokio_postgres::Error) -> Self {
        OpError::Db(e)
    }
}

/// A workload: names its operation types and opens clients.
pub trait Workload: Send + Sync + 'static {
    type Worker: Worker;

    fn name(&self) -> String;
    fn op_names(&self) -> Vec<&'static str>;
    /// Clients when the command line does not say.
    fn default_concurrency(&self) -> usize {
        CONCURRENCY_DEFAULT
    }
    /// Prepares a client's statements on a fresh connection.
    fn open(
        &self,
        client: Client,
        client_id: usize,
        seed: u64,
    ) -> impl Future<Output = Result<Self::Worker, tokio_postgres::Error>> + Send;
    /// Workload-specific results (tpmC, ...) and run parameters added to the
    /// summary and the JSON result.
    fn extra(&self, _summary: &Summary) -> Map<String, Value> {
        Map::new()
    }
    /// Runs once after the measured run, before [`Workload::extra`]: a
    /// workload may look at the server again (the txn workload re-reads
    /// where its rows live).
    fn after_run(
        &self,
        _url: &str,
    ) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send {
        async { Ok(()) }
    }
}

/// One simulated client of a workload.
pub trait Worker: Send + 'static {
    /// An operation with all its parameters, so that a retry repeats it.
    type Op: Send + Sync;

    fn next_op(&mut self) -> Self::Op;
    /// Index of the operation's type in [`Workload::op_names`].
    fn kind(&self, op: &Self::Op) -> usize;
    /// Runs the operation once; `Ok(Some(event))` counts a notable outcome.
    fn execute(
        &mut self,
        op: &Self::Op,
    ) -> impl Future<Output = Result<Option<&'static str>, OpError>> + Send;
    /// Keying time before and think time after the operation.
    fn pauses(&mut self, _op: &Self::Op) -> (Duration, Duration) {
        (Duration::ZERO, Duration::ZERO)
    }
    fn is_closed(&self) -> bool;
}

/// What the reporter and a client share: the client writes, the reporter
/// swaps the interval recorder once per second. The lock is per client and
/// uncontended except for that swap.
struct Slot {
    interval: Recorder,
    measured: Recorder,
}

struct Clock {
    start: Instant,
    measure_start: Instant,
    end: Option<Instant>,
}

/// Runs `workload` as `opts` says and returns the measured summary.
pub async fn run<W: Workload>(
    workload: Arc<W>,
    opts: &RunOptions,
) -> Result<Summary, tokio_postgres::Error> {
    assert!(opts.concurrency > 0, "concurrency must be positive");
    // Fail fast on a bad URL or a missing schema rather than spinning errors.
    drop(
        workload
            .open(connect(&opts.url).await?, 0, opts.seed)
            .await?,
    );

    let names = workload.op_names();
    let start = Instant::now();
    let measure_start = start + opts.ramp_up;
    let duration = match (opts.duration, opts.operations) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    let clock = Arc::new(Clock {
        start,
        measure_start,
        end: duration.map(|d| measure_start + d),
    });
    let budget = Arc::new(AtomicU64::new(0));
    let slots: Vec<Arc<Mutex<Slot>>> = (0..opts.concurrency)
        .map(|_| {
            Arc::new(Mutex::new(Slot {
                interval: Recorder::new(names.len()),
                measured: Recorder::new(names.len()),
            }))
        })
        .collect();

    let tasks: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(id, slot)| {
            let client = ClientTask {
                workload: workload.clone(),
                opts: opts.clone(),
                id,
                slot: slot.clone(),
                budget: budget.clone(),
                clock: clock.clone(),
            };
            tokio::spawn(client.run())
        })
        .collect();
    let reporter = opts
        .progress
        .then(|| tokio::spawn(report(names.clone(), slots.clone(), start)));
    for t in tasks {
        t.await.expect("client task panicked");
    }
    let finished = Instant::now();
    if let Some(r) = reporter {
        r.abort();
        // Wait for it to stop so that no progress line follows the summary.
        let _ = r.await;
    }

    let mut total = Recorder::new(names.len());
    for slot in &slots {
        total.merge(&slot.lock().expect("slot lock").measured);
    }
    let end = clock.end.map_or(finished, |e| e.min(finished));
    Ok(Summary {
        workload: workload.name(),
        names,
        concurrency: opts.concurrency,
        seed: opts.seed,
        elapsed: end.saturating_duration_since(measure_start),
        recorder: total,
    })
}

async fn report(names: Vec<&'static str>, slots: Vec<Arc<Mutex<Slot>>>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
    let mut last = start;
    loop {
        let now = tick.tick().await;
        let mut interval = Recorder::new(names.len());
        for slot in &slots {
            let mut s = slot.lock().expect("slot lock");
            interval.merge(&s.interval);
            s.interval = Recorder::new(names.len());
        }
        println!(
            "{}",
            progress_line(&names, &interval, now - start, now - last)
        );
        last = now;
    }
}

struct ClientTask<W: Workload> {
    workload: Arc<W>,
    opts: RunOptions,
    id: usize,
    slot: Arc<Mutex<Slot>>,
    budget: Arc<AtomicU64>,
    clock: Arc<Clock>,
}

impl<W: Workload> ClientTask<W> {
    fn seed(&self, generation: u64) -> u64 {
        // Distinct, reproducible streams per client and per reconnection.
        self.opts
            .seed
            .wrapping_add((self.id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(generation.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn over(&self) -> bool {
        self.clock.end.is_some_and(|e| Instant::now() >= e)
    }

    fn take_budget(&self) -> bool {
        match self.opts.operations {
            None => true,
            Some(n) => self.budget.fetch_add(1, Ordering::Relaxed) < n,
        }
    }

    /// Connects (again), retrying with backoff until the run is over.
    async fn open(&self, generation: u64) -> Option<W::Worker> {
        let mut backoff = Duration::from_millis(50);
        while !self.over() {
            let opened = match connect(&self.opts.url).await {
                Ok(c) => self.workload.open(c, self.id, self.seed(generation)).await,
                Err(e) => Err(e),
            };
            match opened {
                Ok(w) => return Some(w),
                Err(e) => {
                    self.slot
                        .lock()
                        .expect("slot lock")
                        .interval
                        .retry(&sqlstate(&e));
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                }
            }
        }
        None
    }

    async fn run(self) {
        let n = self.opts.concurrency as u32;
        sleep_until(self.clock.start + self.opts.ramp_up * self.id as u32 / n).await;
        let period = self
            .opts
            .rate
            .map(|r| Duration::from_secs_f64(self.opts.concurrency as f64 / r.max(1e-9)));
        let mut next_slot = Instant::now();
        let mut jitter = SmallRng::seed_from_u64(self.seed(u64::MAX));
        let mut generation = 0;
        let Some(mut worker) = self.open(generation).await else {
            return;
        };
        while !self.over() && self.take_budget() {
            let op = worker.next_op();
            let kind = worker.kind(&op);
            let (keying, think) = worker.pauses(&op);
            if !keying.is_zero() {
                sleep(keying).await;
            }
            let begun = match period {
                Some(p) => {
                    let slot = next_slot;
                    next_slot += p;
                    sleep_until(slot).await;
                    slot
                }
                None => Instant::now(),
            };
            let result = self.execute(&mut worker, &op, &mut jitter).await;
            // A session the server ended may not look closed yet: reconnect
            // now rather than fail the next operation as well.
            let fatal = matches!(&result, Err(OpError::Db(e)) if is_session_fatal(e));
            self.record(kind, begun, result);
            if fatal || worker.is_closed() {
                // Counted apart from errors: a session killed between two
                // operations fails none of them.
                self.count_event(RECONNECT_EVENT);
                generation += 1;
                match self.open(generation).await {
                    Some(w) => worker = w,
                    None => return,
                }
            }
            if !think.is_zero() {
                sleep(think).await;
            }
        }
    }

    async fn execute(
        &self,
        worker: &mut W::Worker,
        op: &<W::Worker as Worker>::Op,
        jitter: &mut SmallRng,
    ) -> Result<Option<&'static str>, OpError> {
        let mut attempt = 0;
        loop {
            match worker.execute(op).await {
                Err(OpError::Db(e)) if is_retryable(&e) && attempt < RETRIES_MAX => {
                    attempt += 1;
                    self.count_retry(&sqlstate(&e));
                    let cap =
                        (RETRY_BACKOFF_BASE * 2u32.pow(attempt.min(16))).min(RETRY_BACKOFF_MAX);
                    sleep(cap.mul_f64(jitter.random::<f64>())).await;
                }
                other => return other,
            }
        }
    }

    fn count_event(&self, name: &'static str) {
        let mut s = self.slot.lock().expect("slot lock");
        s.interval.event(name);
        if Instant::now() >= self.clock.measure_start {
            s.measured.event(name);
        }
    }

    fn count_retry(&self, code: &str) {
        let mut s = self.slot.lock().expect("slot lock");
        s.interval.retry(code);
        if Instant::now() >= self.clock.measure_start {
            s.measured.retry(code);
        }
    }

    fn record(&self, kind: usize, begun: Instant, result: Result<Option<&'static str>, OpError>) {
        let now = Instant::now();
        // Counted when it ends after ramp-up and began before the end, so that
        // slow operations straddling the end still shape the tail.
        let measured = now >= self.clock.measure_start && self.clock.end.is_none_or(|e| begun < e);
        let mut s = self.slot.lock().expect("slot lock");
        let apply = |r: &mut Recorder| match &result {
            Ok(event) => {
                r.success(kind, now - begun);
                if let Some(ev) = event {
                    r.event(ev);
                }
            }
            Err(OpError::Db(e)) => r.failure(kind, &sqlstate(e)),
            Err(OpError::Invariant(_)) => r.failure(kind, "invariant"),
        };
        apply(&mut s.interval);
        if measured {
            apply(&mut s.measured);
        }
        drop(s);
        if let Err(OpError::Invariant(msg)) = &result {
            if INVARIANT_REPORTS.fetch_add(1, Ordering::Relaxed) < INVARIANT_REPORTS_MAX {
                eprintln!("invariant violated: {msg}");
            }
        }
    }
}
