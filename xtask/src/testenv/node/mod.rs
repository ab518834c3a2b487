//! A real Kubernetes node beside the kwok ones: kubelet and kube-proxy of the control
//! plane's release, Debian's containerd and runc, the CNI bridge plugin, the local-path
//! provisioner. Its state lives under `.testenv/node/`. It is tainted, so that only pods
//! that tolerate [`TAINT_KEY`] (and select `type=real`) run on it; everything else keeps
//! going to the kwok nodes. See `../shared/reference/real-node-notes.md` for why each
//! setting is what it is.

mod dns;
mod images;
mod kubelet;
mod manifests;
mod network;
mod runtime;
mod teardown;

use super::control_plane::Kubectl;
use super::process::wait_until;
use super::{Components, TestEnv};
use crate::image::oci::Image;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use images::{TOOLBOX, reference};
pub use manifests::{STORAGE_CLASS, ServerService};

/// The node's name.
pub const NODE_NAME: &str = "real-node";
/// The node's address (on a bridge of its own; nothing else on this machine uses it).
pub const NODE_IP: &str = "10.250.0.1";
/// The pod network (the CNI bridge, host-local addresses).
pub const POD_CIDR: &str = "10.244.0.0/24";
/// The cgroup (in each hierarchy) the kubelet puts its pods under: its own, so that `env
/// down` kills only the processes of this node's pods.
pub const CGROUP_ROOT: &str = "kbackup-testenv";
/// The taint (effect NoSchedule) that keeps ordinary test pods off the node.
pub const TAINT_KEY: &str = "kbackup.test/real-node";

/// The node's servers, in start order.
pub const SERVERS: [&str; 7] = [
    "forward-kube-apiserver",
    "forward-azurite",
    "forward-elasticsearch",
    "containerd",
    "coredns",
    "kubelet",
    "kube-proxy",
];

/// Directories of the node under `.testenv/node/`.
pub struct NodeDirs {
    pub root: PathBuf,
    pub containerd: PathBuf,
    pub cni_config: PathBuf,
    pub cni_state: PathBuf,
    pub kubelet: PathBuf,
    pub volumes: PathBuf,
}

impl NodeDirs {
    pub fn new(testenv: &Path) -> Self {
        let root = testenv.join("node");
        Self {
            containerd: root.join("containerd"),
            cni_config: root.join("cni/net.d"),
            cni_state: root.join("cni/ipam"),
            kubelet: root.join("kubelet"),
            volumes: root.join("volumes"),
            root,
        }
    }

    /// containerd's socket.
    pub fn socket(&self) -> PathBuf {
        self.containerd.join("containerd.sock")
    }
}

/// Checks what the node needs from the machine and makes its network; before the API
/// server starts, which advertises the node address.
pub fn prepare() -> Result<()> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
        });
    if uid.as_deref() != Some("0") {
        bail!(
            "the test environment's real node needs root (a bridge, iptables rules, mounts, containers); run `cargo xtask env up` as root"
        );
    }
    if !Path::new("/usr/lib/cni/bridge").exists() {
        bail!(
            "missing prerequisite: the CNI plugins (apt-get install containernetworking-plugins, or run .ci/run)"
        );
    }
    network::ensure()
}

/// The ports pods use to reach the test servers, and the node ports behind them.
pub struct ServerPorts {
    pub apiserver: u16,
    pub minio: u16,
    pub azurite: u16,
    pub elasticsearch: u16,
}

/// The test servers as Services of [`manifests::SERVERS_NAMESPACE`].
pub fn server_services(ports: &ServerPorts) -> [ServerService; 3] {
    [
        ServerService {
            name: "minio",
            service_port: 9000,
            node_port: ports.minio,
        },
        ServerService {
            name: "azurite",
            service_port: 10000,
            node_port: ports.azurite,
        },
        ServerService {
            name: "elasticsearch",
            service_port: 9200,
            node_port: ports.elasticsearch,
        },
    ]
}

/// Starts the node and waits until it is Ready, its provisioner runs and the test servers'
/// Services exist.
pub fn start(
    env: &TestEnv,
    bins: &Components,
    ports: &ServerPorts,
    kubectl: &Kubectl,
    ca: &Path,
) -> Result<()> {
    let dirs = NodeDirs::new(&env.root);
    for (name, port) in [
        ("forward-kube-apiserver", ports.apiserver),
        ("forward-azurite", ports.azurite),
        ("forward-elasticsearch", ports.elasticsearch),
    ] {
        network::start_forward(&env.server(name), port)?;
    }

    let containerd = env.server("containerd");
    runtime::start(&containerd, &dirs, &reference(images::PAUSE))?;
    let node_images: [(&str, Image); 3] = [
        (images::PAUSE, images::pause()?),
        (
            images::TOOLBOX,
            images::toolbox(&bins.kubernetes.join("bin/kubectl"))?,
        ),
        (
            images::LOCAL_PATH,
            images::local_path(&bins.local_path.join("bin/local-path-provisioner"))?,
        ),
    ];
    for (name, image) in &node_images {
        runtime::import(&dirs, &reference(name), image)?;
    }

    dns::start(
        &env.server("coredns"),
        &bins.coredns.join("bin/coredns"),
        &dirs.root.join("coredns"),
        &env.kubeconfig(),
    )?;
    let kubelet = env.server("kubelet");
    kubelet::create_cgroup_root()?;
    kubelet::start_kubelet(
        &kubelet,
        &bins.node.join("bin/kubelet"),
        &dirs,
        &env.kubeconfig(),
        ca,
    )?;
    kubelet::start_proxy(
        &env.server("kube-proxy"),
        &bins.node.join("bin/kube-proxy"),
        &env.kubeconfig(),
    )?;
    wait_until(&kubelet, "node Ready", Duration::from_secs(90), || {
        kubectl.quiet(&[
            "wait",
            "--for=condition=Ready",
            &format!("node/{NODE_NAME}"),
            "--timeout=1s",
        ])
    })?;
    // `env down` cordons it.
    kubectl.run(&["uncordon", NODE_NAME])?;

    kubectl.apply(&manifests::server_services(&server_services(ports)))?;
    std::fs::create_dir_all(&dirs.volumes)?;
    kubectl.apply(&manifests::local_path_provisioner(&dirs.volumes))?;
    wait_until(
        &kubelet,
        "the local-path provisioner runs",
        Duration::from_secs(90),
        || {
            kubectl.quiet(&[
                "wait",
                "--for=condition=Ready",
                "pod",
                &format!("--selector=app={}", manifests::PROVISIONER),
                "-n",
                manifests::PROVISIONER_NAMESPACE,
                "--timeout=1s",
            ])
        },
    )
}

/// Imports an image archive into the node's containerd.
pub fn load(env: &TestEnv, archive: &Path) -> Result<()> {
    runtime::import_file(&NodeDirs::new(&env.root), archive)
}

/// Drains the node (cordon, then evict its pods, so the kubelet stops their containers,
/// unmounts their volumes and frees their addresses), while the API server runs.
pub fn drain(kubectl: &Kubectl) {
    let drained = kubectl.run(&[
        "drain",
        NODE_NAME,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        "--grace-period=2",
        "--timeout=60s",
    ]);
    if let Err(error) = drained {
        eprintln!("  draining {NODE_NAME} failed, its containers are killed instead: {error}");
    }
}

/// Removes what the stopped node leaves: container processes, mounts, kube-proxy's rules,
/// the bridges.
pub fn clean_up(env: &TestEnv, kube_proxy: Option<&Path>) -> Result<()> {
    let dirs = NodeDirs::new(&env.root);
    let hierarchies = kubelet::cgroup_hierarchies();
    teardown::kill_containers(&hierarchies, &dirs.socket());
    teardown::unmount_under(&dirs.root)?;
    if let Some(binary) = kube_proxy {
        kubelet::clean_up_proxy_rules(binary);
    }
    teardown::remove_kubelet_rules();
    teardown::remove_cgroups(&hierarchies);
    network::remove();
    Ok(())
}
