//! `kbackup backup volumes` and `kbackup restore volumes` on the real node: a StatefulSet of
//! two pods and a Deployment, each container writing its own files (hard links, symbolic
//! links, modes, owners, a large sparse file) to its own claim; mover pods of the kbackup
//! image back them up into the test MinIO, one snapshot for all; a second backup of the
//! unchanged volumes adds nothing; one StatefulSet pod's volume is restored into a new claim
//! and compared entry by entry with the live one; a mover that cannot be scheduled (a taint
//! the Deployment's pod does not tolerate) fails its volume only, names it, and leaves
//! nothing behind.
//!
//! Needs `cargo xtask env up` and the image of this version on the node (`cargo xtask image
//! --load`; `cargo xtask ci` does both).

mod common;

use backup_testing::{
    DESCRIBE_TREE, RealNode, S3Server, TestNamespace, indent, real_node, unique_name,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(300);
const PASSWORD: &str = "volumes-test-password";

/// What every workload container writes once to its claim, then it sleeps.
const WRITE: &str = r#"set -e
if [ ! -f /data/ready ]; then
  cd /data
  mkdir -p own/deep private
  hostname > own/name
  seq 1 20000 | sed "s/^/$(hostname) line /" > own/deep/lines.txt
  head -c 3000000 /dev/urandom > own/random.bin
  ln own/name own/name-again
  ln -s deep/lines.txt own/link
  echo secret > private/key && chmod 600 private/key && chmod 700 private
  chown -R 1234:5678 own/deep
  dd if=/dev/zero of=sparse bs=1048576 count=0 seek=300 2>/dev/null
  touch ready
fi
exec sleep 1000000
"#;

/// Hooks: the StatefulSet's pods flush; the Deployment's pod cannot freeze; marks in /tmp
/// say which post-backup hooks ran.
const HOOKS: &str = r#"preBackup:
- name: flush
  workload: statefulset/db
  container: main
  command: [sh, -c, "sync && date > /tmp/flushed"]
- name: refuse
  workload: deployment/web
  command: [sh, -c, "echo try >> /tmp/attempted; echo cannot freeze >&2; exit 3"]
  maxRetry: 1
  timeout: 10
postBackup:
- name: unfreeze
  command: [sh, -c, "echo unfrozen > /tmp/unfrozen"]
- name: alarm
  command: [sh, -c, "echo alarm > /tmp/alarm"]
  executionPolicy: OnFailure
- name: done
  command: [sh, -c, "echo done > /tmp/done"]
  executionPolicy: OnSuccess
"#;

/// A taint of the real node that the StatefulSet's pods tolerate and the Deployment's not.
const MAINTENANCE: &str = "kbackup.test/maintenance";

/// A container running [`WRITE`] with `volume` at /data, ready once its data is written.
fn writer(node: &RealNode, volume: &str) -> String {
    format!(
        "      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        imagePullPolicy: IfNotPresent
        command:
        - sh
        - -c
        - |
{script}
        readinessProbe:
          exec:
            command: [test, -f, /data/ready]
          periodSeconds: 1
        volumeMounts:
        - name: {volume}
          mountPath: /data
",
        image = node.toolbox_image,
        script = indent(WRITE, 10),
    )
}

fn workloads(node: &RealNode) -> String {
    let placement = indent(&node.placement(), 4);
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  replicas: 2
  serviceName: db
  selector:
    matchLabels: {{app: db}}
  template:
    metadata:
      labels: {{app: db}}
    spec:
{placement}      - key: {MAINTENANCE}
        operator: Exists
{db}  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: {class}
      resources:
        requests:
          storage: 512Mi
---
{claim}{web}",
        db = writer(node, "data"),
        web = deployment(node, "web", "web-data"),
        class = node.storage_class,
        claim = node.claim("web-data"),
    )
}

/// A Deployment of one [`writer`] pod on the real node, its volume `files` the claim `claim`.
fn deployment(node: &RealNode, name: &str, claim: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
{placement}{main}      volumes:
      - name: files
        persistentVolumeClaim:
          claimName: {claim}
",
        placement = indent(&node.placement(), 4),
        main = writer(node, "files"),
    )
}

/// `backup volumes` into `repo`, its movers reaching MinIO from the node, JSON out, then
/// `extra`.
fn backup_args<'a>(repo: &'a str, node: &'a RealNode, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "backup",
        "volumes",
        "--repo",
        repo,
        "--mover-endpoint",
        &node.pod_s3_endpoint,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    args
}

/// The kbackup binary against the test cluster and MinIO, with the password and the
/// object store's keys in the environment.
fn kbackup(ns: &TestNamespace, s3: &S3Server, args: &[&str]) -> Output {
    kbackup_as(&backup_testing::kubeconfig(), ns, s3, args)
}

/// [`kbackup`] acting through `kubeconfig` (a ServiceAccount's).
fn kbackup_as(kubeconfig: &Path, ns: &TestNamespace, s3: &S3Server, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name.starts_with("KBACKUP_") {
            command.env_remove(name);
        }
    }
    command
        .env("KBACKUP_PASSWORD", PASSWORD)
        .env("AWS_ACCESS_KEY_ID", &s3.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key)
        .env("AWS_REGION", &s3.region)
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .arg("--no-progress")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", &ns.name])
        .args(args);
    let output = command.output().expect("kbackup runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("kbackup {}:\n{stderr}", args.join(" "));
    for secret in [PASSWORD, s3.secret_access_key.as_str()] {
        assert!(
            !stderr.contains(secret) && !String::from_utf8_lossy(&output.stdout).contains(secret),
            "a credential appeared in the output of kbackup {}",
            args.join(" ")
        );
    }
    output
}

fn json(output: &Output) -> Vec<Value> {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The rows of a volume backup, by component name.
fn by_component(rows: &[Value], ends_with: &str) -> Value {
    rows.iter()
        .find(|r| r["component"].as_str().unwrap().ends_with(ends_with))
        .cloned()
        .unwrap_or_else(|| panic!("no component ending in {ends_with}: {rows:?}"))
}

/// Checks that the Deployment's volume failed and the StatefulSet's succeeded; the error.
fn only_web_failed(rows: &[Value]) -> String {
    let web = by_component(rows, "/deployment/web/web-data/files");
    assert_eq!(web["phase"], "Failed", "{web}");
    for pod in ["db-0", "db-1"] {
        let db = by_component(rows, &format!("/{pod}/data"));
        assert_eq!(db["phase"], "Succeeded", "{db}");
    }
    web["error"].as_str().unwrap_or_default().to_owned()
}

/// Removes the maintenance taint, whatever happens (a failure to is printed: a drop must
/// not panic).
struct Tainted<'a>(&'a RealNode);

impl Drop for Tainted<'_> {
    fn drop(&mut self) {
        let removed = Command::new(backup_testing::kubectl())
            .arg("--kubeconfig")
            .arg(backup_testing::kubeconfig())
            .args(["taint", "node", &self.0.name, &format!("{MAINTENANCE}-")])
            .output();
        match removed {
            Ok(output) if output.status.success() => {}
            other => eprintln!("could not remove the taint {MAINTENANCE}: {other:?}"),
        }
    }
}

/// Waits until nothing a mover run creates is left in the namespace.
fn assert_movers_gone(ns: &TestNamespace) {
    let start = Instant::now();
    loop {
        let left = ns.kubectl(&[
            "get",
            "jobs,secrets,pods",
            "-l",
            "app.kubernetes.io/name=kbackup-mover",
            "-o",
            "name",
        ]);
        if left.trim().is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "mover objects left behind: {left}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn workload_volumes_are_backed_up_in_the_cluster_and_restored_into_a_claim() {
    let node = real_node();
    let s3 = backup_testing::s3();
    let ns = TestNamespace::create("kbackup-volumes");
    let repo = format!("s3://{}/{}", s3.bucket, unique_name("volumes"));
    ns.apply(&workloads(&node));
    for workload in ["statefulset/db", "deployment/web"] {
        ns.kubectl(&["rollout", "status", workload, "--timeout=300s"]);
    }
    let init = kbackup(&ns, &s3, &["repo", "init", "--repo", &repo]);
    assert!(init.status.success(), "repo init failed");

    // The movers' role, as `kbackup rbac volumes` prints it, for a ServiceAccount.
    let home = tempfile::tempdir().unwrap();
    let account = common::service_account_kubeconfig(&ns.name, "backup", home.path());
    let bind = |drop: Option<&str>| {
        let role = common::role_yaml(&ns.name, "backup", "volumes", &ns.name, drop);
        ns.apply(&role);
    };
    let backup_as = |kubeconfig: &Path, extra: &[&str]| {
        kbackup_as(kubeconfig, &ns, &s3, &backup_args(&repo, &node, extra))
    };
    let admin = backup_testing::kubeconfig();
    let backup = |extra: &[&str]| backup_as(&admin, extra);
    let first = backup(&[]);
    assert!(first.status.success(), "the first volume backup failed");
    let rows = json(&first);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_eq!(row["phase"], "Succeeded", "{row}");
        assert!(row["files"].as_u64().unwrap() >= 7, "{row}");
    }
    let db1 = by_component(&rows, "/statefulset/db/db-1/data");
    assert_eq!(db1["claim"], "data-db-1");
    assert_eq!(db1["node"], node.name.as_str());
    by_component(&rows, "/deployment/web/web-data/files");
    assert_movers_gone(&ns);

    // Under the ServiceAccount: one verb less (resuming the suspended Job) is refused,
    // naming it; the role as printed is enough.
    bind(Some("patch"));
    let refused = backup_as(&account, &[]);
    assert_eq!(refused.status.code(), Some(1), "every volume failed");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("forbidden") && stderr.contains("patch"),
        "{stderr}"
    );
    assert_movers_gone(&ns);
    bind(None);
    let again = backup_as(&account, &[]);
    assert!(again.status.success(), "the second volume backup failed");
    for row in json(&again) {
        assert_eq!(row["phase"], "Succeeded", "{row}");
        assert_eq!(
            row["addedBytes"], 0,
            "an unchanged volume added data: {row}"
        );
        assert_eq!(row["filesUnchanged"], row["files"], "{row}");
    }

    // Where a restore's movers go: the real node (new claims are provisioned there).
    let selector = format!("kubernetes.io/hostname={}", node.name);
    let placement = [
        "--mover-toleration",
        node.taint.as_str(),
        "--mover-node-selector",
        selector.as_str(),
    ];

    // pod-1's volume, into a new claim on the real node, compared with the live one.
    ns.apply(&node.claim("restored-db-1"));
    let restore = kbackup(
        &ns,
        &s3,
        &[
            "restore",
            "volumes",
            "latest:db-1",
            "--claim",
            "restored-db-1",
            "--repo",
            &repo,
            "--mover-endpoint",
            &node.pod_s3_endpoint,
            "-o",
            "json",
        ]
        .iter()
        .chain(&placement)
        .copied()
        .collect::<Vec<_>>(),
    );
    assert!(restore.status.success(), "the volume restore failed");
    let restored = json(&restore);
    assert_eq!(restored[0]["phase"], "Succeeded", "{restored:?}");
    assert!(
        restored[0]["component"]
            .as_str()
            .unwrap()
            .ends_with("/db-1/data")
    );
    let live = describe_live(&ns, "db-1");
    let script = format!(
        "{DESCRIBE_TREE}\n(describe /restored)\necho \"sparse_kib=$(du -k /restored/sparse | cut -f1)\"\necho \"name=$(cat /restored/own/name)\"\n"
    );
    let copy = ns.run_pod(
        &node.toolbox_pod("compare", &script, &[("restored-db-1", "/restored", true)]),
        "compare",
        WAIT,
    );
    let copy_tree: String = copy
        .logs
        .lines()
        .skip_while(|l| l.starts_with("--- "))
        .take_while(|l| !l.starts_with("sparse_kib="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(copy_tree.trim(), live.trim(), "the restored claim differs");
    assert!(
        copy.logs.contains("name=db-1"),
        "db-1's own data: {}",
        copy.logs
    );
    let sparse_kib: u64 = copy
        .logs
        .lines()
        .find_map(|l| l.strip_prefix("sparse_kib="))
        .and_then(|v| v.trim().parse().ok())
        .expect("du of the sparse file");
    assert!(
        sparse_kib < 1024,
        "the sparse file was restored with {sparse_kib} KiB of blocks"
    );

    // The namespace's manifests and volumes in one snapshot; the volumes are unchanged.
    let whole = kbackup(
        &ns,
        &s3,
        &[
            "backup",
            "cluster",
            "--repo",
            &repo,
            "--include-namespaces",
            &ns.name,
            "--include-volumes",
            "--mover-endpoint",
            &node.pod_s3_endpoint,
            "--tag",
            "whole-application",
            "-o",
            "json",
        ],
    );
    assert!(
        whole.status.success(),
        "backup cluster --include-volumes failed"
    );
    let web_pod = ns.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let before: Vec<String> = ["db-0", "db-1", web_pod.trim()]
        .iter()
        .map(|pod| describe_live(&ns, pod))
        .collect();
    let stderr = String::from_utf8_lossy(&whole.stderr);
    for pod in ["db-0", "db-1"] {
        let line = stderr
            .lines()
            .find(|l| {
                l.contains(&format!(
                    "/statefulset/db/{pod}/data (claim data-{pod}): Succeeded"
                ))
            })
            .unwrap_or_else(|| panic!("no volume line for {pod}: {stderr}"));
        assert!(line.ends_with("0 B added"), "{line}");
    }
    let kinds = json(&whole);
    for kind in ["StatefulSet", "Deployment", "PersistentVolumeClaim"] {
        assert!(
            kinds.iter().any(|k| k["kind"] == kind),
            "{kind} missing: {kinds:?}"
        );
    }

    // Hooks: the StatefulSet's pods flush, the Deployment's pod refuses to freeze (its
    // volume is not backed up); each pod's post-backup hooks follow their policies.
    let hooks = std::env::temp_dir().join(unique_name("hooks.yaml"));
    std::fs::write(&hooks, HOOKS).unwrap();
    let hooked = backup_as(&account, &["--hooks", hooks.to_str().unwrap()]);
    std::fs::remove_file(&hooks).unwrap();
    assert_eq!(
        hooked.status.code(),
        Some(3),
        "a failed pre-backup hook makes it partial"
    );
    let error = only_web_failed(&json(&hooked));
    assert!(
        error.contains("pre-backup hook 'refuse' failed") && error.contains("cannot freeze"),
        "{error}"
    );
    let marks = |pod: &str| in_main(&ns, pod, "cd /tmp && ls");
    let (db_marks, web_marks) = (marks("db-0"), marks(web_pod.trim()));
    for (marks, present, absent) in [
        (&db_marks, ["flushed", "unfrozen", "done"], "alarm"),
        (&web_marks, ["unfrozen", "alarm", "attempted"], "done"),
    ] {
        for mark in present {
            assert!(marks.contains(mark), "{mark} missing: {marks}");
        }
        assert!(!marks.contains(absent), "{absent} present: {marks}");
    }
    assert_eq!(
        in_main(&ns, web_pod.trim(), "cat /tmp/attempted")
            .lines()
            .count(),
        2,
        "the failing hook was tried twice (maxRetry: 1)"
    );

    // Quiesced by scaling: the Deployment is at zero while its volume is read, and back
    // after; a backup cut short is finished by `volumes resume` from the annotation.
    let web_pod_name = |ns: &TestNamespace| {
        ns.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
    };
    let pod_before = web_pod_name(&ns);
    let quiesced = backup_as(
        &account,
        &["--workload", "deployment/web", "--quiesce", "scale"],
    );
    assert!(quiesced.status.success(), "the quiesced backup failed");
    let rows = json(&quiesced);
    assert_eq!(
        (rows.len(), &rows[0]["phase"]),
        (1, &Value::from("Succeeded")),
        "{rows:?}"
    );
    let replicas = |ns: &TestNamespace| {
        ns.kubectl(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.annotations.kbackup\\.io/quiesced-replicas}",
        ])
    };
    assert_eq!(replicas(&ns).trim(), "1", "scaled back, the record cleared");
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=300s"]);
    assert_ne!(
        web_pod_name(&ns),
        pod_before,
        "the pod was stopped for the backup"
    );
    ns.kubectl(&[
        "annotate",
        "deployment",
        "web",
        "kbackup.io/quiesced-replicas=1",
    ]);
    ns.kubectl(&["scale", "deployment", "web", "--replicas=0"]);
    let resumed = kbackup_as(&account, &ns, &s3, &["volumes", "resume"]);
    assert!(resumed.status.success());
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("Deployment/web scaled back to 1"));
    assert_eq!(replicas(&ns).trim(), "1");
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=300s"]);

    // The Deployment's pod does not tolerate the new taint: its mover cannot be scheduled.
    ns.kubectl(&[
        "taint",
        "node",
        &node.name,
        &format!("{MAINTENANCE}=volumes:NoSchedule"),
    ]);
    let tainted = Tainted(&node);
    let partial = backup(&["--mover-start-timeout", "15s"]);
    drop(tainted);
    assert_eq!(partial.status.code(), Some(3), "a partial backup exits 3");
    let error = only_web_failed(&json(&partial));
    assert!(
        error.contains("did not start") && error.contains("untolerated taint"),
        "the error says why: {error}"
    );
    assert!(
        String::from_utf8_lossy(&partial.stderr).contains("PartiallyFailed"),
        "the summary says PartiallyFailed"
    );
    assert_movers_gone(&ns);

    // The whole application: the namespace and its volumes go, the snapshot of both brings
    // them back; each container finds its own data as it was.
    ns.kubectl(&[
        "delete",
        "namespace",
        &ns.name,
        "--wait=true",
        "--timeout=180s",
    ]);
    let restore = kbackup(
        &ns,
        &s3,
        &[
            "restore",
            "cluster",
            "latest",
            "--tag",
            "whole-application",
            "--include-volumes",
            "--repo",
            &repo,
            "--mover-endpoint",
            &node.pod_s3_endpoint,
        ]
        .iter()
        .chain(&placement)
        .copied()
        .collect::<Vec<_>>(),
    );
    assert!(
        restore.status.success(),
        "restore cluster --include-volumes failed"
    );
    let stderr = String::from_utf8_lossy(&restore.stderr);
    for claim in ["data-db-0", "data-db-1", "web-data"] {
        assert!(
            stderr.contains(&format!("claim {}/{claim} from", ns.name)),
            "{claim} was not filled: {stderr}"
        );
    }
    let stdout = String::from_utf8_lossy(&restore.stdout);
    let claims: Vec<&str> = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("PersistentVolumeClaim "))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    // The three volumes' claims, and restored-db-1 (it has no volume component: new, empty).
    assert_eq!(claims.get(1), Some(&"4"), "four claims created: {stdout}");
    assert!(
        !stdout.contains("PersistentVolume "),
        "the old PersistentVolumes are not restored: {stdout}"
    );
    for workload in ["statefulset/db", "deployment/web"] {
        ns.kubectl(&["rollout", "status", workload, "--timeout=300s"]);
    }
    let web_pod = ns.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    for (pod, was) in ["db-0", "db-1", web_pod.trim()].iter().zip(&before) {
        assert_eq!(
            &describe_live(&ns, pod),
            was,
            "{pod}'s data after the restore"
        );
    }

    // Into the running StatefulSet, pod-1 only, through an init container: db-1's damaged
    // file comes back, db-0 (changed too) is left as it is, the init container goes.
    for pod in ["db-0", "db-1"] {
        in_main(&ns, pod, "echo damaged > /data/own/name");
    }
    let damaged_db0 = describe_live(&ns, "db-0");
    let restore_into = |target: &str, extra: &[&str]| {
        let mut args = vec![
            "restore",
            "volumes",
            "latest",
            "--tag",
            "whole-application",
            "--target",
            target,
            "--repo",
            &repo,
            "--mover-endpoint",
            &node.pod_s3_endpoint,
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        kbackup(&ns, &s3, &args)
    };
    let into = restore_into("statefulset/db", &["--components", "db-1"]);
    assert!(into.status.success(), "restore volumes --target failed");
    let rows = json(&into);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["pod"], "db-1");
    assert_eq!(rows[0]["phase"], "Succeeded", "{rows:?}");
    ns.kubectl(&["rollout", "status", "statefulset/db", "--timeout=300s"]);
    let template = ns.kubectl(&[
        "get",
        "statefulset",
        "db",
        "-o",
        "jsonpath={.spec.template.spec.initContainers}",
    ]);
    assert!(
        !template.contains("kbackup-restore"),
        "the init container stays: {template}"
    );
    let without_marker = |tree: String| -> String {
        tree.lines()
            .filter(|l| !l.contains("./.kbackup"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(
        without_marker(describe_live(&ns, "db-1")),
        without_marker(before[1].clone()),
        "db-1 restored as it was"
    );
    assert_eq!(describe_live(&ns, "db-0"), damaged_db0, "db-0 left alone");

    // Into the Deployment, now two replicas sharing its claim and recreated together: both
    // pods' init containers start at once, one restores while the other waits for it.
    in_main(&ns, web_pod.trim(), "echo damaged > /data/own/name");
    ns.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":2,"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
    ]);
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=300s"]);
    let into = restore_into("deployment/web", &[]);
    assert!(
        into.status.success(),
        "restore volumes --target deployment/web failed"
    );
    let rows = json(&into);
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["phase"] == "Succeeded"),
        "{rows:?}"
    );
    ns.kubectl(&["rollout", "status", "deployment/web", "--timeout=300s"]);
    let web_pods = ns.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let web_pods: Vec<&str> = web_pods.split_whitespace().collect();
    assert_eq!(web_pods.len(), 2, "{web_pods:?}");
    for pod in web_pods {
        assert_eq!(
            without_marker(describe_live(&ns, pod)),
            without_marker(before[2].clone()),
            "{pod} sees the restored data"
        );
    }
}

/// The tree of /data as a pod's container sees it.
fn describe_live(ns: &TestNamespace, pod: &str) -> String {
    in_main(ns, pod, &format!("{DESCRIBE_TREE}\ndescribe /data"))
}

/// The output of a shell script run in the `main` container of a pod.
fn in_main(ns: &TestNamespace, pod: &str, script: &str) -> String {
    ns.kubectl(&["exec", pod, "-c", "main", "--", "sh", "-c", script])
}

/// A ReadWriteOncePod claim: skipped, with why, while its pod runs; backed up once the
/// workload is quiesced by scaling down, its mover mounting it after the pod is gone.
#[test]
fn a_claim_of_one_pod_is_backed_up_with_its_workload_scaled_down() {
    let node = real_node();
    let s3 = backup_testing::s3();
    let ns = TestNamespace::create("kbackup-volumes-rwop");
    let repo = format!("s3://{}/{}", s3.bucket, unique_name("volumes-rwop"));
    let claim = node
        .claim("solo-data")
        .replace("[ReadWriteOnce]", "[ReadWriteOncePod]");
    ns.apply(&format!(
        "{claim}{}",
        deployment(&node, "solo", "solo-data")
    ));
    ns.kubectl(&["rollout", "status", "deployment/solo", "--timeout=300s"]);
    let init = kbackup(&ns, &s3, &["repo", "init", "--repo", &repo]);
    assert!(init.status.success(), "repo init failed");
    let backup = |extra: &[&str]| kbackup(&ns, &s3, &backup_args(&repo, &node, extra));
    let live = backup(&[]);
    assert!(!live.status.success(), "nothing can be backed up live");
    let stderr = String::from_utf8_lossy(&live.stderr);
    assert!(
        stderr.contains("ReadWriteOncePod") && stderr.contains("scaling it down"),
        "the reason is given: {stderr}"
    );
    let quiesced = backup(&["--quiesce", "scale"]);
    assert!(quiesced.status.success(), "the quiesced backup failed");
    let rows = json(&quiesced);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["phase"], "Succeeded", "{rows:?}");
    assert!(rows[0]["files"].as_u64().unwrap() >= 7, "{rows:?}");
    ns.kubectl(&["rollout", "status", "deployment/solo", "--timeout=300s"]);
    let replicas = ns.kubectl(&[
        "get",
        "deployment",
        "solo",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas.trim(), "1", "scaled back");
    assert_movers_gone(&ns);
}
