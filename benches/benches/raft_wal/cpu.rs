//! CPU accounting that other load on the shared machine does not disturb.
//!
//! * The shard's own thread: `/proc/thread-self/schedstat` (read on the
//!   executor's thread) gives the nanoseconds it ran on a CPU and how many
//!   times it was scheduled in. Time spent waiting for a CPU that another
//!   process held does not count, so a busy machine inflates latency but not
//!   these figures.
//! * The whole process: `getrusage(RUSAGE_SELF)`, user + system time of every
//!   thread, including io_uring's kernel workers (they belong to the process)
//!   and threads that already exited. Microsecond resolution.

use std::time::Duration;

/// One reading of the counters; subtract two with [`CpuSample::since`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    /// On-CPU time of the calling thread.
    pub thread_ns: u64,
    /// Times the calling thread was scheduled onto a CPU (wake-ups).
    pub thread_runs: u64,
    /// User + system time of the whole process.
    pub process: Duration,
}

impl CpuSample {
    /// Reads the counters of the calling thread and of the process.
    pub fn now() -> Result<CpuSample, String> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat")
            .map_err(|e| format!("reading /proc/thread-self/schedstat: {e}"))?;
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        let mut field = |name: &str| {
            fields
                .next()
                .and_then(Result::ok)
                .ok_or_else(|| format!("/proc/thread-self/schedstat has no {name}: {text:?}"))
        };
        let thread_ns = field("on-CPU time")?;
        let _waiting_ns = field("run-queue wait")?;
        let thread_runs = field("timeslice count")?;
        Ok(CpuSample {
            thread_ns,
            thread_runs,
            process: process_cpu()?,
        })
    }

    /// The counters' growth from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        CpuSample {
            thread_ns: self.thread_ns.saturating_sub(earlier.thread_ns),
            thread_runs: self.thread_runs.saturating_sub(earlier.thread_runs),
            process: self.process.saturating_sub(earlier.process),
        }
    }
}

/// User + system CPU time of every thread of this process, live or exited.
fn process_cpu() -> Result<Duration, String> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage only writes
    // into it and reports failure through its return value.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(format!("getrusage: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: getrusage returned 0, so it filled the whole struct (and it
    // was zero-initialised before).
    let usage = unsafe { usage.assume_init() };
    let micros = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec).unwrap_or(0)
    };
    Ok(Duration::from_micros(
        micros(usage.ru_utime) + micros(usage.ru_stime),
    ))
}

/// The 1-minute load average (`/proc/loadavg`): how busy the shared machine
/// was around a run.
pub fn load_average() -> Result<f64, String> {
    let text = std::fs::read_to_string("/proc/loadavg")
        .map_err(|e| format!("reading /proc/loadavg: {e}"))?;
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("/proc/loadavg does not start with a number: {text:?}"))
}
