//! `cargo xtask image`: the kbackup container image as an OCI archive, built from the release
//! binary with no base image from any registry. The root file system holds the binary, the
//! shared libraries it links (as `ldd` names them on this machine), the CA certificates, a
//! non-root user and a writable `/tmp`; nothing else. Every byte is a function of those
//! files and the commit: entries sorted, times set to the commit's (`SOURCE_DATE_EPOCH`
//! overrides), owners numeric, the layer uncompressed. Two builds of one commit give one
//! digest.

use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The user the image runs as (the `nonroot` id of distroless images).
const USER_ID: u64 = 65532;
/// Where the binary is in the image.
const BINARY: &str = "usr/local/bin/kbackup";
/// The CA certificates, where rustls' native roots and OpenSSL-style variables look.
const CA_CERTIFICATES: &str = "etc/ssl/certs/ca-certificates.crt";
/// The name containerd gives the image on import, and tests use.
pub const IMAGE_NAME: &str = "localhost/kbackup";

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Builds the release binary and writes the archive to `output` (default:
/// `<target>/image/kbackup-<version>.oci.tar`); prints its path and the manifest digest.
pub fn run(root: &Path, env: &TestEnv, output: Option<PathBuf>) -> Result<()> {
    let binary = crate::ci::release_kbackup(root, env)?;
    let output = output.unwrap_or_else(|| {
        crate::demo::target_dir(root)
            .join("image")
            .join(format!("kbackup-{}.oci.tar", env!("CARGO_PKG_VERSION")))
    });
    let image = build(root, &binary)?;
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&output, &image.archive)
        .with_context(|| format!("writing {}", output.display()))?;
    println!("{}", output.display());
    println!("{}", image.manifest_digest);
    eprintln!(
        "image {IMAGE_NAME}:{} ({} MiB): push it with `skopeo copy oci-archive:{} docker://REGISTRY/kbackup:{}`",
        env!("CARGO_PKG_VERSION"),
        image.archive.len() >> 20,
        output.display(),
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}

/// An image archive and the digest of its manifest.
pub struct Image {
    /// The OCI archive (a tar of an OCI image layout).
    pub archive: Vec<u8>,
    /// `sha256:...` of the manifest: the image's identity.
    pub manifest_digest: String,
}

/// Builds the image twice from the release binary (the two must be byte-identical), has
/// skopeo read it, unpacks its layer as its manifest names it, and runs `kbackup version`
/// in it as its user through `chroot`: the root file system lacks nothing the binary needs
/// to start.
pub fn check(root: &Path, env: &TestEnv) -> Result<()> {
    let binary = crate::ci::release_kbackup(root, env)?;
    let (first, second) = (build(root, &binary)?, build(root, &binary)?);
    if first.archive != second.archive {
        bail!(
            "two builds of the image differ: {} and {}",
            first.manifest_digest,
            second.manifest_digest
        );
    }
    inspected_by_skopeo(&first)?;
    let rootfs = tempfile::tempdir()?;
    unpack_layer(&first.archive, rootfs.path())?;
    let output = Command::new("/usr/sbin/chroot")
        .arg(format!("--userspec={USER_ID}:{USER_ID}"))
        .arg(rootfs.path())
        .args([format!("/{BINARY}").as_str(), "version"])
        .env_clear()
        .env("HOME", "/home/kbackup")
        .output()
        .context("running chroot")?;
    let printed = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !printed.contains(env!("CARGO_PKG_VERSION")) {
        bail!(
            "kbackup version in the image failed ({}): {printed}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!(
        "image {} ({} MiB) is reproducible and runs: {}",
        first.manifest_digest,
        first.archive.len() >> 20,
        printed.lines().next().unwrap_or_default()
    );
    Ok(())
}

/// Reads the archive as registries' tools do (`skopeo inspect oci-archive:`): it must find
/// the image and name the same manifest digest.
fn inspected_by_skopeo(image: &Image) -> Result<()> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), &image.archive)?;
    let output = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", file.path().display()))
        .output()
        .context("running skopeo (apt-get install skopeo)")?;
    let inspected: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "skopeo inspect failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    if inspected["Digest"] != image.manifest_digest.as_str() {
        bail!(
            "skopeo reads manifest {} where the image has {}",
            inspected["Digest"],
            image.manifest_digest
        );
    }
    Ok(())
}

/// Unpacks the layer the archive's index and manifest name into `target`, owners kept.
fn unpack_layer(archive: &[u8], target: &Path) -> Result<()> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in tar::Archive::new(archive).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        files.insert(path, bytes);
    }
    let blob = |digest: &Value| -> Result<&Vec<u8>> {
        let hex = digest
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:");
        files
            .get(&format!("blobs/sha256/{hex}"))
            .with_context(|| format!("the archive lacks blob {digest}"))
    };
    let index: Value = serde_json::from_slice(files.get("index.json").context("no index.json")?)?;
    let manifest: Value = serde_json::from_slice(blob(&index["manifests"][0]["digest"])?)?;
    let layer = blob(&manifest["layers"][0]["digest"])?;
    let mut layer = tar::Archive::new(layer.as_slice());
    layer.set_preserve_permissions(true);
    layer.set_preserve_ownerships(true);
    layer.unpack(target)?;
    Ok(())
}

/// The image of `binary` at the commit checked out in `root`.
pub fn build(root: &Path, binary: &Path) -> Result<Image> {
    let epoch = source_date_epoch(root)?;
    let revision = git(root, &["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".into());
    let files = root_files(binary)?;
    Ok(assemble(&files, epoch, &revision))
}

/// One entry of the root file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntry {
    /// Its path, relative (`usr/local/bin/kbackup`).
    pub path: String,
    /// File content, or `None` for a directory.
    pub content: Option<Vec<u8>>,
    /// Permission bits.
    pub mode: u32,
    /// Owner and group id.
    pub owner: u64,
}

fn directory(path: &str, mode: u32, owner: u64) -> RootEntry {
    RootEntry {
        path: path.into(),
        content: None,
        mode,
        owner,
    }
}

fn file(path: &str, content: Vec<u8>, mode: u32) -> RootEntry {
    RootEntry {
        path: path.into(),
        content: Some(content),
        mode,
        owner: 0,
    }
}

/// The root file system: the binary, its libraries, certificates, user, home and `/tmp`.
fn root_files(binary: &Path) -> Result<Vec<RootEntry>> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let mut entries = vec![
        file(BINARY, stripped(binary)?, 0o755),
        file(CA_CERTIFICATES, read(Path::new("/").join(CA_CERTIFICATES).as_path())?, 0o644),
        file(
            "etc/passwd",
            format!("root:x:0:0:root:/root:/sbin/nologin\nkbackup:x:{USER_ID}:{USER_ID}:kbackup:/home/kbackup:/sbin/nologin\n").into_bytes(),
            0o644,
        ),
        file(
            "etc/group",
            format!("root:x:0:\nkbackup:x:{USER_ID}:\n").into_bytes(),
            0o644,
        ),
        directory("home/kbackup", 0o700, USER_ID),
        directory("tmp", 0o1777, 0),
    ];
    for library in linked_libraries(binary)? {
        let relative = library.strip_prefix("/").unwrap_or(&library);
        entries.push(file(&relative.to_string_lossy(), read(&library)?, 0o755));
    }
    Ok(entries)
}

/// `binary` without its debug information (the release profile keeps line tables for
/// backtraces: nine tenths of the file), as binutils' `strip` leaves it, deterministically.
fn stripped(binary: &Path) -> Result<Vec<u8>> {
    let out = tempfile::NamedTempFile::new()?;
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(out.path())
        .arg(binary)
        .status()
        .context("running strip (binutils)")?;
    if !status.success() {
        bail!("strip {} failed ({status})", binary.display());
    }
    Ok(std::fs::read(out.path())?)
}

/// The shared libraries `binary` loads, the dynamic loader included, as `ldd` finds them.
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd (libc-bin)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // A static binary needs nothing: ldd says so and fails.
        if text.contains("not a dynamic executable") {
            return Ok(vec![]);
        }
        bail!("ldd {} failed: {text}", binary.display());
    }
    parse_ldd(&text)
}

/// Library paths from `ldd` output (`libc.so.6 => /lib/.../libc.so.6 (0x...)`, and the
/// loader `/lib64/ld-linux-x86-64.so.2 (0x...)`); the vDSO has no file.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>> {
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = match line.split_once("=>") {
            Some((name, rest)) => match rest.split_whitespace().next() {
                Some(path) if path.starts_with('/') => path,
                _ => bail!("ldd cannot find {}", name.trim()),
            },
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    libraries.sort();
    libraries.dedup();
    Ok(libraries)
}

/// The archive of `files`: layer, config, manifest, index, layout, all reproducible.
pub fn assemble(files: &[RootEntry], epoch: u64, revision: &str) -> Image {
    let layer = layer_tar(files, epoch);
    let layer_digest = sha256(&layer);
    let created = rfc3339(epoch);
    let version = env!("CARGO_PKG_VERSION");
    let labels = json!({
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": env!("CARGO_PKG_LICENSE"),
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": env!("CARGO_PKG_REPOSITORY"),
        "org.opencontainers.image.title": "kbackup",
        "org.opencontainers.image.version": version,
    });
    let config = canonical(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": format!("{USER_ID}:{USER_ID}"),
            "Entrypoint": [format!("/{BINARY}")],
            "Env": [
                "PATH=/usr/local/bin",
                "HOME=/home/kbackup",
                format!("SSL_CERT_FILE=/{CA_CERTIFICATES}"),
            ],
            "WorkingDir": "/home/kbackup",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": "cargo xtask image"}],
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
        "io.containerd.image.name": format!("{IMAGE_NAME}:{version}"),
        "org.opencontainers.image.ref.name": version,
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
        let (path, data): (String, &[u8]) = match &entry.content {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                (entry.path.clone(), bytes)
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                (format!("{}/", entry.path), &[])
            }
        };
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, &path, data)
            .expect("writing a tar into memory");
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

/// `SOURCE_DATE_EPOCH`, else the commit's time, else 0.
fn source_date_epoch(root: &Path) -> Result<u64> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={value:?} is not a number"));
    }
    Ok(git(root, &["log", "-1", "--format=%ct"])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0))
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git").args(args).current_dir(root).output()?;
    if !output.status.success() {
        bail!("git {} failed", args.join(" "));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
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
            file(BINARY, binary.to_vec(), 0o755),
            file("lib64/ld-linux-x86-64.so.2", b"loader".to_vec(), 0o755),
            directory("tmp", 0o1777, 0),
        ]
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes_and_another_binary_another_digest() {
        let first = assemble(&files(b"kbackup"), 1_764_000_000, "abc");
        let second = assemble(&files(b"kbackup"), 1_764_000_000, "abc");
        assert_eq!(first.archive, second.archive);
        assert_eq!(first.manifest_digest, second.manifest_digest);
        let other = assemble(&files(b"kbackup 2"), 1_764_000_000, "abc");
        assert_ne!(first.manifest_digest, other.manifest_digest);
    }

    #[test]
    fn the_layer_holds_every_parent_directory_sorted_with_fixed_times_and_owners() {
        let layer = layer_tar(&files(b"x"), 42);
        let mut archive = tar::Archive::new(layer.as_slice());
        let listed: Vec<(String, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let header = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    header.mtime().unwrap(),
                    header.uid().unwrap(),
                )
            })
            .collect();
        let paths: Vec<&str> = listed.iter().map(|(p, ..)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
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
                .all(|(_, mtime, uid)| *mtime == 42 && *uid == 0)
        );
    }

    #[test]
    fn ldd_output_gives_the_library_files_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f13)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f13)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f13)\n";
        let libraries = parse_ldd(text).unwrap();
        assert_eq!(
            libraries,
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tlibssl.so.3 => not found\n").is_err());
    }

    #[test]
    fn epochs_read_as_utc_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_460_800), "2025-11-30T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
