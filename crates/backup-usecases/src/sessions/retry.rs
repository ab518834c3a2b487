//! A failed session tried again as its configuration's `retryConfig` says: a new
//! BackupSession with one retry fewer (`spec.retryLeft`), which does not start before the
//! delay. Its name is a function of the first attempt's and its number, so a repeated step
//! never makes two.

use super::objects::object_name;
use super::plan::read;
use backup_api::{BackupConfiguration, BackupSession, BackupSessionSpec};
use backup_core::ClusterError;
use backup_core::cluster::ResourceStore;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// The label naming the first attempt on every retry of it.
pub const RETRY_OF: &str = "kbackup.io/retry-of";
/// The annotation of the time (RFC 3339) before which a retry does not start.
pub const NOT_BEFORE: &str = "kbackup.io/not-before";

/// The next attempt of the failed `session`: made when its configuration's session has
/// retries and this one has some left (and the configuration is not paused). Its name and
/// when it may start.
pub async fn retry_failed<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &BackupSession,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>, ClusterError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let invoker = &session.spec.invoker;
    let Ok(configuration) = read::<BackupConfiguration, _>(
        cluster,
        "BackupConfiguration",
        &invoker.namespace_or(&namespace),
        &invoker.name,
    )
    .await
    else {
        return Ok(None);
    };
    let retry = configuration
        .spec
        .sessions
        .iter()
        .find(|s| s.name == session.spec.session)
        .and_then(|s| s.retry_config.clone());
    let Some(retry) = retry else {
        return Ok(None);
    };
    let left = session.spec.retry_left.unwrap_or(retry.max_retry);
    if left == 0 || configuration.spec.paused {
        return Ok(None);
    }
    let name = session.metadata.name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = session.metadata.labels.clone().unwrap_or_default();
    let first = labels.get(RETRY_OF).cloned().unwrap_or(name);
    labels.insert(RETRY_OF.into(), first.clone());
    let attempt = retry.max_retry.saturating_sub(left) + 1;
    let retry_name = object_name(&[&first, "retry", &attempt.to_string()], 63);
    let delay = retry
        .delay
        .as_deref()
        .and_then(|d| humantime::parse_duration(d).ok())
        .unwrap_or_default();
    let not_before = now + chrono::Duration::from_std(delay).unwrap_or_default();
    let mut next = BackupSession::new(
        &retry_name,
        BackupSessionSpec {
            invoker: invoker.clone(),
            session: session.spec.session.clone(),
            retry_left: Some(left - 1),
        },
    );
    next.metadata.namespace = Some(namespace);
    next.metadata.labels = Some(labels);
    next.metadata.annotations = Some(
        [(
            NOT_BEFORE.to_owned(),
            not_before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )]
        .into(),
    );
    let manifest = serde_json::to_value(&next).map_err(|e| ClusterError::Invalid(e.to_string()))?;
    match cluster.create(&manifest).await {
        Ok(_) | Err(ClusterError::Conflict(_)) => Ok(Some((retry_name, not_before))),
        Err(error) => Err(error),
    }
}

/// How long `session` must still wait before it starts (a retry's delay), if at all.
pub fn wait_before_start(session: &BackupSession, now: DateTime<Utc>) -> Option<Duration> {
    let not_before: DateTime<Utc> = session
        .metadata
        .annotations
        .as_ref()?
        .get(NOT_BEFORE)?
        .parse()
        .ok()?;
    (not_before > now).then(|| (not_before - now).to_std().unwrap_or_default())
}
