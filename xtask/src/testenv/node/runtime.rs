//! The node's container runtime: Debian's containerd and runc, with their own root, state
//! and socket under `.testenv/node/`, and images imported from OCI archives (no registry).

use super::super::process::{ServerFiles, wait_until};
use super::NodeDirs;
use super::network;
use crate::image::oci::Image;
use anyhow::{Context, Result};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The containerd namespace the CRI plugin (so the kubelet) uses.
const NAMESPACE: &str = "k8s.io";

/// containerd's configuration. `restrict_oom_score_adj`: this machine's root lacks
/// CAP_SYS_RESOURCE, so the pause container's -998 cannot be set (runc then fails with
/// "can't get final child's PID from pipe").
fn config(dirs: &NodeDirs, sandbox_image: &str) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
        root = dirs.containerd.join("root").display(),
        state = dirs.containerd.join("state").display(),
        socket = dirs.socket().display(),
        opt = dirs.containerd.join("opt").display(),
        cni = dirs.cni_config.display(),
    )
}

/// Writes the configuration and the CNI network, starts containerd, waits for its socket.
pub fn start(server: &ServerFiles, dirs: &NodeDirs, sandbox_image: &str) -> Result<()> {
    fs::create_dir_all(&dirs.containerd)?;
    fs::create_dir_all(&dirs.cni_config)?;
    fs::write(
        dirs.cni_config.join("10-kbackup-testenv.conflist"),
        network::cni_config(&dirs.cni_state),
    )?;
    let config_file = dirs.containerd.join("config.toml");
    fs::write(&config_file, config(dirs, sandbox_image))?;
    let mut cmd = Command::new("containerd");
    cmd.arg("--config").arg(&config_file);
    server.start(cmd)?;
    wait_until(
        server,
        "its socket answers",
        Duration::from_secs(30),
        || ctr(dirs, &["version"]).is_ok(),
    )
}

/// Imports `image` into the CRI namespace unless containerd has it under `name` already.
pub fn import(dirs: &NodeDirs, name: &str, image: &Image) -> Result<()> {
    let listed = ctr(dirs, &["images", "list", &format!("name=={name}")])?;
    if listed.contains(&image.manifest_digest) {
        return Ok(());
    }
    let file = tempfile::NamedTempFile::new()?;
    fs::write(file.path(), &image.archive)?;
    import_file(dirs, file.path()).with_context(|| format!("importing {name}"))?;
    eprintln!("  imported {name} ({})", image.manifest_digest);
    Ok(())
}

/// Imports an OCI archive file, whatever it holds.
pub fn import_file(dirs: &NodeDirs, archive: &Path) -> Result<()> {
    ctr(dirs, &["images", "import", &archive.display().to_string()])
        .with_context(|| format!("importing {} into the node's containerd", archive.display()))
        .map(drop)
}

/// `ctr` against the node's containerd, in the CRI namespace.
fn ctr(dirs: &NodeDirs, args: &[&str]) -> Result<String> {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(dirs.socket())
        .args(["--namespace", NAMESPACE])
        .args(args)
        .output()
        .context("running ctr (containerd)")?;
    if !out.status.success() {
        anyhow::bail!(
            "ctr {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_keeps_its_root_state_and_socket_under_the_node_directory() {
        let dirs = NodeDirs::new(Path::new("/env/.testenv"));
        let text = config(&dirs, "localhost/pause:1");
        for expected in [
            "root = \"/env/.testenv/node/containerd/root\"",
            "state = \"/env/.testenv/node/containerd/state\"",
            "address = \"/env/.testenv/node/containerd/containerd.sock\"",
            "sandbox_image = \"localhost/pause:1\"",
            "restrict_oom_score_adj = true",
            "conf_dir = \"/env/.testenv/node/cni/net.d\"",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
