//! kbackup in its container image, in pods on the real node, as the in-cluster features will
//! run it: `kbackup version`; `backup path` of a claim's files into the test MinIO, with the
//! repository password and the storage credentials read from Secrets through the API with
//! the pod's service account (the Role is the one `kbackup rbac repo` prints); `restore
//! path` into a second claim; the two trees compared by mode, owner, size, time, link target
//! and content. The backup pod has a 256 MiB memory limit; its peak (the pod cgroup's
//! `memory.max_usage_in_bytes`, page cache included) is printed.
//!
//! Needs `cargo xtask env up` and the image of this version on the node (`cargo xtask image
//! --load`; `cargo xtask ci` does both).

use backup_testing::{DESCRIBE_TREE, RealNode, TestNamespace, real_node, unique_name};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(300);
const MEMORY_LIMIT: &str = "256Mi";

/// Files of every kind a volume holds: a large incompressible file, many small ones, nested
/// directories with their own modes, a symbolic link, an empty file.
const FILL: &str = r#"set -e
cd /data
mkdir -p small deep/er/still private
head -c 67108864 /dev/urandom > large.bin
seq 1 2000 | while read i; do echo "small file $i" > small/$i.txt; done
seq 1 100000 > deep/er/still/numbers.txt
echo secret > private/key && chmod 600 private/key && chmod 700 private
ln -s deep/er/still/numbers.txt link
: > empty
chown -R 1234:5678 deep
echo filled
"#;

fn kbackup_container(
    node: &RealNode,
    name: &str,
    args: &[impl AsRef<str>],
    mounts: &str,
    run_as_root: bool,
) -> String {
    let args = args
        .iter()
        .map(|a| format!("\"{}\"", a.as_ref()))
        .collect::<Vec<_>>()
        .join(", ");
    let security = if run_as_root {
        "    securityContext:\n      runAsUser: 0\n      runAsGroup: 0\n"
    } else {
        ""
    };
    format!(
        "  - name: {name}
    image: {image}
    imagePullPolicy: IfNotPresent
    args: [{args}]
    env:
    - name: KBACKUP_NO_PROGRESS
      value: \"1\"
    resources:
      requests:
        memory: {MEMORY_LIMIT}
      limits:
        memory: {MEMORY_LIMIT}
{security}{mounts}",
        image = node.kbackup_image,
    )
}

/// A pod running kbackup `containers` in order (as init containers), then the peak memory
/// reporter, with `claim` and the host's cgroups as volumes.
fn kbackup_pod(node: &RealNode, name: &str, containers: &[String], claim: &str) -> String {
    format!(
        "{header}  serviceAccountName: kbackup
  initContainers:
{containers}  containers:
{peak}  volumes:
  - name: {claim}
    persistentVolumeClaim:
      claimName: {claim}
  - name: cgroup
    hostPath:
      path: /sys/fs/cgroup
",
        header = node.pod_header(name),
        containers = containers.concat(),
        peak = peak_reporter(node),
    )
}

/// The pod's peak memory from the host's view of its cgroup (v1, cgroupfs driver), by a
/// toolbox container that runs after the init containers.
fn peak_reporter(node: &RealNode) -> String {
    format!(
        r#"  - name: peak-memory
    image: {}
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - |
      dir=$(find /host/cgroup/memory -maxdepth 4 -type d -name "pod$POD_UID" | head -n 1)
      echo "peak_bytes=$(cat $dir/memory.max_usage_in_bytes)"
      echo "limit_bytes=$(cat $dir/memory.limit_in_bytes)"
      echo "failcnt=$(cat $dir/memory.failcnt)"
    env:
    - name: POD_UID
      valueFrom:
        fieldRef:
          fieldPath: metadata.uid
    resources:
      limits:
        memory: 16Mi
    volumeMounts:
    - name: cgroup
      mountPath: /host/cgroup
      readOnly: true
"#,
        node.toolbox_image
    )
}

fn value(logs: &str, key: &str) -> u64 {
    logs.lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in the logs:\n{logs}"))
}

#[test]
fn kbackup_backs_up_a_claim_from_a_pod_and_restores_it_into_another_identically() {
    let node = real_node();
    let s3 = backup_testing::s3();
    let ns = TestNamespace::create("kbackup-in-pod");
    let repo = format!("s3://{}/{}", s3.bucket, unique_name("in-pod"));
    let password = unique_name("password");
    ns.kubectl(&[
        "create",
        "secret",
        "generic",
        "repository-password",
        &format!("--from-literal=password={password}"),
    ]);
    ns.kubectl(&[
        "create",
        "secret",
        "generic",
        "s3-credentials",
        &format!("--from-literal=AWS_ACCESS_KEY_ID={}", s3.access_key_id),
        &format!(
            "--from-literal=AWS_SECRET_ACCESS_KEY={}",
            s3.secret_access_key
        ),
        &format!("--from-literal=AWS_REGION={}", s3.region),
    ]);
    ns.kubectl(&["create", "serviceaccount", "kbackup"]);
    // The Role kbackup says the repository commands need, and nothing more.
    let rbac = Command::new(env!("CARGO_BIN_EXE_kbackup"))
        .args([
            "rbac",
            "repo",
            "--service-account",
            "kbackup",
            "-n",
            &ns.name,
        ])
        .output()
        .unwrap();
    assert!(rbac.status.success(), "{rbac:?}");
    ns.apply(&String::from_utf8(rbac.stdout).unwrap());
    ns.apply(&(node.claim("source") + &node.claim("target")));

    ns.run_pod(
        &node.toolbox_pod("fill", FILL, &[("source", "/data", false)]),
        "fill",
        WAIT,
    );

    let repository = [
        "--repo",
        repo.as_str(),
        "--storage-endpoint",
        node.pod_s3_endpoint.as_str(),
        "--storage-secret",
        "s3-credentials",
        "--encryption-secret",
    ];
    let secret = format!("{}/repository-password", ns.name);
    // Every kbackup command here: the repository, its password Secret, the namespace.
    let args = |command: &[&str]| -> Vec<String> {
        command
            .iter()
            .chain(&repository)
            .chain(&[secret.as_str(), "-n", ns.name.as_str()])
            .map(|s| (*s).to_owned())
            .collect()
    };

    let source_ro =
        "    volumeMounts:\n    - name: source\n      mountPath: /data\n      readOnly: true\n";
    let backup = kbackup_pod(
        &node,
        "backup",
        &[
            kbackup_container(&node, "version", &["version"], "", false),
            kbackup_container(&node, "init", &args(&["repo", "init"]), "", false),
            kbackup_container(
                &node,
                "backup",
                &args(&["backup", "path", "/data"]),
                source_ro,
                // A data mover reads every file whoever owns it (the image's user would be
                // refused `private/`, and the backup would say so and fail).
                true,
            ),
        ],
        "source",
    );
    let backed_up = ns.run_pod(&backup, "backup", WAIT);
    assert!(
        backed_up.logs.contains(env!("CARGO_PKG_VERSION")),
        "kbackup version did not print {}: {}",
        env!("CARGO_PKG_VERSION"),
        backed_up.logs
    );
    assert!(
        !backed_up.logs.contains(&password),
        "the password appeared in the logs"
    );
    report_peak_memory(&node, "backup", &backed_up.logs);

    let target_rw = "    volumeMounts:\n    - name: target\n      mountPath: /restore\n";
    let restore = kbackup_pod(
        &node,
        "restore",
        &[kbackup_container(
            &node,
            "restore",
            &args(&["restore", "path", "latest:/data", "--target", "/restore"]),
            target_rw,
            true,
        )],
        "target",
    );
    let restored = ns.run_pod(&restore, "restore", WAIT);
    report_peak_memory(&node, "restore", &restored.logs);

    let compare = format!(
        "{DESCRIBE_TREE}\n(describe /src) > /tmp/source\n(describe /dst) > /tmp/target\n\
         echo \"entries=$(wc -l < /tmp/source)\"\ndiff /tmp/source /tmp/target && echo IDENTICAL\n"
    );
    let mounts = [("source", "/src", true), ("target", "/dst", true)];
    let compared = ns.run_pod(
        &node.toolbox_pod("compare", &compare, &mounts),
        "compare",
        WAIT,
    );
    assert!(compared.logs.contains("IDENTICAL"), "{}", compared.logs);
    // 2000 small files, 4 more files, the link, 7 directories, and a digest per file.
    assert!(
        value(&compared.logs, "entries") > 2 * 2000,
        "{}",
        compared.logs
    );
}

/// Checks the pod ran under the 256 MiB limit and prints its peak.
fn report_peak_memory(node: &RealNode, pod: &str, logs: &str) {
    let limit = value(logs, "limit_bytes");
    assert_eq!(limit, 256 << 20, "the pod's memory limit: {logs}");
    eprintln!(
        "{pod} pod on {}: peak memory {:.1} MiB of its {MEMORY_LIMIT} limit (cgroup, page cache included), limit reached {} times",
        node.name,
        value(logs, "peak_bytes") as f64 / f64::from(1 << 20),
        value(logs, "failcnt")
    );
}
