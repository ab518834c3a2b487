//! A Job of the kbackup image that mounts a local storage's claim, for the work the operator
//! cannot do from its own pod on such a storage: the probe (`storage check`) and the
//! wipe-out (`storage rm`). One Job per purpose and object, under a name that is the same on
//! every reconcile: started when absent, read once it ended, then deleted.

use super::job_end::{JobEnd, JobProgress, job_progress};
use super::objects::{managed, mount_storage_claim, object_name, pod_template};
use super::reconcile::JobPlacement;
use backup_core::ClusterError;
use backup_core::cluster::{JobControl, ResourceStore};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The container of a claim Job.
pub const CLAIM_CONTAINER: &str = "storage";
/// How long a claim Job may run (scheduling and mounting included).
const DEADLINE_SECONDS: u64 = 300;

/// A Job that runs the kbackup image with `args`, the claim mounted at [`CLAIM_MOUNT`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimJob {
    /// Its name.
    pub name: String,
    /// Its namespace (the claim's).
    pub namespace: String,
    /// The claim.
    pub claim: String,
    /// The kbackup image.
    pub image: String,
    /// What it runs (`storage check file:///kbackup/storage`).
    pub args: Vec<String>,
    /// The owner reference of the object it works for (none when that object is of
    /// another namespace).
    pub owner: Option<Value>,
    /// Where its pod goes.
    pub placement: JobPlacement,
}

/// What a step of a claim Job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimJobStep {
    /// It was started, or runs: its end will wake the owner's controller.
    Running,
    /// It ended (and was deleted): how.
    Ended(JobEnd),
}

impl ClaimJob {
    /// A Job named `<purpose>-<object>`, at most 63 characters.
    pub fn name_for(purpose: &str, object: &str) -> String {
        object_name(&["kbackup", purpose, object], 63)
    }

    /// The Job, its pod root with every capability dropped, as a session Job mounting the
    /// claim is.
    pub fn manifest(&self) -> Value {
        let labels = managed(BTreeMap::from([(
            "app.kubernetes.io/name",
            "kbackup-storage".to_owned(),
        )]));
        // It needs no account: it works on the claim only.
        let mut template = pod_template(
            &labels,
            "default",
            json!({
                "name": CLAIM_CONTAINER,
                "image": self.image,
                "args": self.args,
                "env": [{"name": "KBACKUP_NO_PROGRESS", "value": "1"}],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "resources": {
                    "requests": {"memory": "64Mi", "cpu": "50m"},
                    "limits": {"memory": "256Mi"},
                },
            }),
        );
        let pod_spec = &mut template["spec"];
        pod_spec["automountServiceAccountToken"] = json!(false);
        pod_spec["terminationGracePeriodSeconds"] = json!(5);
        mount_storage_claim(pod_spec, &self.claim);
        self.placement.apply_to(pod_spec);
        let mut metadata =
            json!({"name": self.name, "namespace": self.namespace, "labels": labels});
        if let Some(owner) = &self.owner {
            metadata["ownerReferences"] = json!([owner]);
        }
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": DEADLINE_SECONDS,
                "template": template,
            },
        })
    }

    /// Starts the Job when there is none, says it runs while it does, and once it ended
    /// deletes it and says how it ended.
    pub async fn step<C: ResourceStore + JobControl + ?Sized>(
        &self,
        cluster: &C,
    ) -> Result<ClaimJobStep, ClusterError> {
        match job_progress(cluster, &self.namespace, &self.name, CLAIM_CONTAINER).await? {
            JobProgress::Gone => {
                match cluster.create_job(&self.namespace, &self.manifest()).await {
                    Ok(()) | Err(ClusterError::Conflict(_)) => Ok(ClaimJobStep::Running),
                    Err(error) => Err(error),
                }
            }
            JobProgress::Running => Ok(ClaimJobStep::Running),
            JobProgress::Ended(end) => {
                cluster.delete_job(&self.namespace, &self.name).await?;
                Ok(ClaimJobStep::Ended(end))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage_resource::CLAIM_MOUNT;
    use backup_core::testing::FakeCluster;

    fn probe() -> ClaimJob {
        ClaimJob {
            name: ClaimJob::name_for("probe", "nfs"),
            namespace: "ops".into(),
            claim: "backups".into(),
            image: "kbackup:test".into(),
            args: vec![
                "storage".into(),
                "check".into(),
                "file:///kbackup/storage".into(),
            ],
            owner: Some(json!({"kind": "BackupStorage", "name": "nfs", "uid": "u1"})),
            placement: JobPlacement::default(),
        }
    }

    #[test]
    fn the_job_mounts_the_claim_and_runs_its_args_without_capabilities() {
        let job = probe().manifest();
        assert_eq!(job["metadata"]["name"], "kbackup-probe-nfs");
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "u1");
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "backups"
        );
        let container = &pod["containers"][0];
        assert_eq!(container["volumeMounts"][0]["mountPath"], CLAIM_MOUNT);
        assert_eq!(container["args"][2], "file:///kbackup/storage");
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"][0],
            "ALL"
        );
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert!(
            container["env"]
                .to_string()
                .contains(r#"{"name":"HOME","value":"/tmp"}"#),
            "a home root can read: {container}"
        );
        assert!(
            job["spec"]["activeDeadlineSeconds"].as_u64().is_some(),
            "a Job stuck pending ends"
        );
    }

    #[tokio::test]
    async fn a_claim_job_is_started_once_and_deleted_once_read() {
        let cluster = FakeCluster::new();
        let job = probe();
        assert_eq!(job.step(&cluster).await.unwrap(), ClaimJobStep::Running);
        assert_eq!(job.step(&cluster).await.unwrap(), ClaimJobStep::Running);
        let mut ended = cluster
            .get(&backup_core::cluster::ObjectRef::namespaced(
                "batch/v1", "Job", "ops", &job.name,
            ))
            .await
            .unwrap()
            .expect("one Job");
        ended["status"] = json!({"conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});
        cluster.insert(&ended);
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ops", "labels": {"job-name": job.name}},
            "status": {"containerStatuses": [{"name": CLAIM_CONTAINER, "state": {"terminated":
                {"message": "STEP RESULT\nError: file:///kbackup/storage is not usable: write failed: permission denied\n"}}}]}}));
        let ClaimJobStep::Ended(end) = job.step(&cluster).await.unwrap() else {
            panic!("it ended")
        };
        assert!(!end.succeeded);
        assert_eq!(
            end.last_words(),
            "Error: file:///kbackup/storage is not usable: write failed: permission denied"
        );
        assert_eq!(
            cluster.job_state("ops", &job.name).await.unwrap(),
            None,
            "deleted once read"
        );
    }
}
