//! `configure`: the snapshot repository and the SLM policy from the configuration, created or
//! updated only when they differ (idempotent), as requests that can be shown without secrets.

use crate::client::{EsClient, encode};
use backup_core::EngineError;
use backup_core::stackstate::{RepositoryType, SlmPolicy, SnapshotRepository};
use elasticsearch::http::Method;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Settings whose values are credentials: never shown.
const SECRET_SETTINGS: [&str; 2] = ["access_key", "secret_key"];

/// One object `configure` manages, as the request that puts it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigureRequest {
    /// What it is (`repository sts-backup`, `SLM policy auto-sts-backup`).
    pub object: String,
    /// `PUT /_snapshot/sts-backup`.
    pub path: String,
    /// The body.
    pub body: Value,
}

impl ConfigureRequest {
    /// The body with credentials replaced by `<redacted>`, for display.
    pub fn redacted(&self) -> Value {
        let mut body = self.body.clone();
        if let Some(settings) = body["settings"].as_object_mut() {
            for key in SECRET_SETTINGS {
                if settings.contains_key(key) {
                    settings.insert(key.into(), json!("<redacted>"));
                }
            }
        }
        body
    }
}

/// What `configure` did to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Change {
    /// It did not exist.
    Created,
    /// It differed.
    Updated,
    /// It was as configured.
    Unchanged,
}

/// The repository request from `elasticsearch.snapshotRepository`.
pub fn repository_request(repository: &SnapshotRepository) -> ConfigureRequest {
    let settings = match repository.kind {
        RepositoryType::S3 => json!({
            "bucket": repository.bucket,
            "region": repository.region.clone().unwrap_or_else(|| "minio".into()),
            "endpoint": repository.endpoint,
            "base_path": repository.basepath,
            "protocol": repository.protocol.clone().unwrap_or_else(|| "http".into()),
            "path_style_access": true,
            "access_key": repository.access_key.expose(),
            "secret_key": repository.secret_key.expose(),
        }),
        RepositoryType::Fs => json!({"location": repository.location}),
        RepositoryType::Azure => json!({
            "container": repository.container,
            "base_path": repository.basepath,
            "client": repository.client.clone().unwrap_or_else(|| "default".into()),
        }),
    };
    let kind = match repository.kind {
        RepositoryType::S3 => "s3",
        RepositoryType::Fs => "fs",
        RepositoryType::Azure => "azure",
    };
    ConfigureRequest {
        object: format!("repository {}", repository.name),
        path: format!("/_snapshot/{}", encode(&repository.name)),
        body: json!({"type": kind, "settings": settings}),
    }
}

/// The SLM policy request from `elasticsearch.slm`.
pub fn slm_request(slm: &SlmPolicy) -> ConfigureRequest {
    let mut retention = Map::new();
    if !slm.retention_expire_after.is_empty() {
        retention.insert("expire_after".into(), json!(slm.retention_expire_after));
    }
    if slm.retention_min_count > 0 {
        retention.insert("min_count".into(), json!(slm.retention_min_count));
    }
    if slm.retention_max_count > 0 {
        retention.insert("max_count".into(), json!(slm.retention_max_count));
    }
    ConfigureRequest {
        object: format!("SLM policy {}", slm.name),
        path: format!("/_slm/policy/{}", encode(&slm.name)),
        body: json!({
            "schedule": slm.schedule,
            "name": slm.snapshot_template_name,
            "repository": slm.repository,
            "config": {"indices": slm.indices, "include_global_state": false},
            "retention": retention,
        }),
    }
}

/// Whether `current` already holds everything `desired` sets (values compared as text:
/// Elasticsearch answers settings as strings).
fn covers(current: &Value, desired: &Value) -> bool {
    match (current, desired) {
        (Value::Object(current), Value::Object(desired)) => desired
            .iter()
            .all(|(key, value)| current.get(key).is_some_and(|c| covers(c, value))),
        (current, desired) => text(current) == text(desired),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl EsClient {
    /// Creates or updates the snapshot repository (Elasticsearch verifies it on every node).
    pub async fn apply_repository(
        &self,
        request: &ConfigureRequest,
    ) -> Result<Change, EngineError> {
        let reply = self.call(Method::Get, &request.path, &[], None).await?;
        let change = match reply.status {
            404 => Change::Created,
            _ => {
                let body = reply.ok(&format!("reading {}", request.object))?;
                let current = body.as_object().and_then(|o| o.values().next()).cloned();
                // Credentials may not be echoed back: compare what the server shows.
                let mut desired = request.body.clone();
                if let (Some(settings), Some(current)) = (
                    desired["settings"].as_object_mut(),
                    current.as_ref().and_then(|c| c["settings"].as_object()),
                ) {
                    settings.retain(|k, _| {
                        !SECRET_SETTINGS.contains(&k.as_str()) || current.contains_key(k)
                    });
                }
                match current {
                    Some(current) if covers(&current, &desired) => return Ok(Change::Unchanged),
                    _ => Change::Updated,
                }
            }
        };
        self.call(Method::Put, &request.path, &[], Some(&request.body))
            .await?
            .ok(&format!("putting {}", request.object))?;
        Ok(change)
    }

    /// Creates or updates the SLM policy. A server without snapshot lifecycle management
    /// (no x-pack) is named as such.
    pub async fn apply_slm(&self, request: &ConfigureRequest) -> Result<Change, EngineError> {
        let no_slm = |e: EngineError| {
            EngineError::Backend(format!(
                "{e} (does this Elasticsearch have snapshot lifecycle management? It needs the default distribution with x-pack)"
            ))
        };
        let reply = self.call(Method::Get, &request.path, &[], None).await?;
        let not_found = reply.status == 404
            && reply.body["error"]["type"].as_str() == Some("resource_not_found_exception");
        let change = if not_found {
            Change::Created
        } else {
            let body = reply
                .ok(&format!("reading {}", request.object))
                .map_err(no_slm)?;
            let current = body.as_object().and_then(|o| o.values().next());
            match current {
                Some(current) if covers(&current["policy"], &request.body) => {
                    return Ok(Change::Unchanged);
                }
                _ => Change::Updated,
            }
        };
        self.call(Method::Put, &request.path, &[], Some(&request.body))
            .await?
            .ok(&format!("putting {}", request.object))
            .map_err(no_slm)?;
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::stackstate::StackStateConfig;

    fn config(extra: &str) -> StackStateConfig {
        let text = format!(
            "elasticsearch:\n  snapshotRepository: {{name: sts-backup, bucket: b, endpoint: \"minio:9000\", basepath: es, accessKey: AK, secretKey: SK{extra}}}\n\
             \x20 slm: {{name: auto, schedule: \"0 0 3 * * ?\", snapshotTemplateName: \"<sts-backup-{{now{{yyyyMMdd-HHmm}}}}>\", repository: sts-backup, indices: \"sts*\", retentionExpireAfter: 30d, retentionMinCount: 5, retentionMaxCount: 30}}\n"
        );
        StackStateConfig::from_documents(("c", &text), None).unwrap()
    }

    #[test]
    fn the_s3_repository_matches_the_chart_and_hides_its_keys() {
        let s3 = config("");
        let request = repository_request(s3.elasticsearch_snapshot_repository().unwrap());
        assert_eq!(request.path, "/_snapshot/sts-backup");
        assert_eq!(request.body["type"], "s3");
        let settings = &request.body["settings"];
        assert_eq!(
            (
                settings["region"].as_str(),
                settings["protocol"].as_str(),
                settings["path_style_access"].as_bool()
            ),
            (Some("minio"), Some("http"), Some(true))
        );
        assert_eq!(settings["secret_key"], "SK");
        let shown = request.redacted().to_string();
        assert!(
            !shown.contains("\"SK\"") && !shown.contains("\"AK\""),
            "{shown}"
        );
        let fs = config(", type: fs, location: /snapshots");
        let fs = repository_request(fs.elasticsearch_snapshot_repository().unwrap());
        assert_eq!(
            fs.body,
            json!({"type": "fs", "settings": {"location": "/snapshots"}})
        );
    }

    #[test]
    fn the_slm_policy_has_schedule_template_and_retention() {
        let request = slm_request(config("").elasticsearch_slm().unwrap());
        assert_eq!(request.path, "/_slm/policy/auto");
        assert_eq!(request.body["name"], "<sts-backup-{now{yyyyMMdd-HHmm}}>");
        assert_eq!(request.body["config"]["include_global_state"], false);
        assert_eq!(
            request.body["retention"],
            json!({"expire_after": "30d", "min_count": 5, "max_count": 30})
        );
    }

    #[test]
    fn comparison_reads_settings_as_text() {
        let current = json!({"type": "s3", "settings": {"path_style_access": "true", "bucket": "b", "extra": "x"}});
        assert!(covers(
            &current,
            &json!({"type": "s3", "settings": {"path_style_access": true, "bucket": "b"}})
        ));
        assert!(!covers(
            &current,
            &json!({"type": "s3", "settings": {"bucket": "c"}})
        ));
    }
}
