//! A reproducible OCI image archive (an image layout in a tar, one uncompressed layer) from
//! a list of root file system entries. Every byte is a function of the entries, the
//! configuration and the epoch: entries sorted, times set to the epoch, owners numeric.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What one entry of the root file system is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Directory,
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One entry of the root file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntry {
    /// Its path, relative (`usr/local/bin/kbackup`).
    pub path: String,
    pub content: Content,
    /// Permission bits.
    pub mode: u32,
    /// Owner and group id.
    pub owner: u64,
}

/// A directory entry.
pub fn directory(path: &str, mode: u32, owner: u64) -> RootEntry {
    RootEntry {
        path: path.into(),
        content: Content::Directory,
        mode,
        owner,
    }
}

/// A file owned by root.
pub fn file(path: &str, content: Vec<u8>, mode: u32) -> RootEntry {
    RootEntry {
        path: path.into(),
        content: Content::File(content),
        mode,
        owner: 0,
    }
}

/// A symbolic link owned by root.
pub fn symlink(path: &str, target: &str) -> RootEntry {
    RootEntry {
        path: path.into(),
        content: Content::Symlink(target.into()),
        mode: 0o777,
        owner: 0,
    }
}

/// How the image runs and what it says about itself.
pub struct ImageConfig {
    /// The name containerd gives the image on import (`localhost/kbackup`).
    pub name: String,
    /// Its tag.
    pub version: String,
    /// `uid:gid` it runs as.
    pub user: String,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// OCI annotations and labels; `org.opencontainers.image.created` is added.
    pub labels: BTreeMap<String, String>,
}

/// An image archive and the digest of its manifest.
pub struct Image {
    /// The OCI archive (a tar of an OCI image layout).
    pub archive: Vec<u8>,
    /// `sha256:...` of the manifest: the image's identity.
    pub manifest_digest: String,
}

/// The archive of `files`: layer, config, manifest, index, layout, all reproducible.
pub fn assemble(files: &[RootEntry], image: &ImageConfig, epoch: u64) -> Image {
    let layer = layer_tar(files, epoch);
    let layer_digest = sha256(&layer);
    let created = rfc3339(epoch);
    let mut labels = image.labels.clone();
    labels.insert("org.opencontainers.image.created".into(), created.clone());
    let config = canonical(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": image.user,
            "Entrypoint": image.entrypoint,
            "Env": image.env,
            "WorkingDir": image.working_dir,
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": "cargo xtask"}],
    }));
    let descriptor = |media: &str, bytes: &[u8]| json!({"mediaType": media, "digest": sha256(bytes), "size": bytes.len()});
    let manifest = canonical(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(CONFIG, &config),
        "layers": [descriptor(LAYER, &layer)],
        "annotations": labels,
    }));
    let manifest_digest = sha256(&manifest);
    let mut reference = descriptor(MANIFEST, &manifest);
    reference["annotations"] = json!({
        "io.containerd.image.name": format!("{}:{}", image.name, image.version),
        "org.opencontainers.image.ref.name": image.version,
    });
    let index = canonical(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [reference],
    }));
    let mut layout: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for blob in [&layer, &config, &manifest] {
        let hex = sha256(blob).trim_start_matches("sha256:").to_owned();
        layout.insert(format!("blobs/sha256/{hex}"), blob.clone());
    }
    layout.insert("index.json".into(), index);
    layout.insert(
        "oci-layout".into(),
        canonical(&json!({"imageLayoutVersion": "1.0.0"})),
    );
    let mut entries = vec![
        directory("blobs", 0o755, 0),
        directory("blobs/sha256", 0o755, 0),
    ];
    entries.extend(
        layout
            .into_iter()
            .map(|(path, bytes)| file(&path, bytes, 0o644)),
    );
    Image {
        archive: tar(&entries, epoch),
        manifest_digest,
    }
}

/// The layer: every entry, and every directory above one, sorted by path.
fn layer_tar(files: &[RootEntry], epoch: u64) -> Vec<u8> {
    let mut all: BTreeMap<String, RootEntry> = BTreeMap::new();
    for entry in files {
        for dir in Path::new(&entry.path).ancestors().skip(1) {
            let dir = dir.to_string_lossy();
            if !dir.is_empty() && !all.contains_key(dir.as_ref()) {
                all.insert(dir.to_string(), directory(&dir, 0o755, 0));
            }
        }
        all.insert(entry.path.clone(), entry.clone());
    }
    tar(&all.into_values().collect::<Vec<_>>(), epoch)
}

/// A ustar archive of `entries` in their order, times `epoch`, owners numeric.
fn tar(entries: &[RootEntry], epoch: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(epoch);
        header.set_uid(entry.owner);
        header.set_gid(entry.owner);
        header.set_mode(entry.mode);
        let written = match &entry.content {
            Content::File(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, &entry.path, bytes.as_slice())
            }
            Content::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{}/", entry.path), &[][..])
            }
            Content::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &entry.path, target)
            }
        };
        written.expect("writing a tar into memory");
    }
    builder.into_inner().expect("finishing a tar in memory")
}

/// JSON with sorted keys and no spaces (serde_json's map is ordered by key).
fn canonical(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON serializes")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// `epoch` as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
fn rfc3339(epoch: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(epoch).unwrap_or(0), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(binary: &[u8]) -> Vec<RootEntry> {
        vec![
            file("usr/local/bin/kbackup", binary.to_vec(), 0o755),
            file("lib64/ld-linux-x86-64.so.2", b"loader".to_vec(), 0o755),
            symlink("bin/sh", "/usr/local/bin/kbackup"),
            directory("tmp", 0o1777, 0),
        ]
    }

    fn config() -> ImageConfig {
        ImageConfig {
            name: "localhost/test".into(),
            version: "1".into(),
            user: "1:1".into(),
            entrypoint: vec!["/usr/local/bin/kbackup".into()],
            env: vec![],
            working_dir: "/".into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes_and_another_binary_another_digest() {
        let first = assemble(&files(b"kbackup"), &config(), 1_764_000_000);
        let second = assemble(&files(b"kbackup"), &config(), 1_764_000_000);
        assert_eq!(first.archive, second.archive);
        assert_eq!(first.manifest_digest, second.manifest_digest);
        let other = assemble(&files(b"kbackup 2"), &config(), 1_764_000_000);
        assert_ne!(first.manifest_digest, other.manifest_digest);
    }

    #[test]
    fn the_layer_holds_every_parent_directory_sorted_with_fixed_times_and_owners() {
        let layer = layer_tar(&files(b"x"), 42);
        let mut archive = tar::Archive::new(layer.as_slice());
        let listed: Vec<(String, u64, u64, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let header = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    header.mtime().unwrap(),
                    header.uid().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let paths: Vec<&str> = listed.iter().map(|(p, ..)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/sh",
                "lib64/",
                "lib64/ld-linux-x86-64.so.2",
                "tmp/",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/kbackup"
            ]
        );
        assert!(
            listed
                .iter()
                .all(|(_, mtime, uid, _)| *mtime == 42 && *uid == 0)
        );
        assert_eq!(listed[1].3.as_deref(), Some("/usr/local/bin/kbackup"));
    }

    #[test]
    fn epochs_read_as_utc_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_460_800), "2025-11-30T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
