//! A storage location probed as a backup tool uses it: write, read back, list,
//! conditional create (what locks rely on), delete; each step timed, the first failure
//! named, nothing left behind.

use backup_core::{ObjectStorage, ObjectStorageExt, StorageError};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::Serialize;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Size of the probe object: large enough to cross a TCP window, small enough to be quick.
const PROBE_SIZE: usize = 1024 * 1024;

/// One step of the probe.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeStep {
    /// `write`, `read`, `list`, `conditional create`, `delete`.
    pub step: &'static str,
    /// `ok`, `FAILED` or `skipped` (after a failure).
    pub result: &'static str,
    /// How long it took.
    pub millis: Option<u128>,
    /// What it found.
    pub detail: String,
}

/// The probe's steps, and the first failure.
#[derive(Debug)]
pub struct StorageProbe {
    /// Every step, in order.
    pub steps: Vec<ProbeStep>,
    /// Why the first failed step failed (`None`: the location is usable).
    pub failure: Option<StorageError>,
}

/// Probes `storage` under `.kbackup-check/`; after a failure the remaining steps are
/// skipped and the probe object is deleted.
pub async fn probe_storage(storage: &dyn ObjectStorage) -> StorageProbe {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let key = format!(".kbackup-check/{nanos:x}");
    let body = probe_body(nanos);
    let mut steps = Vec::new();
    let mut failure: Option<StorageError> = None;
    for (name, step) in STEPS {
        if failure.is_some() {
            steps.push(ProbeStep {
                step: name,
                result: "skipped",
                millis: None,
                detail: String::new(),
            });
            continue;
        }
        let started = Instant::now();
        let outcome = step(storage, &key, body.clone()).await;
        let millis = Some(started.elapsed().as_millis());
        let (result, detail) = match outcome {
            Ok(detail) => ("ok", detail),
            Err(error) => {
                let detail = error.to_string();
                failure = Some(error);
                ("FAILED", detail)
            }
        };
        steps.push(ProbeStep {
            step: name,
            result,
            millis,
            detail,
        });
    }
    if failure.is_some() {
        // Leave nothing behind, whatever failed.
        let _ = storage.delete(&key).await;
    }
    StorageProbe { steps, failure }
}

type StepFuture<'a> = futures::future::BoxFuture<'a, Result<String, StorageError>>;
type StepFn = for<'a> fn(&'a dyn ObjectStorage, &'a str, Bytes) -> StepFuture<'a>;

const STEPS: [(&str, StepFn); 5] = [
    ("write", |s, key, body| {
        Box::pin(async move {
            s.put_bytes(key, body).await?;
            Ok(format!("{PROBE_SIZE} bytes"))
        })
    }),
    ("read", |s, key, body| {
        Box::pin(async move {
            let read = s.get_bytes(key).await?;
            if read != body {
                return Err(StorageError::Invalid(format!(
                    "read back {} bytes that differ from the {} written",
                    read.len(),
                    body.len()
                )));
            }
            Ok("content matches".into())
        })
    }),
    ("list", |s, key, _| {
        Box::pin(async move {
            let dir = key.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
            let found: Vec<_> = s.list(dir).try_collect().await?;
            if !found.iter().any(|m| m.key == key) {
                return Err(StorageError::Invalid(format!(
                    "'{key}' was written but is not listed"
                )));
            }
            Ok(format!("{} object(s) under {dir}/", found.len()))
        })
    }),
    ("conditional create", |s, key, _| {
        Box::pin(async move {
            match s.put_if_absent(key, Bytes::from_static(b"x")).await {
                Err(StorageError::AlreadyExists { .. }) => Ok("refuses to overwrite".into()),
                Ok(_) => Err(StorageError::Invalid(
                    "a create-if-absent overwrote an existing object: locks would be unsafe".into(),
                )),
                Err(e) => Err(e),
            }
        })
    }),
    ("delete", |s, key, _| {
        Box::pin(async move {
            s.delete(key).await?;
            if s.exists(key).await? {
                return Err(StorageError::Invalid(format!(
                    "'{key}' still exists after delete"
                )));
            }
            Ok("gone".into())
        })
    }),
];

/// Deterministic, incompressible-looking bytes (xorshift), different every run.
fn probe_body(seed: u128) -> Bytes {
    let mut state = (seed as u64) | 1;
    let mut out = Vec::with_capacity(PROBE_SIZE);
    while out.len() < PROBE_SIZE {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(PROBE_SIZE);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::RepositoryLocation;

    #[tokio::test]
    async fn a_usable_store_passes_every_step_and_keeps_nothing() {
        let location = RepositoryLocation::parse("memory://probe").unwrap();
        let storage = backup_storage::open(&location, &Default::default())
            .await
            .unwrap();
        let probe = probe_storage(storage.as_ref()).await;
        assert!(probe.failure.is_none(), "{:?}", probe.failure);
        let results: Vec<_> = probe.steps.iter().map(|s| (s.step, s.result)).collect();
        assert_eq!(
            results,
            [
                ("write", "ok"),
                ("read", "ok"),
                ("list", "ok"),
                ("conditional create", "ok"),
                ("delete", "ok")
            ]
        );
        let left: Vec<_> = storage.list("").try_collect().await.unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
}
