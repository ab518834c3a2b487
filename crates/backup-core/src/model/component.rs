use super::Phase;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One part of a snapshot, backed up and restored by one engine: a StackGraph archive, an
/// Elasticsearch snapshot, a set of manifests, a file tree, a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Unique within its snapshot (for example `manifests`, `stackgraph`, `pod-0`).
    pub name: String,
    /// The engine that produced it and can restore it (for example `cluster-resources`).
    pub engine: String,
    /// Its outcome.
    pub phase: Phase,
    /// How long it took.
    #[serde(with = "humantime_serde_compat", default)]
    pub duration: Duration,
    /// Bytes of data it holds, before deduplication and compression.
    pub size: u64,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The PersistentVolumeClaim a volume component was backed up from (its name, in the
    /// namespace the component's name begins with): the claim a restore fills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

impl Component {
    /// A pending component of this engine.
    pub fn new(name: impl Into<String>, engine: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            engine: engine.into(),
            phase: Phase::Pending,
            duration: Duration::ZERO,
            size: 0,
            error: None,
            claim: None,
        }
    }

    /// Marks it succeeded with its size and duration.
    pub fn succeeded(mut self, size: u64, duration: Duration) -> Self {
        self.phase = Phase::Succeeded;
        self.size = size;
        self.duration = duration;
        self.error = None;
        self
    }

    /// Marks it failed with the reason.
    pub fn failed(mut self, error: impl Into<String>, duration: Duration) -> Self {
        self.phase = Phase::Failed;
        self.error = Some(error.into());
        self.duration = duration;
        self
    }
}

/// Durations as humantime strings ("1m 5s"), like KubeStash's status.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        // Millisecond precision is what a person reads; sub-ms noise is dropped.
        let ms = Duration::from_millis(d.as_millis() as u64);
        s.serialize_str(&humantime::format_duration(ms).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_with_a_readable_duration() {
        let c = Component::new("manifests", "cluster-resources")
            .succeeded(1234, Duration::from_millis(65_250));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["duration"], "1m 5s 250ms");
        assert_eq!(json["phase"], "Succeeded");
        assert!(json.get("error").is_none());
        let back: Component = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn failure_keeps_the_reason() {
        let c = Component::new("es", "elasticsearch").failed("index missing", Duration::ZERO);
        assert_eq!(c.phase, Phase::Failed);
        assert_eq!(c.error.as_deref(), Some("index missing"));
    }
}
