//! Restoring volume components into an existing workload, as Stash does: an init container
//! of the kbackup image is added to the workload's pod template; in each pod it restores the
//! components meant for that pod (unless this restore session did already: a restart
//! restores nothing), reports, and the init container is removed once every pod asked for
//! has reported.

use super::backup::{VolumeError, run_id};
use super::manifests::{MoverSettings, credential_data, mover_container};
use super::mover::{PodRestore, PodRestoreReport, RESTORE_ROOT, find_report};
use super::pod_type;
use super::target::{VolumeWorkloadKind, WorkloadRef, component_matches};
use crate::selection::{SnapshotSelector, find_snapshot};
use backup_core::cluster::{ApiResourceType, ObjectRef, PodExec, ResourceStore, for_each_page};
use backup_core::{ClusterError, Phase, SnapshotId};
use backup_repository::Repository;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The init container's name.
pub const INIT_CONTAINER: &str = "kbackup-restore";
/// The pod template annotation naming the restore session (it also rolls the pods).
pub const SESSION_ANNOTATION: &str = "kbackup.io/restore-session";

const POLL: Duration = Duration::from_secs(2);

/// What to restore into which workload.
#[derive(Debug, Clone)]
pub struct WorkloadRestoreRequest {
    /// The snapshot: an id prefix or `latest`.
    pub snapshot: String,
    /// Which snapshots it is looked up among.
    pub among: SnapshotSelector,
    /// The workload's namespace.
    pub namespace: String,
    /// The workload (a StatefulSet or a Deployment); its components in the snapshot are
    /// those backed up from a workload of the same kind and name.
    pub target: WorkloadRef,
    /// Only these components (their member: `db-1`; all when empty).
    pub components: Vec<String>,
    /// The image, memory, credentials and timeout of the init container.
    pub mover: MoverSettings,
}

/// One component's outcome (seed 004's `status.components` entry).
#[derive(Debug, Clone)]
pub struct ComponentRestore {
    /// The component.
    pub component: String,
    /// The pod that restored it.
    pub pod: String,
    /// Succeeded or Failed.
    pub phase: Phase,
    /// How long its restore took.
    pub duration: Duration,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// What a restore into a workload did.
#[derive(Debug, Clone)]
pub struct WorkloadRestoreReport {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// The restore session (the marker each restored volume keeps).
    pub session: String,
    /// Each component.
    pub components: Vec<ComponentRestore>,
    /// Succeeded, PartiallyFailed or Failed.
    pub phase: Phase,
    /// How long it took.
    pub duration: Duration,
    /// The end of the init container's log of each pod that failed.
    pub logs: BTreeMap<String, Vec<String>>,
}

fn snapshot_error(text: String) -> VolumeError {
    VolumeError::Snapshot(text)
}

/// Restores volume components into a running workload through an init container.
pub async fn restore_into_workload<C: ResourceStore + PodExec + ?Sized>(
    cluster: &C,
    repository: &Repository,
    request: &WorkloadRestoreRequest,
) -> Result<WorkloadRestoreReport, VolumeError> {
    let started = Instant::now();
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, &request.snapshot, &request.among)
        .map_err(|e| snapshot_error(e.to_string()))?;
    let kind = match request.target.kind {
        VolumeWorkloadKind::StatefulSet => "StatefulSet",
        VolumeWorkloadKind::Deployment => "Deployment",
        _ => {
            return Err(snapshot_error(format!(
                "{}: volumes are restored into a StatefulSet or a Deployment",
                request.target
            )));
        }
    };
    let reference =
        ObjectRef::namespaced("apps/v1", kind, &request.namespace, &request.target.name);
    let workload = cluster
        .get(&reference)
        .await?
        .ok_or_else(|| ClusterError::NotFound(reference.to_string()))?;
    let restores = plan_restores(
        request,
        &workload,
        file.trees.iter().map(|t| t.name.as_str()),
    )?;
    let session = run_id();
    let secret_name = format!("kbackup-restore-{}-{session}", request.target.name);
    let data = credential_data(&request.mover.credentials)?;
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name,
            "namespace": request.namespace,
            "labels": {"app.kubernetes.io/managed-by": "kbackup"},
            // Deleted with the workload, whatever happens to this process.
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind,
                "name": request.target.name, "uid": workload["metadata"]["uid"]}],
        },
        "type": "Opaque",
        "stringData": data,
    });
    cluster.create(&secret).await?;
    let secret_ref = ObjectRef::namespaced("v1", "Secret", &request.namespace, &secret_name);
    let with_init = add_init_container(
        &workload,
        &request.mover,
        &file.snapshot.id.to_string(),
        &session,
        &secret_name,
        &restores,
    );
    let outcome = match cluster.replace(&with_init).await {
        Ok(_) => wait_for_pods(cluster, request, &workload, &session, &restores).await,
        Err(error) => Err(error),
    };
    // Whatever happened: the init container goes, and the Secret.
    let removed = remove_init_container(cluster, &reference).await;
    let deleted = cluster.delete(&secret_ref).await;
    let (reports, logs) = outcome?;
    removed?;
    deleted?;
    let components = restores
        .iter()
        .map(|restore| component_outcome(restore, &reports, &logs))
        .collect::<Vec<_>>();
    let phase = Phase::combine(components.iter().map(|c| c.phase));
    Ok(WorkloadRestoreReport {
        snapshot: file.snapshot.id.clone(),
        session,
        components,
        phase,
        duration: started.elapsed(),
        logs,
    })
}

/// The component → pod and volume mapping: the snapshot's components of a workload of the
/// target's kind and name (in the target's namespace when it has them, else in the one
/// namespace that has them), for volumes the target has, narrowed to those asked for.
fn plan_restores<'a>(
    request: &WorkloadRestoreRequest,
    workload: &Value,
    trees: impl Iterator<Item = &'a str>,
) -> Result<Vec<PodRestore>, VolumeError> {
    let target = &request.target;
    let spec = &workload["spec"];
    let mut volumes: BTreeSet<&str> = spec["template"]["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("persistentVolumeClaim").is_some())
        .filter_map(|v| v["name"].as_str())
        .collect();
    volumes.extend(
        spec["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["metadata"]["name"].as_str()),
    );
    let replicas = spec["replicas"].as_u64().unwrap_or(1);
    let mut candidates: Vec<(&str, &str, &str, &'a str)> = Vec::new();
    for name in trees {
        let parts: Vec<&str> = name.trim_start_matches('/').split('/').collect();
        if let [namespace, kind, workload, member, volume] = parts.as_slice()
            && *kind == target.kind.as_str()
            && *workload == target.name
            && volumes.contains(volume)
            && (request.components.is_empty()
                || request
                    .components
                    .iter()
                    .any(|c| component_matches(name, c)))
        {
            candidates.push((namespace, member, volume, name));
        }
    }
    let namespaces: BTreeSet<&str> = candidates.iter().map(|c| c.0).collect();
    let namespace = match namespaces.len() {
        0 => {
            return Err(snapshot_error(format!(
                "the snapshot has no volume of {target} for the volumes it has ({}){}",
                volumes.iter().copied().collect::<Vec<_>>().join(", "),
                match request.components.is_empty() {
                    true => String::new(),
                    false => format!(" among the components {}", request.components.join(", ")),
                }
            )));
        }
        1 => namespaces.into_iter().next().unwrap_or_default(),
        _ if namespaces.contains(request.namespace.as_str()) => request.namespace.as_str(),
        _ => {
            return Err(snapshot_error(format!(
                "the snapshot has {target} in several namespaces ({}); restore into one of them",
                namespaces.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
    };
    let mut restores = Vec::new();
    for (_, member, volume, component) in candidates.into_iter().filter(|c| c.0 == namespace) {
        let pod = match target.kind {
            VolumeWorkloadKind::StatefulSet => {
                let ordinal = member
                    .strip_prefix(&format!("{}-", target.name))
                    .and_then(|o| o.parse::<u64>().ok());
                if ordinal.is_none_or(|o| o >= replicas) {
                    return Err(snapshot_error(format!(
                        "component {component}: {target} has no pod {member} ({replicas} replicas)"
                    )));
                }
                member.to_owned()
            }
            _ => "*".to_owned(),
        };
        restores.push(PodRestore {
            pod,
            volume: (*volume).to_owned(),
            component: component.to_owned(),
        });
    }
    Ok(restores)
}

/// The workload with the restore's init container first in its pod template, and the
/// session's annotation on the template (which rolls the pods).
fn add_init_container(
    workload: &Value,
    mover: &MoverSettings,
    snapshot: &str,
    session: &str,
    secret: &str,
    restores: &[PodRestore],
) -> Value {
    let mut object = workload.clone();
    let template = &mut object["spec"]["template"];
    template["metadata"]["annotations"][SESSION_ANNOTATION] = json!(session);
    let mut args = vec![
        "mover".to_owned(),
        "restore-pod".into(),
        "--repo".into(),
        mover.repository.clone(),
        "--snapshot".into(),
        snapshot.to_owned(),
        "--session".into(),
        session.to_owned(),
    ];
    for restore in restores {
        args.extend(["--restore".into(), restore.to_string()]);
    }
    let volumes: BTreeSet<&str> = restores.iter().map(|r| r.volume.as_str()).collect();
    let mounts: Vec<Value> = volumes
        .iter()
        .map(|v| json!({"name": v, "mountPath": format!("{RESTORE_ROOT}/{v}")}))
        .collect();
    let mut init = mover_container(mover, INIT_CONTAINER, args, secret, mounts);
    init["env"] = json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "KBACKUP_NO_PROGRESS", "value": "1"},
    ]);
    let spec = &mut template["spec"];
    let mut inits: Vec<Value> = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["name"] != INIT_CONTAINER)
        .collect();
    inits.insert(0, init);
    spec["initContainers"] = Value::Array(inits);
    object
}

/// Takes the init container and the session annotation out of the workload's template
/// (read again: the controller has written its status since).
async fn remove_init_container<C: ResourceStore + ?Sized>(
    cluster: &C,
    reference: &ObjectRef,
) -> Result<(), ClusterError> {
    let Some(mut object) = cluster.get(reference).await? else {
        return Ok(());
    };
    let template = &mut object["spec"]["template"];
    if let Some(annotations) = template["metadata"]["annotations"].as_object_mut() {
        annotations.remove(SESSION_ANNOTATION);
    }
    let spec = &mut template["spec"];
    if let Some(inits) = spec["initContainers"].as_array_mut() {
        inits.retain(|c| c["name"] != INIT_CONTAINER);
        if inits.is_empty()
            && let Some(map) = spec.as_object_mut()
        {
            map.remove("initContainers");
        }
    }
    cluster.replace(&object).await.map(|_| ())
}

/// Finishes the workload restores of a namespace that were cut short: each StatefulSet and
/// Deployment whose pod template still has the restore's init container or session loses
/// them (its pods roll onto their restored data), and the session's Secret goes. Returns
/// `kind/name` of each.
pub async fn finish_workload_restores<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
) -> Result<Vec<String>, ClusterError> {
    let mut finished = Vec::new();
    for (kind, plural) in [
        ("Deployment", "deployments"),
        ("StatefulSet", "statefulsets"),
    ] {
        let resource = ApiResourceType::namespaced("apps", "v1", kind, plural);
        let mut workloads = Vec::new();
        for_each_page(cluster, &resource, Some(namespace), None, 500, |items| {
            workloads.extend(items)
        })
        .await?;
        for workload in workloads {
            let template = &workload["spec"]["template"];
            let session = template["metadata"]["annotations"][SESSION_ANNOTATION]
                .as_str()
                .map(str::to_owned);
            let has_init = template["spec"]["initContainers"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["name"] == INIT_CONTAINER));
            if session.is_none() && !has_init {
                continue;
            }
            let name = workload["metadata"]["name"].as_str().unwrap_or_default();
            let reference = ObjectRef::namespaced("apps/v1", kind, namespace, name);
            remove_init_container(cluster, &reference).await?;
            if let Some(session) = session {
                cluster
                    .delete(&ObjectRef::namespaced(
                        "v1",
                        "Secret",
                        namespace,
                        &format!("kbackup-restore-{name}-{session}"),
                    ))
                    .await?;
            }
            finished.push(format!("{kind}/{name}"));
        }
    }
    Ok(finished)
}

/// The reports of the pods of the session, and the log tails of those whose init container
/// failed; waits until every pod the restores name (one pod for `*`) has reported, or the
/// mover's timeout.
async fn wait_for_pods<C: ResourceStore + PodExec + ?Sized>(
    cluster: &C,
    request: &WorkloadRestoreRequest,
    workload: &Value,
    session: &str,
    restores: &[PodRestore],
) -> Result<(Vec<PodRestoreReport>, BTreeMap<String, Vec<String>>), ClusterError> {
    let selector = workload["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let wanted: BTreeSet<&str> = restores.iter().map(|r| r.pod.as_str()).collect();
    let pods_type = pod_type();
    let started = Instant::now();
    let mut reports: Vec<PodRestoreReport> = Vec::new();
    let mut logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let page = cluster
            .list_page(
                &pods_type,
                Some(&request.namespace),
                Some(&selector),
                500,
                None,
            )
            .await?;
        for pod in &page.items {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            if pod["metadata"]["annotations"][SESSION_ANNOTATION] != session
                || reports.iter().any(|r| r.pod == name)
                || logs.contains_key(name)
            {
                continue;
            }
            let Some(terminated) = pod["status"]["initContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == INIT_CONTAINER)
                .and_then(|s| s["state"]["terminated"].as_object())
            else {
                continue;
            };
            let log = cluster
                .container_log(&request.namespace, name, INIT_CONTAINER)
                .await
                .unwrap_or_else(|e| format!("<log unavailable: {e}>"));
            match (
                terminated.get("exitCode").and_then(Value::as_i64),
                find_report::<PodRestoreReport>(&log),
            ) {
                (Some(0), Some(Ok(report))) if report.pod == name => reports.push(report),
                _ => {
                    let lines: Vec<String> = log.lines().map(str::to_owned).collect();
                    let tail = lines[lines.len().saturating_sub(40)..].to_vec();
                    logs.insert(name.to_owned(), tail);
                }
            }
        }
        let done = |pod: &str| reports.iter().any(|r| r.pod == pod) || logs.contains_key(pod);
        let all = match wanted.contains("*") {
            true => !reports.is_empty() || !logs.is_empty(),
            false => wanted.iter().all(|p| done(p)),
        };
        if all {
            return Ok((reports, logs));
        }
        if started.elapsed() >= request.mover.timeout {
            let missing: Vec<String> = wanted
                .iter()
                .filter(|p| !done(p))
                .map(|p| (*p).to_owned())
                .collect();
            for pod in missing {
                logs.insert(
                    pod,
                    vec![format!(
                        "no report within {}s (is the pod running its new template?)",
                        request.mover.timeout.as_secs()
                    )],
                );
            }
            return Ok((reports, logs));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A component's outcome from the pods' reports.
fn component_outcome(
    restore: &PodRestore,
    reports: &[PodRestoreReport],
    logs: &BTreeMap<String, Vec<String>>,
) -> ComponentRestore {
    let found = reports.iter().find_map(|r| {
        let written = r.restored.iter().find(|w| w.component == restore.component);
        let already = r.already.contains(&restore.component);
        (written.is_some() || already).then(|| (r.pod.clone(), written.cloned()))
    });
    match found {
        Some((pod, written)) => {
            let written = written.unwrap_or_default();
            ComponentRestore {
                component: restore.component.clone(),
                pod,
                phase: match written.warning_count {
                    0 => Phase::Succeeded,
                    _ => Phase::PartiallyFailed,
                },
                duration: Duration::from_millis(written.duration_ms),
                files: written.files,
                bytes: written.bytes,
                error: written.warnings.first().map(|w| {
                    format!(
                        "{} entries not restored as they were (first: {w})",
                        written.warning_count
                    )
                }),
            }
        }
        None => ComponentRestore {
            component: restore.component.clone(),
            pod: restore.pod.clone(),
            phase: Phase::Failed,
            duration: Duration::ZERO,
            files: 0,
            bytes: 0,
            error: Some(
                logs.get(&restore.pod)
                    .or_else(|| logs.values().next())
                    .and_then(|l| l.last().cloned())
                    .unwrap_or_else(|| "its pod did not report".into()),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::manifests::MoverSettings;

    fn request(components: &[&str]) -> WorkloadRestoreRequest {
        WorkloadRestoreRequest {
            snapshot: "latest".into(),
            among: SnapshotSelector::default(),
            namespace: "new".into(),
            target: WorkloadRef::parse("sts/db").unwrap(),
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            mover: MoverSettings {
                image: "kbackup:1".into(),
                memory: "256Mi".into(),
                cpu: "100m".into(),
                concurrency: 1,
                start_timeout: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                repository: "s3://b/r".into(),
                credentials: BTreeMap::new(),
                tolerations: vec![],
                node_selector: BTreeMap::new(),
                storage_claim: None,
                verify: false,
            },
        }
    }

    fn db() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "new", "uid": "u1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                    "initContainers": [{"name": "setup"}],
                    "containers": [{"name": "main"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}})
    }

    const TREES: [&str; 4] = [
        "/old/statefulset/db/db-0/data",
        "/old/statefulset/db/db-1/data",
        "/old/statefulset/db/db-1/logs",
        "/old/deployment/web/web-data/files",
    ];

    #[test]
    fn each_pod_gets_its_own_components_for_the_volumes_the_target_has() {
        let all = plan_restores(&request(&[]), &db(), TREES.into_iter()).unwrap();
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "db-0:data=/old/statefulset/db/db-0/data",
                "db-1:data=/old/statefulset/db/db-1/data"
            ]
        );
        let one = plan_restores(&request(&["db-1"]), &db(), TREES.into_iter()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].pod, "db-1");
        let none = plan_restores(&request(&["db-7"]), &db(), TREES.into_iter());
        assert!(none.is_err());
        let mut small = db();
        small["spec"]["replicas"] = json!(1);
        let error = plan_restores(&request(&["db-1"]), &small, TREES.into_iter()).unwrap_err();
        assert!(error.to_string().contains("has no pod db-1"), "{error}");
    }

    #[tokio::test]
    async fn a_restore_cut_short_is_finished_and_others_are_left_alone() {
        let cluster = backup_core::testing::FakeCluster::new();
        cluster.serve("apps", "v1", "StatefulSet", true);
        cluster.serve("apps", "v1", "Deployment", true);
        let restores = plan_restores(&request(&["db-1"]), &db(), TREES.into_iter()).unwrap();
        cluster.insert(&add_init_container(
            &db(),
            &request(&[]).mover,
            "abc",
            "s1",
            "sec",
            &restores,
        ));
        let mut other = db();
        other["metadata"]["name"] = json!("other");
        cluster.insert(&other);
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kbackup-restore-db-s1", "namespace": "new"}}));
        let finished = finish_workload_restores(&cluster, "new").await.unwrap();
        assert_eq!(finished, ["StatefulSet/db"]);
        let db = cluster.object("StatefulSet", Some("new"), "db").unwrap();
        let inits = &db["spec"]["template"]["spec"]["initContainers"];
        assert_eq!(
            inits.as_array().unwrap().len(),
            1,
            "the workload's own stays: {inits}"
        );
        assert!(
            db["spec"]["template"]["metadata"]["annotations"]
                .get(SESSION_ANNOTATION)
                .is_none()
        );
        assert!(
            cluster
                .object("Secret", Some("new"), "kbackup-restore-db-s1")
                .is_none()
        );
        assert!(
            finish_workload_restores(&cluster, "new")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_init_container_goes_first_with_the_volumes_and_the_session() {
        let restores = plan_restores(&request(&["db-1"]), &db(), TREES.into_iter()).unwrap();
        let with = add_init_container(&db(), &request(&[]).mover, "abc", "s1", "sec", &restores);
        let template = &with["spec"]["template"];
        assert_eq!(
            template["metadata"]["annotations"][SESSION_ANNOTATION],
            "s1"
        );
        let inits = template["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(inits.len(), 2);
        assert_eq!(inits[0]["name"], INIT_CONTAINER);
        assert_eq!(inits[1]["name"], "setup");
        assert_eq!(
            inits[0]["volumeMounts"][0]["mountPath"],
            "/kbackup-restore/data"
        );
        let args: Vec<&str> = inits[0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[..2], ["mover", "restore-pod"]);
        assert_eq!(
            args.last(),
            Some(&"db-1:data=/old/statefulset/db/db-1/data")
        );
        assert_eq!(inits[0]["envFrom"][0]["secretRef"]["name"], "sec");
    }
}
