//! The test environment's real node runs pods as any cluster does: a volume from the
//! storage class binds on it, the pod reads the API server with its service account's token,
//! reaches the test MinIO through its Service by name (cluster DNS), another pod through
//! its Service (same node, same bridge), answers `kubectl logs` and `kubectl exec`;
//! pods that do not tolerate its taint go to the kwok nodes. Needs `cargo xtask env up`.

use backup_testing::{TestNamespace, real_node};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);

#[test]
fn a_pod_writes_its_volume_reads_the_api_with_its_token_and_answers_logs_and_exec() {
    let node = real_node();
    let ns = TestNamespace::create("real-node");
    let placement = node.placement();
    ns.apply(&format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
data:
  message: hello from the API server
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: read-greeting
rules:
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [greeting]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-greeting
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: read-greeting
subjects:
- kind: ServiceAccount
  name: default
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: {class}
  resources:
    requests:
      storage: 16Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: probe
spec:
{placement}  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: probe
    image: {toolbox}
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - |
      set -e
      kubectl get configmap greeting -o jsonpath='{{.data.message}}' > /data/message
      echo "read: $(cat /data/message)"
      wget -q -O /dev/null {minio}/minio/health/live
      echo "minio reached"
      until [ -f /tmp/release ]; do sleep 0.2; done
      echo released
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: data
"#,
        class = node.storage_class,
        toolbox = node.toolbox_image,
        minio = node.pod_s3_endpoint,
    ));

    let start = Instant::now();
    loop {
        let logs = ns.all_logs("probe");
        if logs.contains("minio reached") {
            assert!(logs.contains("read: hello from the API server"), "{logs}");
            break;
        }
        let phase = ns.kubectl(&["get", "pod", "probe", "-o", "jsonpath={.status.phase}"]);
        assert!(
            phase != "Failed" && start.elapsed() < WAIT,
            "the probe did not get to MinIO ({phase}): {logs}\n{}",
            ns.kubectl(&["describe", "pod", "probe"])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let exec = ns.kubectl(&[
        "exec",
        "probe",
        "--",
        "sh",
        "-c",
        "cat /data/message && touch /tmp/release",
    ]);
    assert_eq!(exec, "hello from the API server");

    let end = ns.wait_for_end("probe", WAIT);
    assert_eq!(end.phase, "Succeeded", "{}", end.logs);
    assert!(end.logs.contains("released"), "{}", end.logs);
    let pod_node = ns.kubectl(&["get", "pod", "probe", "-o", "jsonpath={.spec.nodeName}"]);
    assert_eq!(pod_node, node.name);
    let volume = ns.kubectl(&["get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}"]);
    let affinity = ns.kubectl(&["get", "pv", &volume, "-o", "jsonpath={.spec.nodeAffinity}"]);
    assert!(
        affinity.contains(&node.name),
        "volume {volume} is not on {}: {affinity}",
        node.name
    );
}

#[test]
fn pods_that_do_not_tolerate_the_taint_go_to_the_kwok_nodes() {
    let node = real_node();
    let ns = TestNamespace::create("real-node-taint");
    ns.apply(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: plain
spec:
  replicas: 4
  selector:
    matchLabels:
      app: plain
  template:
    metadata:
      labels:
        app: plain
    spec:
      containers:
      - name: app
        image: an-image-no-registry-serves
",
    );
    let start = Instant::now();
    let nodes = loop {
        let nodes = ns.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=plain",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ]);
        if nodes.split_whitespace().count() == 4 {
            break nodes;
        }
        assert!(start.elapsed() < WAIT, "pods not scheduled: {nodes}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        nodes
            .split_whitespace()
            .all(|n| n != node.name && n.starts_with("kwok-")),
        "{nodes}"
    );
}

#[test]
fn a_pod_reaches_another_through_its_service_by_name() {
    let node = real_node();
    let ns = TestNamespace::create("real-node-dns");
    let placement = node.placement();
    ns.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
{placement}  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {toolbox}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'mkdir -p /www && echo "served by web" > /www/index.html && exec httpd -f -p 8080 -h /www']
    readinessProbe:
      tcpSocket:
        port: 8080
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
"#,
        toolbox = node.toolbox_image,
    ));
    ns.kubectl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=120s"]);
    let client = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
{placement}  restartPolicy: Never
  containers:
  - name: client
    image: {toolbox}
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - |
      # A new Service is reachable once kube-proxy has written its rules: retry as clients
      # do, each attempt bounded (BusyBox's own `wget -T` crashes here; `timeout` does not).
      fetch() {{
        for attempt in $(seq 1 30); do
          timeout 5 wget -q -O - "$1" && return 0
          sleep 1
        done
        return 1
      }}
      fetch http://web.{ns}.svc/index.html && fetch http://web/index.html
"#,
        toolbox = node.toolbox_image,
        ns = ns.name,
    );
    let end = ns.run_pod(&client, "client", WAIT);
    assert_eq!(
        end.logs.matches("served by web").count(),
        2,
        "by full and by short name: {}",
        end.logs
    );
}
