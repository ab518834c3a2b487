//! One conformance suite, run against every backend: memory, a temporary directory, and the
//! real MinIO and Azurite of the test environment (`cargo xtask env up`).

use backup_core::storage::PutOptions;
use backup_core::{ByteStream, ObjectStorage, ObjectStorageExt, RepositoryLocation, StorageError};
use backup_storage::{Secret, StorageOptions, open};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use std::sync::Arc;

/// Part size used by the multipart checks (the S3 minimum).
const PART: usize = 5 * 1024 * 1024;

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

fn chunked(data: Bytes, chunk: usize) -> ByteStream {
    let pieces: Vec<Result<Bytes, StorageError>> = (0..data.len())
        .step_by(chunk)
        .map(|i| Ok(data.slice(i..(i + chunk).min(data.len()))))
        .collect();
    stream::iter(pieces).boxed()
}

async fn small_objects_round_trip(s: Arc<dyn ObjectStorage>) {
    let body = pattern(1000, 1);
    let meta = s.put_bytes("dir/a.bin", body.clone()).await.unwrap();
    assert_eq!(meta.size, 1000);
    assert_eq!(s.get_bytes("dir/a.bin").await.unwrap(), body);
    assert_eq!(s.head("dir/a.bin").await.unwrap().size, 1000);
    assert!(s.exists("dir/a.bin").await.unwrap());
    s.put_bytes("dir/empty", Bytes::new()).await.unwrap();
    assert_eq!(s.get_bytes("dir/empty").await.unwrap().len(), 0);
}

async fn large_streams_go_multipart_and_read_back_by_range(s: Arc<dyn ObjectStorage>) {
    let data = pattern(2 * PART + 12_345, 7);
    let options = PutOptions {
        part_size: PART,
        concurrency: 2,
    };
    let meta = s
        .put_stream("big/object", chunked(data.clone(), 64 * 1024), options)
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(s.head("big/object").await.unwrap().size, data.len() as u64);
    let read = s.get_bytes("big/object").await.unwrap();
    assert!(
        read == data,
        "multipart object differs from what was written"
    );
    let range = 5_000_000..5_300_000u64;
    let part: Vec<Bytes> = s
        .get("big/object", Some(range.clone()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let part: Vec<u8> = part.concat();
    assert_eq!(&part[..], &data[range.start as usize..range.end as usize]);
}

async fn a_failed_stream_leaves_nothing_behind(s: Arc<dyn ObjectStorage>) {
    let first = pattern(PART + 10, 3);
    let broken: ByteStream = stream::iter(vec![
        Ok(first),
        Err(StorageError::Invalid("source went away".into())),
    ])
    .boxed();
    let result = s
        .put_stream(
            "broken/object",
            broken,
            PutOptions {
                part_size: PART,
                concurrency: 2,
            },
        )
        .await;
    assert!(
        matches!(result, Err(StorageError::Invalid(_))),
        "{result:?}"
    );
    assert!(
        !s.exists("broken/object").await.unwrap(),
        "an aborted upload must not leave an object"
    );
    let small: ByteStream = stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(StorageError::Invalid("cut".into())),
    ])
    .boxed();
    assert!(
        s.put_stream("broken/small", small, PutOptions::default())
            .await
            .is_err()
    );
    assert!(!s.exists("broken/small").await.unwrap());
}

async fn put_if_absent_refuses_to_overwrite(s: Arc<dyn ObjectStorage>) {
    s.put_if_absent("locks/one", Bytes::from_static(b"first"))
        .await
        .unwrap();
    let second = s
        .put_if_absent("locks/one", Bytes::from_static(b"second"))
        .await;
    assert!(
        matches!(second, Err(StorageError::AlreadyExists { .. })),
        "{second:?}"
    );
    assert_eq!(s.get_bytes("locks/one").await.unwrap(), "first");
}

async fn listing_pages_through_more_than_a_thousand_objects(s: Arc<dyn ObjectStorage>) {
    let keys: Vec<String> = (0..1_050).map(|i| format!("many/{i:05}.graph")).collect();
    stream::iter(keys.clone())
        .map(|key| {
            let s = s.clone();
            async move { s.put_bytes(&key, Bytes::from_static(b"x")).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let listed: Vec<String> = s
        .list_all("many")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, keys);
}

async fn delimiter_listing_splits_objects_and_prefixes(s: Arc<dyn ObjectStorage>) {
    for key in ["tree/a", "tree/b", "tree/sub1/c", "tree/sub2/d/e"] {
        s.put_bytes(key, Bytes::from_static(b"1")).await.unwrap();
    }
    let listing = s.list_with_delimiter("tree").await.unwrap();
    let objects: Vec<_> = listing.objects.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(objects, ["tree/a", "tree/b"]);
    assert_eq!(listing.prefixes, ["tree/sub1", "tree/sub2"]);
}

async fn missing_objects_and_bad_keys(s: Arc<dyn ObjectStorage>) {
    assert!(
        s.get_bytes("nope/missing")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(s.head("nope/missing").await.unwrap_err().is_not_found());
    assert!(!s.exists("nope/missing").await.unwrap());
    s.delete("nope/missing")
        .await
        .expect("deleting a missing object is not an error");
    for bad in ["../escape", "a//b", "a/./b"] {
        assert!(
            matches!(
                s.put_bytes(bad, Bytes::new()).await,
                Err(StorageError::Invalid(_))
            ),
            "{bad}"
        );
    }
}

async fn delete_removes(s: Arc<dyn ObjectStorage>) {
    s.put_bytes("gone/x", Bytes::from_static(b"1"))
        .await
        .unwrap();
    s.delete("gone/x").await.unwrap();
    assert!(!s.exists("gone/x").await.unwrap());
    assert!(s.list_all("gone").await.unwrap().is_empty());
}

macro_rules! conformance {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        super::$name($open.await).await;
                    }
                };
            }
            case!(small_objects_round_trip);
            case!(large_streams_go_multipart_and_read_back_by_range);
            case!(a_failed_stream_leaves_nothing_behind);
            case!(put_if_absent_refuses_to_overwrite);
            case!(listing_pages_through_more_than_a_thousand_objects);
            case!(delimiter_listing_splits_objects_and_prefixes);
            case!(missing_objects_and_bad_keys);
            case!(delete_removes);
        }
    };
}

async fn memory() -> Arc<dyn ObjectStorage> {
    open(
        &RepositoryLocation::parse("memory://suite").unwrap(),
        &StorageOptions::default(),
    )
    .await
    .unwrap()
}

async fn local() -> Arc<dyn ObjectStorage> {
    // The directory lives as long as the test process; the OS temp dir is cleaned by the system.
    let dir = tempfile::tempdir().unwrap().keep();
    let options = StorageOptions {
        create_missing_dir: true,
        ..StorageOptions::default()
    };
    open(
        &RepositoryLocation::parse(&format!("file://{}/repo", dir.display())).unwrap(),
        &options,
    )
    .await
    .unwrap()
}

fn minio_options() -> StorageOptions {
    let server = backup_testing::s3();
    StorageOptions {
        endpoint: Some(server.endpoint),
        region: Some(server.region),
        access_key_id: Some(server.access_key_id),
        secret_access_key: Some(Secret::new(server.secret_access_key)),
        max_retries: 2,
        ..StorageOptions::default()
    }
}

async fn minio() -> Arc<dyn ObjectStorage> {
    let bucket = backup_testing::s3().bucket;
    let url = format!(
        "s3://{bucket}/{}",
        backup_testing::unique_name("conformance")
    );
    open(&RepositoryLocation::parse(&url).unwrap(), &minio_options())
        .await
        .unwrap()
}

async fn azurite() -> Arc<dyn ObjectStorage> {
    let server = backup_testing::azure();
    let options = StorageOptions {
        azure_account: Some(server.account),
        azure_key: Some(Secret::new(server.key)),
        azure_endpoint: Some(server.endpoint),
        max_retries: 2,
        ..StorageOptions::default()
    };
    let url = format!(
        "az://{}/{}",
        server.container,
        backup_testing::unique_name("conformance")
    );
    open(&RepositoryLocation::parse(&url).unwrap(), &options)
        .await
        .unwrap()
}

async fn gcs() -> Arc<dyn ObjectStorage> {
    let server = backup_testing::gcs();
    let options = StorageOptions {
        gcs_service_account_key: Some(Secret::new(server.service_account_key)),
        max_retries: 2,
        ..StorageOptions::default()
    };
    let url = format!(
        "gs://{}/{}",
        server.bucket,
        backup_testing::unique_name("conformance")
    );
    let storage = open(&RepositoryLocation::parse(&url).unwrap(), &options)
        .await
        .unwrap();
    assert_eq!(storage.location(), url);
    storage
}

conformance!(in_memory, memory());
conformance!(local_disk, local());
conformance!(real_minio, minio());
conformance!(real_azurite, azurite());
conformance!(gcs_emulator, gcs());

mod s3_errors {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wrong_secret_is_access_denied_and_never_printed() {
        let mut options = minio_options();
        options.secret_access_key = Some(Secret::new("definitely-wrong-secret"));
        let bucket = backup_testing::s3().bucket;
        let s = open(
            &RepositoryLocation::parse(&format!("s3://{bucket}")).unwrap(),
            &options,
        )
        .await
        .unwrap();
        let error = s
            .put_bytes("x", Bytes::from_static(b"1"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StorageError::AccessDenied { .. }),
            "{error:?}"
        );
        assert!(!format!("{error} {error:?}").contains("definitely-wrong-secret"));
    }

    #[tokio::test]
    async fn a_missing_bucket_is_named() {
        let s = open(
            &RepositoryLocation::parse("s3://no-such-bucket-kbackup").unwrap(),
            &minio_options(),
        )
        .await
        .unwrap();
        let error = s.list_all("").await.unwrap_err();
        assert!(
            matches!(&error, StorageError::BucketNotFound { bucket } if bucket == "no-such-bucket-kbackup"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_said_quickly() {
        let options = StorageOptions {
            endpoint: Some("http://127.0.0.1:1".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some(Secret::new("s")),
            max_retries: 0,
            retry_timeout: Duration::from_secs(5),
            ..StorageOptions::default()
        };
        let s = open(&RepositoryLocation::parse("s3://b").unwrap(), &options)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let error = s.head("x").await.unwrap_err();
        assert!(
            matches!(error, StorageError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_too_small_part_size_is_refused() {
        let options = StorageOptions {
            put: PutOptions {
                part_size: 1024,
                concurrency: 1,
            },
            ..StorageOptions::default()
        };
        let error = open(&RepositoryLocation::parse("memory://x").unwrap(), &options)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("5 MiB"), "{error}");
    }
}
