use crate::error::connection;
use backup_core::ClusterError;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

/// Which cluster to talk to.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Kubeconfig file; default: `$KUBECONFIG`, `~/.kube/config`, or the in-cluster account.
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; default: its current context.
    pub context: Option<String>,
}

/// A Kubernetes cluster reached through kube.
#[derive(Clone)]
pub struct KubeCluster {
    pub(crate) client: Client,
    default_namespace: String,
    /// Resource types resolved so far (`apiVersion/kind`), shared by clones: one discovery
    /// call per type instead of one per object.
    pub(crate) kinds: crate::resources::KindCache,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KubeCluster(namespace {})", self.default_namespace)
    }
}

impl KubeCluster {
    /// Connects (no request is sent until the first call).
    pub async fn connect(options: &ConnectOptions) -> Result<Self, ClusterError> {
        let kube_options = KubeConfigOptions {
            context: options.context.clone(),
            ..Default::default()
        };
        let config = match &options.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    ClusterError::Connection(format!(
                        "cannot read kubeconfig {}: {e}",
                        path.display()
                    ))
                })?;
                Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                    .await
                    .map_err(connection)?
            }
            None if options.context.is_some() => Config::from_kubeconfig(&kube_options)
                .await
                .map_err(connection)?,
            None => Config::infer().await.map_err(connection)?,
        };
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(connection)?;
        Ok(Self {
            client,
            default_namespace,
            kinds: Default::default(),
        })
    }

    /// The client, for a front-end's own watches (the operator's controllers).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The namespace of the kubeconfig context (or `default`).
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }
}
