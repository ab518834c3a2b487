//! etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with its nodes.

use super::pki::Pki;
use super::process::{http_ok, wait_until};
use super::{Components, TestEnv};
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Simulated nodes (kwok manages nodes with this annotation).
const NODES: [&str; 2] = ["kwok-node-0", "kwok-node-1"];

/// Pod stages loaded into kwok, from the kwok module (paths below its `kustomize/stage`).
/// Loading any stage replaces kwok's defaults, so the full lifecycle is listed.
const STAGES: [&str; 6] = [
    "node/fast/node-initialize.yaml",
    "node/heartbeat/node-heartbeat.yaml",
    "pod/fast/pod-ready.yaml",
    // Job pods complete about 1 s after they run (the stage's per-pod delay expressions are
    // not evaluated by kwok v0.7.0 with this configuration: its default applies).
    "pod/general/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    // A Running pod labelled pod-container-running-failed.stage.kwok.x-k8s.io=true fails (exit 1).
    "pod/chaos/pod-container-running-failed.yaml",
];

pub struct ControlPlane {
    pub apiserver_port: u16,
    pub kubectl: Kubectl,
}

impl ControlPlane {
    pub fn start(env: &TestEnv, bins: &Components, pki: &Pki) -> Result<Self> {
        let k8s = bins.kubernetes.join("bin");
        let p = |path: PathBuf| path.display().to_string();

        let etcd = env.server("etcd");
        let etcd_port = etcd.port("client", 23790)?;
        let peer_port = etcd.port("peer", 23800)?;
        let mut cmd = Command::new(bins.etcd.join("bin/etcd"));
        cmd.args(["--name", "kbackup", "--data-dir", &p(env.data("etcd"))])
            .arg(format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_port}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=kbackup=http://127.0.0.1:{peer_port}"
            ))
            // Test data: speed over durability.
            .arg("--unsafe-no-fsync");
        etcd.start(cmd)?;

        let apiserver = env.server("kube-apiserver");
        let port = apiserver.port("secure", 26443)?;
        let mut cmd = Command::new(k8s.join("kube-apiserver"));
        cmd.arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
            // Listens on 127.0.0.1; pods reach it through the `kubernetes` Service, whose
            // endpoint is the advertised node address (forwarded to 127.0.0.1 there).
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--advertise-address={}", super::node::NODE_IP))
            .arg(format!("--secure-port={port}"))
            .arg(format!("--tls-cert-file={}", p(pki.admin_cert())))
            .arg(format!("--tls-private-key-file={}", p(pki.admin_key())))
            .arg(format!("--client-ca-file={}", p(pki.ca_cert())))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", p(pki.sa_pub())))
            .arg(format!(
                "--service-account-signing-key-file={}",
                p(pki.sa_key())
            ))
            .args([
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
            ])
            // The kubelet of the real node is reached at its node address.
            .arg("--kubelet-preferred-address-types=InternalIP")
            .arg(format!(
                "--kubelet-client-certificate={}",
                p(pki.admin_cert())
            ))
            .arg(format!("--kubelet-client-key={}", p(pki.admin_key())));
        apiserver.start(cmd)?;
        wait_until(&etcd, "GET /health", Duration::from_secs(30), || {
            http_ok(etcd_port, "/health")
        })?;

        pki.write_kubeconfig(&env.kubeconfig(), port)?;
        let kubectl = Kubectl {
            bin: k8s.join("kubectl"),
            kubeconfig: env.kubeconfig(),
        };
        wait_until(&apiserver, "GET /readyz", Duration::from_secs(60), || {
            kubectl.quiet(&["get", "--raw", "/readyz"])
        })?;

        let manager = env.server("kube-controller-manager");
        let manager_port = manager.port("secure", 30257)?;
        let mut cmd = Command::new(k8s.join("kube-controller-manager"));
        cmd.arg(format!("--kubeconfig={}", p(env.kubeconfig())))
            .arg(format!("--root-ca-file={}", p(pki.ca_cert())))
            .arg(format!(
                "--service-account-private-key-file={}",
                p(pki.sa_key())
            ))
            .arg(format!("--cluster-signing-cert-file={}", p(pki.ca_cert())))
            .arg(format!("--cluster-signing-key-file={}", p(pki.ca_key())))
            .args([
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--controllers=*,-nodeipam",
            ])
            .arg(format!("--secure-port={manager_port}"));
        manager.start(cmd)?;

        let scheduler = env.server("kube-scheduler");
        let scheduler_port = scheduler.port("secure", 30259)?;
        let mut cmd = Command::new(k8s.join("kube-scheduler"));
        cmd.arg(format!("--kubeconfig={}", p(env.kubeconfig())))
            .args(["--bind-address=127.0.0.1", "--leader-elect=false"])
            .arg(format!("--secure-port={scheduler_port}"));
        scheduler.start(cmd)?;

        let kwok = env.server("kwok");
        let kwok_port = kwok.port("kubelet", 20250)?;
        let config = write_kwok_config(env, &bins.kwok)?;
        let mut cmd = Command::new(bins.kwok.join("bin/kwok"));
        cmd.arg(format!("--kubeconfig={}", p(env.kubeconfig())))
            .args([
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            ])
            .args([
                "--node-ip=127.0.0.1",
                &format!("--node-port={kwok_port}"),
                &format!("--server-address=127.0.0.1:{kwok_port}"),
            ])
            .arg(format!("--tls-cert-file={}", p(pki.admin_cert())))
            .arg(format!("--tls-private-key-file={}", p(pki.admin_key())))
            .arg(format!("--config={}", p(config)));
        kwok.start(cmd)?;

        kubectl.apply(&nodes_manifest())?;
        wait_until(&kwok, "nodes Ready", Duration::from_secs(60), || {
            kubectl.quiet(&[
                "wait",
                "--for=condition=Ready",
                "node",
                "--selector=type=kwok",
                "--timeout=1s",
            ])
        })?;
        wait_until(
            &manager,
            "default ServiceAccount",
            Duration::from_secs(60),
            || kubectl.quiet(&["get", "serviceaccount", "default", "-n", "default"]),
        )?;
        scheduler.ensure_alive()?;
        Ok(Self {
            apiserver_port: port,
            kubectl,
        })
    }
}

/// The kwok configuration: stages from the kwok module, plus port-forward and logs rules
/// that send every pod's port 9000 to the test MinIO and 9200 to the test Elasticsearch.
fn write_kwok_config(env: &TestEnv, kwok: &Path) -> Result<PathBuf> {
    let mut docs = Vec::new();
    for stage in STAGES {
        let path = kwok.join("stage").join(stage);
        docs.push(
            fs::read_to_string(&path)
                .with_context(|| format!("reading kwok stage {}", path.display()))?,
        );
    }
    let minio_port = env.server("minio").port("api", 29000)?;
    let es_port = env.server("elasticsearch").port("http", 29200)?;
    docs.push(format!(
        "apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: kbackup-test-servers
spec:
  forwards:
  - ports: [9000]
    target:
      port: {minio_port}
      address: 127.0.0.1
  - ports: [9200]
    target:
      port: {es_port}
      address: 127.0.0.1
"
    ));
    let pod_log = env.root.join("kwok/pod.log");
    fs::create_dir_all(env.root.join("kwok"))?;
    // CRI log format, as kubelet stores container logs.
    fs::write(
        &pod_log,
        "2026-01-01T00:00:00.000000000Z stdout F simulated container log line from kwok\n",
    )?;
    docs.push(format!(
        "apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: kbackup-test-logs
spec:
  logs:
  - logsFile: {}
    follow: false
",
        pod_log.display()
    ));
    let path = env.root.join("kwok/kwok.yaml");
    fs::write(
        &path,
        docs.iter()
            .map(|d| d.trim_end())
            .collect::<Vec<_>>()
            .join("\n---\n")
            + "\n",
    )?;
    Ok(path)
}

fn nodes_manifest() -> String {
    NODES
        .iter()
        .map(|name| {
            format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  annotations:\n    kwok.x-k8s.io/node: fake\n  labels:\n    type: kwok\n    kubernetes.io/hostname: {name}\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// kubectl of the same release, against the test cluster.
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args);
        cmd
    }

    /// Whether the command succeeds (output discarded).
    pub fn quiet(&self, args: &[&str]) -> bool {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs kubectl, failing with its stderr.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let output = self.command(args).output()?;
        if !output.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `kubectl apply -f -` of a manifest.
    pub fn apply(&self, manifest: &str) -> Result<()> {
        use std::io::Write;
        let mut child = self
            .command(&["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(manifest.as_bytes())?;
        if !child.wait()?.success() {
            bail!("kubectl apply failed");
        }
        Ok(())
    }
}
