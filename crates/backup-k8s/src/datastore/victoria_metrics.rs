//! VictoriaMetrics: the Job-based engine configured from the `victoriaMetrics` section. One
//! container per instance (two in `haMode: mirror`) runs vmrestore into that instance's
//! volume; the StatefulSet is scaled down meanwhile, so the volumes are free.

use super::{ClaimMount, DataStoreSpec, JobInstance, Operation, Scratch};
use backup_core::stackstate::{ConfigError, StackStateConfig};
use std::collections::BTreeMap;

/// The data store's name: names the restore objects, the lock and the CLI commands.
pub const VICTORIA_METRICS: &str = "victoriametrics";
/// The object vmbackup writes last into a finished backup directory.
pub const VM_BACKUP_MARKER: &str = "backup_complete.ignore";
const SCRIPT: &str = include_str!("scripts/restore-victoria-metrics.sh");

/// The VictoriaMetrics restore spec.
pub fn victoria_metrics_spec(config: &StackStateConfig) -> Result<DataStoreSpec, ConfigError> {
    let section = config.victoria_metrics()?;
    let restore = config.victoria_metrics_restore()?;
    let service = &config.object_store_service()?.service;
    let host_port = format!("{}:{}", service.name, service.port);
    let env: BTreeMap<String, String> = [
        ("MINIO_ENDPOINT".to_string(), host_port.clone()),
        ("S3_ENDPOINT".to_string(), host_port.clone()),
    ]
    .into();
    let instances = (0..restore.ha_mode.instances())
        .map(|i| JobInstance {
            container: format!("restore-{i}"),
            env: [(
                "VM_METRICS_ADDR".to_string(),
                format!("127.0.0.1:{}", 8420 + i),
            )]
            .into(),
            mounts: vec![ClaimMount {
                claim: restore.claim(i),
                mount_path: "/storage".into(),
            }],
        })
        .collect();
    let first = &section.s3_locations[0];
    Ok(DataStoreSpec {
        name: VICTORIA_METRICS.into(),
        lock: VICTORIA_METRICS.into(),
        scale_down_selector: restore.scale_down_label_selector.clone(),
        bucket: first.bucket.clone(),
        prefix: first.prefix.clone(),
        env,
        restore_env: BTreeMap::new(),
        wait_for: Some(super::wait_target(&host_port)?),
        scripts: BTreeMap::from([("restore-victoria-metrics.sh".into(), SCRIPT.into())]),
        commands: BTreeMap::from([(Operation::Restore, "restore-victoria-metrics.sh".into())]),
        logging_config_map: None,
        archive_split_size: None,
        job: restore.job.clone(),
        scratch: Scratch::EmptyDir,
        mounts: vec![],
        instances,
        common_labels: config.common_labels.clone(),
        ttl_seconds_after_finished: 600,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{JobRequest, Operation};
    use super::*;

    fn config(mode: &str) -> StackStateConfig {
        let text = format!(
            "minio:\n  service: {{name: minio, port: 9000}}\n  accessKey: a\n  secretKey: b\n\
             victoriaMetrics:\n  S3Locations: [{{bucket: vm, prefix: victoria-metrics-0}}]\n  restore:\n    haMode: {mode}\n\
             \x20   persistentVolumeClaimPrefix: database-\n    scaleDownLabelSelector: v=m\n    job: {{image: img, waitImage: wait}}\n"
        );
        StackStateConfig::from_documents(("c", &text), None).unwrap()
    }

    #[test]
    fn mirror_mode_restores_each_instance_into_its_own_volume() {
        let request = JobRequest {
            archive: "vm/victoria-metrics-0-20261121030000".into(),
            access_key: "a".into(),
            secret_key: backup_core::Secret::new("b"),
            run_id: "r1".into(),
        };
        let spec = victoria_metrics_spec(&config("mirror")).unwrap();
        let m = spec.manifests("sts", Operation::Restore, &request);
        let pod = &m.job["spec"]["template"]["spec"];
        let containers = pod["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        for (i, container) in containers.iter().enumerate() {
            assert_eq!(container["name"], format!("restore-{i}"));
            let storage = container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == "/storage")
                .unwrap();
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == storage["name"])
                .unwrap();
            assert_eq!(
                volume["persistentVolumeClaim"]["claimName"],
                format!("database-victoria-metrics-{i}-0")
            );
            let env = container["env"].as_array().unwrap();
            assert!(env.contains(&serde_json::json!({"name": "VM_METRICS_ADDR", "value": format!("127.0.0.1:{}", 8420 + i)})));
            assert!(
                env.contains(&serde_json::json!({"name": "BACKUP_FILE", "value": request.archive}))
            );
        }
        assert_eq!(pod["initContainers"][0]["image"], "wait");
        let single = victoria_metrics_spec(&config("single")).unwrap();
        assert_eq!(single.instances.len(), 1);
    }
}
