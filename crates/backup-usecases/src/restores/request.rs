//! A RestoreSession asked of the operator and followed to its end, as `kbackup restoresession`
//! does: the object made from typed options, then its status read until it ended, each
//! change of phase or component handed to the caller.

use backup_api::{
    API_VERSION, RestorePhase, RestoreSession, RestoreSessionSpec, RestoreSessionStatus,
};
use backup_core::ClusterError;
use backup_core::cluster::{ObjectRef, ResourceStore};
use std::time::{Duration, Instant};

/// Why a restore could not be asked for or followed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreRequestError {
    /// The cluster failed (a RestoreSession of that name exists: `Conflict`).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// No such RestoreSession.
    #[error("RestoreSession {namespace}/{name} not found")]
    NotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// It did not end in time; it goes on.
    #[error("RestoreSession {name} has not ended after {waited:?}; it goes on (phase {phase})")]
    StillRunning {
        /// Its name.
        name: String,
        /// How long it was followed.
        waited: Duration,
        /// Its phase then.
        phase: String,
    },
}

/// Creates the RestoreSession `name` in `namespace` with `spec`; the operator runs it.
pub async fn create_restore_session<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    spec: RestoreSessionSpec,
) -> Result<(), RestoreRequestError> {
    let mut session = RestoreSession::new(name, spec);
    session.metadata.namespace = Some(namespace.to_owned());
    let manifest = serde_json::to_value(&session)
        .map_err(|e| ClusterError::Invalid(format!("RestoreSession {name}: {e}")))?;
    cluster.create(&manifest).await?;
    Ok(())
}

/// Whether a phase is an end.
pub fn has_ended(phase: Option<RestorePhase>) -> bool {
    matches!(
        phase,
        Some(
            RestorePhase::Succeeded
                | RestorePhase::Failed
                | RestorePhase::Invalid
                | RestorePhase::Unknown
        )
    )
}

/// Reads the RestoreSession `namespace/name` every `poll` until it ended (at most `timeout`),
/// calling `changed` with each status that differs from the one before; the last status.
pub async fn follow_restore_session<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    poll: Duration,
    timeout: Duration,
    mut changed: impl FnMut(&RestoreSessionStatus),
) -> Result<RestoreSessionStatus, RestoreRequestError> {
    let started = Instant::now();
    let reference = ObjectRef::namespaced(API_VERSION, "RestoreSession", namespace, name);
    let mut last: Option<RestoreSessionStatus> = None;
    loop {
        let object =
            cluster
                .get(&reference)
                .await?
                .ok_or_else(|| RestoreRequestError::NotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                })?;
        let status: RestoreSessionStatus =
            serde_json::from_value(object["status"].clone()).unwrap_or_default();
        if last.as_ref() != Some(&status) {
            changed(&status);
        }
        if has_ended(status.phase) {
            return Ok(status);
        }
        if started.elapsed() >= timeout {
            return Err(RestoreRequestError::StillRunning {
                name: name.to_owned(),
                waited: started.elapsed(),
                phase: status
                    .phase
                    .map_or("Pending".to_owned(), |p| format!("{p:?}")),
            });
        }
        last = Some(status);
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_api::{RestoreDataSource, TypedObjectRef};
    use backup_core::testing::FakeCluster;
    use serde_json::json;

    fn spec() -> RestoreSessionSpec {
        RestoreSessionSpec {
            target: TypedObjectRef {
                api_group: "apps".into(),
                kind: "StatefulSet".into(),
                name: "db".into(),
                namespace: None,
            },
            data_source: RestoreDataSource {
                namespace: None,
                repository: Some("apps".into()),
                snapshot: "latest".into(),
                components: vec!["pod-0".into()],
                encryption_secret: None,
            },
            tasks: vec![],
            timeout: None,
            manifest_options: Default::default(),
            hooks: Default::default(),
            verify: false,
            params: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_restore_is_made_once_and_followed_until_it_ended() {
        let cluster = FakeCluster::new();
        create_restore_session(&cluster, "apps", "back", spec())
            .await
            .unwrap();
        let again = create_restore_session(&cluster, "apps", "back", spec()).await;
        assert!(
            matches!(
                again,
                Err(RestoreRequestError::Cluster(ClusterError::Conflict(_)))
            ),
            "{again:?}"
        );
        let waited = follow_restore_session(
            &cluster,
            "apps",
            "back",
            Duration::from_millis(1),
            Duration::from_millis(20),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(waited.to_string().contains("Pending"), "{waited}");
        let mut object = cluster
            .object("RestoreSession", Some("apps"), "back")
            .unwrap();
        object["status"] = json!({"phase": "Succeeded", "totalComponents": 2});
        cluster.insert(&object);
        let mut seen = Vec::new();
        let status = follow_restore_session(
            &cluster,
            "apps",
            "back",
            Duration::from_millis(1),
            Duration::from_secs(5),
            |s| seen.push(s.phase),
        )
        .await
        .unwrap();
        assert_eq!(status.total_components, Some(2));
        assert_eq!(seen, [Some(RestorePhase::Succeeded)]);
        let missing = follow_restore_session(
            &cluster,
            "apps",
            "gone",
            Duration::ZERO,
            Duration::ZERO,
            |_| {},
        )
        .await;
        assert!(matches!(missing, Err(RestoreRequestError::NotFound { .. })));
    }
}
