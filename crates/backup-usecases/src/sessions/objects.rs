//! The objects the operator makes for configurations and sessions: names that stay within
//! Kubernetes' limits and are the same on every run (so a restarted operator finds what it
//! made instead of making it twice), labels, owner references, and each manifest.

use super::plan::{PlannedRepository, SessionPlan};
use crate::storage_resource::CLAIM_MOUNT;
use crate::volumes::manifests::{NotText, credential_data};
use backup_api::{API_VERSION, BackupConfiguration, BackupSession, SessionConfig, TaskName};
use backup_k8s::rbac::Family;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The label of the configuration on everything made for it.
pub const CONFIGURATION: &str = "kbackup.io/configuration";
/// The label of the configuration's session (its name in the configuration).
pub const SESSION: &str = "kbackup.io/session";
/// The label of the BackupSession on everything made for it.
pub const BACKUP_SESSION: &str = "kbackup.io/backup-session";
/// The label of the Repository object.
pub const REPOSITORY: &str = "kbackup.io/repository";
/// The container of a session Job.
pub const SESSION_CONTAINER: &str = "backup";
/// The user the kbackup image runs as.
const USER_ID: u64 = 65532;

/// `parts` joined by `-`, at most `max` characters: a longer name is cut and ends with a
/// hash of the whole, so two long names stay apart.
pub fn object_name(parts: &[&str], max: usize) -> String {
    let whole = parts.join("-");
    if whole.len() <= max {
        return whole;
    }
    let hash = format!("{:08x}", fnv1a(whole.as_bytes()) as u32);
    let keep = super::report::boundary_at_most(&whole, max - hash.len() - 1);
    format!("{}-{hash}", whole[..keep].trim_end_matches('-'))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The name of a session's Job, Secret and Snapshot in a repository.
pub fn session_object_name(backup_session: &str, repository: &str) -> String {
    object_name(&[backup_session, repository], 63)
}

/// The CronJob of a configuration's session (CronJob names stop at 52 characters).
pub fn cron_job_name(configuration: &str, session: &str) -> String {
    object_name(&[configuration, session], 52)
}

/// The ServiceAccount (and Role) a configuration's CronJobs or session Jobs run as.
pub fn account_name(configuration: &str, purpose: &str) -> String {
    object_name(&[configuration, purpose], 63)
}

/// An owner reference to `owner` (a kbackup.io object as read), as its controller.
pub fn owned_by(kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": API_VERSION, "kind": kind, "name": name, "uid": uid, "controller": true})
}

pub(crate) fn managed(
    mut labels: BTreeMap<&'static str, String>,
) -> BTreeMap<&'static str, String> {
    labels.insert("app.kubernetes.io/managed-by", "kbackup-operator".into());
    labels.insert("app.kubernetes.io/part-of", "kbackup".into());
    labels
}

fn session_labels(plan: &SessionPlan) -> BTreeMap<&'static str, String> {
    managed(BTreeMap::from([
        (CONFIGURATION, plan.configuration.clone()),
        (SESSION, plan.session.clone()),
        (BACKUP_SESSION, plan.backup_session.clone()),
        (REPOSITORY, plan.repository.clone()),
    ]))
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The Secret of a session Job's environment: the object store's variables and the password;
/// refused when one is not text (a Secret's `stringData` holds text, and a credential
/// changed on the way would open nothing).
pub fn session_secret(planned: &PlannedRepository, owner: &Value) -> Result<Value, NotText> {
    let plan = &planned.plan;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": session_object_name(&plan.backup_session, &plan.repository),
            "namespace": plan.namespace,
            "labels": session_labels(plan),
            "ownerReferences": [owned_by("BackupSession", &plan.backup_session, &uid(owner))],
        },
        "type": "Opaque",
        "stringData": credential_data(&planned.credentials)?,
    }))
}

/// The Job that runs `plan` (`kbackup session-run`) as the configuration's backup account,
/// handing its report over as its termination message; `deadline_seconds` stops it.
pub fn session_job(plan: &SessionPlan, owner: &Value, deadline_seconds: Option<i64>) -> Value {
    let name = session_object_name(&plan.backup_session, &plan.repository);
    let plan_text = serde_json::to_string(plan).unwrap_or_default();
    let mut job = reporting_job(
        ReportingJob {
            name: &name,
            namespace: &plan.namespace,
            labels: &session_labels(plan),
            owner: owned_by("BackupSession", &plan.backup_session, &uid(owner)),
            account: &account_name(&plan.configuration, "backup"),
            container: SESSION_CONTAINER,
            image: &plan.image,
        },
        json!([
            "session-run",
            "--plan",
            plan_text,
            "--report-file",
            "/dev/termination-log"
        ]),
        deadline_seconds,
    );
    if let Some(claim) = &plan.storage_claim {
        mount_storage_claim(&mut job["spec"]["template"]["spec"], claim);
    }
    job
}

/// Who a [`reporting_job`] is: its name (also its Secret's), labels, owner, account, and its
/// container's name and image.
pub(crate) struct ReportingJob<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<&'static str, String>,
    pub owner: Value,
    pub account: &'a str,
    pub container: &'a str,
    pub image: &'a str,
}

/// A Job of the kbackup image run once with `args`, its credentials from the Secret of its
/// own name (none in its spec), its report handed over as its container's termination
/// message; `deadline_seconds` stops it.
pub(crate) fn reporting_job(
    job: ReportingJob<'_>,
    args: Value,
    deadline_seconds: Option<i64>,
) -> Value {
    let mut manifest = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job.name,
            "namespace": job.namespace,
            "labels": job.labels,
            "ownerReferences": [job.owner],
        },
        "spec": {
            "backoffLimit": 0,
            "template": pod_template(job.labels, job.account, json!({
                "name": job.container,
                "image": job.image,
                "args": args,
                "envFrom": [{"secretRef": {"name": job.name}}],
                "env": [{"name": "KBACKUP_NO_PROGRESS", "value": "1"}],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "resources": {
                    "requests": {"memory": "128Mi", "cpu": "100m"},
                    "limits": {"memory": "512Mi"},
                },
            })),
        },
    });
    if let Some(seconds) = deadline_seconds {
        manifest["spec"]["activeDeadlineSeconds"] = json!(seconds.max(1));
    }
    manifest
}

/// Mounts a local storage's claim at [`CLAIM_MOUNT`] in the pod, whose user becomes root
/// (every capability still dropped): the volume movers write into the claim as root, and
/// what one Job writes the next must be able to delete. Its home is `/tmp` (the image's home
/// belongs to the image's user, which root without capabilities cannot read).
pub(crate) fn mount_storage_claim(pod_spec: &mut Value, claim: &str) {
    pod_spec["securityContext"]["runAsUser"] = json!(0);
    pod_spec["securityContext"]["runAsGroup"] = json!(0);
    pod_spec["securityContext"]["runAsNonRoot"] = json!(false);
    pod_spec["volumes"] =
        json!([{"name": "storage", "persistentVolumeClaim": {"claimName": claim}}]);
    let container = &mut pod_spec["containers"][0];
    container["volumeMounts"] = json!([{"name": "storage", "mountPath": CLAIM_MOUNT}]);
    if let Some(env) = container["env"].as_array_mut() {
        env.push(json!({"name": "HOME", "value": "/tmp"}));
    }
}

/// The Snapshot object of a session in a repository, Pending, owned by the Repository object
/// (a snapshot outlives the session that made it).
pub fn snapshot_object(plan: &SessionPlan, repository: &Value, target: &Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Snapshot",
        "metadata": {
            "name": session_object_name(&plan.backup_session, &plan.repository),
            "namespace": plan.namespace,
            "labels": session_labels(plan),
            "ownerReferences": [owned_by("Repository", &plan.repository, &uid(repository))],
        },
        "spec": {
            "repository": plan.repository,
            "session": plan.session,
            "backupSession": plan.backup_session,
            "appRef": target,
        },
    })
}

/// The Repository object a configuration's session names, as the operator makes it when
/// missing, owned by the configuration.
pub fn repository_object(
    configuration: &BackupConfiguration,
    session: &SessionConfig,
    repository: &str,
) -> Option<Value> {
    let spec = &configuration.spec;
    let info = session.repositories.iter().find(|r| r.name == repository)?;
    let backend = spec.backends.iter().find(|b| b.name == info.backend)?;
    let name = configuration.metadata.name.clone().unwrap_or_default();
    Some(json!({
        "apiVersion": API_VERSION,
        "kind": "Repository",
        "metadata": {
            "name": repository,
            "namespace": configuration.metadata.namespace,
            "labels": managed(BTreeMap::from([(CONFIGURATION, name.clone())])),
            "ownerReferences": [owned_by("BackupConfiguration", &name,
                configuration.metadata.uid.as_deref().unwrap_or_default())],
        },
        "spec": {
            "storageRef": backend.storage_ref,
            "appRef": spec.target,
            "directory": info.directory,
            "encryptionSecret": info.encryption_secret,
        },
    }))
}

/// The CronJob of a configuration's session: at each slot it runs `kbackup trigger` as the
/// configuration's trigger account, which makes a BackupSession; suspended while paused.
pub fn cron_job(
    configuration: &BackupConfiguration,
    session: &SessionConfig,
    image: &str,
) -> Value {
    let name = configuration.metadata.name.clone().unwrap_or_default();
    let namespace = configuration.metadata.namespace.clone().unwrap_or_default();
    let labels = managed(BTreeMap::from([
        (CONFIGURATION, name.clone()),
        (SESSION, session.name.clone()),
    ]));
    let scheduler = &session.scheduler;
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cron_job_name(&name, &session.name),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owned_by("BackupConfiguration", &name,
                configuration.metadata.uid.as_deref().unwrap_or_default())],
        },
        "spec": {
            "schedule": scheduler.schedule,
            "suspend": configuration.spec.paused,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 60,
            "successfulJobsHistoryLimit": scheduler.successful_jobs_history_limit,
            "failedJobsHistoryLimit": scheduler.failed_jobs_history_limit,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 2,
                    "template": pod_template(&labels, &account_name(&name, "trigger"), json!({
                        "name": "trigger",
                        "image": image,
                        "args": ["-n", namespace, "trigger", "backupconfiguration", name,
                                 "--session", session.name],
                        "resources": {
                            "requests": {"memory": "32Mi", "cpu": "10m"},
                            "limits": {"memory": "64Mi"},
                        },
                    })),
                },
            },
        },
    })
}

/// The pod template of the operator's Jobs: `container` (of the kbackup image) run once as
/// `account`, as the image's own user, with no privilege to gain and no capability.
pub(crate) fn pod_template(
    labels: &BTreeMap<&'static str, String>,
    account: &str,
    mut container: Value,
) -> Value {
    container["imagePullPolicy"] = json!("IfNotPresent");
    container["securityContext"] = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
    });
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "serviceAccountName": account,
            "restartPolicy": "Never",
            "enableServiceLinks": false,
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": USER_ID, "runAsGroup": USER_ID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
        },
    })
}

/// The ServiceAccount, Role and RoleBinding of one of a configuration's accounts: `trigger`
/// (make BackupSessions) or `backup` (what its tasks read and run, in its namespace), each
/// the least the account needs, owned by the configuration.
pub fn account(configuration: &BackupConfiguration, purpose: &str) -> Vec<Value> {
    let name = configuration.metadata.name.clone().unwrap_or_default();
    let namespace = configuration.metadata.namespace.clone().unwrap_or_default();
    let families = match purpose {
        "trigger" => vec![Family::Trigger],
        _ => task_families(configuration),
    };
    let rules: Vec<Value> = families
        .iter()
        .flat_map(|f| f.rules())
        .map(|r| json!({"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs}))
        .collect();
    let account = account_name(&name, purpose);
    let metadata = json!({
        "name": account,
        "namespace": namespace,
        "labels": managed(BTreeMap::from([(CONFIGURATION, name.clone())])),
        "ownerReferences": [owned_by("BackupConfiguration", &name,
            configuration.metadata.uid.as_deref().unwrap_or_default())],
    });
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": metadata, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]}),
    ]
}

/// What the tasks of every session of `configuration` need, each family once.
fn task_families(configuration: &BackupConfiguration) -> Vec<Family> {
    let mut families = Vec::new();
    for task in configuration.spec.sessions.iter().flat_map(|s| &s.tasks) {
        let family = match task.name {
            TaskName::ManifestBackup => Family::ClusterBackup,
            TaskName::VolumeBackup => Family::Volumes,
            TaskName::ElasticsearchSnapshot => Family::Elasticsearch,
            TaskName::StackgraphBackup
            | TaskName::SettingsBackup
            | TaskName::VictoriaMetricsBackup => Family::DataStores,
        };
        if !families.contains(&family) {
            families.push(family);
        }
    }
    families
}

/// The BackupSession as JSON (for owner references).
pub fn session_value(session: &BackupSession) -> Value {
    serde_json::to_value(session).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_account_may_do_what_its_tasks_need_and_no_more() {
        let with_tasks = |tasks: serde_json::Value| -> BackupConfiguration {
            serde_json::from_value(
                json!({"apiVersion": API_VERSION, "kind": "BackupConfiguration",
                "metadata": {"name": "web", "namespace": "apps"},
                "spec": {"target": {"kind": "Namespace", "name": "apps"},
                    "backends": [{"name": "main", "storageRef": {"name": "s"},
                        "retentionPolicy": {"name": "r"}}],
                    "sessions": [{"name": "daily", "scheduler": {"schedule": "0 3 * * *"},
                        "repositories": [{"name": "r", "backend": "main", "directory": "d",
                            "encryptionSecret": {"name": "p"}}],
                        "tasks": tasks}]}}),
            )
            .unwrap()
        };
        let resources = |configuration: &BackupConfiguration| -> Vec<String> {
            account(configuration, "backup")[1]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["resources"].as_array().unwrap().clone())
                .map(|r| r.as_str().unwrap().to_owned())
                .collect()
        };
        let stackgraph = resources(&with_tasks(json!([{"name": "stackgraph-backup"}])));
        assert!(stackgraph.contains(&"jobs".to_owned()), "{stackgraph:?}");
        assert!(
            !stackgraph.contains(&"*".to_owned()),
            "no reading of every resource: {stackgraph:?}"
        );
        let manifests = resources(&with_tasks(json!([{"name": "manifest-backup"}])));
        assert!(
            !manifests.contains(&"jobs".to_owned()),
            "no Jobs for manifests: {manifests:?}"
        );
    }

    #[test]
    fn names_stay_within_their_limit_and_apart() {
        assert_eq!(object_name(&["web", "daily"], 52), "web-daily");
        let long = "a".repeat(60);
        let first = object_name(&[&long, "one"], 52);
        let second = object_name(&[&long, "two"], 52);
        assert!(first.len() <= 52 && second.len() <= 52, "{first}");
        assert_ne!(first, second);
        assert_eq!(
            first,
            object_name(&[&long, "one"], 52),
            "the same every run"
        );
    }
}
