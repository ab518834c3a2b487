//! Embedding kbackup's storage library: open a storage URL and list what is there.
//!
//! ```sh
//! cargo run -p kbackup-examples --example storage_list -- s3://sts-stackgraph-backup
//! ```
//! Credentials and endpoint come from the standard variables (`AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, ...); with the test environment, `source .testenv/env.sh` and set
//! `AWS_ENDPOINT_URL=$KBACKUP_TEST_S3_ENDPOINT`.

use anyhow::Context;
use backup_core::{ObjectStorageExt, RepositoryLocation};
use backup_storage::StorageOptions;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args().nth(1).context("usage: storage_list URL")?;
    let location = RepositoryLocation::parse(&url)?;
    let mut options = StorageOptions::from_env();
    // The test environment names its MinIO in its own variable.
    if options.endpoint.is_none() {
        options.endpoint = std::env::var("KBACKUP_TEST_S3_ENDPOINT").ok();
    }
    let storage = backup_storage::open(&location, &options).await?;
    let objects = storage.list_all("").await?;
    let total: u64 = objects.iter().map(|o| o.size).sum();
    for object in &objects {
        println!("{:>12}  {}", object.size, object.key);
    }
    println!(
        "{} objects, {total} bytes in {}",
        objects.len(),
        storage.location()
    );
    Ok(())
}
