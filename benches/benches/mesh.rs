//! Cross-shard messaging over the shard mesh: request/reply round-trip
//! latency, pipelined request throughput, and one-way message throughput
//! between two shards pinned to two cores (unpinned when there is one core).
//!
//! Each sample starts two executors; shard 0 times `iters` operations against
//! shard 1 after the mesh is joined, so start-up is not measured.
//!
//! Run: `cargo bench -p teller-benches --bench mesh`. Figures go to
//! perf/RESULTS.md.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{CpuSet, Latency, LocalExecutorBuilder, Placement, Shares};
use teller_node::mesh::{Envelope, Handler, Mesh, ShardId};

/// Requests in flight in the pipelined variant.
const PIPELINE_DEPTH: usize = 64;

/// One-way message that tells the echo shard the run is over.
const DONE: u64 = u64::MAX;

/// Echoes requests; ignores one-way messages except [`DONE`].
#[derive(Default)]
struct Echo {
    done: Cell<bool>,
}

impl Handler<u64, u64> for Echo {
    async fn handle(&self, _from: ShardId, request: u64) -> u64 {
        request
    }

    async fn handle_one_way(&self, _from: ShardId, request: u64) {
        if request == DONE {
            self.done.set(true);
        }
    }
}

#[derive(Clone, Copy)]
enum Mode {
    RoundTrip,
    Pipelined,
    OneWay,
}

fn placements() -> [Placement; 2] {
    let cpus: Vec<usize> = CpuSet::online()
        .map(|set| set.into_iter().map(|l| l.cpu).collect())
        .unwrap_or_default();
    if cpus.len() >= 2 {
        [Placement::Fixed(cpus[0]), Placement::Fixed(cpus[1])]
    } else {
        [Placement::Unbound, Placement::Unbound]
    }
}

/// Runs `iters` operations from shard 0 to shard 1; returns shard 0's timing.
fn run(iters: u64, mode: Mode) -> Duration {
    run_with_spin(iters, mode, Duration::ZERO)
}

/// As [`run`], with executors that spin for `spin` before parking when idle
/// (the node's `spin_before_park_us`).
fn run_with_spin(iters: u64, mode: Mode, spin: Duration) -> Duration {
    let builder: MeshBuilder<Envelope<u64, u64>, _> = MeshBuilder::full(2, 1024);
    let [p0, p1] = placements();
    let mut handles = Vec::new();
    for (shard, placement) in [(0usize, p0), (1usize, p1)] {
        let builder = builder.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("bench-shard-{shard}"))
            .io_memory(512 * 1024)
            .spin_before_park(spin)
            .spawn(move || async move {
                // As in the node: mesh work runs in its own queue with high
                // shares and `Latency::NotImportant` (see shard.rs for why).
                let queue = glommio::executor().create_task_queue(
                    Shares::Static(1000),
                    Latency::NotImportant,
                    "mesh",
                );
                let echo = Rc::new(Echo::default());
                let mesh = Mesh::join(builder, shard, echo.clone(), queue)
                    .await
                    .expect("joining the mesh");
                let work = async move {
                    if shard == 1 {
                        // Serve until shard 0 says it is done.
                        while !echo.done.get() {
                            glommio::timer::sleep(Duration::from_millis(20)).await;
                        }
                        return Duration::ZERO;
                    }
                    let started = Instant::now();
                    match mode {
                        Mode::RoundTrip => {
                            for i in 0..iters {
                                let reply = mesh.request(1, i).await.expect("reply");
                                assert_eq!(reply, i);
                            }
                        }
                        Mode::Pipelined => {
                            // PIPELINE_DEPTH tasks, each issuing its share of
                            // requests back to back: that many are in flight.
                            let workers: Vec<_> = (0..PIPELINE_DEPTH as u64)
                                .map(|w| {
                                    let mesh = mesh.clone();
                                    let share = iters / PIPELINE_DEPTH as u64
                                        + u64::from(w < iters % PIPELINE_DEPTH as u64);
                                    glommio::spawn_local_into(
                                        async move {
                                            for i in 0..share {
                                                mesh.request(1, i).await.expect("reply");
                                            }
                                        },
                                        queue,
                                    )
                                    .expect("spawning")
                                })
                                .collect();
                            for worker in workers {
                                worker.await;
                            }
                        }
                        Mode::OneWay => {
                            for i in 0..iters {
                                mesh.send_one_way(1, i).await.expect("send");
                            }
                            // The rings are FIFO: this reply comes after all of them.
                            mesh.request(1, 0).await.expect("fence");
                        }
                    }
                    let elapsed = started.elapsed();
                    mesh.send_one_way(1, DONE).await.expect("done");
                    elapsed
                };
                glommio::spawn_local_into(work, queue)
                    .expect("spawning")
                    .await
            })
            .expect("starting an executor");
        handles.push(handle);
    }
    let mut elapsed = Duration::ZERO;
    for handle in handles {
        elapsed += handle.join().expect("executor");
    }
    elapsed
}

/// Baseline for context: the same round trip between two OS threads over
/// std's channels (blocking, futex wake-ups), measured in the same run.
fn run_std_mpsc(iters: u64) -> Duration {
    let (to_echo, echo_in) = std::sync::mpsc::sync_channel::<u64>(1024);
    let (to_main, main_in) = std::sync::mpsc::sync_channel::<u64>(1024);
    let echo = std::thread::spawn(move || {
        while let Ok(n) = echo_in.recv() {
            if to_main.send(n).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    for i in 0..iters {
        to_echo.send(i).expect("send");
        assert_eq!(main_in.recv().expect("reply"), i);
    }
    let elapsed = started.elapsed();
    drop(to_echo);
    echo.join().expect("echo thread");
    elapsed
}

fn bench_mesh(c: &mut Criterion) {
    let mut group = c.benchmark_group("mesh");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("round_trip", |b| {
        b.iter_custom(|iters| run(iters, Mode::RoundTrip))
    });
    group.bench_function("pipelined_64", |b| {
        b.iter_custom(|iters| run(iters, Mode::Pipelined))
    });
    group.bench_function("one_way", |b| {
        b.iter_custom(|iters| run(iters, Mode::OneWay))
    });
    let spin = Duration::from_micros(50);
    group.bench_function("round_trip_spin_50us", |b| {
        b.iter_custom(|iters| run_with_spin(iters, Mode::RoundTrip, spin))
    });
    group.bench_function("one_way_spin_50us", |b| {
        b.iter_custom(|iters| run_with_spin(iters, Mode::OneWay, spin))
    });
    group.bench_function("baseline_std_mpsc_round_trip", |b| {
        b.iter_custom(run_std_mpsc)
    });
    group.finish();
}

criterion_group!(benches, bench_mesh);
criterion_main!(benches);
