//! What the host gives the KV layer: physical time, timers, task spawning and
//! randomness. The logic never reads a clock, sleeps or spawns by itself; the
//! node implements [`Env`] over glommio, the simulator ([`crate::sim`]) over
//! a seeded, single-threaded scheduler with simulated time, so every run
//! replays from its seed.

use std::time::Duration;

use crate::engine::LocalBoxFuture;

/// The host's services, shard-local.
pub trait Env {
    /// Physical time, nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;

    /// A future that completes after `duration` of physical time.
    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()>;

    /// Runs `task` in the background on this shard (asynchronous intent
    /// resolution, heartbeats, cleanup of abandoned transactions).
    fn spawn(&self, task: LocalBoxFuture<'static, ()>);

    /// 64 random bits (transaction ids).
    fn random_u64(&self) -> u64;
}
