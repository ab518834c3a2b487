//! Settings (configuration backups, `.sty` archives): the Job-based engine configured from
//! the `settings` and `stackpacks` sections. The restore imports the archive, then the
//! StackPacks backup taken with it, through the settings backup image's tools.

use super::stackpacks::{platform_env, stackpacks_env, stackpacks_mount};
use super::{ClaimMount, DataStoreSpec, Operation, Scratch};
use backup_core::stackstate::{ConfigError, StackStateConfig};
use std::collections::BTreeMap;

/// The data store's name: names the restore objects, the lock and the CLI commands.
pub const SETTINGS: &str = "settings";
/// The archives' suffix.
pub const SETTINGS_SUFFIX: &str = ".sty";
const SCRIPT: &str = include_str!("scripts/restore-settings.sh");
/// Where the legacy settings backup volume is mounted.
const LEGACY_MOUNT: &str = "/settings-backup-data";

/// The settings restore spec. `skip_stackpacks` restores the settings alone;
/// `from_old_pvc` reads the archive from the legacy backup volume (`settings.restore.pvc`)
/// instead of the bucket.
pub fn settings_spec(
    config: &StackStateConfig,
    skip_stackpacks: bool,
    from_old_pvc: bool,
) -> Result<DataStoreSpec, ConfigError> {
    let section = config.settings()?;
    let restore = config.settings_restore()?;
    let service = &config.object_store_service()?.service;
    let host_port = format!("{}:{}", service.name, service.port);
    let packs = config.stackpacks.as_ref();
    let mut env: BTreeMap<String, String> = [
        ("BACKUP_CONFIGURATION_BUCKET_NAME", section.bucket.clone()),
        ("BACKUP_CONFIGURATION_S3_PREFIX", section.s3_prefix.clone()),
        (
            "BACKUP_CONFIGURATION_UPLOAD_REMOTE",
            config.global_backup_enabled().to_string(),
        ),
        ("MINIO_ENDPOINT", host_port.clone()),
        ("S3_ENDPOINT", host_port.clone()),
        ("ZOOKEEPER_QUORUM", restore.zookeeper_quorum.clone()),
        (
            "SKIP_STACKPACKS",
            (skip_stackpacks || packs.is_none()).to_string(),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    let mut mounts = Vec::new();
    if from_old_pvc {
        let claim = restore.pvc.clone().ok_or_else(|| ConfigError::Missing {
            field: "settings.restore.pvc".into(),
            hint: " (the legacy settings backup volume, needed to restore from it)".into(),
        })?;
        env.insert("BACKUP_RESTORE_FROM_PVC".into(), "true".into());
        mounts.push(ClaimMount {
            claim,
            mount_path: LEGACY_MOUNT.into(),
        });
    } else if let Some(bucket) = &section.local_bucket {
        env.insert("BACKUP_CONFIGURATION_LOCAL_BUCKET".into(), bucket.clone());
    }
    if let Some(packs) = packs {
        env.extend(platform_env(packs));
        env.extend(stackpacks_env(packs, "BACKUP_CONFIGURATION_STACKPACKS_DIR"));
        mounts.extend(stackpacks_mount(packs));
    }
    Ok(DataStoreSpec {
        name: SETTINGS.into(),
        lock: SETTINGS.into(),
        scale_down_selector: restore.scale_down_label_selector.clone(),
        bucket: section.bucket.clone(),
        prefix: section.s3_prefix.clone(),
        env,
        restore_env: BTreeMap::new(),
        wait_for: Some(super::wait_target(&host_port)?),
        scripts: BTreeMap::from([("restore-settings.sh".into(), SCRIPT.into())]),
        commands: BTreeMap::from([(Operation::Restore, "restore-settings.sh".into())]),
        logging_config_map: restore.logging_config_config_map.clone(),
        archive_split_size: None,
        job: restore.job.clone(),
        scratch: Scratch::EmptyDir,
        mounts,
        instances: vec![],
        common_labels: config.common_labels.clone(),
        ttl_seconds_after_finished: 600,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::container_env;
    use super::super::{JobRequest, Operation};
    use super::*;

    const CONFIG: &str = "minio:\n  service: {name: minio, port: 9000}\n  accessKey: a\n  secretKey: b\n\
        settings:\n  bucket: sts-settings-backup\n  localBucket: local\n  restore:\n    scaleDownLabelSelector: s=t\n    pvc: legacy-claim\n    job: {image: img}\n\
        stackpacks:\n  baseUrl: http://server:7070\n  localStackPacksUri: file:///var/stackpacks_local\n  backupDir: stackpacks/\n  pvc: packs-claim\n";

    fn job(skip: bool, old_pvc: bool) -> serde_json::Value {
        let config = StackStateConfig::from_documents(("c", CONFIG), None).unwrap();
        let request = JobRequest {
            archive: "sts-backup-20261121-0300.sty".into(),
            access_key: "a".into(),
            secret_key: backup_core::Secret::new("b"),
            run_id: "r1".into(),
        };
        let spec = settings_spec(&config, skip, old_pvc).unwrap();
        let m = spec.manifests("sts", Operation::Restore, &request);
        assert!(m.volume.is_none(), "no scratch claim for settings");
        assert_eq!(
            m.names(),
            [
                "ConfigMap/kbackup-settings-scripts",
                "Secret/settings-restore-r1-keys",
                "Job/settings-restore-r1"
            ]
        );
        m.job
    }

    fn mounts(job: &serde_json::Value) -> Vec<String> {
        job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_restore_job_uses_an_empty_dir_and_the_stackpacks_volume() {
        let job = job(false, false);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"][2]["emptyDir"], serde_json::json!({}));
        let env = container_env(&job);
        assert_eq!(env["BACKUP_CONFIGURATION_LOCAL_BUCKET"], "local");
        assert_eq!(env["SKIP_STACKPACKS"], "false");
        assert_eq!(env["STACKSTATE_BASE_URL"], "http://server:7070");
        assert_eq!(env["BACKUP_FILE"], "sts-backup-20261121-0300.sty");
        assert!(mounts(&job).contains(&"/var/stackpacks_local".to_string()));
        assert!(!mounts(&job).contains(&LEGACY_MOUNT.to_string()));
    }

    #[test]
    fn from_old_pvc_mounts_the_legacy_volume_and_skip_stackpacks_says_so() {
        let job = job(true, true);
        let env = container_env(&job);
        assert_eq!(env["BACKUP_RESTORE_FROM_PVC"], "true");
        assert_eq!(env["SKIP_STACKPACKS"], "true");
        assert!(!env.contains_key("BACKUP_CONFIGURATION_LOCAL_BUCKET"));
        assert!(mounts(&job).contains(&LEGACY_MOUNT.to_string()));
        let claims: Vec<&str> = job["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .collect();
        assert_eq!(claims, ["legacy-claim", "packs-claim"]);
    }
}
