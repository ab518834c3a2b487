//! How kbackup's tests reach the real test servers.
//!
//! Addresses come from the environment (`KUBECONFIG`, `KBACKUP_TEST_S3_ENDPOINT`, ...) or,
//! when unset, from `.testenv/env.sh`, written by `cargo xtask env up`. A test that needs a
//! server that is not configured or not answering **panics** with instructions: it never
//! skips silently.
//!
//! To run the same tests against a cluster of your own (kind, k3d, a real one), set
//! `KBACKUP_TEST_KUBECONFIG=/path/to/kubeconfig`; it takes precedence over the local
//! control plane.

mod minio;
mod pods;
mod real_node;

pub use minio::PrivateMinio;
pub use pods::{DESCRIBE_TREE, indent};
pub use real_node::{PodEnd, RealNode, TestNamespace, real_node};

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const START_HINT: &str =
    "start the test servers with `cargo xtask env up` (then `cargo xtask env status` shows them)";

/// An S3-compatible server (the test MinIO).
#[derive(Debug, Clone)]
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region.
    pub region: String,
    /// A bucket that exists for tests.
    pub bucket: String,
}

impl S3Server {
    /// Creates a bucket of the test's own (one that exists already is fine).
    pub fn create_bucket(&self, bucket: &str) {
        minio::create_bucket(
            &self.endpoint,
            &self.access_key_id,
            &self.secret_access_key,
            bucket,
        );
    }

    /// The keys in `bucket` below `prefix` (the first 1000).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        minio::keys(
            &self.endpoint,
            &self.access_key_id,
            &self.secret_access_key,
            bucket,
            prefix,
        )
    }

    /// The bytes of `key` in `bucket`.
    pub fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        minio::object(
            &self.endpoint,
            &self.access_key_id,
            &self.secret_access_key,
            bucket,
            key,
        )
    }

    /// Writes `bytes` as `key` in `bucket`.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        minio::put(
            &self.endpoint,
            &self.access_key_id,
            &self.secret_access_key,
            bucket,
            key,
            bytes,
        )
    }
}

/// An Azure Blob server (the test Azurite).
#[derive(Debug, Clone)]
pub struct AzureServer {
    /// `http://127.0.0.1:PORT/ACCOUNT`.
    pub endpoint: String,
    /// Account name.
    pub account: String,
    /// Account key.
    pub key: String,
    /// A container that exists for tests.
    pub container: String,
}

/// A Google Cloud Storage server (the test emulator, fake-gcs-server).
#[derive(Debug, Clone)]
pub struct GcsServer {
    /// `http://NODE_IP:PORT`, for pods and this machine alike.
    pub endpoint: String,
    /// A bucket that exists for tests.
    pub bucket: String,
    /// The service account key (JSON) that points the GCS client at it, as
    /// `GOOGLE_SERVICE_ACCOUNT_KEY` holds one.
    pub service_account_key: String,
}

/// An Elasticsearch node.
#[derive(Debug, Clone)]
pub struct ElasticsearchServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The node's `path.repo` directory (for `fs` snapshot repositories).
    pub repo_path: PathBuf,
}

/// `.testenv/env.sh` of the workspace the test runs in, found at run time by walking up from
/// the working directory (cargo runs tests in their package's directory). Not from a
/// compile-time path: a target directory shared between clones would point at another clone.
fn env_file() -> PathBuf {
    let start = std::env::current_dir().unwrap_or_default();
    start
        .ancestors()
        .map(|dir| dir.join(".testenv/env.sh"))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| start.join(".testenv/env.sh"))
}

fn file_vars() -> &'static HashMap<String, String> {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    VARS.get_or_init(|| {
        std::fs::read_to_string(env_file())
            .map(|text| parse_env_sh(&text))
            .unwrap_or_default()
    })
}

/// Parses the `export NAME="value"` lines of an env.sh file.
pub fn parse_env_sh(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| {
            (
                name.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            )
        })
        .collect()
}

/// A variable from the environment, else from `.testenv/env.sh`.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| file_vars().get(name).cloned())
}

fn require(server: &str, name: &str) -> String {
    var(name).unwrap_or_else(|| {
        panic!(
            "{server} is not configured: {name} is not set and {} does not define it; {START_HINT}",
            env_file().display()
        )
    })
}

/// Panics unless something listens at `url`'s host and port.
fn require_listening(server: &str, url: &str) {
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default();
    let reachable = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "{server} at {url} is not answering; {START_HINT}"
    );
}

/// The kubeconfig of the test cluster: `KBACKUP_TEST_KUBECONFIG`, else the local control
/// plane's `KUBECONFIG`.
pub fn kubeconfig() -> PathBuf {
    let path = var("KBACKUP_TEST_KUBECONFIG")
        .unwrap_or_else(|| require("the test Kubernetes cluster", "KUBECONFIG"));
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "the test kubeconfig {} does not exist; {START_HINT}",
        path.display()
    );
    let server = std::fs::read_to_string(&path).ok().and_then(|text| {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix("server:")
                .map(|s| s.trim().to_owned())
        })
    });
    if let Some(server) = server {
        require_listening("the test Kubernetes API server", &server);
    }
    path
}

/// The test MinIO.
pub fn s3() -> S3Server {
    let endpoint = require("the test MinIO", "KBACKUP_TEST_S3_ENDPOINT");
    require_listening("the test MinIO", &endpoint);
    S3Server {
        endpoint,
        access_key_id: require("the test MinIO", "AWS_ACCESS_KEY_ID"),
        secret_access_key: require("the test MinIO", "AWS_SECRET_ACCESS_KEY"),
        region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        bucket: var("KBACKUP_TEST_S3_BUCKET").unwrap_or_else(|| "kbackup-test".into()),
    }
}

/// The test Azurite.
pub fn azure() -> AzureServer {
    let endpoint = require("the test Azurite", "KBACKUP_TEST_AZURE_ENDPOINT");
    require_listening("the test Azurite", &endpoint);
    AzureServer {
        endpoint,
        account: require("the test Azurite", "KBACKUP_TEST_AZURE_ACCOUNT"),
        key: require("the test Azurite", "KBACKUP_TEST_AZURE_KEY"),
        container: var("KBACKUP_TEST_AZURE_CONTAINER").unwrap_or_else(|| "kbackup-test".into()),
    }
}

/// The test GCS emulator.
pub fn gcs() -> GcsServer {
    let endpoint = require("the test GCS emulator", "KBACKUP_TEST_GCS_ENDPOINT");
    require_listening("the test GCS emulator", &endpoint);
    let key_file = require("the test GCS emulator", "KBACKUP_TEST_GCS_KEY_FILE");
    GcsServer {
        endpoint,
        bucket: require("the test GCS emulator", "KBACKUP_TEST_GCS_BUCKET"),
        service_account_key: std::fs::read_to_string(&key_file)
            .unwrap_or_else(|e| panic!("the test GCS emulator's key {key_file}: {e}")),
    }
}

/// The test Elasticsearch node.
pub fn elasticsearch() -> ElasticsearchServer {
    let url = require("the test Elasticsearch", "KBACKUP_TEST_ES_URL");
    require_listening("the test Elasticsearch", &url);
    ElasticsearchServer {
        url,
        repo_path: PathBuf::from(require(
            "the test Elasticsearch",
            "KBACKUP_TEST_ES_REPO_PATH",
        )),
    }
}

/// The helm client of the test environment (built from the Go module proxy by `env up`).
pub fn helm() -> PathBuf {
    PathBuf::from(require("helm", "KBACKUP_TEST_HELM"))
}

/// The kubectl of the test environment's Kubernetes release (first on env.sh's `PATH`),
/// else the first on this process's `PATH`.
pub fn kubectl() -> PathBuf {
    let from_env_file = file_vars()
        .get("PATH")
        .and_then(|path| path.split(':').next())
        .map(|dir| PathBuf::from(dir).join("kubectl"));
    let from_path = std::env::var("PATH").ok().and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("kubectl"))
            .find(|p| p.exists())
    });
    from_env_file
        .filter(|p| p.exists())
        .or(from_path)
        .unwrap_or_else(|| panic!("kubectl not found; {START_HINT}"))
}

/// Deterministic, incompressible test data (xorshift64), different for each `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A name no other test run uses (for prefixes, namespaces, indices): lowercase, DNS-safe.
pub fn unique_name(base: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{base}-{:x}{:x}-{n}", std::process::id(), nanos % 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_export_lines() {
        let vars = parse_env_sh("# comment\nexport A=\"1\"\nexport B=two\nPATH=x\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("two"));
        assert!(!vars.contains_key("PATH"));
    }

    #[test]
    fn unique_names_differ_and_are_dns_safe() {
        let (a, b) = (unique_name("t"), unique_name("t"));
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    #[should_panic(expected = "is not answering")]
    fn an_absent_server_fails_loudly() {
        require_listening("a server", "http://127.0.0.1:1");
    }
}
