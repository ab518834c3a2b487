//! Restoring collected objects: a plan diffed against the live cluster, then waves in
//! dependency order with readiness waits. Records wait in a temporary file while the restore
//! is planned and run, with the plan's longer notes; memory holds a few dozen bytes per
//! object (a slot, a 128-bit key, its dependencies as indices), so that 100,000 objects cost
//! a few megabytes.

mod checks;
mod execute;
mod fingerprint;
mod interned;
mod kept;
mod live;
mod planner;
mod slot;
mod spool;

pub use planner::RestorePlanner;

use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ResourceStore};
use backup_core::model::{PlannedAction, Report};
use backup_core::resources::{
    Cleaning, ManifestRecord, NamespaceMapping, ObjectKey, ResourceFilter, RestoreShape,
    clean_object, controller_of, kind_name, restore_skip_reason,
};
use fingerprint::{Fingerprint, Fingerprinter};
use serde::Serialize;
use serde_json::Value;
use slot::{Note, Slot};
use spool::Spool;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// What to do with an object that already exists and differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExistingPolicy {
    /// Leave it as it is (reported as skipped).
    Skip,
    /// Replace it with the backed-up object (fields added since the backup go too).
    Update,
    /// Report it as an error and leave it.
    Fail,
}

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// `--namespace-mapping`.
    pub mapping: NamespaceMapping,
    /// Restore-time selection (namespaces as they were backed up).
    pub filter: ResourceFilter,
    /// Existing objects that differ.
    pub existing: ExistingPolicy,
    /// Also restore `status` (when the backup kept it).
    pub restore_status: bool,
    /// Keep Services' node ports when namespaces are mapped (a clone beside the original
    /// drops them by default: they would collide with the original's).
    pub preserve_node_ports: bool,
    /// Objects applied at the same time.
    pub concurrency: usize,
    /// How long to wait for a CRD to be Established.
    pub ready_timeout: Duration,
    /// Restore PersistentVolumeClaims unbound (no `spec.volumeName`, no binding or
    /// selected-node annotations): new volumes are provisioned for them, to be filled with
    /// their backed-up data.
    pub fresh_claims: bool,
    /// API groups whose objects are never restored (a backup tool's records of its own runs,
    /// which would start again or point at data that is gone).
    pub skip_groups: Vec<String>,
    /// Resource names the caller put in the filter (not the user), which may name no type
    /// of the snapshot (a namespace's snapshot holds no Namespace object).
    pub implied_resources: Vec<String>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            mapping: NamespaceMapping::default(),
            filter: ResourceFilter::default(),
            existing: ExistingPolicy::Skip,
            restore_status: false,
            preserve_node_ports: false,
            concurrency: 16,
            ready_timeout: Duration::from_secs(60),
            fresh_claims: false,
            skip_groups: Vec::new(),
            implied_resources: Vec::new(),
        }
    }
}

/// One object of the plan, as shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedObject {
    /// `Kind[.group] namespace/name`, after mapping.
    pub object: String,
    /// `Kind[.group]`.
    pub kind: String,
    /// What will happen.
    pub action: PlannedAction,
    /// Why, or what differs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Its wave (0 first).
    pub wave: usize,
    /// It exists, differs, and the policy is `fail`; or it cannot be created as it was
    /// (node ports taken).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
    /// It exists and differs (worth a warning when it is left alone).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub differs: bool,
}

/// How many objects of a plan go which way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    /// To create.
    pub create: usize,
    /// Existing and differing, to replace.
    pub update: usize,
    /// Already as backed up.
    pub unchanged: usize,
    /// Left alone on purpose (to the cluster or a controller).
    pub skip: usize,
    /// Existing and differing, left alone by the policy.
    pub differ: usize,
    /// Cannot be restored as planned (see their reasons).
    pub conflict: usize,
    /// Of the conflicts, objects that exist and differ, refused by the policy `fail`.
    pub refused_differing: usize,
}

/// Objects of one kind by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// Created.
    pub created: u64,
    /// Updated.
    pub updated: u64,
    /// Already as backed up.
    pub unchanged: u64,
    /// Left alone on purpose.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOutcome {
    /// Per kind.
    pub kinds: BTreeMap<String, KindCounts>,
    /// Counts and every warning and error.
    pub report: Report,
    /// How long it took.
    #[serde(skip)]
    pub duration: Duration,
}

impl RestoreOutcome {
    /// Sums over the kinds.
    pub fn totals(&self) -> KindCounts {
        self.kinds
            .values()
            .fold(KindCounts::default(), |a, c| KindCounts {
                created: a.created + c.created,
                updated: a.updated + c.updated,
                unchanged: a.unchanged + c.unchanged,
                skipped: a.skipped + c.skipped,
                failed: a.failed + c.failed,
            })
    }
}

/// (`Kind[.group]`, namespace): where the live objects of a type are listed.
type Scope = (String, Option<String>);

/// A planned restore.
pub struct ClusterRestore<'a, C: ResourceStore + ?Sized> {
    cluster: &'a C,
    options: RestoreOptions,
    /// In restore order, wave after wave.
    slots: Vec<Slot>,
    waves: usize,
    types: Vec<ApiResourceType>,
    /// Scopes whose live objects could not be listed, with the reason.
    unreadable: HashMap<Scope, String>,
    fingerprints: Fingerprinter,
    /// The uids of the live objects that restored objects name as owners.
    live_uids: HashMap<Fingerprint, String>,
    /// The CRDs this restore brings, as (group, plural).
    crds: HashSet<(String, String)>,
    /// Objects named as owners (their uids are kept for their dependents).
    owners: HashSet<Fingerprint>,
    spool: Spool,
}

/// The object as compared: cleaned, in its restore shape, without kubectl's last-applied
/// configuration (a copy of the object, not the object), and owner references without uids
/// (they change with every restore).
fn comparable(
    object: &Value,
    record: &ManifestRecord,
    keep_status: bool,
    shape: RestoreShape,
) -> Value {
    let mut object = object.clone();
    clean_object(
        &mut object,
        Cleaning {
            keep_status,
            drop_last_applied: true,
        },
    );
    shape.apply(&record.group, &record.kind, &mut object);
    if let Some(owners) = object
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    {
        for owner in owners {
            if let Some(owner) = owner.as_object_mut() {
                owner.remove("uid");
            }
        }
    }
    object
}

impl<C: ResourceStore + ?Sized> ClusterRestore<'_, C> {
    /// Every object with its action, in restore order, read back from the restore's
    /// temporary file one at a time (as often as asked).
    pub fn objects(&self) -> impl Iterator<Item = Result<PlannedObject, ClusterError>> + '_ {
        self.slots.iter().map(|slot| self.planned(slot))
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No objects.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Number of waves.
    pub fn waves(&self) -> usize {
        self.waves
    }

    /// Objects by outcome.
    pub fn counts(&self) -> PlanCounts {
        let mut counts = PlanCounts::default();
        for slot in &self.slots {
            let count = match (slot.action, slot.conflict, slot.differs) {
                (_, true, _) => &mut counts.conflict,
                (PlannedAction::Skip, _, true) => &mut counts.differ,
                (PlannedAction::Create, ..) => &mut counts.create,
                (PlannedAction::Update, ..) => &mut counts.update,
                (PlannedAction::Unchanged, ..) => &mut counts.unchanged,
                _ => &mut counts.skip,
            };
            *count += 1;
            if slot.conflict && slot.differs {
                counts.refused_differing += 1;
            }
        }
        counts
    }

    /// `Kind[.group]` of a slot.
    fn kind_of(&self, slot: &Slot) -> String {
        let resource = &self.types[slot.resource as usize];
        kind_name(&resource.group, &resource.kind)
    }

    /// A slot as shown: its record read back, its note made into words.
    fn planned(&self, slot: &Slot) -> Result<PlannedObject, ClusterError> {
        let record = self.spool.read(slot.span)?;
        let reason = match slot.note {
            Note::None => String::new(),
            Note::LeftToCluster => restore_skip_reason(&record).unwrap_or_default().to_owned(),
            Note::LeftOut => format!("{} is never restored", record.group),
            Note::LeftToController => controller_of(&record)
                .map(|c| format!("recreated by its controller {} {}", c.kind, c.name))
                .unwrap_or_default(),
            Note::Differs(span) => {
                let what = format!("exists and differs at {}", self.spool.note(span)?);
                match self.options.existing {
                    ExistingPolicy::Update => what,
                    ExistingPolicy::Skip => format!("{what}; left as it is"),
                    ExistingPolicy::Fail => {
                        format!("{what}; refused by the existing-object policy")
                    }
                }
            }
            Note::Refused(span) => self.spool.note(span)?,
            Note::LiveUnknown => {
                let scope = (self.kind_of(slot), record.namespace.clone());
                format!(
                    "live state unknown: {}",
                    self.unreadable.get(&scope).map_or("", String::as_str)
                )
            }
            Note::LastWave => "last wave: an admission webhook goes after every object it \
                could intercept (its backend may not run yet)"
                .into(),
        };
        Ok(PlannedObject {
            object: ObjectKey::of(&record).to_string(),
            kind: self.kind_of(slot),
            action: slot.action,
            reason,
            wave: slot.wave as usize,
            conflict: slot.conflict,
            differs: slot.differs,
        })
    }
}

#[cfg(test)]
mod tests;
