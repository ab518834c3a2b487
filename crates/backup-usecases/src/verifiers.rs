//! A BackupVerifier driven one step per call: when due (its schedule, or once when it has
//! none), the repository's newest snapshot that succeeded is restored whole into a scratch
//! namespace by a RestoreSession it owns (the same restore as any other: manifests, volumes
//! filled by movers, every chunk's hash checked as it is read); once that ended, its query
//! hooks run against the restored application there; the outcome and its evidence go on the
//! Snapshot (`verificationStatus`), the scratch namespace and the RestoreSession are deleted,
//! and the next run is set. Every step can be repeated: names are fixed by the run's start.

use crate::hooks::plan::{HookStage, plan_hooks};
use crate::hooks::run::{HookOutcome, HookRunner};
use crate::restores::plan::newest_snapshot;
use crate::restores::reconcile::RESTORED_FROM;
use crate::sessions::objects::{managed, object_name, owned_by};
use crate::sessions::reconcile::{
    OperatorSettings, Requeue, age, condition, create_once, rfc3339, write_status,
};
use backup_api::{
    API_VERSION, BackupVerifier, ConditionStatus, HookPhase, RestorePhase, RestoreSession,
    Verification, VerificationResult, VerificationRun, VerifierPhase,
};
use backup_core::ClusterError;
use backup_core::Schedule;
use backup_core::cluster::{JobControl, ObjectRef, PodExec, ResourceStore};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;

/// The label naming the verifier on its RestoreSessions.
pub const VERIFIER_LABEL: &str = "kbackup.io/verifier";
/// How long a verification's restore may take when the verifier says nothing.
const DEFAULT_TIMEOUT: &str = "1h";
/// How often a running verification is looked at besides its RestoreSession's changes.
const RUNNING_CHECK: Duration = Duration::from_secs(30);
/// A query hook's pause between attempts (the restored application is starting).
const QUERY_RETRY_DELAY: Duration = Duration::from_secs(3);

/// What one step of a verifier did.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierStep {
    /// When to look again.
    pub requeue: Requeue,
    /// A verification ended in this step.
    pub ended: Option<EndedVerification>,
}

/// A verification that ended: for the operator's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedVerification {
    /// The verifier's namespace.
    pub namespace: String,
    /// The verifier.
    pub verifier: String,
    /// Its outcome.
    pub result: VerificationResult,
    /// How long it took.
    pub seconds: f64,
}

fn waiting(requeue: Requeue) -> VerifierStep {
    VerifierStep {
        requeue,
        ended: None,
    }
}

/// Takes the BackupVerifier `namespace/name` one step further.
pub async fn reconcile_verifier<C: ResourceStore + JobControl + PodExec + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    settings: &OperatorSettings,
    now: DateTime<Utc>,
) -> Result<VerifierStep, ClusterError> {
    let reference = ObjectRef::namespaced(API_VERSION, "BackupVerifier", namespace, name);
    let Some(object) = cluster.get(&reference).await? else {
        return Ok(waiting(Requeue::OnChange));
    };
    let Ok(verifier) = serde_json::from_value::<BackupVerifier>(object.clone()) else {
        return Ok(waiting(Requeue::OnChange));
    };
    if verifier.metadata.deletion_timestamp.is_some() {
        return Ok(waiting(Requeue::OnChange));
    }
    let status = verifier.status.clone().unwrap_or_default();
    if let Some(run) = &status.current {
        return follow(cluster, &verifier, object, run, settings, now).await;
    }
    let schedule = match verifier.spec.schedule.as_deref().map(Schedule::parse) {
        None => None,
        Some(Ok(schedule)) => Some(schedule),
        Some(Err(error)) => {
            let status = json!({
                "phase": VerifierPhase::Invalid,
                "conditions": [condition("ValidationPassed", ConditionStatus::False,
                    "InvalidSchedule", error.to_string(), now)],
            });
            write_status(cluster, "BackupVerifier", object, status).await?;
            return Ok(waiting(Requeue::OnChange));
        }
    };
    let next = status
        .next_run
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let due = match (&schedule, next) {
        (_, _) if verifier.spec.paused => false,
        (None, _) => status.last_verification.is_none(),
        (Some(_), Some(next)) => next <= now,
        (Some(_), None) => false,
    };
    if !due {
        let next = next.or_else(|| schedule.as_ref().and_then(|s| s.next_after(now)));
        let mut idle = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
        idle["phase"] = json!(VerifierPhase::Idle);
        idle["nextRun"] = json!(next.map(|t| rfc3339(&t)));
        if idle != serde_json::to_value(&status).unwrap_or_default() {
            write_status(cluster, "BackupVerifier", object, idle).await?;
        }
        return Ok(waiting(match next {
            Some(next) if !verifier.spec.paused => {
                Requeue::After((next - now).to_std().unwrap_or_default())
            }
            _ => Requeue::OnChange,
        }));
    }
    start(cluster, &verifier, object, now).await
}

/// A verification begun: the RestoreSession of the newest snapshot that succeeded made.
async fn start<C: ResourceStore + ?Sized>(
    cluster: &C,
    verifier: &BackupVerifier,
    object: Value,
    now: DateTime<Utc>,
) -> Result<VerifierStep, ClusterError> {
    let namespace = verifier.metadata.namespace.clone().unwrap_or_default();
    let name = verifier.metadata.name.clone().unwrap_or_default();
    let mut status = serde_json::to_value(verifier.status.clone().unwrap_or_default())
        .unwrap_or_else(|_| json!({}));
    // The query hooks are checked first: a verifier that cannot run them restores nothing.
    if let Err(error) = plan_hooks(
        cluster,
        &namespace,
        HookStage::Post,
        &verifier.spec.query_hooks,
    )
    .await?
    {
        status["phase"] = json!(VerifierPhase::Invalid);
        status["conditions"] = json!([condition(
            "ValidationPassed",
            ConditionStatus::False,
            error.reason,
            error.message,
            now
        )]);
        write_status(cluster, "BackupVerifier", object, status).await?;
        return Ok(waiting(Requeue::OnChange));
    }
    let repository = &verifier.spec.repository;
    let snapshot = newest_snapshot(cluster, &namespace, repository, |s| {
        s["status"]["phase"] == "Succeeded"
    })
    .await?;
    let Some(snapshot_name) = snapshot.and_then(|s| s.metadata.name) else {
        status["conditions"] = json!([condition(
            "VerificationStarted",
            ConditionStatus::False,
            "NoSnapshot",
            format!("repository {repository} has no Snapshot that succeeded yet"),
            now
        )]);
        status["phase"] = json!(VerifierPhase::Idle);
        write_status(cluster, "BackupVerifier", object, status).await?;
        return Ok(waiting(Requeue::After(RUNNING_CHECK)));
    };
    let stamp = now.format("%Y%m%d%H%M%S").to_string();
    let run = VerificationRun {
        snapshot: snapshot_name,
        restore_session: object_name(&[&name, &stamp], 63),
        namespace: object_name(&[&namespace, &name, &stamp], 63),
        started: rfc3339(&now),
    };
    let uid = verifier.metadata.uid.clone().unwrap_or_default();
    let restore = json!({
        "apiVersion": API_VERSION,
        "kind": "RestoreSession",
        "metadata": {
            "name": run.restore_session,
            "namespace": namespace,
            "labels": managed([(VERIFIER_LABEL, name.clone())].into()),
            "ownerReferences": [owned_by("BackupVerifier", &name, &uid)],
        },
        "spec": {
            "target": {"kind": "Namespace", "name": namespace},
            "dataSource": {"repository": repository, "snapshot": run.snapshot},
            "timeout": verifier.spec.timeout.as_deref().unwrap_or(DEFAULT_TIMEOUT),
            "manifestOptions": {"restoreNamespace": run.namespace},
            "verify": true,
        },
    });
    create_once(cluster, &restore).await?;
    status["phase"] = json!(VerifierPhase::Verifying);
    status["current"] = json!(run);
    status["conditions"] = json!([condition(
        "VerificationStarted",
        ConditionStatus::True,
        "RestoreSessionCreated",
        format!(
            "Snapshot {} restored into namespace {} by RestoreSession {}",
            run.snapshot, run.namespace, run.restore_session
        ),
        now
    )]);
    write_status(cluster, "BackupVerifier", object, status).await?;
    Ok(waiting(Requeue::After(RUNNING_CHECK)))
}

/// A verification under way: once its restore ended, the query hooks, the verdict on the
/// Snapshot, the scratch namespace deleted.
async fn follow<C: ResourceStore + JobControl + PodExec + ?Sized>(
    cluster: &C,
    verifier: &BackupVerifier,
    object: Value,
    run: &VerificationRun,
    settings: &OperatorSettings,
    mut now: DateTime<Utc>,
) -> Result<VerifierStep, ClusterError> {
    let namespace = verifier.metadata.namespace.clone().unwrap_or_default();
    let name = verifier.metadata.name.clone().unwrap_or_default();
    let reference = ObjectRef::namespaced(
        API_VERSION,
        "RestoreSession",
        &namespace,
        &run.restore_session,
    );
    let restore = cluster
        .get(&reference)
        .await?
        .and_then(|o| serde_json::from_value::<RestoreSession>(o).ok());
    let mut evidence = Vec::new();
    let restored = match &restore {
        None => {
            evidence.push(format!(
                "RestoreSession {} was deleted before it ended",
                run.restore_session
            ));
            false
        }
        Some(restore) => {
            let status = restore.status.clone().unwrap_or_default();
            match status.phase {
                Some(
                    RestorePhase::Succeeded
                    | RestorePhase::Failed
                    | RestorePhase::Invalid
                    | RestorePhase::Unknown,
                ) => {}
                _ => return Ok(waiting(Requeue::After(RUNNING_CHECK))),
            }
            evidence.push(format!(
                "restore of Snapshot {} into {}: {:?} in {} (restored volumes read back and compared with the snapshot)",
                run.snapshot,
                run.namespace,
                status.phase.unwrap_or(RestorePhase::Unknown),
                status.duration.as_deref().unwrap_or("?"),
            ));
            for (component, outcome) in &status.components {
                evidence.push(match &outcome.error {
                    Some(error) => format!("{component}: {} ({error})", outcome.phase),
                    None => format!("{component}: {}", outcome.phase),
                });
            }
            if status.components.is_empty() {
                let why = status
                    .conditions
                    .iter()
                    .rev()
                    .find(|c| c.status == ConditionStatus::False || c.type_ == "RestoreFailed");
                evidence.extend(why.map(|c| format!("{}: {}", c.reason, c.message)));
            }
            status.phase == Some(RestorePhase::Succeeded)
        }
    };
    let queried = match restored {
        true => query(cluster, verifier, run, settings, &mut now, &mut evidence).await?,
        false => false,
    };
    let result = match queried {
        true => VerificationResult::Verified,
        false => VerificationResult::VerificationFailed,
    };
    let started = DateTime::parse_from_rfc3339(&run.started)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let verification = Verification {
        snapshot: run.snapshot.clone(),
        result,
        time: rfc3339(&now),
        duration: age(started.timestamp(), now),
        evidence,
    };
    record_on_snapshot(cluster, &namespace, &name, &verification).await?;
    delete_scratch(cluster, &namespace, &run.namespace).await?;
    cluster.delete(&reference).await?;
    let schedule = verifier
        .spec
        .schedule
        .as_deref()
        .and_then(|s| Schedule::parse(s).ok());
    let next = schedule.as_ref().and_then(|s| s.next_after(now));
    let (state, reason) = match result {
        VerificationResult::Verified => (ConditionStatus::True, "SnapshotVerified"),
        VerificationResult::VerificationFailed => (ConditionStatus::False, "SnapshotNotVerified"),
    };
    let message = verification.evidence.join("; ");
    let status = json!({
        "phase": VerifierPhase::Idle,
        "lastVerification": verification,
        "nextRun": next.map(|t| rfc3339(&t)),
        "conditions": [condition("Verified", state, reason, message, now)],
    });
    write_status(cluster, "BackupVerifier", object, status).await?;
    Ok(VerifierStep {
        requeue: match next {
            Some(next) => Requeue::After((next - now).to_std().unwrap_or_default()),
            None => Requeue::OnChange,
        },
        ended: Some(EndedVerification {
            namespace,
            verifier: name,
            result,
            seconds: (now - started).num_milliseconds() as f64 / 1000.0,
        }),
    })
}

/// Deletes the scratch namespace, only if the restore made it (labelled as restored from the
/// verifier's namespace): a namespace of that name made by anyone else is left alone.
async fn delete_scratch<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    scratch: &str,
) -> Result<(), ClusterError> {
    let reference = ObjectRef::cluster_scoped("v1", "Namespace", scratch);
    let Some(object) = cluster.get(&reference).await? else {
        return Ok(());
    };
    if object["metadata"]["labels"][RESTORED_FROM] == namespace {
        cluster.delete(&reference).await?;
    }
    Ok(())
}

/// Runs the query hooks in the scratch namespace; whether each succeeded (a line of
/// evidence each).
async fn query<C: ResourceStore + JobControl + PodExec + ?Sized>(
    cluster: &C,
    verifier: &BackupVerifier,
    run: &VerificationRun,
    settings: &OperatorSettings,
    now: &mut DateTime<Utc>,
    evidence: &mut Vec<String>,
) -> Result<bool, ClusterError> {
    let namespace = verifier.metadata.namespace.clone().unwrap_or_default();
    let hooks = match plan_hooks(
        cluster,
        &namespace,
        HookStage::Post,
        &verifier.spec.query_hooks,
    )
    .await?
    {
        Ok(hooks) => hooks,
        Err(error) => {
            evidence.push(format!("query hooks: {error}"));
            return Ok(false);
        }
    };
    let runner = HookRunner {
        cluster,
        http: settings.http.as_deref(),
        namespace: &run.namespace,
        session: &run.restore_session,
        placement: &settings.placement,
        retry_delay: QUERY_RETRY_DELAY,
    };
    let started = std::time::Instant::now();
    let outcomes = runner.run(HookStage::Post, &hooks, true).await;
    *now += chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    evidence.extend(outcomes.iter().map(describe));
    Ok(outcomes.iter().all(|o| o.phase == HookPhase::Succeeded))
}

fn describe(outcome: &HookOutcome) -> String {
    match &outcome.error {
        Some(error) => format!(
            "query hook {}: {:?} after {} attempt(s): {error}",
            outcome.name, outcome.phase, outcome.attempts
        ),
        None => format!("query hook {}: {:?}", outcome.name, outcome.phase),
    }
}

/// The verdict on the Snapshot's status: `verificationStatus` and the evidence.
async fn record_on_snapshot<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    verifier: &str,
    verification: &Verification,
) -> Result<(), ClusterError> {
    let reference =
        ObjectRef::namespaced(API_VERSION, "Snapshot", namespace, &verification.snapshot);
    let Some(snapshot) = cluster.get(&reference).await? else {
        return Ok(());
    };
    let mut status = snapshot["status"].clone();
    status["verificationStatus"] = json!(verification.result);
    status["verification"] = json!({
        "verifier": verifier,
        "time": verification.time,
        "evidence": verification.evidence,
    });
    write_status(cluster, "Snapshot", snapshot, status).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;

    fn now() -> DateTime<Utc> {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    /// A Repository `apps` with a Snapshot that succeeded and a newer one that failed, the
    /// HookTemplate `check` (a command in pods `app=web`), and the verifier `proof`.
    fn cluster(spec: Value) -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.serve(backup_api::GROUP, backup_api::VERSION, "Snapshot", true);
        cluster.serve("", "v1", "Pod", true);
        for (name, time, phase) in [
            ("web-1-apps", "2026-12-01T08:00:00Z", "Succeeded"),
            ("web-2-apps", "2026-12-01T09:00:00Z", "Failed"),
        ] {
            cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "Snapshot",
                "metadata": {"name": name, "namespace": "apps",
                    "labels": {crate::sessions::objects::REPOSITORY: "apps"}},
                "spec": {"snapshotId": "0123abcd", "repository": "apps", "session": "daily",
                    "backupSession": name},
                "status": {"phase": phase, "snapshotTime": time}}));
        }
        cluster.insert(&crate::hooks::plan::tests::template(
            "apps",
            "check",
            json!({"action": {"exec": {"command": ["test", "-f", "/data/file"]}},
                "executor": {"type": "Pod", "pod": {"selector": "app=web"}}}),
        ));
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "BackupVerifier",
            "metadata": {"name": "proof", "namespace": "apps", "uid": "verifier-uid"},
            "spec": spec}));
        cluster
    }

    async fn step(cluster: &FakeCluster, at: DateTime<Utc>) -> VerifierStep {
        let settings = OperatorSettings::default();
        reconcile_verifier(cluster, "apps", "proof", &settings, at)
            .await
            .unwrap()
    }

    fn status(cluster: &FakeCluster) -> Value {
        cluster
            .object("BackupVerifier", Some("apps"), "proof")
            .unwrap()["status"]
            .clone()
    }

    fn end_restore(cluster: &FakeCluster, name: &str, phase: &str, components: Value) {
        let mut restore = cluster
            .object("RestoreSession", Some("apps"), name)
            .unwrap();
        restore["status"] = json!({"phase": phase, "duration": "12s", "components": components});
        cluster.insert(&restore);
    }

    #[tokio::test]
    async fn a_verification_restores_the_newest_good_snapshot_queries_it_and_records_the_verdict() {
        let cluster = cluster(json!({"repository": "apps", "timeout": "20m",
            "queryHooks": [{"name": "file", "hookTemplate": {"name": "check"}}]}));
        step(&cluster, now()).await;
        let current = status(&cluster)["current"].clone();
        assert_eq!(status(&cluster)["phase"], "Verifying");
        assert_eq!(
            current["snapshot"], "web-1-apps",
            "the newest that succeeded"
        );
        let name = current["restoreSession"].as_str().unwrap().to_owned();
        let scratch = current["namespace"].as_str().unwrap().to_owned();
        assert_eq!(
            (name.as_str(), scratch.as_str()),
            ("proof-20261201100000", "apps-proof-20261201100000")
        );
        let restore = cluster
            .object("RestoreSession", Some("apps"), &name)
            .unwrap();
        assert_eq!(
            restore["spec"]["manifestOptions"]["restoreNamespace"],
            scratch.as_str()
        );
        assert_eq!(restore["spec"]["dataSource"]["snapshot"], "web-1-apps");
        assert_eq!(restore["spec"]["timeout"], "20m");
        assert_eq!(restore["spec"]["verify"], true, "volumes read back");
        assert_eq!(
            restore["metadata"]["ownerReferences"][0]["kind"],
            "BackupVerifier"
        );

        // Not ended: it waits, and makes nothing twice.
        assert!(step(&cluster, now()).await.ended.is_none());
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": scratch, "labels": {RESTORED_FROM: "apps"}}}));
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": scratch, "labels": {"app": "web"}},
            "status": {"phase": "Running"}}));
        end_restore(
            &cluster,
            &name,
            "Succeeded",
            json!({"manifests": {"phase": "Succeeded"},
            "/apps/deployment/web/web-data/data": {"phase": "Succeeded"}}),
        );
        let ended = step(&cluster, now()).await.ended.expect("ended");
        assert_eq!(ended.result, VerificationResult::Verified);
        assert!(
            cluster
                .calls()
                .contains(&format!("exec {scratch}/web-0: test -f /data/file"))
        );
        let snapshot = cluster
            .object("Snapshot", Some("apps"), "web-1-apps")
            .unwrap();
        assert_eq!(snapshot["status"]["verificationStatus"], "Verified");
        assert_eq!(
            snapshot["status"]["phase"], "Succeeded",
            "the rest of its status kept"
        );
        let evidence = snapshot["status"]["verification"]["evidence"].to_string();
        assert!(
            evidence.contains("web-data/data: Succeeded")
                && evidence.contains("query hook file: Succeeded"),
            "{evidence}"
        );
        assert!(
            cluster
                .object("RestoreSession", Some("apps"), &name)
                .is_none()
        );
        assert!(
            cluster
                .calls()
                .contains(&format!("delete Namespace/{scratch}")),
            "{:?}",
            cluster.calls()
        );
        let done = status(&cluster);
        assert_eq!(
            (
                done["phase"].as_str(),
                done["lastVerification"]["result"].as_str()
            ),
            (Some("Idle"), Some("Verified"))
        );
        assert!(done["current"].is_null());
        // Without a schedule it ran once.
        step(&cluster, now()).await;
        assert_eq!(
            cluster
                .objects()
                .iter()
                .filter(|o| o["kind"] == "RestoreSession")
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn a_restore_that_fails_records_verification_failed_with_its_errors() {
        let cluster = cluster(json!({"repository": "apps"}));
        step(&cluster, now()).await;
        let name = status(&cluster)["current"]["restoreSession"]
            .as_str()
            .unwrap()
            .to_owned();
        end_restore(
            &cluster,
            &name,
            "Failed",
            json!({"manifests": {"phase": "Failed",
            "error": "pack 3f2a: authentication failed"}}),
        );
        let ended = step(&cluster, now()).await.ended.expect("ended");
        assert_eq!(ended.result, VerificationResult::VerificationFailed);
        let snapshot = cluster
            .object("Snapshot", Some("apps"), "web-1-apps")
            .unwrap();
        assert_eq!(
            snapshot["status"]["verificationStatus"],
            "VerificationFailed"
        );
        assert!(
            snapshot["status"]["verification"]["evidence"]
                .to_string()
                .contains("authentication failed")
        );
        let condition = &status(&cluster)["conditions"][0];
        assert_eq!(
            (condition["status"].as_str(), condition["reason"].as_str()),
            (Some("False"), Some("SnapshotNotVerified"))
        );
    }

    #[tokio::test]
    async fn a_scheduled_verifier_waits_for_its_time_and_a_wrong_one_is_invalid() {
        let scheduled = cluster(json!({"repository": "apps", "schedule": "0 3 * * *"}));
        let waiting = step(&scheduled, now()).await;
        assert_eq!(
            waiting.requeue,
            Requeue::After(Duration::from_secs(17 * 3600))
        );
        assert_eq!(status(&scheduled)["nextRun"], "2026-12-02T03:00:00Z");
        assert!(
            scheduled
                .objects()
                .iter()
                .all(|o| o["kind"] != "RestoreSession")
        );
        let at_three: DateTime<Utc> = "2026-12-02T03:00:00Z".parse().unwrap();
        step(&scheduled, at_three).await;
        assert_eq!(status(&scheduled)["phase"], "Verifying");

        let wrong = cluster(json!({"repository": "apps", "schedule": "every day"}));
        step(&wrong, now()).await;
        assert_eq!(status(&wrong)["phase"], "Invalid");
        let no_hook = cluster(json!({"repository": "apps",
            "queryHooks": [{"name": "x", "hookTemplate": {"name": "gone"}}]}));
        step(&no_hook, now()).await;
        assert_eq!(
            status(&no_hook)["conditions"][0]["reason"],
            "HookTemplateNotFound"
        );
        assert!(
            no_hook
                .objects()
                .iter()
                .all(|o| o["kind"] != "RestoreSession")
        );
    }
}
