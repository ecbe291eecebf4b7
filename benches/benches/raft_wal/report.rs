//! Printing: one line per run, then the median of the runs per setting.
//! Each median column is the median of that column over the runs (so one
//! median row need not be any single run).

use crate::idle::IdleReport;
use crate::load::LoadReport;
use crate::Args;

const LOAD_COLUMNS: &str = " groups clients  run  create s   proposals/s   p50 ms   p99 ms p99.9 ms   max ms  appends/s  syncs/s  props/sync  shard us/prop  proc us/prop  load";

pub fn header(a: &Args) {
    println!(
        "raft_wal: one shard, real WAL (O_DIRECT, fdatasync per pass) in {}",
        a.dir.display()
    );
    println!(
        "  single-voter groups {:?}, closed-loop clients {:?}, one {}-byte value per write; {:.1} s measured after {:.1} s warm-up; {} run(s) each",
        a.groups,
        a.clients,
        a.value_bytes,
        a.measure.as_secs_f64(),
        a.warmup.as_secs_f64(),
        a.runs
    );
    println!("{LOAD_COLUMNS}");
}

/// The figures of one run, in [`LOAD_COLUMNS`] order after the run column.
fn load_figures(r: &LoadReport) -> [f64; 12] {
    let secs = r.window.as_secs_f64();
    let props = r.proposals.max(1) as f64;
    let ms = |q: f64| r.latency.value_at_quantile(q) as f64 / 1e6;
    [
        r.create.as_secs_f64(),
        r.proposals_per_sec(),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        r.latency.max() as f64 / 1e6,
        r.wal_appends as f64 / secs,
        r.wal_syncs as f64 / secs,
        r.proposals as f64 / r.wal_syncs.max(1) as f64,
        r.cpu.thread_ns as f64 / 1e3 / props,
        r.cpu.process.as_secs_f64() * 1e6 / props,
        r.load_average,
    ]
}

fn print_load(groups: u64, clients: usize, run: &str, f: &[f64; 12], suffix: &str) {
    println!(
        "{groups:>7} {clients:>7} {run:>4} {:>9.2} {:>13.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.0} {:>8.0} {:>11.1} {:>14.1} {:>13.1} {:>5.1}{suffix}",
        f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]
    );
}

pub fn load_line(run: usize, r: &LoadReport) {
    print_load(
        r.config.groups,
        r.config.clients,
        &run.to_string(),
        &load_figures(r),
        "",
    );
}

/// Median rows per (groups, clients), with the spread of proposals/s.
pub fn load_medians(reports: &[LoadReport]) {
    println!("median of runs:");
    println!("{LOAD_COLUMNS}   (proposals/s min-max)");
    let mut settings: Vec<(u64, usize)> = reports
        .iter()
        .map(|r| (r.config.groups, r.config.clients))
        .collect();
    settings.dedup();
    for (groups, clients) in settings {
        let runs: Vec<[f64; 12]> = reports
            .iter()
            .filter(|r| (r.config.groups, r.config.clients) == (groups, clients))
            .map(load_figures)
            .collect();
        let mut f = [0.0; 12];
        for (i, v) in f.iter_mut().enumerate() {
            *v = median(runs.iter().map(|r| r[i]).collect());
        }
        let rates: Vec<f64> = runs.iter().map(|r| r[1]).collect();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        print_load(groups, clients, "med", &f, &format!("   ({lo:.0}-{hi:.0})"));
    }
}

pub fn idle_line(run: usize, r: &IdleReport) {
    println!(
        "idle run {run}: {} groups created in {:.2} s, one write each, settled {:.1} s, then {:.1} s idle: shard thread {:.1} us CPU/s ({} wake-ups), process {:.1} us CPU/s; WAL appends {}, syncs {}, entries applied {}; load {:.1}",
        r.config.groups,
        r.create.as_secs_f64(),
        r.config.settle.as_secs_f64(),
        r.window.as_secs_f64(),
        r.thread_us_per_sec(),
        r.cpu.thread_runs,
        r.process_us_per_sec(),
        r.wal_appends,
        r.wal_syncs,
        r.applied,
        r.load_average
    );
}

pub fn idle_median(reports: &[IdleReport]) {
    let thread = median(reports.iter().map(IdleReport::thread_us_per_sec).collect());
    let process = median(reports.iter().map(IdleReport::process_us_per_sec).collect());
    let wakeups = median(reports.iter().map(|r| r.cpu.thread_runs as f64).collect());
    println!(
        "idle, median of {} runs: shard thread {thread:.1} us CPU per second ({wakeups:.0} wake-ups per window), whole process {process:.1} us CPU per second",
        reports.len()
    );
}

/// The median (the mean of the middle two for an even count); NaN if empty.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
