//! Expiring StackGraph archives: those older than a retention, planned from one listing,
//! then deleted as they were shown.

use super::{ArchiveStore, Installation, StackStateError, file_catalog};
use backup_core::ObjectStorage;
use backup_core::cluster::Cluster;
use backup_core::stackstate::Archive;
use backup_k8s::datastore::GRAPH_SUFFIX;
use backup_storage::StorageOptions;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// The archives an expiry deletes, and where they are.
pub struct ExpiryPlan {
    /// The archives older than the retention, newest first.
    pub archives: Vec<Archive>,
    /// The bucket and prefix (for messages).
    pub location: String,
    bucket: Arc<dyn ObjectStorage>,
    _store: ArchiveStore,
}

impl<C: Cluster> Installation<C> {
    /// The StackGraph archives older than `older_than` at `now`, from one listing of their
    /// bucket (at `storage_endpoint` when given, else the configuration's).
    pub async fn plan_expiry(
        &self,
        storage: StorageOptions,
        storage_endpoint: Option<String>,
        older_than: Duration,
        now: DateTime<Utc>,
    ) -> Result<ExpiryPlan, StackStateError> {
        let section = self.config.stackgraph()?;
        let endpoint = storage_endpoint.or_else(|| section.storage_endpoint.clone());
        let store = self.archive_store(storage, endpoint).await?;
        let bucket = store.bucket(&section.bucket, &section.s3_prefix).await?;
        let catalog = file_catalog(bucket.as_ref(), GRAPH_SUFFIX).await?;
        let retention = chrono::Duration::from_std(older_than)
            .map_err(|_| StackStateError::RetentionTooLong(older_than))?;
        Ok(ExpiryPlan {
            archives: catalog
                .older_than(now - retention)
                .into_iter()
                .cloned()
                .collect(),
            location: bucket.location(),
            bucket,
            _store: store,
        })
    }
}

impl ExpiryPlan {
    /// Deletes every part of every archive of the plan.
    pub async fn execute(&self) -> Result<(), StackStateError> {
        for archive in &self.archives {
            for part in &archive.parts {
                self.bucket.delete(part).await?;
            }
        }
        Ok(())
    }
}
