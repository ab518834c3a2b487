//! A pack's trailing header: raw bytes (a writer without the key), and a header sealed with
//! the key around any plaintext (a key holder) after a body of the input's choosing.
#![no_main]

use backup_repository::pack::read_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (_, key) = kbackup_fuzz::fixture();
    let _ = read_header(key, "fuzz", data);
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (body, plain) = rest.split_at((split as usize).min(rest.len()));
    let Ok(sealed) = key.seal(plain, b"pack header") else {
        return;
    };
    let mut pack = body.to_vec();
    pack.extend_from_slice(&sealed);
    pack.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    if let Ok(blobs) = read_header(key, "fuzz", &pack) {
        for blob in blobs {
            assert!(
                blob.end() <= pack.len() as u64,
                "a blob outside the pack was accepted"
            );
        }
    }
});
