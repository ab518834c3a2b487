//! kbackup's Elasticsearch adapter, on the `elasticsearch` crate.
//!
//! Today: [`EsClient`], a connection by URL that names the server it reached. The snapshot
//! engine (repository + SLM configuration, list, describe, restore, finalize) builds on it.

use backup_core::EngineError;
use elasticsearch::Elasticsearch;
use elasticsearch::http::transport::Transport;
use serde::Deserialize;

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

#[derive(Deserialize)]
struct RootResponse {
    cluster_name: String,
    version: RootVersion,
}

#[derive(Deserialize)]
struct RootVersion {
    number: String,
}

impl EsClient {
    /// Connects to `url` (`http://127.0.0.1:9200`); nothing is sent yet.
    pub fn connect(url: &str) -> Result<Self, EngineError> {
        let transport = Transport::single_node(url)
            .map_err(|e| EngineError::Invalid(format!("invalid Elasticsearch URL '{url}': {e}")))?;
        Ok(Self {
            client: Elasticsearch::new(transport),
            url: url.to_owned(),
        })
    }

    /// Asks the server who it is; fails naming the URL when it cannot be reached.
    pub async fn server_info(&self) -> Result<ServerInfo, EngineError> {
        let unreachable = |e: elasticsearch::Error| {
            EngineError::Backend(format!("cannot reach Elasticsearch at {}: {e}", self.url))
        };
        let response = self.client.info().send().await.map_err(unreachable)?;
        let status = response.status_code();
        if !status.is_success() {
            return Err(EngineError::Backend(format!(
                "Elasticsearch at {} answered HTTP {status}",
                self.url
            )));
        }
        let root: RootResponse = response.json().await.map_err(unreachable)?;
        Ok(ServerInfo {
            cluster_name: root.cluster_name,
            version: root.version.number,
        })
    }
}
