//! What deleting a Repository or Snapshot object does to the data it names, by its
//! `deletionPolicy`. With `WipeOut` a finalizer holds the object until the data is gone: a
//! Repository's every object in its directory of the storage, a Snapshot's snapshot in its
//! repository (its data freed by the next prune). With `Delete` (the default) no finalizer
//! is put on: the object goes and the data stays, operator running or not.

use super::plan::read;
use crate::storage_resource::storage_access;
use backup_api::{API_VERSION, BackupStorage, DeletionPolicy, Repository, Snapshot};
use backup_core::cluster::{ConfigObjects, ObjectRef, ResourceStore};
use backup_core::{ClusterError, ObjectStorage, RepositoryLocation, SnapshotId, StorageError};
use futures::TryStreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The finalizer that holds a `WipeOut` object until its data is deleted.
pub const FINALIZER: &str = "kbackup.io/wipe-out";
/// Objects deleted at once when a repository is wiped out.
const DELETES_AT_ONCE: usize = 16;

/// What a reconcile of an object's deletion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionStep {
    /// Nothing to do.
    Nothing,
    /// The finalizer was put on (the policy is `WipeOut`).
    Guarded,
    /// The finalizer was taken off: the policy is `Delete` again, or the data was deleted.
    Released,
    /// The data was deleted (so many storage objects), then the finalizer taken off.
    Wiped(usize),
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
pub async fn reconcile_deletion<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    kind: &str,
    namespace: &str,
    name: &str,
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
            let what = format!("{kind} {namespace}/{name}");
            let step = match kind {
                "Repository" => wipe_repository(cluster, &object, &what).await?,
                _ => wipe_snapshot(cluster, &object, &what).await?,
            };
            set_guard(cluster, object, false).await?;
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

/// Deletes every object of the repository's directory.
async fn wipe_repository<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    object: &Value,
    what: &str,
) -> Result<DeletionStep, DeletionError> {
    let repository: Repository =
        serde_json::from_value(object.clone()).map_err(|e| DeletionError::Unresolved {
            object: what.to_owned(),
            why: e.to_string(),
        })?;
    let storage = repository_storage(cluster, &repository, what).await?;
    let deleted = delete_all(storage.as_ref())
        .await
        .map_err(|error| DeletionError::Storage {
            object: what.to_owned(),
            error,
        })?;
    Ok(DeletionStep::Wiped(deleted))
}

/// Deletes the snapshot of a Snapshot object from its repository.
async fn wipe_snapshot<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    object: &Value,
    what: &str,
) -> Result<DeletionStep, DeletionError> {
    let unresolved = |why: String| DeletionError::Unresolved {
        object: what.to_owned(),
        why,
    };
    let snapshot: Snapshot =
        serde_json::from_value(object.clone()).map_err(|e| unresolved(e.to_string()))?;
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
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
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
        serde_json::from_value(repository).map_err(|e| unresolved(e.to_string()))?;
    let storage = repository_storage(cluster, &repository, what).await?;
    storage
        .delete(&format!("snapshots/{id}"))
        .await
        .map_err(|error| DeletionError::Storage {
            object: what.to_owned(),
            error,
        })?;
    Ok(DeletionStep::Wiped(1))
}

/// The repository's directory in its storage, opened with the storage's credentials.
async fn repository_storage<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    repository: &Repository,
    what: &str,
) -> Result<Arc<dyn ObjectStorage>, DeletionError> {
    let unresolved = |why: String| DeletionError::Unresolved {
        object: what.to_owned(),
        why,
    };
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
    .map_err(|e| unresolved(e.message))?;
    let directory = safe_directory(&repository.spec.directory).ok_or_else(|| {
        unresolved(format!(
            "directory {:?} is not a relative path below the storage",
            repository.spec.directory
        ))
    })?;
    let (url, options) = storage_access(cluster, &storage_namespace, &storage.spec)
        .await
        .map_err(|(_, message)| unresolved(message))?;
    let location = RepositoryLocation::parse(&url)
        .map_err(|e| unresolved(e.to_string()))?
        .join(&directory);
    backup_storage::open(&location, &options)
        .await
        .map_err(|error| DeletionError::Storage {
            object: what.to_owned(),
            error,
        })
}

/// `directory` without outer slashes when it stays below its storage's root (no empty, `.`
/// or `..` part): the schema says so, a wipe checks again.
fn safe_directory(directory: &str) -> Option<String> {
    let trimmed = directory.trim_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    let safe = !trimmed.is_empty()
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != "..");
    safe.then(|| trimmed.to_owned())
}

/// Deletes every object below `storage` as the listing streams them, [`DELETES_AT_ONCE`] at
/// a time: how many.
async fn delete_all(storage: &dyn ObjectStorage) -> Result<usize, StorageError> {
    let deleted = AtomicUsize::new(0);
    storage
        .list("")
        .try_for_each_concurrent(DELETES_AT_ONCE, |meta| {
            let deleted = &deleted;
            async move {
                storage.delete(&meta.key).await?;
                deleted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
    Ok(deleted.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::ObjectStorageExt;
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

    async fn step(cluster: &FakeCluster) -> Result<DeletionStep, DeletionError> {
        reconcile_deletion(cluster, "Repository", "web", "apps").await
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
            assert_eq!(safe_directory(bad), None, "{bad:?}");
        }
        assert_eq!(safe_directory("/team/apps/").as_deref(), Some("team/apps"));
    }

    #[tokio::test]
    async fn every_object_of_the_directory_is_deleted() {
        let location = RepositoryLocation::parse("memory://apps").unwrap();
        let storage = backup_storage::open(&location, &Default::default())
            .await
            .unwrap();
        for key in ["config", "data/ab/1", "snapshots/1"] {
            storage
                .put_bytes(key, bytes::Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        assert_eq!(delete_all(storage.as_ref()).await.unwrap(), 3);
        assert!(storage.list_all("").await.unwrap().is_empty());
    }
}
