//! A stored blob: raw bytes, and any plaintext sealed for a chunk id (flag byte, zstd frames
//! of any declared size: decoding must stay within a chunk's size).
#![no_main]

use backup_repository::{ChunkId, decode_blob};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (_, key) = kbackup_fuzz::fixture();
    let id = ChunkId([7; 32]);
    let _ = decode_blob(key, &id, data);
    let context = [b"blob:".as_slice(), &id.0].concat();
    if let Ok(sealed) = key.seal(data, &context) {
        if let Ok(plain) = decode_blob(key, &id, &sealed) {
            assert!(plain.len() <= backup_repository::pack::MAX_CHUNK as usize);
        }
    }
});
