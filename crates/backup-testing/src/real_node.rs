//! The test environment's real node (kubelet + containerd), for pods that must really run,
//! and a namespace to run them in, driven with kubectl as a user would.

use crate::{START_HINT, kubeconfig, kubectl, require, unique_name};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The real node and what pods on it use.
#[derive(Debug, Clone)]
pub struct RealNode {
    /// The node's name.
    pub name: String,
    /// The key of its NoSchedule taint.
    pub taint: String,
    /// The storage class whose volumes live on it.
    pub storage_class: String,
    /// BusyBox and kubectl (`sh`, `sha256sum`, `find`, ...).
    pub toolbox_image: String,
    /// The kbackup image of this version (`cargo xtask image --load` puts it there).
    pub kbackup_image: String,
    /// The test MinIO as pods reach it (a Service).
    pub pod_s3_endpoint: String,
    /// The test MinIO at the node's address, which both pods and this machine reach (for
    /// an object a process here and pods both use, such as a BackupStorage).
    pub shared_s3_endpoint: String,
}

/// The real node of the test environment; panics unless it is Ready.
pub fn real_node() -> RealNode {
    let node = RealNode {
        name: require("the real node", "KBACKUP_TEST_NODE_NAME"),
        taint: require("the real node", "KBACKUP_TEST_NODE_TAINT"),
        storage_class: require("the real node", "KBACKUP_TEST_STORAGE_CLASS"),
        toolbox_image: require("the real node", "KBACKUP_TEST_TOOLBOX_IMAGE"),
        kbackup_image: require("the real node", "KBACKUP_TEST_KBACKUP_IMAGE"),
        pod_s3_endpoint: require("the real node", "KBACKUP_TEST_POD_S3_ENDPOINT"),
        shared_s3_endpoint: format!(
            "http://{}:{}",
            require("the real node", "KBACKUP_TEST_NODE_IP"),
            require("MinIO", "KBACKUP_TEST_S3_ENDPOINT")
                .rsplit(':')
                .next()
                .unwrap_or_default()
        ),
    };
    let ready = kubectl_output(&[
        "get",
        "node",
        &node.name,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(
        ready.as_deref().map(str::trim),
        Ok("True"),
        "the real node {} is not Ready; {START_HINT}",
        node.name
    );
    node
}

impl RealNode {
    /// The pod spec fields (indented for `spec:`) that put a pod on this node.
    pub fn placement(&self) -> String {
        format!(
            "  nodeSelector:\n    kubernetes.io/hostname: {}\n  tolerations:\n  - key: {}\n    operator: Exists\n    effect: NoSchedule\n",
            self.name, self.taint
        )
    }
}

/// kubectl against the test cluster.
fn kubectl_command() -> Command {
    let mut command = Command::new(kubectl());
    command.arg(format!("--kubeconfig={}", kubeconfig().display()));
    command
}

fn kubectl_output(args: &[&str]) -> Result<String, String> {
    let output = kubectl_command()
        .args(args)
        .output()
        .map_err(|e| format!("running kubectl: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A namespace of its own, deleted when dropped.
pub struct TestNamespace {
    /// Its name.
    pub name: String,
}

/// How a pod ended.
#[derive(Debug)]
pub struct PodEnd {
    /// `Succeeded` or `Failed`.
    pub phase: String,
    /// The logs of each of its containers, init containers first.
    pub logs: String,
}

impl TestNamespace {
    /// Creates a namespace named after `base`.
    pub fn create(base: &str) -> Self {
        let namespace = Self {
            name: unique_name(base),
        };
        namespace.kubectl(&["create", "namespace", &namespace.name]);
        namespace
    }

    /// kubectl in this namespace; panics with its stderr if it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["--namespace", &self.name];
        all.extend_from_slice(args);
        kubectl_output(&all).unwrap_or_else(|e| panic!("kubectl {} failed: {e}", args.join(" ")))
    }

    /// `kubectl apply` of a manifest in this namespace.
    pub fn apply(&self, manifest: &str) {
        if let Err(stderr) = self.try_apply(manifest) {
            panic!("kubectl apply failed: {stderr}\n{manifest}");
        }
    }

    /// `kubectl apply` of a manifest in this namespace: its stderr when it is refused.
    pub fn try_apply(&self, manifest: &str) -> Result<(), String> {
        let mut child = kubectl_command()
            .args(["--namespace", &self.name, "apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child
            .stdin
            .take()
            .expect("kubectl stdin")
            .write_all(manifest.as_bytes())
            .expect("writing to kubectl");
        let output = child.wait_with_output().expect("waiting for kubectl");
        match output.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    /// Waits until the pod has ended; panics after `timeout`, or at once when the node
    /// cannot get one of its images, with what to do.
    pub fn wait_for_end(&self, pod: &str, timeout: Duration) -> PodEnd {
        let start = Instant::now();
        loop {
            let state = self.kubectl(&[
                "get",
                "pod",
                pod,
                "-o",
                "jsonpath={.status.phase} {.status.initContainerStatuses[*].state.waiting.reason} {.status.containerStatuses[*].state.waiting.reason}",
            ]);
            let mut words = state.split_whitespace();
            let phase = words.next().unwrap_or_default().to_owned();
            if let Some(reason) = words.find(|r| r.contains("Image")) {
                let images = self.kubectl(&["get", "pod", pod, "-o", "jsonpath={..image}"]);
                panic!(
                    "pod {pod} cannot start ({reason}): the node lacks one of {images}; load the kbackup image with `cargo xtask image --load`, the others come with `cargo xtask env up`"
                );
            }
            if phase == "Succeeded" || phase == "Failed" {
                return PodEnd {
                    phase,
                    logs: self.all_logs(pod),
                };
            }
            assert!(
                start.elapsed() < timeout,
                "pod {pod} still {phase} after {timeout:?}; logs:\n{}\n{}",
                self.all_logs(pod),
                self.kubectl(&["describe", "pod", pod])
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Applies `manifest`, waits until `pod` has ended, and panics with its logs unless it
    /// succeeded.
    pub fn run_pod(&self, manifest: &str, pod: &str, timeout: Duration) -> PodEnd {
        self.apply(manifest);
        let end = self.wait_for_end(pod, timeout);
        assert_eq!(end.phase, "Succeeded", "pod {pod}: {}", end.logs);
        end
    }

    /// The logs of every container of the pod, each headed by its name.
    pub fn all_logs(&self, pod: &str) -> String {
        let names = self.kubectl(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.spec.initContainers[*].name} {.spec.containers[*].name}",
        ]);
        names
            .split_whitespace()
            .map(|container| {
                let logs =
                    kubectl_output(&["--namespace", &self.name, "logs", pod, "-c", container])
                        .unwrap_or_else(|e| format!("(no logs: {e})"));
                format!("--- {container}\n{logs}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl_output(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}
