//! `settings:` and `stackpacks:`: configuration backups (`.sty` archives) and the platform
//! their restore talks to.

use super::config::{ConfigError, JobSettings, StackStateConfig, missing, require};
use serde::Deserialize;

/// `settings.restore`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsRestore {
    /// Workloads scaled down during a restore.
    #[serde(default)]
    pub scale_down_label_selector: String,
    /// ConfigMap with the logging configuration mounted in the Job.
    #[serde(default)]
    pub logging_config_config_map: Option<String>,
    /// ZooKeeper the import talks to.
    #[serde(default)]
    pub zookeeper_quorum: String,
    /// The claim of the legacy settings backup volume (archives kept on a PVC).
    #[serde(default)]
    pub pvc: Option<String>,
    /// The Job's pod.
    #[serde(default)]
    pub job: JobSettings,
}

/// `settings:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsSection {
    /// Bucket of the `.sty` archives.
    #[serde(default)]
    pub bucket: String,
    /// Key prefix in the bucket.
    #[serde(default)]
    pub s3_prefix: String,
    /// A bucket in the installation's own object store that holds copies of the archives.
    #[serde(default)]
    pub local_bucket: Option<String>,
    /// Restore settings.
    #[serde(default)]
    pub restore: SettingsRestore,
}

/// `stackpacks:`: the StackState platform the settings restore talks to.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackPacksSection {
    /// Base URL of the StackState server (`http://suse-observability-server:7070`).
    #[serde(default)]
    pub base_url: String,
    /// Base URL of the receiver.
    #[serde(default)]
    pub receiver_base_url: String,
    /// The platform version.
    #[serde(default)]
    pub platform_version: String,
    /// Where the server keeps local StackPacks (`file:///var/stackpacks_local`).
    #[serde(default)]
    pub local_stack_packs_uri: String,
    /// Directory of the StackPacks backup next to the settings archives.
    #[serde(default, alias = "backupDirectory")]
    pub backup_dir: String,
    /// Claim of the local StackPacks volume, mounted at the local StackPacks path.
    #[serde(default)]
    pub pvc: Option<String>,
}

impl StackStateConfig {
    /// The `settings` section, checked for what a listing needs.
    pub fn settings(&self) -> Result<&SettingsSection, ConfigError> {
        let section = self
            .settings
            .as_ref()
            .ok_or_else(|| missing("settings", ""))?;
        if section.bucket.trim().is_empty() {
            return Err(missing(
                "settings.bucket",
                " (the bucket of the .sty archives, e.g. sts-settings-backup)",
            ));
        }
        Ok(section)
    }

    /// The `settings.restore` settings, checked for what a restore Job needs.
    pub fn settings_restore(&self) -> Result<&SettingsRestore, ConfigError> {
        let restore = &self.settings()?.restore;
        require(&[
            (
                "settings.restore.scaleDownLabelSelector",
                &restore.scale_down_label_selector,
            ),
            ("settings.restore.job.image", &restore.job.image),
        ])?;
        self.object_store_service()?;
        self.object_store_credentials()?;
        Ok(restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "minio:\n  service: {name: m, port: 9000}\n  accessKey: a\n  secretKey: b\n\
        settings:\n  bucket: sts-settings-backup\n  restore:\n    scaleDownLabelSelector: s=t\n    pvc: legacy\n    job: {image: img}\n\
        stackpacks:\n  baseUrl: http://server:7070\n  localStackPacksUri: file:///var/stackpacks_local\n  backupDir: stackpacks/\n";

    #[test]
    fn reads_and_checks_the_settings_section() {
        let config = StackStateConfig::from_documents(("c", CONFIG), None).unwrap();
        let restore = config.settings_restore().unwrap();
        assert_eq!(restore.pvc.as_deref(), Some("legacy"));
        let packs = config.stackpacks.as_ref().unwrap();
        assert_eq!(packs.backup_dir, "stackpacks/");
        let no_image = StackStateConfig::from_documents(
            ("c", &CONFIG.replace("job: {image: img}", "job: {}")),
            None,
        )
        .unwrap();
        assert!(
            no_image
                .settings_restore()
                .unwrap_err()
                .to_string()
                .contains("settings.restore.job.image")
        );
        let none = StackStateConfig::from_documents(("c", "minio: {}\n"), None).unwrap();
        assert!(
            none.settings()
                .unwrap_err()
                .to_string()
                .contains("settings")
        );
    }
}
