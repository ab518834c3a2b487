//! What deleting a Repository or Snapshot object does to the data it names, by its
//! `deletionPolicy`. With `WipeOut` a finalizer holds the object until the data is gone: a
//! Repository's every object in its directory of the storage, a Snapshot's snapshot in its
//! repository (its data freed by the next prune). With `Delete` (the default) no finalizer
//! is put on: the object goes and the data stays, operator running or not. The data of a
//! local storage is deleted by a Job that mounts its claim (`storage rm`).

use super::claim_job::{ClaimJob, ClaimJobStep};
use super::objects::owned_by;
use super::plan::read;
use super::reconcile::OperatorSettings;
use crate::storage_removal::{delete_all, delete_keys};
use crate::storage_resource::{StorageAccess, relative_directory, storage_access};
use backup_api::{API_VERSION, BackupStorage, DeletionPolicy, Repository, Snapshot};
use backup_core::cluster::{ConfigObjects, JobControl, ObjectRef, ResourceStore};
use backup_core::{ClusterError, ObjectStorage, RepositoryLocation, SnapshotId, StorageError};
use serde_json::{Value, json};
use std::sync::Arc;

/// The finalizer that holds a `WipeOut` object until its data is deleted.
pub const FINALIZER: &str = "kbackup.io/wipe-out";

/// What a reconcile of an object's deletion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionStep {
    /// Nothing to do.
    Nothing,
    /// The finalizer was put on (the policy is `WipeOut`).
    Guarded,
    /// The finalizer was taken off: the policy is `Delete` again, or the data was deleted.
    Released,
    /// The data was deleted (so many storage objects; unknown when a Job did it), then the
    /// finalizer taken off.
    Wiped(Option<usize>),
    /// A Job that mounts the storage's claim is deleting the data; the object stays held.
    Wiping,
    /// Being deleted with `WipeOut`, but there is no data to delete: why.
    NothingToWipe(String),
}

/// Why the data of an object being deleted could not be deleted; the object stays until it
/// is (or until its finalizer is removed by hand).
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// Reading or writing objects failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The storage refused.
    #[error("deleting the data of {object}: {error}")]
    Storage {
        /// `Repository ns/name`.
        object: String,
        /// What it said.
        error: StorageError,
    },
    /// Where the data is cannot be known.
    #[error("deleting the data of {object}: {why}")]
    Unresolved {
        /// `Repository ns/name`.
        object: String,
        /// Why.
        why: String,
    },
}

/// Reconciles the deletion of the Repository or Snapshot (`kind`) `namespace/name`.
pub async fn reconcile_deletion<C: ResourceStore + ConfigObjects + JobControl + ?Sized>(
    cluster: &C,
    kind: &str,
    namespace: &str,
    name: &str,
    settings: &OperatorSettings,
) -> Result<DeletionStep, DeletionError> {
    let reference = ObjectRef::namespaced(API_VERSION, kind, namespace, name);
    let Some(object) = cluster.get(&reference).await? else {
        return Ok(DeletionStep::Nothing);
    };
    let policy: DeletionPolicy =
        serde_json::from_value(object["spec"]["deletionPolicy"].clone()).unwrap_or_default();
    let wipe_out = policy == DeletionPolicy::WipeOut;
    let guarded = finalizers(&object).iter().any(|f| f == FINALIZER);
    let deleting = !object["metadata"]["deletionTimestamp"].is_null();
    match (deleting, wipe_out, guarded) {
        (false, true, false) => {
            set_guard(cluster, object, true).await?;
            Ok(DeletionStep::Guarded)
        }
        (_, false, true) => {
            set_guard(cluster, object, false).await?;
            Ok(DeletionStep::Released)
        }
        (true, true, true) => {
            let doomed = Doomed {
                what: format!("{kind} {namespace}/{name}"),
                kind,
                object: &object,
                settings,
            };
            let step = match kind {
                "Repository" => wipe_repository(cluster, &doomed).await?,
                _ => wipe_snapshot(cluster, &doomed).await?,
            };
            if step != DeletionStep::Wiping {
                set_guard(cluster, object, false).await?;
            }
            Ok(step)
        }
        _ => Ok(DeletionStep::Nothing),
    }
}

fn finalizers(object: &Value) -> Vec<String> {
    serde_json::from_value(object["metadata"]["finalizers"].clone()).unwrap_or_default()
}

/// Puts the finalizer on, or takes it off.
async fn set_guard<C: ResourceStore + ?Sized>(
    cluster: &C,
    mut object: Value,
    on: bool,
) -> Result<(), ClusterError> {
    let mut list: Vec<String> = finalizers(&object)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    if on {
        list.push(FINALIZER.to_owned());
    }
    object["metadata"]["finalizers"] = json!(list);
    cluster.replace(&object).await?;
    Ok(())
}

/// An object being deleted whose data goes with it.
struct Doomed<'a> {
    /// `Repository ns/name`.
    what: String,
    /// Its kind.
    kind: &'a str,
    /// It, as read.
    object: &'a Value,
    /// The image and placement of a wipe-out Job.
    settings: &'a OperatorSettings,
}

impl Doomed<'_> {
    fn unresolved(&self, why: String) -> DeletionError {
        DeletionError::Unresolved {
            object: self.what.clone(),
            why,
        }
    }

    fn refused(&self, error: StorageError) -> DeletionError {
        DeletionError::Storage {
            object: self.what.clone(),
            error,
        }
    }
}

/// Where a repository's data is.
enum DataPlace {
    /// In an object store, opened.
    Opened(Arc<dyn ObjectStorage>),
    /// In a claim, which only a pod of `namespace` mounting it reaches, at `url`.
    Claim {
        namespace: String,
        claim: String,
        url: String,
    },
}

/// Deletes every object of the repository's directory.
async fn wipe_repository<C: ResourceStore + ConfigObjects + JobControl + ?Sized>(
    cluster: &C,
    doomed: &Doomed<'_>,
) -> Result<DeletionStep, DeletionError> {
    let repository: Repository = serde_json::from_value(doomed.object.clone())
        .map_err(|e| doomed.unresolved(e.to_string()))?;
    wipe(cluster, doomed, &repository, None).await
}

/// Deletes the snapshot of a Snapshot object from its repository.
async fn wipe_snapshot<C: ResourceStore + ConfigObjects + JobControl + ?Sized>(
    cluster: &C,
    doomed: &Doomed<'_>,
) -> Result<DeletionStep, DeletionError> {
    let snapshot: Snapshot = serde_json::from_value(doomed.object.clone())
        .map_err(|e| doomed.unresolved(e.to_string()))?;
    let Some(id) = snapshot.spec.snapshot_id.as_deref() else {
        return Ok(DeletionStep::NothingToWipe(
            "no snapshot was written".into(),
        ));
    };
    let id = match SnapshotId::parse(id) {
        Ok(id) if id.as_str().len() == 64 => id,
        _ => {
            return Ok(DeletionStep::NothingToWipe(format!(
                "{id} is not a snapshot of a kbackup repository"
            )));
        }
    };
    let namespace = doomed.object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let reference = ObjectRef::namespaced(
        API_VERSION,
        "Repository",
        namespace,
        &snapshot.spec.repository,
    );
    let Some(repository) = cluster.get(&reference).await? else {
        return Ok(DeletionStep::NothingToWipe(format!(
            "Repository {namespace}/{} is gone",
            snapshot.spec.repository
        )));
    };
    let repository: Repository =
        serde_json::from_value(repository).map_err(|e| doomed.unresolved(e.to_string()))?;
    wipe(
        cluster,
        doomed,
        &repository,
        Some(format!("snapshots/{id}")),
    )
    .await
}

/// Deletes `key` of the repository, or all of it when `None`: here for an object store, by
/// a Job mounting the claim for a local storage.
async fn wipe<C: ResourceStore + ConfigObjects + JobControl + ?Sized>(
    cluster: &C,
    doomed: &Doomed<'_>,
    repository: &Repository,
    key: Option<String>,
) -> Result<DeletionStep, DeletionError> {
    match repository_place(cluster, repository, doomed).await? {
        DataPlace::Opened(storage) => {
            let deleted = match key {
                Some(key) => delete_keys(storage.as_ref(), &[key]).await,
                None => delete_all(storage.as_ref()).await,
            };
            Ok(DeletionStep::Wiped(Some(
                deleted.map_err(|e| doomed.refused(e))?,
            )))
        }
        DataPlace::Claim {
            namespace,
            claim,
            url,
        } => {
            let what = key.unwrap_or_else(|| "-r".into());
            wipe_in_claim(cluster, doomed, namespace, claim, vec![url, what]).await
        }
    }
}

/// Runs `kbackup storage rm -y ARGS` in a Job mounting `claim` (in `namespace`, owned by the
/// doomed object when it is of that namespace): Wiping while it runs, Wiped once it did,
/// an error naming its last words when it failed (the next reconcile starts it again).
async fn wipe_in_claim<C: ResourceStore + JobControl + ?Sized>(
    cluster: &C,
    doomed: &Doomed<'_>,
    namespace: String,
    claim: String,
    args: Vec<String>,
) -> Result<DeletionStep, DeletionError> {
    let metadata = &doomed.object["metadata"];
    let name = metadata["name"].as_str().unwrap_or_default();
    let same_namespace = metadata["namespace"].as_str() == Some(namespace.as_str());
    let owner = same_namespace.then(|| {
        owned_by(
            doomed.kind,
            name,
            metadata["uid"].as_str().unwrap_or_default(),
        )
    });
    let job = ClaimJob {
        name: ClaimJob::name_for(
            "wipe",
            &format!(
                "{}-{}-{name}",
                doomed.kind.to_lowercase(),
                metadata["namespace"].as_str().unwrap_or_default()
            ),
        ),
        namespace,
        claim,
        image: doomed.settings.image.clone(),
        args: ["storage", "rm", "-y"]
            .into_iter()
            .map(str::to_owned)
            .chain(args)
            .collect(),
        owner,
        placement: doomed.settings.placement.clone(),
    };
    match job.step(cluster).await? {
        ClaimJobStep::Running => Ok(DeletionStep::Wiping),
        ClaimJobStep::Ended(end) if end.succeeded => Ok(DeletionStep::Wiped(None)),
        ClaimJobStep::Ended(end) => {
            Err(doomed.unresolved(format!("the wipe-out Job failed: {}", end.last_words())))
        }
    }
}

/// Where the repository's directory is: opened with its storage's credentials, or in a claim.
async fn repository_place<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    repository: &Repository,
    doomed: &Doomed<'_>,
) -> Result<DataPlace, DeletionError> {
    let namespace = repository.metadata.namespace.clone().unwrap_or_default();
    let storage_ref = &repository.spec.storage_ref;
    let storage_namespace = storage_ref.namespace_or(&namespace);
    let storage: BackupStorage = read(
        cluster,
        "BackupStorage",
        &storage_namespace,
        &storage_ref.name,
    )
    .await
    .map_err(|e| doomed.unresolved(e.message))?;
    let directory = relative_directory(&repository.spec.directory).ok_or_else(|| {
        doomed.unresolved(format!(
            "directory {:?} is not a relative path below the storage",
            repository.spec.directory
        ))
    })?;
    let StorageAccess {
        url,
        options,
        claim,
    } = storage_access(cluster, &storage_namespace, &storage.spec)
        .await
        .map_err(|(_, message)| doomed.unresolved(message))?;
    if let Some(claim) = claim {
        return Ok(DataPlace::Claim {
            namespace: storage_namespace,
            claim,
            url: format!("{}/{directory}", url.trim_end_matches('/')),
        });
    }
    let location = RepositoryLocation::parse(&url)
        .map_err(|e| doomed.unresolved(e.to_string()))?
        .join(&directory);
    backup_storage::open(&location, &options)
        .await
        .map(DataPlace::Opened)
        .map_err(|e| doomed.refused(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;

    fn repository(policy: &str, finalizers: Value, deleting: bool) -> Value {
        let mut object = json!({"apiVersion": API_VERSION, "kind": "Repository",
            "metadata": {"name": "apps", "namespace": "web", "finalizers": finalizers},
            "spec": {"storageRef": {"name": "gone"}, "directory": "apps",
                "encryptionSecret": {"name": "password"}, "deletionPolicy": policy}});
        if deleting {
            object["metadata"]["deletionTimestamp"] = json!("2026-12-01T10:00:00Z");
        }
        object
    }

    fn settings() -> OperatorSettings {
        OperatorSettings {
            image: "kbackup:test".into(),
            placement: Default::default(),
            http: None,
        }
    }

    async fn step(cluster: &FakeCluster) -> Result<DeletionStep, DeletionError> {
        reconcile_deletion(cluster, "Repository", "web", "apps", &settings()).await
    }

    fn held(cluster: &FakeCluster) -> Vec<String> {
        finalizers(&cluster.object("Repository", Some("web"), "apps").unwrap())
    }

    #[tokio::test]
    async fn only_a_wipe_out_object_is_held_and_its_other_finalizers_stay() {
        let cluster = FakeCluster::new();
        cluster.insert(&repository("WipeOut", json!(["someone/else"]), false));
        assert_eq!(step(&cluster).await.unwrap(), DeletionStep::Guarded);
        assert_eq!(held(&cluster), ["someone/else", FINALIZER]);
        assert_eq!(step(&cluster).await.unwrap(), DeletionStep::Nothing);

        let mut object = cluster.object("Repository", Some("web"), "apps").unwrap();
        object["spec"]["deletionPolicy"] = json!("Delete");
        cluster.insert(&object);
        assert_eq!(step(&cluster).await.unwrap(), DeletionStep::Released);
        assert_eq!(held(&cluster), ["someone/else"]);
    }

    #[tokio::test]
    async fn a_wipe_out_whose_storage_cannot_be_found_keeps_the_object_and_says_why() {
        let cluster = FakeCluster::new();
        cluster.insert(&repository("WipeOut", json!([FINALIZER]), true));
        let error = step(&cluster).await.unwrap_err().to_string();
        assert!(
            error.contains("BackupStorage web/gone not found"),
            "{error}"
        );
        assert_eq!(held(&cluster), [FINALIZER], "held until the data is gone");
    }

    #[test]
    fn a_directory_leaving_its_storage_is_never_wiped() {
        for bad in ["", "/", "..", "a/../b", "a//b", "./a", "a/."] {
            assert_eq!(relative_directory(bad), None, "{bad:?}");
        }
        assert_eq!(
            relative_directory("/team/apps/").as_deref(),
            Some("team/apps")
        );
    }

    #[tokio::test]
    async fn a_repository_in_a_claim_is_wiped_by_a_job_mounting_it_and_held_until_it_succeeded() {
        let cluster = FakeCluster::new();
        let mut object = repository("WipeOut", json!([FINALIZER]), true);
        object["spec"]["storageRef"] = json!({"name": "nfs"});
        cluster.insert(&object);
        let uid =
            cluster.object("Repository", Some("web"), "apps").unwrap()["metadata"]["uid"].clone();
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "BackupStorage",
            "metadata": {"name": "nfs", "namespace": "web"},
            "spec": {"storage": {"provider": "local",
                "local": {"claimName": "backups", "subPath": "team"}}}}));
        assert_eq!(step(&cluster).await.unwrap(), DeletionStep::Wiping);
        assert_eq!(held(&cluster), [FINALIZER], "held while the Job runs");
        let name = "kbackup-wipe-repository-web-apps";
        let mut job = cluster.object("Job", Some("web"), name).expect("the Job");
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["args"],
            json!([
                "storage",
                "rm",
                "-y",
                "file:///kbackup/storage/team/apps",
                "-r"
            ])
        );
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], uid);
        assert_eq!(step(&cluster).await.unwrap(), DeletionStep::Wiping, "runs");

        job["status"] = json!({"conditions": [{"type": "Failed", "status": "True",
            "reason": "DeadlineExceeded"}]});
        cluster.insert(&job);
        let error = step(&cluster).await.unwrap_err().to_string();
        assert!(
            error.contains("the wipe-out Job failed: DeadlineExceeded"),
            "{error}"
        );
        assert_eq!(held(&cluster), [FINALIZER], "held after a failure");

        assert_eq!(step(&cluster).await.unwrap(), DeletionStep::Wiping, "again");
        let mut job = cluster.object("Job", Some("web"), name).unwrap();
        job["status"] = json!({"conditions": [{"type": "Complete", "status": "True"}]});
        cluster.insert(&job);
        assert_eq!(step(&cluster).await.unwrap(), DeletionStep::Wiped(None));
        assert_eq!(held(&cluster), Vec::<String>::new(), "released");
    }
}
