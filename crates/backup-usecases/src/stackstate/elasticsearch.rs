//! The installation's Elasticsearch, reached at a URL or through a port-forward.

use super::{Installation, StackStateError};
use backup_core::Secret;
use backup_core::cluster::{Cluster, Forward};
use backup_core::stackstate::ElasticsearchRestore;
use backup_elasticsearch::{EsClient, SnapshotInfo};

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
