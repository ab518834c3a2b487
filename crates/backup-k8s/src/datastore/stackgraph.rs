//! StackGraph: the Job-based engine configured from StackState's backup configuration.

use super::DataStoreSpec;
use backup_core::stackstate::{ConfigError, StackStateConfig};
use std::collections::BTreeMap;

/// The data store's name: names the restore objects, the lock and the CLI commands.
pub const STACKGRAPH: &str = "stackgraph";
/// The archives' suffix.
pub const GRAPH_SUFFIX: &str = ".graph";
const SCRIPT: &str = include_str!("scripts/restore-stackgraph.sh");
const BACKUP_SCRIPT: &str = include_str!("scripts/backup-stackgraph.sh");

/// The StackGraph restore spec from the configuration. `storage_endpoint` (flag or
/// `stackgraph.storageEndpoint`) replaces the in-cluster MinIO Service as the Job's source.
pub fn stackgraph_spec(
    config: &StackStateConfig,
    storage_endpoint: Option<&str>,
) -> Result<DataStoreSpec, ConfigError> {
    let section = config.stackgraph()?;
    let restore = config.stackgraph_restore()?;
    let service = config
        .object_store()
        .map(|s| s.service.clone())
        .unwrap_or_default();
    let endpoint = storage_endpoint
        .map(str::to_owned)
        .or_else(|| section.storage_endpoint.clone())
        .unwrap_or_else(|| format!("http://{}:{}", service.name, service.port));
    let authority = endpoint
        .split("://")
        .nth(1)
        .unwrap_or(&endpoint)
        .trim_end_matches('/')
        .to_owned();
    let default_port = if endpoint.starts_with("https://") {
        443
    } else {
        80
    };
    let authority = if authority.contains(':') {
        authority
    } else {
        format!("{authority}:{default_port}")
    };
    Ok(DataStoreSpec {
        name: STACKGRAPH.into(),
        scale_down_selector: restore.scale_down_label_selector.clone(),
        bucket: section.bucket.clone(),
        prefix: section.s3_prefix.clone(),
        multipart: section.multipart_archive,
        storage_endpoint: endpoint,
        wait_for: vec![authority, restore.zookeeper_quorum.clone()],
        env: BTreeMap::from([(
            "ZOOKEEPER_QUORUM".to_string(),
            restore.zookeeper_quorum.clone(),
        )]),
        script: SCRIPT.into(),
        backup_script: BACKUP_SCRIPT.into(),
        archive_split_size: section.multipart_archive.then(|| {
            section
                .archive_split_size
                .clone()
                .unwrap_or_else(|| "500M".into())
        }),
        job: restore.job.clone(),
        pvc: restore.pvc.clone(),
        common_labels: config.common_labels.clone(),
        ttl_seconds_after_finished: 600,
    })
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
        assert_eq!(
            spec.storage_endpoint,
            "http://suse-observability-minio:9000"
        );
        assert_eq!(spec.wait_for, ["suse-observability-minio:9000", "zk:2181"]);
        assert_eq!(
            (spec.bucket.as_str(), spec.prefix.as_str()),
            ("sts-stackgraph-backup", "daily")
        );
        assert!(spec.script.contains("-import"));
        let direct = stackgraph_spec(&config, Some("https://s3.example.com")).unwrap();
        assert_eq!(direct.storage_endpoint, "https://s3.example.com");
        assert_eq!(direct.wait_for[0], "s3.example.com:443");
    }
}
