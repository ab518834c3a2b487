//! The objects of a Job run, as manifests: pure functions of the spec and the request. The
//! Job honours the same contract as sts-backup's Jobs, so the StackState backup image runs
//! it: scripts in /backup-restore-scripts, keys in /aws-keys/{accesskey,secretkey}, scratch
//! space in /tmp-data (a PVC named after the Job), logging configuration in /opt/docker/etc_log.

use super::{ClaimMount, DataStoreSpec, JobInstance, Operation, Scratch};
use backup_core::ClusterError;
use backup_core::cluster::{JobControl, ResourceStore};
use backup_core::workflow::launch_job;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a Job works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The archive's name (`sts-backup-20261121-0300.graph`): restored, or written (a
    /// backfill or an abort Job has none: it works on what was restored).
    pub archive: String,
    /// Access key for the archive bucket.
    pub access_key: String,
    /// Secret key for the archive bucket (Debug shows `<redacted>`).
    pub secret_key: backup_core::Secret,
    /// A unique suffix for the Job's name (`20261121t100000`).
    pub run_id: String,
}

/// The objects of one run (Debug leaves out the keys Secret's content).
#[derive(Clone, PartialEq)]
pub struct JobManifests {
    /// ConfigMap with the scripts.
    pub scripts: Value,
    /// Secret with the object store keys.
    pub keys: Value,
    /// Scratch volume claim (named after the Job), unless the scratch space is an emptyDir.
    pub volume: Option<Value>,
    /// The Job.
    pub job: Value,
}

impl std::fmt::Debug for JobManifests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManifests")
            .field("scripts", &self.scripts)
            .field("keys", &"<redacted>")
            .field("volume", &self.volume)
            .field("job", &self.job)
            .finish()
    }
}

impl JobManifests {
    /// What the Job uses, in the order it is created: the scripts (shared by the runs), the
    /// credentials and the scratch volume (the Job's own).
    pub fn setup(&self) -> Vec<&Value> {
        let mut all = vec![&self.scripts];
        all.extend(self.owned());
        all
    }

    /// What only this run's Job uses, owned by it: the credentials and the scratch volume.
    fn owned(&self) -> Vec<&Value> {
        [Some(&self.keys), self.volume.as_ref()]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Applies the scripts, then starts the Job with its credentials and scratch volume owned
    /// by it: whoever deletes the Job (kbackup or `sts-backup` finalizing, a person),
    /// Kubernetes deletes them with it.
    pub async fn create<C: ResourceStore + JobControl + ?Sized>(
        &self,
        cluster: &C,
        namespace: &str,
    ) -> Result<(), ClusterError> {
        cluster.apply(&self.scripts, true).await?;
        launch_job(cluster, namespace, &self.job, &self.owned()).await
    }

    /// Every object, the Job last (`Kind/name` of each, for plans).
    pub fn names(&self) -> Vec<String> {
        let mut all = self.setup();
        all.push(&self.job);
        all.iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }
}

impl DataStoreSpec {
    /// Name of the Job of a run; its scratch PVC has the same name (as with sts-backup, so
    /// finalizing cleans up after either tool).
    pub fn job_name(&self, op: Operation, run_id: &str) -> String {
        format!("{}-{}-{run_id}", self.name, op.noun())
    }

    /// Name of the Secret with the object store keys of a Job (one per Job, removed with it).
    pub fn keys_name(job_name: &str) -> String {
        format!("{job_name}-keys")
    }

    /// Labels on everything a run creates: common labels, then ours.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.common_labels.clone();
        labels.insert("app.kubernetes.io/managed-by".into(), "kbackup".into());
        labels.insert(
            "app.kubernetes.io/component".into(),
            format!("{}-backup-restore", self.name),
        );
        labels
    }

    fn metadata(
        &self,
        namespace: &str,
        name: &str,
        extra_labels: &BTreeMap<String, String>,
    ) -> Value {
        let mut labels = self.labels();
        labels.extend(extra_labels.clone());
        json!({"name": name, "namespace": namespace, "labels": labels})
    }

    /// ConfigMap holding the data store's scripts: kbackup's own (sts-backup's is left
    /// alone), one per data store (restores of two data stores may run at the same time).
    pub fn scripts_config_map(&self) -> String {
        format!("kbackup-{}-scripts", self.name)
    }

    /// The script an operation's Job runs (`None`: the data store has no Job for it).
    pub fn command(&self, op: Operation) -> Option<&str> {
        self.commands.get(&op).map(String::as_str)
    }

    /// The manifests of a run in `namespace`.
    pub fn manifests(&self, namespace: &str, op: Operation, request: &JobRequest) -> JobManifests {
        let none = BTreeMap::new();
        let job_name = self.job_name(op, &request.run_id);
        let scripts = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": self.metadata(namespace, &self.scripts_config_map(), &none),
            "data": self.scripts,
        });
        let keys = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": self.metadata(namespace, &Self::keys_name(&job_name), &none),
            "stringData": {"accesskey": request.access_key, "secretkey": request.secret_key.expose()},
        });
        let volume = match &self.scratch {
            Scratch::EmptyDir | Scratch::None => None,
            Scratch::Claim(pvc) => {
                let mut spec = json!({"accessModes": pvc.access_modes, "resources": {"requests": {"storage": pvc.size}}});
                if let Some(class) = &pvc.storage_class_name {
                    spec["storageClassName"] = json!(class);
                }
                Some(json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": self.metadata(namespace, &job_name, &none),
                    "spec": spec,
                }))
            }
        };
        JobManifests {
            scripts,
            keys,
            volume,
            job: self.job_manifest(namespace, op, &job_name, request),
        }
    }

    fn job_manifest(
        &self,
        namespace: &str,
        op: Operation,
        job_name: &str,
        request: &JobRequest,
    ) -> Value {
        let mut env = self.env.clone();
        match op {
            Operation::Restore => {
                env.insert("BACKUP_FILE".into(), request.archive.clone());
                env.extend(self.restore_env.clone());
            }
            Operation::Backup => {
                env.insert("BACKUP_FILE".into(), request.archive.clone());
                if let Some(size) = &self.archive_split_size {
                    env.insert("ARCHIVE_SPLIT_SIZE".into(), size.clone());
                }
            }
            // A backfill or an abort works on whatever was restored: no archive.
            Operation::Backfill | Operation::Abort => {}
        }
        let mut mounts = vec![
            json!({"name": "backup-restore-scripts", "mountPath": "/backup-restore-scripts"}),
            json!({"name": "minio-keys", "mountPath": "/aws-keys"}),
        ];
        let mut volumes = vec![
            json!({"name": "backup-restore-scripts", "configMap": {"name": self.scripts_config_map(), "defaultMode": 0o755}}),
            json!({"name": "minio-keys", "secret": {"secretName": Self::keys_name(job_name)}}),
        ];
        let scratch = match &self.scratch {
            Scratch::Claim(_) => Some(json!({"persistentVolumeClaim": {"claimName": job_name}})),
            Scratch::EmptyDir => Some(json!({"emptyDir": {}})),
            Scratch::None => None,
        };
        if let Some(scratch) = scratch {
            mounts.push(json!({"name": "tmp-data", "mountPath": "/tmp-data"}));
            volumes.push(merge(json!({"name": "tmp-data"}), scratch));
        }
        if let Some(logging) = &self.logging_config_map {
            mounts.push(json!({"name": "backup-log", "mountPath": "/opt/docker/etc_log"}));
            volumes.push(json!({"name": "backup-log", "configMap": {"name": logging}}));
        }
        // Claims get volumes `claim-0`, `claim-1`, ... (claim names may be too long for one).
        let mut claims: Vec<String> = Vec::new();
        let mut mount_claim = |mount: &ClaimMount, mounts: &mut Vec<Value>| {
            let index = claims
                .iter()
                .position(|c| *c == mount.claim)
                .unwrap_or_else(|| {
                    claims.push(mount.claim.clone());
                    claims.len() - 1
                });
            mounts.push(json!({"name": format!("claim-{index}"), "mountPath": mount.mount_path}));
        };
        for mount in &self.mounts {
            mount_claim(mount, &mut mounts);
        }
        let single = [JobInstance {
            container: op.noun().to_owned(),
            env: BTreeMap::new(),
            mounts: vec![],
        }];
        let instances = if self.instances.is_empty() {
            &single[..]
        } else {
            &self.instances[..]
        };
        let script = self.command(op).unwrap_or_default();
        let containers: Vec<Value> = instances
            .iter()
            .map(|instance| {
                let mut env = env.clone();
                env.extend(instance.env.clone());
                let env: Vec<Value> = env
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect();
                let mut mounts = mounts.clone();
                for mount in &instance.mounts {
                    mount_claim(mount, &mut mounts);
                }
                let mut container = json!({
                    "name": instance.container,
                    "image": self.job.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [format!("/backup-restore-scripts/{script}")],
                    "env": env,
                    "volumeMounts": mounts,
                });
                if let Some(resources) = &self.job.resources {
                    container["resources"] = resources.clone();
                }
                if let Some(context) = &self.job.container_security_context {
                    container["securityContext"] = context.clone();
                }
                container
            })
            .collect();
        for (index, claim) in claims.iter().enumerate() {
            volumes.push(json!({"name": format!("claim-{index}"), "persistentVolumeClaim": {"claimName": claim}}));
        }
        let init_containers: Vec<Value> = self
            .wait_for
            .iter()
            .map(|target| {
                let mut wait = json!({
                    "name": "wait",
                    "image": self.job.wait_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", format!("/entrypoint -c {target} -t 300")],
                });
                if let Some(context) = &self.job.container_security_context {
                    wait["securityContext"] = context.clone();
                }
                wait
            })
            .collect();
        let mut pod_spec =
            json!({"restartPolicy": "Never", "containers": containers, "volumes": volumes});
        if !init_containers.is_empty() {
            pod_spec["initContainers"] = json!(init_containers);
        }
        if !self.job.image_pull_secrets.is_empty() {
            let secrets: Vec<Value> = self
                .job
                .image_pull_secrets
                .iter()
                .map(|s| {
                    if s.is_string() {
                        json!({"name": s})
                    } else {
                        s.clone()
                    }
                })
                .collect();
            pod_spec["imagePullSecrets"] = json!(secrets);
        }
        if !self.job.node_selector.is_empty() {
            pod_spec["nodeSelector"] = json!(self.job.node_selector);
        }
        if !self.job.tolerations.is_empty() {
            pod_spec["tolerations"] = json!(self.job.tolerations);
        }
        for (field, value) in [
            ("affinity", &self.job.affinity),
            ("securityContext", &self.job.security_context),
        ] {
            if let Some(value) = value {
                pod_spec[field] = value.clone();
            }
        }
        // The Job's labels go on its pod too (as sts-backup does): network policies and
        // admission rules select pods by them.
        let mut pod_labels = self.labels();
        pod_labels.extend(self.job.labels.clone());
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": self.metadata(namespace, job_name, &self.job.labels),
            "spec": {
                "backoffLimit": 1,
                "ttlSecondsAfterFinished": self.ttl_seconds_after_finished,
                "template": {"metadata": {"labels": pod_labels, "annotations": self.job.annotations}, "spec": pod_spec},
            },
        })
    }
}

/// `base` with the fields of `more` added.
fn merge(mut base: Value, more: Value) -> Value {
    if let (Some(base), Value::Object(more)) = (base.as_object_mut(), more) {
        base.extend(more);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::super::test_support::container_env;
    use super::*;
    use backup_core::stackstate::{JobSettings, PvcSettings};

    fn spec() -> DataStoreSpec {
        DataStoreSpec {
            name: "stackgraph".into(),
            scale_down_selector: "stackstate.com/connects-to-stackgraph=true".into(),
            bucket: "sts-stackgraph-backup".into(),
            prefix: "".into(),
            env: [
                ("MINIO_ENDPOINT", "suse-observability-minio:9000"),
                ("BACKUP_STACKGRAPH_BUCKET_NAME", "sts-stackgraph-backup"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
            restore_env: [("FORCE_DELETE".to_string(), "-force".to_string())].into(),
            wait_for: Some("suse-observability-minio:9000".into()),
            lock: "stackgraph".into(),
            scripts: [
                ("restore-stackgraph-backup.sh", "echo restore"),
                ("backup-stackgraph.sh", "echo backup"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
            commands: [
                (
                    Operation::Restore,
                    "restore-stackgraph-backup.sh".to_string(),
                ),
                (Operation::Backup, "backup-stackgraph.sh".to_string()),
            ]
            .into(),
            logging_config_map: Some("suse-observability-stackgraph-log".into()),
            archive_split_size: Some("500M".into()),
            job: JobSettings {
                image: "restore:1".into(),
                wait_image: "wait:1".into(),
                image_pull_secrets: vec![json!("regcred")],
                tolerations: vec![json!({"key": "dedicated", "operator": "Exists"})],
                labels: [("team".to_string(), "obs".to_string())].into(),
                annotations: [("sidecar.istio.io/inject".to_string(), "false".to_string())].into(),
                resources: Some(json!({"limits": {"memory": "4Gi"}})),
                ..JobSettings::default()
            },
            scratch: Scratch::Claim(PvcSettings {
                storage_class_name: Some("fast".into()),
                ..PvcSettings::default()
            }),
            mounts: vec![],
            instances: vec![],
            common_labels: [(
                "app.kubernetes.io/part-of".to_string(),
                "suse-observability".to_string(),
            )]
            .into(),
            ttl_seconds_after_finished: 600,
        }
    }

    fn request() -> JobRequest {
        JobRequest {
            archive: "sts-backup-20261121-0300.graph".into(),
            access_key: "AK".into(),
            secret_key: backup_core::Secret::new("SK"),
            run_id: "20261121t100000".into(),
        }
    }

    #[test]
    fn the_restore_job_follows_the_sts_backup_contract() {
        let m = spec().manifests("sts", Operation::Restore, &request());
        let job = &m.job;
        assert_eq!(
            job["metadata"]["name"],
            "stackgraph-restore-20261121t100000"
        );
        assert_eq!(
            m.volume.as_ref().unwrap()["metadata"]["name"],
            "stackgraph-restore-20261121t100000",
            "the PVC is named after the Job"
        );
        assert_eq!(job["metadata"]["labels"]["team"], "obs");
        let pod_labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(
            (
                &pod_labels["team"],
                &pod_labels["app.kubernetes.io/part-of"]
            ),
            (&json!("obs"), &json!("suse-observability"))
        );
        assert_eq!(
            job["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "suse-observability"
        );
        assert_eq!(
            (
                job["spec"]["backoffLimit"].as_i64(),
                job["spec"]["ttlSecondsAfterFinished"].as_i64()
            ),
            (Some(1), Some(600))
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"],
            "false"
        );
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
        assert_eq!(pod["tolerations"][0]["key"], "dedicated");
        let main = &pod["containers"][0];
        assert_eq!(
            main["command"][0],
            "/backup-restore-scripts/restore-stackgraph-backup.sh"
        );
        assert_eq!(main["resources"]["limits"]["memory"], "4Gi");
        let env = container_env(job);
        assert_eq!(env["BACKUP_FILE"], "sts-backup-20261121-0300.graph");
        assert_eq!(env["FORCE_DELETE"], "-force");
        assert_eq!(env["MINIO_ENDPOINT"], "suse-observability-minio:9000");
        let mounts: BTreeMap<&str, &str> = main["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap(),
                    m["mountPath"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(mounts["minio-keys"], "/aws-keys");
        assert_eq!(mounts["tmp-data"], "/tmp-data");
        assert_eq!(mounts["backup-log"], "/opt/docker/etc_log");
        assert_eq!(
            pod["initContainers"][0]["command"][2],
            "/entrypoint -c suse-observability-minio:9000 -t 300"
        );
        assert_eq!(
            pod["volumes"][2]["persistentVolumeClaim"]["claimName"],
            "stackgraph-restore-20261121t100000"
        );
    }

    #[test]
    fn keys_live_in_the_secret_only() {
        let m = spec().manifests("sts", Operation::Restore, &request());
        assert_eq!(m.keys["stringData"]["secretkey"], "SK");
        for manifest in [&m.job, &m.scripts, m.volume.as_ref().unwrap()] {
            assert!(
                !manifest.to_string().contains("\"SK\""),
                "a key leaked into {manifest}"
            );
        }
        let volume = m.volume.as_ref().unwrap();
        assert_eq!(volume["spec"]["storageClassName"], "fast");
        assert_eq!(volume["spec"]["resources"]["requests"]["storage"], "10Gi");
        assert_eq!(
            m.scripts["data"]["restore-stackgraph-backup.sh"],
            "echo restore"
        );
        assert_eq!(m.scripts["data"]["backup-stackgraph.sh"], "echo backup");
    }

    #[test]
    fn a_backup_job_has_its_own_name_script_and_split_size() {
        let m = spec().manifests("sts", Operation::Backup, &request());
        assert_eq!(
            m.job["metadata"]["name"],
            "stackgraph-backup-20261121t100000"
        );
        assert_eq!(
            m.job["spec"]["template"]["spec"]["containers"][0]["command"][0],
            "/backup-restore-scripts/backup-stackgraph.sh"
        );
        let env = container_env(&m.job);
        assert_eq!(env["ARCHIVE_SPLIT_SIZE"], "500M");
        assert!(!env.contains_key("FORCE_DELETE"));
        assert!(
            !container_env(&spec().manifests("sts", Operation::Restore, &request()).job)
                .contains_key("ARCHIVE_SPLIT_SIZE")
        );
    }
}
