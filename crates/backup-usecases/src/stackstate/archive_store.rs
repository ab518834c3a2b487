//! The object store holding the Job-based data stores' archives.

use super::{Installation, StackStateError};
use backup_core::cluster::{Cluster, Forward};
use backup_core::{ObjectStorage, RepositoryLocation, StorageScheme};
use backup_storage::StorageOptions;
use std::sync::Arc;

/// The archives' object store, with the port-forward that reaches it (kept open while the
/// store is).
pub struct ArchiveStore {
    options: StorageOptions,
    _forward: Option<Box<dyn Forward>>,
}

impl ArchiveStore {
    /// One bucket (below `prefix`).
    pub async fn bucket(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Arc<dyn ObjectStorage>, StackStateError> {
        let location = RepositoryLocation {
            scheme: StorageScheme::S3,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            path: None,
        };
        Ok(backup_storage::open(&location, &self.options).await?)
    }
}

impl<C: Cluster> Installation<C> {
    /// The archives' object store: at `endpoint` when given, else through a port-forward
    /// to the configuration's MinIO Service; with the configuration's keys when it has
    /// them, else those of `options`.
    pub async fn archive_store(
        &self,
        mut options: StorageOptions,
        endpoint: Option<String>,
    ) -> Result<ArchiveStore, StackStateError> {
        let (endpoint, forward) = match endpoint {
            Some(endpoint) => (endpoint, None),
            None => {
                let service = &self.config.object_store_service()?.service;
                let forward = self
                    .cluster
                    .forward_service(&self.namespace, &service.name, service.port)
                    .await?;
                (format!("http://{}", forward.local_addr()), Some(forward))
            }
        };
        options.endpoint = Some(endpoint);
        if let Some(store) = self
            .config
            .object_store()
            .filter(|s| !s.access_key.expose().is_empty())
        {
            options.access_key_id = Some(store.access_key.expose().to_owned());
            options.secret_access_key =
                Some(backup_storage::Secret::new(store.secret_key.expose()));
        }
        Ok(ArchiveStore {
            options,
            _forward: forward,
        })
    }
}
