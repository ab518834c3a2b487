//! `kbackup settings` and `kbackup victoriametrics` end to end on the simulated installation:
//! the same Job-based engine as StackGraph with another configuration section.

mod common;

use backup_core::cluster::{ResourceStore, WorkloadControl};
use backup_core::workflow::{PRE_RESTORE_REPLICAS, RESTORE_IN_PROGRESS, RESTORE_STARTED_AT};
use common::*;
use serde_json::{Value, json};

const MARKER: &str = "backup_complete.ignore";

impl Installation {
    async fn upload_settings(&self) {
        self.upload_to(
            &format!("sts-settings-backup/{}", self.prefix),
            vec![
                ("sts-backup-20261120-0300.sty".into(), 300),
                ("sts-backup-20261121-0300.sty".into(), 400),
                ("sts-backup-20261121-0300.sty.stackpacks.zip".into(), 50),
                ("notes.txt".into(), 1),
            ],
        )
        .await;
    }

    /// Two finished backups of instance 0 (the second newer), one of instance 1, and an
    /// unfinished one (no marker) of instance 1.
    async fn upload_vm(&self) -> [String; 4] {
        let dir = |i: usize, time: &str| format!("{}-victoria-metrics-{i}-{time}", self.prefix);
        let dirs = [
            dir(0, "20261120030000"),
            dir(1, "20261121030000"),
            dir(0, "20261121030000"),
            dir(1, "20261121040000"),
        ];
        let bucket = "sts-victoria-metrics-backup";
        for (n, d) in dirs.iter().enumerate() {
            let mut objects = vec![(format!("{d}/data/small/part-1"), 100 + n)];
            if n < 3 {
                objects.push((format!("{d}/{MARKER}"), 0));
            }
            // One after the other: the marker's time orders them.
            self.upload_to(bucket, objects).await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        dirs.map(|d| format!("{bucket}/{d}"))
    }
}

fn names(stdout: &[u8]) -> Vec<String> {
    let archives: Vec<Value> = serde_json::from_slice(stdout).unwrap();
    archives
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The chart's `settings.localBucket` holds backups kept in the installation: `settings list`
/// shows its top level beside the bucket, once per name, as sts-backup does, and `--latest`
/// can pick one of them (the restore Job fetches from the local bucket first).
#[tokio::test]
async fn settings_list_the_local_bucket_beside_the_bucket() {
    let sts = Installation::new(json!({})).await;
    sts.upload_settings().await;
    let server = backup_testing::s3();
    let local = backup_testing::unique_name("local-settings");
    server.create_bucket(&local);
    sts.upload_to(
        &local,
        vec![
            ("sts-backup-20261122-0300.sty".into(), 500),
            ("sts-backup-20261121-0300.sty".into(), 999),
            ("elsewhere/sts-backup-20261123-0300.sty".into(), 1),
        ],
    )
    .await;
    sts.set_secret_config(&format!(
        "{}settings:\n  localBucket: {local}\n",
        minio_keys()
    ))
    .await;
    let archives = sts.json(&["settings", "list"]);
    let listed: Vec<(&str, u64)> = archives
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("sts-backup-20261122-0300.sty", 500),
            ("sts-backup-20261121-0300.sty", 400),
            ("sts-backup-20261120-0300.sty", 300)
        ],
        "the bucket's copy counts where both have one"
    );
    let plan = sts.json(&["settings", "restore", "--latest", "--dry-run"]);
    assert_eq!(plan[0]["archive"], "sts-backup-20261122-0300.sty");

    // The newer charts' `storage:` shape (it wins over `minio:`), backups kept locally only.
    let config = format!(
        "storage:\n  globalBackupEnabled: false\n  service:\n    name: suse-observability-minio\n    port: 9000\n    localPortForwardPort: 9000\n  accessKey: {}\n  secretKey: {}\nsettings:\n  localBucket: {local}\n",
        server.access_key_id, server.secret_access_key
    );
    sts.set_secret_config(&config).await;
    let archives = sts.json(&["settings", "list"]);
    let sizes: Vec<u64> = archives
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [500, 999], "only the local bucket's: {archives}");
    let started = sts.kbackup(&["-y", "settings", "restore", "--latest", "--background"]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    let job = text(&started.stdout).trim().to_owned();
    let env = sts.job_env(&job).await;
    assert_eq!(
        (
            &env["BACKUP_CONFIGURATION_UPLOAD_REMOTE"],
            &env["BACKUP_CONFIGURATION_LOCAL_BUCKET"]
        ),
        (&json!("false"), &json!(local))
    );
    sts.finalize("settings", &job);
    sts.cleanup().await;
}

/// As sts-backup has it: a settings restore writes StackGraph's data, so the two restores
/// exclude each other, whichever tool took the lock.
#[tokio::test]
async fn stackgraph_and_settings_restores_exclude_each_other() {
    let sts = Installation::new(json!({})).await;
    sts.upload_archives().await;
    sts.upload_settings().await;
    let started = sts.kbackup(&["-y", "stackgraph", "restore", "--latest", "--background"]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    let job = text(&started.stdout).trim().to_owned();
    let refused = sts.kbackup(&["-y", "settings", "restore", "--latest"]);
    assert_refused(
        &refused,
        "settings and stackgraph restores are mutually exclusive",
    );
    assert!(
        text(&refused.stderr).contains("stackgraph check-and-finalize"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        sts.workload("settings-api").await.replicas,
        1,
        "nothing scaled"
    );
    sts.finalize("stackgraph", &job);

    // The lock sts-backup takes for a settings restore: the same annotations.
    let settings_user = sts.workload("settings-api").await;
    let lock = std::collections::BTreeMap::from([
        (RESTORE_IN_PROGRESS.to_owned(), Some("settings".to_owned())),
        (
            RESTORE_STARTED_AT.to_owned(),
            Some("2026-11-30T03:00:00Z".to_owned()),
        ),
    ]);
    sts.cluster.annotate(&settings_user, &lock).await.unwrap();
    let refused = sts.kbackup(&["-y", "stackgraph", "restore", "--latest"]);
    assert_refused(
        &refused,
        "stackgraph and settings restores are mutually exclusive",
    );
    assert_eq!(sts.workload("server").await.replicas, 2, "nothing scaled");
    sts.cleanup().await;
}

#[tokio::test]
async fn settings_list_and_restore_use_their_own_bucket_selector_and_no_scratch_claim() {
    let sts = Installation::new(json!({})).await;
    sts.upload_settings().await;
    let list = sts.kbackup(&["-o", "json", "settings", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert_eq!(
        names(&list.stdout),
        [
            "sts-backup-20261121-0300.sty",
            "sts-backup-20261120-0300.sty"
        ]
    );

    let dry = sts.kbackup(&["-o", "json", "settings", "restore", "--latest", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        plan[0]["scaleDown"],
        json!([["Deployment/settings-api", 1]])
    );
    let create = plan[0]["create"].to_string();
    assert!(
        create.contains("ConfigMap/kbackup-settings-scripts")
            && !create.contains("PersistentVolumeClaim"),
        "{create}"
    );

    let out = sts.kbackup(&["-y", "-o", "json", "settings", "restore", "--latest"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("REPLACES all settings")
            && stderr.contains("scaled down: settings-api (1)"),
        "{stderr}"
    );
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["state"], "Succeeded");
    assert_eq!(report[0]["scaledUp"], json!(["settings-api (1)"]));
    assert_eq!(sts.workload("settings-api").await.replicas, 1);
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn victoria_metrics_lists_backup_directories_and_restores_both_instances() {
    let sts = Installation::new(json!({})).await;
    let dirs = sts.upload_vm().await;
    let list = sts.kbackup(&["-o", "json", "victoriametrics", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert_eq!(
        names(&list.stdout),
        [2, 1, 0, 3].map(|i| dirs[i].clone()),
        "newest finished first, the unfinished one last"
    );
    let archives: Vec<Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(archives[3]["complete"], false);

    let unfinished = sts.kbackup(&["-y", "victoriametrics", "restore", "--archive", &dirs[3]]);
    assert_refused(&unfinished, "unfinished");
    assert_eq!(
        sts.workload("victoria-metrics-0").await.replicas,
        1,
        "nothing touched"
    );

    let out = sts.kbackup(&[
        "-y",
        "victoriametrics",
        "restore",
        "--latest",
        "--background",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job = text(&out.stdout).trim().to_owned();
    assert!(job.starts_with("victoriametrics-restore-"), "{job}");
    let manifest = sts.object("Job", "batch/v1", &job).await;
    let pod = &manifest["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "one container per mirrored instance");
    for (i, container) in containers.iter().enumerate() {
        let env = container["env"].to_string();
        assert!(env.contains(&dirs[2]), "{env}");
        let storage = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == "/storage")
            .unwrap();
        let claim = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == storage["name"])
            .unwrap()["persistentVolumeClaim"]["claimName"]
            .clone();
        assert_eq!(claim, format!("database-victoria-metrics-{i}-0"));
    }
    for i in 0..2 {
        let w = sts.workload(&format!("victoria-metrics-{i}")).await;
        assert_eq!(
            (w.replicas, w.annotations[PRE_RESTORE_REPLICAS].as_str()),
            (0, "1")
        );
    }

    // A StackGraph restore runs meanwhile: finishing the VictoriaMetrics one must not wake
    // StackGraph's users.
    sts.upload(vec![("sts-backup-20261121-0300.graph".into(), 10)])
        .await;
    let graph = sts.kbackup(&["-y", "stackgraph", "restore", "--latest", "--background"]);
    assert!(graph.status.success(), "{}", text(&graph.stderr));
    let graph_job = text(&graph.stdout).trim().to_owned();

    let done = sts.kbackup(&[
        "victoriametrics",
        "check-and-finalize",
        "--job",
        &job,
        "--wait",
    ]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    for i in 0..2 {
        let w = sts.workload(&format!("victoria-metrics-{i}")).await;
        assert_eq!(w.replicas, 1);
        assert!(!w.annotations.contains_key(RESTORE_IN_PROGRESS));
    }
    let server = sts.workload("server").await;
    assert_eq!(server.replicas, 0, "StackGraph's restore still holds it");
    assert_eq!(server.annotations[RESTORE_IN_PROGRESS], "stackgraph");

    let graph_done = sts.kbackup(&[
        "stackgraph",
        "check-and-finalize",
        "--job",
        &graph_job,
        "--wait",
    ]);
    assert!(graph_done.status.success(), "{}", text(&graph_done.stderr));
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn settings_run_under_the_documented_role_and_not_with_less() {
    let sts = Installation::new(json!({})).await;
    sts.upload_settings().await;
    let account = service_account_kubeconfig(&sts.namespace, "backup", sts.home.path());
    let bind = |drop| {
        let yaml = role_yaml(&sts.namespace, "backup", "settings", &sts.namespace, drop);
        kubectl(&["apply", "-f", "-"], Some(&yaml));
    };
    bind(Some("create"));
    let out = sts.kbackup_as(&account, &["-y", "settings", "restore", "--latest"]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("cannot create resource"), "{stderr}");
    sts.assert_running_as_before().await;
    bind(None);
    let list = sts.kbackup_as(&account, &["-o", "json", "settings", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let out = sts.kbackup_as(
        &account,
        &["-y", "-o", "json", "settings", "restore", "--latest"],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["state"], "Succeeded");
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

/// The archive the test's settings backup CronJob writes (the chart's name them by the
/// time; the kbackup image has no shell to ask it).
const SETTINGS_ARCHIVE: &str = "sts-backup-20261201-0400.sty";

/// `settings backup` runs the installation's own settings backup CronJob now, found by the
/// chart's labels, under the documented role: its Job really runs (on the real node) and
/// uploads an archive, which the command reports and `settings list` then shows. Run again,
/// the Job writes the same name, nothing new is listed, and the command fails saying so;
/// `victoriametrics backup` needs its CronJob named, and one that is not there is an error.
#[tokio::test]
async fn settings_backup_runs_the_installations_own_cronjob_and_reports_what_it_wrote() {
    let node = backup_testing::real_node();
    let sts = Installation::new(json!({})).await;
    let server = backup_testing::s3();
    let apply = |object: Value| {
        let cluster = sts.cluster.clone();
        async move { cluster.apply(&object, true).await.unwrap() }
    };
    apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "settings-backup-keys", "namespace": sts.namespace},
        "stringData": {"AWS_ACCESS_KEY_ID": server.access_key_id,
                       "AWS_SECRET_ACCESS_KEY": server.secret_access_key}}))
    .await;
    let target = format!("s3://sts-settings-backup/{}/{SETTINGS_ARCHIVE}", sts.prefix);
    apply(json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "suse-observability-backup-conf", "namespace": sts.namespace,
            "labels": {"app.kubernetes.io/name": "suse-observability",
                       "app.kubernetes.io/component": "backup-settings"}},
        "spec": {"schedule": "0 4 * * *", "suspend": true, "jobTemplate": {"spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"kubernetes.io/hostname": node.name},
                "tolerations": [{"key": node.taint, "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [{"name": "backup-settings", "image": node.kbackup_image,
                    "imagePullPolicy": "Never",
                    "args": ["storage", "cp", "/etc/ssl/certs/ca-certificates.crt", target],
                    "envFrom": [{"secretRef": {"name": "settings-backup-keys"}}],
                    "env": [{"name": "KBACKUP_STORAGE_ENDPOINT", "value": node.pod_s3_endpoint},
                            {"name": "AWS_REGION", "value": server.region}]}]}}}}}}))
    .await;
    let account = service_account_kubeconfig(&sts.namespace, "backup", sts.home.path());
    let role = role_yaml(&sts.namespace, "backup", "settings", &sts.namespace, None);
    kubectl(&["apply", "-f", "-"], Some(&role));

    let out = sts.kbackup_as(&account, &["-o", "json", "settings", "backup"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report[0]["archives"],
        json!([SETTINGS_ARCHIVE]),
        "{report:?}"
    );
    assert_eq!(report[0]["cronjob"], "suse-observability-backup-conf");
    assert_eq!(report[0]["jobState"], "Succeeded");
    let job = report[0]["job"].as_str().unwrap();
    assert!(
        job.starts_with("suse-observability-backup-conf-manual-"),
        "{job}"
    );
    assert!(
        names(&sts.kbackup(&["-o", "json", "settings", "list"]).stdout)
            .contains(&SETTINGS_ARCHIVE.to_owned())
    );
    let jobs = kubectl(&["get", "jobs", "-n", &sts.namespace, "-o", "name"], None);
    assert!(!jobs.contains(job), "the ended Job is removed: {jobs}");

    let again = sts.kbackup(&["settings", "backup"]);
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no new settings backup is listed"),
        "{stderr}"
    );

    let unnamed = sts.kbackup(&["victoriametrics", "backup"]);
    let stderr = text(&unnamed.stderr);
    assert_eq!(unnamed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--cronjob"), "{stderr}");
    let absent = sts.kbackup(&["victoriametrics", "backup", "--cronjob", "vm-backup"]);
    let stderr = text(&absent.stderr);
    assert_ne!(absent.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no CronJob vm-backup in namespace {}",
            sts.namespace
        )),
        "{stderr}"
    );
    sts.cleanup().await;
}
