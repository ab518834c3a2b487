//! What kbackup needs from a Kubernetes cluster, as small traits combined into [`Cluster`].
//! Implemented on kube in `backup-k8s`. Objects travel as JSON values so that this crate
//! needs no Kubernetes SDK.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a cluster call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The object or resource type does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The credentials may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A write conflicted with another writer or an existing object.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The API server rejected the object.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A wait ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The API server could not be reached or configured.
    #[error("cannot reach the cluster: {0}")]
    Connection(String),
    /// Anything else the API server said.
    #[error("{0}")]
    Api(String),
}

/// A served API resource type, as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResourceType {
    /// API group (`""` for the core group).
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Plural resource name (`deployments`).
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Verbs the server allows (`list`, `get`, `create`, ...).
    pub verbs: Vec<String>,
}

impl ApiResourceType {
    /// A namespaced type (`""` for the core group), as it is listed and read.
    pub fn namespaced(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            verbs: vec!["get".into(), "list".into()],
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// An aggregated API whose APIService is not Available: its types are missing from
/// discovery and its objects cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnavailableApi {
    /// `group/version` (the APIService's).
    pub group_version: String,
    /// What its Available condition says.
    pub reason: String,
}

/// What discovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedApis {
    /// Every served resource type once: in its group's preferred version when served there,
    /// else in the most stable version that serves it.
    pub types: Vec<ApiResourceType>,
    /// Aggregated APIs that are registered but not available.
    pub unavailable: Vec<UnavailableApi>,
}

/// Identifies one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// Namespace, for namespaced objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// A namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A cluster-scoped object.
    pub fn cluster_scoped(api_version: &str, kind: &str, name: &str) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {}/{}", self.api_version, self.kind, ns, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// A page of a LIST, with the token for the next one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectPage {
    /// Objects as JSON.
    pub items: Vec<serde_json::Value>,
    /// Token for the next page, if any.
    pub continue_token: Option<String>,
}

/// Kinds of workloads that can be scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
}

/// A scalable workload and what scaling needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// Deployment or StatefulSet.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Desired replicas.
    pub replicas: i32,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Label selector of its pods (`key=value,...`).
    pub pod_selector: String,
}

/// State of a Job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Pods still running or pending.
    Running,
    /// Completed successfully.
    Succeeded,
    /// Failed, with the reason Kubernetes gives.
    Failed(String),
}

/// The logs of one container of one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerLog {
    /// Pod name.
    pub pod: String,
    /// Container name (init containers included).
    pub container: String,
    /// The log text.
    pub text: String,
}

/// A secret value: its Debug and Display never show the content.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes, for the one place that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Every page of a type (in a namespace, with a label selector), one LIST call each, as a
/// stream of the pages' objects: the next page is asked for only when the stream is polled
/// again.
pub fn pages<'a, S: ResourceStore + ?Sized>(
    store: &'a S,
    resource: &'a ApiResourceType,
    namespace: Option<&'a str>,
    selector: Option<&'a str>,
    page_size: u32,
) -> impl futures::Stream<Item = Result<Vec<serde_json::Value>, ClusterError>> + 'a {
    // The state is the token of the next page; `None` once the last page is read.
    futures::stream::try_unfold(
        Some(None),
        move |token: Option<Option<String>>| async move {
            let Some(token) = token else {
                return Ok(None);
            };
            let page = store
                .list_page(resource, namespace, selector, page_size, token)
                .await?;
            Ok(Some((page.items, page.continue_token.map(Some))))
        },
    )
}

/// Lists every page of a type (in a namespace, with a label selector), handing each page's
/// objects to `each` as it arrives.
pub async fn for_each_page<S: ResourceStore + ?Sized>(
    store: &S,
    resource: &ApiResourceType,
    namespace: Option<&str>,
    selector: Option<&str>,
    page_size: u32,
    mut each: impl FnMut(Vec<serde_json::Value>),
) -> Result<(), ClusterError> {
    use futures::TryStreamExt;
    let mut pages = std::pin::pin!(pages(store, resource, namespace, selector, page_size));
    while let Some(items) = pages.try_next().await? {
        each(items);
    }
    Ok(())
}

/// Discovery and generic object access.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Every served resource type, and the aggregated APIs that are not available.
    async fn discover(&self) -> Result<ServedApis, ClusterError>;
    /// One page of a LIST.
    async fn list_page(
        &self,
        resource: &ApiResourceType,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        limit: u32,
        continue_token: Option<String>,
    ) -> Result<ObjectPage, ClusterError>;
    /// One object, `None` when missing.
    async fn get(&self, object: &ObjectRef) -> Result<Option<serde_json::Value>, ClusterError>;
    /// Server-side apply of an object under our field manager; returns the stored object.
    async fn apply(
        &self,
        object: &serde_json::Value,
        force: bool,
    ) -> Result<serde_json::Value, ClusterError>;
    /// Creates an object (a plain POST under our field manager: cheaper for the server than
    /// an apply) and returns its uid; an existing object is a `Conflict`.
    async fn create(&self, object: &serde_json::Value) -> Result<String, ClusterError>;
    /// Replaces an existing object with this one (a PUT over its current version, retried
    /// when another writer gets between the read and the write): afterwards it is this
    /// object apart from what the server sets. Returns the stored object.
    async fn replace(&self, object: &serde_json::Value) -> Result<serde_json::Value, ClusterError>;
    /// Server-side apply of an object's `status` (the status subresource), forced.
    async fn apply_status(
        &self,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, ClusterError>;
    /// Deletes an object; a missing object is not an error.
    async fn delete(&self, object: &ObjectRef) -> Result<(), ClusterError>;
}

/// Scaling and annotating Deployments and StatefulSets.
#[async_trait]
pub trait WorkloadControl: Send + Sync {
    /// Deployments and StatefulSets in a namespace matching a label selector.
    async fn workloads(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<Workload>, ClusterError>;
    /// Sets the replica count.
    async fn scale(&self, workload: &Workload, replicas: i32) -> Result<(), ClusterError>;
    /// Sets (`Some`) or removes (`None`) annotations.
    async fn annotate(
        &self,
        workload: &Workload,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), ClusterError>;
    /// Waits, by watching, until no pod matches the selector.
    async fn wait_pods_gone(
        &self,
        namespace: &str,
        label_selector: &str,
        timeout: Duration,
    ) -> Result<(), ClusterError>;
}

/// Running Jobs.
#[async_trait]
pub trait JobControl: Send + Sync {
    /// Creates a Job from its manifest.
    async fn create_job(
        &self,
        namespace: &str,
        manifest: &serde_json::Value,
    ) -> Result<(), ClusterError>;
    /// The Job's state, `None` when it does not exist.
    async fn job_state(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<JobState>, ClusterError>;
    /// Waits, by watching, until the Job succeeds or fails.
    async fn wait_job(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<JobState, ClusterError>;
    /// Logs of every container (init containers too) of every pod of the Job.
    async fn job_logs(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<ContainerLog>, ClusterError>;
    /// The last line of a container's log in one of a Job's pods, at most `max_bytes` of it
    /// (its start); empty when it has logged nothing yet.
    async fn last_log_line(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        max_bytes: usize,
    ) -> Result<String, ClusterError>;
    /// Deletes the Job and its pods.
    async fn delete_job(&self, namespace: &str, name: &str) -> Result<(), ClusterError>;
}

/// How a command run in a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Whether it exited 0.
    pub success: bool,
    /// What the API server says of a failure (`command terminated with non-zero exit code:
    /// ... 3`).
    pub message: String,
    /// Its standard output (the end of it, when long).
    pub stdout: String,
    /// Its standard error (the end of it, when long).
    pub stderr: String,
}

/// Running commands in the containers of running pods, and reading their logs.
#[async_trait]
pub trait PodExec: Send + Sync {
    /// Runs `command` in `container` (the pod's first when `None`) of a pod, and waits for
    /// its end at most `timeout`.
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, ClusterError>;
    /// The log of one container of a pod (init containers too).
    async fn container_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<String, ClusterError>;
}

/// Reading configuration objects.
#[async_trait]
pub trait ConfigObjects: Send + Sync {
    /// A ConfigMap's data, `None` when missing.
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError>;
    /// A Secret's data, `None` when missing.
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, SecretValue>>, ClusterError>;
}

/// A running port-forward; dropping it closes the forward.
pub trait Forward: Send + Sync {
    /// The local address that reaches the remote port.
    fn local_addr(&self) -> SocketAddr;
}

/// Port-forwarding to Services.
#[async_trait]
pub trait PortForwarder: Send + Sync {
    /// Forwards a local port (chosen by the OS) to a port of the first Running pod behind a
    /// Service.
    async fn forward_service(
        &self,
        namespace: &str,
        service: &str,
        port: u16,
    ) -> Result<Box<dyn Forward>, ClusterError>;
}

/// Everything kbackup needs from a cluster.
pub trait Cluster:
    ResourceStore + WorkloadControl + JobControl + ConfigObjects + PortForwarder
{
}

impl<T: ResourceStore + WorkloadControl + JobControl + ConfigObjects + PortForwarder> Cluster
    for T
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_print() {
        let s = SecretValue::new(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), b"hunter2");
    }

    #[test]
    fn object_refs_read_well() {
        let r = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("demo".into()),
            name: "web".into(),
        };
        assert_eq!(r.to_string(), "apps/v1 Deployment demo/web");
        let core = ApiResourceType {
            group: "".into(),
            version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
            namespaced: true,
            verbs: vec![],
        };
        assert_eq!(core.api_version(), "v1");
    }
}
