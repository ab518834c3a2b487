//! Embedding kbackup's use cases without its CLI: back up one namespace's manifests into a
//! new repository, then restore them into another namespace of the same cluster.
//!
//! ```sh
//! source .testenv/env.sh   # or any KUBECONFIG
//! cargo run -p kbackup-examples --example cluster_clone -- shop shop-copy /tmp/shop-repository
//! ```
//! The repository directory is created when missing and must not hold a repository yet; its
//! password here is fixed, which a real program would take from a secret.

use anyhow::{Context, bail};
use backup_core::progress::NoProgress;
use backup_core::resources::{Cleaning, NamespaceMapping, ResourceFilter};
use backup_core::{RepositoryLocation, RestoreEngine};
use backup_k8s::cluster_resources::RestoreOptions;
use backup_k8s::{ConnectOptions, KubeCluster};
use backup_repository::{InitOptions, Repository};
use backup_storage::StorageOptions;
use backup_usecases::cluster::{BackupOptions, ManifestRestore, backup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [namespace, target, directory] = args.as_slice() else {
        bail!("usage: cluster_clone NAMESPACE TARGET_NAMESPACE REPOSITORY_DIRECTORY");
    };
    std::fs::create_dir_all(directory)?;
    let location = RepositoryLocation::parse(&format!("file://{directory}"))?;
    let storage = backup_storage::open(&location, &StorageOptions::default()).await?;
    let repository = Repository::init(storage, b"example password", InitOptions::default())
        .await
        .context("creating the repository")?;
    let cluster = KubeCluster::connect(&ConnectOptions::default()).await?;

    let taken = backup(
        &repository,
        &cluster,
        BackupOptions {
            filter: ResourceFilter {
                include_namespaces: vec![namespace.clone()],
                ..ResourceFilter::default()
            },
            cleaning: Cleaning::default(),
            output_dir: None,
            concurrency: 8,
            marks: Default::default(),
        },
        &NoProgress,
    )
    .await?;
    println!(
        "snapshot {}: {} objects of {namespace} ({:?})",
        taken.id,
        taken.objects(),
        taken.phase
    );

    let snapshots = repository.snapshots().await?;
    let file = snapshots
        .iter()
        .find(|f| f.snapshot.id == taken.id)
        .context("the new snapshot is not listed")?;
    let options = RestoreOptions {
        mapping: NamespaceMapping::parse(&[format!("{namespace}:{target}")])
            .map_err(anyhow::Error::msg)?,
        ..RestoreOptions::default()
    };
    // The restore is an engine like every other kbackup restore: plan, then start the plan
    // as it was shown (the cluster restore writes the objects inside `start`).
    let engine = ManifestRestore::new(&repository, file, &cluster);
    let plan = engine.plan(&options).await?;
    println!("plan: {} objects in {} waves", plan.len(), plan.waves());
    let outcome = engine.start(&plan, chrono::Utc::now(), &NoProgress).await?;
    let totals = outcome.totals();
    println!(
        "restored into {target}: {} created, {} unchanged, {} skipped, {} failed",
        totals.created, totals.unchanged, totals.skipped, totals.failed
    );
    for issue in &outcome.report.issues {
        eprintln!("{:?}: {}: {}", issue.severity, issue.item, issue.message);
    }
    if totals.failed > 0 {
        bail!("{} object(s) failed", totals.failed);
    }
    Ok(())
}
