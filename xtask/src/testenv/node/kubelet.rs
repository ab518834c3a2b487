//! The node's agents: the kubelet (registers the node, runs its pods through containerd) and
//! kube-proxy (Services to endpoints, iptables), of the control plane's release.

use super::super::process::ServerFiles;
use super::dns::CLUSTER_DOMAIN;
use super::{CGROUP_ROOT, NODE_IP, NODE_NAME, NodeDirs, POD_CIDR, TAINT_KEY};
use anyhow::Result;
use std::fs;
use std::path::Path;
use std::process::Command;

/// The kubelet's configuration. Anonymous, always-allowed access to its API is enough for a
/// test node reachable only on this machine. Eviction thresholds are off and image garbage
/// collection never triggers: the kubelet cannot read file system statistics of this
/// machine's disk, and the images it runs come from no registry.
fn config(dirs: &NodeDirs, ca: &Path, port: u16, healthz_port: u16) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
containerRuntimeEndpoint: unix://{socket}
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP_ROOT}
failSwapOn: false
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDomain: {CLUSTER_DOMAIN}
clusterDNS:
- {NODE_IP}
registerWithTaints:
- key: {TAINT_KEY}
  value: "true"
  effect: NoSchedule
serializeImagePulls: false
"#,
        socket = dirs.socket().display(),
        ca = ca.display(),
    )
}

/// Makes the cgroup the kubelet puts its pods under, in each hierarchy (the kubelet wants it
/// to exist).
pub fn create_cgroup_root() -> Result<()> {
    for hierarchy in cgroup_hierarchies() {
        fs::create_dir_all(hierarchy.join(CGROUP_ROOT))?;
    }
    Ok(())
}

/// The mounted cgroup hierarchies: `/sys/fs/cgroup` itself (v2), or its per-controller
/// directories (v1).
pub fn cgroup_hierarchies() -> Vec<std::path::PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.procs").exists() {
        return vec![base.to_owned()];
    }
    fs::read_dir(base)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("cgroup.procs").exists() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the kubelet.
pub fn start_kubelet(
    server: &ServerFiles,
    binary: &Path,
    dirs: &NodeDirs,
    kubeconfig: &Path,
    ca: &Path,
) -> Result<()> {
    let port = server.port("api", 10250)?;
    let healthz_port = server.port("healthz", 10248)?;
    fs::create_dir_all(&dirs.kubelet)?;
    let config_file = dirs.root.join("kubelet.yaml");
    fs::write(&config_file, config(dirs, ca, port, healthz_port))?;
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--config={}", config_file.display()))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--root-dir={}", dirs.kubelet.display()))
        .arg(format!("--hostname-override={NODE_NAME}"))
        .arg(format!("--node-ip={NODE_IP}"))
        .arg("--node-labels=type=real");
    server.start(cmd)
}

/// Starts kube-proxy (iptables mode) for the node.
pub fn start_proxy(server: &ServerFiles, binary: &Path, kubeconfig: &Path) -> Result<()> {
    let healthz = server.port("healthz", 10256)?;
    let metrics = server.port("metrics", 10249)?;
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--hostname-override={NODE_NAME}"))
        .args([
            "--proxy-mode=iptables",
            &format!("--cluster-cidr={POD_CIDR}"),
        ])
        .arg(format!("--bind-address={NODE_IP}"))
        .arg(format!("--healthz-bind-address={NODE_IP}:{healthz}"))
        .arg(format!("--metrics-bind-address={NODE_IP}:{metrics}"))
        // Leave the machine's conntrack table size alone.
        .arg("--conntrack-max-per-core=0");
    server.start(cmd)
}

/// Removes the rules kube-proxy left (it leaves them when stopped, by design).
pub fn clean_up_proxy_rules(binary: &Path) {
    let _ = Command::new(binary)
        .args(["--cleanup", "--proxy-mode=iptables"])
        .output();
}
