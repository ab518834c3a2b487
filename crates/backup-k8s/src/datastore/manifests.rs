//! The objects of a restore, as manifests: pure functions of the spec and the request.

use super::{DataStoreSpec, Operation};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a Job works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The archive's name (`sts-backup-20261121-0300.graph`): restored, or written.
    pub archive: String,
    /// Overwrite existing data (`FORCE_DELETE=-force`).
    pub force: bool,
    /// Access key for the archive bucket.
    pub access_key: String,
    /// Secret key for the archive bucket.
    pub secret_key: String,
    /// A unique suffix for the Job's name (a timestamp).
    pub run_id: String,
}

/// The four objects of one restore.
#[derive(Debug, Clone, PartialEq)]
pub struct JobManifests {
    /// ConfigMap with the restore script.
    pub script: Value,
    /// Secret with the object store keys.
    pub credentials: Value,
    /// Scratch volume claim.
    pub volume: Value,
    /// The restore Job.
    pub job: Value,
}

impl DataStoreSpec {
    /// Name of the Job of a run.
    pub fn job_name(&self, op: Operation, run_id: &str) -> String {
        format!("{}-{}-{run_id}", self.name, op.noun())
    }

    /// Name of the scratch PVC (one per data store and operation; reused or replaced).
    pub fn volume_name(&self, op: Operation) -> String {
        format!("{}-{}-data", self.name, op.noun())
    }

    fn script_name(&self, op: Operation) -> String {
        format!("{}-{}-script", self.name, op.noun())
    }

    /// Name of the Secret with the object store keys.
    pub fn credentials_name(&self, op: Operation) -> String {
        format!("{}-{}-credentials", self.name, op.noun())
    }

    /// Labels on everything a restore creates: common labels, then ours.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.common_labels.clone();
        labels.insert("app.kubernetes.io/managed-by".into(), "kbackup".into());
        labels.insert(
            "app.kubernetes.io/component".into(),
            format!("{}-restore", self.name),
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

    /// The manifests of a restore run in `namespace`.
    pub fn manifests(&self, namespace: &str, op: Operation, request: &JobRequest) -> JobManifests {
        let none = BTreeMap::new();
        let text = match op {
            Operation::Restore => &self.script,
            Operation::Backup => &self.backup_script,
        };
        let script = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": self.metadata(namespace, &self.script_name(op), &none),
            "data": {"run.sh": text},
        });
        let credentials = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": self.metadata(namespace, &self.credentials_name(op), &none),
            "stringData": {"AWS_ACCESS_KEY_ID": request.access_key, "AWS_SECRET_ACCESS_KEY": request.secret_key},
        });
        let mut volume_spec = json!({"accessModes": self.pvc.access_modes, "resources": {"requests": {"storage": self.pvc.size}}});
        if let Some(class) = &self.pvc.storage_class_name {
            volume_spec["storageClassName"] = json!(class);
        }
        let volume = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": self.metadata(namespace, &self.volume_name(op), &none),
            "spec": volume_spec,
        });
        JobManifests {
            script,
            credentials,
            volume,
            job: self.job_manifest(namespace, op, request),
        }
    }

    fn job_manifest(&self, namespace: &str, op: Operation, request: &JobRequest) -> Value {
        let secret_env = |name: &str| json!({"name": name, "valueFrom": {"secretKeyRef": {"name": self.credentials_name(op), "key": name}}});
        let mut env = vec![
            json!({"name": "BACKUP_FILE", "value": request.archive}),
            json!({"name": "FORCE_DELETE", "value": if request.force { "-force" } else { "" }}),
            json!({"name": "BACKUP_BUCKET_NAME", "value": self.bucket}),
            json!({"name": "BACKUP_S3_PREFIX", "value": self.prefix}),
            json!({"name": "BACKUP_MULTIPART_ARCHIVE", "value": self.multipart.to_string()}),
            json!({"name": "MINIO_ENDPOINT", "value": self.storage_endpoint}),
            secret_env("AWS_ACCESS_KEY_ID"),
            secret_env("AWS_SECRET_ACCESS_KEY"),
        ];
        if let (Operation::Backup, Some(size)) = (op, &self.archive_split_size) {
            env.push(json!({"name": "ARCHIVE_SPLIT_SIZE", "value": size}));
        }
        env.extend(self.env.iter().map(|(k, v)| json!({"name": k, "value": v})));
        let wait_command = self
            .wait_for
            .iter()
            .map(|target| {
                let (host, port) = target.rsplit_once(':').unwrap_or((target, "80"));
                format!("until nc -z {host} {port}; do echo waiting for {target}; sleep 2; done")
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut restore = json!({
            "name": op.noun(),
            "image": self.job.image,
            "command": ["bash", "/scripts/run.sh"],
            "env": env,
            "volumeMounts": [{"name": "scripts", "mountPath": "/scripts"}, {"name": "data", "mountPath": format!("/{}-data", op.noun())}],
        });
        let mut wait = json!({"name": "wait", "image": self.job.wait_image, "command": ["sh", "-c", wait_command]});
        if let Some(resources) = &self.job.resources {
            restore["resources"] = resources.clone();
        }
        if let Some(context) = &self.job.container_security_context {
            restore["securityContext"] = context.clone();
            wait["securityContext"] = context.clone();
        }
        let mut pod_spec = json!({
            "restartPolicy": "Never",
            "initContainers": if self.wait_for.is_empty() { json!([]) } else { json!([wait]) },
            "containers": [restore],
            "volumes": [
                {"name": "scripts", "configMap": {"name": self.script_name(op), "defaultMode": 0o555}},
                {"name": "data", "persistentVolumeClaim": {"claimName": self.volume_name(op)}},
            ],
        });
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
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": self.metadata(namespace, &self.job_name(op, &request.run_id), &self.job.labels),
            "spec": {
                "backoffLimit": 1,
                "ttlSecondsAfterFinished": self.ttl_seconds_after_finished,
                "template": {"metadata": {"labels": self.labels(), "annotations": self.job.annotations}, "spec": pod_spec},
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::stackstate::{JobSettings, PvcSettings};

    pub(crate) fn spec() -> DataStoreSpec {
        DataStoreSpec {
            name: "stackgraph".into(),
            scale_down_selector: "stackstate.com/connects-to-stackgraph=true".into(),
            bucket: "sts-stackgraph-backup".into(),
            prefix: "".into(),
            multipart: true,
            storage_endpoint: "http://suse-observability-minio:9000".into(),
            wait_for: vec![
                "suse-observability-minio:9000".into(),
                "suse-observability-zookeeper:2181".into(),
            ],
            env: [(
                "ZOOKEEPER_QUORUM".to_string(),
                "suse-observability-zookeeper:2181".to_string(),
            )]
            .into(),
            script: "echo restore".into(),
            backup_script: "echo backup".into(),
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
            pvc: PvcSettings {
                storage_class_name: Some("fast".into()),
                ..PvcSettings::default()
            },
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
            force: true,
            access_key: "AK".into(),
            secret_key: "SK".into(),
            run_id: "20261121t100000".into(),
        }
    }

    #[test]
    fn the_job_carries_the_archive_the_endpoints_and_the_pod_settings() {
        let m = spec().manifests("sts", Operation::Restore, &request());
        let job = &m.job;
        assert_eq!(
            job["metadata"]["name"],
            "stackgraph-restore-20261121t100000"
        );
        assert_eq!(job["metadata"]["labels"]["team"], "obs");
        assert_eq!(
            job["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "suse-observability"
        );
        assert_eq!(job["spec"]["backoffLimit"], 1);
        assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 600);
        assert_eq!(
            job["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"],
            "false"
        );
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
        assert_eq!(pod["tolerations"][0]["key"], "dedicated");
        let env: BTreeMap<String, Value> = pod["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
            .collect();
        assert_eq!(
            env["BACKUP_FILE"]["value"],
            "sts-backup-20261121-0300.graph"
        );
        assert_eq!(env["FORCE_DELETE"]["value"], "-force");
        assert_eq!(env["BACKUP_MULTIPART_ARCHIVE"]["value"], "true");
        assert_eq!(
            env["MINIO_ENDPOINT"]["value"],
            "http://suse-observability-minio:9000"
        );
        assert_eq!(
            env["ZOOKEEPER_QUORUM"]["value"],
            "suse-observability-zookeeper:2181"
        );
        assert_eq!(
            env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"],
            "stackgraph-restore-credentials"
        );
        assert_eq!(pod["containers"][0]["resources"]["limits"]["memory"], "4Gi");
        let wait = pod["initContainers"][0]["command"][2].as_str().unwrap();
        assert!(
            wait.contains("nc -z suse-observability-minio 9000")
                && wait.contains("nc -z suse-observability-zookeeper 2181"),
            "{wait}"
        );
        assert_eq!(
            pod["volumes"][1]["persistentVolumeClaim"]["claimName"],
            "stackgraph-restore-data"
        );
    }

    #[test]
    fn keys_live_in_the_secret_only() {
        let m = spec().manifests("sts", Operation::Restore, &request());
        assert_eq!(m.credentials["stringData"]["AWS_SECRET_ACCESS_KEY"], "SK");
        for manifest in [&m.job, &m.script, &m.volume] {
            assert!(
                !manifest.to_string().contains("\"SK\""),
                "a key leaked into {manifest}"
            );
        }
        assert_eq!(m.volume["spec"]["storageClassName"], "fast");
        assert_eq!(m.volume["spec"]["resources"]["requests"]["storage"], "10Gi");
        assert_eq!(m.script["data"]["run.sh"], "echo restore");
    }

    #[test]
    fn a_backup_job_has_its_own_names_script_and_split_size() {
        let m = spec().manifests("sts", Operation::Backup, &request());
        assert_eq!(
            m.job["metadata"]["name"],
            "stackgraph-backup-20261121t100000"
        );
        assert_eq!(m.script["data"]["run.sh"], "echo backup");
        assert_eq!(m.volume["metadata"]["name"], "stackgraph-backup-data");
        let env = m.job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            env.iter()
                .any(|e| e["name"] == "ARCHIVE_SPLIT_SIZE" && e["value"] == "500M")
        );
        let restore = spec().manifests("sts", Operation::Restore, &request());
        let restore_env = restore.job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            !restore_env
                .iter()
                .any(|e| e["name"] == "ARCHIVE_SPLIT_SIZE")
        );
    }

    #[test]
    fn no_force_no_flag() {
        let m = spec().manifests(
            "sts",
            Operation::Restore,
            &JobRequest {
                force: false,
                ..request()
            },
        );
        let env = m.job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            env.iter()
                .any(|e| e["name"] == "FORCE_DELETE" && e["value"] == "")
        );
    }
}
