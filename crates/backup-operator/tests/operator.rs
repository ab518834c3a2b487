//! The operator against the test environment's API server, real node and MinIO: storages
//! probed (a bad key is named), a configuration's manifests and volumes backed up by
//! sessions from its CronJob and on demand, Snapshot objects with their components, never
//! more than the retention policy keeps, `paused` honoured, an operator killed mid-session
//! and started again ending the session once, and its metrics and health served.

mod common;

use backup_testing::{TestNamespace, real_node, s3, unique_name};
use common::{
    Operator, WAIT, declarations, ended, install_definitions, items, object, pause, scheduled_run,
    trigger, trigger_when_idle, wait_for, wait_idle, web_backed_up, wipe_out,
};
use serde_json::Value;

#[test]
fn the_operator_backs_up_on_schedule_keeps_what_its_policy_says_and_survives_a_restart() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-operator");
    let bucket = unique_name("operator");
    s3().create_bucket(&bucket);
    ns.apply(&declarations(&ns, &node, &bucket));
    let mut operator = Operator::start(&ns.name, &node);

    // The storages are probed: the good one Ready, the bad one NotReady naming the cause.
    wait_for("storage minio to be Ready", WAIT, || {
        (object(&ns, "backupstorage", "minio")["status"]["phase"] == "Ready").then_some(())
    });
    let refused = wait_for("storage minio-wrong-key to be probed", WAIT, || {
        let status = object(&ns, "backupstorage", "minio-wrong-key")["status"].clone();
        (status["phase"] == "NotReady").then_some(status)
    });
    assert_eq!(
        refused["conditions"][0]["reason"], "WriteFailed",
        "{refused}"
    );
    assert!(
        !refused.to_string().contains("not-the-key"),
        "no credential in a status"
    );

    // Its CronJobs exist; a session on demand succeeds with a Snapshot of both components.
    ns.kubectl(&["get", "cronjob", "web-every-minute"]);
    let (first, snapshot) = web_backed_up(&ns, "web-now-1");
    assert_eq!(snapshot["spec"]["snapshotId"].as_str().unwrap().len(), 64);
    let repository = object(&ns, "repository", "apps");
    // The schedule may have written one before it.
    let count = repository["status"]["snapshotCount"].as_u64();
    assert!(matches!(count, Some(1..=3)), "{repository}");
    assert_eq!(repository["status"]["integrity"], true, "{repository}");
    assert_eq!(
        repository["status"]["recentSnapshots"][0]["name"],
        format!("{first}-apps").as_str(),
        "{repository}"
    );
    let size = repository["status"]["size"].as_str().unwrap().to_owned();
    wait_for("the storage to list its repository", WAIT, || {
        let storage = object(&ns, "backupstorage", "minio");
        let status = &storage["status"];
        (status["repositories"][0]["name"] == "apps" && status["totalSize"].is_string())
            .then_some(())
    });
    assert!(size.ends_with("KiB") || size.ends_with("MiB"), "{size}");

    // The bad storage: its session fails saying why, and starts nothing.
    let unwritable = trigger_when_idle(&ns, "unwritable", "unwritable-now-1");
    let failed = ended(&ns, &unwritable);
    assert_eq!(failed["phase"], "Failed");
    assert_eq!(
        failed["conditions"][0]["reason"], "StorageNotReady",
        "{failed}"
    );
    assert!(
        !items(&ns, "jobs")
            .iter()
            .any(|j| j["metadata"]["labels"]["kbackup.io/backup-session"] == unwritable.as_str()),
        "no Job for a storage that is not ready"
    );

    // The schedule makes sessions of its own (one that found an on-demand session running
    // was skipped, rightly: the next one is awaited).
    let scheduled = scheduled_run(&ns, "web-every-minute");
    let status = ended(&ns, &scheduled);
    assert_eq!(status["phase"], "Succeeded", "{status}");

    // Killed while a session runs, started again: the session ends once, with one Job.
    let mut killed = false;
    let second = trigger_when_idle(&ns, "web", "web-now-2");
    if object(&ns, "backupsession", &second)["status"]["phase"] == "Running" {
        operator.kill();
        killed = true;
    }
    operator = Operator::start(&ns.name, &node);
    let status = ended(&ns, &second);
    assert_eq!(
        status["phase"], "Succeeded",
        "killed first: {killed}: {status}"
    );
    let jobs = items(&ns, "jobs");
    assert_eq!(
        jobs.iter()
            .filter(|j| j["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{second}-")))
            .count(),
        1
    );

    // More sessions: never more than 3 snapshots, in the repository or as objects.
    for name in ["web-now-3", "web-now-4"] {
        let name = trigger_when_idle(&ns, "web", name);
        assert_eq!(ended(&ns, &name)["phase"], "Succeeded");
    }
    let repository = object(&ns, "repository", "apps");
    assert_eq!(repository["status"]["snapshotCount"], 3, "{repository}");
    let kept: Vec<Value> = items(&ns, "snapshots")
        .into_iter()
        .filter(|s| s["spec"]["repository"] == "apps" && s["status"]["phase"] == "Succeeded")
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");

    // Paused: the CronJob is suspended and a session is skipped.
    pause(&ns, "web");
    wait_for("the CronJob to be suspended", WAIT, || {
        (object(&ns, "cronjob", "web-every-minute")["spec"]["suspend"] == true).then_some(())
    });
    trigger(&ns, "web", "web-paused");
    let skipped = ended(&ns, "web-paused");
    assert_eq!(skipped["phase"], "Skipped");
    assert_eq!(skipped["conditions"][0]["reason"], "ConfigurationPaused");

    // Metrics and health.
    let metrics = operator.get("/metrics").expect("/metrics answers");
    assert!(
        metrics.contains("kbackup_backup_sessions_ended_total{")
            && metrics.contains("phase=\"Succeeded\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("kbackup_repository_snapshots{"),
        "{metrics}"
    );
    assert!(metrics.contains("kbackup_backup_last_success_timestamp_seconds{"));
    assert_eq!(operator.get("/healthz").as_deref(), Some("ok\n"));

    // deletionPolicy WipeOut: a Snapshot object deleted takes its snapshot with it ...
    wait_idle(&ns, "web");
    let kept: Vec<Value> = items(&ns, "snapshots")
        .into_iter()
        .filter(|s| s["spec"]["repository"] == "apps" && s["status"]["phase"] == "Succeeded")
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    let keys = || s3().keys(&bucket, "apps/");
    let doomed = kept[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let id = kept[0]["spec"]["snapshotId"].as_str().unwrap().to_owned();
    assert!(keys().contains(&format!("apps/snapshots/{id}")));
    wipe_out(&ns, "snapshot", &doomed);
    assert!(
        !keys().contains(&format!("apps/snapshots/{id}")),
        "the snapshot is gone"
    );
    assert_eq!(
        keys()
            .iter()
            .filter(|k| k.starts_with("apps/snapshots/"))
            .count(),
        2
    );
    // ... and a Repository object its whole directory; a Delete one (the default) leaves it.
    wipe_out(&ns, "repository", "apps");
    assert_eq!(
        keys(),
        Vec::<String>::new(),
        "the repository's data is gone"
    );
}
