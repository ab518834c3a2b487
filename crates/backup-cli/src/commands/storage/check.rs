//! `kbackup storage check URL`: a write/read/list/conditional-create/delete probe with a
//! verdict a person can act on.

use super::{open, parse_location};
use crate::cli::StorageArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_core::{ObjectStorage, ObjectStorageExt, StorageError};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::Serialize;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Size of the probe object: large enough to cross a TCP window, small enough to be quick.
const PROBE_SIZE: usize = 1024 * 1024;

/// One step of the probe.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Step {
    step: &'static str,
    result: &'static str,
    millis: Option<u128>,
    detail: String,
}

impl Tabular for Step {
    fn headers() -> Vec<&'static str> {
        vec!["STEP", "RESULT", "TIME", "DETAIL"]
    }
    fn cells(&self) -> Vec<String> {
        let time = self
            .millis
            .map(|ms| format!("{ms}ms"))
            .unwrap_or_else(|| "-".into());
        vec![
            self.step.into(),
            self.result.into(),
            time,
            self.detail.clone(),
        ]
    }
}

/// Probes the location; exits 1 naming the first step that failed and its cause.
pub async fn run(context: &Context, url: &str, args: &StorageArgs) -> CliResult {
    let location = parse_location(url)?;
    let (storage, _) = open(context, &location, args).await?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let key = format!(".kbackup-check/{nanos:x}");
    let body = probe_body(nanos);

    let mut steps: Vec<Step> = Vec::new();
    let mut failure: Option<StorageError> = None;
    for (name, step) in STEPS {
        if failure.is_some() {
            steps.push(Step {
                step: name,
                result: "skipped",
                millis: None,
                detail: String::new(),
            });
            continue;
        }
        let started = Instant::now();
        let outcome = step(storage.as_ref(), &key, body.clone()).await;
        let millis = Some(started.elapsed().as_millis());
        match outcome {
            Ok(detail) => steps.push(Step {
                step: name,
                result: "ok",
                millis,
                detail,
            }),
            Err(error) => {
                steps.push(Step {
                    step: name,
                    result: "FAILED",
                    millis,
                    detail: error.to_string(),
                });
                failure = Some(error);
            }
        }
    }
    if failure.is_some() {
        // Leave nothing behind, whatever failed.
        let _ = storage.delete(&key).await;
    }
    emit(context.output, &steps)?;
    match failure {
        None => {
            context.info(&format!(
                "{}: usable (write, read, list, conditional create, delete all work)",
                storage.location()
            ));
            Ok(Exit::Success)
        }
        Some(error) => {
            Err(CliError::from(error)
                .context_message(&format!("{} is not usable", storage.location())))
        }
    }
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
