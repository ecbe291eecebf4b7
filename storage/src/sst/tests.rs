//! SSTable tests on the simulated disk: seeded round trips against a model, and
//! bit flips anywhere in a file that must never come back as data.

use super::table::{owned, OwnedValue};
use super::*;
use crate::disk::{Disk, OpenMode, SimDisk, SimDiskOptions};
use crate::memtable::Value;
use crate::rng::SimRng;
use crate::spans::SpanSet;
use block::cmp_versions;
use futures_lite::future::block_on;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

type Version = (Vec<u8>, Timestamp, OwnedValue);

fn random_versions(rng: &mut SimRng, n: usize) -> Vec<Version> {
    let mut v: Vec<Version> = (0..n)
        .map(|_| {
            let key = format!("k{:04}", rng.below(n as u64 / 2 + 1)).into_bytes();
            let ts = Timestamp::new(rng.below(20), rng.below(2) as u32);
            let value = rng.chance(85).then(|| {
                let len = if rng.chance(3) {
                    rng.range(3000, 9000)
                } else {
                    rng.below(120)
                };
                let mut v = vec![0; len as usize];
                rng.fill(&mut v);
                v
            });
            (key, ts, value)
        })
        .collect();
    v.sort_by(|a, b| cmp_versions(&a.0, a.1, &b.0, b.1));
    v.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    v
}

fn options(rng: &mut SimRng) -> TableOptions {
    TableOptions {
        block_bytes: [256, 1024, 4096][rng.below(3) as usize],
        restart_interval: rng.range(1, 16) as usize,
        bloom_bits_per_key: 10,
    }
}

async fn build(
    disk: &SimDisk,
    path: &Path,
    number: u64,
    versions: &[Version],
    dels: &SpanSet,
    opts: TableOptions,
) -> TableMeta {
    let mut b = TableBuilder::create(disk, path, number, opts)
        .await
        .unwrap();
    for (k, t, v) in versions {
        b.add(k, *t, v.as_deref().map_or(Value::Delete, Value::Put))
            .await
            .unwrap();
    }
    for (s, e) in dels.iter() {
        b.add_range_del(s, e);
    }
    b.finish().await.unwrap()
}

fn model_get(
    versions: &[Version],
    key: &[u8],
    read_ts: Timestamp,
) -> Option<(Timestamp, OwnedValue)> {
    versions
        .iter()
        .find(|v| v.0 == key && v.1 <= read_ts)
        .map(|v| (v.1, v.2.clone()))
}

async fn scan_all(it: &mut TableIter<crate::disk::SimDiskFile>) -> Result<Vec<Version>, SstError> {
    let mut out = Vec::new();
    it.seek_to_first().await?;
    while it.valid() {
        out.push((it.key().to_vec(), it.ts(), owned(it.value())));
        it.next().await?;
    }
    Ok(out)
}

fn path(n: u64) -> PathBuf {
    PathBuf::from(format!("/t/{}", format::table_name(n)))
}

#[test]
fn tables_round_trip_against_a_model() {
    block_on(async {
        for seed in 0..60 {
            let mut rng = SimRng::new(seed);
            let disk = SimDisk::new(SimDiskOptions { seed });
            let n = rng.range(1, 600) as usize;
            let versions = random_versions(&mut rng, n);
            let mut dels = SpanSet::new();
            if rng.chance(30) {
                dels.insert(b"k", b"k0010");
                dels.insert(b"zz", b"zzz");
            }
            let opts = options(&mut rng);
            let meta = build(&disk, &path(seed), seed, &versions, &dels, opts).await;
            assert_eq!(meta.entries, versions.len() as u64);
            assert_eq!(meta.min_ts, versions.iter().map(|v| v.1).min().unwrap());
            assert_eq!(meta.largest_exclusive, !dels.is_empty(), "seed {seed}");
            let file = disk.open(&path(seed), OpenMode::Existing).await.unwrap();
            let table = Rc::new(Table::open(file, seed).await.unwrap());
            assert_eq!(table.size(), meta.size);
            assert_eq!(table.range_dels(), &dels);
            let cache = Rc::new(RefCell::new(BlockCache::new(if seed % 2 == 0 {
                1 << 20
            } else {
                0
            })));
            let mut it = TableIter::new(Rc::clone(&table), Rc::clone(&cache));
            assert_eq!(scan_all(&mut it).await.unwrap(), versions, "seed {seed}");
            // Backwards.
            let mut back = Vec::new();
            it.seek_to_last().await.unwrap();
            while it.valid() {
                back.push((it.key().to_vec(), it.ts(), owned(it.value())));
                it.prev().await.unwrap();
            }
            back.reverse();
            assert_eq!(back, versions, "seed {seed}: backwards");
            for _ in 0..100 {
                let key = format!("k{:04}", rng.below(versions.len() as u64 / 2 + 3)).into_bytes();
                let ts = Timestamp::new(rng.below(22), rng.below(2) as u32);
                let hash = bloom::key_hash(&key);
                let got = table.get(&key, hash, ts, &cache).await.unwrap();
                assert_eq!(got, model_get(&versions, &key, ts), "seed {seed}: get");
                it.seek(&key, ts).await.unwrap();
                let want = versions
                    .iter()
                    .position(|v| cmp_versions(&v.0, v.1, &key, ts).is_ge());
                assert_eq!(
                    it.valid().then(|| it.key().to_vec()),
                    want.map(|i| versions[i].0.clone()),
                    "seed {seed}: seek"
                );
                it.seek_before(&key, ts).await.unwrap();
                let want = want.unwrap_or(versions.len()).checked_sub(1);
                assert_eq!(
                    it.valid().then(|| (it.key().to_vec(), it.ts())),
                    want.map(|i| (versions[i].0.clone(), versions[i].1)),
                    "seed {seed}: seek_before"
                );
            }
        }
    });
}

#[test]
fn a_table_of_range_tombstones_only() {
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 1 });
        let mut dels = SpanSet::new();
        dels.insert(b"b", b"d");
        let meta = build(&disk, &path(1), 1, &[], &dels, TableOptions::default()).await;
        assert_eq!(
            (meta.smallest.as_slice(), meta.largest.as_slice()),
            (&b"b"[..], &b"d"[..])
        );
        assert!(meta.contains(b"c") && !meta.contains(b"d") && meta.overlaps(b"a", Some(b"c")));
        let file = disk.open(&path(1), OpenMode::Existing).await.unwrap();
        let table = Rc::new(Table::open(file, 1).await.unwrap());
        assert!(table.range_dels().covers(b"bb"));
        let cache = Rc::new(RefCell::new(BlockCache::new(1 << 20)));
        let mut it = TableIter::new(table, cache);
        assert!(scan_all(&mut it).await.unwrap().is_empty());
    });
}

#[test]
fn bit_flips_are_detected_never_returned() {
    block_on(async {
        let mut detected = 0;
        for seed in 0..300u64 {
            let mut rng = SimRng::new(seed);
            let disk = SimDisk::new(SimDiskOptions { seed });
            let n = rng.range(1, 200) as usize;
            let versions = random_versions(&mut rng, n);
            let meta = build(
                &disk,
                &path(seed),
                seed,
                &versions,
                &SpanSet::new(),
                options(&mut rng),
            )
            .await;
            let bit = rng.below(meta.size * 8);
            disk.flip_bit(&path(seed), bit);
            let file = disk.open(&path(seed), OpenMode::Existing).await.unwrap();
            // Opening a table under the wrong number is refused as well.
            let result = async {
                let table = Rc::new(Table::open(file, seed).await?);
                let cache = Rc::new(RefCell::new(BlockCache::new(1 << 20)));
                let mut it = TableIter::new(Rc::clone(&table), Rc::clone(&cache));
                let all = scan_all(&mut it).await?;
                for (k, t, _) in &versions {
                    let got = table.get(k, bloom::key_hash(k), *t, &cache).await?;
                    // Every block is checksummed: undetected damage (padding) must
                    // not lose a version either.
                    assert_eq!(got.map(|g| g.0), Some(*t), "seed {seed}: lost version");
                }
                Ok::<_, SstError>(all)
            }
            .await;
            match result {
                Ok(all) => assert_eq!(all, versions, "seed {seed}: bit {bit} returned bad data"),
                Err(SstError::Corruption { .. }) => detected += 1,
                Err(e) => panic!("seed {seed}: {e}"),
            }
        }
        // Most of a small table is padding (the header page, page-padded blocks),
        // where a flip is harmless; the rest must be caught.
        assert!(detected > 60, "only {detected} flips detected");
    });
    block_on(async {
        let disk = SimDisk::new(SimDiskOptions { seed: 9 });
        let versions = vec![(b"a".to_vec(), Timestamp::ZERO, None)];
        build(
            &disk,
            &path(9),
            9,
            &versions,
            &SpanSet::new(),
            TableOptions::default(),
        )
        .await;
        let file = disk.open(&path(9), OpenMode::Existing).await.unwrap();
        assert!(matches!(
            Table::open(file, 10).await,
            Err(SstError::Corruption { .. })
        ));
    });
}

#[test]
fn table_meta_overlap() {
    let meta = |s: &[u8], l: &[u8], excl: bool| TableMeta {
        number: 1,
        size: 0,
        smallest: s.to_vec(),
        largest: l.to_vec(),
        largest_exclusive: excl,
        entries: 0,
        tombstones: 0,
        range_dels: 0,
        min_ts: Timestamp::ZERO,
        max_ts: Timestamp::ZERO,
    };
    assert!(meta(b"a", b"c", false).overlaps_table(&meta(b"c", b"d", false)));
    assert!(!meta(b"a", b"c", true).overlaps_table(&meta(b"c", b"d", false)));
    assert!(meta(b"c", b"d", false).overlaps_table(&meta(b"a", b"z", true)));
    assert!(!meta(b"a", b"c", false).overlaps(b"d", None));
    assert!(meta(b"a", b"c", false).overlaps(b"c", Some(b"d")));
    assert!(!meta(b"a", b"c", true).overlaps(b"c", Some(b"d")));
    assert!(!meta(b"c", b"d", false).overlaps(b"a", Some(b"c")));
}
