//! A BackupSession made on demand, as a schedule's CronJob makes one: for a session of a
//! BackupConfiguration, refused while the configuration is paused.

use crate::sessions::objects::{CONFIGURATION, SESSION};
use backup_api::{
    API_VERSION, BackupConfiguration, BackupSession, BackupSessionSpec, ObjectRef as ApiRef,
};
use backup_core::ClusterError;
use backup_core::cluster::{ObjectRef, ResourceStore};

/// Why no session was made.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// No such configuration.
    #[error("BackupConfiguration {namespace}/{name} not found")]
    NotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The configuration cannot be read as one.
    #[error("BackupConfiguration {name} cannot be read: {reason}")]
    Unreadable {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
    /// It is paused.
    #[error("BackupConfiguration {name} is paused: no session starts until it is resumed")]
    Paused {
        /// Its name.
        name: String,
    },
    /// It has no session of that name (or several, and none was named).
    #[error("BackupConfiguration {name} has sessions {}: name one of them", sessions.join(", "))]
    NoSuchSession {
        /// Its name.
        name: String,
        /// The sessions it has.
        sessions: Vec<String>,
    },
}

/// Creates a BackupSession of `session` (default: the only one) of the configuration `name`
/// in `namespace`; its name (`<configuration>-<session>-<unix seconds>`).
pub async fn trigger_session<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    session: Option<&str>,
) -> Result<String, TriggerError> {
    let object = cluster
        .get(&ObjectRef::namespaced(
            API_VERSION,
            "BackupConfiguration",
            namespace,
            name,
        ))
        .await?
        .ok_or_else(|| TriggerError::NotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    let configuration: BackupConfiguration =
        serde_json::from_value(object).map_err(|e| TriggerError::Unreadable {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
    if configuration.spec.paused {
        return Err(TriggerError::Paused {
            name: name.to_owned(),
        });
    }
    let sessions: Vec<&str> = configuration
        .spec
        .sessions
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let chosen = match (session, sessions.as_slice()) {
        (Some(wanted), _) => sessions.iter().find(|s| **s == wanted).copied(),
        (None, [only]) => Some(*only),
        (None, _) => None,
    }
    .ok_or_else(|| TriggerError::NoSuchSession {
        name: name.to_owned(),
        sessions: sessions.iter().map(|s| (*s).to_owned()).collect(),
    })?;
    let seconds = chrono::Utc::now().timestamp();
    let run_name = format!("{name}-{chosen}-{seconds}");
    let mut run = BackupSession::new(
        &run_name,
        BackupSessionSpec {
            invoker: ApiRef {
                name: name.to_owned(),
                namespace: None,
            },
            session: chosen.to_owned(),
            retry_left: None,
        },
    );
    run.metadata.namespace = Some(namespace.to_owned());
    run.metadata.labels = Some(
        [
            (CONFIGURATION.to_owned(), name.to_owned()),
            (SESSION.to_owned(), chosen.to_owned()),
        ]
        .into(),
    );
    let manifest = serde_json::to_value(&run).map_err(|e| TriggerError::Unreadable {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    cluster.create(&manifest).await?;
    Ok(run_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;
    use serde_json::json;

    fn configuration(paused: bool, sessions: &[&str]) -> serde_json::Value {
        let sessions: Vec<_> = sessions
            .iter()
            .map(|name| {
                json!({"name": name, "scheduler": {"schedule": "@daily"},
                "repositories": [{"name": "r", "backend": "b", "directory": "d",
                    "encryptionSecret": {"name": "p"}}],
                "tasks": [{"name": "manifest-backup"}]})
            })
            .collect();
        json!({"apiVersion": "kbackup.io/v1alpha1", "kind": "BackupConfiguration",
            "metadata": {"name": "demo", "namespace": "apps"},
            "spec": {"target": {"kind": "Namespace", "name": "apps"},
                "backends": [{"name": "b", "storageRef": {"name": "s"}, "retentionPolicy": {"name": "r"}}],
                "sessions": sessions, "paused": paused}})
    }

    #[tokio::test]
    async fn a_session_is_made_for_the_session_named_or_the_only_one() {
        let cluster = FakeCluster::new();
        cluster.insert(&configuration(false, &["daily"]));
        let name = trigger_session(&cluster, "apps", "demo", None)
            .await
            .unwrap();
        assert!(name.starts_with("demo-daily-"), "{name}");
        let made = cluster
            .get(&ObjectRef::namespaced(
                "kbackup.io/v1alpha1",
                "BackupSession",
                "apps",
                &name,
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(made["spec"]["invoker"]["name"], "demo");
        assert_eq!(made["spec"]["session"], "daily");

        let two = FakeCluster::new();
        two.insert(&configuration(false, &["daily", "hourly"]));
        let error = trigger_session(&two, "apps", "demo", None)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("daily, hourly"), "{error}");
        assert!(
            trigger_session(&two, "apps", "demo", Some("hourly"))
                .await
                .is_ok()
        );
        assert!(
            trigger_session(&two, "apps", "demo", Some("weekly"))
                .await
                .is_err()
        );

        let paused = FakeCluster::new();
        paused.insert(&configuration(true, &["daily"]));
        let error = trigger_session(&paused, "apps", "demo", None)
            .await
            .unwrap_err();
        assert!(matches!(error, TriggerError::Paused { .. }), "{error}");
        let error = trigger_session(&paused, "apps", "other", None)
            .await
            .unwrap_err();
        assert!(matches!(error, TriggerError::NotFound { .. }), "{error}");
    }
}
