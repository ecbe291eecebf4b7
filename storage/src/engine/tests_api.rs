//! Targeted engine tests: group commit, Raft mode, ingestion, faults, stalls,
//! corruption.

use super::tests::{open, small_config, DIR};
use super::*;
use crate::disk::{DiskError, Fault, SimDisk, SimDiskOptions};
use crate::sst::format::{parse_table_name, table_name};
use crate::sync::join_all;
use futures_lite::future::block_on;

fn ts(n: u64) -> Timestamp {
    Timestamp::new(n, 0)
}

fn put(key: &[u8], at: u64, value: &[u8]) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(key, ts(at), value);
    b
}

fn tables(disk: &SimDisk) -> Vec<u64> {
    disk.peek_names(Path::new(DIR))
        .iter()
        .filter_map(|n| parse_table_name(n))
        .collect()
}

#[test]
fn concurrent_writers_share_one_fdatasync() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 1 });
        let (engine, _) = open(&disk, &small_config(1)).await.unwrap();
        disk.set_sync_yields(3);
        let writes =
            (0..16u64).map(|i| engine.write(put(format!("k{i:02}").as_bytes(), 5, b"v"), true));
        let lsns: Vec<Lsn> = join_all(writes)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let mut sorted = lsns.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 16, "every batch has its own LSN");
        let m = engine.metrics();
        assert_eq!(m.writes, 16);
        // The first writer syncs alone; the other fifteen queue meanwhile and
        // share the next sync.
        assert!(m.wal_syncs <= 3 && m.write_groups <= 3, "{m:?}");
        for i in 0..16u64 {
            let got = engine
                .get(format!("k{i:02}").as_bytes(), ts(9))
                .await
                .unwrap();
            assert_eq!(got, Some((ts(5), b"v".to_vec())));
        }
    });
}

#[test]
fn raft_mode_persists_applied_indexes_and_keeps_the_log() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 2 });
        let mut config = small_config(2);
        config.raft_log = true;
        let (engine, _) = open(&disk, &config).await.unwrap();
        let entry = |i: u64| RecordMeta {
            kind: 1,
            range_id: 7,
            term: 1,
            index: i,
        };
        let mut lsns = Vec::new();
        for i in 1..=12u64 {
            let payload = format!("entry {i}").into_bytes();
            lsns.push(
                engine
                    .append_raft(&[(entry(i), &payload)], true)
                    .await
                    .unwrap(),
            );
        }
        for i in 1..=10u64 {
            engine
                .apply(&put(format!("k{i:02}").as_bytes(), i, b"x"), 7, i)
                .await
                .unwrap();
        }
        engine.flush().await.unwrap();
        assert_eq!(engine.applied_index(7), Some(10));
        for i in 11..=12u64 {
            engine
                .apply(&put(format!("k{i:02}").as_bytes(), i, b"x"), 7, i)
                .await
                .unwrap();
        }
        // Records from a kind reserved for the engine are refused.
        let reserved = RecordMeta {
            kind: ENGINE_KIND_MIN,
            ..entry(1)
        };
        assert!(matches!(
            engine.append_raft(&[(reserved, b"")], false).await,
            Err(EngineError::InvalidArgument(_))
        ));
        drop(engine);
        let mut seen = Vec::new();
        let (engine, rec) = Engine::open(disk.clone(), Path::new(DIR), config.clone(), |r| {
            seen.push((r.meta.index, r.payload.to_vec()))
        })
        .await
        .unwrap();
        assert_eq!(rec.applied.get(&7), Some(&10));
        let indexes: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(
            indexes,
            (1..=12).collect::<Vec<_>>(),
            "the Raft log is kept whole"
        );
        assert_eq!(seen[10].1, b"entry 11");
        // Applied state after the flush is gone until Raft re-applies it.
        assert_eq!(
            engine.get(b"k10", ts(99)).await.unwrap().map(|v| v.0),
            Some(ts(10))
        );
        assert_eq!(engine.get(b"k11", ts(99)).await.unwrap(), None);
        for i in 11..=12u64 {
            engine
                .apply(&put(format!("k{i:02}").as_bytes(), i, b"x"), 7, i)
                .await
                .unwrap();
        }
        let mut last = Lsn(0);
        for round in 0..40u64 {
            let payload = vec![round as u8; 3000];
            last = engine
                .append_raft(&[(entry(13 + round), &payload)], true)
                .await
                .unwrap();
        }
        // Raft no longer needs entries before the last one: the log may drop them.
        engine.set_raft_log_floor(last);
        engine.flush().await.unwrap();
        assert_eq!(engine.applied_index(7), Some(12));
        assert!(
            engine.wal_first_lsn().await > lsns[11],
            "whole segments below the floor went"
        );
        drop(engine);
        let mut seen = Vec::new();
        Engine::open(disk.clone(), Path::new(DIR), config, |r| {
            seen.push(r.meta.index)
        })
        .await
        .unwrap();
        assert!(
            seen.contains(&52),
            "needed entries survive truncation: {seen:?}"
        );
    });
}

#[test]
fn ingest_replaces_a_span_atomically() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 3 });
        let config = small_config(3);
        let (engine, _) = open(&disk, &config).await.unwrap();
        for c in b'a'..=b'z' {
            engine.write(put(&[c], 5, b"old"), false).await.unwrap();
        }
        engine.flush().await.unwrap();
        engine.write(put(b"d", 6, b"newer"), true).await.unwrap();
        let entries: Vec<_> = (0..300u32)
            .map(|i| (format!("e{i:04}").into_bytes(), ts(3), Some(vec![7u8; 100])))
            .collect();
        let before = tables(&disk).len();
        engine
            .ingest(b"c", b"m", entries, Some((3, 100)))
            .await
            .unwrap();
        assert!(
            tables(&disk).len() > before + 2,
            "a stream of several tables"
        );
        check_ingested(&engine).await;
        drop(engine);
        let (engine, _) = open(&disk, &config).await.unwrap();
        check_ingested(&engine).await;
        // A bad stream changes nothing and leaves no files behind.
        let files = tables(&disk);
        let bad = vec![(b"c2".to_vec(), ts(3), None), (b"c1".to_vec(), ts(3), None)];
        let err = engine.ingest(b"c", b"m", bad, None).await;
        assert!(
            matches!(err, Err(EngineError::InvalidArgument(_))),
            "{err:?}"
        );
        assert_eq!(tables(&disk), files);
        let outside = vec![(b"z".to_vec(), ts(3), None)];
        assert!(engine.ingest(b"c", b"m", outside, None).await.is_err());
        check_ingested(&engine).await;
        // An empty stream clears the span.
        engine.ingest(b"c", b"m", Vec::new(), None).await.unwrap();
        assert!(engine
            .scan(b"c", Some(b"m"), ts(9), false, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(engine.get(b"b", ts(9)).await.unwrap().is_some());
    });
}

async fn check_ingested(engine: &Engine<SimDisk>) {
    assert_eq!(
        engine.get(b"b", ts(9)).await.unwrap().map(|v| v.1),
        Some(b"old".to_vec())
    );
    assert_eq!(
        engine.get(b"m", ts(9)).await.unwrap().map(|v| v.1),
        Some(b"old".to_vec())
    );
    assert_eq!(
        engine.get_version(b"d", ts(9)).await.unwrap(),
        None,
        "older data hidden"
    );
    assert_eq!(
        engine.get(b"e0042", ts(9)).await.unwrap(),
        Some((ts(3), vec![7u8; 100]))
    );
    let span = engine
        .scan(b"c", Some(b"m"), ts(9), false, usize::MAX)
        .await
        .unwrap();
    assert_eq!(span.len(), 300);
    assert_eq!(engine.applied_index(3), Some(100));
}

#[test]
fn wal_failure_refuses_writes_keeps_reads_and_reopens() {
    block_on(async {
        for fault in [Fault::Eio, Fault::NoSpace] {
            let disk = SimDisk::new(SimDiskOptions { seed: 4 });
            let config = small_config(4);
            let (engine, _) = open(&disk, &config).await.unwrap();
            engine.write(put(b"a", 1, b"kept"), true).await.unwrap();
            disk.fail_after(0, fault);
            let err = engine.write(put(b"b", 2, b"lost"), true).await.unwrap_err();
            match fault {
                Fault::NoSpace => {
                    assert!(err.is_no_space(), "{err}");
                    assert_eq!(err.sqlstate(), "53100");
                }
                Fault::Eio => assert_eq!(err.sqlstate(), "58030", "{err}"),
            }
            let again = engine
                .write(put(b"c", 3, b"refused"), true)
                .await
                .unwrap_err();
            assert!(matches!(again, EngineError::ReadOnly(_)), "{again}");
            assert!(engine.read_only_reason().is_some());
            disk.clear_fault();
            assert_eq!(
                engine.get(b"a", ts(9)).await.unwrap().map(|v| v.1),
                Some(b"kept".to_vec())
            );
            assert_eq!(
                engine.get(b"b", ts(9)).await.unwrap(),
                None,
                "a failed write is not applied"
            );
            drop(engine);
            let (engine, _) = open(&disk, &config).await.unwrap();
            assert_eq!(
                engine.get(b"a", ts(9)).await.unwrap().map(|v| v.1),
                Some(b"kept".to_vec())
            );
            engine.write(put(b"d", 4, b"resumed"), true).await.unwrap();
            assert!(engine.get(b"d", ts(9)).await.unwrap().is_some());
        }
    });
}

#[test]
fn flush_failure_keeps_the_memtable_and_retries() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 5 });
        let config = small_config(5);
        let (engine, _) = open(&disk, &config).await.unwrap();
        for i in 0..20u64 {
            engine
                .write(put(format!("k{i:02}").as_bytes(), i + 1, b"v"), true)
                .await
                .unwrap();
        }
        // Fail in the middle of writing the table (the WAL sync comes first).
        disk.fail_after(3, Fault::NoSpace);
        let err = engine.flush().await.unwrap_err();
        assert!(err.is_no_space(), "{err}");
        assert!(
            engine.read_only_reason().is_none(),
            "a failed flush changes nothing"
        );
        disk.clear_fault();
        assert!(tables(&disk).is_empty(), "the partial table was removed");
        assert_eq!(
            engine.get(b"k07", ts(99)).await.unwrap().map(|v| v.0),
            Some(ts(8))
        );
        engine.flush().await.unwrap();
        assert!(!tables(&disk).is_empty());
        assert_eq!(
            engine.metrics().background_errors,
            0,
            "flush() is not a background step"
        );
        drop(engine);
        let (engine, _) = open(&disk, &config).await.unwrap();
        for i in 0..20u64 {
            let got = engine
                .get(format!("k{i:02}").as_bytes(), ts(99))
                .await
                .unwrap();
            assert_eq!(got.map(|v| v.0), Some(ts(i + 1)));
        }
    });
}

#[test]
fn full_memtables_stall_writers_boundedly() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 6 });
        let mut config = small_config(6);
        config.immutable_memtables_max = 1;
        let (engine, _) = open(&disk, &config).await.unwrap();
        for i in 0..400u64 {
            engine
                .write(put(format!("k{i:04}").as_bytes(), 1, &[9; 100]), false)
                .await
                .unwrap();
            let stats = engine.level_stats();
            assert!(stats.immutable_memtables <= 2, "{stats:?}");
            assert!(stats.tables[0] <= config.l0_stall_tables, "{stats:?}");
        }
        let m = engine.metrics();
        assert!(
            m.write_stalls > 0 && m.flushes > 0 && m.compactions > 0,
            "{m:?}"
        );
        let all = engine
            .scan(b"", None, ts(1), false, usize::MAX)
            .await
            .unwrap();
        assert_eq!(all.len(), 400);
    });
}

#[test]
fn damaged_tables_give_errors_never_wrong_data() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 7 });
        let mut config = small_config(7);
        config.block_cache_bytes = 0;
        let (engine, _) = open(&disk, &config).await.unwrap();
        for i in 0..60u64 {
            engine
                .write(put(format!("k{i:02}").as_bytes(), 1, &[i as u8; 80]), false)
                .await
                .unwrap();
        }
        engine.flush().await.unwrap();
        let number = *tables(&disk).last().expect("a table");
        let path = Path::new(DIR).join(table_name(number));
        let len = disk.file_len(&path).unwrap();
        let mut rng = crate::rng::SimRng::new(7);
        let mut errors = 0;
        for _ in 0..200 {
            let bit = rng.below(len * 8);
            disk.flip_bit(&path, bit);
            for i in (0..60u64).step_by(7) {
                match engine.get(format!("k{i:02}").as_bytes(), ts(5)).await {
                    Ok(got) => assert_eq!(got, Some((ts(1), vec![i as u8; 80])), "bit {bit}"),
                    Err(EngineError::Corruption(_)) => errors += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            disk.flip_bit(&path, bit);
        }
        assert!(errors > 0);
        // The damage is found at open too, for the meta blocks.
        disk.flip_bit(&path, (len - 100) * 8);
        drop(engine);
        assert!(matches!(
            open(&disk, &config).await,
            Err(EngineError::Corruption(_))
        ));
    });
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 8 });
        let (engine, _) = open(&disk, &small_config(8)).await.unwrap();
        let mut b = WriteBatch::new();
        b.delete_range(b"z", b"a");
        assert!(matches!(
            engine.write(b, true).await,
            Err(EngineError::InvalidArgument(_))
        ));
        let big = put(b"k", 1, &vec![0; 200 * 1024]);
        let err = engine.write(big, true).await.unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidArgument(_)),
            "over the WAL record limit: {err}"
        );
        assert_eq!(err.sqlstate(), "54000");
        assert!(engine.ingest_begin(b"b", b"a").is_err());
        assert_eq!(engine.metrics().writes, 0);
        // Disk errors carry their errno through.
        let e = EngineError::Disk(DiskError::eio("x"));
        assert!(e.to_string().contains("I/O"), "{e}");
    });
}

#[test]
fn wal_spares_are_made_in_the_background_and_rolls_only_rename() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 9 });
        let mut config = small_config(9);
        config.memtable_bytes = 1 << 20;
        // Raft mode with the floor at 0: the WAL is never truncated, so every
        // new segment needs a spare (nothing is recycled).
        config.raft_log = true;
        let (engine, _) = open(&disk, &config).await.unwrap();
        let segment = config.wal.segment_bytes as usize;
        let spares = |d: &SimDisk| {
            d.peek_names(Path::new(DIR))
                .iter()
                .filter(|n| n.starts_with("wal-spare"))
                .count()
        };
        let mut written = 0;
        let mut i = 0u64;
        while written < 3 * segment {
            let value = vec![i as u8; 1000];
            engine
                .write(put(format!("k{i:05}").as_bytes(), 5, &value), true)
                .await
                .unwrap();
            written += 1100;
            i += 1;
            // The background queue's turn: a spare whenever the active segment
            // is past half full and nothing waits in the pool.
            while engine.background_step().await.unwrap() {}
            assert!(spares(&disk) <= 1, "at most one spare ahead");
        }
        let m = engine.metrics();
        assert!(m.wal_spares >= 2, "{m:?}");
        assert_eq!(m.background_errors, 0);
        // ENOSPC while making one: logged and counted, not retried in the same
        // segment, and writes go on (the roll then makes the file itself).
        let wants = || async { engine.wal.lock().await.wants_spare() };
        while !wants().await {
            let key = format!("k{i:05}");
            engine
                .write(put(key.as_bytes(), 5, &[1; 1000]), true)
                .await
                .unwrap();
            i += 1;
        }
        disk.fail_after(0, Fault::NoSpace);
        let errors = engine.metrics().background_errors;
        assert!(
            !engine.background_step().await.unwrap(),
            "nothing else to do"
        );
        assert_eq!(engine.metrics().background_errors, errors + 1);
        assert_eq!(spares(&disk), 0, "a partial spare is removed");
        engine.background_step().await.unwrap();
        assert_eq!(engine.metrics().background_errors, errors + 1, "no retry");
        disk.clear_fault();
        let seq = engine.wal.lock().await.active_seq();
        while engine.wal.lock().await.active_seq() == seq {
            let key = format!("k{i:05}");
            engine
                .write(put(key.as_bytes(), 5, &[2; 1000]), true)
                .await
                .unwrap();
            i += 1;
        }
        while !wants().await {
            let key = format!("k{i:05}");
            engine
                .write(put(key.as_bytes(), 5, &[3; 1000]), true)
                .await
                .unwrap();
            i += 1;
        }
        let made = engine.metrics().wal_spares;
        while engine.background_step().await.unwrap() {}
        assert_eq!(
            engine.metrics().wal_spares,
            made + 1,
            "retried in the next segment"
        );
    });
}

#[test]
fn large_groups_write_ahead_and_survive_a_reopen() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 10 });
        let mut config = small_config(10);
        config.memtable_bytes = 1 << 20;
        config.wal.batch_bytes_max = 1 << 20;
        let (engine, _) = open(&disk, &config).await.unwrap();
        // Unsynced writes accumulate in one WAL batch; whole chunks are written
        // ahead of the sync (chunks are a segment here, 64 KiB).
        for i in 0..200u64 {
            let value = vec![i as u8; 2000];
            engine
                .write(put(format!("k{i:05}").as_bytes(), 5, &value), false)
                .await
                .unwrap();
        }
        engine.sync_wal().await.unwrap();
        let early = engine.wal.lock().await.early_writes();
        assert!(early >= 4, "chunks written ahead: {early}");
        drop(engine);
        disk.crash();
        let (engine, _) = open(&disk, &config).await.unwrap();
        for i in 0..200u64 {
            let got = engine
                .get(format!("k{i:05}").as_bytes(), ts(9))
                .await
                .unwrap();
            assert_eq!(got, Some((ts(5), vec![i as u8; 2000])), "key {i}");
        }
    });
}

#[test]
fn a_memtable_holding_too_much_log_is_flushed_early_and_segments_recycle() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 11 });
        let mut config = small_config(11);
        config.memtable_bytes = 1 << 20; // never full by size here
        config.wal.segments_free_max = 4;
        let (engine, _) = open(&disk, &config).await.unwrap();
        // Small synced writes: each takes a whole 4 KiB block of log.
        for i in 0..600u64 {
            let key = format!("k{:05}", i % 97);
            engine
                .write(put(key.as_bytes(), i + 1, b"v"), true)
                .await
                .unwrap();
            while engine.background_step().await.unwrap() {}
            let segments = engine.wal.lock().await.segment_count();
            assert!(segments <= 6, "the log stays bounded: {segments} segments");
        }
        let m = engine.metrics();
        assert!(m.flushes >= 5, "{m:?}");
        // After the first flushes, rolls reuse recycled or spare files.
        assert!(m.wal_rolls > 30, "{m:?}");
        assert!(m.wal_segments_created_inline <= 2, "{m:?}");
        for i in 0..97u64 {
            let key = format!("k{i:05}");
            assert!(engine
                .get(key.as_bytes(), ts(1000))
                .await
                .unwrap()
                .is_some());
        }
    });
}

#[test]
fn raft_applies_go_on_past_the_bound_while_flushes_fail_then_catch_up() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 12 });
        let mut config = small_config(12);
        config.raft_log = true;
        config.immutable_memtables_max = 1;
        let (engine, _) = open(&disk, &config).await.unwrap();
        // Plenty of WAL room: preallocated segments take the entries while
        // tables cannot be written.
        let entry = |i: u64| RecordMeta {
            kind: 1,
            range_id: 3,
            term: 1,
            index: i,
        };
        for i in 1..=10u64 {
            engine.append_raft(&[(entry(i), b"e")], true).await.unwrap();
            engine
                .apply(&put(format!("k{i:03}").as_bytes(), i, &[1; 200]), 3, i)
                .await
                .unwrap();
        }
        disk.fail_after(0, Fault::NoSpace);
        let mut i = 11;
        while engine.level_stats().immutable_memtables < 4 {
            engine
                .apply(&put(format!("k{i:03}").as_bytes(), i, &[2; 200]), 3, i)
                .await
                .unwrap();
            i += 1;
            assert!(i < 2000, "memtables never piled up");
        }
        assert!(engine.metrics().background_errors >= 1);
        assert!(engine.read_only_reason().is_none());
        for j in (1..i).step_by(7) {
            let got = engine
                .get(format!("k{j:03}").as_bytes(), ts(9999))
                .await
                .unwrap();
            assert_eq!(got.map(|v| v.0), Some(ts(j)), "key {j} readable");
        }
        // Space returns: the background catches up and the applied index is
        // persisted with the flushes.
        disk.clear_fault();
        while engine.background_step().await.unwrap() {}
        assert_eq!(engine.level_stats().immutable_memtables, 0);
        engine.flush().await.unwrap();
        assert_eq!(engine.applied_index(3), Some(i - 1));
    });
}
