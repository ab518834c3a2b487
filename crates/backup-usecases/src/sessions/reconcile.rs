//! A BackupSession driven to its end, one step per call, from what the cluster holds: a new
//! session is skipped, failed with the reason it cannot run, or started (its Repository,
//! Snapshot, Secret and Job made per repository, each under a name that is the same on every
//! run); a running one is followed through its Jobs until each reported, then its Snapshots,
//! Repositories and its own status are written and the snapshots retention removed are
//! dropped. Every step can be repeated: an operator killed anywhere and started again ends
//! in the same state, with no Job or snapshot made twice.

use super::job_end::{JobProgress, job_progress};
use super::objects::{
    BACKUP_SESSION, REPOSITORY, SESSION_CONTAINER, repository_object, session_job,
    session_object_name, session_secret, session_value, snapshot_object,
};
use super::plan::{PlanError, plan_session, read};
use super::report::SessionReport;
use super::retry::{retry_failed, wait_before_start};
use super::run::size_text;
use crate::hooks::plan::{HookStage, plan_session_hooks};
use crate::hooks::run::HookRunner;
use crate::hooks::status::{HookedWork, run_post_hooks, run_stage};
use backup_api::{
    API_VERSION, BackupConfiguration, BackupSession, BackupSessionPhase, ConcurrencyPolicy,
    Condition, ConditionStatus, RetentionPolicyApplyStatus, SessionSnapshot, SnapshotInfo,
    SnapshotPhase,
};
use backup_core::ClusterError;
use backup_core::cluster::{
    ApiResourceType, ConfigObjects, JobControl, ObjectRef, PodExec, ResourceStore, for_each_page,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;

/// When to look at an object again, besides the changes that wake its controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Only on a change.
    OnChange,
    /// After this long.
    After(Duration),
}

/// What one step of a session did.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStep {
    /// When to look again.
    pub requeue: Requeue,
    /// The session ended in this step.
    pub ended: Option<EndedSession>,
}

impl SessionStep {
    fn waiting(requeue: Requeue) -> Self {
        Self {
            requeue,
            ended: None,
        }
    }
}

/// A session that ended: for the operator's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedSession {
    /// Its namespace.
    pub namespace: String,
    /// Its BackupConfiguration.
    pub configuration: String,
    /// How it ended.
    pub phase: BackupSessionPhase,
    /// How long it took, from its creation.
    pub seconds: f64,
    /// Snapshots in each repository it wrote to, afterwards.
    pub snapshot_counts: Vec<(String, u64)>,
}

fn ended(session: &BackupSession, phase: BackupSessionPhase, now: DateTime<Utc>) -> SessionStep {
    let created = session
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now.timestamp(), |t| t.0.as_second());
    SessionStep {
        requeue: Requeue::OnChange,
        ended: Some(EndedSession {
            namespace: session.metadata.namespace.clone().unwrap_or_default(),
            configuration: session.spec.invoker.name.clone(),
            phase,
            seconds: (now.timestamp() - created).max(0) as f64,
            snapshot_counts: Vec::new(),
        }),
    }
}

/// What the operator was started with.
#[derive(Debug, Clone, Default)]
pub struct OperatorSettings {
    /// The kbackup image its CronJobs, Jobs and movers run.
    pub image: String,
    /// Where its CronJobs' and session Jobs' pods go.
    pub placement: JobPlacement,
    /// The HTTP client of hooks (none: HTTP hooks fail saying so).
    pub http: Option<std::sync::Arc<dyn backup_core::http::HttpCaller>>,
}

/// Node labels and tolerations of the pods the operator starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPlacement {
    /// Labels a node must have.
    pub node_selector: std::collections::BTreeMap<String, String>,
    /// Taint keys tolerated (any value and effect).
    pub tolerations: Vec<String>,
}

impl JobPlacement {
    /// Sets them on a pod spec.
    pub fn apply_to(&self, pod_spec: &mut Value) {
        if !self.node_selector.is_empty() {
            pod_spec["nodeSelector"] = json!(self.node_selector);
        }
        if !self.tolerations.is_empty() {
            pod_spec["tolerations"] = self
                .tolerations
                .iter()
                .map(|key| json!({"key": key, "operator": "Exists"}))
                .collect();
        }
    }
}

/// How often a running session is looked at even when nothing changed.
const RUNNING_CHECK: Duration = Duration::from_secs(60);
/// The newest snapshots a Repository's status lists.
const RECENT_SNAPSHOTS: usize = 5;

/// Takes the BackupSession `namespace/name` one step further.
pub async fn reconcile_session<C: ResourceStore + ConfigObjects + JobControl + PodExec + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    settings: &OperatorSettings,
    now: DateTime<Utc>,
) -> Result<SessionStep, ClusterError> {
    let session: BackupSession = match read(cluster, "BackupSession", namespace, name).await {
        Ok(session) => session,
        Err(_) => return Ok(SessionStep::waiting(Requeue::OnChange)),
    };
    let status = session.status.clone().unwrap_or_default();
    match status.phase {
        None | Some(BackupSessionPhase::Pending) => start(cluster, &session, settings, now).await,
        Some(BackupSessionPhase::Running) => follow(cluster, &session, settings, now).await,
        Some(_) => Ok(SessionStep::waiting(Requeue::OnChange)),
    }
}

/// A new session: skipped, failed, or its Jobs made and it Running.
async fn start<C: ResourceStore + ConfigObjects + JobControl + PodExec + ?Sized>(
    cluster: &C,
    session: &BackupSession,
    settings: &OperatorSettings,
    mut now: DateTime<Utc>,
) -> Result<SessionStep, ClusterError> {
    if let Some(wait) = wait_before_start(session, now) {
        return Ok(SessionStep::waiting(Requeue::After(wait)));
    }
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let invoker = &session.spec.invoker;
    let configuration: BackupConfiguration = match read(
        cluster,
        "BackupConfiguration",
        &invoker.namespace_or(&namespace),
        &invoker.name,
    )
    .await
    {
        Ok(configuration) => configuration,
        Err(error) => {
            return finish_unstarted(cluster, session, now, BackupSessionPhase::Failed, &error)
                .await;
        }
    };
    // Jobs of this session exist: an earlier run started it and stopped before saying so.
    // It goes on whatever changed since (a pause, another session), or its Jobs would run
    // under a session that says it never started.
    let started_before = !jobs_of(cluster, session).await?.is_empty();
    if configuration.spec.paused && !started_before {
        let why = PlanError {
            reason: "ConfigurationPaused",
            message: format!("BackupConfiguration {} is paused", invoker.name),
        };
        return finish_unstarted(cluster, session, now, BackupSessionPhase::Skipped, &why).await;
    }
    let session_config = configuration
        .spec
        .sessions
        .iter()
        .find(|s| s.name == session.spec.session);
    if let Some(config) = session_config
        && !started_before
        && config.scheduler.concurrency_policy == ConcurrencyPolicy::Forbid
        && let Some(running) = running_sibling(cluster, session).await?
    {
        let why = PlanError {
            reason: "AnotherSessionRunning",
            message: format!("BackupSession {running} of the same session is still running"),
        };
        return finish_unstarted(cluster, session, now, BackupSessionPhase::Skipped, &why).await;
    }
    let planned = match plan_session(cluster, session, &configuration, &settings.image).await {
        Ok(planned) => planned,
        Err(error) => {
            return finish_unstarted(cluster, session, now, BackupSessionPhase::Failed, &error)
                .await;
        }
    };
    let hook_infos = session_config.map(|c| c.hooks.clone()).unwrap_or_default();
    let hooks = match plan_session_hooks(
        cluster,
        &namespace,
        &hook_infos.pre_backup,
        &hook_infos.post_backup,
    )
    .await?
    {
        Ok(hooks) => hooks,
        Err(error) => {
            return finish_unstarted(cluster, session, now, BackupSessionPhase::Failed, &error)
                .await;
        }
    };
    let timeout = session_config
        .and_then(|c| c.timeout.as_deref())
        .and_then(|t| humantime::parse_duration(t).ok());
    let deadline = timeout.map(|t| now + chrono::Duration::from_std(t).unwrap_or_default());
    let owner = session_value(session);
    // Every Secret first: a credential that cannot go into one fails the session before
    // anything is made.
    let secrets = match planned
        .iter()
        .map(|repository| session_secret(repository, &owner))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(secrets) => secrets,
        Err(error) => {
            let why = PlanError {
                reason: "CredentialNotText",
                message: error.to_string(),
            };
            return finish_unstarted(cluster, session, now, BackupSessionPhase::Failed, &why).await;
        }
    };
    // Jobs made before a restart mean the pre hooks ran then.
    let mut status = json!({"conditions": []});
    let name = session.metadata.name.clone().unwrap_or_default();
    let runner = hook_runner(cluster, settings, &namespace, &name);
    if !started_before
        && !run_stage(
            &runner,
            HookedWork::Backup,
            HookStage::Pre,
            &hooks.pre,
            true,
            &mut status,
            &mut now,
        )
        .await
    {
        run_stage(
            &runner,
            HookedWork::Backup,
            HookStage::Post,
            &hooks.post,
            false,
            &mut status,
            &mut now,
        )
        .await;
        let why = PlanError {
            reason: "PreBackupHooksFailed",
            message: "a pre-backup hook failed: nothing was backed up".into(),
        };
        return finish_unstarted_after_hooks(
            cluster,
            session,
            now,
            BackupSessionPhase::Failed,
            &why,
            status,
        )
        .await;
    }
    let mut snapshots = Vec::new();
    for (repository, secret) in planned.iter().zip(&secrets) {
        let plan = &repository.plan;
        let repository_object = ensure_repository(cluster, &configuration, plan).await?;
        let snapshot = snapshot_object(plan, &repository_object, &json!(plan.target));
        create_once(cluster, &snapshot).await?;
        create_once(cluster, secret).await?;
        let mut job = session_job(plan, &owner, timeout.map(|t| t.as_secs() as i64));
        settings
            .placement
            .apply_to(&mut job["spec"]["template"]["spec"]);
        match cluster.create_job(&namespace, &job).await {
            Ok(()) | Err(ClusterError::Conflict(_)) => {}
            Err(error) => return Err(error),
        }
        snapshots.push(SessionSnapshot {
            name: session_object_name(&plan.backup_session, &plan.repository),
            repository: plan.repository.clone(),
            phase: Some("Running".into()),
        });
    }
    push_condition(
        &mut status,
        condition(
            "SessionRunning",
            ConditionStatus::True,
            "JobsCreated",
            format!("{} Job(s) started", snapshots.len()),
            now,
        ),
    );
    status["phase"] = json!(BackupSessionPhase::Running);
    status["deadline"] = json!(deadline.map(|d| rfc3339(&d)));
    status["snapshots"] = json!(snapshots);
    write_status(cluster, "BackupSession", session_value(session), status).await?;
    Ok(SessionStep::waiting(Requeue::After(RUNNING_CHECK)))
}

/// Appends `condition` to `status.conditions`.
pub(crate) fn push_condition(status: &mut Value, condition: Condition) {
    let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    conditions.push(json!(condition));
    status["conditions"] = json!(conditions);
}

/// What a session's hooks run with.
pub(crate) fn hook_runner<'a, C: ?Sized>(
    cluster: &'a C,
    settings: &'a OperatorSettings,
    namespace: &'a str,
    session: &'a str,
) -> HookRunner<'a, C> {
    HookRunner {
        cluster,
        http: settings.http.as_deref(),
        namespace,
        session,
        placement: &settings.placement,
        retry_delay: HOOK_RETRY_DELAY,
    }
}

/// The pause before another attempt of a session's hook.
const HOOK_RETRY_DELAY: Duration = Duration::from_secs(1);

/// A session of the same configuration's session that is running, other than this one.
async fn running_sibling<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &BackupSession,
) -> Result<Option<String>, ClusterError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    Ok(sessions_in(cluster, &namespace)
        .await?
        .iter()
        .filter(|s| s["metadata"]["name"].as_str() != session.metadata.name.as_deref())
        .filter(|s| s["spec"]["invoker"]["name"] == session.spec.invoker.name.as_str())
        .filter(|s| s["spec"]["session"] == session.spec.session.as_str())
        .find(|s| s["status"]["phase"] == "Running")
        .and_then(|s| s["metadata"]["name"].as_str().map(str::to_owned)))
}

/// The Jobs made for `session`.
async fn jobs_of<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &BackupSession,
) -> Result<Vec<Value>, ClusterError> {
    let jobs = ApiResourceType::namespaced("batch", "v1", "Job", "jobs");
    let selector = format!(
        "{BACKUP_SESSION}={}",
        session.metadata.name.as_deref().unwrap_or_default()
    );
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    list_all(cluster, &jobs, Some(&namespace), Some(&selector)).await
}

/// The BackupSessions of a namespace.
pub(crate) async fn sessions_in<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
) -> Result<Vec<Value>, ClusterError> {
    let sessions = kind_type("BackupSession", "backupsessions");
    list_all(cluster, &sessions, Some(namespace), None).await
}

/// The Repository object of `plan`, made from the configuration when missing.
async fn ensure_repository<C: ResourceStore + ?Sized>(
    cluster: &C,
    configuration: &BackupConfiguration,
    plan: &super::plan::SessionPlan,
) -> Result<Value, ClusterError> {
    let reference =
        ObjectRef::namespaced(API_VERSION, "Repository", &plan.namespace, &plan.repository);
    if let Some(existing) = cluster.get(&reference).await? {
        return Ok(existing);
    }
    let session = configuration
        .spec
        .sessions
        .iter()
        .find(|s| s.name == plan.session);
    let Some(object) = session.and_then(|s| repository_object(configuration, s, &plan.repository))
    else {
        return Err(ClusterError::Invalid(format!(
            "no repository {}",
            plan.repository
        )));
    };
    create_once(cluster, &object).await?;
    Ok(cluster.get(&reference).await?.unwrap_or(object))
}

/// Creates `object`; one that exists already (made by an earlier run) is left as it is.
pub(crate) async fn create_once<C: ResourceStore + ?Sized>(
    cluster: &C,
    object: &Value,
) -> Result<(), ClusterError> {
    match cluster.create(object).await {
        Ok(_) | Err(ClusterError::Conflict(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// A session that never started ends with `phase` and the reason.
async fn finish_unstarted<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &BackupSession,
    now: DateTime<Utc>,
    phase: BackupSessionPhase,
    why: &PlanError,
) -> Result<SessionStep, ClusterError> {
    finish_unstarted_after_hooks(cluster, session, now, phase, why, json!({})).await
}

/// [`finish_unstarted`], into `status` where the hooks that ran are written (`hooks` and
/// their `conditions`).
async fn finish_unstarted_after_hooks<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &BackupSession,
    now: DateTime<Utc>,
    phase: BackupSessionPhase,
    why: &PlanError,
    mut status: Value,
) -> Result<SessionStep, ClusterError> {
    let kind = match phase {
        BackupSessionPhase::Skipped => "SessionSkipped",
        _ => "SessionFailed",
    };
    let reason = condition(
        kind,
        ConditionStatus::True,
        why.reason,
        why.message.clone(),
        now,
    );
    push_condition(&mut status, reason);
    if phase == BackupSessionPhase::Failed
        && let Some(retry) = retried(cluster, session, now).await?
    {
        push_condition(&mut status, retry);
    }
    status["phase"] = json!(phase);
    status["duration"] = json!(duration_since(session, now));
    write_status(cluster, "BackupSession", session_value(session), status).await?;
    Ok(ended(session, phase, now))
}

/// A running session: each Job that ended has its Snapshot written; once all have, the
/// session ends.
async fn follow<C: ResourceStore + ConfigObjects + JobControl + PodExec + ?Sized>(
    cluster: &C,
    session: &BackupSession,
    settings: &OperatorSettings,
    mut now: DateTime<Utc>,
) -> Result<SessionStep, ClusterError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let status = session.status.clone().unwrap_or_default();
    let mut reports = Vec::new();
    for snapshot in &status.snapshots {
        match job_report(cluster, &namespace, &snapshot.name, SESSION_CONTAINER).await? {
            Some(report) => reports.push((snapshot, report)),
            None => return Ok(SessionStep::waiting(Requeue::After(RUNNING_CHECK))),
        }
    }
    // Read once for every repository's retention entry (gone: no entry).
    let configuration: Option<BackupConfiguration> = read(
        cluster,
        "BackupConfiguration",
        &session.spec.invoker.namespace_or(&namespace),
        &session.spec.invoker.name,
    )
    .await
    .ok();
    let mut retention = Vec::new();
    let mut snapshots = Vec::new();
    for (snapshot, report) in &reports {
        // The forgotten first, so the Snapshot objects never hold more than the repository.
        if let Some(outcome) = &report.retention {
            drop_removed(cluster, &namespace, &snapshot.repository, &outcome.removed).await?;
        }
        write_snapshot(cluster, &namespace, &snapshot.name, report, session).await?;
        write_repository(cluster, &namespace, &snapshot.repository, report).await?;
        if let Some(configuration) = &configuration {
            retention.extend(retention_status(
                configuration,
                &snapshot.repository,
                report,
            ));
        }
        cluster
            .delete(&ObjectRef::namespaced(
                "v1",
                "Secret",
                &namespace,
                &snapshot.name,
            ))
            .await?;
        snapshots.push(SessionSnapshot {
            name: snapshot.name.clone(),
            repository: snapshot.repository.clone(),
            phase: report.phase.map(|p| format!("{p:?}")),
        });
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|(_, r)| r.phase != Some(SnapshotPhase::Succeeded))
        .map(|(s, r)| format!("{}: {}", s.repository, r.failure()))
        .collect();
    let (phase, done) = match failed.is_empty() {
        true => (
            BackupSessionPhase::Succeeded,
            condition(
                "SessionSucceeded",
                ConditionStatus::True,
                "SnapshotsWritten",
                format!("{} snapshot(s) written", snapshots.len()),
                now,
            ),
        ),
        false => (
            BackupSessionPhase::Failed,
            condition(
                "SessionFailed",
                ConditionStatus::True,
                "SnapshotFailed",
                failed.join("; "),
                now,
            ),
        ),
    };
    let mut conditions = status.conditions.clone();
    conditions.push(done);
    if phase == BackupSessionPhase::Failed {
        conditions.extend(retried(cluster, session, now).await?);
    }
    let mut status = json!({
        "deadline": status.deadline,
        "snapshots": snapshots,
        "retentionPolicies": retention,
        "hooks": status.hooks,
        "conditions": conditions,
    });
    // The post hooks, by the snapshots' outcome; one that fails fails the session (its
    // snapshots stay written, and it is not tried again for it).
    let post = configuration
        .as_ref()
        .and_then(|c| {
            c.spec
                .sessions
                .iter()
                .find(|s| s.name == session.spec.session)
        })
        .map(|s| s.hooks.post_backup.clone())
        .unwrap_or_default();
    let name = session.metadata.name.clone().unwrap_or_default();
    let post_passed = run_post_hooks(
        cluster,
        &hook_runner(cluster, settings, &namespace, &name),
        &namespace,
        HookedWork::Backup,
        &post,
        failed.is_empty(),
        &mut status,
        &mut now,
    )
    .await?;
    let phase = match post_passed {
        true => phase,
        false => BackupSessionPhase::Failed,
    };
    status["phase"] = json!(phase);
    status["duration"] = json!(duration_since(session, now));
    write_status(cluster, "BackupSession", session_value(session), status).await?;
    let mut step = ended(session, phase, now);
    if let Some(ended) = &mut step.ended {
        ended.snapshot_counts = reports
            .iter()
            .filter_map(|(s, r)| Some((s.repository.clone(), r.snapshot_count?)))
            .collect();
    }
    Ok(step)
}

/// The next attempt of a failed session, made (before its status says Failed, so that a
/// crash in between cannot lose it), as a condition naming it.
async fn retried<C: ResourceStore + ?Sized>(
    cluster: &C,
    session: &BackupSession,
    now: DateTime<Utc>,
) -> Result<Option<Condition>, ClusterError> {
    Ok(retry_failed(cluster, session, now)
        .await?
        .map(|(name, not_before)| {
            let left = session.spec.retry_left.map_or("its retries".into(), |l| {
                format!("{} retr{} left", l, if l == 1 { "y" } else { "ies" })
            });
            condition(
                "RetryScheduled",
                ConditionStatus::True,
                "RetryCreated",
                format!(
                    "BackupSession {name} tries again from {} ({left} before it)",
                    rfc3339(&not_before)
                ),
                now,
            )
        }))
}

/// The report of a session Job that ended; `None` while it runs. A Job that is gone, or
/// ended without a report (killed, out of memory, past its deadline), is a failed report
/// saying so.
pub(crate) async fn job_report<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    container: &str,
) -> Result<Option<SessionReport>, ClusterError> {
    Ok(
        match job_progress(cluster, namespace, name, container).await? {
            JobProgress::Gone => Some(SessionReport::failed(format!("its Job {name} is gone"))),
            JobProgress::Running => None,
            JobProgress::Ended(end) => Some(
                match end.message.as_deref().and_then(SessionReport::parse) {
                    Some(report) => report,
                    None => SessionReport::failed(format!(
                        "Job {name} ended without a report: {}",
                        end.account()
                    )),
                },
            ),
        },
    )
}

/// The Snapshot object's id and status from the report. One that holds no snapshot goes
/// with its session (it gets the session as a second owner).
async fn write_snapshot<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    report: &SessionReport,
    session: &BackupSession,
) -> Result<(), ClusterError> {
    let reference = ObjectRef::namespaced(API_VERSION, "Snapshot", namespace, name);
    let Some(mut snapshot) = cluster.get(&reference).await? else {
        return Ok(());
    };
    let changed = match &report.snapshot_id {
        Some(id) if snapshot["spec"]["snapshotId"] != id.as_str() => {
            snapshot["spec"]["snapshotId"] = json!(id);
            true
        }
        Some(_) => false,
        None => {
            let session_uid = session.metadata.uid.clone().unwrap_or_default();
            let owners = snapshot["metadata"]["ownerReferences"].as_array_mut();
            match owners {
                Some(owners) if !owners.iter().any(|o| o["uid"] == session_uid.as_str()) => {
                    owners.push(json!({"apiVersion": API_VERSION, "kind": "BackupSession",
                        "name": session.metadata.name, "uid": session_uid}));
                    true
                }
                _ => false,
            }
        }
    };
    if changed {
        snapshot = cluster.replace(&snapshot).await?;
    }
    let mut conditions = Vec::new();
    if let Some(error) = &report.error {
        conditions.push(condition(
            "SnapshotFailed",
            ConditionStatus::True,
            "BackupFailed",
            error.clone(),
            Utc::now(),
        ));
    }
    let status = json!({
        "phase": report.phase,
        "snapshotTime": report.snapshot_time,
        "components": report.components,
        "totalComponents": report.total_components,
        "size": report.size,
        "conditions": conditions,
    });
    write_status(cluster, "Snapshot", snapshot, status).await?;
    Ok(())
}

/// Deletes the Snapshot objects of `repository` whose snapshot retention removed.
async fn drop_removed<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    repository: &str,
    removed: &[String],
) -> Result<(), ClusterError> {
    if removed.is_empty() {
        return Ok(());
    }
    let selector = format!("{REPOSITORY}={repository}");
    let snapshots = kind_type("Snapshot", "snapshots");
    for snapshot in &list_all(cluster, &snapshots, Some(namespace), Some(&selector)).await? {
        let id = snapshot["spec"]["snapshotId"].as_str().unwrap_or_default();
        if !id.is_empty() && removed.iter().any(|short| id.starts_with(short.as_str())) {
            let name = snapshot["metadata"]["name"].as_str().unwrap_or_default();
            cluster
                .delete(&ObjectRef::namespaced(
                    API_VERSION,
                    "Snapshot",
                    namespace,
                    name,
                ))
                .await?;
        }
    }
    Ok(())
}

/// The Repository object's status after a session: Ready once a snapshot was written in it,
/// its snapshot count and last backup time.
async fn write_repository<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    repository: &str,
    report: &SessionReport,
) -> Result<(), ClusterError> {
    let reference = ObjectRef::namespaced(API_VERSION, "Repository", namespace, repository);
    let Some(object) = cluster.get(&reference).await? else {
        return Ok(());
    };
    let mut status = object["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    // A session of StackState data stores writes elsewhere and never opens the repository:
    // it is Ready only once a session has (its snapshot count says so).
    if report.phase == Some(SnapshotPhase::Succeeded) && report.snapshot_count.is_some() {
        status["phase"] = json!("Ready");
        status["lastBackupTime"] = json!(report.snapshot_time);
    }
    if let Some(count) = report.snapshot_count {
        status["snapshotCount"] = json!(count);
    }
    if let Some(integrity) = report.integrity {
        status["integrity"] = json!(integrity);
    }
    if let Some(bytes) = report.repository_size {
        status["size"] = json!(size_text(bytes));
        status["sizeBytes"] = json!(bytes);
    }
    status["recentSnapshots"] = json!(recent_snapshots(cluster, namespace, repository).await?);
    write_status(cluster, "Repository", object, status).await?;
    Ok(())
}

/// The newest Snapshot objects of `repository` (at most [`RECENT_SNAPSHOTS`]).
async fn recent_snapshots<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    repository: &str,
) -> Result<Vec<SnapshotInfo>, ClusterError> {
    let selector = format!("{REPOSITORY}={repository}");
    let snapshots = kind_type("Snapshot", "snapshots");
    let mut recent: Vec<SnapshotInfo> =
        list_all(cluster, &snapshots, Some(namespace), Some(&selector))
            .await?
            .into_iter()
            .filter_map(|s| {
                Some(SnapshotInfo {
                    name: s["metadata"]["name"].as_str()?.to_owned(),
                    phase: s["status"]["phase"].as_str()?.to_owned(),
                    snapshot_time: s["status"]["snapshotTime"].as_str()?.to_owned(),
                    size: s["status"]["size"].as_str().map(str::to_owned),
                })
            })
            .collect();
    recent.sort_by(|a, b| b.snapshot_time.cmp(&a.snapshot_time));
    recent.truncate(RECENT_SNAPSHOTS);
    Ok(recent)
}

/// The retention entry of a repository in the session's status.
fn retention_status(
    configuration: &BackupConfiguration,
    repository: &str,
    report: &SessionReport,
) -> Option<RetentionPolicyApplyStatus> {
    let outcome = report.retention.as_ref()?;
    let backend = configuration
        .spec
        .sessions
        .iter()
        .flat_map(|s| &s.repositories)
        .find(|r| r.name == repository)
        .and_then(|r| {
            configuration
                .spec
                .backends
                .iter()
                .find(|b| b.name == r.backend)
        })?;
    Some(RetentionPolicyApplyStatus {
        repository: repository.to_owned(),
        policy: backend.retention_policy.clone(),
        phase: match (&outcome.error, &outcome.not_applied) {
            (Some(_), _) => "FailedToApply".into(),
            (None, Some(_)) => "NotApplied".into(),
            (None, None) => "Applied".into(),
        },
        removed: outcome.removed.len() as u32,
        error: outcome.error.clone(),
        message: outcome.not_applied.clone(),
    })
}

/// Writes `status` on `object` (a kbackup.io object as read).
pub(crate) async fn write_status<C: ResourceStore + ?Sized>(
    cluster: &C,
    kind: &str,
    object: Value,
    status: Value,
) -> Result<(), ClusterError> {
    let patch = json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"]},
        "status": strip_nulls(status),
    });
    cluster.apply_status(&patch).await?;
    Ok(())
}

/// `value` without its null members (server-side apply would set them).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// A status condition.
pub(crate) fn condition(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message,
        last_transition_time: Some(rfc3339(&now)),
        observed_generation: None,
    }
}

pub(crate) fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How long since the session was made (`1m12s`).
fn duration_since(session: &BackupSession, now: DateTime<Utc>) -> Option<String> {
    let created = session.metadata.creation_timestamp.as_ref()?.0;
    age(created.as_second(), now)
}

/// How long since `created` (Unix seconds), as `1m12s`.
pub(crate) fn age(created: i64, now: DateTime<Utc>) -> Option<String> {
    let seconds = (now.timestamp() - created).max(0) as u64;
    Some(
        humantime::format_duration(Duration::from_secs(seconds))
            .to_string()
            .replace(' ', ""),
    )
}

/// A kbackup.io kind as a resource type.
pub(crate) fn kind_type(kind: &str, plural: &str) -> ApiResourceType {
    ApiResourceType::namespaced(backup_api::GROUP, backup_api::VERSION, kind, plural)
}

/// Every object of a namespaced type (in `namespace`, or all when `None`) matching
/// `selector`, page by page.
pub(crate) async fn list_all<C: ResourceStore + ?Sized>(
    cluster: &C,
    resource: &ApiResourceType,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Value>, ClusterError> {
    let mut all = Vec::new();
    for_each_page(cluster, resource, namespace, selector, 500, |items| {
        all.extend(items)
    })
    .await?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::report::RetentionOutcome;
    use backup_core::testing::FakeCluster;

    const NOW: &str = "2026-12-01T10:00:00Z";

    fn now() -> DateTime<Utc> {
        NOW.parse().unwrap()
    }

    /// A storage (ready or not), its Secret (the fake holds data as text), a retention policy, a password, a configuration
    /// of namespace `apps`'s manifests, and one new session of it.
    fn cluster(storage_phase: &str, paused: bool) -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "BackupStorage",
            "metadata": {"name": "minio", "namespace": "ops"},
            "spec": {"storage": {"provider": "s3", "s3": {"bucket": "backups",
                "endpoint": "http://minio.ops:9000", "secretName": "minio-keys"}},
                "usagePolicy": {"allowedNamespaces": {"from": "All"}}},
            "status": {"phase": storage_phase,
                "conditions": [{"type": "StorageReachable", "status": "False",
                    "reason": "WriteFailed", "message": "write failed: access denied"}]}}));
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "minio-keys", "namespace": "ops"},
            "data": {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret-key"}}));
        cluster.insert(
            &json!({"apiVersion": API_VERSION, "kind": "RetentionPolicy",
            "metadata": {"name": "keep-3", "namespace": "ops"},
            "spec": {"successfulSnapshots": {"last": 3}}}),
        );
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "password", "namespace": "apps"},
            "data": {"password": "repo-password"}}));
        cluster.insert(
            &json!({"apiVersion": API_VERSION, "kind": "BackupConfiguration",
            "metadata": {"name": "web", "namespace": "apps", "uid": "config-uid"},
            "spec": {"target": {"kind": "Namespace", "name": "apps"}, "paused": paused,
                "backends": [{"name": "main", "storageRef": {"name": "minio", "namespace": "ops"},
                    "retentionPolicy": {"name": "keep-3", "namespace": "ops"}}],
                "sessions": [{"name": "daily", "scheduler": {"schedule": "* * * * *"},
                    "timeout": "30m",
                    "repositories": [{"name": "apps-repo", "backend": "main", "directory": "apps",
                        "encryptionSecret": {"name": "password"}}],
                    "tasks": [{"name": "manifest-backup"}]}]}}),
        );
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "BackupSession",
            "metadata": {"name": "web-daily-1", "namespace": "apps",
                "creationTimestamp": "2026-12-01T09:59:00Z"},
            "spec": {"invoker": {"name": "web"}, "session": "daily"}}));
        cluster
    }

    async fn step(cluster: &FakeCluster) -> SessionStep {
        let settings = OperatorSettings {
            image: "localhost/kbackup:test".into(),
            placement: JobPlacement {
                node_selector: [("kubernetes.io/hostname".to_owned(), "real".to_owned())].into(),
                tolerations: vec!["kbackup.io/real-node".into()],
            },
            http: None,
        };
        reconcile_session(cluster, "apps", "web-daily-1", &settings, now())
            .await
            .unwrap()
    }

    fn session_status(cluster: &FakeCluster) -> Value {
        cluster
            .object("BackupSession", Some("apps"), "web-daily-1")
            .unwrap()["status"]
            .clone()
    }

    fn finish_job(cluster: &FakeCluster, report: &SessionReport) {
        crate::sessions::job_end::end_job(
            cluster,
            "apps",
            "web-daily-1-apps-repo",
            SESSION_CONTAINER,
            &report.message(),
        );
    }

    #[tokio::test]
    async fn a_session_runs_its_job_and_ends_with_its_snapshot_written() {
        let cluster = cluster("Ready", false);
        cluster.serve("", "v1", "Pod", true);
        cluster.serve(backup_api::GROUP, backup_api::VERSION, "Snapshot", true);
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "Snapshot",
            "metadata": {"name": "web-daily-0-apps-repo", "namespace": "apps",
                "labels": {REPOSITORY: "apps-repo"}},
            "spec": {"snapshotId": "0123456789abcdef", "repository": "apps-repo",
                "session": "daily", "backupSession": "web-daily-0"}}));

        let started = step(&cluster).await;
        assert_eq!(started.requeue, Requeue::After(RUNNING_CHECK));
        let status = session_status(&cluster);
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["deadline"], "2026-12-01T10:30:00Z");
        let job = cluster
            .object("Job", Some("apps"), "web-daily-1-apps-repo")
            .unwrap();
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "real");
        assert_eq!(pod["tolerations"][0]["key"], "kbackup.io/real-node");
        let args = &pod["containers"][0]["args"];
        let plan: super::super::plan::SessionPlan =
            serde_json::from_str(args[2].as_str().unwrap()).unwrap();
        assert_eq!(plan.repository_url, "s3://backups/apps");
        assert_eq!(plan.retention.keep_last, 3);
        assert!(
            !args.to_string().contains("secret-key"),
            "no credential in the Job"
        );
        let secret = cluster
            .object("Secret", Some("apps"), "web-daily-1-apps-repo")
            .unwrap();
        assert_eq!(secret["stringData"]["KBACKUP_PASSWORD"], "repo-password");
        assert_eq!(secret["stringData"]["AWS_SECRET_ACCESS_KEY"], "secret-key");
        assert!(
            cluster
                .object("Repository", Some("apps"), "apps-repo")
                .is_some()
        );
        assert_eq!(
            cluster
                .object("Snapshot", Some("apps"), "web-daily-1-apps-repo")
                .unwrap()["metadata"]["ownerReferences"][0]["kind"],
            "Repository"
        );

        // Again, as after a restart: nothing made twice, still running.
        let again = step(&cluster).await;
        assert_eq!(again.requeue, Requeue::After(RUNNING_CHECK));
        assert_eq!(cluster.jobs("apps").len(), 1);

        let report = SessionReport {
            phase: Some(SnapshotPhase::Succeeded),
            snapshot_id: Some("fedcba9876543210".repeat(4)),
            snapshot_time: Some("2026-12-01T10:00:30Z".into()),
            total_components: 1,
            size: Some("1.0 KiB".into()),
            retention: Some(RetentionOutcome {
                removed: vec!["01234567".into()],
                ..RetentionOutcome::default()
            }),
            snapshot_count: Some(3),
            integrity: Some(true),
            repository_size: Some(3 << 20),
            ..SessionReport::default()
        };
        finish_job(&cluster, &report);
        let ended = step(&cluster).await;
        let ended = ended.ended.expect("the session ended");
        assert_eq!(ended.phase, BackupSessionPhase::Succeeded);
        assert_eq!(ended.snapshot_counts, vec![("apps-repo".to_owned(), 3)]);
        let status = session_status(&cluster);
        assert_eq!(status["phase"], "Succeeded");
        assert_eq!(status["duration"], "1m");
        assert_eq!(status["retentionPolicies"][0]["removed"], 1);
        let snapshot = cluster
            .object("Snapshot", Some("apps"), "web-daily-1-apps-repo")
            .unwrap();
        assert_eq!(
            snapshot["spec"]["snapshotId"],
            report.snapshot_id.clone().unwrap()
        );
        assert_eq!(snapshot["status"]["phase"], "Succeeded");
        assert!(
            cluster
                .object("Snapshot", Some("apps"), "web-daily-0-apps-repo")
                .is_none(),
            "the Snapshot of the snapshot retention removed is gone"
        );
        assert!(
            cluster
                .object("Secret", Some("apps"), "web-daily-1-apps-repo")
                .is_none()
        );
        let repository = cluster
            .object("Repository", Some("apps"), "apps-repo")
            .unwrap();
        assert_eq!(repository["status"]["snapshotCount"], 3);
        assert_eq!(repository["status"]["integrity"], true);
        assert_eq!(repository["status"]["size"], "3.0 MiB");
        assert_eq!(repository["status"]["sizeBytes"], 3 << 20);
        let recent = &repository["status"]["recentSnapshots"];
        assert_eq!(recent[0]["name"], "web-daily-1-apps-repo", "{recent}");
        assert_eq!(recent[0]["snapshotTime"], "2026-12-01T10:00:30Z");
        assert_eq!(
            step(&cluster).await.ended,
            None,
            "an ended session stays ended"
        );
    }

    /// The storage of [`cluster`] made a local one: the claim `backups` of `namespace`.
    fn local_storage(cluster: &FakeCluster, namespace: &str) {
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "BackupStorage",
            "metadata": {"name": "minio", "namespace": namespace},
            "spec": {"storage": {"provider": "local",
                "local": {"claimName": "backups", "subPath": "/team/"}},
                "usagePolicy": {"allowedNamespaces": {"from": "All"}}},
            "status": {"phase": "Ready"}}));
        let mut configuration = cluster
            .object("BackupConfiguration", Some("apps"), "web")
            .unwrap();
        configuration["spec"]["backends"][0]["storageRef"]["namespace"] = json!(namespace);
        cluster.insert(&configuration);
    }

    #[tokio::test]
    async fn a_session_in_a_claim_mounts_it_in_its_job_and_only_in_its_own_namespace() {
        let own = cluster("Ready", false);
        local_storage(&own, "apps");
        step(&own).await;
        let job = own
            .object("Job", Some("apps"), "web-daily-1-apps-repo")
            .expect("the Job");
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "backups"
        );
        let container = &pod["containers"][0];
        assert_eq!(
            container["volumeMounts"][0]["mountPath"],
            "/kbackup/storage"
        );
        let plan: super::super::plan::SessionPlan =
            serde_json::from_str(container["args"][2].as_str().unwrap()).unwrap();
        assert_eq!(plan.repository_url, "file:///kbackup/storage/team/apps");
        assert_eq!(plan.storage_claim.as_deref(), Some("backups"));
        assert_eq!(
            pod["securityContext"]["runAsUser"], 0,
            "as the movers write"
        );
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"][0],
            "ALL"
        );

        let elsewhere = cluster("Ready", false);
        local_storage(&elsewhere, "ops");
        step(&elsewhere).await;
        let status = session_status(&elsewhere);
        assert_eq!(status["phase"], "Failed", "{status}");
        assert_eq!(status["conditions"][0]["reason"], "ClaimOutsideNamespace");
        assert!(elsewhere.jobs("apps").is_empty(), "no Job");
    }

    #[tokio::test]
    async fn a_session_fails_with_the_reason_when_its_storage_is_not_ready() {
        let cluster = cluster("NotReady", false);
        let step = step(&cluster).await;
        assert_eq!(step.ended.unwrap().phase, BackupSessionPhase::Failed);
        let condition = &session_status(&cluster)["conditions"][0];
        assert_eq!(condition["reason"], "StorageNotReady");
        assert!(
            condition["message"]
                .as_str()
                .unwrap()
                .contains("access denied"),
            "{condition}"
        );
        assert!(cluster.jobs("apps").is_empty(), "nothing started");
    }

    #[tokio::test]
    async fn tasks_the_operator_cannot_run_together_or_without_their_params_fail_the_session_before_any_job()
     {
        let cases = [
            (
                json!([{"name": "victoria-metrics-backup"}]),
                "TaskParamMissing",
                "apps",
            ),
            (
                json!([{"name": "stackgraph-backup"}, {"name": "manifest-backup"}]),
                "TasksMixed",
                "apps",
            ),
            (
                json!([{"name": "stackgraph-backup"}]),
                "TargetOutsideNamespace",
                "sts",
            ),
        ];
        for (tasks, reason, target) in cases {
            let cluster = cluster("Ready", false);
            let mut configuration = cluster
                .object("BackupConfiguration", Some("apps"), "web")
                .unwrap();
            configuration["spec"]["sessions"][0]["tasks"] = tasks;
            configuration["spec"]["target"] = json!({"kind": "Namespace", "name": target});
            cluster.insert(&configuration);
            step(&cluster).await;
            let status = session_status(&cluster);
            assert_eq!(status["phase"], "Failed", "{status}");
            assert_eq!(status["conditions"][0]["reason"], reason, "{status}");
            assert!(cluster.jobs("apps").is_empty(), "nothing started");
        }
    }

    #[tokio::test]
    async fn a_failed_session_is_tried_again_after_its_delay_until_no_retry_is_left() {
        let cluster = cluster("NotReady", false);
        let mut configuration = cluster
            .object("BackupConfiguration", Some("apps"), "web")
            .unwrap();
        configuration["spec"]["sessions"][0]["retryConfig"] = json!({"maxRetry": 1, "delay": "5m"});
        cluster.insert(&configuration);
        step(&cluster).await;
        let status = session_status(&cluster);
        assert_eq!(status["phase"], "Failed");
        assert_eq!(
            status["conditions"][1]["type"], "RetryScheduled",
            "{status}"
        );
        let retry = cluster
            .object("BackupSession", Some("apps"), "web-daily-1-retry-1")
            .expect("the retry");
        assert_eq!(retry["spec"]["retryLeft"], 0);
        assert_eq!(
            retry["metadata"]["annotations"]["kbackup.io/not-before"],
            "2026-12-01T10:05:00Z"
        );
        let settings = OperatorSettings::default();
        let waiting = reconcile_session(&cluster, "apps", "web-daily-1-retry-1", &settings, now())
            .await
            .unwrap();
        assert_eq!(
            waiting.requeue,
            Requeue::After(Duration::from_secs(300)),
            "not before its delay"
        );
        let later = now() + chrono::Duration::minutes(6);
        let failed = reconcile_session(&cluster, "apps", "web-daily-1-retry-1", &settings, later)
            .await
            .unwrap();
        assert_eq!(failed.ended.unwrap().phase, BackupSessionPhase::Failed);
        let sessions: Vec<String> = cluster
            .objects()
            .iter()
            .filter(|o| o["kind"] == "BackupSession")
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            sessions,
            ["web-daily-1", "web-daily-1-retry-1"],
            "no retry left"
        );
    }

    #[tokio::test]
    async fn a_session_of_a_paused_configuration_is_skipped() {
        let cluster = cluster("Ready", true);
        let step = step(&cluster).await;
        assert_eq!(step.ended.unwrap().phase, BackupSessionPhase::Skipped);
        assert_eq!(
            session_status(&cluster)["conditions"][0]["reason"],
            "ConfigurationPaused"
        );
        assert!(cluster.jobs("apps").is_empty());
    }

    #[tokio::test]
    async fn a_session_started_before_a_crash_goes_on_even_if_paused_since() {
        let cluster = cluster("Ready", false);
        cluster.serve("batch", "v1", "Job", true);
        step(&cluster).await;
        // The operator stopped before writing Running; the configuration was paused since.
        let mut session = cluster
            .object("BackupSession", Some("apps"), "web-daily-1")
            .unwrap();
        session.as_object_mut().unwrap().remove("status");
        cluster.insert(&session);
        let mut configuration = cluster
            .object("BackupConfiguration", Some("apps"), "web")
            .unwrap();
        configuration["spec"]["paused"] = json!(true);
        cluster.insert(&configuration);
        let again = step(&cluster).await;
        assert_eq!(again.ended, None, "not skipped");
        assert_eq!(session_status(&cluster)["phase"], "Running");
        assert_eq!(cluster.jobs("apps").len(), 1, "its one Job, not a second");
    }

    #[tokio::test]
    async fn a_job_that_ends_without_a_report_fails_its_session_saying_why() {
        let cluster = cluster("Ready", false);
        cluster.serve("", "v1", "Pod", true);
        step(&cluster).await;
        let name = "web-daily-1-apps-repo";
        let mut job = cluster.object("Job", Some("apps"), name).unwrap();
        job["status"] = json!({"conditions": [{"type": "Failed", "status": "True",
            "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]});
        cluster.insert(&job);
        let ended = step(&cluster).await.ended.unwrap();
        assert_eq!(ended.phase, BackupSessionPhase::Failed);
        let status = session_status(&cluster);
        let message = status["conditions"][1]["message"].as_str().unwrap();
        assert!(
            message.contains("longer than specified deadline"),
            "{message}"
        );
    }

    /// The configuration's session with hooks of the template `run` (a command in pods
    /// `app=web`), and a running pod of it.
    fn with_hooks(cluster: &FakeCluster, pre: &[&str], post: &[(&str, &str)]) {
        cluster.serve("", "v1", "Pod", true);
        cluster.serve(backup_api::GROUP, backup_api::VERSION, "Snapshot", true);
        cluster.insert(&crate::hooks::plan::tests::template(
            "apps",
            "run",
            json!({"params": [{"name": "CMD"}],
                "action": {"exec": {"command": ["{{ .CMD }}"]}},
                "executor": {"type": "Pod", "pod": {"selector": "app=web"}}}),
        ));
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "apps", "labels": {"app": "web"}},
            "status": {"phase": "Running"}}));
        let hook = |command: &str, policy: &str| {
            json!({"name": command,
            "hookTemplate": {"name": "run"}, "params": {"CMD": command}, "executionPolicy": policy})
        };
        let mut configuration = cluster
            .object("BackupConfiguration", Some("apps"), "web")
            .unwrap();
        configuration["spec"]["sessions"][0]["hooks"] = json!({
            "preBackup": pre.iter().map(|c| hook(c, "Always")).collect::<Vec<_>>(),
            "postBackup": post.iter().map(|(c, p)| hook(c, p)).collect::<Vec<_>>(),
        });
        cluster.insert(&configuration);
    }

    fn execs(cluster: &FakeCluster) -> Vec<String> {
        cluster
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("exec "))
            .collect()
    }

    #[tokio::test]
    async fn a_session_runs_its_pre_hooks_before_its_jobs_and_its_post_hooks_after_them() {
        let cluster = cluster("Ready", false);
        with_hooks(
            &cluster,
            &["flush"],
            &[("thaw", "Always"), ("alarm", "OnFailure")],
        );
        step(&cluster).await;
        assert_eq!(execs(&cluster), ["exec apps/web-0: flush"]);
        let status = session_status(&cluster);
        assert_eq!(
            status["hooks"]["preHooks"],
            json!([{"name": "flush", "phase": "Succeeded"}])
        );
        assert_eq!(cluster.jobs("apps").len(), 1);
        step(&cluster).await;
        assert_eq!(
            execs(&cluster).len(),
            1,
            "a repeated step runs no hook again"
        );
        finish_job(
            &cluster,
            &SessionReport {
                phase: Some(SnapshotPhase::Succeeded),
                snapshot_id: Some("fedcba9876543210".repeat(4)),
                ..SessionReport::default()
            },
        );
        let ended = step(&cluster).await.ended.expect("ended");
        assert_eq!(ended.phase, BackupSessionPhase::Succeeded);
        assert_eq!(
            execs(&cluster),
            ["exec apps/web-0: flush", "exec apps/web-0: thaw"]
        );
        let status = session_status(&cluster);
        assert_eq!(
            status["hooks"],
            json!({"preHooks": [{"name": "flush", "phase": "Succeeded"}],
                "postHooks": [{"name": "thaw", "phase": "Succeeded"}, {"name": "alarm", "phase": "Skipped"}]})
        );
        let types: Vec<&str> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "PreBackupHooksExecutionSucceeded",
                "SessionRunning",
                "SessionSucceeded",
                "PostBackupHooksExecutionSucceeded"
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_pre_hook_backs_up_nothing_and_a_failed_post_hook_fails_the_session() {
        let cluster = cluster("Ready", false);
        with_hooks(&cluster, &["false"], &[("alarm", "OnFailure")]);
        let ended = step(&cluster).await.ended.expect("ended at once");
        assert_eq!(ended.phase, BackupSessionPhase::Failed);
        assert!(cluster.jobs("apps").is_empty(), "no Job");
        assert_eq!(
            execs(&cluster),
            ["exec apps/web-0: false", "exec apps/web-0: alarm"]
        );
        let status = session_status(&cluster);
        assert_eq!(
            status["hooks"]["postHooks"],
            json!([{"name": "alarm", "phase": "Succeeded"}])
        );
        assert!(
            status.to_string().contains("PreBackupHooksFailed"),
            "{status}"
        );

        let cluster = cluster_fresh_with_post("false");
        step(&cluster).await;
        finish_job(
            &cluster,
            &SessionReport {
                phase: Some(SnapshotPhase::Succeeded),
                snapshot_id: Some("fedcba9876543210".repeat(4)),
                ..SessionReport::default()
            },
        );
        let ended = step(&cluster).await.ended.expect("ended");
        assert_eq!(
            ended.phase,
            BackupSessionPhase::Failed,
            "its snapshot stays written"
        );
        assert_eq!(
            cluster
                .object("Snapshot", Some("apps"), "web-daily-1-apps-repo")
                .unwrap()["status"]["phase"],
            "Succeeded"
        );
        let sessions = cluster
            .objects()
            .iter()
            .filter(|o| o["kind"] == "BackupSession")
            .count();
        assert_eq!(sessions, 1, "not tried again for a post hook");
    }

    fn cluster_fresh_with_post(command: &str) -> FakeCluster {
        let cluster = cluster("Ready", false);
        with_hooks(&cluster, &[], &[(command, "Always")]);
        cluster
    }
}
