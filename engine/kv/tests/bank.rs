//! The bank: accounts spread over ranges on three stores, concurrent
//! SERIALIZABLE transfers (with client-side retry on 40001/40P01) and
//! concurrent readers summing every balance, all futures on one thread with
//! a seeded random interleaving. Ranges are small, so they split during the
//! run; store clocks are skewed within the maximum offset.
//!
//! Checked: every read sees the exact initial total; at the end the total is
//! unchanged, and every balance equals its initial value plus the transfers
//! in the ledger, which holds every acknowledged transfer exactly once (and,
//! when a gateway crashed mid-transfer, at most its one in-flight transfer
//! besides).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use teller_kv::sim::{Backend, Sim, SimCluster};
use teller_kv::sync::yield_now;
use teller_kv::{
    Isolation, KvClient, KvConfig, KvError, Request, Response, ScanRequest, Span, TxnOptions,
};

const ACCOUNTS: usize = 40;
const INITIAL: i64 = 1_000;
const WRITERS: usize = 6;
const TRANSFERS_PER_WRITER: usize = 25;
const READERS: usize = 2;
const READS_PER_READER: usize = 15;
const ATTEMPTS_MAX: usize = 100;

fn account(i: usize) -> Bytes {
    Bytes::from(format!("acct/{i:03}"))
}

fn ledger_key(writer: usize, n: usize) -> Bytes {
    Bytes::from(format!("ledger/{writer:02}/{n:04}"))
}

fn parse(v: &Bytes) -> i64 {
    std::str::from_utf8(v)
        .expect("utf8")
        .parse()
        .expect("number")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Transfer {
    from: usize,
    to: usize,
    amount: i64,
}

impl Transfer {
    fn encode(&self) -> Bytes {
        Bytes::from(format!("{} {} {}", self.from, self.to, self.amount))
    }

    fn decode(v: &Bytes) -> Transfer {
        let s = std::str::from_utf8(v).expect("utf8");
        let mut it = s.split(' ').map(|p| p.parse::<i64>().expect("number"));
        let (from, to, amount) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        Transfer {
            from: from as usize,
            to: to as usize,
            amount,
        }
    }
}

struct Outcome {
    /// Set by writer 0 once it holds intents of a transfer (after its third).
    holding: bool,
    acknowledged: BTreeMap<Bytes, Transfer>,
    in_flight: BTreeMap<Bytes, Transfer>,
    sums: Vec<i64>,
    retries: usize,
}

async fn transfer_once(
    client: &KvClient,
    key: &Bytes,
    t: Transfer,
    holding: Option<&RefCell<Outcome>>,
) -> Result<(), KvError> {
    let mut txn = client.begin(TxnOptions::default());
    let r = txn
        .batch(vec![
            Request::Get {
                key: account(t.from),
                lock: None,
            },
            Request::Get {
                key: account(t.to),
                lock: None,
            },
        ])
        .await?;
    let bal = |i: usize| match &r[i] {
        Response::Get(Some(v)) => parse(v),
        other => panic!("balance read {other:?}"),
    };
    let (from, to) = (bal(0), bal(1));
    txn.batch(vec![
        Request::Put {
            key: account(t.from),
            value: Bytes::from((from - t.amount).to_string()),
        },
        Request::Put {
            key: account(t.to),
            value: Bytes::from((to + t.amount).to_string()),
        },
        Request::ConditionalPut {
            key: key.clone(),
            value: t.encode(),
            expected: None,
        },
    ])
    .await?;
    if let Some(out) = holding {
        out.borrow_mut().holding = true;
        // Give the test the chance to crash the gateway right here.
        yield_now().await;
        yield_now().await;
    }
    txn.commit().await?;
    Ok(())
}

async fn writer(client: KvClient, sim: Sim, id: usize, out: Rc<RefCell<Outcome>>) {
    for n in 0..TRANSFERS_PER_WRITER {
        let from = sim.rng_below(ACCOUNTS as u64) as usize;
        let to = (from + 1 + sim.rng_below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
        let t = Transfer {
            from,
            to,
            amount: 1 + sim.rng_below(50) as i64,
        };
        let key = ledger_key(id, n);
        out.borrow_mut().in_flight.insert(key.clone(), t);
        let mut done = false;
        for _ in 0..ATTEMPTS_MAX {
            let holding = (id == 0 && n >= 3).then_some(&*out);
            match transfer_once(&client, &key, t, holding).await {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) if e.is_retryable() => out.borrow_mut().retries += 1,
                Err(e) => panic!("transfer {key:?}: {e}"),
            }
        }
        assert!(done, "transfer {key:?} failed {ATTEMPTS_MAX} times");
        let mut o = out.borrow_mut();
        o.in_flight.remove(&key);
        o.acknowledged.insert(key, t);
    }
}

async fn sum_all(client: &KvClient, isolation: Isolation) -> Result<i64, KvError> {
    let mut txn = client.begin(TxnOptions {
        isolation,
        read_only: true,
        ..TxnOptions::default()
    });
    let mut total = 0;
    let mut rows = 0;
    let mut span = Span::new(&b"acct/"[..], &b"acct0"[..]);
    loop {
        let mut scan = ScanRequest::new(span.clone());
        scan.limit_rows = Some(7);
        let r = txn.batch(vec![Request::Scan(scan)]).await?;
        let Response::Scan(s) = &r[0] else {
            panic!("scan answered {:?}", r[0])
        };
        rows += s.rows.len();
        total += s.rows.iter().map(|kv| parse(&kv.value)).sum::<i64>();
        match &s.resume {
            Some(rest) => span = rest.clone(),
            None => break,
        }
    }
    txn.commit().await?;
    assert_eq!(rows, ACCOUNTS, "a reader saw {rows} accounts");
    Ok(total)
}

async fn reader(client: KvClient, isolation: Isolation, out: Rc<RefCell<Outcome>>) {
    for _ in 0..READS_PER_READER {
        for attempt in 0.. {
            match sum_all(&client, isolation).await {
                Ok(total) => {
                    out.borrow_mut().sums.push(total);
                    break;
                }
                Err(e) if e.is_retryable() && attempt < ATTEMPTS_MAX => {
                    out.borrow_mut().retries += 1
                }
                Err(e) => panic!("reader: {e}"),
            }
        }
    }
}

fn cluster(seed: u64, backend: Backend) -> SimCluster {
    let cfg = KvConfig {
        max_offset: Duration::from_millis(2),
        range_split_bytes: 4 * 1024,
        ..KvConfig::default()
    };
    let sim = Sim::new(seed, Duration::from_micros(20));
    let splits: &[&[u8]] = &[b"acct/010", b"acct/020", b"acct/030", b"ledger/"];
    SimCluster::with_backend(backend, sim, cfg, 3, splits, &[0, 700_000, -900_000])
}

fn load(c: &SimCluster) {
    let (client, g) = c.client(0);
    c.sim.block_on(g, Duration::from_secs(10), async move {
        let mut txn = client.begin(TxnOptions::default());
        let reqs = (0..ACCOUNTS)
            .map(|i| Request::Put {
                key: account(i),
                value: Bytes::from(INITIAL.to_string()),
            })
            .collect();
        txn.batch(reqs).await.expect("load");
        txn.commit().await.expect("load commit");
    });
}

/// Every balance and the ledger, read at the end.
fn final_state(c: &SimCluster) -> (Vec<i64>, BTreeMap<Bytes, Transfer>) {
    let (client, g) = c.client(1);
    c.sim.block_on(g, Duration::from_secs(60), async move {
        let mut txn = client.begin(TxnOptions::default());
        let r = txn
            .batch(vec![
                Request::Scan(ScanRequest::new(Span::new(&b"acct/"[..], &b"acct0"[..]))),
                Request::Scan(ScanRequest::new(Span::new(
                    &b"ledger/"[..],
                    &b"ledger0"[..],
                ))),
            ])
            .await
            .expect("final read");
        txn.commit().await.expect("final commit");
        let (Response::Scan(accts), Response::Scan(ledger)) = (&r[0], &r[1]) else {
            panic!("{r:?}")
        };
        assert!(accts.resume.is_none() && ledger.resume.is_none());
        let balances = accts.rows.iter().map(|kv| parse(&kv.value)).collect();
        let ledger = ledger
            .rows
            .iter()
            .map(|kv| (kv.key.clone(), Transfer::decode(&kv.value)))
            .collect();
        (balances, ledger)
    })
}

fn check(c: &SimCluster, out: &Outcome, crashed_writer: Option<usize>) {
    let total = INITIAL * ACCOUNTS as i64;
    assert!(
        out.sums.iter().all(|&s| s == total),
        "a reader saw a wrong total: {:?}",
        out.sums
    );
    let (balances, ledger) = final_state(c);
    assert_eq!(balances.len(), ACCOUNTS);
    assert_eq!(balances.iter().sum::<i64>(), total, "total changed");
    let mut expected = vec![INITIAL; ACCOUNTS];
    for t in ledger.values() {
        expected[t.from] -= t.amount;
        expected[t.to] += t.amount;
    }
    assert_eq!(balances, expected, "balances disagree with the ledger");
    for (key, t) in &out.acknowledged {
        assert_eq!(
            ledger.get(key),
            Some(t),
            "acknowledged transfer {key:?} missing or altered"
        );
    }
    for (key, t) in &ledger {
        if !out.acknowledged.contains_key(key) {
            let prefix = format!(
                "ledger/{:02}/",
                crashed_writer.expect("unacknowledged ledger row without a crash")
            );
            assert!(
                key.starts_with(prefix.as_bytes()),
                "unexpected ledger row {key:?}"
            );
            assert_eq!(
                out.in_flight.get(key),
                Some(t),
                "ledger row {key:?} was not in flight"
            );
        }
    }
}

fn run(seed: u64, crash: bool, backend: Backend) -> Outcome {
    let c = cluster(seed, backend);
    load(&c);
    let out = Rc::new(RefCell::new(Outcome {
        holding: false,
        acknowledged: BTreeMap::new(),
        in_flight: BTreeMap::new(),
        sums: Vec::new(),
        retries: 0,
    }));
    let mut groups = Vec::new();
    for w in 0..WRITERS {
        let (client, g) = c.client((w % 3) as u32);
        c.sim
            .spawn(g, Box::pin(writer(client, c.sim.clone(), w, out.clone())));
        groups.push(g);
    }
    let isolations = [Isolation::Serializable, Isolation::Snapshot];
    for r in 0..READERS {
        let (client, g) = c.client((r % 3) as u32);
        c.sim
            .spawn(g, Box::pin(reader(client, isolations[r % 2], out.clone())));
    }
    let crashed = if crash {
        // Kill writer 0's gateway while it holds intents: the others must
        // abort it through its record once its heartbeat expires.
        let holding = c
            .sim
            .run_until(Duration::from_secs(60), || out.borrow().holding);
        assert!(holding, "writer 0 never held intents");
        c.sim.kill(groups[0]);
        Some(0)
    } else {
        None
    };
    let expected = WRITERS * TRANSFERS_PER_WRITER - if crash { TRANSFERS_PER_WRITER } else { 0 };
    let target = |o: &Outcome| {
        let others = o
            .acknowledged
            .keys()
            .filter(|k| !crash || !k.starts_with(b"ledger/00/"))
            .count();
        others >= expected && o.sums.len() >= READERS * READS_PER_READER
    };
    let done = c
        .sim
        .run_until(Duration::from_secs(600), || target(&out.borrow()));
    assert!(
        done,
        "seed {seed}: the run did not finish (stuck transactions?)"
    );
    let o = Rc::try_unwrap(out).ok().map(RefCell::into_inner);
    let o = match o {
        Some(o) => o,
        None => panic!("outcome still shared"),
    };
    check(&c, &o, crashed);
    let ranges = c.transport.ranges().len();
    eprintln!(
        "{backend:?} seed {seed}: {} transfers, {} sums, {} retries, {ranges} ranges, {:.3} s simulated",
        o.acknowledged.len(),
        o.sums.len(),
        o.retries,
        (c.sim.now_nanos() - teller_kv::sim::SIM_EPOCH_NANOS) as f64 / 1e9
    );
    assert!(
        ranges > 5,
        "seed {seed}: expected splits during the run, have {ranges} ranges"
    );
    o
}

/// Seeds to run: `BANK_SEEDS=first..last` sweeps more (default
/// `1..=default_last`).
fn seeds(default_last: u64) -> std::ops::RangeInclusive<u64> {
    match std::env::var("BANK_SEEDS").ok().and_then(|s| {
        let (a, b) = s.split_once("..")?;
        Some(a.parse().ok()?..=b.parse().ok()?)
    }) {
        Some(r) => r,
        None => 1..=default_last,
    }
}

fn totals_are_exact(backend: Backend, default_seeds: u64) {
    for seed in seeds(default_seeds) {
        eprintln!("bank {backend:?} seed {seed}");
        let o = run(seed, false, backend);
        assert_eq!(o.acknowledged.len(), WRITERS * TRANSFERS_PER_WRITER);
    }
}

fn survives_a_gateway_crash(backend: Backend, default_seeds: u64) {
    for seed in seeds(default_seeds) {
        eprintln!("bank crash {backend:?} seed {seed}");
        run(seed + 100, true, backend);
    }
}

#[test]
fn bank_totals_are_exact_across_seeds() {
    totals_are_exact(Backend::Memory, 4);
}

#[test]
fn bank_survives_a_gateway_crash_mid_run() {
    survives_a_gateway_crash(Backend::Memory, 2);
}

/// The same bank over the LSM on a simulated disk, every write synced.
#[test]
fn bank_on_the_lsm() {
    totals_are_exact(Backend::Lsm, 2);
    survives_a_gateway_crash(Backend::Lsm, 1);
}

/// The same bank on the node's write path: every range a Raft group whose
/// log is the store's WAL; splits start new groups.
#[test]
fn bank_on_raft_logs() {
    totals_are_exact(Backend::Raft, 2);
    survives_a_gateway_crash(Backend::Raft, 1);
}
