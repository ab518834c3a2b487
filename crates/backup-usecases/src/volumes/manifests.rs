//! The mover's Job and the Secret that carries its credentials, as manifests.

use super::target::{ClaimAccess, VolumeTarget};
use crate::storage_resource::CLAIM_MOUNT;
use backup_core::cluster::SecretValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the mover's claim is mounted.
pub const MOUNT_PATH: &str = "/data";

/// The name of a mover Job's container.
pub const MOVER_CONTAINER: &str = "mover";

/// How movers run.
#[derive(Debug, Clone)]
pub struct MoverSettings {
    /// The kbackup image.
    pub image: String,
    /// The mover's memory request and limit (`256Mi`).
    pub memory: String,
    /// The mover's CPU request (no limit: it takes what the node has spare); also its share
    /// of the node's CPU when busy, beside the node's own processes.
    pub cpu: String,
    /// Movers running at the same time.
    pub concurrency: usize,
    /// How long a mover pod may take to start (scheduled, image pulled, running).
    pub start_timeout: Duration,
    /// How long a mover may run in all (its Job's active deadline).
    pub timeout: Duration,
    /// The repository's URL as the cluster sees it.
    pub repository: String,
    /// Environment variables of the mover, each kept in its Secret: the object store's
    /// (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, ...) and `KBACKUP_PASSWORD`.
    pub credentials: BTreeMap<String, SecretValue>,
    /// Tolerations every mover has, besides those of the pod it joins.
    pub tolerations: Vec<Value>,
    /// Node labels every mover's node must have (a restore into a new claim goes where
    /// they say).
    pub node_selector: BTreeMap<String, String>,
    /// The claim of a local storage the repository is in (its URL a `file://` one below
    /// [`CLAIM_MOUNT`](crate::storage_resource::CLAIM_MOUNT)), which every mover mounts
    /// there too; none for an object store.
    pub storage_claim: Option<String>,
    /// Restore movers read what they wrote back and compare it with the snapshot.
    pub verify: bool,
}

/// A mover's Secret and Job. Its Debug shows neither (the Secret holds the credentials).
#[derive(Clone)]
pub struct MoverJob {
    /// The Job's name (and the Secret's).
    pub name: String,
    /// Their namespace.
    pub namespace: String,
    /// The Secret.
    pub secret: Value,
    /// The Job.
    pub job: Value,
}

impl std::fmt::Debug for MoverJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoverJob")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Why a manifest cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("credential {0} is not UTF-8 text, which a Secret's stringData needs")]
pub struct NotText(pub String);

/// Where a mover runs.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// The node it must run on (a claim in use there, mounted once per node).
    pub node: Option<String>,
    /// Tolerations of the pod it joins.
    pub tolerations: Vec<Value>,
}

impl Placement {
    /// Where the mover of a volume in use runs: on its pod's node unless the claim may be
    /// mounted on several nodes; with that pod's tolerations.
    pub fn of(target: &VolumeTarget) -> Self {
        Self {
            node: (target.access != ClaimAccess::ManyNodes).then(|| target.node.clone()),
            tolerations: target.tolerations.as_array().cloned().unwrap_or_default(),
        }
    }
}

/// The mover Job that backs up `target` (against `parent`, a snapshot id).
pub fn backup_job(
    settings: &MoverSettings,
    name: &str,
    target: &VolumeTarget,
    parent: Option<&str>,
) -> Result<MoverJob, NotText> {
    let mut args = vec![
        "mover".to_owned(),
        "backup".into(),
        "--repo".into(),
        settings.repository.clone(),
        "--component".into(),
        target.component(),
    ];
    if let Some(parent) = parent {
        args.extend(["--parent".into(), parent.to_owned()]);
    }
    args.push(MOUNT_PATH.into());
    mover_job(
        settings,
        name,
        &target.namespace,
        &target.claim,
        true,
        &Placement::of(target),
        args,
    )
}

/// What a restore mover writes.
#[derive(Debug, Clone)]
pub struct RestoreSource {
    /// The snapshot's full id.
    pub snapshot: String,
    /// The component.
    pub component: String,
    /// Replace files the claim already has.
    pub overwrite: bool,
    /// Read the claim back afterwards and compare it with the snapshot.
    pub verify: bool,
}

/// The mover Job that restores a component into `claim`.
pub fn restore_job(
    settings: &MoverSettings,
    name: &str,
    namespace: &str,
    claim: &str,
    source: &RestoreSource,
    placement: &Placement,
) -> Result<MoverJob, NotText> {
    let mut args = vec![
        "mover".to_owned(),
        "restore".into(),
        "--repo".into(),
        settings.repository.clone(),
        "--snapshot".into(),
        source.snapshot.clone(),
        "--component".into(),
        source.component.clone(),
    ];
    if source.overwrite {
        args.push("--overwrite".into());
    }
    if source.verify {
        args.push("--verify".into());
    }
    args.push(MOUNT_PATH.into());
    mover_job(settings, name, namespace, claim, false, placement, args)
}

/// Labels of everything a mover run creates.
pub fn labels(run: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("app.kubernetes.io/managed-by", "kbackup".to_owned()),
        ("app.kubernetes.io/name", "kbackup-mover".to_owned()),
        ("kbackup.io/run", run.to_owned()),
    ])
}

/// The credentials as a Secret's `stringData`.
pub(crate) fn credential_data(
    credentials: &BTreeMap<String, SecretValue>,
) -> Result<BTreeMap<String, String>, NotText> {
    credentials
        .iter()
        .map(|(key, value)| {
            std::str::from_utf8(value.expose())
                .map(|text| (key.clone(), text.to_owned()))
                .map_err(|_| NotText(key.clone()))
        })
        .collect()
}

/// A container of the kbackup image running `args`, its environment from the Secret
/// `secret`, as root (it reads every file of a volume and restores owners as they were),
/// within the mover's memory.
pub(crate) fn mover_container(
    settings: &MoverSettings,
    name: &str,
    args: Vec<String>,
    secret: &str,
    mounts: Vec<Value>,
) -> Value {
    json!({
        "name": name,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "envFrom": [{"secretRef": {"name": secret}}],
        "env": [{"name": "KBACKUP_NO_PROGRESS", "value": "1"}],
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "allowPrivilegeEscalation": false},
        "resources": {
            "requests": {"memory": settings.memory, "cpu": settings.cpu},
            "limits": {"memory": settings.memory},
        },
        "volumeMounts": mounts,
    })
}

fn mover_job(
    settings: &MoverSettings,
    name: &str,
    namespace: &str,
    claim: &str,
    read_only: bool,
    placement: &Placement,
    args: Vec<String>,
) -> Result<MoverJob, NotText> {
    let run = name.rsplit_once('-').map_or(name, |(run, _)| run);
    let labels = labels(run);
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": credential_data(&settings.credentials)?,
    });
    let mut tolerations = placement.tolerations.clone();
    tolerations.extend(settings.tolerations.iter().cloned());
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 5,
        "tolerations": tolerations,
        "containers": [mover_container(
            settings,
            MOVER_CONTAINER,
            args,
            name,
            vec![json!({"name": "data", "mountPath": MOUNT_PATH, "readOnly": read_only})],
        )],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}],
    });
    if !settings.node_selector.is_empty() {
        pod_spec["nodeSelector"] = json!(settings.node_selector);
    }
    if let Some(claim) = &settings.storage_claim {
        pod_spec["volumes"]
            .as_array_mut()
            .into_iter()
            .for_each(|v| {
                v.push(json!({"name": "storage", "persistentVolumeClaim": {"claimName": claim}}))
            });
        pod_spec["containers"][0]["volumeMounts"]
            .as_array_mut()
            .into_iter()
            .for_each(|m| m.push(json!({"name": "storage", "mountPath": CLAIM_MOUNT})));
    }
    if let Some(node) = &placement.node {
        pod_spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
        }}});
    }
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.timeout.as_secs().max(1),
            // Whatever happens to the coordinator, the Job (and the Secret it owns) goes.
            "ttlSecondsAfterFinished": 600,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    });
    Ok(MoverJob {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        secret,
        job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::target::WorkloadRef;

    fn settings() -> MoverSettings {
        MoverSettings {
            image: "localhost/kbackup:1".into(),
            memory: "256Mi".into(),
            cpu: "100m".into(),
            concurrency: 2,
            start_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(3600),
            repository: "s3://bucket/repo".into(),
            credentials: BTreeMap::from([
                (
                    "AWS_SECRET_ACCESS_KEY".into(),
                    SecretValue::new(b"hidden".to_vec()),
                ),
                ("KBACKUP_PASSWORD".into(), SecretValue::new(b"pw".to_vec())),
            ]),
            tolerations: vec![json!({"key": "extra", "operator": "Exists"})],
            node_selector: BTreeMap::from([("type".into(), "real".into())]),
            storage_claim: None,
            verify: false,
        }
    }

    fn target(access: ClaimAccess) -> VolumeTarget {
        VolumeTarget {
            namespace: "demo".into(),
            workload: WorkloadRef::parse("sts/db").unwrap(),
            member: "db-0".into(),
            volume: "data".into(),
            claim: "data-db-0".into(),
            pod: "db-0".into(),
            node: "n1".into(),
            access,
            tolerations: json!([{"key": "own", "operator": "Exists"}]),
        }
    }

    #[test]
    fn a_mover_of_a_repository_in_a_claim_mounts_that_claim_too() {
        let settings = MoverSettings {
            repository: "file:///kbackup/storage/apps".into(),
            storage_claim: Some("backups".into()),
            ..settings()
        };
        let m = backup_job(
            &settings,
            "kbackup-mover-ab12-0",
            &target(ClaimAccess::OneNode),
            None,
        )
        .unwrap();
        let spec = &m.job["spec"]["template"]["spec"];
        let claims: Vec<&str> = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["persistentVolumeClaim"]["claimName"].as_str().unwrap())
            .collect();
        assert_eq!(claims, ["data-db-0", "backups"]);
        assert_eq!(
            spec["containers"][0]["volumeMounts"][1]["mountPath"],
            CLAIM_MOUNT
        );
        assert_eq!(
            spec["containers"][0]["args"][3],
            "file:///kbackup/storage/apps"
        );
    }

    #[test]
    fn a_backup_mover_joins_the_node_reads_only_and_has_credentials_only_from_its_secret() {
        let m = backup_job(
            &settings(),
            "kbackup-mover-ab12-0",
            &target(ClaimAccess::OneNode),
            Some("f00d"),
        )
        .unwrap();
        let spec = &m.job["spec"]["template"]["spec"];
        let container = &spec["containers"][0];
        assert_eq!(
            container["args"],
            json!([
                "mover",
                "backup",
                "--repo",
                "s3://bucket/repo",
                "--component",
                "/demo/statefulset/db/db-0/data",
                "--parent",
                "f00d",
                "/data"
            ])
        );
        assert_eq!(
            container["envFrom"][0]["secretRef"]["name"],
            "kbackup-mover-ab12-0"
        );
        assert!(
            !m.job.to_string().contains("hidden"),
            "no credential in the Job"
        );
        assert_eq!(m.secret["stringData"]["AWS_SECRET_ACCESS_KEY"], "hidden");
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["readOnly"],
            true
        );
        assert_eq!(container["resources"]["limits"]["memory"], "256Mi");
        let term = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0];
        assert_eq!(term["values"][0], "n1");
        let keys: Vec<&str> = spec["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["own", "extra"]);
        assert_eq!(spec["nodeSelector"]["type"], "real");
        assert_eq!(
            m.job["metadata"]["labels"]["kbackup.io/run"],
            "kbackup-mover-ab12"
        );
        assert_eq!(m.job["spec"]["backoffLimit"], 0);
    }

    #[test]
    fn a_shared_claim_goes_anywhere_and_a_restore_writes() {
        let m = backup_job(&settings(), "r-0", &target(ClaimAccess::ManyNodes), None).unwrap();
        assert!(m.job["spec"]["template"]["spec"].get("affinity").is_none());
        assert!(!m.job.to_string().contains("--parent"));
        let source = RestoreSource {
            verify: true,
            snapshot: "abcd".into(),
            component: "/x".into(),
            overwrite: false,
        };
        let r = restore_job(
            &settings(),
            "r-1",
            "demo",
            "new",
            &source,
            &Placement::default(),
        )
        .unwrap();
        let spec = &r.job["spec"]["template"]["spec"];
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["readOnly"],
            false
        );
        assert_eq!(spec["containers"][0]["args"][1], "restore");
        let args = spec["containers"][0]["args"].as_array().unwrap();
        assert_eq!(
            args[args.len() - 2],
            "--verify",
            "read back before the mount path"
        );
        let mut binary = settings();
        binary
            .credentials
            .insert("KBACKUP_PASSWORD".into(), SecretValue::new(vec![0xff]));
        let error =
            restore_job(&binary, "r", "demo", "c", &source, &Placement::default()).unwrap_err();
        assert_eq!(error.0, "KBACKUP_PASSWORD");
    }
}
