//! Manifests of test pods and claims on the real node, and a script that describes a tree
//! so that two trees can be compared.

use crate::RealNode;

/// Prints the tree under `$1` (`.` excluded: each claim's root is the provisioner's), one
/// line per entry (a directory's size is left out: it depends on the order its entries were
/// made), then the content digest of each file; defines the shell function `describe`.
pub const DESCRIBE_TREE: &str = r#"describe() {
  cd "$1"
  find . -mindepth 1 | sort | while read p; do
    if [ -d "$p" ] && [ ! -L "$p" ]; then stat -c '%A %u:%g %Y %N' "$p"
    else stat -c '%A %u:%g %s %Y %N' "$p"; fi
  done
  find . -type f | sort | xargs sha256sum
}"#;

/// `text` with every line indented by `by` spaces.
pub fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

impl RealNode {
    /// A ReadWriteOnce claim of 256 MiB on this node's storage class, ending in `---`.
    pub fn claim(&self, name: &str) -> String {
        format!(
            "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: {}
  resources:
    requests:
      storage: 256Mi
---
",
            self.storage_class
        )
    }

    /// A pod's manifest up to its spec's placement on this node and its restart policy.
    pub fn pod_header(&self, name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{}  restartPolicy: Never\n",
            self.placement()
        )
    }

    /// A one-container toolbox pod running `script` with claims mounted
    /// (`(claim, path, read_only)`).
    pub fn toolbox_pod(&self, name: &str, script: &str, mounts: &[(&str, &str, bool)]) -> String {
        let mut volume_mounts = String::new();
        let mut volumes = String::new();
        for (claim, path, read_only) in mounts {
            volume_mounts.push_str(&format!(
                "    - name: {claim}\n      mountPath: {path}\n      readOnly: {read_only}\n"
            ));
            volumes.push_str(&format!(
                "  - name: {claim}\n    persistentVolumeClaim:\n      claimName: {claim}\n"
            ));
        }
        let script = indent(script, 6);
        format!(
            "{header}  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - |
{script}
    volumeMounts:
{volume_mounts}  volumes:
{volumes}",
            header = self.pod_header(name),
            image = self.toolbox_image,
        )
    }
}
