//! A cluster manifest stream: header, records (each checked against its checksum), trailer.
#![no_main]

use backup_core::resources::ManifestReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut reader = ManifestReader::default();
    for line in text.lines() {
        if reader.line(line).is_err() {
            return;
        }
    }
    let _ = reader.finish();
});
