//! [`FakeCluster`]: every part of [`Cluster`](crate::Cluster) in memory.

use crate::cluster::{
    ApiResourceType, ClusterError, ConfigObjects, ContainerLog, ExecOutcome, Forward, JobControl,
    JobState, ObjectPage, ObjectRef, PodExec, PortForwarder, ResourceStore, SecretValue,
    ServedApis, Workload, WorkloadControl, WorkloadKind,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A cluster held in memory: objects (what `ResourceStore` reads and writes, ConfigMaps and
/// Secrets among them, their `data` in plain text), Deployments with labels, and Jobs whose
/// end the test decides with [`FakeCluster::finish_job`].
///
/// Every call is logged (`scale server 0`, `annotate server`, `wait app=server`,
/// `apply Secret/x`, ...). A change (a write of any kind) can be made to fail
/// ([`FakeCluster::fail_calls`]), or to never return ([`FakeCluster::crash_before_change`]):
/// a future polled once with `now_or_never` then stops exactly where a killed process would.
/// A clone is another handle to the same cluster (as a clone of a client is).
#[derive(Default, Clone)]
pub struct FakeCluster {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    objects: Vec<Value>,
    served: Vec<ApiResourceType>,
    workloads: Vec<(Workload, BTreeMap<String, String>)>,
    jobs: BTreeMap<(String, String), JobState>,
    calls: Vec<String>,
    changes: usize,
    crash_before: Option<usize>,
    failing: Vec<String>,
    next_uid: usize,
}

/// (kind, namespace, name) of an object.
fn identity(object: &Value) -> (String, Option<String>, String) {
    let metadata = &object["metadata"];
    (
        object["kind"].as_str().unwrap_or_default().to_owned(),
        metadata["namespace"].as_str().map(str::to_owned),
        metadata["name"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Whether `labels` satisfy a `key=value,...` selector (the empty selector selects all).
fn selects(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        term.split_once('=')
            .is_some_and(|(k, v)| labels.get(k).map(String::as_str) == Some(v))
    })
}

impl FakeCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a Deployment with `replicas`, pod labels `app=<name>`, and these labels and
    /// annotations.
    pub fn add_workload(
        &self,
        namespace: &str,
        name: &str,
        replicas: i32,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) {
        let owned = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let workload = Workload {
            kind: WorkloadKind::Deployment,
            namespace: namespace.into(),
            name: name.into(),
            replicas,
            annotations: owned(annotations),
            pod_selector: format!("app={name}"),
        };
        self.lock().workloads.push((workload, owned(labels)));
    }

    /// The workload named `name`; panics when there is none (a test's mistake).
    pub fn workload(&self, name: &str) -> Workload {
        self.lock()
            .workloads
            .iter()
            .find(|(w, _)| w.name == name)
            .map(|(w, _)| w.clone())
            .unwrap_or_else(|| panic!("no workload {name}"))
    }

    /// Serves a resource type: discovery lists it.
    pub fn serve(&self, group: &str, version: &str, kind: &str, namespaced: bool) {
        let verbs = ["get", "list", "create", "update", "patch", "delete"];
        self.lock().served.push(ApiResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
            namespaced,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
        });
    }

    /// Stores an object as it is (no call logged, no change counted).
    pub fn insert(&self, object: &Value) -> String {
        self.lock().store(object)
    }

    /// The stored object of this kind, namespace and name.
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let wanted = (
            kind.to_owned(),
            namespace.map(str::to_owned),
            name.to_owned(),
        );
        self.lock()
            .objects
            .iter()
            .find(|o| identity(o) == wanted)
            .cloned()
    }

    /// Every stored object, in the order they were written.
    pub fn objects(&self) -> Vec<Value> {
        self.lock().objects.clone()
    }

    /// `Kind/name` of every stored object, in the order they were written.
    pub fn object_names(&self) -> Vec<String> {
        self.lock()
            .objects
            .iter()
            .map(|o| {
                let (kind, _, name) = identity(o);
                format!("{kind}/{name}")
            })
            .collect()
    }

    /// Names of the Jobs that exist in `namespace`.
    pub fn jobs(&self, namespace: &str) -> Vec<String> {
        self.lock()
            .jobs
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Ends a Job as `state` says.
    pub fn finish_job(&self, namespace: &str, name: &str, state: JobState) {
        let mut s = self.lock();
        match s.jobs.get_mut(&(namespace.to_owned(), name.to_owned())) {
            Some(job) => *job = state,
            None => panic!("no Job {namespace}/{name}"),
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// How many changes were made (or attempted) so far.
    pub fn changes(&self) -> usize {
        self.lock().changes
    }

    /// From now on, the `n`-th change from the start (1-based, counting those made already)
    /// never returns; `None` lifts it.
    pub fn crash_before_change(&self, n: Option<usize>) {
        self.lock().crash_before = n;
    }

    /// Changes whose logged call starts with one of `prefixes` fail with `Forbidden`.
    pub fn fail_calls(&self, prefixes: &[&str]) {
        self.lock().failing = prefixes.iter().map(|p| p.to_string()).collect();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, call: String) {
        self.lock().calls.push(call);
    }

    /// Logs and counts a change, then stops dead or fails if the test said so. Another fake
    /// of the same world (an Elasticsearch beside the cluster) gates its own changes here,
    /// so that they count in the same sequence.
    pub async fn change(&self, call: String) -> Result<(), ClusterError> {
        let (crash, fail) = {
            let mut s = self.lock();
            s.changes += 1;
            let crash = s.crash_before == Some(s.changes);
            let fail = s.failing.iter().any(|f| call.starts_with(f.as_str()));
            s.calls.push(call.clone());
            (crash, fail)
        };
        if crash {
            std::future::pending::<()>().await;
        }
        if fail {
            return Err(ClusterError::Forbidden(call));
        }
        Ok(())
    }
}

impl State {
    /// Stores an object; one already there keeps its uid (as an update or an apply does).
    fn store(&mut self, object: &Value) -> String {
        let id = identity(object);
        let uid = match self.objects.iter().find(|o| identity(o) == id) {
            Some(old) => old["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => {
                self.next_uid += 1;
                format!("uid-{}", self.next_uid)
            }
        };
        let mut object = object.clone();
        object["metadata"]["uid"] = json!(uid);
        if object["kind"] == "CustomResourceDefinition" {
            // As the API server reports it a moment after the write.
            object["status"] = json!({"conditions": [{"type": "Established", "status": "True"}]});
        }
        let id = identity(&object);
        self.objects.retain(|o| identity(o) != id);
        self.objects.push(object);
        uid
    }

    fn find(&self, object: &ObjectRef) -> Option<&Value> {
        let wanted = (
            object.kind.clone(),
            object.namespace.clone(),
            object.name.clone(),
        );
        self.objects.iter().find(|o| identity(o) == wanted)
    }

    fn workload_mut(&mut self, workload: &Workload) -> Result<&mut Workload, ClusterError> {
        self.workloads
            .iter_mut()
            .map(|(w, _)| w)
            .find(|w| w.namespace == workload.namespace && w.name == workload.name)
            .ok_or_else(|| ClusterError::NotFound(format!("Deployment {}", workload.name)))
    }

    fn data(&self, kind: &str, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let object = ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        };
        self.find(&object).map(|o| {
            o["data"]
                .as_object()
                .map(|data| {
                    data.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

fn described(object: &Value) -> String {
    let (kind, _, name) = identity(object);
    format!("{kind}/{name}")
}

#[async_trait]
impl ResourceStore for FakeCluster {
    async fn discover(&self) -> Result<ServedApis, ClusterError> {
        Ok(ServedApis {
            types: self.lock().served.clone(),
            unavailable: vec![],
        })
    }

    async fn list_page(
        &self,
        resource: &ApiResourceType,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        _: u32,
        _: Option<String>,
    ) -> Result<ObjectPage, ClusterError> {
        let labels = |o: &Value| -> BTreeMap<String, String> {
            serde_json::from_value(o["metadata"]["labels"].clone()).unwrap_or_default()
        };
        let items = self
            .lock()
            .objects
            .iter()
            .filter(|o| o["kind"] == resource.kind.as_str())
            .filter(|o| namespace.is_none() || o["metadata"]["namespace"].as_str() == namespace)
            .filter(|o| selects(label_selector.unwrap_or_default(), &labels(o)))
            .cloned()
            .collect();
        Ok(ObjectPage {
            items,
            continue_token: None,
        })
    }

    async fn get(&self, object: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        Ok(self.lock().find(object).cloned())
    }

    async fn apply(&self, object: &Value, _: bool) -> Result<Value, ClusterError> {
        self.change(format!("apply {}", described(object))).await?;
        let mut s = self.lock();
        let uid = s.store(object);
        let mut stored = object.clone();
        stored["metadata"]["uid"] = json!(uid);
        Ok(stored)
    }

    async fn create(&self, object: &Value) -> Result<String, ClusterError> {
        self.change(format!("create {}", described(object))).await?;
        let mut s = self.lock();
        let id = identity(object);
        if s.objects.iter().any(|o| identity(o) == id) {
            return Err(ClusterError::Conflict(format!(
                "{} already exists",
                described(object)
            )));
        }
        Ok(s.store(object))
    }

    async fn replace(&self, object: &Value) -> Result<Value, ClusterError> {
        self.change(format!("replace {}", described(object)))
            .await?;
        let mut s = self.lock();
        let uid = s.store(object);
        let mut stored = object.clone();
        stored["metadata"]["uid"] = json!(uid);
        Ok(stored)
    }

    async fn apply_status(&self, object: &Value) -> Result<Value, ClusterError> {
        self.change(format!("status {}", described(object))).await?;
        let mut s = self.lock();
        let id = identity(object);
        match s.objects.iter_mut().find(|o| identity(o) == id) {
            Some(stored) => {
                stored["status"] = object["status"].clone();
                Ok(stored.clone())
            }
            None => Ok(object.clone()),
        }
    }

    async fn delete(&self, object: &ObjectRef) -> Result<(), ClusterError> {
        self.change(format!("delete {}/{}", object.kind, object.name))
            .await?;
        let wanted = (
            object.kind.clone(),
            object.namespace.clone(),
            object.name.clone(),
        );
        self.lock().objects.retain(|o| identity(o) != wanted);
        Ok(())
    }
}

#[async_trait]
impl WorkloadControl for FakeCluster {
    async fn workloads(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<Workload>, ClusterError> {
        Ok(self
            .lock()
            .workloads
            .iter()
            .filter(|(w, labels)| w.namespace == namespace && selects(label_selector, labels))
            .map(|(w, _)| w.clone())
            .collect())
    }

    async fn scale(&self, workload: &Workload, replicas: i32) -> Result<(), ClusterError> {
        self.change(format!("scale {} {replicas}", workload.name))
            .await?;
        self.lock().workload_mut(workload)?.replicas = replicas;
        Ok(())
    }

    async fn annotate(
        &self,
        workload: &Workload,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), ClusterError> {
        self.change(format!("annotate {}", workload.name)).await?;
        let mut s = self.lock();
        let target = s.workload_mut(workload)?;
        for (k, v) in changes {
            match v {
                Some(v) => target.annotations.insert(k.clone(), v.clone()),
                None => target.annotations.remove(k),
            };
        }
        Ok(())
    }

    async fn wait_pods_gone(
        &self,
        _: &str,
        label_selector: &str,
        _: Duration,
    ) -> Result<(), ClusterError> {
        self.log(format!("wait {label_selector}"));
        Ok(())
    }
}

#[async_trait]
impl JobControl for FakeCluster {
    async fn create_job(&self, namespace: &str, manifest: &Value) -> Result<(), ClusterError> {
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.change(format!("create Job/{name}")).await?;
        let mut s = self.lock();
        let key = (namespace.to_owned(), name);
        if s.jobs.contains_key(&key) {
            return Err(ClusterError::Conflict(format!("Job {} exists", key.1)));
        }
        s.jobs.insert(key, JobState::Running);
        let mut job = manifest.clone();
        job["metadata"]["namespace"] = json!(namespace);
        s.store(&job);
        Ok(())
    }

    async fn job_state(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<JobState>, ClusterError> {
        Ok(self
            .lock()
            .jobs
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned())
    }

    /// Time does not pass in the fake: a Job still running times out at once.
    async fn wait_job(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<JobState, ClusterError> {
        match self.job_state(namespace, name).await? {
            None => Err(ClusterError::NotFound(format!("Job {name}"))),
            Some(JobState::Running) => Err(ClusterError::Timeout {
                what: format!("Job {name}"),
                after: timeout,
            }),
            Some(done) => Ok(done),
        }
    }

    async fn job_logs(&self, _: &str, name: &str) -> Result<Vec<ContainerLog>, ClusterError> {
        Ok(vec![ContainerLog {
            pod: format!("{name}-pod"),
            container: "restore".into(),
            text: format!("the log of {name}"),
        }])
    }

    async fn last_log_line(
        &self,
        _: &str,
        pod: &str,
        _: &str,
        max_bytes: usize,
    ) -> Result<String, ClusterError> {
        let name = pod.strip_suffix("-pod").unwrap_or(pod);
        let mut line = format!("the log of {name}");
        line.truncate(max_bytes);
        Ok(line)
    }

    /// Deletes the Job, and what it owns as Kubernetes' garbage collector would.
    async fn delete_job(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.change(format!("delete Job/{name}")).await?;
        let mut s = self.lock();
        s.jobs.remove(&(namespace.to_owned(), name.to_owned()));
        let job = ObjectRef::namespaced("batch/v1", "Job", namespace, name);
        let Some(uid) = s.find(&job).map(|j| j["metadata"]["uid"].clone()) else {
            return Ok(());
        };
        let job_or_owned = |o: &Value| {
            o["metadata"]["uid"] == uid
                || o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|owners| owners.iter().any(|r| r["uid"] == uid))
        };
        s.objects.retain(|o| !job_or_owned(o));
        Ok(())
    }
}

/// Commands run in pods are logged (`exec ns/pod: a b`); `false ...` exits 1 saying
/// `failed` on its standard error, `sleep ...` outlasts its timeout, anything else succeeds.
#[async_trait]
impl PodExec for FakeCluster {
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        _container: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, ClusterError> {
        self.log(format!("exec {namespace}/{pod}: {}", command.join(" ")));
        match command.first().map(String::as_str) {
            Some("sleep") => Err(ClusterError::Timeout {
                what: format!("exec in {pod}"),
                after: timeout,
            }),
            Some("false") => Ok(ExecOutcome {
                success: false,
                message: "command terminated with non-zero exit code: 1".into(),
                stdout: String::new(),
                stderr: "failed\n".into(),
            }),
            _ => Ok(ExecOutcome {
                success: true,
                message: String::new(),
                stdout: String::new(),
                stderr: String::new(),
            }),
        }
    }

    async fn container_log(
        &self,
        _namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<String, ClusterError> {
        Ok(format!("the log of {pod}/{container}"))
    }
}

#[async_trait]
impl ConfigObjects for FakeCluster {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
        Ok(self.lock().data("ConfigMap", namespace, name))
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, SecretValue>>, ClusterError> {
        Ok(self.lock().data("Secret", namespace, name).map(|data| {
            data.into_iter()
                .map(|(k, v)| (k, SecretValue::new(v.into_bytes())))
                .collect()
        }))
    }
}

#[async_trait]
impl PortForwarder for FakeCluster {
    async fn forward_service(
        &self,
        _: &str,
        service: &str,
        _: u16,
    ) -> Result<Box<dyn Forward>, ClusterError> {
        Err(ClusterError::Connection(format!(
            "the fake cluster forwards no port (service {service})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_crash_stops_before_the_change_and_a_failure_refuses_it() {
        let cluster = FakeCluster::new();
        cluster.add_workload("sts", "server", 2, &[("tier", "db")], &[]);
        let server = cluster.workload("server");
        cluster.crash_before_change(Some(1));
        assert!(cluster.scale(&server, 0).now_or_never().is_none());
        assert_eq!(cluster.workload("server").replicas, 2);
        cluster.crash_before_change(None);
        cluster.fail_calls(&["scale server"]);
        let refused = cluster.scale(&server, 0).now_or_never().unwrap();
        assert!(matches!(refused, Err(ClusterError::Forbidden(_))));
        assert_eq!(cluster.changes(), 2);
        let selected = cluster.workloads("sts", "tier=db").now_or_never().unwrap();
        assert_eq!(selected.unwrap().len(), 1);
        let none = cluster.workloads("sts", "tier=web").now_or_never().unwrap();
        assert!(none.unwrap().is_empty());
    }

    #[test]
    fn secrets_come_from_stored_objects() {
        let cluster = FakeCluster::new();
        cluster.insert(
            &json!({"kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
            "data": {"password": "pw"}}),
        );
        let data = cluster.secret("n", "s").now_or_never().unwrap().unwrap();
        assert_eq!(data.unwrap()["password"].expose(), b"pw");
        assert!(
            cluster
                .secret("n", "t")
                .now_or_never()
                .unwrap()
                .unwrap()
                .is_none()
        );
    }
}
