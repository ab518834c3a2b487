//! How a backed-up object differs from the live one (both cleaned the same way).

use serde_json::Value;

/// Dotted paths where `live` differs from `backup` (at most `limit`, in document order).
pub fn differences(backup: &Value, live: &Value, limit: usize) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>, limit: usize) {
        if out.len() >= limit || a == b {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(
                        &child,
                        x.get(key).unwrap_or(&Value::Null),
                        y.get(key).unwrap_or(&Value::Null),
                        out,
                        limit,
                    );
                }
            }
            _ => out.push(if path.is_empty() {
                "(whole object)".into()
            } else {
                path.into()
            }),
        }
    }
    let mut out = Vec::new();
    walk("", backup, live, &mut out, limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_paths_that_differ() {
        let backup = json!({"spec": {"replicas": 2, "template": {"x": 1}}, "data": {"a": "1"}});
        let live =
            json!({"spec": {"replicas": 3, "template": {"x": 1}}, "data": {"a": "1", "b": "2"}});
        assert_eq!(differences(&backup, &live, 10), ["data.b", "spec.replicas"]);
        assert_eq!(differences(&backup, &live, 1).len(), 1);
        assert!(differences(&backup, &backup, 10).is_empty());
    }
}
