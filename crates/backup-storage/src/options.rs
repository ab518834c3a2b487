use backup_core::storage::PutOptions;
use std::time::Duration;

pub use backup_core::Secret;

/// How to reach and talk to a storage location. Every field is optional: what is not set
/// comes from the standard environment variables (see [`StorageOptions::from_env`]) or the
/// SDK's defaults.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// S3-compatible endpoint (`http://127.0.0.1:9000`); plain HTTP is allowed only when the
    /// URL says `http://`.
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// S3 access key id.
    pub access_key_id: Option<String>,
    /// S3 secret access key.
    pub secret_access_key: Option<Secret>,
    /// S3 session token.
    pub session_token: Option<Secret>,
    /// Use virtual-hosted-style S3 requests (`bucket.host`); path style otherwise. Defaults to
    /// path style when an endpoint is set (MinIO), virtual-hosted for AWS.
    pub virtual_hosted_style: Option<bool>,
    /// Azure storage account.
    pub azure_account: Option<String>,
    /// Azure storage account key.
    pub azure_key: Option<Secret>,
    /// Azure Blob endpoint (Azurite: `http://127.0.0.1:10000/devstoreaccount1`).
    pub azure_endpoint: Option<String>,
    /// Google service account key (its JSON), for Google Cloud Storage; without one the
    /// GCS client reads `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS` itself.
    pub gcs_service_account_key: Option<Secret>,
    /// Create a missing local directory instead of failing.
    pub create_missing_dir: bool,
    /// How streamed uploads are cut and sent.
    pub put: PutOptions,
    /// Retries of a failed request (5xx, 429, timeouts, dropped connections), with
    /// exponential backoff.
    pub max_retries: usize,
    /// The longest a request with its retries may take.
    pub retry_timeout: Duration,
}

impl StorageOptions {
    /// Defaults, then the standard variables: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`),
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, `AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_ENDPOINT`, `GOOGLE_SERVICE_ACCOUNT_KEY`.
    /// Other Google credentials are read by the GCS client itself
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// As [`StorageOptions::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| names.iter().find_map(|n| lookup(n));
        Self {
            endpoint: first(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
            region: first(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            access_key_id: first(&["AWS_ACCESS_KEY_ID"]),
            secret_access_key: first(&["AWS_SECRET_ACCESS_KEY"]).map(Secret::new),
            session_token: first(&["AWS_SESSION_TOKEN"]).map(Secret::new),
            virtual_hosted_style: first(&["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"])
                .map(|v| v == "true" || v == "1"),
            azure_account: first(&["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"]),
            azure_key: first(&["AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"]).map(Secret::new),
            azure_endpoint: first(&["AZURE_STORAGE_ENDPOINT"]),
            gcs_service_account_key: first(&["GOOGLE_SERVICE_ACCOUNT_KEY"]).map(Secret::new),
            ..Self::default_values()
        }
    }

    /// The standard variables that give these options, as [`StorageOptions::from_lookup`]
    /// reads them (secrets exposed: for a Secret that hands them to a process elsewhere).
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let mut variables = Vec::new();
        let mut put = |name, value: Option<String>| {
            if let Some(value) = value {
                variables.push((name, value));
            }
        };
        put("AWS_ENDPOINT_URL", self.endpoint.clone());
        put("AWS_REGION", self.region.clone());
        put("AWS_ACCESS_KEY_ID", self.access_key_id.clone());
        put(
            "AWS_SECRET_ACCESS_KEY",
            self.secret_access_key
                .as_ref()
                .map(|s| s.expose().to_owned()),
        );
        put(
            "AWS_SESSION_TOKEN",
            self.session_token.as_ref().map(|s| s.expose().to_owned()),
        );
        put(
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
            self.virtual_hosted_style.map(|v| v.to_string()),
        );
        put("AZURE_STORAGE_ACCOUNT_NAME", self.azure_account.clone());
        put(
            "AZURE_STORAGE_ACCOUNT_KEY",
            self.azure_key.as_ref().map(|s| s.expose().to_owned()),
        );
        put("AZURE_STORAGE_ENDPOINT", self.azure_endpoint.clone());
        put(
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            self.gcs_service_account_key
                .as_ref()
                .map(|s| s.expose().to_owned()),
        );
        variables
    }

    fn default_values() -> Self {
        Self {
            max_retries: 5,
            retry_timeout: Duration::from_secs(120),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_the_standard_variables_and_hides_secrets() {
        let vars: HashMap<&str, &str> = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_DEFAULT_REGION", "minio"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "azure-secret"),
            (
                "GOOGLE_SERVICE_ACCOUNT_KEY",
                r#"{"private_key": "gcs-secret"}"#,
            ),
        ]
        .into();
        let options = StorageOptions::from_lookup(|n| vars.get(n).map(|v| v.to_string()));
        assert_eq!(options.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(options.region.as_deref(), Some("minio"));
        assert_eq!(
            options.secret_access_key.as_ref().map(Secret::expose),
            Some("very-secret")
        );
        assert_eq!(options.max_retries, 5);
        let variables: HashMap<&str, String> = options.variables().into_iter().collect();
        let again = StorageOptions::from_lookup(|n| variables.get(n).cloned());
        assert_eq!(again.endpoint, options.endpoint);
        assert_eq!(again.region, options.region);
        assert_eq!(again.access_key_id, options.access_key_id);
        assert_eq!(
            again.secret_access_key.as_ref().map(Secret::expose),
            Some("very-secret")
        );
        assert_eq!(
            again.azure_key.as_ref().map(Secret::expose),
            Some("azure-secret")
        );
        assert_eq!(
            again.gcs_service_account_key.as_ref().map(Secret::expose),
            Some(r#"{"private_key": "gcs-secret"}"#)
        );
        let debug = format!("{options:?}");
        assert!(
            !debug.contains("very-secret")
                && !debug.contains("azure-secret")
                && !debug.contains("gcs-secret"),
            "{debug}"
        );
    }
}
