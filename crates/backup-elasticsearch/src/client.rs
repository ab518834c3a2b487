//! The connection to one Elasticsearch cluster and how its answers become errors.

use backup_core::EngineError;
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::http::Method;
use elasticsearch::http::Url;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// A connection to one Elasticsearch cluster.
#[derive(Debug, Clone)]
pub struct EsClient {
    client: Elasticsearch,
    url: String,
}

/// What the server says about itself (`GET /`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerInfo {
    /// The cluster's name.
    pub cluster_name: String,
    /// The server version (`7.17.29`).
    pub version: String,
}

/// An answer: the HTTP status and the JSON body (`Null` when there is none).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The body of a successful answer; otherwise an error naming `what` was asked and
    /// Elasticsearch's own error type and reason.
    pub fn ok(self, what: &str) -> Result<Value, EngineError> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let error = &self.body["error"];
        let kind = error["type"]
            .as_str()
            .or_else(|| error["root_cause"][0]["type"].as_str())
            .unwrap_or("");
        let reason = error["reason"]
            .as_str()
            .or_else(|| error.as_str())
            .unwrap_or("no reason given");
        let status = self.status;
        Err(match (status, kind) {
            (401 | 403, _) => EngineError::Backend(format!(
                "{what}: Elasticsearch refused the credentials (HTTP {status}: {reason})"
            )),
            (404, _) | (_, "repository_missing_exception" | "snapshot_missing_exception") => {
                EngineError::NotFound(format!("{what}: {reason}"))
            }
            (400, _) => EngineError::Invalid(format!("{what}: {kind}: {reason}")),
            _ => EngineError::Backend(format!("{what}: HTTP {status} {kind}: {reason}")),
        })
    }
}

impl EsClient {
    /// Connects to `url` (`http://127.0.0.1:9200`), with basic authentication when given;
    /// nothing is sent yet.
    pub fn connect(url: &str, basic_auth: Option<(&str, &str)>) -> Result<Self, EngineError> {
        backup_core::location::check_endpoint("the Elasticsearch URL", url)
            .map_err(EngineError::Invalid)?;
        let invalid = |e: &dyn std::fmt::Display| {
            EngineError::Invalid(format!("invalid Elasticsearch URL '{url}': {e}"))
        };
        let parsed = Url::parse(url).map_err(|e| invalid(&e))?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(parsed))
            .timeout(Duration::from_secs(120));
        if let Some((user, password)) = basic_auth {
            builder = builder.auth(Credentials::Basic(user.to_owned(), password.to_owned()));
        }
        let transport = builder.build().map_err(|e| invalid(&e))?;
        Ok(Self {
            client: Elasticsearch::new(transport),
            url: url.to_owned(),
        })
    }

    /// The URL it talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one request; any HTTP status is an answer, only a failed exchange is an error.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, EngineError> {
        self.send_text(
            method,
            path,
            query,
            body.map(Value::to_string),
            "application/json",
        )
        .await
    }

    async fn send_text(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
        content_type: &'static str,
    ) -> Result<Reply, EngineError> {
        let unreachable = |e: elasticsearch::Error| {
            EngineError::Backend(format!("cannot reach Elasticsearch at {}: {e}", self.url))
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let response = self
            .client
            .send(method, path, headers, Some(query), body, None)
            .await
            .map_err(unreachable)?;
        let status = response.status_code().as_u16();
        let text = response.text().await.map_err(unreachable)?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply { status, body })
    }

    /// Asks the server who it is; fails naming the URL when it cannot be reached.
    pub async fn server_info(&self) -> Result<ServerInfo, EngineError> {
        let body = self
            .call(Method::Get, "/", &[], None)
            .await?
            .ok(&format!("Elasticsearch at {}", self.url))?;
        Ok(ServerInfo {
            cluster_name: body["cluster_name"].as_str().unwrap_or_default().to_owned(),
            version: body["version"]["number"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Indexes documents: `ndjson` is a `_bulk` body (action and source lines). Refreshes,
    /// so they are searchable when it returns; fails if any document failed.
    pub async fn bulk(&self, ndjson: &str) -> Result<(), EngineError> {
        let body = self
            .send_text(
                Method::Post,
                "/_bulk",
                &[("refresh", "true")],
                Some(ndjson.to_owned()),
                "application/x-ndjson",
            )
            .await?
            .ok("indexing documents")?;
        if body["errors"] == true {
            let first = body["items"][0].to_string();
            return Err(EngineError::Backend(format!(
                "some documents failed, e.g. {first}"
            )));
        }
        Ok(())
    }

    /// Creates an index with a body (settings, mappings, aliases) given as JSON text; returns
    /// once it is created, without waiting for its shards to start.
    pub async fn create_index(&self, index: &str, body: &str) -> Result<(), EngineError> {
        let body: Value = serde_json::from_str(body)
            .map_err(|e| EngineError::Invalid(format!("index body for {index}: {e}")))?;
        self.call(
            Method::Put,
            &format!("/{}", encode(index)),
            &[("wait_for_active_shards", "0")],
            Some(&body),
        )
        .await?
        .ok(&format!("creating index {index}"))?;
        Ok(())
    }

    /// Whether an index (or alias, or datastream) exists (`HEAD <index>`).
    pub async fn index_exists(&self, index: &str) -> Result<bool, EngineError> {
        let reply = self
            .call(Method::Head, &format!("/{}", encode(index)), &[], None)
            .await?;
        match reply.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => reply.ok(&format!("checking index {index}")).map(|_| true),
        }
    }
}

/// A path segment with the characters Elasticsearch names may hold escaped.
pub(crate) fn encode(segment: &str) -> String {
    segment
        .chars()
        .map(|c| match c {
            '<' => "%3C".to_owned(),
            '>' => "%3E".to_owned(),
            '{' => "%7B".to_owned(),
            '}' => "%7D".to_owned(),
            '/' => "%2F".to_owned(),
            ' ' => "%20".to_owned(),
            '|' => "%7C".to_owned(),
            '+' => "%2B".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: Value) -> Result<Value, EngineError> {
        Reply { status, body }.ok("restoring sts-backup/s1")
    }

    #[test]
    fn answers_become_errors_that_say_what_was_asked() {
        let missing = reply(
            404,
            json!({"error": {"type": "snapshot_missing_exception", "reason": "[sts-backup:s1] is missing"}}),
        )
        .unwrap_err();
        assert!(matches!(missing, EngineError::NotFound(_)));
        assert!(missing.to_string().contains("[sts-backup:s1] is missing"));
        let auth = reply(
            401,
            json!({"error": {"type": "security_exception", "reason": "unable to authenticate"}}),
        )
        .unwrap_err();
        assert!(
            auth.to_string().contains("refused the credentials"),
            "{auth}"
        );
        let bad = reply(
            400,
            json!({"error": "no handler found for uri [/_slm/policy/x]"}),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("no handler found"), "{bad}");
        assert_eq!(reply(200, json!({"ok": 1})).unwrap()["ok"], 1);
    }

    #[test]
    fn date_math_names_are_escaped() {
        assert_eq!(
            encode("<sts-backup-{now{yyyyMMdd-HHmm}}>"),
            "%3Csts-backup-%7Bnow%7ByyyyMMdd-HHmm%7D%7D%3E"
        );
    }
}
