//! WAL appends of large records beside raw O_DIRECT sequential writes on the
//! real disk — the sequential part of `benches/benches/storage_engine.rs`,
//! buildable without the rest of the workspace (quick iterations on the WAL):
//!
//! ```text
//! cargo run --release -p teller-storage --example wal_sequential -- [MiB] [dir] [rounds]
//! ```

use std::path::PathBuf;
use teller_storage::bench::sequential;
use teller_storage::disk::{probe_device, DmaDisk};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mb: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(512);
    let dir = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("teller-wal-sequential"));
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    glommio::LocalExecutorBuilder::default()
        .io_memory(4 << 20)
        .spawn(move || async move {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create the directory");
            probe_device(&dir).await.expect("probe");
            let wal_dir = dir.join("wal");
            std::fs::create_dir_all(&wal_dir).expect("create the WAL directory");
            for (record_kib, per_sync) in [(256usize, 16u64), (1024, 32)] {
                let disk = DmaDisk::new();
                let r = sequential(
                    disk,
                    &dir,
                    &wal_dir,
                    mb << 20,
                    record_kib << 10,
                    per_sync,
                    rounds,
                )
                .await
                .expect("sequential");
                println!("{record_kib} KiB x {per_sync}: {r}");
            }
            let _ = std::fs::remove_dir_all(&dir);
        })
        .expect("spawn")
        .join()
        .expect("join");
}
