use super::{ElasticsearchSection, SettingsSection, StackPacksSection, VictoriaMetricsSection};
use crate::Secret;
use crate::cluster::SecretValue;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// The ConfigMap and Secret that hold the configuration.
pub const DEFAULT_CONFIG_NAME: &str = "suse-observability-backup-config";
/// Their key.
pub const DEFAULT_CONFIG_KEY: &str = "config";

/// Why the configuration cannot be used; names the source and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A document is not valid YAML.
    #[error("{source_name}: invalid YAML: {detail}")]
    Syntax {
        /// ConfigMap, Secret or file.
        source_name: String,
        /// The parser's message with line and column.
        detail: String,
    },
    /// A field has the wrong type or value.
    #[error("configuration field {field}: {detail}")]
    Field {
        /// Dotted path (`stackgraph.restore.pvc.size`).
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A field the command needs is missing or empty.
    #[error("configuration field {field} is required{hint}")]
    Missing {
        /// Dotted path.
        field: String,
        /// How to fix it, when there is something to say.
        hint: String,
    },
}

/// A Kubernetes Service and port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Service name.
    #[serde(default)]
    pub name: String,
    /// Port.
    #[serde(default)]
    pub port: u16,
}

/// `minio:` (or the newer `storage:`): the object store the backups live in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSection {
    /// The in-cluster Service.
    #[serde(default)]
    pub service: ServiceRef,
    /// Access key.
    #[serde(default)]
    pub access_key: Secret,
    /// Secret key.
    #[serde(default)]
    pub secret_key: Secret,
    /// `storage.globalBackupEnabled` (newer charts): whether backups are also kept in the
    /// remote buckets; `false`, the settings are only in `settings.localBucket`.
    #[serde(default)]
    pub global_backup_enabled: Option<bool>,
}

/// `stackgraph.restore.job`: how the restore Job's pod is built.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSettings {
    /// Extra labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations of the Job's pod (kbackup's addition; e.g. `sidecar.istio.io/inject: "false"`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Image of the restore container.
    #[serde(default)]
    pub image: String,
    /// Image of the init container that waits for dependencies.
    #[serde(default)]
    pub wait_image: String,
    /// Pull secrets (names or `{name: ...}` objects).
    #[serde(default)]
    pub image_pull_secrets: Vec<Value>,
    /// Pod security context.
    #[serde(default)]
    pub security_context: Option<Value>,
    /// Container security context.
    #[serde(default)]
    pub container_security_context: Option<Value>,
    /// Node selector.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    #[serde(default)]
    pub tolerations: Vec<Value>,
    /// Affinity.
    #[serde(default)]
    pub affinity: Option<Value>,
    /// Resources.
    #[serde(default)]
    pub resources: Option<Value>,
}

/// `stackgraph.restore.pvc`: the scratch volume.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcSettings {
    /// Size (`10Gi`).
    #[serde(default = "default_pvc_size")]
    pub size: String,
    /// Access modes.
    #[serde(default = "default_access_modes")]
    pub access_modes: Vec<String>,
    /// Storage class (cluster default when absent).
    #[serde(default)]
    pub storage_class_name: Option<String>,
}

fn default_pvc_size() -> String {
    "10Gi".into()
}

fn default_access_modes() -> Vec<String> {
    vec!["ReadWriteOnce".into()]
}

impl Default for PvcSettings {
    fn default() -> Self {
        Self {
            size: default_pvc_size(),
            access_modes: default_access_modes(),
            storage_class_name: None,
        }
    }
}

/// `stackgraph.restore`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackGraphRestore {
    /// Workloads scaled down during a restore.
    #[serde(default)]
    pub scale_down_label_selector: String,
    /// ConfigMap with the logging configuration mounted in the Job.
    #[serde(default)]
    pub logging_config_config_map: Option<String>,
    /// ZooKeeper the import talks to.
    #[serde(default)]
    pub zookeeper_quorum: String,
    /// The Job's pod.
    #[serde(default)]
    pub job: JobSettings,
    /// The scratch volume.
    #[serde(default)]
    pub pvc: PvcSettings,
}

/// `stackgraph:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackGraphSection {
    /// Bucket of the `.graph` archives.
    #[serde(default)]
    pub bucket: String,
    /// Key prefix in the bucket.
    #[serde(default)]
    pub s3_prefix: String,
    /// Archives are split into `.00`, `.01`, ... parts. Explicitly `false`, split archives
    /// are not archives at all (as `sts-backup` has it); unset, backups are whole and both
    /// kinds are listed.
    #[serde(default)]
    pub multipart_archive: Option<bool>,
    /// Part size of split archives (`500M`).
    #[serde(default)]
    pub archive_split_size: Option<String>,
    /// Talk to this S3 endpoint directly instead of port-forwarding to the MinIO Service
    /// (kbackup's addition).
    #[serde(default)]
    pub storage_endpoint: Option<String>,
    /// Restore settings.
    #[serde(default)]
    pub restore: StackGraphRestore,
}

impl StackGraphSection {
    /// Whether backups are split into parts.
    pub fn splits_archives(&self) -> bool {
        self.multipart_archive == Some(true)
    }

    /// Whether split archives are listed and restorable: unless turned off explicitly.
    pub fn lists_split_archives(&self) -> bool {
        self.multipart_archive != Some(false)
    }
}

/// The whole configuration. Sections kbackup does not use yet are kept as raw values.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackStateConfig {
    /// `kubernetes.commonLabels`: labels put on everything kbackup creates.
    #[serde(default, deserialize_with = "common_labels")]
    pub common_labels: BTreeMap<String, String>,
    /// `minio:` (older charts).
    #[serde(default)]
    pub minio: Option<ObjectStoreSection>,
    /// `storage:` (newer charts; wins over `minio:`).
    #[serde(default)]
    pub storage: Option<ObjectStoreSection>,
    /// `stackgraph:`.
    #[serde(default)]
    pub stackgraph: Option<StackGraphSection>,
    /// `settings:` (configuration backups, `.sty` archives).
    #[serde(default)]
    pub settings: Option<SettingsSection>,
    /// `stackpacks:` (the platform the settings restore talks to).
    #[serde(default)]
    pub stackpacks: Option<StackPacksSection>,
    /// `victoriaMetrics:`.
    #[serde(default)]
    pub victoria_metrics: Option<VictoriaMetricsSection>,
    /// `elasticsearch:`.
    #[serde(default)]
    pub elasticsearch: Option<ElasticsearchSection>,
}

fn common_labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    // `kubernetes: {commonLabels: {...}}` flattened into one field.
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Kubernetes {
        #[serde(default)]
        common_labels: BTreeMap<String, String>,
    }
    Ok(Kubernetes::deserialize(d)?.common_labels)
}

impl StackStateConfig {
    /// Parses the ConfigMap document and merges the Secret document over it (objects merge
    /// key by key; any other value in the Secret, `false` and `0` included, replaces).
    pub fn from_documents(
        config_map: (&str, &str),
        secret: Option<(&str, &str)>,
    ) -> Result<Self, ConfigError> {
        let mut merged = parse(config_map.0, config_map.1)?;
        if let Some((name, text)) = secret {
            merge(&mut merged, parse(name, text)?);
        }
        Self::from_value(merged)
    }

    /// Reads an already parsed document (the `stackstate:` section of kbackup's own
    /// configuration file).
    pub fn from_value(mut value: Value) -> Result<Self, ConfigError> {
        // `kubernetes` feeds `common_labels`; rename before typed parsing.
        if let Some(object) = value.as_object_mut()
            && let Some(kubernetes) = object.remove("kubernetes")
        {
            object.insert("commonLabels".into(), kubernetes);
        }
        crate::yaml::from_value(value).map_err(|e| ConfigError::Field {
            field: e
                .field
                .unwrap_or_default()
                .replace("commonLabels", "kubernetes"),
            detail: e.problem,
        })
    }

    /// Reads the two documents from ConfigMap and Secret data (`key` in each).
    pub fn from_objects(
        name: &str,
        key: &str,
        config_map: &BTreeMap<String, String>,
        secret: Option<&BTreeMap<String, SecretValue>>,
    ) -> Result<Self, ConfigError> {
        let text = config_map.get(key).ok_or_else(|| ConfigError::Missing {
            field: format!("ConfigMap {name} key '{key}'"),
            hint: String::new(),
        })?;
        let secret_text = secret
            .and_then(|s| s.get(key))
            .map(|v| String::from_utf8_lossy(v.expose()).into_owned());
        let secret_name = format!("Secret {name}");
        Self::from_documents(
            (&format!("ConfigMap {name}"), text),
            secret_text.as_deref().map(|t| (secret_name.as_str(), t)),
        )
    }

    /// The object store section (`storage:` over `minio:`).
    pub fn object_store(&self) -> Option<&ObjectStoreSection> {
        self.storage.as_ref().or(self.minio.as_ref())
    }

    /// Whether the backups go to the remote buckets too (`storage.globalBackupEnabled`;
    /// the legacy `minio:` shape always does).
    pub fn global_backup_enabled(&self) -> bool {
        self.object_store()
            .and_then(|store| store.global_backup_enabled)
            .unwrap_or(true)
    }

    /// The `stackgraph` section, checked for what a restore or list needs.
    pub fn stackgraph(&self) -> Result<&StackGraphSection, ConfigError> {
        let section = self
            .stackgraph
            .as_ref()
            .ok_or_else(|| missing("stackgraph", ""))?;
        if section.bucket.trim().is_empty() {
            return Err(missing(
                "stackgraph.bucket",
                " (the bucket of the .graph archives, e.g. sts-stackgraph-backup)",
            ));
        }
        if section.storage_endpoint.is_none() {
            self.object_store_service().map_err(|e| match e {
                ConfigError::Missing { field, .. } => missing(
                    &field,
                    " unless stackgraph.storageEndpoint or a storage endpoint is given",
                ),
                other => other,
            })?;
        }
        Ok(section)
    }

    /// The `stackgraph.restore` settings, checked for what a restore Job needs.
    pub fn stackgraph_restore(&self) -> Result<&StackGraphRestore, ConfigError> {
        let restore = &self.stackgraph()?.restore;
        require(&[
            (
                "stackgraph.restore.scaleDownLabelSelector",
                &restore.scale_down_label_selector,
            ),
            (
                "stackgraph.restore.zookeeperQuorum",
                &restore.zookeeper_quorum,
            ),
            ("stackgraph.restore.job.image", &restore.job.image),
            ("stackgraph.restore.pvc.size", &restore.pvc.size),
        ])?;
        self.object_store_credentials()?;
        Ok(restore)
    }

    /// The object store section, with the Service a port-forward or a Job reaches it by.
    pub fn object_store_service(&self) -> Result<&ObjectStoreSection, ConfigError> {
        let store = self
            .object_store()
            .ok_or_else(|| missing("minio (or storage)", ""))?;
        if store.service.name.is_empty() || store.service.port == 0 {
            return Err(missing("minio.service.name and minio.service.port", ""));
        }
        Ok(store)
    }

    /// The object store section, checked for the keys a Job needs.
    pub fn object_store_credentials(&self) -> Result<&ObjectStoreSection, ConfigError> {
        self.object_store()
            .filter(|s| !s.access_key.expose().is_empty() && !s.secret_key.expose().is_empty())
            .ok_or_else(|| {
                missing(
                    "minio.accessKey and minio.secretKey",
                    " (usually in the Secret of the same name)",
                )
            })
    }
}

/// Checks that each named field has a value.
pub(super) fn require(fields: &[(&str, &str)]) -> Result<(), ConfigError> {
    match fields.iter().find(|(_, value)| value.trim().is_empty()) {
        Some((field, _)) => Err(missing(field, "")),
        None => Ok(()),
    }
}

pub(super) fn missing(field: &str, hint: &str) -> ConfigError {
    ConfigError::Missing {
        field: field.to_owned(),
        hint: hint.to_owned(),
    }
}

fn parse(source_name: &str, text: &str) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    crate::yaml::value_from_yaml(text).map_err(|e| ConfigError::Syntax {
        source_name: source_name.to_owned(),
        detail: e.to_string(),
    })
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_MAP: &str = r#"
kubernetes:
  commonLabels:
    app.kubernetes.io/part-of: suse-observability
minio:
  service:
    name: suse-observability-minio
    port: 9000
stackgraph:
  bucket: sts-stackgraph-backup
  s3Prefix: ""
  multipartArchive: true
  restore:
    scaleDownLabelSelector: stackstate.com/connects-to-stackgraph=true
    zookeeperQuorum: suse-observability-zookeeper:2181
    job:
      image: quay.io/stackstate/stackstate-backup-container:1.0
      waitImage: quay.io/stackstate/wait:1.0
      tolerations: [{key: dedicated, operator: Exists}]
    pvc:
      size: 20Gi
elasticsearch:
  service: {name: suse-observability-elasticsearch-master-headless, port: 9200}
"#;
    const SECRET: &str = "minio:\n  accessKey: AKIAEXAMPLE\n  secretKey: very-secret-key\nstackgraph:\n  multipartArchive: false\n";

    fn config() -> StackStateConfig {
        StackStateConfig::from_documents(("ConfigMap", CONFIG_MAP), Some(("Secret", SECRET)))
            .unwrap()
    }

    #[test]
    fn merges_the_secret_over_the_config_map_even_to_false() {
        let c = config();
        let store = c.object_store().unwrap();
        assert_eq!(store.service.name, "suse-observability-minio");
        assert_eq!(store.access_key.expose(), "AKIAEXAMPLE");
        let sg = c.stackgraph().unwrap();
        assert!(
            sg.multipart_archive == Some(false),
            "the Secret can set false (the Go tool could not)"
        );
        assert_eq!(sg.restore.pvc.size, "20Gi");
        assert_eq!(sg.restore.pvc.access_modes, ["ReadWriteOnce"]);
        assert_eq!(
            c.common_labels["app.kubernetes.io/part-of"],
            "suse-observability"
        );
        assert!(c.stackgraph_restore().is_ok());
        assert!(c.elasticsearch.is_some());
    }

    /// The shape the current Helm chart renders: `storage:` instead of `minio:`, with
    /// `globalBackupEnabled` and `localPortForwardPort`, `stackpacks:`, one bucket per data
    /// store with `s3Prefix`, the settings' `localBucket`, sections kbackup does not use.
    #[test]
    fn reads_the_current_charts_storage_configuration() {
        let chart = r#"
storage:
  globalBackupEnabled: false
  service: {name: suse-observability-storage, port: 9000, localPortForwardPort: 9000}
  accessKey: chart-access
  secretKey: chart-secret
stackpacks:
  baseUrl: http://suse-observability-server:7070
  receiverBaseUrl: http://suse-observability-receiver:7077
  platformVersion: 7.0.0
  localStackPacksUri: /var/stackpacks_local
  backupDir: stackpacks/
stackgraph:
  bucket: sts-stackgraph-backup
  s3Prefix: graph/
  multipartArchive: true
  restore:
    scaleDownLabelSelector: observability.suse.com/scalable-during-stackgraph-restore=true
    zookeeperQuorum: suse-observability-zookeeper:2181
    job: {image: img, waitImage: wait, labels: {app: stackgraph-restore}}
    pvc: {size: 10Gi, accessModes: [ReadWriteOnce]}
settings:
  bucket: sts-settings-backup
  s3Prefix: ""
  localBucket: sts-settings-local-backup
  restore:
    scaleDownLabelSelector: observability.suse.com/scalable-during-settings-restore=true
    job: {image: img, waitImage: wait}
elasticsearch:
  service: {name: es, port: 9200, localPortForwardPort: 9200}
  snapshotRepository: {name: sts-backup, bucket: sts-elasticsearch-backup, endpoint: suse-observability-storage:9000, basepath: ""}
clickhouse:
  service: {name: clickhouse, port: 9000, localPortForwardPort: 9000}
  database: default
"#;
        let c = StackStateConfig::from_documents(("ConfigMap", chart), None).unwrap();
        let store = c.object_store_credentials().unwrap();
        assert_eq!(
            (store.service.name.as_str(), store.access_key.expose()),
            ("suse-observability-storage", "chart-access")
        );
        assert!(!c.global_backup_enabled());
        let sg = c.stackgraph().unwrap();
        assert!(sg.splits_archives() && sg.lists_split_archives());
        assert_eq!(sg.s3_prefix, "graph/");
        assert!(c.stackgraph_restore().is_ok());
        let settings = c.settings().unwrap();
        assert_eq!(
            settings.local_bucket.as_deref(),
            Some("sts-settings-local-backup")
        );
        assert_eq!(c.stackpacks.as_ref().unwrap().platform_version, "7.0.0");
        let legacy = StackStateConfig::from_documents(("ConfigMap", CONFIG_MAP), None).unwrap();
        assert!(legacy.global_backup_enabled(), "minio: always uploads");
    }

    #[test]
    fn secrets_never_print() {
        let text = format!("{:?}", config());
        assert!(
            !text.contains("very-secret-key") && !text.contains("AKIAEXAMPLE"),
            "{text}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_field_path() {
        let bad = CONFIG_MAP.replace("size: 20Gi", "size: [1]");
        let error = StackStateConfig::from_documents(("ConfigMap", &bad), None).unwrap_err();
        assert!(
            error.to_string().contains("stackgraph.restore.pvc.size"),
            "{error}"
        );
        let error = StackStateConfig::from_documents(
            ("ConfigMap", "kubernetes:\n  commonLabels: 3\n"),
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("kubernetes"), "{error}");
    }

    #[test]
    fn syntax_errors_name_the_source() {
        let error = StackStateConfig::from_documents(("ConfigMap x", "a: [1"), None).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Syntax { source_name, .. } if source_name == "ConfigMap x"),
            "{error}"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let no_secret = StackStateConfig::from_documents(("ConfigMap", CONFIG_MAP), None).unwrap();
        assert!(
            no_secret.stackgraph().is_ok(),
            "listing needs no credentials from the Secret"
        );
        let error = no_secret.stackgraph_restore().unwrap_err().to_string();
        assert!(error.contains("minio.accessKey"), "{error}");
        let no_image = StackStateConfig::from_documents(
            (
                "ConfigMap",
                &CONFIG_MAP.replace("image: quay", "imageX: quay"),
            ),
            Some(("Secret", SECRET)),
        )
        .unwrap();
        assert!(
            no_image
                .stackgraph_restore()
                .unwrap_err()
                .to_string()
                .contains("stackgraph.restore.job.image")
        );
        let no_bucket =
            StackStateConfig::from_documents(("ConfigMap", "stackgraph:\n  s3Prefix: x\n"), None)
                .unwrap();
        assert!(
            no_bucket
                .stackgraph()
                .unwrap_err()
                .to_string()
                .contains("stackgraph.bucket")
        );
        let direct = StackStateConfig::from_documents(
            (
                "f",
                "stackgraph:\n  bucket: b\n  storageEndpoint: http://s3:9000\n",
            ),
            None,
        )
        .unwrap();
        assert!(
            direct.stackgraph().is_ok(),
            "a direct endpoint needs no MinIO service"
        );
    }

    #[test]
    fn reads_from_config_objects() {
        let map = BTreeMap::from([("config".to_string(), CONFIG_MAP.to_string())]);
        let secret = BTreeMap::from([(
            "config".to_string(),
            SecretValue::new(SECRET.as_bytes().to_vec()),
        )]);
        let c = StackStateConfig::from_objects(DEFAULT_CONFIG_NAME, "config", &map, Some(&secret))
            .unwrap();
        assert_eq!(
            c.object_store().unwrap().secret_key.expose(),
            "very-secret-key"
        );
        let error =
            StackStateConfig::from_objects(DEFAULT_CONFIG_NAME, "other", &map, None).unwrap_err();
        assert!(error.to_string().contains("key 'other'"), "{error}");
    }
}
