//! `elasticsearch:`: the snapshot repository, the SLM policy and the restore settings.

use super::config::{ConfigError, ServiceRef, StackStateConfig, missing, require};
use crate::Secret;
use serde::Deserialize;

/// The kind of snapshot repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepositoryType {
    /// S3 or MinIO (the chart's default).
    #[default]
    S3,
    /// A shared file system path listed in the nodes' `path.repo`.
    Fs,
    /// Azure Blob storage.
    Azure,
}

/// `elasticsearch.snapshotRepository`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRepository {
    /// The repository's name in Elasticsearch (`sts-backup`).
    #[serde(default)]
    pub name: String,
    /// Its type (kbackup's addition; `s3` when absent).
    #[serde(default, rename = "type")]
    pub kind: RepositoryType,
    /// S3 bucket (`sts-elasticsearch-backup`).
    #[serde(default)]
    pub bucket: String,
    /// S3 endpoint, `host:port` (`suse-observability-minio:9000`).
    #[serde(default)]
    pub endpoint: String,
    /// Base path in the bucket or container.
    #[serde(default)]
    pub basepath: String,
    /// S3 region (`minio` when absent, as the chart sets it).
    #[serde(default)]
    pub region: Option<String>,
    /// `http` or `https` (`http` when absent).
    #[serde(default)]
    pub protocol: Option<String>,
    /// Access key.
    #[serde(default)]
    pub access_key: Secret,
    /// Secret key.
    #[serde(default)]
    pub secret_key: Secret,
    /// `fs`: the directory (under the nodes' `path.repo`).
    #[serde(default)]
    pub location: String,
    /// `azure`: the container.
    #[serde(default)]
    pub container: String,
    /// `azure`: the client settings name in the keystore (`default`).
    #[serde(default)]
    pub client: Option<String>,
}

/// `elasticsearch.slm`: the snapshot lifecycle policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlmPolicy {
    /// Policy name (`auto-sts-backup`).
    #[serde(default)]
    pub name: String,
    /// Quartz cron schedule (`0 0 3 * * ?`).
    #[serde(default)]
    pub schedule: String,
    /// Snapshot name with date math (`<sts-backup-{now{yyyyMMdd-HHmm}}>`).
    #[serde(default)]
    pub snapshot_template_name: String,
    /// Repository (the snapshot repository's name).
    #[serde(default)]
    pub repository: String,
    /// Indices (`sts*`).
    #[serde(default)]
    pub indices: String,
    /// Delete snapshots older than this (`30d`).
    #[serde(default)]
    pub retention_expire_after: String,
    /// Keep at least this many.
    #[serde(default)]
    pub retention_min_count: u32,
    /// Keep at most this many.
    #[serde(default)]
    pub retention_max_count: u32,
}

/// `elasticsearch.restore`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticsearchRestore {
    /// Repository restored from.
    #[serde(default)]
    pub repository: String,
    /// Workloads scaled down during a restore.
    #[serde(default)]
    pub scale_down_label_selector: String,
    /// Prefix of the live indices deleted before a restore (`sts`).
    #[serde(default)]
    pub index_prefix: String,
    /// Prefix of the datastream's backing indices (`.ds-sts_k8s_logs`).
    #[serde(default)]
    pub datastream_index_prefix: String,
    /// The datastream rolled over before its backing indices are deleted (`sts_k8s_logs`).
    #[serde(default)]
    pub datastream_name: String,
    /// Indices restored from the snapshot (`sts*,.ds-sts_k8s_logs*`).
    #[serde(default)]
    pub indices_pattern: String,
}

/// `elasticsearch:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticsearchSection {
    /// The Service a port-forward reaches Elasticsearch by.
    #[serde(default)]
    pub service: ServiceRef,
    /// The snapshot repository.
    #[serde(default)]
    pub snapshot_repository: SnapshotRepository,
    /// The snapshot lifecycle policy.
    #[serde(default)]
    pub slm: SlmPolicy,
    /// Restore settings.
    #[serde(default)]
    pub restore: ElasticsearchRestore,
}

impl StackStateConfig {
    /// The `elasticsearch` section (list, describe and snapshot need nothing more).
    pub fn elasticsearch(&self) -> Result<&ElasticsearchSection, ConfigError> {
        self.elasticsearch
            .as_ref()
            .ok_or_else(|| missing("elasticsearch", ""))
    }

    /// The repository the commands work with: `elasticsearch.restore.repository`, else the
    /// snapshot repository's name.
    pub fn elasticsearch_repository(&self) -> Result<&str, ConfigError> {
        let section = self.elasticsearch()?;
        [
            &section.restore.repository,
            &section.snapshot_repository.name,
        ]
        .into_iter()
        .find(|name| !name.trim().is_empty())
        .map(String::as_str)
        .ok_or_else(|| {
            missing(
                "elasticsearch.restore.repository",
                " (or elasticsearch.snapshotRepository.name)",
            )
        })
    }

    /// The repository definition, checked for what its type needs.
    pub fn elasticsearch_snapshot_repository(&self) -> Result<&SnapshotRepository, ConfigError> {
        let repository = &self.elasticsearch()?.snapshot_repository;
        let field = |name: &str| format!("elasticsearch.snapshotRepository.{name}");
        require(&[(&field("name"), &repository.name)])?;
        match repository.kind {
            RepositoryType::S3 => require(&[
                (&field("bucket"), &repository.bucket),
                (&field("endpoint"), &repository.endpoint),
                (&field("accessKey"), repository.access_key.expose()),
                (&field("secretKey"), repository.secret_key.expose()),
            ])?,
            RepositoryType::Fs => require(&[(&field("location"), &repository.location)])?,
            RepositoryType::Azure => require(&[(&field("container"), &repository.container)])?,
        }
        Ok(repository)
    }

    /// The SLM policy, checked.
    pub fn elasticsearch_slm(&self) -> Result<&SlmPolicy, ConfigError> {
        let slm = &self.elasticsearch()?.slm;
        let field = |name: &str| format!("elasticsearch.slm.{name}");
        require(&[
            (&field("name"), &slm.name),
            (&field("schedule"), &slm.schedule),
            (&field("snapshotTemplateName"), &slm.snapshot_template_name),
            (&field("repository"), &slm.repository),
            (&field("indices"), &slm.indices),
        ])?;
        Ok(slm)
    }

    /// The restore settings, checked for what a restore needs.
    pub fn elasticsearch_restore(&self) -> Result<&ElasticsearchRestore, ConfigError> {
        self.elasticsearch_repository()?;
        let restore = &self.elasticsearch()?.restore;
        let field = |name: &str| format!("elasticsearch.restore.{name}");
        require(&[
            (
                &field("scaleDownLabelSelector"),
                &restore.scale_down_label_selector,
            ),
            (&field("indexPrefix"), &restore.index_prefix),
            (&field("indicesPattern"), &restore.indices_pattern),
        ])?;
        Ok(restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
elasticsearch:
  service: {name: suse-observability-elasticsearch-master-headless, port: 9200}
  snapshotRepository: {name: sts-backup, bucket: sts-elasticsearch-backup, endpoint: "suse-observability-minio:9000", basepath: ""}
  slm: {name: auto-sts-backup, schedule: "0 0 3 * * ?", snapshotTemplateName: "<sts-backup-{now{yyyyMMdd-HHmm}}>", repository: sts-backup, indices: "sts*", retentionExpireAfter: 30d, retentionMinCount: 5, retentionMaxCount: 30}
  restore: {repository: sts-backup, scaleDownLabelSelector: "observability.suse.com/scalable-during-es-restore=true", indexPrefix: sts, datastreamIndexPrefix: .ds-sts_k8s_logs, datastreamName: sts_k8s_logs, indicesPattern: "sts*,.ds-sts_k8s_logs*"}
"#;
    const SECRET: &str = "elasticsearch:\n  snapshotRepository: {accessKey: AK, secretKey: SK}\n";

    #[test]
    fn reads_the_chart_schema_with_s3_as_the_default_type() {
        let config = StackStateConfig::from_documents(("c", CONFIG), Some(("s", SECRET))).unwrap();
        let repository = config.elasticsearch_snapshot_repository().unwrap();
        assert_eq!(repository.kind, RepositoryType::S3);
        assert_eq!(repository.secret_key.expose(), "SK");
        assert_eq!(config.elasticsearch_slm().unwrap().retention_max_count, 30);
        assert_eq!(config.elasticsearch_repository().unwrap(), "sts-backup");
        assert_eq!(
            config.elasticsearch_restore().unwrap().datastream_name,
            "sts_k8s_logs"
        );
        assert!(!format!("{config:?}").contains("SK\""));
    }

    #[test]
    fn each_type_names_what_it_misses() {
        let no_keys = StackStateConfig::from_documents(("c", CONFIG), None).unwrap();
        let error = no_keys.elasticsearch_snapshot_repository().unwrap_err();
        assert!(
            error.to_string().contains("snapshotRepository.accessKey"),
            "{error}"
        );
        let fs = StackStateConfig::from_documents(
            (
                "c",
                &CONFIG.replace(
                    "{name: sts-backup, bucket",
                    "{name: sts-backup, type: fs, bucket",
                ),
            ),
            None,
        )
        .unwrap();
        let error = fs.elasticsearch_snapshot_repository().unwrap_err();
        assert!(
            error.to_string().contains("snapshotRepository.location"),
            "{error}"
        );
        let bad = StackStateConfig::from_documents(
            (
                "c",
                &CONFIG.replace(
                    "{name: sts-backup, bucket",
                    "{name: sts-backup, type: ftp, bucket",
                ),
            ),
            None,
        )
        .unwrap_err();
        assert!(bad.to_string().contains("snapshotRepository.type"), "{bad}");
    }
}
