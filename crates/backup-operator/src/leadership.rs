//! Leader election through a Lease (`kbackup-operator` in the operator's namespace): one
//! replica works, the others wait; one that loses the Lease stops.

use anyhow::{Context as _, Result};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch::Receiver;
use tokio::task::JoinHandle;

/// The Lease's name.
const LEASE: &str = "kbackup-operator";
/// How long a Lease holds without renewal, in seconds.
const LEASE_SECONDS: u64 = 15;

/// The Lease held.
pub struct Leadership {
    receiver: Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

/// Waits until this replica holds the Lease.
pub async fn acquire(client: kube::Client, namespace: &str, identity: &str) -> Result<Leadership> {
    let manager = LeaseManagerBuilder::new(client, LEASE)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(5)
        .build()
        .await
        .with_context(|| format!("using Lease {namespace}/{LEASE}"))?;
    let (mut receiver, task) = manager.watch().await;
    tracing::info!(lease = LEASE, %namespace, %identity, "waiting for leadership");
    while !*receiver.borrow_and_update() {
        receiver
            .changed()
            .await
            .context("the Lease watcher stopped")?;
    }
    tracing::info!(lease = LEASE, %identity, "leading");
    Ok(Leadership { receiver, task })
}

impl Leadership {
    /// Resolves when the Lease is lost.
    pub async fn lost(&self) {
        let mut receiver = self.receiver.clone();
        while *receiver.borrow_and_update() {
            if receiver.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the Lease up, so another replica takes over at once.
    pub async fn release(self) {
        drop(self.receiver);
        match self.task.await {
            Ok(Ok(manager)) => drop(manager),
            Ok(Err(error)) => tracing::warn!(%error, "releasing the Lease"),
            Err(error) => tracing::warn!(%error, "releasing the Lease"),
        }
    }
}
