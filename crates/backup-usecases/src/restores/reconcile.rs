//! A RestoreSession driven to its end, one step per call, from what the cluster holds: a new
//! one is validated (Invalid when its spec is wrong, Failed when what it needs is missing),
//! the backups of what it restores paused, and its account, Secret and Job made under names
//! that are the same on every run; a running one is followed through its Job until it
//! reported or its deadline passed (the Job is then deleted), then its status is written and
//! the backups resumed, whatever the outcome. Every step can be repeated: an operator killed
//! anywhere and started again ends in the same state, with no Job made twice and no backup
//! left paused (a finalizer resumes them when the session is deleted mid-way).

use super::data_store::{
    DataStoreRestore, PreparedDataStore, data_store_restore, data_store_task, follow_data_store,
    plan_data_store, prepare_data_store, start_data_store,
};
use super::objects::{
    RESTORE_CONTAINER, restore_account, restore_job, restore_object_name, restore_secret,
};
use super::pauses::{pause_backups, resume_backups};
use super::plan::{PlannedRestore, RestoreRefusal, destination, plan_restore_session};
use crate::hooks::plan::{HookStage, plan_session_hooks};
use crate::hooks::status::{HookedWork, run_post_hooks, run_stage};
use crate::sessions::plan::target_in;
use crate::sessions::reconcile::{
    OperatorSettings, Requeue, age, condition, create_once, hook_runner, job_report,
    push_condition, rfc3339, write_status,
};
use crate::sessions::report::SessionReport;
use backup_api::{
    API_VERSION, ConditionStatus, RestoreComponentStatus, RestoreDependency, RestorePhase,
    RestoreSession, SnapshotPhase, TypedObjectRef,
};
use backup_core::ClusterError;
use backup_core::cluster::{Cluster, ObjectRef, PodExec, ResourceStore};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The finalizer that resumes the paused backups of a RestoreSession deleted before its end.
pub const RESUME_FINALIZER: &str = "kbackup.io/resume-backups";
/// How often a running restore is looked at even when nothing changed.
const RUNNING_CHECK: Duration = Duration::from_secs(60);
/// How often a data store's restore is looked at (the operator watches neither its Job nor
/// Elasticsearch's recovery): three reads each time, the end seen within 2 s.
const DATA_STORE_CHECK: Duration = Duration::from_secs(2);

/// What one step of a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreStep {
    /// When to look again.
    pub requeue: Requeue,
    /// The restore ended in this step.
    pub ended: Option<EndedRestore>,
}

/// A restore that ended: for the operator's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedRestore {
    /// Its namespace.
    pub namespace: String,
    /// How it ended.
    pub phase: RestorePhase,
    /// How long it took, from its creation.
    pub seconds: f64,
}

impl RestoreStep {
    fn waiting(requeue: Requeue) -> Self {
        Self {
            requeue,
            ended: None,
        }
    }
}

/// Takes the RestoreSession `namespace/name` one step further.
pub async fn reconcile_restore<C: Cluster + PodExec + Clone>(
    cluster: &C,
    namespace: &str,
    name: &str,
    settings: &OperatorSettings,
    now: DateTime<Utc>,
) -> Result<RestoreStep, ClusterError> {
    let reference = ObjectRef::namespaced(API_VERSION, "RestoreSession", namespace, name);
    let Some(object) = cluster.get(&reference).await? else {
        return Ok(RestoreStep::waiting(Requeue::OnChange));
    };
    let Ok(session) = serde_json::from_value::<RestoreSession>(object.clone()) else {
        return Ok(RestoreStep::waiting(Requeue::OnChange));
    };
    if session.metadata.deletion_timestamp.is_some() {
        release(cluster, &session, object).await?;
        return Ok(RestoreStep::waiting(Requeue::OnChange));
    }
    match session.status.as_ref().and_then(|s| s.phase) {
        None | Some(RestorePhase::Pending) => start(cluster, &session, object, settings, now).await,
        Some(RestorePhase::Running) => follow(cluster, &session, object, settings, now).await,
        Some(_) => Ok(RestoreStep::waiting(Requeue::OnChange)),
    }
}

/// A new restore: Invalid, Failed, or its backups paused, its Job made and it Running.
async fn start<C: Cluster + PodExec + Clone>(
    cluster: &C,
    session: &RestoreSession,
    mut object: Value,
    settings: &OperatorSettings,
    mut now: DateTime<Utc>,
) -> Result<RestoreStep, ClusterError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let name = session.metadata.name.clone().unwrap_or_default();
    let uid = session.metadata.uid.clone().unwrap_or_default();
    let (executor, dependencies) = match resolve_executor(cluster, session, settings).await {
        (Ok(executor), dependencies) => (executor, dependencies),
        (Err(refusal), dependencies) => {
            return refuse(cluster, session, object, &refusal, &dependencies, now).await;
        }
    };
    let target = executor.target(session);
    let destination = executor.destination();
    if let Some(refusal) = foreign_destination(cluster, &destination, &namespace).await? {
        return refuse(cluster, session, object, &refusal, &dependencies, now).await;
    }
    let hooks = match plan_session_hooks(
        cluster,
        &namespace,
        &session.spec.hooks.pre_restore,
        &session.spec.hooks.post_restore,
    )
    .await?
    {
        Ok(hooks) => hooks,
        Err(error) => {
            let refusal = RestoreRefusal {
                invalid: error.reason != "HookTemplateNotFound",
                error,
            };
            return refuse(cluster, session, object, &refusal, &dependencies, now).await;
        }
    };
    let target_found = match &executor {
        Executor::Job(planned) => target_exists(cluster, &planned.plan, &destination).await?,
        Executor::DataStore(..) => true,
    };
    let restores_manifests = matches!(&executor, Executor::Job(p) if p.plan.manifests);
    if !target_found && !restores_manifests {
        let refusal = RestoreRefusal {
            invalid: false,
            error: crate::sessions::plan::PlanError {
                reason: "TargetNotFound",
                message: format!(
                    "{} {destination}/{} does not exist; volume-restore restores into a running workload (add manifest-restore to restore it whole)",
                    target.kind, target.name
                ),
            },
        };
        return refuse(cluster, session, object, &refusal, &dependencies, now).await;
    }
    // The finalizer first: from here on, a deletion must resume what is paused.
    let finalizers = object["metadata"]["finalizers"].as_array();
    if !finalizers.is_some_and(|f| f.iter().any(|f| f == RESUME_FINALIZER)) {
        let mut held = finalizers.cloned().unwrap_or_default();
        held.push(json!(RESUME_FINALIZER));
        object["metadata"]["finalizers"] = json!(held);
        object = cluster.replace(&object).await?;
    }
    ensure_namespace(cluster, &destination, &namespace).await?;
    let paused = pause_backups(
        cluster,
        &destination,
        &target,
        &format!("{namespace}/{name}"),
    )
    .await?;
    if let Executor::Job(planned) = &executor {
        let secret = match restore_secret(planned, &uid) {
            Ok(secret) => secret,
            Err(error) => {
                let refusal = RestoreRefusal {
                    invalid: false,
                    error: crate::sessions::plan::PlanError {
                        reason: "CredentialNotText",
                        message: error.to_string(),
                    },
                };
                let status = refused(&refusal, &dependencies, session, now);
                return finish(cluster, session, object, status, RestorePhase::Failed, now).await;
            }
        };
        for account in restore_account(planned, &uid) {
            cluster.apply(&account, true).await?;
        }
        create_once(cluster, &secret).await?;
    }
    let timeout = session
        .spec
        .timeout
        .as_deref()
        .and_then(|t| humantime::parse_duration(t).ok());
    // From the session's creation: a start repeated after a restart keeps it.
    let created = session
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.0.as_second(), 0))
        .unwrap_or(now);
    let deadline = timeout.map(|t| created + chrono::Duration::from_std(t).unwrap_or_default());
    let job_name = executor.job_name(&name);
    let components: BTreeMap<String, RestoreComponentStatus> = executor
        .components()
        .into_iter()
        .map(|c| (c, component("Pending", None, None)))
        .collect();
    let (found, found_reason) = match target_found {
        true => (ConditionStatus::True, "TargetAvailable"),
        false => (ConditionStatus::False, "TargetRestoredFromManifests"),
    };
    let mut status = json!({
        "phase": RestorePhase::Running,
        "targetFound": target_found,
        "deadline": deadline.map(|d| rfc3339(&d)),
        "totalComponents": components.len(),
        "components": components,
        "dependencies": dependencies,
        "pausedBackups": paused,
        "conditions": [
            condition("ValidationPassed", ConditionStatus::True, "ResourceValidationPassed",
                "Validation has been passed successfully.".into(), now),
            condition("RestoreTargetFound", found, found_reason,
                format!("{} {destination}/{} {}", target.kind, target.name,
                    if target_found { "exists" } else { "does not exist yet: its manifests restore it" }), now),
        ],
    });
    // A start repeated after a restart that made the Job already ran the pre hooks.
    let started = match &executor {
        Executor::Job(_) => cluster.job_state(&namespace, &job_name).await?.is_some(),
        Executor::DataStore(..) => false,
    };
    let pre_hooks_passed = started
        || run_stage(
            &hook_runner(cluster, settings, &namespace, &name),
            HookedWork::Restore,
            HookStage::Pre,
            &hooks.pre,
            true,
            &mut status,
            &mut now,
        )
        .await;
    // What runs the restore, in words, or why it did not start.
    let started = match (pre_hooks_passed, executor) {
        (false, _) => Err((
            "PreRestoreHooksFailed",
            "a pre-restore hook failed: nothing was restored".to_owned(),
            "a pre-restore hook failed".to_owned(),
        )),
        (true, Executor::Job(planned)) => {
            let job = restore_job(
                &planned,
                &uid,
                timeout.map(|t| t.as_secs() as i64),
                &settings.placement,
            );
            match cluster.create_job(&namespace, &job).await {
                Ok(()) | Err(ClusterError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
            Ok(format!("Job {job_name}"))
        }
        (true, Executor::DataStore(restore, prepared)) => {
            // Its Job's name first: a restart from here on follows and finalizes it.
            let executor = prepared.executor.clone();
            status["dataStoreOperation"] = json!(job_name);
            write_status(cluster, "RestoreSession", object.clone(), status.clone()).await?;
            match start_data_store(cluster, &restore, *prepared).await {
                Ok(scaled) => Ok(format!("{executor}; scaled down: {}", listed(&scaled))),
                Err(error) => {
                    status["dataStoreOperation"] = Value::Null;
                    Err(("RestoreNotStarted", error.clone(), error))
                }
            }
        }
    };
    let not_started = match started {
        Ok(executor) => {
            push_condition(
                &mut status,
                condition(
                    "RestoreExecutorEnsured",
                    ConditionStatus::True,
                    "SuccessfullyEnsuredRestoreExecutor",
                    format!("Restore Executor has been ensured successfully ({executor})."),
                    now,
                ),
            );
            None
        }
        Err(why) => Some(why),
    };
    if let Some((reason, message, component_error)) = not_started {
        // Nothing restored: the post hooks run as after a failure, and the restore ends.
        push_condition(
            &mut status,
            condition("RestoreFailed", ConditionStatus::True, reason, message, now),
        );
        for entry in status["components"]
            .as_object_mut()
            .into_iter()
            .flat_map(|c| c.values_mut())
        {
            *entry = json!(component("Failed", None, Some(component_error.clone())));
        }
        run_stage(
            &hook_runner(cluster, settings, &namespace, &name),
            HookedWork::Restore,
            HookStage::Post,
            &hooks.post,
            false,
            &mut status,
            &mut now,
        )
        .await;
        return finish(cluster, session, object, status, RestorePhase::Failed, now).await;
    }
    write_status(cluster, "RestoreSession", object, status).await?;
    Ok(RestoreStep::waiting(Requeue::After(until(deadline, now))))
}

/// What carries a restore out.
enum Executor {
    /// kbackup's restore Job, from a kbackup snapshot.
    Job(Box<PlannedRestore>),
    /// A StackState data store's own restore Job, started, followed and finalized by the
    /// operator.
    DataStore(DataStoreRestore, Box<PreparedDataStore>),
}

impl Executor {
    /// What the restore writes to.
    fn target(&self, session: &RestoreSession) -> TypedObjectRef {
        match self {
            Executor::Job(planned) => planned.plan.target.clone(),
            Executor::DataStore(..) => target_in(
                &session.spec.target,
                session.metadata.namespace.as_deref().unwrap_or_default(),
            ),
        }
    }

    /// The namespace written.
    fn destination(&self) -> String {
        match self {
            Executor::Job(planned) => planned.plan.destination(),
            Executor::DataStore(restore, _) => restore.namespace.clone(),
        }
    }

    /// The components restored.
    fn components(&self) -> Vec<String> {
        match self {
            Executor::Job(planned) => planned.plan.components(),
            Executor::DataStore(restore, _) => vec![restore.component.to_owned()],
        }
    }

    /// The Job that does the work.
    fn job_name(&self, session: &str) -> String {
        match self {
            Executor::Job(_) => restore_object_name(session),
            Executor::DataStore(_, prepared) => prepared.operation.clone(),
        }
    }
}

/// Plans what carries `session` out, with the objects it needs (each found or not).
async fn resolve_executor<C: Cluster + Clone>(
    cluster: &C,
    session: &RestoreSession,
    settings: &OperatorSettings,
) -> (Result<Executor, RestoreRefusal>, Vec<RestoreDependency>) {
    let Some(task) = data_store_task(&session.spec.tasks) else {
        let resolution = plan_restore_session(cluster, session, &settings.image).await;
        return (
            resolution.planned.map(|p| Executor::Job(Box::new(p))),
            resolution.dependencies,
        );
    };
    let mut dependencies = Vec::new();
    let restore = match plan_data_store(cluster, session, task, &mut dependencies).await {
        Ok(restore) => restore,
        Err(refusal) => return (Err(refusal), dependencies),
    };
    let executor = match prepare_data_store(cluster, &restore).await {
        Ok(prepared) => Ok(Executor::DataStore(restore, Box::new(prepared))),
        Err(message) => Err(RestoreRefusal {
            invalid: false,
            error: crate::sessions::plan::PlanError::new("DataStoreNotRestorable", message),
        }),
    };
    (executor, dependencies)
}

/// `a, b`, or `nothing`.
fn listed(items: &[String]) -> String {
    match items.is_empty() {
        true => "nothing".into(),
        false => items.join(", "),
    }
}

/// Refuses a restore before anything was made: its status written, it ended Invalid or
/// Failed.
async fn refuse<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &RestoreSession,
    object: Value,
    refusal: &RestoreRefusal,
    dependencies: &[backup_api::RestoreDependency],
    now: DateTime<Utc>,
) -> Result<RestoreStep, ClusterError> {
    let status = refused(refusal, dependencies, session, now);
    write_status(cluster, "RestoreSession", object, status).await?;
    let phase = match refusal.invalid {
        true => RestorePhase::Invalid,
        false => RestorePhase::Failed,
    };
    Ok(ended(session, phase, now))
}

/// A running restore: its Job's report ends it; past the deadline its Job is deleted and it
/// fails.
async fn follow<C: Cluster + PodExec + Clone>(
    cluster: &C,
    session: &RestoreSession,
    object: Value,
    settings: &OperatorSettings,
    mut now: DateTime<Utc>,
) -> Result<RestoreStep, ClusterError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let name = session.metadata.name.clone().unwrap_or_default();
    let job = restore_object_name(&name);
    let mut status = serde_json::to_value(session.status.clone().unwrap_or_default())
        .unwrap_or_else(|_| json!({}));
    let deadline = session
        .status
        .as_ref()
        .and_then(|s| s.deadline.as_deref())
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.with_timezone(&Utc));
    let past_deadline = deadline.is_some_and(|d| now >= d);
    let data_store_operation = session
        .status
        .as_ref()
        .and_then(|s| s.data_store_operation.clone());
    let task = data_store_task(&session.spec.tasks);
    let mut scaled_up = None;
    let report = match (data_store_operation, task) {
        (Some(job), Some(task)) => {
            let restore = data_store_restore(session, task);
            match follow_data_store(cluster, &restore, &job, past_deadline).await {
                Some(end) => {
                    scaled_up = Some(end.scaled_up);
                    end.report
                }
                None => {
                    let next = DATA_STORE_CHECK.min(until(deadline, now));
                    return Ok(RestoreStep::waiting(Requeue::After(next)));
                }
            }
        }
        _ => match job_report(cluster, &namespace, &job, RESTORE_CONTAINER).await? {
            Some(report) => report,
            None if !past_deadline => {
                return Ok(RestoreStep::waiting(Requeue::After(until(deadline, now))));
            }
            None => {
                cluster.delete_job(&namespace, &job).await?;
                SessionReport::failed(format!("Job {job} was stopped at the deadline"))
            }
        },
    };
    let mut components: BTreeMap<String, RestoreComponentStatus> = session
        .status
        .as_ref()
        .map(|s| s.components.clone())
        .unwrap_or_default();
    for (component_name, done) in &report.components {
        components.insert(
            component_name.clone(),
            component(&done.phase, done.duration.clone(), done.error.clone()),
        );
    }
    for entry in components.values_mut().filter(|c| c.phase == "Pending") {
        *entry = component("Failed", None, Some(report.failure()));
    }
    let restored = report.phase == Some(SnapshotPhase::Succeeded);
    let mut conditions = session
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    if past_deadline {
        conditions.push(condition(
            "DeadlineExceeded",
            ConditionStatus::True,
            "FailedToCompleteWithinDeadline",
            format!(
                "the restore did not end by its deadline {}; its Job was stopped",
                status["deadline"].as_str().unwrap_or_default()
            ),
            now,
        ));
    }
    if let Some(scaled_up) = scaled_up {
        conditions.push(condition(
            "DataStoreFinalized",
            ConditionStatus::True,
            "WorkloadsScaledUp",
            format!(
                "the data store's lock released; scaled back up: {}",
                listed(&scaled_up)
            ),
            now,
        ));
    }
    if !restored {
        conditions.push(condition(
            "RestoreFailed",
            ConditionStatus::True,
            "ComponentsFailed",
            report.failure(),
            now,
        ));
    }
    status["totalComponents"] = json!(components.len());
    status["components"] = json!(components);
    status["conditions"] = json!(conditions);
    let post_hooks_passed = run_post_hooks(
        cluster,
        &hook_runner(cluster, settings, &namespace, &name),
        &namespace,
        HookedWork::Restore,
        &session.spec.hooks.post_restore,
        restored,
        &mut status,
        &mut now,
    )
    .await?;
    let phase = match restored && post_hooks_passed {
        true => RestorePhase::Succeeded,
        false => RestorePhase::Failed,
    };
    finish(cluster, session, object, status, phase, now).await
}

/// Ends a restore with `status` and `phase`: the backups it paused resumed, its Secret and
/// the Role it had outside its namespace deleted, its finalizer released, its duration and
/// last conditions written.
async fn finish<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &RestoreSession,
    object: Value,
    mut status: Value,
    phase: RestorePhase,
    now: DateTime<Utc>,
) -> Result<RestoreStep, ClusterError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let name = session.metadata.name.clone().unwrap_or_default();
    let resumed = release(cluster, session, object.clone()).await?;
    cluster
        .delete(&ObjectRef::namespaced(
            "v1",
            "Secret",
            &namespace,
            &restore_object_name(&name),
        ))
        .await?;
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    if !resumed.is_empty() {
        conditions.push(json!(condition(
            "BackupsResumed",
            ConditionStatus::True,
            "PausedBackupsResumed",
            format!("BackupConfiguration(s) {} resumed", resumed.join(", ")),
            now,
        )));
    }
    conditions.push(json!(condition(
        "MetricsPushed",
        ConditionStatus::True,
        "SuccessfullyPushedMetrics",
        "Metrics have been pushed successfully.".into(),
        now,
    )));
    status["phase"] = json!(phase);
    status["conditions"] = json!(conditions);
    status["pausedBackups"] = json!([]);
    if let Some(created) = &session.metadata.creation_timestamp {
        status["duration"] = json!(age(created.0.as_second(), now));
    }
    write_status(cluster, "RestoreSession", object, status).await?;
    Ok(ended(session, phase, now))
}

/// Resumes the backups the restore paused, deletes what it made outside its namespace and
/// releases its finalizer; the configurations resumed.
async fn release<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &RestoreSession,
    object: Value,
) -> Result<Vec<String>, ClusterError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let name = session.metadata.name.clone().unwrap_or_default();
    let destination = destination(session);
    let resumed = resume_backups(cluster, &destination, &format!("{namespace}/{name}")).await?;
    if destination != namespace {
        for kind in ["RoleBinding", "Role"] {
            cluster
                .delete(&ObjectRef::namespaced(
                    "rbac.authorization.k8s.io/v1",
                    kind,
                    &destination,
                    &restore_object_name(&name),
                ))
                .await?;
        }
    }
    let held = object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f == RESUME_FINALIZER));
    if held {
        let mut released = object;
        if let Some(finalizers) = released["metadata"]["finalizers"].as_array_mut() {
            finalizers.retain(|f| f != RESUME_FINALIZER);
        }
        cluster.replace(&released).await?;
    }
    Ok(resumed)
}

/// The status of a restore refused before anything was made.
fn refused(
    refusal: &RestoreRefusal,
    dependencies: &[backup_api::RestoreDependency],
    session: &RestoreSession,
    now: DateTime<Utc>,
) -> Value {
    let (phase, type_, reason) = match refusal.invalid {
        true => (
            RestorePhase::Invalid,
            "ValidationPassed",
            "ResourceValidationFailed",
        ),
        false => (RestorePhase::Failed, "RestoreFailed", refusal.error.reason),
    };
    let status = match refusal.invalid {
        true => ConditionStatus::False,
        false => ConditionStatus::True,
    };
    let mut conditions = vec![condition(
        type_,
        status,
        reason,
        refusal.error.message.clone(),
        now,
    )];
    if !refusal.invalid {
        conditions.insert(
            0,
            condition(
                "ValidationPassed",
                ConditionStatus::True,
                "ResourceValidationPassed",
                "Validation has been passed successfully.".into(),
                now,
            ),
        );
    }
    json!({
        "phase": phase,
        "duration": session.metadata.creation_timestamp.as_ref()
            .and_then(|c| age(c.0.as_second(), now)),
        "dependencies": dependencies,
        "conditions": conditions,
    })
}

fn ended(session: &RestoreSession, phase: RestorePhase, now: DateTime<Utc>) -> RestoreStep {
    let created = session
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now.timestamp(), |t| t.0.as_second());
    RestoreStep {
        requeue: Requeue::OnChange,
        ended: Some(EndedRestore {
            namespace: session.metadata.namespace.clone().unwrap_or_default(),
            phase,
            seconds: (now.timestamp() - created).max(0) as f64,
        }),
    }
}

fn component(
    phase: &str,
    duration: Option<String>,
    error: Option<String>,
) -> RestoreComponentStatus {
    RestoreComponentStatus {
        phase: phase.into(),
        duration,
        error,
    }
}

/// When to look at a running restore again: just after its deadline, or within
/// [`RUNNING_CHECK`].
fn until(deadline: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    match deadline {
        None => RUNNING_CHECK,
        // Past it: at once (its Job is deleted in the next step).
        Some(deadline) => (deadline - now)
            .to_std()
            .map_or(Duration::from_secs(1), |left| {
                (left + Duration::from_secs(1)).min(RUNNING_CHECK)
            }),
    }
}

/// Whether the target exists in the namespace the restore writes.
async fn target_exists<C: ResourceStore + ?Sized>(
    cluster: &C,
    plan: &super::plan::RestorePlan,
    destination: &str,
) -> Result<bool, ClusterError> {
    let reference = match plan.target.kind.as_str() {
        "Namespace" => namespace_ref(destination),
        kind => ObjectRef::namespaced("apps/v1", kind, destination, &plan.target.name),
    };
    Ok(cluster.get(&reference).await?.is_some())
}

/// The label of a namespace a restore made: the namespace of the RestoreSession. Later
/// restores from that namespace may write into it again.
pub const RESTORED_FROM: &str = "kbackup.io/restored-from";

/// Why a restore may not write into `destination`: another namespace than its own that exists
/// and was not made by a restore from its own (the operator would grant there what the
/// users of `namespace` ask).
async fn foreign_destination<C: ResourceStore + ?Sized>(
    cluster: &C,
    destination: &str,
    namespace: &str,
) -> Result<Option<RestoreRefusal>, ClusterError> {
    if destination == namespace {
        return Ok(None);
    }
    let Some(existing) = cluster.get(&namespace_ref(destination)).await? else {
        return Ok(None);
    };
    if existing["metadata"]["labels"][RESTORED_FROM] == namespace {
        return Ok(None);
    }
    Ok(Some(RestoreRefusal {
        invalid: true,
        error: crate::sessions::plan::PlanError {
            reason: "RestoreNamespaceNotOwned",
            message: format!(
                "namespace {destination} exists and was not made by a restore from {namespace}: a RestoreSession writes into its own namespace or into one it makes"
            ),
        },
    }))
}

/// The namespace the restore writes, made when missing (a restore into a new namespace).
async fn ensure_namespace<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    from: &str,
) -> Result<(), ClusterError> {
    if cluster.get(&namespace_ref(namespace)).await?.is_some() {
        return Ok(());
    }
    create_once(
        cluster,
        &json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace,
                "labels": {"app.kubernetes.io/managed-by": "kbackup-operator",
                    RESTORED_FROM: from}}}),
    )
    .await
}

fn namespace_ref(name: &str) -> ObjectRef {
    ObjectRef::cluster_scoped("v1", "Namespace", name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::objects::REPOSITORY;
    use crate::sessions::reconcile::JobPlacement;
    use backup_api::ComponentStatus;
    use backup_core::testing::FakeCluster;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    const SNAPSHOT_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A storage, its Secret, a password, a Repository with two Snapshots (the older one
    /// the newest that succeeded), a configuration of the namespace, its namespace, and
    /// the RestoreSession `back` of pod 0 of StatefulSet `db`.
    fn cluster(timeout: &str) -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.serve(backup_api::GROUP, backup_api::VERSION, "Snapshot", true);
        cluster.serve(
            backup_api::GROUP,
            backup_api::VERSION,
            "BackupConfiguration",
            true,
        );
        cluster.serve("", "v1", "Pod", true);
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "BackupStorage",
            "metadata": {"name": "minio", "namespace": "apps"},
            "spec": {"storage": {"provider": "s3", "s3": {"bucket": "backups",
                "endpoint": "http://minio.ops:9000", "secretName": "minio-keys"}}},
            "status": {"phase": "Ready"}}));
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "minio-keys", "namespace": "apps"},
            "data": {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret-key"}}));
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "password", "namespace": "apps"},
            "data": {"password": "repo-password"}}));
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "Repository",
            "metadata": {"name": "apps-repo", "namespace": "apps"},
            "spec": {"storageRef": {"name": "minio"}, "directory": "apps",
                "encryptionSecret": {"name": "password"}}}));
        for (name, time, phase, id) in [
            (
                "web-1-apps-repo",
                "2026-12-01T08:00:00Z",
                "Succeeded",
                SNAPSHOT_ID,
            ),
            (
                "web-2-apps-repo",
                "2026-12-01T09:00:00Z",
                "Failed",
                "fedcba98",
            ),
        ] {
            cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "Snapshot",
                "metadata": {"name": name, "namespace": "apps",
                    "labels": {REPOSITORY: "apps-repo"}},
                "spec": {"snapshotId": id, "repository": "apps-repo",
                    "session": "daily", "backupSession": name},
                "status": {"phase": phase, "snapshotTime": time, "components": {
                    "manifests": {"phase": "Succeeded"},
                    "/apps/statefulset/db/db-0/data": {"phase": "Succeeded"},
                    "/apps/statefulset/db/db-1/data": {"phase": "Succeeded"}}}}));
        }
        cluster.insert(
            &json!({"apiVersion": API_VERSION, "kind": "BackupConfiguration",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"target": {"kind": "Namespace", "name": "apps"}, "backends": [],
                "sessions": []}}),
        );
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "apps"}}));
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "RestoreSession",
            "metadata": {"name": "back", "namespace": "apps", "uid": "restore-uid",
                "creationTimestamp": "2026-12-01T09:59:30Z"},
            "spec": {"target": {"apiGroup": "apps", "kind": "StatefulSet", "name": "db"},
                "dataSource": {"repository": "apps-repo", "snapshot": "latest",
                    "components": ["pod-0"]},
                "timeout": timeout}}));
        cluster
    }

    async fn step(cluster: &FakeCluster, at: DateTime<Utc>) -> RestoreStep {
        let settings = OperatorSettings {
            image: "localhost/kbackup:test".into(),
            placement: JobPlacement::default(),
            http: None,
        };
        reconcile_restore(cluster, "apps", "back", &settings, at)
            .await
            .unwrap()
    }

    fn restore(cluster: &FakeCluster) -> Value {
        cluster
            .object("RestoreSession", Some("apps"), "back")
            .unwrap()
    }

    fn paused(cluster: &FakeCluster) -> Value {
        cluster
            .object("BackupConfiguration", Some("apps"), "web")
            .unwrap()["spec"]["paused"]
            .clone()
    }

    fn finish_job(cluster: &FakeCluster, report: &SessionReport) {
        crate::sessions::job_end::end_job(
            cluster,
            "apps",
            "back-restore",
            RESTORE_CONTAINER,
            &report.message(),
        );
    }

    #[tokio::test]
    async fn a_restore_pauses_the_backups_runs_its_job_and_resumes_them() {
        let cluster = cluster("30m");
        let started = step(&cluster, now()).await;
        assert_eq!(started.requeue, Requeue::After(RUNNING_CHECK));
        let status = restore(&cluster)["status"].clone();
        assert_eq!(status["phase"], "Running", "{status}");
        assert_eq!(status["targetFound"], false);
        assert_eq!(
            status["deadline"], "2026-12-01T10:29:30Z",
            "from its creation"
        );
        assert_eq!(status["totalComponents"], 2);
        assert_eq!(
            status["components"]["/apps/statefulset/db/db-0/data"]["phase"],
            "Pending"
        );
        assert_eq!(
            status["dependencies"][0]["name"], "web-1-apps-repo",
            "the newest that succeeded"
        );
        assert_eq!(status["dependencies"][0]["found"], true);
        assert_eq!(status["pausedBackups"][0]["name"], "web");
        assert_eq!(paused(&cluster), true);
        let job = cluster.object("Job", Some("apps"), "back-restore").unwrap();
        let args = &job["spec"]["template"]["spec"]["containers"][0]["args"];
        let plan: super::super::plan::RestorePlan =
            serde_json::from_str(args[2].as_str().unwrap()).unwrap();
        assert_eq!(plan.snapshot_id, SNAPSHOT_ID);
        assert_eq!(plan.volumes, ["/apps/statefulset/db/db-0/data"]);
        assert_eq!(plan.repository_url, "s3://backups/apps");
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 1800);
        let secret = cluster
            .object("Secret", Some("apps"), "back-restore")
            .unwrap();
        assert_eq!(secret["stringData"]["KBACKUP_PASSWORD"], "repo-password");
        assert!(
            cluster
                .object("Role", Some("apps"), "back-restore")
                .is_some()
        );
        assert_eq!(
            restore(&cluster)["metadata"]["finalizers"][0],
            RESUME_FINALIZER
        );

        // Again, as after a restart: nothing made twice, still running.
        step(&cluster, now()).await;
        assert_eq!(cluster.jobs("apps").len(), 1);
        assert_eq!(restore(&cluster)["status"]["phase"], "Running");

        let report = SessionReport {
            phase: Some(SnapshotPhase::Succeeded),
            snapshot_id: Some(SNAPSHOT_ID.into()),
            total_components: 2,
            components: [
                ("manifests", "1.50s"),
                ("/apps/statefulset/db/db-0/data", "4.00s"),
            ]
            .into_iter()
            .map(|(name, duration)| {
                (
                    name.to_owned(),
                    ComponentStatus {
                        phase: "Succeeded".into(),
                        duration: Some(duration.into()),
                        size: None,
                        error: None,
                    },
                )
            })
            .collect(),
            ..SessionReport::default()
        };
        finish_job(&cluster, &report);
        let later = now() + chrono::Duration::seconds(30);
        let ended = step(&cluster, later).await.ended.expect("ended");
        assert_eq!(ended.phase, RestorePhase::Succeeded);
        let restored = restore(&cluster);
        let status = &restored["status"];
        assert_eq!(status["phase"], "Succeeded");
        assert_eq!(status["duration"], "1m");
        assert_eq!(status["components"]["manifests"]["duration"], "1.50s");
        assert_eq!(status["pausedBackups"], json!([]));
        let types: Vec<&str> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "ValidationPassed",
                "RestoreTargetFound",
                "RestoreExecutorEnsured",
                "BackupsResumed",
                "MetricsPushed"
            ]
        );
        assert_eq!(paused(&cluster), false);
        assert!(
            cluster
                .object("Secret", Some("apps"), "back-restore")
                .is_none()
        );
        assert_eq!(restored["metadata"]["finalizers"], json!([]));
        assert_eq!(step(&cluster, later).await.ended, None, "ended stays ended");
    }

    #[tokio::test]
    async fn past_its_deadline_a_restore_stops_its_job_and_fails() {
        let cluster = cluster("2m");
        step(&cluster, now()).await;
        let waiting = step(&cluster, now() + chrono::Duration::seconds(60)).await;
        assert_eq!(waiting.requeue, Requeue::After(Duration::from_secs(31)));
        let late = now() + chrono::Duration::seconds(95);
        assert_eq!(
            until(Some(now()), late),
            Duration::from_secs(1),
            "past the deadline: at once"
        );
        let ended = step(&cluster, now() + chrono::Duration::seconds(91)).await;
        assert_eq!(ended.ended.unwrap().phase, RestorePhase::Failed);
        assert!(cluster.jobs("apps").is_empty(), "the Job is deleted");
        let status = restore(&cluster)["status"].clone();
        let deadline = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DeadlineExceeded")
            .cloned()
            .expect("a DeadlineExceeded condition");
        assert_eq!(deadline["reason"], "FailedToCompleteWithinDeadline");
        assert_eq!(status["components"]["manifests"]["phase"], "Failed");
        assert_eq!(paused(&cluster), false, "resumed whatever the outcome");
    }

    #[tokio::test]
    async fn a_restore_of_a_component_the_snapshot_lacks_is_invalid_and_pauses_nothing() {
        let cluster = cluster("30m");
        let mut session = restore(&cluster);
        session["spec"]["dataSource"]["components"] = json!(["pod-5"]);
        cluster.insert(&session);
        let ended = step(&cluster, now()).await.ended.unwrap();
        assert_eq!(ended.phase, RestorePhase::Invalid);
        let status = restore(&cluster)["status"].clone();
        assert_eq!(status["conditions"][0]["type"], "ValidationPassed");
        assert_eq!(status["conditions"][0]["status"], "False");
        assert!(
            status["conditions"][0]["message"]
                .as_str()
                .unwrap()
                .contains("db-5")
        );
        assert!(paused(&cluster).is_null() || paused(&cluster) == false);
        assert!(cluster.jobs("apps").is_empty());
    }

    #[tokio::test]
    async fn a_restore_of_a_missing_snapshot_fails_naming_it() {
        let cluster = cluster("30m");
        let mut session = restore(&cluster);
        session["spec"]["dataSource"]["snapshot"] = json!("gone");
        cluster.insert(&session);
        let ended = step(&cluster, now()).await.ended.unwrap();
        assert_eq!(ended.phase, RestorePhase::Failed);
        let status = restore(&cluster)["status"].clone();
        assert_eq!(
            status["dependencies"],
            json!([{"kind": "Snapshot", "name": "gone", "namespace": "apps", "found": false}])
        );
        assert_eq!(status["conditions"][1]["reason"], "SnapshotNotFound");
    }

    #[tokio::test]
    async fn a_restore_deleted_mid_way_resumes_the_backups_it_paused_and_lets_go() {
        let cluster = cluster("30m");
        step(&cluster, now()).await;
        assert_eq!(paused(&cluster), true);
        let mut deleted = restore(&cluster);
        deleted["metadata"]["deletionTimestamp"] = json!("2026-12-01T10:00:10Z");
        cluster.insert(&deleted);
        let step = step(&cluster, now()).await;
        assert_eq!(step.ended, None);
        assert_eq!(paused(&cluster), false);
        let configuration = cluster
            .object("BackupConfiguration", Some("apps"), "web")
            .unwrap();
        assert!(
            configuration["metadata"]["annotations"]
                .get(super::super::pauses::PAUSED_BY)
                .is_none(),
            "{configuration}"
        );
        assert_eq!(restore(&cluster)["metadata"]["finalizers"], json!([]));
    }

    #[tokio::test]
    async fn backups_paused_by_someone_else_are_left_paused() {
        let cluster = cluster("30m");
        let mut configuration = cluster
            .object("BackupConfiguration", Some("apps"), "web")
            .unwrap();
        configuration["spec"]["paused"] = json!(true);
        cluster.insert(&configuration);
        step(&cluster, now()).await;
        let status = restore(&cluster)["status"].clone();
        assert!(
            status["pausedBackups"].as_array().is_none_or(Vec::is_empty),
            "{status}"
        );
        finish_job(
            &cluster,
            &SessionReport::failed("the repository could not be opened"),
        );
        let ended = step(&cluster, now()).await.ended.unwrap();
        assert_eq!(ended.phase, RestorePhase::Failed);
        assert_eq!(paused(&cluster), true, "not this restore's to resume");
    }

    /// The reason of the condition that refused the restore `back` after `change` to it.
    async fn refused_because(change: impl FnOnce(&mut Value), cluster: &FakeCluster) -> String {
        let mut session = restore(cluster);
        change(&mut session);
        cluster.insert(&session);
        step(cluster, now()).await.ended.expect("refused at once");
        assert!(cluster.jobs("apps").is_empty());
        let status = restore(cluster)["status"].clone();
        status["conditions"].as_array().unwrap().last().unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn a_restore_reads_and_writes_only_what_its_namespace_may() {
        let cluster = cluster("30m");
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "kube-system"}}));
        let elsewhere = refused_because(
            |s| s["spec"]["manifestOptions"] = json!({"restoreNamespace": "kube-system"}),
            &cluster,
        )
        .await;
        assert_eq!(elsewhere, "ResourceValidationFailed");
        let message = restore(&cluster)["status"]["conditions"][0]["message"].clone();
        assert!(
            message.to_string().contains("kube-system exists"),
            "{message}"
        );

        let cluster = self::cluster("30m");
        let source = refused_because(
            |s| s["spec"]["dataSource"]["namespace"] = json!("other"),
            &cluster,
        )
        .await;
        assert_eq!(source, "ResourceValidationFailed");

        let cluster = self::cluster("30m");
        let mut storage = cluster
            .object("BackupStorage", Some("apps"), "minio")
            .unwrap();
        storage["metadata"]["namespace"] = json!("ops");
        cluster.insert(&storage);
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "minio-keys", "namespace": "ops"},
            "data": {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret-key"}}));
        let mut repository = cluster
            .object("Repository", Some("apps"), "apps-repo")
            .unwrap();
        repository["spec"]["storageRef"]["namespace"] = json!("ops");
        cluster.insert(&repository);
        let storage = refused_because(|_| {}, &cluster).await;
        assert_eq!(storage, "StorageNotAllowed", "the storage's usage policy");
    }

    /// The RestoreSession with hooks of the template `run` (a command in pods `app=db`).
    fn with_hooks(cluster: &FakeCluster, hooks: Value) {
        cluster.insert(&crate::hooks::plan::tests::template(
            "apps",
            "run",
            json!({
                "params": [{"name": "CMD", "required": true}],
                "action": {"exec": {"command": ["{{ .CMD }}", "now"]}},
                "executor": {"type": "Pod", "pod": {"selector": "app=db"}},
            }),
        ));
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "apps", "labels": {"app": "db"}},
            "status": {"phase": "Running"}}));
        let mut session = restore(cluster);
        session["spec"]["hooks"] = hooks;
        cluster.insert(&session);
    }

    fn hook(name: &str, command: &str, policy: &str) -> Value {
        json!({"name": name, "hookTemplate": {"name": "run"}, "params": {"CMD": command},
            "executionPolicy": policy})
    }

    fn hook_phases(status: &Value, stage: &str) -> Vec<(String, String)> {
        status["hooks"][stage]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                (
                    h["name"].as_str().unwrap().to_owned(),
                    h["phase"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn condition_of(status: &Value, type_: &str) -> Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .cloned()
            .unwrap_or_else(|| panic!("no {type_} in {status}"))
    }

    #[tokio::test]
    async fn hooks_run_before_the_job_and_after_its_report_by_their_policy() {
        let cluster = cluster("30m");
        with_hooks(
            &cluster,
            json!({
                "preRestore": [hook("quiesce", "freeze", "Always")],
                "postRestore": [hook("resume", "thaw", "Always"), hook("alarm", "page", "OnFailure"),
                    hook("check", "false", "OnSuccess")],
            }),
        );
        step(&cluster, now()).await;
        let status = restore(&cluster)["status"].clone();
        assert_eq!(status["phase"], "Running");
        assert_eq!(
            hook_phases(&status, "preHooks"),
            [("quiesce".to_owned(), "Succeeded".to_owned())]
        );
        assert_eq!(
            condition_of(&status, "PreRestoreHooksExecutionSucceeded")["reason"],
            "SuccessfullyExecutedPreRestoreHooks"
        );
        let calls = cluster.calls();
        let exec = calls
            .iter()
            .position(|c| c == "exec apps/db-0: freeze now")
            .expect("pre hook ran");
        let job = calls
            .iter()
            .position(|c| c == "create Job/back-restore")
            .expect("Job made");
        assert!(exec < job, "the pre hook before the Job: {calls:?}");
        step(&cluster, now()).await;
        assert_eq!(
            cluster
                .calls()
                .iter()
                .filter(|c| c.starts_with("exec"))
                .count(),
            1,
            "a repeated start runs no hook again"
        );
        let mut components = BTreeMap::new();
        components.insert(
            "/apps/statefulset/db/db-0/data".to_owned(),
            ComponentStatus {
                phase: "Succeeded".into(),
                duration: None,
                error: None,
                size: None,
            },
        );
        finish_job(
            &cluster,
            &SessionReport {
                phase: Some(SnapshotPhase::Succeeded),
                components,
                ..SessionReport::default()
            },
        );
        step(&cluster, now()).await;
        let status = restore(&cluster)["status"].clone();
        assert_eq!(
            hook_phases(&status, "postHooks"),
            [
                ("resume".to_owned(), "Succeeded".to_owned()),
                ("alarm".to_owned(), "Skipped".to_owned()),
                ("check".to_owned(), "Failed".to_owned())
            ]
        );
        let post = condition_of(&status, "PostRestoreHooksExecutionSucceeded");
        assert_eq!(
            (post["status"].as_str(), post["reason"].as_str()),
            (Some("False"), Some("FailedToExecutePostRestoreHooks"))
        );
        assert!(
            post["message"]
                .as_str()
                .unwrap()
                .starts_with("check failed after 1 attempt: pod db-0: command terminated"),
            "{post}"
        );
        assert_eq!(
            status["phase"], "Failed",
            "a failed post hook fails the restore"
        );
        assert_eq!(paused(&cluster), false, "backups resumed");
    }

    #[tokio::test]
    async fn a_failed_pre_hook_restores_nothing_and_runs_the_post_hooks_of_a_failure() {
        let cluster = cluster("30m");
        with_hooks(
            &cluster,
            json!({
                "preRestore": [hook("quiesce", "false", "Always"), hook("after", "echo", "Always")],
                "postRestore": [hook("alarm", "page", "OnFailure"), hook("cheer", "cheer", "OnSuccess")],
            }),
        );
        let ended = step(&cluster, now()).await.ended.expect("ended at once");
        assert_eq!(ended.phase, RestorePhase::Failed);
        assert!(cluster.jobs("apps").is_empty(), "no restore Job");
        let status = restore(&cluster)["status"].clone();
        assert!(
            !status.to_string().contains("RestoreExecutorEnsured"),
            "no executor is said to be ensured: {status}"
        );
        assert_eq!(
            hook_phases(&status, "preHooks"),
            [
                ("quiesce".to_owned(), "Failed".to_owned()),
                ("after".to_owned(), "Skipped".to_owned())
            ]
        );
        assert_eq!(
            hook_phases(&status, "postHooks"),
            [
                ("alarm".to_owned(), "Succeeded".to_owned()),
                ("cheer".to_owned(), "Skipped".to_owned())
            ]
        );
        assert_eq!(
            condition_of(&status, "RestoreFailed")["reason"],
            "PreRestoreHooksFailed"
        );
        assert_eq!(
            status["components"]["/apps/statefulset/db/db-0/data"]["phase"],
            "Failed"
        );
        assert_eq!(paused(&cluster), false, "backups resumed");
    }

    #[tokio::test]
    async fn a_hook_of_a_missing_or_wrong_template_refuses_the_restore() {
        let cluster = cluster("30m");
        with_hooks(
            &cluster,
            json!({"preRestore": [{"name": "x", "hookTemplate": {"name": "gone"}}]}),
        );
        assert_eq!(
            step(&cluster, now()).await.ended.unwrap().phase,
            RestorePhase::Failed
        );
        let cluster = cluster_with_bad_hook();
        assert_eq!(
            step(&cluster, now()).await.ended.unwrap().phase,
            RestorePhase::Invalid
        );
        let status = restore(&cluster)["status"].clone();
        assert!(
            status.to_string().contains("parameter CMD is required"),
            "{status}"
        );
        assert!(cluster.jobs("apps").is_empty());
    }

    fn cluster_with_bad_hook() -> FakeCluster {
        let cluster = cluster("30m");
        with_hooks(
            &cluster,
            json!({"postRestore": [{"name": "x", "hookTemplate": {"name": "run"}}]}),
        );
        cluster
    }
}
