//! `cargo xtask image`: the kbackup container image as an OCI archive, built from the release
//! binary with no base image from any registry. The root file system holds the binary, the
//! shared libraries it links (as `ldd` names them on this machine), the CA certificates, a
//! non-root user and a writable `/tmp`; nothing else. Every byte is a function of those
//! files and the commit: entries sorted, times set to the commit's (`SOURCE_DATE_EPOCH`
//! overrides), owners numeric, the layer uncompressed. Two builds of one commit give one
//! digest.

pub mod oci;

use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use oci::{Image, ImageConfig, RootEntry, directory, file};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The user the image runs as (the `nonroot` id of distroless images).
const USER_ID: u64 = 65532;
/// Where the binary is in the image.
const BINARY: &str = "usr/local/bin/kbackup";
/// Where the operator's binary is in the image (built beside `kbackup`).
const OPERATOR_BINARY: &str = "usr/local/bin/kbackup-operator";
/// The CA certificates, where rustls' native roots and OpenSSL-style variables look.
const CA_CERTIFICATES: &str = "etc/ssl/certs/ca-certificates.crt";
/// The name containerd gives the image on import, and tests use.
pub const IMAGE_NAME: &str = "localhost/kbackup";

/// Builds the release binary and writes the archive to `output` (default:
/// `<target>/image/kbackup-<version>.oci.tar`); prints its path and the manifest digest.
/// With `load`, imports it into the test environment's node.
pub fn run(root: &Path, env: &TestEnv, output: Option<PathBuf>, load: bool) -> Result<()> {
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
    if load {
        crate::testenv::node::load(env, &output)?;
        eprintln!("imported into the node {}", crate::testenv::node::NODE_NAME);
    }
    eprintln!(
        "image {IMAGE_NAME}:{} ({} MiB): push it with `skopeo copy oci-archive:{} docker://REGISTRY/kbackup:{}`",
        env!("CARGO_PKG_VERSION"),
        image.archive.len() >> 20,
        output.display(),
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}

/// Builds the image twice from the release binary (the two must be byte-identical), has
/// skopeo read it, unpacks its layer as its manifest names it, and runs `kbackup version`
/// and `kbackup-operator --version` in it as its user through `chroot`: the root file system lacks nothing the binary needs
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
    let mut printed = String::new();
    for (binary, argument) in [(BINARY, "version"), (OPERATOR_BINARY, "--version")] {
        let output = Command::new("/usr/sbin/chroot")
            .arg(format!("--userspec={USER_ID}:{USER_ID}"))
            .arg(rootfs.path())
            .args([format!("/{binary}").as_str(), argument])
            .env_clear()
            .env("HOME", "/home/kbackup")
            .output()
            .context("running chroot")?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !text.contains(env!("CARGO_PKG_VERSION")) {
            bail!(
                "/{binary} {argument} in the image failed ({}): {text}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        printed.push_str(&text);
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
    Ok(oci::assemble(&files, &kbackup_config(&revision), epoch))
}

/// How the kbackup image runs, and its labels.
fn kbackup_config(revision: &str) -> ImageConfig {
    let version = env!("CARGO_PKG_VERSION");
    let labels = [
        ("licenses", env!("CARGO_PKG_LICENSE")),
        ("revision", revision),
        ("source", env!("CARGO_PKG_REPOSITORY")),
        ("title", "kbackup"),
        ("version", version),
    ];
    ImageConfig {
        name: IMAGE_NAME.into(),
        version: version.into(),
        user: format!("{USER_ID}:{USER_ID}"),
        entrypoint: vec![format!("/{BINARY}")],
        env: vec![
            "PATH=/usr/local/bin".into(),
            "HOME=/home/kbackup".into(),
            format!("SSL_CERT_FILE=/{CA_CERTIFICATES}"),
        ],
        working_dir: "/home/kbackup".into(),
        labels: labels
            .into_iter()
            .map(|(key, value)| (format!("org.opencontainers.image.{key}"), value.to_owned()))
            .collect(),
    }
}

/// The root file system: the binaries (`kbackup`, and `kbackup-operator` beside it), their
/// libraries, certificates, user, home and `/tmp`.
fn root_files(binary: &Path) -> Result<Vec<RootEntry>> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let operator = binary.with_file_name("kbackup-operator");
    let mut entries = vec![
        file(BINARY, stripped(binary)?, 0o755),
        file(OPERATOR_BINARY, stripped(&operator)?, 0o755),
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
    let mut libraries = linked_libraries(binary)?;
    libraries.extend(linked_libraries(&operator)?);
    libraries.sort();
    libraries.dedup();
    for library in libraries {
        let relative = library.strip_prefix("/").unwrap_or(&library);
        entries.push(file(&relative.to_string_lossy(), read(&library)?, 0o755));
    }
    Ok(entries)
}

/// `binary` without its debug information (the release profile keeps line tables for
/// backtraces: most of the file), its symbol table and its build id, as binutils' `strip`
/// leaves it. The symbols' names carry hashes of where the workspace was checked out, and the
/// build id hashes them in: without both, builds of one commit in two clones give the same
/// bytes (checked: they differed before). Backtraces in the image show addresses only.
fn stripped(binary: &Path) -> Result<Vec<u8>> {
    let out = tempfile::NamedTempFile::new()?;
    let status = Command::new("strip")
        .args(["--strip-all", "--remove-section=.note.gnu.build-id"])
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
