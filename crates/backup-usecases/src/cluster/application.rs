//! A whole application restored from a snapshot of its manifests and volumes: its
//! namespaces and claims first (new, unbound claims), then each claim the restore created
//! filled with its volume's data by a mover pod, and only then the workloads and everything
//! else, so that they start on their data.

use super::restore::{RestorePlanError, plan_restore};
use crate::volumes::backup::VolumeError;
use crate::volumes::manifests::MoverSettings;
use crate::volumes::restore::{ClaimRestoreReport, ClaimRestoreRequest, restore_into_claim};
use backup_core::ClusterError;
use backup_core::cluster::{JobControl, ResourceStore};
use backup_core::model::PlannedAction;
use backup_core::resources::ObjectKey;
use backup_core::{Phase, Progress};
use backup_k8s::cluster_resources::{
    ClusterRestore, KindCounts, PlanCounts, PlannedObject, RestoreOptions, RestoreOutcome,
};
use backup_repository::{Repository, SnapshotFile};
use futures::StreamExt;
use std::time::Instant;

/// The resources restored before the volumes are filled.
const FIRST: [&str; 2] = ["namespaces", "persistentvolumeclaims"];

/// The volumes the claims were bound to: never restored with the volumes (the claims are
/// restored unbound, new volumes are provisioned and filled; an old PersistentVolume would
/// point at storage that is gone, or be bound to nothing).
const NEVER: &str = "persistentvolumes";

/// A claim to fill from a volume component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFill {
    /// The component.
    pub component: String,
    /// The claim's namespace (mapped).
    pub namespace: String,
    /// The claim.
    pub claim: String,
    /// Why it is not filled (the claim exists: its data is left alone), when it is not.
    pub left_alone: Option<String>,
}

/// The plan of an application restore: the namespaces and claims, the claims to fill, and
/// the rest.
pub struct ApplicationPlan<'c, C: ResourceStore + ?Sized> {
    /// Namespaces and claims (claims unbound).
    pub claims: ClusterRestore<'c, C>,
    /// The claims and the components that fill them.
    pub fills: Vec<VolumeFill>,
    /// Everything else.
    pub rest: ClusterRestore<'c, C>,
}

impl<C: ResourceStore + ?Sized> ApplicationPlan<'_, C> {
    /// Objects of both passes.
    pub fn len(&self) -> usize {
        self.claims.len() + self.rest.len()
    }

    /// Whether no object is restored.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.rest.is_empty()
    }

    /// Waves of both passes.
    pub fn waves(&self) -> usize {
        self.claims.waves() + self.rest.waves()
    }

    /// How many objects of both passes go which way.
    pub fn counts(&self) -> PlanCounts {
        let (a, b) = (self.claims.counts(), self.rest.counts());
        PlanCounts {
            create: a.create + b.create,
            update: a.update + b.update,
            unchanged: a.unchanged + b.unchanged,
            skip: a.skip + b.skip,
            differ: a.differ + b.differ,
            conflict: a.conflict + b.conflict,
            refused_differing: a.refused_differing + b.refused_differing,
        }
    }

    /// The objects as shown: the claims' pass, then the rest's.
    pub fn objects(&self) -> impl Iterator<Item = Result<PlannedObject, ClusterError>> + '_ {
        self.claims.objects().chain(self.rest.objects())
    }
}

/// What an application restore did.
#[derive(Debug)]
pub struct ApplicationOutcome {
    /// The objects restored (both passes).
    pub objects: RestoreOutcome,
    /// Each claim filled (or not).
    pub volumes: Vec<ClaimRestoreReport>,
    /// Whether the rest was restored (not when a claim could not be filled: its workload
    /// would start without its data).
    pub rest_restored: bool,
}

impl ApplicationOutcome {
    /// Succeeded, PartiallyFailed or Failed, by the objects' errors and the volumes.
    pub fn phase(&self) -> Phase {
        let volumes = Phase::combine(self.volumes.iter().map(|v| v.phase));
        match (self.objects.report.errors(), volumes, self.rest_restored) {
            (0, Phase::Succeeded, true) => Phase::Succeeded,
            _ => Phase::PartiallyFailed,
        }
    }
}

/// Plans the restore of an application: the namespaces and claims of the snapshot with the
/// user's filter and mapping (claims unbound), the volume components that fill the claims
/// this restore creates, and the rest.
pub async fn plan_application<'c, C: ResourceStore + ?Sized>(
    repository: &Repository,
    file: &SnapshotFile,
    cluster: &'c C,
    options: &RestoreOptions,
) -> Result<ApplicationPlan<'c, C>, RestorePlanError> {
    let implied: Vec<String> = FIRST
        .iter()
        .chain([&NEVER])
        .map(|r| (*r).to_owned())
        .collect();
    let mut first = options.clone();
    first.fresh_claims = true;
    first.filter.include_resources = FIRST.iter().map(|r| (*r).to_owned()).collect();
    first.implied_resources.clone_from(&implied);
    let claims = plan_restore(repository, file, cluster, first).await?;
    let mut rest = options.clone();
    rest.filter
        .exclude_resources
        .extend(implied.iter().cloned());
    rest.implied_resources = implied;
    let rest = plan_restore(repository, file, cluster, rest).await?;
    let mut created = Vec::new();
    for object in claims.objects() {
        let object = object?;
        if object.kind == "PersistentVolumeClaim" && object.action == PlannedAction::Create {
            created.push(object.object);
        }
    }
    let fills = file
        .snapshot
        .components
        .iter()
        .filter(|c| file.trees.iter().any(|t| t.name == c.name))
        .filter_map(|c| {
            let claim = c.claim.as_ref()?;
            let original = c.name.trim_start_matches('/').split('/').next()?;
            if !options.filter.selects_namespace(original) {
                return None;
            }
            let namespace = options.mapping.map(original).to_owned();
            let shown = ObjectKey {
                group: String::new(),
                kind: "PersistentVolumeClaim".into(),
                namespace: Some(namespace.clone()),
                name: claim.clone(),
            }
            .to_string();
            Some(VolumeFill {
                component: c.name.clone(),
                left_alone: (!created.contains(&shown))
                    .then(|| "the claim exists or is not restored: its data is left alone".into()),
                namespace,
                claim: claim.clone(),
            })
        })
        .collect();
    Ok(ApplicationPlan {
        claims,
        fills,
        rest,
    })
}

/// Runs an application restore: the namespaces and claims, then the fills (at most the
/// movers' concurrency at once), then, when every fill succeeded, the rest.
pub async fn restore_application<C: ResourceStore + JobControl + ?Sized>(
    plan: &ApplicationPlan<'_, C>,
    repository: &Repository,
    file: &SnapshotFile,
    cluster: &C,
    mover: &MoverSettings,
    progress: &dyn Progress,
) -> Result<ApplicationOutcome, VolumeError> {
    let started = Instant::now();
    let mut objects = plan.claims.execute(progress).await;
    let snapshot = file.snapshot.id.to_string();
    let fills: Vec<&VolumeFill> = plan
        .fills
        .iter()
        .filter(|f| f.left_alone.is_none())
        .collect();
    progress.start("filling claims", Some(fills.len() as u64));
    let volumes: Vec<Result<ClaimRestoreReport, VolumeError>> = futures::stream::iter(fills)
        .map(|fill| {
            let request = ClaimRestoreRequest {
                snapshot: snapshot.clone(),
                among: Default::default(),
                component: fill.component.clone(),
                namespace: fill.namespace.clone(),
                claim: fill.claim.clone(),
                overwrite: false,
                mover: mover.clone(),
            };
            async move {
                let done = restore_into_claim(cluster, repository, &request).await;
                progress.advance(1);
                done
            }
        })
        .buffered(mover.concurrency.max(1))
        .collect()
        .await;
    progress.finish();
    let volumes = volumes.into_iter().collect::<Result<Vec<_>, _>>()?;
    let filled = volumes.iter().all(|v| v.phase != Phase::Failed);
    if filled {
        let rest = plan.rest.execute(progress).await;
        merge(&mut objects, rest);
    }
    objects.duration = started.elapsed();
    Ok(ApplicationOutcome {
        objects,
        volumes,
        rest_restored: filled,
    })
}

/// Adds a second pass's outcome to the first's.
fn merge(into: &mut RestoreOutcome, other: RestoreOutcome) {
    for (kind, counts) in other.kinds {
        let total = into.kinds.entry(kind).or_default();
        *total = KindCounts {
            created: total.created + counts.created,
            updated: total.updated + counts.updated,
            unchanged: total.unchanged + counts.unchanged,
            skipped: total.skipped + counts.skipped,
            failed: total.failed + counts.failed,
        };
    }
    into.report.succeeded += other.report.succeeded;
    into.report.skipped += other.report.skipped;
    into.report.issues.extend(other.report.issues);
}
