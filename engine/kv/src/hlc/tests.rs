use super::*;

const MS: u64 = 1_000_000;
const OFFSET: Duration = Duration::from_millis(500);
const OFFSET_NANOS: u64 = 500 * MS;
const T0: u64 = 1_700_000_000 * NANOS_PER_SEC;

fn ts(wall_nanos: u64, logical: u32) -> Timestamp {
    Timestamp::new(wall_nanos, logical)
}

// ---- Timestamp ----

#[test]
fn timestamp_orders_by_wall_then_logical() {
    assert!(ts(1, u32::MAX) < ts(2, 0));
    assert!(ts(2, 0) < ts(2, 1));
    assert!(Timestamp::ZERO < ts(0, 1));
    assert!(ts(u64::MAX, u32::MAX - 1) < Timestamp::MAX);
    assert_eq!(Timestamp::default(), Timestamp::ZERO);
}

#[test]
fn next_and_prev_are_adjacent_and_carry() {
    assert_eq!(ts(5, 3).next(), ts(5, 4));
    assert_eq!(ts(5, u32::MAX).next(), ts(6, 0));
    assert_eq!(ts(6, 0).prev(), ts(5, u32::MAX));
    assert_eq!(ts(5, 4).prev(), ts(5, 3));
    for t in [ts(0, 0), ts(5, u32::MAX), ts(9, 7), ts(u64::MAX, 0)] {
        assert_eq!(t.next().prev(), t);
        assert!(t < t.next());
    }
    assert_eq!(Timestamp::MAX.checked_next(), None);
    assert_eq!(Timestamp::ZERO.checked_prev(), None);
    assert_eq!(Timestamp::MAX.prev().next(), Timestamp::MAX);
}

#[test]
#[should_panic(expected = "no successor")]
fn next_of_max_panics() {
    let _ = Timestamp::MAX.next();
}

#[test]
#[should_panic(expected = "no predecessor")]
fn prev_of_zero_panics() {
    let _ = Timestamp::ZERO.prev();
}

#[test]
fn add_nanos_keeps_logical_and_saturates() {
    assert_eq!(ts(10, 3).add_nanos(5), ts(15, 3));
    assert_eq!(ts(u64::MAX - 1, 3).add_nanos(5), ts(u64::MAX, 3));
}

#[test]
fn display_is_seconds_nanos_logical() {
    assert_eq!(ts(T0 + 123, 4).to_string(), "1700000000.000000123,4");
    assert_eq!(Timestamp::ZERO.to_string(), "0.000000000,0");
    assert_eq!(ts(1_500_000_000, 0).to_string(), "1.500000000,0");
}

// ---- now ----

#[test]
fn now_follows_an_advancing_physical_clock() {
    let mut hlc = Hlc::new(OFFSET);
    assert_eq!(hlc.last(), Timestamp::ZERO);
    assert_eq!(hlc.now(T0), ts(T0, 0));
    assert_eq!(hlc.now(T0 + 10), ts(T0 + 10, 0));
    assert_eq!(hlc.last(), ts(T0 + 10, 0));
}

#[test]
fn now_counts_logically_while_physical_clock_stalls() {
    let mut hlc = Hlc::new(OFFSET);
    assert_eq!(hlc.now(T0), ts(T0, 0));
    assert_eq!(hlc.now(T0), ts(T0, 1));
    assert_eq!(hlc.now(T0), ts(T0, 2));
    assert_eq!(hlc.now(T0 + 1), ts(T0 + 1, 0));
}

#[test]
fn now_stays_monotonic_when_physical_clock_goes_backwards() {
    let mut hlc = Hlc::new(OFFSET);
    assert_eq!(hlc.now(T0), ts(T0, 0));
    assert_eq!(hlc.now(T0 - 1_000 * MS), ts(T0, 1));
    assert_eq!(hlc.now(T0 - 1), ts(T0, 2));
    // Physical time catches up: the wall part follows it again.
    assert_eq!(hlc.now(T0 + 1), ts(T0 + 1, 0));
}

#[test]
fn now_carries_logical_overflow_into_wall() {
    let mut hlc = Hlc::new(OFFSET);
    hlc.update(ts(T0, u32::MAX - 1), T0).unwrap();
    assert_eq!(hlc.last(), ts(T0, u32::MAX));
    // Stalled physical clock: the logical part would overflow.
    assert_eq!(hlc.now(T0), ts(T0 + 1, 0));
    assert_eq!(hlc.now(T0), ts(T0 + 1, 1));
}

#[test]
#[should_panic(expected = "beyond the year 2262")]
fn now_rejects_physical_time_out_of_range() {
    Hlc::new(OFFSET).now(WALL_NANOS_LIMIT);
}

// ---- update ----

#[test]
fn update_with_remote_ahead_jumps_past_it() {
    let mut hlc = Hlc::new(OFFSET);
    hlc.now(T0);
    let remote = ts(T0 + 100 * MS, 7);
    assert_eq!(hlc.update(remote, T0 + 1), Ok(ts(T0 + 100 * MS, 8)));
    // Local events keep counting at the remote's wall until physical passes it.
    assert_eq!(hlc.now(T0 + 2), ts(T0 + 100 * MS, 9));
    assert_eq!(hlc.now(T0 + 100 * MS + 1), ts(T0 + 100 * MS + 1, 0));
}

#[test]
fn update_with_remote_behind_follows_physical_time() {
    let mut hlc = Hlc::new(OFFSET);
    hlc.now(T0);
    assert_eq!(hlc.update(ts(T0 - 5 * MS, 9), T0 + 10), Ok(ts(T0 + 10, 0)));
    // Remote behind, physical stalled: only the local clock counts.
    assert_eq!(hlc.update(ts(T0 - 5 * MS, 9), T0 + 10), Ok(ts(T0 + 10, 1)));
}

#[test]
fn update_with_remote_equal_wall_takes_the_larger_logical() {
    let mut hlc = Hlc::new(OFFSET);
    hlc.now(T0);
    hlc.now(T0); // last = (T0, 1)
    assert_eq!(hlc.update(ts(T0, 5), T0), Ok(ts(T0, 6)));
    assert_eq!(hlc.update(ts(T0, 2), T0), Ok(ts(T0, 7)));
    assert_eq!(hlc.update(hlc.last(), T0), Ok(ts(T0, 8)));
}

#[test]
fn update_with_saturated_remote_logical_carries_into_wall() {
    let mut hlc = Hlc::new(OFFSET);
    assert_eq!(hlc.update(ts(T0, u32::MAX), T0), Ok(ts(T0 + 1, 0)));
}

#[test]
fn update_accepts_remote_exactly_max_offset_ahead() {
    let mut hlc = Hlc::new(OFFSET);
    let remote = ts(T0 + OFFSET_NANOS, u32::MAX - 1);
    assert_eq!(hlc.update(remote, T0), Ok(ts(T0 + OFFSET_NANOS, u32::MAX)));
}

#[test]
fn update_rejects_remote_too_far_ahead_and_leaves_clock_unchanged() {
    let mut hlc = Hlc::new(OFFSET);
    let before = hlc.now(T0);
    let remote = ts(T0 + OFFSET_NANOS + 1, 0);
    let err = hlc.update(remote, T0).unwrap_err();
    assert_eq!(
        err,
        ClockError::RemoteTooFarAhead {
            remote,
            local_physical: T0,
            max_offset: OFFSET,
        }
    );
    assert!(err.to_string().contains("maximum clock offset"), "{err}");
    assert_eq!(hlc.last(), before);
    assert_eq!(hlc.far_ahead_warnings(), 0);
    // The same message is fine once our physical clock has moved on.
    assert_eq!(hlc.update(remote, T0 + 1), Ok(remote.next()));
}

#[test]
fn update_under_warn_policy_accepts_and_counts() {
    let mut hlc = Hlc::with_policy(OFFSET, FarAheadPolicy::Warn);
    assert_eq!(hlc.policy(), FarAheadPolicy::Warn);
    let remote = ts(T0 + 10 * OFFSET_NANOS, 3);
    assert_eq!(hlc.update(remote, T0), Ok(ts(T0 + 10 * OFFSET_NANOS, 4)));
    assert_eq!(hlc.far_ahead_warnings(), 1);
    hlc.update(ts(T0, 0), T0).unwrap();
    assert_eq!(hlc.far_ahead_warnings(), 1, "only far-ahead remotes count");
}

#[test]
fn update_refuses_remote_out_of_range_under_either_policy() {
    for policy in [FarAheadPolicy::Reject, FarAheadPolicy::Warn] {
        let mut hlc = Hlc::with_policy(OFFSET, policy);
        let before = hlc.now(T0);
        for remote in [Timestamp::MAX, ts(WALL_NANOS_LIMIT, 0)] {
            assert_eq!(
                hlc.update(remote, T0),
                Err(ClockError::RemoteOutOfRange { remote })
            );
        }
        assert_eq!(hlc.last(), before);
    }
}

#[test]
fn zero_max_offset_rejects_any_remote_ahead_of_physical() {
    let mut hlc = Hlc::new(Duration::ZERO);
    assert!(hlc.update(ts(T0, 5), T0).is_ok());
    assert!(hlc.update(ts(T0 + 1, 0), T0).is_err());
}

#[test]
#[should_panic(expected = "exceeds")]
fn max_offset_is_bounded() {
    Hlc::new(MAX_OFFSET_LIMIT + Duration::from_nanos(1));
}

// ---- uncertainty ----

#[test]
fn uncertainty_limit_is_read_wall_plus_max_offset() {
    let hlc = Hlc::new(OFFSET);
    assert_eq!(hlc.max_offset(), OFFSET);
    assert_eq!(
        hlc.uncertainty_limit(ts(T0, 3)),
        ts(T0 + OFFSET_NANOS, u32::MAX)
    );
    assert_eq!(
        hlc.uncertainty_limit(ts(u64::MAX - 1, 3)),
        Timestamp::MAX,
        "saturates"
    );
    // Zero offset: only the read's own wall time is uncertain.
    let hlc = Hlc::new(Duration::ZERO);
    assert_eq!(hlc.uncertainty_limit(ts(T0, 3)), ts(T0, u32::MAX));
}

#[test]
fn uncertainty_window_is_open_below_and_closed_above() {
    let hlc = Hlc::new(OFFSET);
    let read = ts(T0, 3);
    let limit = hlc.uncertainty_limit(read);
    assert!(!is_uncertain(read.prev(), read, limit), "visible");
    assert!(!is_uncertain(read, read, limit), "visible: own timestamp");
    assert!(is_uncertain(read.next(), read, limit));
    assert!(is_uncertain(ts(T0 + 1, 0), read, limit));
    assert!(is_uncertain(ts(T0 + OFFSET_NANOS, 0), read, limit));
    assert!(
        is_uncertain(ts(T0 + OFFSET_NANOS, 9), read, limit),
        "any logical"
    );
    assert!(is_uncertain(limit, read, limit));
    assert!(!is_uncertain(limit.next(), read, limit), "future");
    assert!(!is_uncertain(ts(T0 + OFFSET_NANOS + 1, 0), read, limit));
    // An empty window.
    assert!(!is_uncertain(read.next(), read, read));
}

#[test]
fn restart_keeps_limit_so_the_window_shrinks() {
    let hlc = Hlc::new(OFFSET);
    let read = ts(T0, 0);
    let limit = hlc.uncertainty_limit(read);
    let value = ts(T0 + 100 * MS, 2);
    assert!(is_uncertain(value, read, limit));
    // Restart at the uncertain value's timestamp: it is now visible.
    assert!(!is_uncertain(value, value, limit));
    assert!(is_uncertain(value.next(), value, limit));
}

#[test]
#[should_panic(expected = "below read timestamp")]
fn is_uncertain_rejects_inverted_window() {
    is_uncertain(ts(5, 0), ts(5, 0), ts(4, 0));
}

// ---- deterministic simulation ----

/// xorshift64* — tiny, seeded, good enough to drive the simulation.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Avoid the all-zero state; mix the seed a little.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }
}

const SHARDS: usize = 4;
const STEPS: usize = 20_000;
const IN_FLIGHT_MAX: usize = 64;

/// One shard: its clock, its physical clock model and what the checker
/// remembers about it.
struct Shard {
    hlc: Hlc,
    /// Physical clock = true time + skew (may be negative under faults).
    skew_nanos: i64,
    /// Under faults a stalled clock repeats this reading.
    stalled_at: Option<u64>,
    /// Largest physical time handed to this shard's clock.
    max_physical: u64,
}

#[derive(Default, Debug)]
struct Outcome {
    receives: u64,
    rejected: u64,
    reads: u64,
}

/// Simulates `SHARDS` clocks exchanging messages (delayed and reordered)
/// over `STEPS` random events, checking the invariants after every event.
///
/// Without `faults`, physical clocks only advance and stay within
/// `max_offset` of each other; then no message is ever refused and every
/// timestamp issued anywhere before a read begins is at or below that read's
/// uncertainty limit. With `faults`, clocks also stall, step backwards and
/// jump far ahead.
fn simulate(seed: u64, policy: FarAheadPolicy, faults: bool) -> Outcome {
    let mut rng = Rng::new(seed);
    let max_offset_nanos = 1 + rng.below(OFFSET_NANOS);
    let max_offset = Duration::from_nanos(max_offset_nanos);
    let skew_max = i64::try_from(max_offset_nanos).expect("below 1 s");
    let mut shards: Vec<Shard> = (0..SHARDS)
        .map(|_| Shard {
            hlc: Hlc::with_policy(max_offset, policy),
            // In [0, max_offset]: pairwise offsets stay within the bound.
            // Often at an extreme, to test the uncertainty limit's edge.
            skew_nanos: match rng.below(3) {
                0 => 0,
                1 => skew_max,
                _ => rng.below(max_offset_nanos + 1) as i64,
            },
            stalled_at: None,
            max_physical: 0,
        })
        .collect();
    let mut true_time = T0;
    let mut in_flight: Vec<(usize, Timestamp)> = Vec::new();
    // Largest timestamp issued anywhere, and largest physical time given.
    let mut max_issued = Timestamp::ZERO;
    let mut max_physical_global = 0u64;
    let mut out = Outcome::default();

    for step in 0..STEPS {
        // Real time passes: usually a little, sometimes not at all (many
        // events per nanosecond exercise the logical part).
        true_time += match rng.below(10) {
            0..=3 => 0,
            4..=8 => rng.below(1_000),
            _ => rng.below(max_offset_nanos),
        };
        let i = rng.below(SHARDS as u64) as usize;
        if faults {
            inject_clock_fault(&mut rng, &mut shards[i], skew_max);
        }
        let shard = &mut shards[i];
        let physical = match shard.stalled_at {
            Some(p) => p,
            None => true_time.saturating_add_signed(shard.skew_nanos),
        };
        shard.max_physical = shard.max_physical.max(physical);
        max_physical_global = max_physical_global.max(physical);
        let before = shard.hlc.last();
        let ctx = format!("seed {seed} step {step} shard {i} physical {physical}");

        let issued = match rng.below(4) {
            // Send: stamp a message to another shard.
            0 if in_flight.len() < IN_FLIGHT_MAX => {
                let t = shard.hlc.now(physical);
                let to = (i + 1 + rng.below(SHARDS as u64 - 1) as usize) % SHARDS;
                in_flight.push((to, t));
                Some(t)
            }
            // Receive some in-flight message (any order: reordering).
            1 | 2 if !in_flight.is_empty() => {
                let (to, sent) = in_flight.swap_remove(rng.below(in_flight.len() as u64) as usize);
                let shard = &mut shards[to];
                let before = shard.hlc.last();
                let physical = match shard.stalled_at {
                    Some(p) => p,
                    None => true_time.saturating_add_signed(shard.skew_nanos),
                };
                shard.max_physical = shard.max_physical.max(physical);
                max_physical_global = max_physical_global.max(physical);
                match shard.hlc.update(sent, physical) {
                    Ok(t) => {
                        out.receives += 1;
                        assert!(t > sent, "{ctx}: receive {t} not after send {sent}");
                        assert!(t > before, "{ctx}: receiver not monotonic");
                        check_bound(shard, t, &ctx);
                        max_issued = max_issued.max(t);
                        None
                    }
                    Err(e) => {
                        out.rejected += 1;
                        assert!(faults, "{ctx}: rejected without clock faults: {e}");
                        assert_eq!(policy, FarAheadPolicy::Reject, "{ctx}");
                        assert_eq!(
                            e,
                            ClockError::RemoteTooFarAhead {
                                remote: sent,
                                local_physical: physical,
                                max_offset,
                            }
                        );
                        assert!(sent.wall_nanos > physical + max_offset_nanos, "{ctx}");
                        assert_eq!(shard.hlc.last(), before, "{ctx}: refusal moved the clock");
                        None
                    }
                }
            }
            // Read: begin a read; everything issued so far must be visible
            // or uncertain, never in the read's future.
            3 => {
                let read = shard.hlc.now(physical);
                let limit = shard.hlc.uncertainty_limit(read);
                out.reads += 1;
                if !faults {
                    assert!(
                        max_issued <= limit,
                        "{ctx}: {max_issued} issued before a read at {read} lies beyond its limit {limit}"
                    );
                }
                Some(read)
            }
            // Local event (e.g. a write).
            _ => Some(shard.hlc.now(physical)),
        };
        if let Some(t) = issued {
            let shard = &shards[i];
            assert!(t > before, "{ctx}: {t} not after {before}");
            assert!(t >= Timestamp::new(physical, 0), "{ctx}: behind physical");
            check_bound(shard, t, &ctx);
            max_issued = max_issued.max(t);
        }
        // Every wall time issued anywhere is some physical reading (the
        // simulation never overflows the logical part).
        assert!(
            max_issued.wall_nanos <= max_physical_global,
            "{ctx}: {max_issued} beyond every physical clock ({max_physical_global})"
        );
    }
    out
}

/// Per-clock drift bound (module docs): under `Reject`, wall time stays
/// within `max_offset` of the largest physical time this clock was given.
fn check_bound(shard: &Shard, t: Timestamp, ctx: &str) {
    if shard.hlc.policy() == FarAheadPolicy::Reject {
        let offset = shard.hlc.max_offset().as_nanos() as u64;
        assert!(
            t.wall_nanos <= shard.max_physical + offset,
            "{ctx}: {t} more than {offset} ns past max physical {}",
            shard.max_physical
        );
    }
}

/// Stalls, unstalls, steps back or jumps ahead a shard's physical clock.
fn inject_clock_fault(rng: &mut Rng, shard: &mut Shard, skew_max: i64) {
    match rng.below(200) {
        0 => shard.stalled_at = Some(shard.max_physical),
        1 => shard.stalled_at = None,
        // Step backwards, possibly far.
        2 => shard.skew_nanos -= rng.below(3 * skew_max as u64) as i64,
        // Jump ahead, possibly beyond max_offset.
        3 => shard.skew_nanos += rng.below(3 * skew_max as u64) as i64,
        // NTP drags it back into the bound.
        4 => shard.skew_nanos = rng.below(skew_max as u64 + 1) as i64,
        _ => {}
    }
}

#[test]
fn simulation_with_bounded_skew_never_rejects_and_bounds_uncertainty() {
    for seed in 1..=8 {
        for policy in [FarAheadPolicy::Reject, FarAheadPolicy::Warn] {
            let out = simulate(seed, policy, false);
            assert_eq!(out.rejected, 0);
            assert!(out.receives > 1_000 && out.reads > 1_000, "{out:?}");
        }
    }
}

#[test]
fn simulation_with_clock_faults_keeps_causality_and_monotonicity() {
    let mut rejected = 0;
    for seed in 1..=8 {
        let out = simulate(seed, FarAheadPolicy::Reject, true);
        assert!(out.receives > 1_000, "{out:?}");
        rejected += out.rejected;
        let out = simulate(seed, FarAheadPolicy::Warn, true);
        assert_eq!(out.rejected, 0, "Warn never refuses");
    }
    assert!(rejected > 0, "faults should provoke some refusals");
}
