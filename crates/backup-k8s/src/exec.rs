//! Running commands in containers (the hooks that quiesce an application), and reading a
//! container's log.

use crate::KubeCluster;
use crate::error::convert;
use async_trait::async_trait;
use backup_core::ClusterError;
use backup_core::cluster::{ExecOutcome, PodExec};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{AttachParams, LogParams};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of a command's output kept, per stream: its end.
const MAX_OUTPUT: usize = 16 << 10;

/// Reads a stream to its end, keeping its last [`MAX_OUTPUT`] bytes.
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buffer = vec![0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > 2 * MAX_OUTPUT {
            kept.drain(..kept.len() - MAX_OUTPUT);
        }
    }
    if kept.len() > MAX_OUTPUT {
        kept.drain(..kept.len() - MAX_OUTPUT);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[async_trait]
impl PodExec for KubeCluster {
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut params = AttachParams::default()
            .stdout(true)
            .stderr(true)
            .stdin(false);
        if let Some(container) = container {
            params = params.container(container);
        }
        let what = format!("exec in pod {namespace}/{pod}");
        let run = async {
            let mut process = api
                .exec(pod, command.to_vec(), &params)
                .await
                .map_err(|e| convert(&what, e))?;
            let status = process.take_status();
            let (stdout, stderr) = tokio::join!(tail(process.stdout()), tail(process.stderr()));
            let status = match status {
                Some(status) => status.await,
                None => None,
            };
            process
                .join()
                .await
                .map_err(|e| ClusterError::Api(format!("{what}: {e}")))?;
            let success = status
                .as_ref()
                .is_some_and(|s| s.status.as_deref() == Some("Success"));
            let message = status
                .and_then(|s| s.message)
                .unwrap_or_else(|| match success {
                    true => String::new(),
                    false => "the command's end was not reported".into(),
                });
            Ok(ExecOutcome {
                success,
                message,
                stdout,
                stderr,
            })
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| ClusterError::Timeout {
                what: format!("{what}: {}", command.join(" ")),
                after: timeout,
            })?
    }

    async fn container_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<String, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_owned()),
            ..LogParams::default()
        };
        api.logs(pod, &params)
            .await
            .map_err(|e| convert(&format!("log of {namespace}/{pod} {container}"), e))
    }
}
