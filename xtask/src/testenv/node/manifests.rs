//! What the environment creates in the cluster for the real node: Services with endpoints on
//! the node address for the test servers, and the local-path provisioner with its storage
//! class.

use super::images::{LOCAL_PATH, TOOLBOX, reference};
use super::{NODE_IP, TAINT_KEY};
use std::fmt::Write as _;
use std::path::Path;

/// The namespace of the test servers' Services.
pub const SERVERS_NAMESPACE: &str = "kbackup-testenv";
/// The storage class of volumes on the real node.
pub const STORAGE_CLASS: &str = "local-path";
/// The provisioner's namespace and Deployment.
pub const PROVISIONER_NAMESPACE: &str = "local-path-storage";
pub const PROVISIONER: &str = "local-path-provisioner";

/// A test server as pods see it: a Service whose endpoint is the node address and the
/// server's port there.
pub struct ServerService {
    pub name: &'static str,
    pub service_port: u16,
    pub node_port: u16,
}

impl ServerService {
    /// `http://NAME.NAMESPACE.svc:PORT`, as pods reach the server.
    pub fn url(&self) -> String {
        format!(
            "http://{}.{SERVERS_NAMESPACE}.svc:{}",
            self.name, self.service_port
        )
    }
}

/// The Services and their EndpointSlices.
pub fn server_services(services: &[ServerService]) -> String {
    let mut text =
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {SERVERS_NAMESPACE}\n");
    for s in services {
        let _ = write!(
            text,
            "---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {SERVERS_NAMESPACE}
spec:
  ports:
  - name: http
    port: {port}
    targetPort: {node_port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: {SERVERS_NAMESPACE}
  labels:
    kubernetes.io/service-name: {name}
    endpointslice.kubernetes.io/managed-by: kbackup-testenv
addressType: IPv4
endpoints:
- addresses: [\"{NODE_IP}\"]
  conditions:
    ready: true
ports:
- name: http
  port: {node_port}
  protocol: TCP
",
            name = s.name,
            port = s.service_port,
            node_port = s.node_port,
        );
    }
    text
}

/// The local-path provisioner on the real node, creating each volume as a directory under
/// `volumes` through helper pods of the toolbox image, and its storage class (not the
/// default one: pods on kwok nodes must not get volumes).
pub fn local_path_provisioner(volumes: &Path) -> String {
    let toolbox = reference(TOOLBOX);
    let image = reference(LOCAL_PATH);
    let config = serde_json::json!({
        "nodePathMap": [{
            "node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
            "paths": [volumes.display().to_string()],
        }]
    });
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {PROVISIONER_NAMESPACE}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {PROVISIONER}
  namespace: {PROVISIONER_NAMESPACE}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {PROVISIONER}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods, persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {PROVISIONER}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {PROVISIONER}
subjects:
- kind: ServiceAccount
  name: {PROVISIONER}
  namespace: {PROVISIONER_NAMESPACE}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-path-config
  namespace: {PROVISIONER_NAMESPACE}
data:
  config.json: '{config}'
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata:
      name: helper-pod
    spec:
      tolerations:
      - key: {TAINT_KEY}
        operator: Exists
      containers:
      - name: helper-pod
        image: {toolbox}
        imagePullPolicy: IfNotPresent
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {PROVISIONER}
  namespace: {PROVISIONER_NAMESPACE}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {PROVISIONER}
  template:
    metadata:
      labels:
        app: {PROVISIONER}
    spec:
      serviceAccountName: {PROVISIONER}
      nodeSelector:
        type: real
      tolerations:
      - key: {TAINT_KEY}
        operator: Exists
        effect: NoSchedule
      terminationGracePeriodSeconds: 1
      containers:
      - name: provisioner
        image: {image}
        imagePullPolicy: IfNotPresent
        args: [start, --config, /etc/config/config.json, --helper-image, "{toolbox}",
               --helper-pod-file, /etc/config/helperPod.yaml,
               --service-account-name, {PROVISIONER}]
        env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        volumeMounts:
        - name: config
          mountPath: /etc/config
      volumes:
      - name: config
        configMap:
          name: local-path-config
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {STORAGE_CLASS}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_server_gets_a_service_and_a_slice_on_the_node_address() {
        let text = server_services(&[ServerService {
            name: "minio",
            service_port: 9000,
            node_port: 29000,
        }]);
        assert_eq!(text.matches("kind: Service\n").count(), 1);
        assert!(text.contains("kubernetes.io/service-name: minio"));
        assert!(text.contains(&format!("addresses: [\"{NODE_IP}\"]")));
        assert!(text.contains("port: 29000"));
    }

    #[test]
    fn the_provisioner_puts_volumes_under_the_given_directory_and_tolerates_the_taint() {
        let text = local_path_provisioner(Path::new("/env/.testenv/node/volumes"));
        assert!(text.contains(r#""paths":["/env/.testenv/node/volumes"]"#));
        assert!(text.contains(&format!("key: {TAINT_KEY}")));
        assert!(!text.contains("is-default-class"));
    }
}
