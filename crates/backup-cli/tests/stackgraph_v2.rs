//! `kbackup stackgraph-v2` end to end on a simulated StackState installation (see
//! `common`): v2 backups named by `sts-backup-....graph.v2` objects below `<s3Prefix>v2/`,
//! the live restore (locked and scaled as StackGraph's), the backfill and the abort.

mod common;

use backup_core::workflow::{PRE_RESTORE_REPLICAS, RESTORE_IN_PROGRESS};
use common::*;
use serde_json::{Value, json};

const NEWEST: &str = "sts-backup-20261130-0300.graph.v2";

impl Installation {
    /// Two v2 backups with their increments below them, StackPacks backups, noise at the
    /// top of the v2 prefix, and a v1 archive beside it.
    async fn upload_v2_backups(&self) {
        self.upload_to(
            &format!("sts-stackgraph-backup/{}v2", self.prefix),
            vec![
                ("sts-backup-20261129-0300.graph.v2".into(), 300),
                (NEWEST.into(), 200),
                ("increments/20261129-0300/000001.data".into(), 5000),
                ("increments/20261130-0300/000001.data".into(), 5000),
                (format!("stackpacks/{NEWEST}.stackpacks.zip"), 100),
                ("README.txt".into(), 10),
            ],
        )
        .await;
        self.upload(vec![("sts-backup-20261201-0300.graph".into(), 1000)])
            .await;
    }
}

fn rows(out: &std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn list_shows_the_v2_backups_only_newest_first() {
    let sts = Installation::new(json!({})).await;
    sts.upload_v2_backups().await;
    let archives = rows(&sts.kbackup(&["-o", "json", "stackgraph-v2", "list"]));
    let names: Vec<&str> = archives
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [NEWEST, "sts-backup-20261129-0300.graph.v2"]);
    assert_eq!(archives[0]["size"], 200);
    let v1 = rows(&sts.kbackup(&["-o", "json", "stackgraph", "list"]));
    assert_eq!(v1.len(), 1, "the v1 listing is unchanged: {v1:?}");
    sts.cleanup().await;
}

#[tokio::test]
async fn restore_loads_the_live_data_scales_back_up_then_backfills() {
    let sts = Installation::new(json!({})).await;
    sts.upload_v2_backups().await;
    let dry = rows(&sts.kbackup(&[
        "-o",
        "json",
        "stackgraph-v2",
        "restore",
        "--latest",
        "--dry-run",
    ]));
    assert_eq!(dry[0]["archive"], NEWEST);
    assert_eq!(dry[0]["scaleDown"].as_array().unwrap().len(), 2);
    assert_eq!(
        sts.workload("server").await.replicas,
        2,
        "a dry run changes nothing"
    );

    let out = sts.kbackup(&["-y", "-o", "json", "stackgraph-v2", "restore", "--latest"]);
    let stderr = text(&out.stderr);
    let report = rows(&out);
    assert!(
        stderr.contains("PURGES") && stderr.contains("scaled down: receiver (1), server (2)"),
        "{stderr}"
    );
    assert!(stderr.contains("restore is complete"), "{stderr}");
    let live = report[0]["job"].as_str().unwrap();
    let backfill = report[1]["job"].as_str().unwrap();
    assert!(live.starts_with("stackgraph-v2-restore-"), "{live}");
    assert!(
        backfill.starts_with("stackgraph-v2-backfill-"),
        "{backfill}"
    );
    assert_eq!(
        (&report[0]["state"], &report[1]["state"]),
        (&json!("Succeeded"), &json!("Succeeded"))
    );
    assert_eq!(report[0]["scaledUp"], json!(["receiver (1)", "server (2)"]));
    sts.assert_running_as_before().await;
    for job in [live, backfill] {
        assert!(!sts.exists("Job", "batch/v1", job).await, "{job} removed");
        assert!(!sts.leftovers(job).await, "{job}'s claim and keys removed");
    }
    sts.cleanup().await;
}

/// A live restore left running holds StackGraph's lock: the StackGraph and settings
/// restores are refused, and so is the backfill, until it is finalized.
#[tokio::test]
async fn a_live_restore_holds_stackgraphs_lock_until_finalized_then_backfill_and_abort_run() {
    let sts = Installation::new(json!({})).await;
    sts.upload_v2_backups().await;
    let out = sts.kbackup(&[
        "-y",
        "stackgraph-v2",
        "restore",
        "--archive",
        NEWEST,
        "--background",
        "--skip-stackpacks",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job = text(&out.stdout).trim().to_owned();
    assert!(job.starts_with("stackgraph-v2-restore-"), "{job}");
    assert!(
        text(&out.stderr).contains("stackgraph-v2 backfill"),
        "{}",
        text(&out.stderr)
    );
    let env = sts.job_env(&job).await;
    for (name, value) in [
        ("BACKUP_FILE", NEWEST),
        ("FORCE_DELETE", "-force"),
        ("SKIP_STACKPACKS", "true"),
        ("S3_ENDPOINT", "suse-observability-minio:9000"),
        ("BACKUP_STACKGRAPH_S3_PREFIX", sts.prefix.as_str()),
    ] {
        assert_eq!(env[name], json!(value), "{name}");
    }
    let claim = sts.object("PersistentVolumeClaim", "v1", &job).await;
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
    let server = sts.workload("server").await;
    assert_eq!(server.replicas, 0);
    assert_eq!(server.annotations[PRE_RESTORE_REPLICAS], "2");
    assert_eq!(server.annotations[RESTORE_IN_PROGRESS], "stackgraph");

    sts.upload_archives().await;
    let v1 = sts.kbackup(&["-y", "stackgraph", "restore", "--latest"]);
    assert_refused(&v1, "another stackgraph restore is already in progress");
    let backfill = sts.kbackup(&["stackgraph-v2", "backfill"]);
    assert_refused(&backfill, "restore is already in progress");

    sts.finalize("stackgraph-v2", &job);
    sts.assert_running_as_before().await;
    assert!(!sts.leftovers(&job).await);

    let backfilled = rows(&sts.kbackup(&["-o", "json", "stackgraph-v2", "backfill"]));
    let backfill_job = backfilled[0]["job"].as_str().unwrap();
    assert!(
        backfill_job.starts_with("stackgraph-v2-backfill-"),
        "{backfill_job}"
    );
    assert_eq!(backfilled[0]["state"], "Succeeded");
    assert!(!sts.exists("Job", "batch/v1", backfill_job).await);

    let unconfirmed = sts.kbackup(&["stackgraph-v2", "abort"]);
    assert_refused(&unconfirmed, "not confirmed");
    let aborted = rows(&sts.kbackup(&["-y", "-o", "json", "stackgraph-v2", "abort"]));
    assert!(
        aborted[0]["job"]
            .as_str()
            .unwrap()
            .starts_with("stackgraph-v2-abort-")
    );
    assert_eq!(aborted[0]["state"], "Succeeded");
    sts.assert_running_as_before().await;
    sts.cleanup().await;
}

#[tokio::test]
async fn a_failed_live_restore_scales_back_up_and_never_backfills() {
    let sts = Installation::new(json!({FAIL_LABEL: "true"})).await;
    sts.upload_v2_backups().await;
    let out = sts.kbackup(&["-y", "stackgraph-v2", "restore", "--latest"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--- logs of pod")
            && stderr.contains("the restore Job stackgraph-v2-restore-"),
        "{stderr}"
    );
    assert!(!stderr.contains("backfill Job"), "{stderr}");
    sts.assert_running_as_before().await;

    let backfill = sts.kbackup(&["stackgraph-v2", "backfill"]);
    assert_refused(&backfill, "the backfill Job stackgraph-v2-backfill-");
    let stderr = text(&backfill.stderr);
    assert!(
        stderr.contains("stackgraph-v2 backfill`") && stderr.contains("stackgraph-v2 abort`"),
        "a failed backfill says how to retry or abort: {stderr}"
    );
    sts.cleanup().await;
}
