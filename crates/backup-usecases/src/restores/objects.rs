//! The objects the operator makes for a RestoreSession, each under a name that is the same
//! on every run: its Job (`kbackup restore-run`), the Secret of the Job's credentials, and
//! the account the Job restores as (a Role in each namespace it writes).

use super::plan::PlannedRestore;
use crate::sessions::objects::{
    ReportingJob, managed, mount_storage_claim, object_name, owned_by, reporting_job,
};
use crate::sessions::reconcile::JobPlacement;
use crate::volumes::manifests::{NotText, credential_data};
use backup_k8s::rbac::Family;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The label of the RestoreSession on everything made for it.
pub const RESTORE_SESSION: &str = "kbackup.io/restore-session";
/// The container of a restore Job.
pub const RESTORE_CONTAINER: &str = "restore";

/// The name of a restore's Job, Secret and account.
pub fn restore_object_name(restore_session: &str) -> String {
    object_name(&[restore_session, "restore"], 63)
}

fn labels(restore_session: &str) -> BTreeMap<&'static str, String> {
    managed(BTreeMap::from([(
        RESTORE_SESSION,
        restore_session.to_owned(),
    )]))
}

/// The Secret of the Job's environment (the object store's variables and the password),
/// owned by the RestoreSession `owner_uid`.
pub fn restore_secret(planned: &PlannedRestore, owner_uid: &str) -> Result<Value, NotText> {
    let plan = &planned.plan;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": restore_object_name(&plan.restore_session),
            "namespace": plan.namespace,
            "labels": labels(&plan.restore_session),
            "ownerReferences": [owned_by("RestoreSession", &plan.restore_session, owner_uid)],
        },
        "type": "Opaque",
        "stringData": credential_data(&planned.credentials)?,
    }))
}

/// The Job that runs the plan (`kbackup restore-run`) as the restore's account, handing its
/// report over as its termination message, placed by `placement` with its movers (a claim
/// restored anew is filled wherever they go); `deadline_seconds` stops it and its movers.
pub fn restore_job(
    planned: &PlannedRestore,
    owner_uid: &str,
    deadline_seconds: Option<i64>,
    placement: &JobPlacement,
) -> Value {
    let plan = &planned.plan;
    let name = restore_object_name(&plan.restore_session);
    let plan_text = serde_json::to_string(plan).unwrap_or_default();
    let labels = labels(&plan.restore_session);
    let mut args = vec![
        "restore-run".to_owned(),
        "--plan".into(),
        plan_text,
        "--report-file".into(),
        "/dev/termination-log".into(),
    ];
    for (key, value) in &placement.node_selector {
        args.extend(["--mover-node-selector".into(), format!("{key}={value}")]);
    }
    for key in &placement.tolerations {
        args.extend(["--mover-toleration".into(), key.clone()]);
    }
    if let Some(seconds) = deadline_seconds {
        args.extend(["--mover-timeout".into(), format!("{}s", seconds.max(1))]);
    }
    let mut job = reporting_job(
        ReportingJob {
            name: &name,
            namespace: &plan.namespace,
            labels: &labels,
            owner: owned_by("RestoreSession", &plan.restore_session, owner_uid),
            account: &name,
            container: RESTORE_CONTAINER,
            image: &plan.image,
        },
        json!(args),
        deadline_seconds,
    );
    placement.apply_to(&mut job["spec"]["template"]["spec"]);
    if let Some(claim) = &plan.storage_claim {
        mount_storage_claim(&mut job["spec"]["template"]["spec"], claim);
    }
    job
}

/// The account the Job restores as: its ServiceAccount in the session's namespace, and in
/// each namespace it writes (the session's, and `restoreNamespace`) a Role restoring
/// manifests and volumes bound to it. What is in the session's namespace is owned by the
/// RestoreSession; a Role elsewhere is labelled with it and deleted when the restore ends.
pub fn restore_account(planned: &PlannedRestore, owner_uid: &str) -> Vec<Value> {
    let plan = &planned.plan;
    let name = restore_object_name(&plan.restore_session);
    let rules: Vec<Value> = [Family::ClusterRestore, Family::Volumes]
        .iter()
        .flat_map(|f| f.rules())
        .map(|r| json!({"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs}))
        .collect();
    let metadata = |namespace: &str| {
        let mut metadata = json!({
            "name": name,
            "namespace": namespace,
            "labels": labels(&plan.restore_session),
        });
        if namespace == plan.namespace {
            metadata["ownerReferences"] =
                json!([owned_by("RestoreSession", &plan.restore_session, owner_uid)]);
        }
        metadata
    };
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(&plan.namespace)}),
    ];
    let mut namespaces = vec![plan.namespace.clone()];
    let destination = plan.destination();
    if destination != plan.namespace {
        namespaces.push(destination);
    }
    for namespace in &namespaces {
        objects.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": metadata(namespace), "rules": rules}),
        );
        objects.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": metadata(namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": plan.namespace}]}),
        );
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restores::plan::sample_plan;
    use backup_core::cluster::SecretValue;

    fn planned(restore_namespace: Option<&str>) -> PlannedRestore {
        PlannedRestore {
            plan: sample_plan(restore_namespace),
            credentials: BTreeMap::from([(
                "KBACKUP_PASSWORD".to_owned(),
                SecretValue::new(b"secret".to_vec()),
            )]),
        }
    }

    #[test]
    fn the_job_runs_the_plan_as_the_restore_account_with_the_credentials_apart() {
        let placement = JobPlacement {
            node_selector: [("kubernetes.io/hostname".to_owned(), "real".to_owned())].into(),
            tolerations: vec!["kbackup.io/real-node".into()],
        };
        let job = restore_job(&planned(None), "uid-1", Some(90), &placement);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "back-restore");
        assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "real");
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 90);
        let args = pod["containers"][0]["args"].to_string();
        assert!(
            args.contains("restore-run") && !args.contains("secret"),
            "{args}"
        );
        for movers in [
            r#""--mover-node-selector","kubernetes.io/hostname=real""#,
            r#""--mover-toleration","kbackup.io/real-node""#,
            r#""--mover-timeout","90s""#,
        ] {
            assert!(args.contains(movers), "{args}");
        }
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let secret = restore_secret(&planned(None), "uid-1").unwrap();
        assert_eq!(secret["stringData"]["KBACKUP_PASSWORD"], "secret");
    }

    #[test]
    fn a_restore_into_another_namespace_is_granted_there_too() {
        let kinds = |objects: &[Value]| -> Vec<String> {
            objects
                .iter()
                .map(|o| {
                    format!(
                        "{} {}",
                        o["kind"].as_str().unwrap(),
                        o["metadata"]["namespace"].as_str().unwrap()
                    )
                })
                .collect()
        };
        let same = restore_account(&planned(None), "uid");
        assert_eq!(
            kinds(&same),
            ["ServiceAccount apps", "Role apps", "RoleBinding apps"]
        );
        let elsewhere = restore_account(&planned(Some("copy")), "uid");
        assert_eq!(elsewhere.len(), 5, "{:?}", kinds(&elsewhere));
        let binding = &elsewhere[4];
        assert_eq!(binding["metadata"]["namespace"], "copy");
        assert_eq!(binding["subjects"][0]["namespace"], "apps");
        assert!(
            binding["metadata"]["ownerReferences"].is_null(),
            "no owner across namespaces"
        );
    }
}
