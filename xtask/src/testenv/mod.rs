//! The real local test environment: a Kubernetes control plane with kwok nodes, MinIO,
//! Azurite and Elasticsearch, all on 127.0.0.1, built from pinned sources and cached outside
//! the clone.

mod control_plane;
pub mod node;
mod pki;
mod process;
mod stores;

use anyhow::{Context, Result, bail};
use process::ServerFiles;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use control_plane::Kubectl;
pub use process::tail;

/// The control plane's and the stores' servers, in start order (the node's follow).
const SERVERS: [&str; 9] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "minio",
    "fake-gcs-server",
    "azurite",
    "elasticsearch",
];

/// MinIO's root credentials (test-only).
pub const MINIO_USER: &str = "kbackup-test";
pub const MINIO_PASSWORD: &str = "kbackup-test-secret";
/// Azurite's documented well-known development account (test-only).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Buckets created in MinIO: the tests' own and StackState's.
pub const BUCKETS: [&str; 5] = [
    "kbackup-test",
    "sts-stackgraph-backup",
    "sts-elasticsearch-backup",
    "sts-settings-backup",
    "sts-victoria-metrics-backup",
];
/// Buckets created in the GCS emulator.
pub const GCS_BUCKETS: [&str; 1] = ["kbackup-test"];
/// Containers created in Azurite.
pub const CONTAINERS: [&str; 1] = ["kbackup-test"];

/// Paths of the environment.
pub struct TestEnv {
    /// The workspace root.
    pub workspace: PathBuf,
    /// `.testenv/` (run-time state, git-ignored).
    pub root: PathBuf,
}

impl TestEnv {
    pub fn new(workspace: &Path) -> Self {
        Self {
            workspace: workspace.to_owned(),
            root: workspace.join(".testenv"),
        }
    }

    fn recipes(&self) -> PathBuf {
        self.workspace.join("xtask/testenv")
    }

    pub fn env_file(&self) -> PathBuf {
        self.root.join("env.sh")
    }

    /// The GCS emulator's service account key (JSON), as `GOOGLE_SERVICE_ACCOUNT_KEY` holds one.
    fn gcs_key_file(&self) -> PathBuf {
        self.root.join("gcs-service-account.json")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }

    pub fn data(&self, server: &str) -> PathBuf {
        self.root.join("data").join(server)
    }

    fn server(&self, name: &'static str) -> ServerFiles {
        ServerFiles::new(&self.root, name)
    }

    /// The cache directory of a built component, building it first if needed.
    pub(crate) fn component(&self, name: &str) -> Result<PathBuf> {
        let started = Instant::now();
        let output = Command::new("bash")
            .arg(self.recipes().join("build.sh"))
            .arg(name)
            .stderr(fs::File::create(
                self.root.join("logs").join(format!("build-{name}.log")),
            )?)
            .output()
            .with_context(|| format!("running the {name} build recipe"))?;
        if !output.status.success() {
            let log = self.root.join("logs").join(format!("build-{name}.log"));
            bail!(
                "building {name} failed; last lines of {}:\n{}",
                log.display(),
                tail(&log, 30)
            );
        }
        let dir = PathBuf::from(String::from_utf8(output.stdout)?.trim());
        if started.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  built {name} in {:.0}s into {}",
                started.elapsed().as_secs_f64(),
                dir.display()
            );
        }
        Ok(dir)
    }

    /// Starts whatever is not running, waits for all, writes `env.sh`. Idempotent.
    pub fn up(&self) -> Result<()> {
        let started = Instant::now();
        check_prerequisites()?;
        fs::create_dir_all(self.root.join("logs"))?;
        eprintln!("test environment: building or finding the pinned servers (cached per version)");
        let bins = Components {
            kubernetes: self.component("kubernetes")?,
            node: self.component("kubernetes-node")?,
            local_path: self.component("local-path-provisioner")?,
            coredns: self.component("coredns")?,
            etcd: self.component("etcd")?,
            kwok: self.component("kwok")?,
            minio: self.component("minio")?,
            gcs: self.component("fake-gcs-server")?,
            azurite: self.component("azurite")?,
            elasticsearch: self.component("elasticsearch")?,
            helm: self.component("helm")?,
        };
        eprintln!(
            "test environment: starting servers in {}",
            self.root.display()
        );
        node::prepare()?;
        let pki = pki::Pki::ensure(&self.root)?;
        let stores = stores::Stores::start(self, &bins)?;
        let plane = control_plane::ControlPlane::start(self, &bins, &pki)?;
        stores.wait_and_prepare(self, &bins)?;
        let ports = node::ServerPorts {
            apiserver: plane.apiserver_port,
            minio: stores.minio_port,
            azurite: stores.azurite_port,
            elasticsearch: stores.es_port,
        };
        let node_started = Instant::now();
        node::start(self, &bins, &ports, &plane.kubectl, &pki.ca_cert())?;
        eprintln!(
            "  node {} ready in {:.1}s",
            node::NODE_NAME,
            node_started.elapsed().as_secs_f64()
        );
        self.write_env_file(&bins, &plane, &stores, &ports)?;
        eprintln!(
            "test environment up in {:.1}s; `source {}` to use it",
            started.elapsed().as_secs_f64(),
            self.env_file().display()
        );
        Ok(())
    }

    /// Drains the real node, stops every server, removes what the node's containers left.
    /// With `purge`, also deletes `.testenv/`.
    pub fn down(&self, purge: bool) -> Result<()> {
        let apiserver_up = self.server("kube-apiserver").running_pid().is_some();
        if apiserver_up && self.server("kubelet").running_pid().is_some() {
            node::drain(&self.kubectl()?);
        }
        // Its binary removes its rules once it is stopped.
        let kube_proxy = self
            .server("kube-proxy")
            .running_pid()
            .and_then(|pid| fs::read_link(format!("/proc/{pid}/exe")).ok());
        for name in SERVERS.iter().chain(&node::SERVERS).rev() {
            if self.server(name).stop(Duration::from_secs(10))? {
                eprintln!("  stopped {name}");
            }
        }
        node::clean_up(self, kube_proxy.as_deref())?;
        if purge && self.root.exists() {
            fs::remove_dir_all(&self.root)
                .with_context(|| format!("removing {}", self.root.display()))?;
            eprintln!("  removed {}", self.root.display());
        }
        Ok(())
    }

    /// Prints each server's state; fails if any is down.
    pub fn status(&self) -> Result<()> {
        let mut down = Vec::new();
        for name in SERVERS.into_iter().chain(node::SERVERS) {
            let server = self.server(name);
            match server.running_pid() {
                Some(pid) => println!(
                    "{name:<24} running  pid {pid:<8} log {}",
                    server.log().display()
                ),
                None => {
                    println!("{name:<24} stopped");
                    down.push(name);
                }
            }
        }
        if down.is_empty() {
            println!();
            print!("{}", self.kubectl()?.run(&["get", "nodes", "-o", "wide"])?);
            println!("\nvariables: source {}", self.env_file().display());
            Ok(())
        } else {
            bail!(
                "not running: {} (start with `cargo xtask env up`)",
                down.join(", ")
            )
        }
    }

    /// The variables of `env.sh`, for child processes.
    pub fn variables(&self) -> Result<Vec<(String, String)>> {
        let text = fs::read_to_string(self.env_file())
            .with_context(|| format!("reading {}", self.env_file().display()))?;
        Ok(text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    v.trim_matches('"')
                        .replace("${PATH}", &std::env::var("PATH").unwrap_or_default()),
                )
            })
            .collect())
    }

    /// kubectl of the test release against the test cluster.
    pub fn kubectl(&self) -> Result<Kubectl> {
        let path = self.variable("PATH")?;
        let bin = PathBuf::from(path.split(':').next().unwrap_or_default()).join("kubectl");
        Ok(Kubectl {
            bin,
            kubeconfig: self.kubeconfig(),
        })
    }

    /// One variable of `env.sh`.
    /// The test MinIO's client variables, as a user exports them for kbackup.
    pub fn s3_client_variables(&self) -> Result<Vec<(&'static str, String)>> {
        Ok(vec![
            (
                "AWS_ENDPOINT_URL",
                self.variable("KBACKUP_TEST_S3_ENDPOINT")?,
            ),
            ("AWS_ACCESS_KEY_ID", self.variable("AWS_ACCESS_KEY_ID")?),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.variable("AWS_SECRET_ACCESS_KEY")?,
            ),
            ("AWS_REGION", self.variable("AWS_REGION")?),
        ])
    }

    /// A manifest template for the real node with its placeholders filled: NODE (the node's
    /// name), TAINT (its taint's key), CLASS (its storage class), TOOLBOX (the toolbox image).
    pub fn real_node_manifest(&self, template: &str) -> Result<String> {
        Ok(template
            .replace("NODE", &self.variable("KBACKUP_TEST_NODE_NAME")?)
            .replace("TAINT", &self.variable("KBACKUP_TEST_NODE_TAINT")?)
            .replace("CLASS", &self.variable("KBACKUP_TEST_STORAGE_CLASS")?)
            .replace("TOOLBOX", &self.variable("KBACKUP_TEST_TOOLBOX_IMAGE")?))
    }

    /// The flags that put volume movers on the real node (its taint tolerated, its name
    /// selected) and have them reach the test MinIO through its Service.
    pub fn real_node_mover_flags(&self) -> Result<Vec<String>> {
        Ok(vec![
            "--mover-endpoint".into(),
            self.variable("KBACKUP_TEST_POD_S3_ENDPOINT")?,
            "--mover-toleration".into(),
            self.variable("KBACKUP_TEST_NODE_TAINT")?,
            "--mover-node-selector".into(),
            format!(
                "kubernetes.io/hostname={}",
                self.variable("KBACKUP_TEST_NODE_NAME")?
            ),
        ])
    }

    pub fn variable(&self, name: &str) -> Result<String> {
        self.variables()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .with_context(|| format!("{} does not define {name}", self.env_file().display()))
    }

    fn write_env_file(
        &self,
        bins: &Components,
        plane: &control_plane::ControlPlane,
        stores: &stores::Stores,
        ports: &node::ServerPorts,
    ) -> Result<()> {
        let services = node::server_services(ports);
        let mut text = String::from(
            "# Written by `cargo xtask env up`: the local test servers. Test-only credentials.\n",
        );
        let vars = [
            ("KUBECONFIG", self.kubeconfig().display().to_string()),
            (
                "PATH",
                format!("{}:${{PATH}}", bins.kubernetes.join("bin").display()),
            ),
            (
                "KBACKUP_TEST_API_SERVER",
                format!("https://127.0.0.1:{}", plane.apiserver_port),
            ),
            (
                "KBACKUP_TEST_S3_ENDPOINT",
                format!("http://127.0.0.1:{}", stores.minio_port),
            ),
            ("KBACKUP_TEST_S3_BUCKET", BUCKETS[0].to_owned()),
            (
                "KBACKUP_TEST_HELM",
                bins.helm.join("bin/helm").display().to_string(),
            ),
            (
                "KBACKUP_TEST_MINIO_BIN",
                bins.minio.join("bin/minio").display().to_string(),
            ),
            ("AWS_ACCESS_KEY_ID", MINIO_USER.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", MINIO_PASSWORD.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("KBACKUP_TEST_GCS_ENDPOINT", stores.gcs_endpoint()),
            ("KBACKUP_TEST_GCS_BUCKET", GCS_BUCKETS[0].to_owned()),
            (
                "KBACKUP_TEST_GCS_KEY_FILE",
                self.gcs_key_file().display().to_string(),
            ),
            ("KBACKUP_TEST_AZURE_ENDPOINT", stores.azurite_endpoint()),
            ("KBACKUP_TEST_AZURE_ACCOUNT", AZURITE_ACCOUNT.to_owned()),
            ("KBACKUP_TEST_AZURE_KEY", AZURITE_KEY.to_owned()),
            ("KBACKUP_TEST_AZURE_CONTAINER", CONTAINERS[0].to_owned()),
            (
                "KBACKUP_TEST_ES_URL",
                format!("http://127.0.0.1:{}", stores.es_port),
            ),
            (
                "KBACKUP_TEST_ES_REPO_PATH",
                self.data("elasticsearch")
                    .join("repo")
                    .display()
                    .to_string(),
            ),
            ("KBACKUP_TEST_NODE_NAME", node::NODE_NAME.to_owned()),
            ("KBACKUP_TEST_NODE_IP", node::NODE_IP.to_owned()),
            ("KBACKUP_TEST_NODE_TAINT", node::TAINT_KEY.to_owned()),
            ("KBACKUP_TEST_STORAGE_CLASS", node::STORAGE_CLASS.to_owned()),
            ("KBACKUP_TEST_TOOLBOX_IMAGE", node::reference(node::TOOLBOX)),
            (
                "KBACKUP_TEST_KBACKUP_IMAGE",
                format!("{}:{}", crate::image::IMAGE_NAME, env!("CARGO_PKG_VERSION")),
            ),
            ("KBACKUP_TEST_POD_S3_ENDPOINT", services[0].url()),
            (
                "KBACKUP_TEST_POD_AZURE_ENDPOINT",
                format!("{}/{AZURITE_ACCOUNT}", services[1].url()),
            ),
            ("KBACKUP_TEST_POD_ES_URL", services[2].url()),
        ];
        for (name, value) in vars {
            writeln!(text, "export {name}=\"{value}\"")?;
        }
        fs::write(self.gcs_key_file(), stores.gcs_service_account_key())?;
        fs::write(self.env_file(), text)?;
        Ok(())
    }
}

/// Cache directories of the built components.
pub struct Components {
    pub kubernetes: PathBuf,
    /// kubelet and kube-proxy.
    pub node: PathBuf,
    pub local_path: PathBuf,
    pub coredns: PathBuf,
    pub etcd: PathBuf,
    pub kwok: PathBuf,
    pub minio: PathBuf,
    /// fake-gcs-server, patched.
    pub gcs: PathBuf,
    pub azurite: PathBuf,
    pub elasticsearch: PathBuf,
    /// The helm client the chart is tested with.
    pub helm: PathBuf,
}

/// Fails naming the first missing prerequisite and how to install it.
fn check_prerequisites() -> Result<()> {
    missing_prerequisite(|tool| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn missing_prerequisite(found: impl Fn(&str) -> bool) -> Result<()> {
    let tools = [
        (
            "go",
            "Go >= 1.24: apt-get install golang-go (or https://go.dev/dl)",
        ),
        ("node", "Node.js >= 20: apt-get install nodejs"),
        ("npm", "apt-get install npm"),
        ("java", "a JDK 17: apt-get install openjdk-17-jdk-headless"),
        ("javac", "a JDK 17: apt-get install openjdk-17-jdk-headless"),
        ("mvn", "apt-get install maven"),
        ("openssl", "apt-get install openssl"),
        ("curl", "apt-get install curl"),
        ("setsid", "apt-get install util-linux"),
        ("containerd", "apt-get install containerd"),
        ("runc", "apt-get install runc"),
        ("conntrack", "apt-get install conntrack"),
        ("socat", "apt-get install socat"),
        ("busybox", "apt-get install busybox-static"),
        ("iptables", "apt-get install iptables"),
        ("ip", "apt-get install iproute2"),
    ];
    for (tool, how) in tools {
        if !found(tool) {
            bail!(
                "missing prerequisite '{tool}': install {how} (or run .ci/run, which installs everything)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_prerequisite_is_named_with_how_to_install_it() {
        let error = missing_prerequisite(|tool| tool != "mvn")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("'mvn'") && error.contains("apt-get install maven"),
            "{error}"
        );
        assert!(missing_prerequisite(|_| true).is_ok());
    }
}
