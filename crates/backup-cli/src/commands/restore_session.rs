//! `kbackup restoresession create|wait`: a restore asked of the operator (a RestoreSession)
//! and followed to its end; the components as a table, or the whole status as JSON or YAML.

use crate::cli::{ExistingArg, RestoreSessionArgs, RestoreTaskArg};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{OutputFormat, Tabular, emit, write_stdout};
use anyhow::anyhow;
use backup_api::{
    ExistingObjects, ManifestOptions, RestoreDataSource, RestorePhase, RestoreSessionSpec,
    RestoreSessionStatus, RestoreTask, TypedObjectRef,
};
use backup_usecases::restores::data_store::{data_store_task, purge_warning};
use backup_usecases::restores::request::{
    RestoreRequestError, create_restore_session, follow_restore_session,
};
use serde::Serialize;
use std::time::Duration;

/// How often a followed restore is read.
const POLL: Duration = Duration::from_secs(2);

impl From<RestoreRequestError> for CliError {
    fn from(error: RestoreRequestError) -> Self {
        match error {
            RestoreRequestError::Cluster(error) => error.into(),
            other => CliError::user(other),
        }
    }
}

/// One component of a restore.
#[derive(Serialize)]
struct ComponentRow {
    component: String,
    phase: String,
    duration: String,
    error: String,
}

impl Tabular for ComponentRow {
    fn headers() -> Vec<&'static str> {
        vec!["COMPONENT", "PHASE", "DURATION", "ERROR"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.component.clone(),
            self.phase.clone(),
            self.duration.clone(),
            self.error.clone(),
        ]
    }
}

/// Creates the RestoreSession; with `--wait`, follows it.
pub async fn create(context: &Context, args: RestoreSessionArgs) -> CliResult {
    let spec = spec(&args)?;
    let cluster = backup_k8s::KubeCluster::connect(&context.kube).await?;
    let namespace = context.namespace_in(&cluster);
    if let Some(task) = data_store_task(&spec.tasks) {
        eprintln!(
            "WARNING: this restore {} in namespace {namespace}.",
            purge_warning(task)
        );
        context.confirm("Do you want to continue?")?;
    }
    create_restore_session(&cluster, &namespace, &args.name, spec).await?;
    context.info(&format!(
        "RestoreSession {namespace}/{} created; the operator runs it",
        args.name
    ));
    if !args.wait {
        return Ok(Exit::Success);
    }
    follow(context, &cluster, &namespace, &args.name, args.timeout).await
}

/// Follows an existing RestoreSession.
pub async fn wait(context: &Context, name: &str, timeout: Duration) -> CliResult {
    let cluster = backup_k8s::KubeCluster::connect(&context.kube).await?;
    let namespace = context.namespace_in(&cluster);
    follow(context, &cluster, &namespace, name, timeout).await
}

/// Follows the restore, saying each change of phase on stderr; shows its end, and exits by it.
async fn follow(
    context: &Context,
    cluster: &backup_k8s::KubeCluster,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> CliResult {
    let status = follow_restore_session(cluster, namespace, name, POLL, timeout, |status| {
        let phase = status
            .phase
            .map_or("Pending".to_owned(), |p| format!("{p:?}"));
        let done = status
            .components
            .values()
            .filter(|c| c.phase != "Pending")
            .count();
        context.info(&format!(
            "RestoreSession {name}: {phase}, {done} of {} component(s) done",
            status.components.len()
        ));
    })
    .await?;
    render(context, &status)?;
    let failure = status
        .conditions
        .iter()
        .rev()
        .find(|c| c.type_ == "RestoreFailed" || c.reason == "ResourceValidationFailed")
        .map_or_else(String::new, |c| format!(": {}", c.message));
    match status.phase {
        Some(RestorePhase::Succeeded) => Ok(Exit::Success),
        Some(RestorePhase::Failed)
            if status.components.values().any(|c| c.phase == "Succeeded") =>
        {
            Err(CliError {
                exit: Exit::Partial,
                error: anyhow!("RestoreSession {name} failed{failure}"),
            })
        }
        phase => Err(CliError::user(anyhow!(
            "RestoreSession {name} is {}{failure}",
            phase.map_or("Pending".to_owned(), |p| format!("{p:?}"))
        ))),
    }
}

/// The components as a table, or the status as JSON or YAML.
fn render(context: &Context, status: &RestoreSessionStatus) -> Result<(), CliError> {
    match context.output {
        OutputFormat::Table => {
            let rows: Vec<ComponentRow> = status
                .components
                .iter()
                .map(|(name, c)| ComponentRow {
                    component: name.clone(),
                    phase: c.phase.clone(),
                    duration: c.duration.clone().unwrap_or_default(),
                    error: c.error.clone().unwrap_or_default(),
                })
                .collect();
            emit(context.output, &rows)?;
        }
        OutputFormat::Yaml => {
            let text = serde_saphyr::to_string(status).map_err(|e| CliError::user(anyhow!(e)))?;
            write_stdout(text.as_bytes())?;
        }
        _ => {
            let text =
                serde_json::to_string_pretty(status).map_err(|e| CliError::user(anyhow!(e)))?;
            write_stdout(format!("{text}\n").as_bytes())?;
        }
    }
    Ok(())
}

/// The spec the flags ask for.
fn spec(args: &RestoreSessionArgs) -> Result<RestoreSessionSpec, CliError> {
    let (kind, name) = args
        .target
        .split_once('/')
        .filter(|(_, name)| !name.is_empty())
        .ok_or_else(|| {
            CliError::user(anyhow!(
                "--target {} is not KIND/NAME (namespace/apps, statefulset/db)",
                args.target
            ))
        })?;
    let (api_group, kind) = match kind.to_lowercase().as_str() {
        "namespace" | "ns" => ("", "Namespace"),
        "statefulset" | "sts" => ("apps", "StatefulSet"),
        "deployment" | "deploy" => ("apps", "Deployment"),
        other => {
            return Err(CliError::user(anyhow!(
                "--target {other}/...: a restore's target is a namespace, a statefulset or a deployment"
            )));
        }
    };
    let tasks: Vec<RestoreTask> = args
        .tasks
        .iter()
        .map(|t| match t {
            RestoreTaskArg::ManifestRestore => RestoreTask::ManifestRestore,
            RestoreTaskArg::VolumeRestore => RestoreTask::VolumeRestore,
            RestoreTaskArg::StackgraphRestore => RestoreTask::StackgraphRestore,
            RestoreTaskArg::SettingsRestore => RestoreTask::SettingsRestore,
            RestoreTaskArg::VictoriaMetricsRestore => RestoreTask::VictoriaMetricsRestore,
            RestoreTaskArg::ElasticsearchRestore => RestoreTask::ElasticsearchRestore,
        })
        .collect();
    // A data store's `latest` is its newest archive, found without a repository.
    let data_store = tasks.iter().any(|t| t.is_data_store());
    if args.snapshot == "latest" && args.repository.is_none() && !data_store {
        return Err(CliError::user(anyhow!(
            "--snapshot latest needs --repository (or name a Snapshot object)"
        )));
    }
    Ok(RestoreSessionSpec {
        target: TypedObjectRef {
            api_group: api_group.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: None,
        },
        data_source: RestoreDataSource {
            namespace: args.source_namespace.clone(),
            repository: args.repository.clone(),
            snapshot: args.snapshot.clone(),
            components: args.components.clone(),
            encryption_secret: None,
        },
        tasks,
        timeout: args.restore_timeout.clone(),
        manifest_options: ManifestOptions {
            restore_namespace: args.restore_namespace.clone(),
            include_resources: args.include_resources.clone(),
            exclude_resources: args.exclude_resources.clone(),
            label_selector: args.selector.clone(),
            existing: match args.existing {
                ExistingArg::Skip => ExistingObjects::Skip,
                ExistingArg::Update => ExistingObjects::Update,
                ExistingArg::Fail => ExistingObjects::Fail,
            },
        },
        hooks: Default::default(),
        verify: args.verify,
        params: args.params.iter().cloned().collect(),
    })
}
