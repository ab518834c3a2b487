//! Elasticsearch snapshots seen through the core [`SnapshotEngine`] trait: a component is an
//! index pattern; a backup is a snapshot of it, a restore brings it back (Elasticsearch never
//! overwrites an open index: the workflow in [`crate::restore`] deletes them first).

use crate::client::{EsClient, encode};
use crate::snapshots::{NewSnapshot, SnapshotInfo};
use async_trait::async_trait;
use backup_core::engine::EngineSnapshot;
use backup_core::{Component, EngineError, Progress, SnapshotEngine};
use elasticsearch::http::Method;
use serde_json::json;
use std::time::Instant;

/// The snapshots of one repository as a [`SnapshotEngine`].
pub struct EsSnapshotEngine {
    client: EsClient,
    repository: String,
}

impl EsSnapshotEngine {
    /// The engine of `repository`.
    pub fn new(client: EsClient, repository: &str) -> Self {
        Self {
            client,
            repository: repository.to_owned(),
        }
    }

    fn component(info: &SnapshotInfo, name: &str, started: Instant) -> Component {
        let component = Component::new(name, "elasticsearch");
        match info.state.as_str() {
            "SUCCESS" => component.succeeded(0, started.elapsed()),
            state => component.failed(
                format!(
                    "snapshot {} is {state}: {}",
                    info.name,
                    info.failures.join("; ")
                ),
                started.elapsed(),
            ),
        }
    }
}

#[async_trait]
impl SnapshotEngine for EsSnapshotEngine {
    fn name(&self) -> &str {
        "elasticsearch"
    }

    async fn list(&self) -> Result<Vec<EngineSnapshot>, EngineError> {
        Ok(self
            .client
            .snapshots(&self.repository)
            .await?
            .into_iter()
            .map(|s| EngineSnapshot {
                name: s.name,
                time: s.start,
                size: None,
                state: s.state,
            })
            .collect())
    }

    async fn describe(&self, name: &str) -> Result<serde_json::Value, EngineError> {
        let info = self.client.snapshot(&self.repository, name).await?;
        serde_json::to_value(info).map_err(|e| EngineError::Backend(e.to_string()))
    }

    /// Takes a snapshot named after the time of the indices matching `component`.
    async fn backup(
        &self,
        component: &str,
        progress: &dyn Progress,
    ) -> Result<Component, EngineError> {
        let started = Instant::now();
        let name = format!("kbackup-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
        progress.start(&format!("snapshot {name} of {component}"), None);
        let info = self
            .client
            .create_snapshot(
                &self.repository,
                &NewSnapshot {
                    name: name.clone(),
                    indices: component.to_owned(),
                    wait: true,
                    partial: false,
                },
            )
            .await?;
        progress.finish();
        let info =
            info.ok_or_else(|| EngineError::Backend(format!("snapshot {name} was not described")))?;
        Ok(Self::component(&info, component, started))
    }

    /// Restores the indices matching `component` from `snapshot` and waits for them.
    async fn restore(
        &self,
        snapshot: &str,
        component: &str,
        progress: &dyn Progress,
    ) -> Result<Component, EngineError> {
        let started = Instant::now();
        progress.start(&format!("restore {component} from {snapshot}"), None);
        let reply = self
            .client
            .call(
                Method::Post,
                &format!(
                    "/_snapshot/{}/{}/_restore",
                    encode(&self.repository),
                    encode(snapshot)
                ),
                &[("wait_for_completion", "true")],
                Some(&json!({"indices": component, "include_global_state": false})),
            )
            .await?
            .ok(&format!("restoring {component} from snapshot {snapshot}"))?;
        progress.finish();
        let failed = reply["snapshot"]["shards"]["failed"].as_u64().unwrap_or(0);
        let component = Component::new(component, "elasticsearch");
        Ok(if failed == 0 {
            component.succeeded(0, started.elapsed())
        } else {
            component.failed(
                format!("{failed} shards failed to restore"),
                started.elapsed(),
            )
        })
    }
}
