//! `kbackup stackgraph` end to end on a simulated StackState installation: the real control
//! plane with kwok nodes, the config objects, labelled workloads, a MinIO Service whose pod
//! port 9000 kwok forwards to the test MinIO, and archives in it.

mod common;

use backup_core::cluster::{JobControl, ObjectRef, ResourceStore, WorkloadControl};
use backup_core::workflow::{PRE_RESTORE_REPLICAS, RESTORE_IN_PROGRESS, RESTORE_STARTED_AT};
use common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn list_pages_through_everything_and_shows_multipart_once() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    sts.upload(
        (0..1_001)
            .map(|i| (format!("other/noise-{i:04}.txt"), 1))
            .collect(),
    )
    .await;
    let out = sts.kbackup(&["-o", "json", "stackgraph", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let archives: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = archives
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sts-backup-20261121-0300.graph",
            "sts-backup-20261120-0300.graph",
            "sts-backup-20261119-0300.graph"
        ]
    );
    assert_eq!(archives[0]["size"], 3500);
    assert_eq!(archives[0]["parts"].as_array().unwrap().len(), 2);
    let table = sts.kbackup(&["stackgraph", "list"]);
    assert!(
        text(&table.stdout).contains("sts-backup-20261121-0300.graph  3.42 KiB  2"),
        "{}",
        text(&table.stdout)
    );
    sts.cleanup().await;
}

#[tokio::test]
async fn foreground_restore_scales_down_runs_the_job_and_scales_back_up() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    let dry = sts.kbackup(&[
        "-o",
        "json",
        "stackgraph",
        "restore",
        "--latest",
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(plan[0]["archive"], "sts-backup-20261121-0300.graph");
    assert_eq!(plan[0]["scaleDown"].as_array().unwrap().len(), 2);
    assert_eq!(
        sts.workload("server").await.replicas,
        2,
        "a dry run changes nothing"
    );

    let out = sts.kbackup(&["-y", "-o", "json", "stackgraph", "restore", "--latest"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("PURGES") && stderr.contains("scaled down: receiver (1), server (2)"),
        "{stderr}"
    );
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["state"], "Succeeded");
    let job = report[0]["job"].as_str().unwrap();
    sts.assert_running_as_before().await;
    assert!(!sts.exists("Job", "batch/v1", job).await, "Job removed");
    assert!(!sts.leftovers(job).await, "scratch volume and keys removed");
    sts.cleanup().await;
}

#[tokio::test]
async fn background_restore_then_finalize() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    let out = sts.kbackup(&[
        "-y",
        "stackgraph",
        "restore",
        "--archive",
        "sts-backup-20261120-0300.graph",
        "--background",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job = text(&out.stdout).trim().to_owned();
    assert!(job.starts_with("stackgraph-restore-"), "{job}");
    assert!(text(&out.stderr).contains("check-and-finalize --job"));
    let server = sts.workload("server").await;
    assert_eq!(
        (
            server.replicas,
            server.annotations[PRE_RESTORE_REPLICAS].as_str()
        ),
        (0, "2")
    );
    assert_eq!(server.annotations[RESTORE_IN_PROGRESS], "stackgraph");

    sts.finalize("stackgraph", &job);
    sts.assert_running_as_before().await;
    let again = sts.kbackup(&["stackgraph", "check-and-finalize", "--job", &job]);
    assert!(
        again.status.success(),
        "finalize is idempotent: {}",
        text(&again.stderr)
    );
    assert!(text(&again.stdout).contains("NotFound"));
    sts.cleanup().await;
}

/// sts-backup finalizes a restore by deleting the Job and its claim only: the keys Secret
/// (and the claim) kbackup made for the Job are the Job's, so Kubernetes deletes them with it.
#[tokio::test]
async fn a_restore_job_owns_its_keys_and_claim_so_whoever_deletes_it_deletes_them() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    let out = sts.kbackup(&["-y", "stackgraph", "restore", "--latest", "--background"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job = text(&out.stdout).trim().to_owned();
    let uid = sts.object("Job", "batch/v1", &job).await["metadata"]["uid"].clone();
    let keys = format!("{job}-keys");
    for (kind, name) in [
        ("Secret", keys.as_str()),
        ("PersistentVolumeClaim", job.as_str()),
    ] {
        let owners = sts.object(kind, "v1", name).await["metadata"]["ownerReferences"].clone();
        assert_eq!(
            (&owners[0]["kind"], &owners[0]["uid"]),
            (&json!("Job"), &uid),
            "{kind} {name}"
        );
    }
    // As sts-backup's check-and-finalize does, once the Job is done: the Job goes.
    sts.cluster.delete_job(&sts.namespace, &job).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sts.leftovers(&job).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the keys or the claim outlived the Job by 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let finalized = sts.kbackup(&["stackgraph", "check-and-finalize", "--job", &job]);
    assert!(finalized.status.success(), "{}", text(&finalized.stderr));
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

/// `stackgraph.restore.job.labels` (the chart fills them from the backup pod labels) go on
/// the Job and on its pod, as sts-backup puts them: network policies select pods by them.
#[tokio::test]
async fn the_job_labels_are_on_the_restore_pod_too() {
    let sts = Installation::with_job(json!({}), json!({"labels": {"team": "obs"}})).await;
    sts.upload_archives().await;
    let out = sts.kbackup(&["-y", "stackgraph", "restore", "--latest", "--background"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job = text(&out.stdout).trim().to_owned();
    let manifest = sts.object("Job", "batch/v1", &job).await;
    assert_eq!(manifest["metadata"]["labels"]["team"], "obs");
    assert_eq!(
        manifest["spec"]["template"]["metadata"]["labels"]["team"],
        "obs"
    );
    let selector = format!("job-name={job},team=obs");
    let labelled_pod = || {
        let args = [
            "get",
            "pods",
            "-n",
            &sts.namespace,
            "-l",
            &selector,
            "-o",
            "name",
        ];
        kubectl(&args, None).contains("pod/")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !labelled_pod() {
        assert!(
            std::time::Instant::now() < deadline,
            "no pod of the Job with the label in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sts.finalize("stackgraph", &job);
    sts.cleanup().await;
}

/// With `stackgraph.multipartArchive: false` (here from the Secret, merged over the
/// ConfigMap) split archives are not archives, as for sts-backup: not listed, never the
/// latest, not restorable by name, and the Job is told the archive is whole.
#[tokio::test]
async fn split_archives_are_left_out_when_multipart_archives_are_off() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    sts.set_secret_config(&format!(
        "{}stackgraph:\n  multipartArchive: false\n",
        minio_keys()
    ))
    .await;
    let archives = sts.json(&["stackgraph", "list"]);
    let names: Vec<&str> = archives
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sts-backup-20261120-0300.graph",
            "sts-backup-20261119-0300.graph"
        ]
    );
    let split = sts.kbackup(&[
        "-y",
        "stackgraph",
        "restore",
        "--archive",
        "sts-backup-20261121-0300.graph",
    ]);
    assert_refused(&split, "not found");
    let out = sts.kbackup(&["-y", "stackgraph", "restore", "--latest", "--background"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job = text(&out.stdout).trim().to_owned();
    let env = sts.job_env(&job).await;
    assert_eq!(
        (
            &env["BACKUP_FILE"],
            &env["BACKUP_STACKGRAPH_MULTIPART_ARCHIVE"]
        ),
        (&json!("sts-backup-20261120-0300.graph"), &json!("false"))
    );
    sts.finalize("stackgraph", &job);
    sts.cleanup().await;
}

/// `--latest` goes by the timestamp in the name, as sts-backup does; `--latest-by modified`
/// by the objects' LastModified (an archive uploaded again is then the newest).
#[tokio::test]
async fn latest_goes_by_name_or_by_modification_time() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sts.upload(vec![("sts-backup-20261119-0300.graph".into(), 1000)])
        .await;
    let planned = |by: &[&str]| {
        let plan = sts.json(&[&["stackgraph", "restore", "--latest", "--dry-run"], by].concat());
        plan[0]["archive"].as_str().unwrap().to_owned()
    };
    assert_eq!(planned(&[]), "sts-backup-20261121-0300.graph");
    assert_eq!(
        planned(&["--latest-by", "modified"]),
        "sts-backup-20261119-0300.graph"
    );
    let list = sts.kbackup(&["stackgraph", "list"]);
    assert!(
        text(&list.stdout).contains("MODIFIED"),
        "{}",
        text(&list.stdout)
    );
    let alone = sts.kbackup(&[
        "stackgraph",
        "restore",
        "--archive",
        "sts-backup-20261120-0300.graph",
        "--latest-by",
        "modified",
    ]);
    assert_refused(&alone, "cannot be used with '--latest-by");
    sts.cleanup().await;
}

#[tokio::test]
async fn a_failing_job_prints_logs_and_scales_back_up() {
    let sts = Installation::new(json!({FAIL_LABEL: "true"})).await;
    sts.upload_archives().await;
    let out = sts.kbackup(&["-y", "stackgraph", "restore", "--latest"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--- logs of pod")
            && stderr.contains("container wait")
            && stderr.contains("simulated container log line"),
        "{stderr}"
    );
    assert!(stderr.contains("failed"), "{stderr}");
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn a_held_lock_refuses_and_finalize_finishes_what_sts_backup_left() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    // As the Go tool leaves a cluster interrupted mid-restore.
    let server = sts.workload("server").await;
    let annotations = [
        (PRE_RESTORE_REPLICAS, "2"),
        (RESTORE_IN_PROGRESS, "stackgraph"),
        (RESTORE_STARTED_AT, "2026-11-20T10:00:00Z"),
    ];
    let changes = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect();
    sts.cluster.annotate(&server, &changes).await.unwrap();
    sts.cluster.scale(&server, 0).await.unwrap();

    let refused = sts.kbackup(&["-y", "stackgraph", "restore", "--latest"]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("already in progress")
            && stderr.contains("2026-11-20T10:00:00Z")
            && stderr.contains("kubectl annotate"),
        "{stderr}"
    );
    assert_eq!(
        sts.workload("receiver").await.replicas,
        1,
        "nothing scaled by a refused restore"
    );

    let finalized = sts.kbackup(&[
        "stackgraph",
        "check-and-finalize",
        "--job",
        "stackgraph-restore-from-sts-backup",
    ]);
    assert!(finalized.status.success(), "{}", text(&finalized.stderr));
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_touched() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    let missing = sts.kbackup(&[
        "-y",
        "stackgraph",
        "restore",
        "--archive",
        "sts-backup-19990101-0000.graph",
    ]);
    assert_refused(
        &missing,
        "archive 'sts-backup-19990101-0000.graph' not found",
    );

    let declined = sts.kbackup(&["stackgraph", "restore", "--latest"]);
    assert_refused(&declined, "aborted");

    let no_namespace = Command::new(env!("CARGO_BIN_EXE_kbackup"))
        .args(["stackgraph", "list"])
        .env_remove("KBACKUP_NAMESPACE")
        .output()
        .unwrap();
    assert_refused(&no_namespace, "-n/--namespace");

    let both = sts.kbackup(&["stackgraph", "restore", "--latest", "--archive", "x"]);
    assert_eq!(
        both.status.code(),
        Some(1),
        "--archive and --latest exclude each other"
    );

    // A configuration without a bucket, read from a local file.
    let file = sts.home.path().join("kbackup.yaml");
    std::fs::write(&file, "stackstate:\n  stackgraph:\n    s3Prefix: x\n").unwrap();
    let bad = sts.kbackup(&["--config", file.to_str().unwrap(), "stackgraph", "list"]);
    assert_refused(&bad, "stackgraph.bucket");

    // Wrong credentials in the Secret.
    let wrong = "minio:\n  accessKey: nobody\n  secretKey: wrong-secret-key\n";
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "suse-observability-backup-config", "namespace": sts.namespace}, "stringData": {"config": wrong}});
    sts.cluster.apply(&secret, true).await.unwrap();
    let denied = sts.kbackup(&["-y", "stackgraph", "restore", "--latest"]);
    let stderr = text(&denied.stderr);
    assert_eq!(denied.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("access denied") && !stderr.contains("wrong-secret-key"),
        "{stderr}"
    );
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn an_interrupted_restore_keeps_the_replicas_and_is_finalized_later() {
    // The restore Job's pod waits for a node with this label: it cannot finish before the
    // interrupt, whatever the timing; labelling a node afterwards lets it run.
    let hold = format!("kbackup.test/hold-{}", std::process::id());
    let sts =
        Installation::with_job(json!({}), json!({"nodeSelector": {hold.clone(): "yes"}})).await;
    sts.upload_archives().await;
    let mut child = sts
        .command(&["-y", "stackgraph", "restore", "--latest"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let job = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "kbackup ended early: {seen}"
        );
        seen.push_str(&line);
        if let Some(rest) = line.strip_prefix("restore Job ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let mut rest = String::new();
    // kbackup must stop promptly; never let a missed interrupt hang the test run.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("kbackup did not stop within 30 s of SIGINT: {seen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "{seen}{rest}");
    assert!(
        rest.contains("interrupted") && rest.contains(&format!("check-and-finalize --job {job}")),
        "{rest}"
    );
    let server = sts.workload("server").await;
    assert_eq!(
        (
            server.replicas,
            server.annotations[PRE_RESTORE_REPLICAS].as_str()
        ),
        (0, "2"),
        "still paused, count kept"
    );

    let running = sts.kbackup(&["stackgraph", "check-and-finalize", "--job", &job]);
    assert!(
        running.status.success() && text(&running.stdout).contains("Running"),
        "nothing changes while the Job runs"
    );
    assert_eq!(sts.workload("server").await.replicas, 0);

    // Let the held pod run, then finalize.
    let node = |labels: Value| json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "kwok-node-0", "labels": labels}});
    sts.cluster
        .apply(&node(json!({hold.clone(): "yes"})), true)
        .await
        .unwrap();
    assert!(sts.finalize("stackgraph", &job).contains("Succeeded"));
    // Applying the node again without the label takes it away (server-side apply).
    sts.cluster.apply(&node(json!({})), true).await.unwrap();
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn a_direct_storage_endpoint_needs_no_port_forward() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    // No MinIO Service needed: the archives are read from the endpoint directly.
    let service = ObjectRef {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: Some(sts.namespace.clone()),
        name: "suse-observability-minio".into(),
    };
    sts.cluster.delete(&service).await.unwrap();
    let endpoint = backup_testing::s3().endpoint;
    let out = sts.kbackup(&[
        "-o",
        "json",
        "stackgraph",
        "list",
        "--storage-endpoint",
        &endpoint,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .unwrap()
            .len(),
        3
    );
    let without = sts.kbackup(&["stackgraph", "list"]);
    assert_refused(&without, "suse-observability-minio");
    sts.cleanup().await;
}

#[tokio::test]
async fn expire_deletes_archives_older_than_the_retention_by_name() {
    let sts = Installation::new(json!({})).await;
    let name = |days_ago: i64| {
        format!(
            "sts-backup-{}.graph",
            (chrono::Utc::now() - chrono::Duration::days(days_ago)).format("%Y%m%d-%H%M")
        )
    };
    let (old, older, recent) = (name(31), name(40), name(1));
    sts.upload(vec![
        (format!("{old}.00"), 10),
        (format!("{old}.01"), 10),
        (older.clone(), 10),
        (recent.clone(), 10),
        ("hand-made.graph".into(), 10),
    ])
    .await;

    let dry = sts.kbackup(&[
        "-o",
        "json",
        "stackgraph",
        "expire",
        "--older-than",
        "30days",
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let listed: Vec<String> = serde_json::from_slice::<Vec<Value>>(&dry.stdout)
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, [old.clone(), older.clone()]);
    let declined = sts.kbackup(&["stackgraph", "expire", "--older-than", "30days"]);
    assert_eq!(declined.status.code(), Some(1), "deleting asks first");

    let out = sts.kbackup(&["-y", "stackgraph", "expire", "--older-than", "30days"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let left = sts.kbackup(&["-o", "json", "stackgraph", "list"]);
    let names: Vec<String> = serde_json::from_slice::<Vec<Value>>(&left.stdout)
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [recent, "hand-made.graph".to_string()],
        "both parts of the multipart archive went"
    );
    sts.cleanup().await;
}

#[tokio::test]
async fn secrets_never_show_even_with_debug_logging() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    let secret = backup_testing::s3().secret_access_key;
    for args in [
        &["-vv", "stackgraph", "list"][..],
        &[
            "-vv",
            "-y",
            "stackgraph",
            "restore",
            "--latest",
            "--dry-run",
            "-o",
            "json",
        ][..],
    ] {
        let out = sts.kbackup(args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains("DEBUG"), "debug logging is on");
        assert!(
            !all.contains(&secret),
            "the MinIO secret key leaked with {args:?}"
        );
    }
    sts.cleanup().await;
}

#[tokio::test]
async fn backup_runs_the_export_job_and_cleans_up() {
    let sts = Installation::new(json!({})).await;
    let out = sts.kbackup(&["-o", "json", "stackgraph", "backup"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let archive = report[0]["archive"].as_str().unwrap();
    assert!(
        archive.starts_with("sts-backup-")
            && archive.ends_with(".graph")
            && archive.len() == "sts-backup-20261121-0300.graph".len(),
        "{archive}"
    );
    assert_eq!(report[0]["jobState"], "Succeeded");
    let job = report[0]["job"].as_str().unwrap();
    assert!(!sts.exists("Job", "batch/v1", job).await, "Job removed");
    assert!(!sts.leftovers(job).await, "scratch volume and keys removed");
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn a_failing_backup_prints_logs_and_exits_1() {
    let sts = Installation::new(json!({FAIL_LABEL: "true"})).await;
    let out = sts.kbackup(&["stackgraph", "backup"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--- logs of pod")
            && stderr.contains("container backup")
            && stderr.contains("backup Job"),
        "{stderr}"
    );
    sts.cleanup().await;
}
