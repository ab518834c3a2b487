//! StackGraph: the Job-based engine configured from StackState's backup configuration.

use super::{DataStoreSpec, Operation, Scratch};
use backup_core::stackstate::{ConfigError, StackStateConfig};
use std::collections::BTreeMap;

/// The data store's name: names the restore objects, the lock and the CLI commands.
pub const STACKGRAPH: &str = "stackgraph";
/// The archives' suffix.
pub const GRAPH_SUFFIX: &str = ".graph";
const SCRIPT: &str = include_str!("scripts/restore-stackgraph.sh");
const BACKUP_SCRIPT: &str = include_str!("scripts/backup-stackgraph.sh");
const RESTORE_FILE: &str = "restore-stackgraph-backup.sh";
const BACKUP_FILE: &str = "backup-stackgraph.sh";

/// The StackGraph restore spec from the configuration. `storage_endpoint` (flag or
/// `stackgraph.storageEndpoint`) replaces the in-cluster MinIO Service as the Job's source.
pub fn stackgraph_spec(
    config: &StackStateConfig,
    storage_endpoint: Option<&str>,
) -> Result<DataStoreSpec, ConfigError> {
    let section = config.stackgraph()?;
    let restore = config.stackgraph_restore()?;
    let (host_port, endpoint_url) = archive_endpoint(config, storage_endpoint)?;
    let mut env: BTreeMap<String, String> = [
        ("BACKUP_STACKGRAPH_BUCKET_NAME", section.bucket.clone()),
        ("BACKUP_STACKGRAPH_S3_PREFIX", section.s3_prefix.clone()),
        (
            "BACKUP_STACKGRAPH_MULTIPART_ARCHIVE",
            section.splits_archives().to_string(),
        ),
        ("MINIO_ENDPOINT", host_port.clone()),
        ("ZOOKEEPER_QUORUM", restore.zookeeper_quorum.clone()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    if let Some(url) = endpoint_url {
        env.insert("S3_ENDPOINT_URL".into(), url);
    }
    Ok(DataStoreSpec {
        name: STACKGRAPH.into(),
        lock: STACKGRAPH.into(),
        scale_down_selector: restore.scale_down_label_selector.clone(),
        bucket: section.bucket.clone(),
        prefix: section.s3_prefix.clone(),
        env,
        restore_env: BTreeMap::from([("FORCE_DELETE".to_string(), "-force".to_string())]),
        wait_for: Some(super::wait_target(&host_port)?),
        scripts: BTreeMap::from([
            (RESTORE_FILE.into(), SCRIPT.into()),
            (BACKUP_FILE.into(), BACKUP_SCRIPT.into()),
        ]),
        commands: BTreeMap::from([
            (Operation::Restore, RESTORE_FILE.into()),
            (Operation::Backup, BACKUP_FILE.into()),
        ]),
        logging_config_map: restore.logging_config_config_map.clone(),
        archive_split_size: section.splits_archives().then(|| {
            section
                .archive_split_size
                .clone()
                .unwrap_or_else(|| "500M".into())
        }),
        job: restore.job.clone(),
        scratch: Scratch::Claim(restore.pvc.clone()),
        mounts: vec![],
        instances: vec![],
        common_labels: config.common_labels.clone(),
        ttl_seconds_after_finished: 600,
    })
}

/// Where StackGraph's Jobs reach the archives: `host:port` (as sts-backup passes it), and
/// the URL with its scheme when the endpoint is not the in-cluster MinIO Service (`storage_endpoint`
/// flag or `stackgraph.storageEndpoint`; kbackup's scripts prefer it).
pub(super) fn archive_endpoint(
    config: &StackStateConfig,
    storage_endpoint: Option<&str>,
) -> Result<(String, Option<String>), ConfigError> {
    let section = config.stackgraph()?;
    let service = config
        .object_store()
        .map(|s| s.service.clone())
        .unwrap_or_default();
    let endpoint_url = storage_endpoint
        .map(str::to_owned)
        .or_else(|| section.storage_endpoint.clone());
    let host_port = match &endpoint_url {
        Some(url) => {
            let authority = url.split("://").nth(1).unwrap_or(url).trim_end_matches('/');
            let default_port = if url.starts_with("https://") { 443 } else { 80 };
            if authority.contains(':') {
                authority.to_owned()
            } else {
                format!("{authority}:{default_port}")
            }
        }
        None => format!("{}:{}", service.name, service.port),
    };
    Ok((host_port, endpoint_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "minio:\n  service: {name: suse-observability-minio, port: 9000}\n  accessKey: a\n  secretKey: b\n\
        stackgraph:\n  bucket: sts-stackgraph-backup\n  s3Prefix: daily\n  restore:\n    scaleDownLabelSelector: x=y\n\
        \x20   zookeeperQuorum: zk:2181\n    job: {image: img}\n";

    #[test]
    fn builds_the_spec_from_the_configuration() {
        let config = StackStateConfig::from_documents(("c", CONFIG), None).unwrap();
        let spec = stackgraph_spec(&config, None).unwrap();
        assert_eq!(spec.env["MINIO_ENDPOINT"], "suse-observability-minio:9000");
        assert_eq!(spec.env["BACKUP_STACKGRAPH_S3_PREFIX"], "daily");
        assert_eq!(spec.env["ZOOKEEPER_QUORUM"], "zk:2181");
        assert_eq!(
            spec.wait_for.as_deref(),
            Some("suse-observability-minio:9000")
        );
        assert!(!spec.env.contains_key("S3_ENDPOINT_URL"));
        assert!(
            spec.scripts[spec.command(Operation::Restore).unwrap()].contains("-import")
                && spec.scripts[spec.command(Operation::Backup).unwrap()].contains("-export")
        );
        let direct = stackgraph_spec(&config, Some("https://s3.example.com")).unwrap();
        assert_eq!(direct.env["S3_ENDPOINT_URL"], "https://s3.example.com");
        assert_eq!(direct.wait_for.as_deref(), Some("s3.example.com:443"));
    }
}
