//! What a restore that brings the StackPacks back (settings, StackGraph v2) passes its Job
//! from the `stackpacks:` section: the platform's addresses and version, and the local
//! StackPacks volume.

use super::ClaimMount;
use backup_core::stackstate::StackPacksSection;
use std::collections::BTreeMap;

/// The platform's addresses and version, which the server and the StackPacks tools of the
/// backup image read.
pub(super) fn platform_env(packs: &StackPacksSection) -> BTreeMap<String, String> {
    [
        ("STACKSTATE_BASE_URL", &packs.base_url),
        ("RECEIVER_BASE_URL", &packs.receiver_base_url),
        ("PLATFORM_VERSION", &packs.platform_version),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.clone()))
    .collect()
}

/// Where the StackPacks restore finds and puts them: the local StackPacks, and their backup
/// directory under `dir_variable` (each data store names it its own way).
pub(super) fn stackpacks_env(
    packs: &StackPacksSection,
    dir_variable: &str,
) -> BTreeMap<String, String> {
    [
        (
            "CONFIG_FORCE_stackstate_stackPacks_localStackPacksUri",
            &packs.local_stack_packs_uri,
        ),
        (dir_variable, &packs.backup_dir),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.clone()))
    .collect()
}

/// The local StackPacks volume, mounted where the server keeps them, when the configuration
/// names its claim and the StackPacks are on a file system (`file://...`).
pub(super) fn stackpacks_mount(packs: &StackPacksSection) -> Option<ClaimMount> {
    let path = packs.local_stack_packs_uri.strip_prefix("file://")?;
    packs.pvc.as_ref().map(|claim| ClaimMount {
        claim: claim.clone(),
        mount_path: path.into(),
    })
}
