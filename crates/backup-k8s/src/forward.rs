//! Port-forwarding a local port to a Service (through its first Running pod).

use crate::KubeCluster;
use crate::error::convert;
use crate::workloads::selector_string;
use async_trait::async_trait;
use backup_core::ClusterError;
use backup_core::cluster::{Forward, PortForwarder};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A forward that lives until dropped.
struct ServiceForward {
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl Forward for ServiceForward {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for ServiceForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The container port a Service port leads to on `pod`.
fn target_port(service: &Service, port: u16, pod: &Pod) -> Result<u16, ClusterError> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let service_port = ports
        .iter()
        .find(|p| p.port == i32::from(port))
        .ok_or_else(|| {
            let known: Vec<String> = ports.iter().map(|p| p.port.to_string()).collect();
            ClusterError::NotFound(format!(
                "port {port} on the Service (it has {})",
                known.join(", ")
            ))
        })?;
    match &service_port.target_port {
        None => Ok(port),
        Some(IntOrString::Int(n)) => {
            u16::try_from(*n).map_err(|_| ClusterError::Invalid(format!("target port {n}")))
        }
        Some(IntOrString::String(name)) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| ClusterError::NotFound(format!("container port named '{name}'"))),
    }
}

/// Relays one local connection to the pod's port until the local side ends. (A remote close
/// is not seen through the port-forward stream, so the local client decides when it is over.)
async fn forward_connection(pods: Api<Pod>, pod: String, remote: u16, connection: TcpStream) {
    let mut forwarder = match pods.portforward(&pod, &[remote]).await {
        Ok(forwarder) => forwarder,
        Err(e) => return tracing::warn!("port-forward to pod {pod}: {e}"),
    };
    let Some(upstream) = forwarder.take_stream(remote) else {
        return;
    };
    let (mut local_read, mut local_write) = connection.into_split();
    let (mut up_read, mut up_write) = tokio::io::split(upstream);
    tokio::select! {
        _ = tokio::io::copy(&mut local_read, &mut up_write) => {}
        _ = tokio::io::copy(&mut up_read, &mut local_write) => {}
    }
    forwarder.abort();
}

#[async_trait]
impl PortForwarder for KubeCluster {
    async fn forward_service(
        &self,
        namespace: &str,
        service: &str,
        port: u16,
    ) -> Result<Box<dyn Forward>, ClusterError> {
        let what = format!("Service {namespace}/{service}");
        let services: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let svc = services.get(service).await.map_err(|e| convert(&what, e))?;
        let selector = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        if selector.is_empty() {
            return Err(ClusterError::Invalid(format!(
                "{what} has no pod selector to forward to"
            )));
        }
        let selector = selector_string(&LabelSelector {
            match_labels: Some(selector),
            match_expressions: None,
        });
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| convert(&what, e))?;
        let pod = list
            .items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .ok_or_else(|| ClusterError::NotFound(format!("a Running pod behind {what}")))?;
        let remote = target_port(&svc, port, &pod)?;
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ClusterError::Connection(format!("binding a local port: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ClusterError::Connection(e.to_string()))?;
        tracing::debug!(%local, pod = %pod_name, remote, "port-forward to {what}");
        let task = tokio::spawn(async move {
            // Connections belong to this task: dropping the forward aborts them all.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((connection, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                connections.spawn(forward_connection(
                    pods.clone(),
                    pod_name.clone(),
                    remote,
                    connection,
                ));
            }
        });
        Ok(Box::new(ServiceForward { local, task }))
    }
}
