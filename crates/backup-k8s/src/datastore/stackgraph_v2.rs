//! StackGraph's v2 backups: incremental backups the platform writes below `<s3Prefix>v2/`,
//! each named by a `sts-backup-....graph.v2` object. Their restore has two steps, as
//! `sts-backup stackgraph-v2` runs them: the live restore takes the system down while the
//! newest data (and the StackPacks taken with it) is loaded, then a backfill loads the
//! historic data while the system runs. An abort ends an unfinished backfill and keeps
//! what was loaded. The restores take StackGraph's lock and scale down its users, as the
//! StackGraph restore does.

use super::stackgraph::archive_endpoint;
use super::stackpacks::{platform_env, stackpacks_env, stackpacks_mount};
use super::{DataStoreSpec, Operation, Scratch};
use backup_core::stackstate::{ConfigError, PvcSettings, StackStateConfig};
use std::collections::BTreeMap;

/// The data store's name: names the Jobs and the CLI commands.
pub const STACKGRAPH_V2: &str = "stackgraph-v2";
/// The suffix of the objects that name v2 backups.
pub const GRAPH_V2_SUFFIX: &str = ".graph.v2";
/// The live restore's scratch space: the graph data streams from the bucket, so it only
/// holds the StackPacks archive (sts-backup sizes it the same, whatever the configuration's
/// claim size, which is for whole `.graph` archives).
const LIVE_SCRATCH_SIZE: &str = "5Gi";

const ENV_FILE: &str = "restore-stackgraph-v2-env.sh";
const SCRIPTS: [(Option<Operation>, &str, &str); 4] = [
    (
        None,
        ENV_FILE,
        include_str!("scripts/restore-stackgraph-v2-env.sh"),
    ),
    (
        Some(Operation::Restore),
        "restore-stackgraph-v2-live.sh",
        include_str!("scripts/restore-stackgraph-v2-live.sh"),
    ),
    (
        Some(Operation::Backfill),
        "restore-stackgraph-v2-backfill.sh",
        include_str!("scripts/restore-stackgraph-v2-backfill.sh"),
    ),
    (
        Some(Operation::Abort),
        "restore-stackgraph-v2-abort.sh",
        include_str!("scripts/restore-stackgraph-v2-abort.sh"),
    ),
];

/// Where the v2 backups are in the StackGraph bucket: `<s3Prefix>v2/`, the prefix joined as
/// sts-backup joins it.
pub fn stackgraph_v2_prefix(s3_prefix: &str) -> String {
    format!("{s3_prefix}v2/")
}

/// The spec of the Job of `op` (the live restore, the backfill or the abort). Only the live
/// restore scales down, restores the StackPacks (unless `skip_stackpacks`) and has scratch
/// space; `storage_endpoint` replaces the in-cluster MinIO Service, as for StackGraph.
pub fn stackgraph_v2_spec(
    config: &StackStateConfig,
    storage_endpoint: Option<&str>,
    skip_stackpacks: bool,
    op: Operation,
) -> Result<DataStoreSpec, ConfigError> {
    let section = config.stackgraph()?;
    let restore = config.stackgraph_restore()?;
    let (host_port, endpoint_url) = archive_endpoint(config, storage_endpoint)?;
    let packs = config.stackpacks.as_ref();
    let mut env: BTreeMap<String, String> = [
        ("BACKUP_STACKGRAPH_BUCKET_NAME", section.bucket.clone()),
        ("BACKUP_STACKGRAPH_S3_PREFIX", section.s3_prefix.clone()),
        ("S3_ENDPOINT", host_port.clone()),
        ("ZOOKEEPER_QUORUM", restore.zookeeper_quorum.clone()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    if let Some(url) = endpoint_url {
        env.insert("S3_ENDPOINT_URL".into(), url);
    }
    let mut restore_env = BTreeMap::from([
        ("FORCE_DELETE".to_string(), "-force".to_string()),
        (
            "SKIP_STACKPACKS".to_string(),
            (skip_stackpacks || packs.is_none()).to_string(),
        ),
    ]);
    let mut mounts = Vec::new();
    if let Some(packs) = packs {
        env.extend(platform_env(packs));
        restore_env.extend(stackpacks_env(packs, "BACKUP_STACKGRAPH_STACKPACKS_DIR"));
        if op == Operation::Restore {
            mounts.extend(stackpacks_mount(packs));
        }
    }
    let scratch = match op {
        Operation::Restore => Scratch::Claim(PvcSettings {
            size: LIVE_SCRATCH_SIZE.into(),
            ..restore.pvc.clone()
        }),
        _ => Scratch::None,
    };
    Ok(DataStoreSpec {
        name: STACKGRAPH_V2.into(),
        lock: super::STACKGRAPH.into(),
        scale_down_selector: restore.scale_down_label_selector.clone(),
        bucket: section.bucket.clone(),
        prefix: stackgraph_v2_prefix(&section.s3_prefix),
        env,
        restore_env,
        wait_for: Some(super::wait_target(&host_port)?),
        scripts: SCRIPTS
            .iter()
            .map(|(_, file, text)| (file.to_string(), text.to_string()))
            .collect(),
        commands: SCRIPTS
            .iter()
            .filter_map(|(op, file, _)| Some(((*op)?, file.to_string())))
            .collect(),
        logging_config_map: restore.logging_config_config_map.clone(),
        archive_split_size: None,
        job: restore.job.clone(),
        scratch,
        mounts,
        instances: vec![],
        common_labels: config.common_labels.clone(),
        ttl_seconds_after_finished: 600,
    })
}

#[cfg(test)]
mod tests {
    use super::super::JobRequest;
    use super::super::test_support::container_env;
    use super::*;
    use serde_json::Value;

    const CONFIG: &str = "minio:\n  service: {name: suse-observability-minio, port: 9000}\n  accessKey: a\n  secretKey: b\n\
        stackgraph:\n  bucket: sts-stackgraph-backup\n  s3Prefix: graph/\n  restore:\n    scaleDownLabelSelector: x=y\n\
        \x20   zookeeperQuorum: zk:2181\n    job: {image: img, waitImage: wait}\n    pvc: {size: 100Gi, storageClassName: fast}\n\
        stackpacks:\n  baseUrl: http://server:7070\n  receiverBaseUrl: http://receiver:7077\n  platformVersion: 7.0.0\n\
        \x20 localStackPacksUri: file:///var/stackpacks_local\n  backupDir: stackpacks/\n  pvc: suse-observability-stackpacks\n";

    fn request() -> JobRequest {
        JobRequest {
            archive: "sts-backup-20261130-0300.graph.v2".into(),
            access_key: "a".into(),
            secret_key: backup_core::Secret::new("b"),
            run_id: "r1".into(),
        }
    }

    fn volumes(job: &Value) -> Vec<String> {
        job["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_live_restore_purges_restores_the_stackpacks_and_has_a_bounded_scratch_claim() {
        let config = StackStateConfig::from_documents(("c", CONFIG), None).unwrap();
        let spec = stackgraph_v2_spec(&config, None, false, Operation::Restore).unwrap();
        assert_eq!(
            (spec.name.as_str(), spec.lock.as_str()),
            ("stackgraph-v2", "stackgraph")
        );
        assert_eq!(spec.prefix, "graph/v2/");
        let m = spec.manifests("sts", Operation::Restore, &request());
        assert_eq!(m.job["metadata"]["name"], "stackgraph-v2-restore-r1");
        let claim = m.volume.as_ref().unwrap();
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
        assert_eq!(claim["spec"]["storageClassName"], "fast");
        let env = container_env(&m.job);
        for (name, value) in [
            ("BACKUP_FILE", "sts-backup-20261130-0300.graph.v2"),
            ("FORCE_DELETE", "-force"),
            ("S3_ENDPOINT", "suse-observability-minio:9000"),
            ("BACKUP_STACKGRAPH_S3_PREFIX", "graph/"),
            ("SKIP_STACKPACKS", "false"),
            ("BACKUP_STACKGRAPH_STACKPACKS_DIR", "stackpacks/"),
            ("PLATFORM_VERSION", "7.0.0"),
        ] {
            assert_eq!(env[name], value, "{name}");
        }
        let container = &m.job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["command"][0],
            "/backup-restore-scripts/restore-stackgraph-v2-live.sh"
        );
        assert!(volumes(&m.job).contains(&"tmp-data".to_owned()));
        assert!(
            container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["mountPath"] == "/var/stackpacks_local")
        );
        assert!(
            m.scripts["data"][ENV_FILE]
                .as_str()
                .unwrap()
                .contains("s3a")
        );
        let skipped = stackgraph_v2_spec(&config, None, true, Operation::Restore).unwrap();
        assert_eq!(skipped.restore_env["SKIP_STACKPACKS"], "true");
    }

    #[test]
    fn backfill_and_abort_work_on_the_live_system_without_scratch_space() {
        let config = StackStateConfig::from_documents(("c", CONFIG), None).unwrap();
        for (op, script) in [
            (Operation::Backfill, "restore-stackgraph-v2-backfill.sh"),
            (Operation::Abort, "restore-stackgraph-v2-abort.sh"),
        ] {
            let spec = stackgraph_v2_spec(&config, None, false, op).unwrap();
            let m = spec.manifests("sts", op, &request());
            assert_eq!(
                m.job["metadata"]["name"],
                format!("stackgraph-v2-{}-r1", op.noun())
            );
            assert!(m.volume.is_none());
            assert!(!volumes(&m.job).contains(&"tmp-data".to_owned()));
            let env = container_env(&m.job);
            assert!(!env.contains_key("FORCE_DELETE") && !env.contains_key("SKIP_STACKPACKS"));
            assert_eq!(env["ZOOKEEPER_QUORUM"], "zk:2181");
            let command = &m.job["spec"]["template"]["spec"]["containers"][0]["command"][0];
            assert_eq!(*command, format!("/backup-restore-scripts/{script}"));
            assert!(spec.command(Operation::Backup).is_none());
        }
    }
}
