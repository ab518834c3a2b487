//! `kbackup-operator`: the controllers that keep kbackup.io objects as declared. Each
//! reconcile is one call into the use-case library (`backup_usecases::sessions`); this
//! binary only watches, elects a leader, serves metrics and health, and logs as JSON.

mod controllers;
mod health;
mod leadership;
mod metrics;

use anyhow::{Context as _, Result};
use backup_usecases::sessions::reconcile::{JobPlacement, OperatorSettings};
use clap::Parser;
use std::net::SocketAddr;
use std::sync::Arc;

/// The kbackup operator.
#[derive(Debug, Parser)]
#[command(name = "kbackup-operator", version)]
struct Args {
    /// The kbackup image its CronJobs, session Jobs and volume movers run.
    #[arg(long, env = "KBACKUP_IMAGE",
          default_value = concat!("localhost/kbackup:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "KBACKUP_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: SocketAddr,
    /// Only one replica works at a time: the holder of a Lease.
    #[arg(long, env = "KBACKUP_LEADER_ELECTION", default_value_t = true,
          action = clap::ArgAction::Set)]
    leader_election: bool,
    /// The namespace of the Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "kbackup-system")]
    lease_namespace: String,
    /// This replica's name in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Only watch these namespaces (default: all).
    #[arg(long, env = "KBACKUP_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// A label its Jobs' nodes must have (`KEY=VALUE`; repeatable).
    #[arg(long = "job-node-selector", env = "KBACKUP_JOB_NODE_SELECTOR", value_delimiter = ',',
          value_parser = key_value)]
    job_node_selector: Vec<(String, String)>,
    /// A taint key its Jobs tolerate (repeatable).
    #[arg(
        long = "job-toleration",
        env = "KBACKUP_JOB_TOLERATIONS",
        value_delimiter = ','
    )]
    job_toleration: Vec<String>,
    /// Log filter (`info`, `kbackup=debug,kube=info`).
    #[arg(long, env = "KBACKUP_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log_level))
        .with_writer(std::io::stderr)
        .init();
    let cluster = backup_k8s::KubeCluster::connect(&backup_k8s::ConnectOptions::default())
        .await
        .context("connecting to the cluster")?;
    let metrics = Arc::new(metrics::Metrics::new());
    let ready = health::Readiness::default();
    let server = health::serve(args.metrics_address, metrics.clone(), ready.clone()).await?;
    tracing::info!(address = %args.metrics_address, image = %args.image, "kbackup-operator started");
    // Ready once connected and serving, leading or standing by: a replica that waits for
    // the Lease must count as ready, or a rolling update never replaces the one holding it.
    ready.set(true);
    let shutdown = shutdown_signal();
    let leader = match args.leader_election {
        true => {
            let identity = args.identity.clone().unwrap_or_else(default_identity);
            Some(leadership::acquire(cluster.client(), &args.lease_namespace, &identity).await?)
        }
        false => None,
    };
    let settings = OperatorSettings {
        image: args.image,
        placement: JobPlacement {
            node_selector: args.job_node_selector.into_iter().collect(),
            tolerations: args.job_toleration,
        },
        http: Some(Arc::new(
            backup_http::ReqwestCaller::new()
                .map_err(|e| anyhow::anyhow!("the HTTP client of hooks: {e}"))?,
        )),
    };
    let context = Arc::new(controllers::Context::new(cluster, settings, metrics));
    let lost = async {
        match &leader {
            Some(leader) => leader.lost().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = controllers::run(context, &args.watch_namespaces, shutdown) => {
            tracing::info!("controllers stopped");
        }
        () = lost => {
            tracing::error!("leadership lost: stopping so another replica takes over");
            std::process::exit(1);
        }
    }
    if let Some(leader) = leader {
        leader.release().await;
    }
    server.abort();
    Ok(())
}

/// `KEY=VALUE`.
fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

/// This process's name when the pod's is not given.
fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "kbackup-operator".into());
    format!("{host}-{}", std::process::id())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
