//! Opening a [`RepositoryLocation`] as an [`ObjectStorage`].

use crate::options::StorageOptions;
use crate::store::ObjectStoreStorage;
use backup_core::{ObjectStorage, RepositoryLocation, StorageError, StorageScheme};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// The smallest part S3 accepts in a multipart upload (all parts but the last).
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Opens a storage location. Nothing is sent over the network yet: a bad endpoint or
/// credential shows up on the first call.
pub async fn open(
    location: &RepositoryLocation,
    options: &StorageOptions,
) -> Result<Arc<dyn ObjectStorage>, StorageError> {
    if options.put.part_size < MIN_PART_SIZE {
        return Err(StorageError::Invalid(format!(
            "part size {} is below the 5 MiB that S3 requires",
            options.put.part_size
        )));
    }
    for (what, endpoint) in [
        ("the storage endpoint", &options.endpoint),
        ("the Azure endpoint", &options.azure_endpoint),
    ] {
        if let Some(endpoint) = endpoint {
            backup_core::location::check_endpoint(what, endpoint).map_err(StorageError::Invalid)?;
        }
    }
    if options.put.concurrency == 0 {
        return Err(StorageError::Invalid(
            "upload concurrency must be at least 1".into(),
        ));
    }
    let (store, backend, endpoint): (Arc<dyn ObjectStore>, &'static str, String) = match location
        .scheme
    {
        StorageScheme::File => {
            let dir = location
                .path
                .clone()
                .ok_or_else(|| StorageError::Invalid("file location without a path".into()))?;
            if options.create_missing_dir {
                tokio::fs::create_dir_all(&dir).await?;
            } else if !tokio::fs::try_exists(&dir).await? {
                return Err(StorageError::BucketNotFound {
                    bucket: dir.display().to_string(),
                });
            }
            let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| StorageError::Other {
                backend: "local".into(),
                detail: e.to_string(),
            })?;
            (
                Arc::new(fs.with_automatic_cleanup(true)),
                "local",
                dir.display().to_string(),
            )
        }
        StorageScheme::Memory => (Arc::new(InMemory::new()), "memory", "memory".into()),
        StorageScheme::S3 => s3(location, options)?,
        StorageScheme::Azure => azure(location, options)?,
        StorageScheme::Gcs => gcs(location, options)?,
    };
    Ok(Arc::new(ObjectStoreStorage::new(
        store, location, backend, endpoint,
    )))
}

/// Google Cloud Storage, with the service account key of the options when they hold one;
/// the endpoint shown is the key's `gcs_base_url` when it names one (an emulator).
fn gcs(
    location: &RepositoryLocation,
    options: &StorageOptions,
) -> Result<(Arc<dyn ObjectStore>, &'static str, String), StorageError> {
    let mut builder = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(&location.bucket)
        .with_retry(retry(options));
    let mut endpoint = "https://storage.googleapis.com".to_owned();
    if let Some(key) = &options.gcs_service_account_key {
        builder = builder.with_service_account_key(key.expose());
        let base_url = serde_json::from_str::<serde_json::Value>(key.expose())
            .ok()
            .and_then(|key| key["gcs_base_url"].as_str().map(str::to_owned));
        if let Some(base_url) = base_url {
            endpoint = base_url;
        }
    }
    let gcs = builder.build().map_err(|e| invalid(location, e))?;
    Ok((Arc::new(gcs), "gcs", endpoint))
}

fn s3(
    location: &RepositoryLocation,
    options: &StorageOptions,
) -> Result<(Arc<dyn ObjectStore>, &'static str, String), StorageError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&location.bucket)
        .with_retry(retry(options));
    builder = builder.with_region(options.region.clone().unwrap_or_else(|| "us-east-1".into()));
    if let Some(key) = &options.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }
    if let Some(token) = &options.session_token {
        builder = builder.with_token(token.expose());
    }
    let endpoint = match &options.endpoint {
        Some(endpoint) => {
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            builder = builder
                .with_endpoint(&endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(options.virtual_hosted_style.unwrap_or(false));
            endpoint
        }
        None => {
            builder = builder
                .with_virtual_hosted_style_request(options.virtual_hosted_style.unwrap_or(true));
            "https://s3.amazonaws.com".into()
        }
    };
    Ok((
        Arc::new(builder.build().map_err(|e| invalid(location, e))?),
        "s3",
        endpoint,
    ))
}

fn azure(
    location: &RepositoryLocation,
    options: &StorageOptions,
) -> Result<(Arc<dyn ObjectStore>, &'static str, String), StorageError> {
    let mut builder = MicrosoftAzureBuilder::from_env()
        .with_container_name(&location.bucket)
        .with_retry(retry(options));
    if let Some(account) = &options.azure_account {
        builder = builder.with_account(account);
    }
    if let Some(key) = &options.azure_key {
        builder = builder.with_access_key(key.expose());
    }
    let endpoint = match &options.azure_endpoint {
        Some(endpoint) => {
            builder = builder
                .with_endpoint(endpoint.clone())
                .with_allow_http(endpoint.starts_with("http://"));
            endpoint.clone()
        }
        None => format!(
            "https://{}.blob.core.windows.net",
            options.azure_account.as_deref().unwrap_or("<account>")
        ),
    };
    Ok((
        Arc::new(builder.build().map_err(|e| invalid(location, e))?),
        "azure",
        endpoint,
    ))
}

fn retry(options: &StorageOptions) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
        max_retries: options.max_retries,
        retry_timeout: options.retry_timeout,
    }
}

fn invalid(location: &RepositoryLocation, error: object_store::Error) -> StorageError {
    StorageError::Invalid(format!("{location}: {error}"))
}
