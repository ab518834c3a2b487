//! The benchmarks' real data set: the Linux source tree of Debian's `linux-source-6.1`
//! package (about 79,000 files, mostly small text files, 1.5 GB), as the Debian mirror serves
//! it today. Cached per package version.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGE: &str = "linux-source-6.1";

/// The tree below `dir`, fetched and unpacked unless the cached copy is of the version the
/// mirror serves; returns it with the package version.
pub(super) fn fetch(dir: &Path) -> Result<(PathBuf, String)> {
    let version = candidate_version()?;
    let tree = dir.join(PACKAGE);
    let marker = dir.join(".version");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(version.as_str()) {
        return Ok((tree, version));
    }
    eprintln!("fetching {PACKAGE} {version} into {}", dir.display());
    std::fs::remove_dir_all(dir).ok();
    let download = dir.join("download");
    std::fs::create_dir_all(&download)?;
    run(Command::new("apt-get")
        .args(["download", &format!("{PACKAGE}={version}")])
        .current_dir(&download))?;
    let deb = std::fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    // The package holds the tree as one tarball: /usr/src/linux-source-6.1.tar.xz.
    run(Command::new("sh").arg("-c").arg(format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -xO ./usr/src/{PACKAGE}.tar.xz | tar -xJ -C '{}'",
        deb.display(),
        dir.display()
    )))?;
    std::fs::remove_dir_all(&download)?;
    if !tree.is_dir() {
        bail!("{PACKAGE} {version} did not unpack into {}", tree.display());
    }
    std::fs::write(&marker, &version)?;
    Ok((tree, version))
}

/// The version of the package the configured Debian mirror serves.
fn candidate_version() -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["policy", PACKAGE])
        .output()
        .context("running apt-cache (the Linux source data set comes from Debian)")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: ").map(str::to_owned))
        .filter(|v| v != "(none)")
        .with_context(|| format!("no {PACKAGE} on the Debian mirror (apt-get update?)"))
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status().context("running a fetch step")?;
    if !status.success() {
        bail!("fetching {PACKAGE} failed ({status})");
    }
    Ok(())
}
