//! Starting a Job with the objects only it uses (its credentials, its scratch volume): the
//! Job is created suspended, each object is created owned by it, then the Job runs. Whoever
//! deletes the Job afterwards (kbackup, `sts-backup`, its TTL, a person), Kubernetes deletes
//! its objects with it: nothing a run made outlives its Job.

use crate::ClusterError;
use crate::cluster::{JobControl, ObjectRef, ResourceStore};
use serde_json::{Value, json};

/// Creates the Job `job` (a manifest) suspended in `namespace`, then each of `owned` with an
/// owner reference to it, then lets it run. When a step after the Job's creation fails, the
/// Job is deleted (and what it owns with it) before that error is returned; should the
/// deletion fail too, the Job stays suspended, to be removed by the caller's cleanup or
/// finalize.
pub async fn launch_job<C: ResourceStore + JobControl + ?Sized>(
    cluster: &C,
    namespace: &str,
    job: &Value,
    owned: &[&Value],
) -> Result<(), ClusterError> {
    let name = job["metadata"]["name"].as_str().unwrap_or_default();
    let mut suspended = job.clone();
    suspended["spec"]["suspend"] = json!(true);
    cluster.create_job(namespace, &suspended).await?;
    let started = async {
        let reference = ObjectRef::namespaced("batch/v1", "Job", namespace, name);
        let uid = match cluster.get(&reference).await? {
            Some(created) => created["metadata"]["uid"].clone(),
            None => return Err(ClusterError::NotFound(format!("Job {namespace}/{name}"))),
        };
        for object in owned {
            let mut object = (*object).clone();
            object["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": uid,
                "blockOwnerDeletion": false,
            }]);
            cluster.create(&object).await?;
        }
        let resume = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"suspend": false},
        });
        cluster.apply(&resume, true).await.map(drop)
    }
    .await;
    if started.is_err() {
        cluster.delete_job(namespace, name).await.ok();
    }
    started
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeCluster;

    fn job() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "restore-1", "namespace": "ns"}, "spec": {}})
    }

    fn secret() -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "restore-1-keys", "namespace": "ns"}})
    }

    #[tokio::test]
    async fn the_objects_are_owned_by_the_job_and_go_with_it() {
        let cluster = FakeCluster::new();
        launch_job(&cluster, "ns", &job(), &[&secret()])
            .await
            .unwrap();
        let job = cluster.object("Job", Some("ns"), "restore-1").unwrap();
        let keys = cluster
            .object("Secret", Some("ns"), "restore-1-keys")
            .unwrap();
        assert_eq!(
            keys["metadata"]["ownerReferences"][0]["uid"],
            job["metadata"]["uid"]
        );
        assert_eq!(job["spec"]["suspend"], json!(false));
        cluster.delete_job("ns", "restore-1").await.unwrap();
        assert!(
            cluster
                .object("Secret", Some("ns"), "restore-1-keys")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_job_whose_objects_cannot_be_made_is_deleted() {
        let cluster = FakeCluster::new();
        cluster.fail_calls(&["create Secret/restore-1-keys"]);
        let failed = launch_job(&cluster, "ns", &job(), &[&secret()]).await;
        assert!(matches!(failed, Err(ClusterError::Forbidden(_))));
        assert_eq!(cluster.job_state("ns", "restore-1").await.unwrap(), None);
    }
}
