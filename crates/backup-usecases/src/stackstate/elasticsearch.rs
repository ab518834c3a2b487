//! The installation's Elasticsearch, reached at a URL or through a port-forward.

use super::{Installation, StackStateError};
use backup_core::Progress;
use backup_core::Secret;
use backup_core::cluster::{Cluster, Forward};
use backup_core::stackstate::ElasticsearchRestore;
use backup_elasticsearch::{EsClient, NewSnapshot, SnapshotInfo};

/// A snapshot to take now.
#[derive(Debug, Clone, Default)]
pub struct EsSnapshotRequest {
    /// Its name (default: `sts-backup-<time>`, as the chart's SLM policy names them).
    pub name: Option<String>,
    /// The indices (default: the SLM policy's, else the restore pattern).
    pub indices: Option<String>,
    /// Wait until it is done.
    pub wait: bool,
    /// Accept a PARTIAL snapshot.
    pub partial: bool,
}

/// A snapshot taken (or started).
#[derive(Debug, Clone)]
pub struct TakenSnapshot {
    /// Its name.
    pub name: String,
    /// Its indices.
    pub indices: String,
    /// Its description when waited for.
    pub info: Option<SnapshotInfo>,
}

/// Basic authentication to Elasticsearch.
#[derive(Debug, Clone)]
pub struct EsCredentials {
    /// The user.
    pub username: String,
    /// The password (never shown).
    pub password: Secret,
}

/// A connection to the installation's Elasticsearch, with the port-forward that reaches it
/// (kept open while the connection is).
pub struct EsConnection {
    /// The client.
    pub client: EsClient,
    _forward: Option<Box<dyn Forward>>,
}

impl EsConnection {
    /// The snapshot named `name` in `repository`, or without a name its newest.
    pub async fn snapshot_or_latest(
        &self,
        repository: &str,
        name: Option<&str>,
    ) -> Result<SnapshotInfo, StackStateError> {
        match name {
            Some(name) => Ok(self.client.snapshot(repository, name).await?),
            None => self
                .client
                .snapshots(repository)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StackStateError::NoSnapshots(repository.to_owned())),
        }
    }
}

impl<C: Cluster> Installation<C> {
    /// Takes a snapshot of the configuration's indices (or those asked) into its
    /// repository through `connection`.
    pub async fn take_es_snapshot(
        &self,
        connection: &EsConnection,
        request: EsSnapshotRequest,
        progress: &dyn Progress,
    ) -> Result<TakenSnapshot, StackStateError> {
        let config = self.config.elasticsearch()?;
        let configured = |indices: &str| Some(indices.to_owned()).filter(|i| !i.is_empty());
        let indices = request
            .indices
            .or_else(|| configured(&config.slm.indices))
            .or_else(|| configured(&config.restore.indices_pattern))
            .ok_or(StackStateError::NoIndices)?;
        let name = request.name.unwrap_or_else(|| {
            format!("sts-backup-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"))
        });
        let repository = self.elasticsearch_repository()?;
        progress.start(&format!("snapshot {name} of {indices}"), None);
        let snapshot = NewSnapshot {
            name: name.clone(),
            indices: indices.clone(),
            wait: request.wait,
            partial: request.partial,
        };
        let taken = connection
            .client
            .create_snapshot(&repository, &snapshot)
            .await;
        progress.finish();
        Ok(TakenSnapshot {
            name,
            indices,
            info: taken?,
        })
    }

    /// Connects to Elasticsearch: at `url` when given, else through a port-forward to the
    /// configuration's `elasticsearch.service`. The server must answer before this returns.
    pub async fn connect_elasticsearch(
        &self,
        url: Option<&str>,
        credentials: Option<&EsCredentials>,
    ) -> Result<EsConnection, StackStateError> {
        let section = self.config.elasticsearch()?;
        let (url, forward) = match url {
            Some(url) => (url.to_owned(), None),
            None => {
                let service = &section.service;
                if service.name.is_empty() || service.port == 0 {
                    return Err(StackStateError::NoElasticsearchService);
                }
                let forward = self
                    .cluster
                    .forward_service(&self.namespace, &service.name, service.port)
                    .await?;
                (format!("http://{}", forward.local_addr()), Some(forward))
            }
        };
        let auth = credentials.map(|c| (c.username.as_str(), c.password.expose()));
        let client = EsClient::connect(&url, auth)?;
        client.server_info().await?;
        Ok(EsConnection {
            client,
            _forward: forward,
        })
    }

    /// The snapshot repository the Elasticsearch commands work with.
    pub fn elasticsearch_repository(&self) -> Result<String, StackStateError> {
        Ok(self.config.elasticsearch_repository()?.to_owned())
    }

    /// The repository and the restore settings, checked.
    pub fn elasticsearch_restore(&self) -> Result<(String, ElasticsearchRestore), StackStateError> {
        let settings = self.config.elasticsearch_restore()?.clone();
        Ok((self.elasticsearch_repository()?, settings))
    }
}
