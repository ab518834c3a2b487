//! Objects a repository reads at open, backup, listing, check and prune: the first byte
//! chooses where the rest goes (a key slot, the configuration, raw or sealed with the key
//! under an index, snapshot, mark or session name), then the repository is opened, listed,
//! checked, backed up to and pruned. Errors are expected; panics, hangs and unbounded
//! allocations are what is looked for.
#![no_main]

use backup_repository::{PruneOptions, Repository};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const PLACES: [&str; 8] = [
    "keys/ffff",
    "config",
    "index/ffff",
    "snapshots/ffff",
    "pending/ffff",
    "sessions/ffff",
    "data/ff/ffff",
    "data/x",
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let (memory, key) = kbackup_fuzz::fixture();
    let storage = memory.fork();
    let place = PLACES[(choice as usize) % PLACES.len()];
    // Odd choices: raw bytes (a writer without the key); even ones: sealed with the key.
    let bytes = match choice % 2 == 0 && !place.starts_with("keys/") {
        true => match key.seal(body, place.as_bytes()) {
            Ok(sealed) => sealed,
            Err(_) => return,
        },
        false => body.to_vec(),
    };
    storage.insert(place, Bytes::from(bytes));
    kbackup_fuzz::runtime().block_on(async move {
        let Ok(repo) = Repository::open(Arc::new(storage), kbackup_fuzz::PASSWORD).await else {
            return;
        };
        let _ = repo.snapshots().await;
        let _ = repo.load_index().await;
        let _ = repo.check(100).await;
        let _ = repo.backup_stream("fuzz", &b"fuzz data"[..]).await;
        let due = chrono::Utc::now() + chrono::Duration::hours(1);
        let options = PruneOptions::new(std::time::Duration::ZERO, due);
        let _ = repo.prune(&options).await;
    });
});
