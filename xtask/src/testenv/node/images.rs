//! The images the node runs besides kbackup's, built here with no registry: the pod sandbox
//! ("pause": a static program that sleeps), a toolbox (BusyBox's shell and tools, and
//! kubectl) for test pods and the provisioner's helper pods, and the local-path provisioner.

use crate::image::oci::{self, Image, ImageConfig, RootEntry, directory, file, symlink};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Debian's static BusyBox (busybox-static).
const BUSYBOX: &str = "/bin/busybox";
/// The tag of the environment's own images.
const TAG: &str = "testenv";
/// The images' time stamp: fixed, so that an unchanged image is not imported again.
const EPOCH: u64 = 0;

/// The pod sandbox image.
pub const PAUSE: &str = "localhost/kbackup-testenv-pause";
/// BusyBox and kubectl.
pub const TOOLBOX: &str = "localhost/kbackup-testenv-toolbox";
/// The local-path provisioner.
pub const LOCAL_PATH: &str = "localhost/kbackup-testenv-local-path-provisioner";

/// `name:tag` of one of these images.
pub fn reference(name: &str) -> String {
    format!("{name}:{TAG}")
}

fn config(name: &str, entrypoint: &[&str]) -> ImageConfig {
    ImageConfig {
        name: name.into(),
        version: TAG.into(),
        user: "0:0".into(),
        entrypoint: entrypoint.iter().map(|s| (*s).to_owned()).collect(),
        env: vec!["PATH=/usr/local/bin:/bin".into()],
        working_dir: "/".into(),
        labels: BTreeMap::from([(
            "org.opencontainers.image.title".into(),
            name.rsplit('/').next().unwrap_or(name).to_owned(),
        )]),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Sleeps until killed (PID 1 ignores SIGTERM; the runtime stops a sandbox with SIGKILL).
pub fn pause() -> Result<Image> {
    let files = [file("bin/busybox", read(Path::new(BUSYBOX))?, 0o755)];
    Ok(oci::assemble(
        &files,
        &config(PAUSE, &["/bin/busybox", "sleep", "2147483647"]),
        EPOCH,
    ))
}

/// BusyBox with a link per applet, kubectl, `/tmp`.
pub fn toolbox(kubectl: &Path) -> Result<Image> {
    let mut files = vec![
        file("bin/busybox", read(Path::new(BUSYBOX))?, 0o755),
        file("usr/local/bin/kubectl", read(kubectl)?, 0o755),
        file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
            0o644,
        ),
        file("etc/group", b"root:x:0:\n".to_vec(), 0o644),
        directory("tmp", 0o1777, 0),
        directory("root", 0o700, 0),
    ];
    files.extend(applet_links()?);
    Ok(oci::assemble(&files, &config(TOOLBOX, &["/bin/sh"]), EPOCH))
}

/// The provisioner's static binary.
pub fn local_path(binary: &Path) -> Result<Image> {
    let files = [
        file("usr/local/bin/local-path-provisioner", read(binary)?, 0o755),
        directory("tmp", 0o1777, 0),
    ];
    Ok(oci::assemble(
        &files,
        &config(LOCAL_PATH, &["/usr/local/bin/local-path-provisioner"]),
        EPOCH,
    ))
}

/// `bin/<applet>` links to BusyBox for each applet it has. BusyBox lists itself too: a link
/// named `busybox` would replace the binary with a loop.
fn applet_links() -> Result<Vec<RootEntry>> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| format!("running {BUSYBOX} (apt-get install busybox-static)"))?;
    if !out.status.success() {
        bail!("{BUSYBOX} --list failed");
    }
    Ok(applets(&String::from_utf8_lossy(&out.stdout))
        .map(|applet| symlink(&format!("bin/{applet}"), "busybox"))
        .collect())
}

fn applets(list: &str) -> impl Iterator<Item = &str> {
    list.lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_itself_and_odd_names_get_no_link() {
        let listed: Vec<&str> = applets("sh\nbusybox\n\nls\n../etc\n").collect();
        assert_eq!(listed, ["sh", "ls"]);
    }
}
