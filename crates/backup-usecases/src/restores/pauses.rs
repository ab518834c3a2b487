//! The backups paused while a restore runs: the BackupConfigurations of the namespace the
//! restore writes whose target is that namespace or the restored workload (a backup taken
//! half way would keep a half-restored application). Each is marked with the RestoreSession
//! that paused it, so that only those are resumed, and resuming twice changes nothing.

use crate::sessions::reconcile::{kind_type, list_all};
use backup_api::{BackupConfiguration, TypedObjectRef};
use backup_core::ClusterError;
use backup_core::cluster::ResourceStore;
use serde_json::{Value, json};

/// The annotation naming the RestoreSession (`namespace/name`) that paused a configuration.
pub const PAUSED_BY: &str = "kbackup.io/paused-by-restore";

/// Pauses the configurations of `namespace` that back up `target` or the namespace itself
/// for the restore `by` (`namespace/name`); those already paused by someone else are left
/// alone (they are not this restore's to resume). The configurations this restore paused.
pub async fn pause_backups<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    target: &TypedObjectRef,
    by: &str,
) -> Result<Vec<TypedObjectRef>, ClusterError> {
    let mut paused = Vec::new();
    for mut object in configurations(cluster, namespace).await? {
        let Ok(configuration) = serde_json::from_value::<BackupConfiguration>(object.clone())
        else {
            continue;
        };
        if !backs_up(&configuration, namespace, target) {
            continue;
        }
        let ours = object["metadata"]["annotations"][PAUSED_BY] == by;
        if configuration.spec.paused && !ours {
            continue;
        }
        if !ours {
            object["spec"]["paused"] = json!(true);
            object["metadata"]["annotations"][PAUSED_BY] = json!(by);
            cluster.replace(&object).await?;
        }
        paused.push(reference(&object));
    }
    Ok(paused)
}

/// Resumes the configurations of `namespace` the restore `by` paused; the names resumed.
pub async fn resume_backups<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    by: &str,
) -> Result<Vec<String>, ClusterError> {
    let mut resumed = Vec::new();
    for mut object in configurations(cluster, namespace).await? {
        if object["metadata"]["annotations"][PAUSED_BY] != by {
            continue;
        }
        object["spec"]["paused"] = json!(false);
        if let Some(annotations) = object["metadata"]["annotations"].as_object_mut() {
            annotations.remove(PAUSED_BY);
        }
        cluster.replace(&object).await?;
        resumed.push(reference(&object).name);
    }
    Ok(resumed)
}

async fn configurations<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
) -> Result<Vec<Value>, ClusterError> {
    let kind = kind_type("BackupConfiguration", "backupconfigurations");
    list_all(cluster, &kind, Some(namespace), None).await
}

/// Whether `configuration` (in `namespace`) backs up the namespace or the target workload.
fn backs_up(configuration: &BackupConfiguration, namespace: &str, target: &TypedObjectRef) -> bool {
    let backed = &configuration.spec.target;
    match backed.kind.as_str() {
        "Namespace" => backed.name == namespace,
        kind => {
            kind == target.kind
                && backed.name == target.name
                && backed.namespace.as_deref().unwrap_or(namespace) == namespace
        }
    }
}

fn reference(object: &Value) -> TypedObjectRef {
    TypedObjectRef {
        api_group: backup_api::GROUP.into(),
        kind: "BackupConfiguration".into(),
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .into(),
        namespace: object["metadata"]["namespace"].as_str().map(str::to_owned),
    }
}
