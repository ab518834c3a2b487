//! `victoriaMetrics:`: vmbackup directories in S3, one per instance and time, restored with
//! vmrestore into the instances' volumes.

use super::config::{ConfigError, JobSettings, StackStateConfig, missing, require};
use serde::Deserialize;

/// One place backups are written to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// Bucket.
    #[serde(default)]
    pub bucket: String,
    /// Name prefix of the backup directories (`victoria-metrics-0`).
    #[serde(default)]
    pub prefix: String,
}

/// How many VictoriaMetrics instances a restore writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HaMode {
    /// One instance.
    #[default]
    Single,
    /// Two independent instances holding the same data: both are restored.
    Mirror,
}

impl HaMode {
    /// How many instances are restored.
    pub fn instances(self) -> usize {
        match self {
            HaMode::Single => 1,
            HaMode::Mirror => 2,
        }
    }
}

/// `victoriaMetrics.restore`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VictoriaMetricsRestore {
    /// Single instance or a mirrored pair.
    #[serde(default)]
    pub ha_mode: HaMode,
    /// Prefix of the instances' claims: instance `i` uses `<prefix>victoria-metrics-<i>-0`.
    #[serde(default)]
    pub persistent_volume_claim_prefix: String,
    /// Workloads scaled down during a restore.
    #[serde(default)]
    pub scale_down_label_selector: String,
    /// The Job's pod.
    #[serde(default)]
    pub job: JobSettings,
}

impl VictoriaMetricsRestore {
    /// The claim of instance `index`, as the chart's StatefulSet names it.
    pub fn claim(&self, index: usize) -> String {
        format!(
            "{}victoria-metrics-{index}-0",
            self.persistent_volume_claim_prefix
        )
    }
}

/// `victoriaMetrics:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct VictoriaMetricsSection {
    /// Where backups are (one location per instance).
    #[serde(default, rename = "S3Locations", alias = "s3Locations")]
    pub s3_locations: Vec<S3Location>,
    /// Restore settings.
    #[serde(default)]
    pub restore: VictoriaMetricsRestore,
}

impl StackStateConfig {
    /// The `victoriaMetrics` section, checked for what a listing needs.
    pub fn victoria_metrics(&self) -> Result<&VictoriaMetricsSection, ConfigError> {
        let section = self
            .victoria_metrics
            .as_ref()
            .ok_or_else(|| missing("victoriaMetrics", ""))?;
        if section.s3_locations.is_empty() {
            return Err(missing(
                "victoriaMetrics.S3Locations",
                " (e.g. [{bucket: sts-victoria-metrics-backup, prefix: victoria-metrics-0}])",
            ));
        }
        for (i, location) in section.s3_locations.iter().enumerate() {
            require(&[(
                &format!("victoriaMetrics.S3Locations[{i}].bucket"),
                &location.bucket,
            )])?;
        }
        self.object_store_service()?;
        Ok(section)
    }

    /// The `victoriaMetrics.restore` settings, checked for what a restore Job needs.
    pub fn victoria_metrics_restore(&self) -> Result<&VictoriaMetricsRestore, ConfigError> {
        let restore = &self.victoria_metrics()?.restore;
        require(&[
            (
                "victoriaMetrics.restore.scaleDownLabelSelector",
                &restore.scale_down_label_selector,
            ),
            ("victoriaMetrics.restore.job.image", &restore.job.image),
        ])?;
        self.object_store_credentials()?;
        Ok(restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "minio:\n  service: {name: m, port: 9000}\n  accessKey: a\n  secretKey: b\n\
        victoriaMetrics:\n  S3Locations:\n    - {bucket: vm, prefix: victoria-metrics-0}\n    - {bucket: vm, prefix: victoria-metrics-1}\n\
        \x20 restore:\n    haMode: mirror\n    persistentVolumeClaimPrefix: database-\n    scaleDownLabelSelector: v=m\n    job: {image: img}\n";

    #[test]
    fn reads_locations_mode_and_claims() {
        let config = StackStateConfig::from_documents(("c", CONFIG), None).unwrap();
        let restore = config.victoria_metrics_restore().unwrap();
        assert_eq!(restore.ha_mode.instances(), 2);
        assert_eq!(restore.claim(1), "database-victoria-metrics-1-0");
        assert_eq!(config.victoria_metrics().unwrap().s3_locations.len(), 2);
    }

    #[test]
    fn a_bad_mode_or_missing_bucket_names_the_field() {
        let bad = StackStateConfig::from_documents(
            ("c", &CONFIG.replace("haMode: mirror", "haMode: triple")),
            None,
        )
        .unwrap_err();
        assert!(
            bad.to_string().contains("victoriaMetrics.restore.haMode"),
            "{bad}"
        );
        let no_bucket = StackStateConfig::from_documents(
            (
                "c",
                &CONFIG.replace("{bucket: vm, prefix: victoria-metrics-1}", "{prefix: x}"),
            ),
            None,
        )
        .unwrap();
        assert!(
            no_bucket
                .victoria_metrics()
                .unwrap_err()
                .to_string()
                .contains("S3Locations[1].bucket")
        );
    }
}
