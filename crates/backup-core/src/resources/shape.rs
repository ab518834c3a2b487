//! The form an object is restored in: what the API server generated for the original and
//! would refuse, or hand out again, in the copy.

use serde_json::Value;

/// Labels the Job controller stamps with the original Job's uid.
const JOB_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

/// How objects are reshaped for a restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreShape {
    /// Drop a Service's node ports (`ports[].nodePort`, `healthCheckNodePort`) so that the
    /// API server allocates free ones: a clone beside the original would collide with it.
    pub drop_node_ports: bool,
}

impl RestoreShape {
    /// Reshapes `object` (of `kind` in `group`) in place:
    /// - a Job without a manual selector loses its generated selector and the uid labels
    ///   of its template and itself (the API server generates them for the new uid, and
    ///   refuses the old ones), as Velero does;
    /// - a Service loses its node ports when they are dropped.
    pub fn apply(&self, group: &str, kind: &str, object: &mut Value) {
        match (group, kind) {
            ("batch", "Job") => {
                let manual = object["spec"]["manualSelector"] == true;
                if let Some(spec) = object.pointer_mut("/spec").and_then(Value::as_object_mut)
                    && !manual
                {
                    spec.remove("selector");
                }
                for labels in ["/metadata/labels", "/spec/template/metadata/labels"] {
                    if let Some(labels) = object.pointer_mut(labels).and_then(Value::as_object_mut)
                    {
                        for uid in JOB_UID_LABELS {
                            labels.remove(uid);
                        }
                    }
                }
            }
            ("", "Service") if self.drop_node_ports => {
                if let Some(spec) = object.pointer_mut("/spec").and_then(Value::as_object_mut) {
                    spec.remove("healthCheckNodePort");
                    for port in spec
                        .get_mut("ports")
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(port) = port.as_object_mut() {
                            port.remove("nodePort");
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The node ports a Service holds (`ports[].nodePort` and `healthCheckNodePort`).
pub fn node_ports(object: &Value) -> Vec<u16> {
    let spec = &object["spec"];
    spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| &p["nodePort"])
        .chain([&spec["healthCheckNodePort"]])
        .filter_map(Value::as_u64)
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_job_loses_what_the_api_server_generated_for_the_original() {
        let mut job = json!({"metadata": {"labels": {"controller-uid": "u1", "team": "a"}},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                     "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1",
                         "controller-uid": "u1", "batch.kubernetes.io/job-name": "migrate"}}}}});
        RestoreShape::default().apply("batch", "Job", &mut job);
        assert_eq!(
            job,
            json!({"metadata": {"labels": {"team": "a"}},
                "spec": {"template": {"metadata": {"labels": {"batch.kubernetes.io/job-name": "migrate"}}}}})
        );
        let mut manual =
            json!({"spec": {"manualSelector": true, "selector": {"matchLabels": {"app": "x"}}}});
        RestoreShape::default().apply("batch", "Job", &mut manual);
        assert_eq!(manual["spec"]["selector"]["matchLabels"]["app"], "x");
    }

    #[test]
    fn node_ports_are_dropped_only_when_asked() {
        let service = json!({"spec": {"type": "LoadBalancer", "healthCheckNodePort": 31000,
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 443}]}});
        assert_eq!(node_ports(&service), [30080, 31000]);
        let mut kept = service.clone();
        RestoreShape::default().apply("", "Service", &mut kept);
        assert_eq!(kept, service);
        let mut dropped = service.clone();
        RestoreShape {
            drop_node_ports: true,
        }
        .apply("", "Service", &mut dropped);
        assert!(node_ports(&dropped).is_empty());
        assert_eq!(dropped["spec"]["ports"][0]["port"], 80);
    }
}
