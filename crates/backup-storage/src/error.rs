//! object_store's errors turned into [`StorageError`]s that name the cause.

use backup_core::StorageError;
use std::error::Error as _;

/// What an error is about: the backend, the location (no secrets), the bucket and endpoint.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    pub backend: &'static str,
    pub location: String,
    pub bucket: String,
    pub endpoint: String,
}

impl ErrorContext {
    /// Converts an object_store error about `key`.
    pub fn convert(&self, key: &str, error: object_store::Error) -> StorageError {
        let detail = describe(&error);
        let lower = detail.to_lowercase();
        if lower.contains("nosuchbucket")
            || lower.contains("containernotfound")
            || lower.contains("bucket does not exist")
        {
            return StorageError::BucketNotFound {
                bucket: self.bucket.clone(),
            };
        }
        match error {
            object_store::Error::NotFound { .. } => StorageError::NotFound {
                key: key.to_owned(),
            },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => StorageError::AlreadyExists {
                key: key.to_owned(),
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StorageError::AccessDenied {
                location: self.location.clone(),
                detail: first_line(&detail),
            },
            _ if is_denied(&lower) => StorageError::AccessDenied {
                location: self.location.clone(),
                detail: first_line(&detail),
            },
            _ if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake") =>
            {
                StorageError::Tls {
                    endpoint: self.endpoint.clone(),
                    detail: first_line(&detail),
                }
            }
            _ if is_unreachable(&lower) => StorageError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: first_line(&detail),
            },
            _ => StorageError::Other {
                backend: self.backend.to_owned(),
                detail: first_line(&detail),
            },
        }
    }
}

fn is_denied(lower: &str) -> bool {
    [
        "accessdenied",
        "signaturedoesnotmatch",
        "invalidaccesskeyid",
        "authenticationfailed",
        "403 forbidden",
        "401 unauthorized",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

fn is_unreachable(lower: &str) -> bool {
    [
        "connection refused",
        "error sending request",
        "dns error",
        "failed to lookup",
        "timed out",
        "connect error",
        "tcp connect",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// The error and its sources on one line, with query strings (which may carry signatures
/// or SAS tokens) removed.
fn describe(error: &object_store::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    strip_queries(&text)
}

fn strip_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_query = false;
    for c in text.chars() {
        if c == '?' {
            in_query = true;
            out.push_str("?<redacted>");
        } else if in_query && (c.is_whitespace() || c == '"' || c == '\'' || c == ')') {
            in_query = false;
        }
        if !in_query {
            out.push(c);
        }
    }
    out
}

fn first_line(text: &str) -> String {
    const MAX: usize = 400;
    let line = text.lines().next().unwrap_or_default();
    if line.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &line[..cut])
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ErrorContext {
        ErrorContext {
            backend: "s3",
            location: "s3://b".into(),
            bucket: "b".into(),
            endpoint: "http://127.0.0.1:9000".into(),
        }
    }

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: msg.to_owned().into(),
        }
    }

    #[test]
    fn classifies_by_cause() {
        assert!(matches!(
            ctx().convert("k", generic("<Code>NoSuchBucket</Code>")),
            StorageError::BucketNotFound { .. }
        ));
        assert!(matches!(
            ctx().convert("k", generic("<Code>SignatureDoesNotMatch</Code>")),
            StorageError::AccessDenied { .. }
        ));
        assert!(matches!(
            ctx().convert("k", generic("error sending request: Connection refused")),
            StorageError::Unreachable { .. }
        ));
        assert!(matches!(
            ctx().convert("k", generic("invalid peer certificate")),
            StorageError::Tls { .. }
        ));
        let nf = object_store::Error::NotFound {
            path: "k".into(),
            source: "404".into(),
        };
        assert!(ctx().convert("k", nf).is_not_found());
        assert!(matches!(
            ctx().convert("k", generic("weird")),
            StorageError::Other { .. }
        ));
    }

    #[test]
    fn signed_query_strings_never_reach_messages() {
        let e = ctx().convert("k", generic("GET http://h/c/k?sig=SECRETSIG&se=x failed"));
        let text = e.to_string();
        assert!(!text.contains("SECRETSIG"), "{text}");
        assert!(text.contains("?<redacted> failed"), "{text}");
    }
}
