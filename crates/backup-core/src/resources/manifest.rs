//! How one object is stored: cleaned of what the server sets, with a checksum over its
//! canonical JSON. A manifest stream is JSON lines: a header, one record per object, and a
//! trailer with the count and a digest over every checksum (so truncation is detected).

use crate::cluster::{ApiResourceType, ObjectRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `format` of the header line.
pub const MANIFEST_FORMAT: &str = "kbackup-manifests/1";

/// The first line of a manifest stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHeader {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
}

/// The last line of a manifest stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestTrailer {
    /// Objects in the stream.
    pub count: u64,
    /// blake3 over the records' checksums, in order.
    pub digest: String,
}

/// Why a manifest stream cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A line is not what it should be.
    #[error("manifest line {line}: {detail}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// An object does not match its checksum.
    #[error("object {object} does not match its checksum: the snapshot is damaged")]
    Checksum {
        /// The object.
        object: String,
    },
    /// The stream ends early or its trailer disagrees.
    #[error("the manifest stream is incomplete or altered: {0}")]
    Truncated(String),
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// API group (`""` for core).
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace of a namespaced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// blake3 (hex) of the object's canonical JSON.
    pub checksum: String,
    /// The cleaned object.
    pub object: Value,
}

/// JSON with object keys sorted at every level: the same object always gives the same text.
pub fn canonical_json(value: &Value) -> String {
    // Written by hand, keys sorted at each level: serde_json may keep insertion order
    // (preserve_order), so its own output is not canonical.
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                out.push('{');
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*key).clone()).to_string());
                    out.push(':');
                    write(&map[*key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// What cleaning keeps or drops beyond the fields a restore must never send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaning {
    /// Keep `status` (restored only on request).
    pub keep_status: bool,
    /// Drop the `kubectl.kubernetes.io/last-applied-configuration` annotation (kept by
    /// default: it is the user's data, and `kubectl apply` merges against it).
    pub drop_last_applied: bool,
}

/// Metadata the server sets: dropped from every object.
pub const SERVER_SET_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "managedFields",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The annotation `kubectl apply` keeps its last input in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Removes what the server sets and a restore must not send: identity and bookkeeping
/// metadata, status (unless kept), and fields bound to one cluster (a Service's cluster IPs,
/// a Pod's node).
pub fn clean_object(object: &mut Value, cleaning: Cleaning) {
    // `pointer_mut`, not `object["..."]`: indexing a missing key for writing inserts a null.
    if let Some(metadata) = object
        .pointer_mut("/metadata")
        .and_then(Value::as_object_mut)
    {
        for field in SERVER_SET_METADATA {
            metadata.remove(field);
        }
        if cleaning.drop_last_applied
            && let Some(annotations) = metadata
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED);
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    if !cleaning.keep_status
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    if let Some(spec) = object.pointer_mut("/spec").and_then(Value::as_object_mut) {
        match kind.as_str() {
            // A headless Service keeps `None`; an allocated IP belongs to this cluster.
            "Service" if spec.get("clusterIP").and_then(Value::as_str) != Some("None") => {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            "Pod" => {
                spec.remove("nodeName");
            }
            _ => {}
        }
    }
}

impl ManifestRecord {
    /// A record of an object as listed: cleaned and checksummed.
    pub fn new(resource: &ApiResourceType, mut object: Value, cleaning: Cleaning) -> Self {
        clean_object(&mut object, cleaning);
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(resource.api_version()));
            map.insert("kind".into(), Value::String(resource.kind.clone()));
        }
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Self {
            group: resource.group.clone(),
            version: resource.version.clone(),
            kind: resource.kind.clone(),
            resource: resource.plural.clone(),
            namespace: namespace.filter(|_| resource.namespaced),
            name,
            checksum: blake3::hash(canonical_json(&object).as_bytes())
                .to_hex()
                .to_string(),
            object,
        }
    }

    /// Checks the object against its checksum.
    pub fn verify(&self) -> Result<(), ManifestError> {
        let actual = blake3::hash(canonical_json(&self.object).as_bytes()).to_hex();
        if actual.as_str() == self.checksum {
            Ok(())
        } else {
            Err(ManifestError::Checksum {
                object: self.to_string(),
            })
        }
    }

    /// The object's reference.
    pub fn reference(&self) -> ObjectRef {
        ObjectRef {
            api_version: if self.group.is_empty() {
                self.version.clone()
            } else {
                format!("{}/{}", self.group, self.version)
            },
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

#[cfg(any(test, feature = "testing"))]
impl ManifestRecord {
    /// A record for unit tests (feature `testing`): version `v1`, the plural made from the
    /// kind, no checksum.
    pub fn sample(
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        object: Value,
    ) -> Self {
        Self {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            resource: format!("{}s", kind.to_lowercase()),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
            checksum: String::new(),
            object,
        }
    }
}

impl std::fmt::Display for ManifestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        super::order::write_object(
            f,
            &self.group,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }
}

/// Accumulates the trailer's digest while records are written or read.
#[derive(Debug, Default)]
pub struct DigestBuilder {
    hasher: blake3::Hasher,
    count: u64,
}

impl DigestBuilder {
    /// Adds a record's checksum.
    pub fn add(&mut self, checksum: &str) {
        self.hasher.update(checksum.as_bytes());
        self.count += 1;
    }

    /// The trailer for what was added.
    pub fn trailer(&self) -> ManifestTrailer {
        ManifestTrailer {
            count: self.count,
            digest: self.hasher.finalize().to_hex().to_string(),
        }
    }
}

/// Writes a manifest stream line by line.
#[derive(Debug, Default)]
pub struct ManifestWriter {
    digest: DigestBuilder,
}

impl ManifestWriter {
    /// The header line.
    pub fn header(&self) -> String {
        let header = ManifestHeader {
            format: MANIFEST_FORMAT.into(),
        };
        format!(
            "{}\n",
            serde_json::to_string(&header).expect("header serializes")
        )
    }

    /// A record's line.
    pub fn record(&mut self, record: &ManifestRecord) -> String {
        self.digest.add(&record.checksum);
        format!(
            "{}\n",
            serde_json::to_string(record).expect("record serializes")
        )
    }

    /// The trailer line, after the last record.
    pub fn trailer(&self) -> String {
        format!(
            "{}\n",
            serde_json::to_string(&self.digest.trailer()).expect("trailer serializes")
        )
    }
}

/// Reads a manifest stream line by line, checking every record and the trailer.
#[derive(Debug, Default)]
pub struct ManifestReader {
    line: usize,
    header: bool,
    digest: DigestBuilder,
    trailer: Option<ManifestTrailer>,
}

impl ManifestReader {
    /// Reads one line: `Some(record)` for a verified record, `None` for the header and the
    /// trailer.
    pub fn line(&mut self, text: &str) -> Result<Option<ManifestRecord>, ManifestError> {
        self.line += 1;
        let malformed = |detail: String| ManifestError::Malformed {
            line: self.line,
            detail,
        };
        if self.trailer.is_some() {
            return Err(malformed("data after the trailer".into()));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        if !self.header {
            let header: ManifestHeader =
                serde_json::from_value(value).map_err(|e| malformed(format!("header: {e}")))?;
            if header.format != MANIFEST_FORMAT {
                return Err(malformed(format!("unknown format {}", header.format)));
            }
            self.header = true;
            return Ok(None);
        }
        if value.get("digest").is_some() && value.get("kind").is_none() {
            let trailer: ManifestTrailer =
                serde_json::from_value(value).map_err(|e| malformed(format!("trailer: {e}")))?;
            self.trailer = Some(trailer);
            return Ok(None);
        }
        let record: ManifestRecord =
            serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
        record.verify()?;
        self.digest.add(&record.checksum);
        Ok(Some(record))
    }

    /// Checks the trailer against what was read; returns the number of records.
    pub fn finish(self) -> Result<u64, ManifestError> {
        let trailer = self.trailer.ok_or_else(|| {
            ManifestError::Truncated(format!("no trailer after {} lines", self.line))
        })?;
        let read = self.digest.trailer();
        if read != trailer {
            return Err(ManifestError::Truncated(format!(
                "{} records read, the trailer says {}",
                read.count, trailer.count
            )));
        }
        Ok(read.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stream_round_trips_and_any_cut_or_change_is_caught() {
        let mut writer = ManifestWriter::default();
        let records = [
            ManifestRecord::new(&services(), live_service(), Cleaning::default()),
            ManifestRecord::new(
                &services(),
                json!({"kind": "Service", "metadata": {"name": "db", "namespace": "shop"}}),
                Cleaning::default(),
            ),
        ];
        let mut text = writer.header();
        for r in &records {
            text.push_str(&writer.record(r));
        }
        text.push_str(&writer.trailer());
        let read = |text: &str| -> Result<Vec<ManifestRecord>, ManifestError> {
            let mut reader = ManifestReader::default();
            let mut out = Vec::new();
            for line in text.lines() {
                out.extend(reader.line(line)?);
            }
            reader.finish()?;
            Ok(out)
        };
        assert_eq!(read(&text).unwrap(), records);
        let lines: Vec<&str> = text.lines().collect();
        let without_one = [lines[0], lines[1], lines[3]].join("\n");
        assert!(matches!(
            read(&without_one),
            Err(ManifestError::Truncated(_))
        ));
        let cut = lines[..3].join("\n");
        assert!(matches!(read(&cut), Err(ManifestError::Truncated(_))));
        let altered = text.replace("\"port\":80", "\"port\":81");
        assert!(matches!(
            read(&altered),
            Err(ManifestError::Checksum { .. })
        ));
    }

    fn services() -> ApiResourceType {
        ApiResourceType {
            group: "".into(),
            version: "v1".into(),
            kind: "Service".into(),
            plural: "services".into(),
            namespaced: true,
            verbs: vec!["list".into()],
        }
    }

    fn live_service() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "42",
                            "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{}],
                            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
               "spec": {"clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"], "ports": [{"port": 80}]},
               "status": {"loadBalancer": {}}})
    }

    #[test]
    fn cleaning_drops_server_fields_and_cluster_bound_values() {
        let record = ManifestRecord::new(&services(), live_service(), Cleaning::default());
        let m = &record.object["metadata"];
        assert!(m.get("uid").is_none() && m.get("resourceVersion").is_none());
        assert!(m.get("managedFields").is_none());
        assert!(record.object.get("status").is_none());
        assert!(record.object["spec"].get("clusterIP").is_none());
        assert_eq!(record.namespace.as_deref(), Some("shop"));
        assert_eq!(record.to_string(), "Service shop/web");
        assert!(
            m["annotations"].get(LAST_APPLIED).is_some(),
            "kubectl's last input is the user's data"
        );
        let kept = ManifestRecord::new(
            &services(),
            live_service(),
            Cleaning {
                keep_status: true,
                drop_last_applied: true,
            },
        );
        assert!(kept.object.get("status").is_some());
        assert!(kept.object["metadata"].get("annotations").is_none());
        let mut headless = live_service();
        headless["spec"]["clusterIP"] = json!("None");
        let headless = ManifestRecord::new(&services(), headless, Cleaning::default());
        assert_eq!(headless.object["spec"]["clusterIP"], "None");
    }

    #[test]
    fn cleaning_adds_nothing_to_objects_without_spec() {
        let config_maps = ApiResourceType {
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            ..services()
        };
        let record = ManifestRecord::new(
            &config_maps,
            json!({"metadata": {"name": "conf", "namespace": "a"}, "data": {"k": "v"}}),
            Cleaning::default(),
        );
        assert_eq!(
            record.object,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": "a"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn checksums_are_stable_and_catch_any_change() {
        let record = ManifestRecord::new(&services(), live_service(), Cleaning::default());
        assert!(record.verify().is_ok());
        let reordered: Value = serde_json::from_str(&canonical_json(&record.object)).unwrap();
        assert_eq!(canonical_json(&reordered), canonical_json(&record.object));
        let mut tampered = record.clone();
        tampered.object["spec"]["ports"][0]["port"] = json!(81);
        assert!(matches!(
            tampered.verify(),
            Err(ManifestError::Checksum { .. })
        ));
    }

    #[test]
    fn the_trailer_digest_depends_on_every_record_in_order() {
        let (mut a, mut b) = (DigestBuilder::default(), DigestBuilder::default());
        a.add("x");
        a.add("y");
        b.add("y");
        b.add("x");
        assert_eq!(a.trailer().count, 2);
        assert_ne!(a.trailer().digest, b.trailer().digest);
    }
}
