//! The Job restore on the in-memory cluster: each step, and a crash at each change of the
//! start and of the finalize, finished by a later finalize.

use super::*;
use crate::datastore::stackgraph_spec;
use backup_core::cluster::JobState;
use backup_core::engine::{RestoreEngine, RestoreState};
use backup_core::progress::NoProgress;
use backup_core::stackstate::StackStateConfig;
use backup_core::testing::FakeCluster;
use backup_core::workflow::PRE_RESTORE_REPLICAS;
use futures::FutureExt;

const CONFIG: &str = r#"
minio:
  service: {name: minio, port: 9000}
  accessKey: AKIAEXAMPLE
  secretKey: very-secret-key
stackgraph:
  bucket: sts-stackgraph-backup
  restore:
    scaleDownLabelSelector: stackstate.com/connects-to-stackgraph=true
    zookeeperQuorum: zookeeper:2181
    job:
      image: backup:1.0
      waitImage: wait:1.0
    pvc:
      size: 1Gi
"#;
const LABEL: (&str, &str) = ("stackstate.com/connects-to-stackgraph", "true");
const REPLICAS: [(&str, i32); 3] = [("server", 2), ("receiver", 1), ("ui", 3)];

fn installation() -> FakeCluster {
    let cluster = FakeCluster::new();
    cluster.add_workload("sts", "server", 2, &[LABEL], &[]);
    cluster.add_workload("sts", "receiver", 1, &[LABEL], &[]);
    cluster.add_workload("sts", "ui", 3, &[], &[]);
    cluster
}

fn engine(cluster: &FakeCluster) -> JobRestore<'_, FakeCluster> {
    let config = StackStateConfig::from_documents(("ConfigMap", CONFIG), None).unwrap();
    JobRestore::new(cluster, "sts", stackgraph_spec(&config, None).unwrap())
}

fn request() -> JobRequest {
    JobRequest {
        archive: "sts-backup-20261121-0300.graph".into(),
        access_key: "AKIAEXAMPLE".into(),
        secret_key: backup_core::Secret::new("very-secret-key"),
        run_id: "20261130t120000".into(),
    }
}

/// The plan of [`request`], and its Job's name.
fn planned(restore: &JobRestore<'_, FakeCluster>) -> (RestorePlan, String) {
    let plan = done(restore.plan(&request())).unwrap();
    let job = restore.operation(&plan);
    (plan, job)
}

fn now() -> DateTime<Utc> {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

/// Runs a future on the fake cluster to its end (nothing in it waits on time).
fn done<T>(future: impl std::future::Future<Output = T>) -> T {
    future
        .now_or_never()
        .expect("the fake cluster never blocks")
}

/// Nothing of the restore is left: replicas as before, no lock, no Job, no keys, no claim.
fn assert_clean(cluster: &FakeCluster, job: &str) {
    for (name, replicas) in REPLICAS {
        let workload = cluster.workload(name);
        assert_eq!(workload.replicas, replicas, "{name}");
        assert!(
            workload.annotations.is_empty(),
            "{name}: {:?}",
            workload.annotations
        );
    }
    assert!(cluster.jobs("sts").is_empty());
    let keys = DataStoreSpec::keys_name(job);
    assert!(cluster.object("Secret", Some("sts"), &keys).is_none());
    assert!(
        cluster
            .object("PersistentVolumeClaim", Some("sts"), job)
            .is_none()
    );
}

#[test]
fn the_plan_changes_nothing_and_names_what_the_start_does() {
    let cluster = installation();
    let restore = engine(&cluster);
    let plan = done(restore.plan(&request())).unwrap();
    assert_eq!(
        plan.scale_down,
        [
            ("Deployment/server".into(), 2),
            ("Deployment/receiver".into(), 1)
        ]
    );
    assert!(
        plan.create.iter().any(|c| c.starts_with("Job/")),
        "{:?}",
        plan.create
    );
    assert_eq!(plan.refused, None);
    assert_eq!(
        restore.operation(&plan),
        "stackgraph-restore-20261130t120000"
    );
    assert_eq!(cluster.changes(), 0);
}

#[test]
fn a_restore_runs_from_start_to_finalize_and_a_second_finalize_finds_it_done() {
    let cluster = installation();
    let restore = engine(&cluster);
    let (plan, job) = planned(&restore);
    let started = done(restore.start(&plan, now(), &NoProgress)).unwrap();
    assert_eq!(started.job, job);
    assert_eq!(started.paused.len(), 2);
    assert_eq!(cluster.workload("server").replicas, 0);
    assert_eq!(
        cluster.workload("server").annotations[PRE_RESTORE_REPLICAS],
        "2"
    );
    assert!(
        cluster
            .object("Secret", Some("sts"), &DataStoreSpec::keys_name(&job))
            .is_some()
    );
    let again = done(restore.plan(&request())).unwrap();
    assert!(again.refused.unwrap().contains("already in progress"));

    assert!(matches!(
        done(restore.observe(&job)).unwrap(),
        RestoreState::Running { .. }
    ));
    let changes = cluster.changes();
    let running = done(restore.finalize(&job)).unwrap();
    assert_eq!(running.job_state, Some(JobState::Running));
    assert_eq!(
        cluster.changes(),
        changes,
        "a finalize while the Job runs changes nothing"
    );
    let timed_out = done(restore.wait(&job, Duration::from_secs(1), &NoProgress));
    assert!(timed_out.is_err(), "the fake's Job never ends by itself");

    cluster.finish_job("sts", &job, JobState::Succeeded);
    assert_eq!(
        done(restore.observe(&job)).unwrap(),
        RestoreState::Succeeded
    );
    let waited = done(restore.wait(&job, Duration::from_secs(1), &NoProgress));
    assert_eq!(waited.unwrap(), RestoreState::Succeeded);
    let finalized = done(restore.finalize(&job)).unwrap();
    assert_eq!(finalized.resumed.len(), 2);
    assert!(finalized.logs.is_empty());
    assert_clean(&cluster, &job);
    assert_eq!(done(restore.observe(&job)).unwrap(), RestoreState::NotFound);
    let second = done(restore.finalize(&job)).unwrap();
    assert_eq!(second.job_state, None);
    assert!(second.resumed.is_empty());
    assert_clean(&cluster, &job);
}

#[test]
fn a_failed_job_is_finalized_with_its_logs_and_the_steps_that_clean_up() {
    let cluster = installation();
    let restore = engine(&cluster);
    let (plan, job) = planned(&restore);
    done(restore.start(&plan, now(), &NoProgress)).unwrap();
    cluster.finish_job("sts", &job, JobState::Failed("BackoffLimitExceeded".into()));
    assert_eq!(
        done(restore.observe(&job)).unwrap(),
        RestoreState::Failed {
            reason: "BackoffLimitExceeded".into()
        }
    );
    let outcome = done(restore.finalize(&job)).unwrap();
    assert_eq!(outcome.logs.len(), 1);
    assert_clean(&cluster, &job);
    let steps = restore.cleanup_steps(&job);
    assert!(matches!(
        steps.last(),
        Some(NextStep::FinalizeRestore { .. })
    ));
}

#[test]
fn a_job_that_cannot_be_created_undoes_the_start() {
    let cluster = installation();
    cluster.fail_calls(&["create Job/"]);
    let restore = engine(&cluster);
    let (plan, job) = planned(&restore);
    assert!(done(restore.start(&plan, now(), &NoProgress)).is_err());
    assert_clean(&cluster, &job);
}

/// The changes a clean start makes, and those of the finalize after it.
fn changes_of_a_clean_run() -> (usize, usize) {
    let cluster = installation();
    let restore = engine(&cluster);
    let (plan, job) = planned(&restore);
    done(restore.start(&plan, now(), &NoProgress)).unwrap();
    let start = cluster.changes();
    cluster.finish_job("sts", &job, JobState::Succeeded);
    done(restore.finalize(&job)).unwrap();
    (start, cluster.changes() - start)
}

/// Finalizes until the restore is over, ending a Job left running as the cluster would.
fn finalize_to_the_end(cluster: &FakeCluster, job: &String) {
    let restore = engine(cluster);
    if done(restore.observe(job)).unwrap() != RestoreState::NotFound
        && !done(restore.observe(job)).unwrap().is_over()
    {
        let outcome = done(restore.finalize(job)).unwrap();
        assert_eq!(outcome.job_state, Some(JobState::Running));
        cluster.finish_job("sts", job, JobState::Succeeded);
    }
    done(restore.finalize(job)).unwrap();
}

#[test]
fn a_crash_at_any_change_of_the_start_is_finalized_from_the_plan() {
    let (start_changes, _) = changes_of_a_clean_run();
    assert!(
        start_changes >= 8,
        "lock, scale, script, keys, claim, Job: {start_changes}"
    );
    for crash in 1..=start_changes {
        let cluster = installation();
        let restore = engine(&cluster);
        let plan = done(restore.plan(&request())).unwrap();
        let job = restore.operation(&plan);
        cluster.crash_before_change(Some(crash));
        assert!(
            restore
                .start(&plan, now(), &NoProgress)
                .now_or_never()
                .is_none(),
            "crash before change {crash}"
        );
        cluster.crash_before_change(None);
        finalize_to_the_end(&cluster, &job);
        assert_clean(&cluster, &job);
    }
}

#[test]
fn a_crash_at_any_change_of_the_finalize_is_finished_by_the_next() {
    let (start_changes, finalize_changes) = changes_of_a_clean_run();
    assert!(finalize_changes >= 4, "{finalize_changes}");
    for crash in 1..=finalize_changes {
        let cluster = installation();
        let restore = engine(&cluster);
        let plan = done(restore.plan(&request())).unwrap();
        let job = restore.operation(&plan);
        done(restore.start(&plan, now(), &NoProgress)).unwrap();
        cluster.finish_job("sts", &job, JobState::Succeeded);
        cluster.crash_before_change(Some(start_changes + crash));
        assert!(
            restore.finalize(&job).now_or_never().is_none(),
            "crash {crash}"
        );
        cluster.crash_before_change(None);
        finalize_to_the_end(&cluster, &job);
        assert_clean(&cluster, &job);
    }
}
