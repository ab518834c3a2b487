//! The controllers: BackupStorage (probed, its repositories listed; woken by them),
//! BackupConfiguration (status, accounts, CronJobs, history; woken by its CronJobs and
//! sessions), BackupSession (driven through its Jobs, woken by them), RestoreSession (driven
//! through its Job, woken by it), BackupVerifier (through the RestoreSessions it makes, woken
//! by them), and Repository and Snapshot (their `deletionPolicy`). Each reconcile is
//! one use-case call; errors back off per object.

use crate::metrics::Metrics;
use backup_api::{
    BackupConfiguration, BackupSession, BackupStorage, BackupVerifier, Repository, RestoreSession,
    Snapshot,
};
use backup_core::ClusterError;
use backup_k8s::KubeCluster;
use backup_usecases::restores::reconcile::reconcile_restore;
use backup_usecases::sessions::configuration::reconcile_configuration;
use backup_usecases::sessions::deletion::{DeletionError, DeletionStep, reconcile_deletion};
use backup_usecases::sessions::reconcile::{OperatorSettings, Requeue, reconcile_session};
use backup_usecases::sessions::storage::reconcile_storage;
use backup_usecases::verifiers::reconcile_verifier;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The label on what the operator makes.
const MANAGED: &str = "app.kubernetes.io/managed-by=kbackup-operator";
/// Objects reconciled at once, per controller.
const CONCURRENCY: u16 = 4;
/// How soon a wipe-out Job (a local storage's) is looked at again.
const WIPE_OUT_CHECK: Duration = Duration::from_secs(5);
/// The longest wait after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What every reconcile shares.
pub struct Context {
    cluster: KubeCluster,
    settings: OperatorSettings,
    metrics: Arc<Metrics>,
    /// Failures in a row, per object.
    failures: Mutex<HashMap<String, u32>>,
    /// The sessions cached by each session controller.
    session_stores: Mutex<Vec<Store<BackupSession>>>,
}

impl Context {
    /// The context of the controllers.
    pub fn new(cluster: KubeCluster, settings: OperatorSettings, metrics: Arc<Metrics>) -> Self {
        Self {
            cluster,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
            session_stores: Mutex::new(Vec::new()),
        }
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// The wait after one more failure of `key`: 2 s, doubling, at most five minutes.
    fn backoff(&self, key: String) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key).or_insert(0);
        *count = (*count + 1).min(16);
        Duration::from_secs(2u64.saturating_pow(*count)).min(MAX_BACKOFF)
    }

    fn count_sessions(&self) {
        let stores = self
            .session_stores
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for session in stores.iter().flat_map(|s| s.state()) {
            let phase = session
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .map_or("Pending".to_owned(), |p| format!("{p:?}"));
            *counts
                .entry((session.namespace().unwrap_or_default(), phase))
                .or_default() += 1;
        }
        self.metrics.set_sessions(counts);
    }
}

/// A reconcile's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing objects failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// An object's data could not be deleted.
    #[error(transparent)]
    Deletion(#[from] DeletionError),
}

fn action(requeue: Requeue) -> Action {
    match requeue {
        Requeue::OnChange => Action::await_change(),
        Requeue::After(wait) => Action::requeue(wait),
    }
}

fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    context: Arc<Context>,
) -> Action {
    let wait = context.backoff(key(object.as_ref()));
    tracing::warn!(object = %key(object.as_ref()), %error, retry_in_seconds = wait.as_secs(), "reconcile failed");
    context
        .metrics
        .reconcile_failed(match K::kind(&()).as_ref() {
            "BackupSession" => "backupsession",
            "RestoreSession" => "restoresession",
            "BackupVerifier" => "backupverifier",
            "BackupConfiguration" => "backupconfiguration",
            "Repository" => "repository",
            "Snapshot" => "snapshot",
            _ => "backupstorage",
        });
    Action::requeue(wait)
}

async fn session(object: Arc<BackupSession>, context: Arc<Context>) -> Result<Action, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let step = reconcile_session(
        &context.cluster,
        &namespace,
        &object.name_any(),
        &context.settings,
        chrono::Utc::now(),
    )
    .await?;
    if let Some(ended) = &step.ended {
        tracing::info!(session = %key(object.as_ref()), phase = ?ended.phase, seconds = ended.seconds, "session ended");
        context
            .metrics
            .session_ended(ended, chrono::Utc::now().timestamp() as f64);
    }
    context.succeeded(&key(object.as_ref()));
    context.count_sessions();
    Ok(action(step.requeue))
}

async fn restore(object: Arc<RestoreSession>, context: Arc<Context>) -> Result<Action, Error> {
    let step = reconcile_restore(
        &context.cluster,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        &context.settings,
        chrono::Utc::now(),
    )
    .await?;
    if let Some(ended) = &step.ended {
        tracing::info!(restore = %key(object.as_ref()), phase = ?ended.phase, seconds = ended.seconds, "restore ended");
        context.metrics.restore_ended(ended);
    }
    context.succeeded(&key(object.as_ref()));
    Ok(action(step.requeue))
}

async fn verifier(object: Arc<BackupVerifier>, context: Arc<Context>) -> Result<Action, Error> {
    let step = reconcile_verifier(
        &context.cluster,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        &context.settings,
        chrono::Utc::now(),
    )
    .await?;
    if let Some(ended) = &step.ended {
        tracing::info!(verifier = %key(object.as_ref()), result = ?ended.result, seconds = ended.seconds, "verification ended");
        context
            .metrics
            .verification_ended(ended, chrono::Utc::now().timestamp() as f64);
    }
    context.succeeded(&key(object.as_ref()));
    Ok(action(step.requeue))
}

async fn configuration(
    object: Arc<BackupConfiguration>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let requeue = reconcile_configuration(
        &context.cluster,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        &context.settings,
    )
    .await?;
    context.succeeded(&key(object.as_ref()));
    Ok(action(requeue))
}

async fn storage(object: Arc<BackupStorage>, context: Arc<Context>) -> Result<Action, Error> {
    let requeue = reconcile_storage(
        &context.cluster,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        &context.settings,
    )
    .await?;
    context.succeeded(&key(object.as_ref()));
    Ok(action(requeue))
}

async fn deletion<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let kind = K::kind(&());
    let step = reconcile_deletion(
        &context.cluster,
        &kind,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        &context.settings,
    )
    .await?;
    match &step {
        DeletionStep::Wiped(objects) => {
            tracing::info!(object = %key(object.as_ref()), objects, "data wiped out")
        }
        DeletionStep::Wiping => {
            context.succeeded(&key(object.as_ref()));
            // The Job mounting the storage's claim is looked at again shortly.
            return Ok(Action::requeue(WIPE_OUT_CHECK));
        }
        DeletionStep::NothingToWipe(why) => {
            tracing::info!(object = %key(object.as_ref()), why, "nothing to wipe out")
        }
        _ => {}
    }
    context.succeeded(&key(object.as_ref()));
    Ok(Action::await_change())
}

fn api<K: Resource<Scope = k8s_openapi::NamespaceResourceScope>>(
    client: &kube::Client,
    scope: Option<&str>,
) -> Api<K>
where
    K::DynamicType: Default,
{
    match scope {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

async fn logged<K: Resource<DynamicType = ()>, E: std::fmt::Display>(
    result: Result<(ObjectRef<K>, Action), E>,
) {
    if let Err(error) = result {
        tracing::debug!(%error, "controller event");
    }
}

/// Runs every controller over `namespaces` (all when empty) until `shutdown` resolves.
pub async fn run(
    context: Arc<Context>,
    namespaces: &[String],
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.cluster.client();
    let shutdown = shutdown.shared();
    let scopes: Vec<Option<&str>> = match namespaces {
        [] => vec![None],
        some => some.iter().map(|n| Some(n.as_str())).collect(),
    };
    let config = ControllerConfig::default().concurrency(CONCURRENCY);
    let managed = watcher::Config::default().labels(MANAGED);
    let mut controllers = Vec::new();
    for scope in scopes {
        let sessions = Controller::new(
            api::<BackupSession>(&client, scope),
            watcher::Config::default(),
        )
        .owns(api::<Job>(&client, scope), managed.clone())
        .with_config(config.clone())
        .graceful_shutdown_on(shutdown.clone());
        context
            .session_stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sessions.store());
        controllers.push(
            sessions
                .run(session, error_policy, context.clone())
                .for_each(logged)
                .boxed(),
        );
        controllers.push(
            Controller::new(
                api::<RestoreSession>(&client, scope),
                watcher::Config::default(),
            )
            .owns(api::<Job>(&client, scope), managed.clone())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(restore, error_policy, context.clone())
            .for_each(logged)
            .boxed(),
        );
        controllers.push(
            Controller::new(
                api::<BackupVerifier>(&client, scope),
                watcher::Config::default(),
            )
            .owns(api::<RestoreSession>(&client, scope), managed.clone())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(verifier, error_policy, context.clone())
            .for_each(logged)
            .boxed(),
        );
        controllers.push(
            Controller::new(
                api::<BackupConfiguration>(&client, scope),
                watcher::Config::default(),
            )
            .owns(api::<CronJob>(&client, scope), managed.clone())
            .watches(
                api::<BackupSession>(&client, scope),
                watcher::Config::default(),
                |session| {
                    let namespace = session.namespace().unwrap_or_default();
                    Some(
                        ObjectRef::new(&session.spec.invoker.name)
                            .within(&session.spec.invoker.namespace_or(&namespace)),
                    )
                },
            )
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(configuration, error_policy, context.clone())
            .for_each(logged)
            .boxed(),
        );
        controllers.push(
            Controller::new(
                api::<BackupStorage>(&client, scope),
                watcher::Config::default(),
            )
            // Its probe Job (a local storage's), and its status lists the repositories using it.
            .owns(api::<Job>(&client, scope), managed.clone())
            .watches(
                api::<Repository>(&client, scope),
                watcher::Config::default(),
                |repository| {
                    let namespace = repository.namespace().unwrap_or_default();
                    let storage = &repository.spec.storage_ref;
                    Some(ObjectRef::new(&storage.name).within(&storage.namespace_or(&namespace)))
                },
            )
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(storage, error_policy, context.clone())
            .for_each(logged)
            .boxed(),
        );
        // `deletionPolicy`: WipeOut objects held by a finalizer until their data is gone.
        controllers.push(
            Controller::new(
                api::<Repository>(&client, scope),
                watcher::Config::default(),
            )
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(deletion, error_policy, context.clone())
            .for_each(logged)
            .boxed(),
        );
        controllers.push(
            Controller::new(api::<Snapshot>(&client, scope), watcher::Config::default())
                .with_config(config.clone())
                .graceful_shutdown_on(shutdown.clone())
                .run(deletion, error_policy, context.clone())
                .for_each(logged)
                .boxed(),
        );
    }
    futures::future::join_all(controllers).await;
}
