//! `kbackup trigger backupconfiguration NAME`: a BackupSession made now, for the operator.

use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_usecases::trigger::{TriggerError, trigger_session};
use serde::Serialize;

impl From<TriggerError> for CliError {
    fn from(error: TriggerError) -> Self {
        match error {
            TriggerError::Cluster(error) => error.into(),
            other => CliError::user(other),
        }
    }
}

/// The session made.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Triggered {
    namespace: String,
    backup_session: String,
    invoker: String,
}

impl Tabular for Triggered {
    fn headers() -> Vec<&'static str> {
        vec!["NAMESPACE", "BACKUPSESSION", "INVOKER"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.namespace.clone(),
            self.backup_session.clone(),
            self.invoker.clone(),
        ]
    }
}

/// Creates the session; prints its name.
pub async fn backup_configuration(
    context: &Context,
    name: &str,
    session: Option<&str>,
) -> CliResult {
    let cluster = backup_k8s::KubeCluster::connect(&context.kube).await?;
    let namespace = context.namespace_in(&cluster);
    let made = trigger_session(&cluster, &namespace, name, session).await?;
    context.info(&format!(
        "BackupSession {namespace}/{made} created; `kubectl get backupsession {made} -n {namespace}` follows it"
    ));
    emit(
        context.output,
        &[Triggered {
            namespace,
            backup_session: made,
            invoker: format!("BackupConfiguration/{name}"),
        }],
    )?;
    Ok(Exit::Success)
}
