//! A tree listing (JSON lines of nodes): every accepted node has a plain path below a
//! directory listed before it.
#![no_main]

use backup_repository::tree::{NodeKind, parse_listing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(nodes) = parse_listing("/fuzz", data) {
        for node in &nodes[1.min(nodes.len())..] {
            let path = &node.path.0;
            assert!(!path.is_empty() && !path.starts_with(b"/"));
            assert!(
                path.split(|b| *b == b'/')
                    .all(|name| !matches!(name, b"" | b"." | b".."))
            );
            if node.kind == NodeKind::Symlink || node.kind == NodeKind::Hardlink {
                assert!(node.target.is_some());
            }
        }
    }
});
