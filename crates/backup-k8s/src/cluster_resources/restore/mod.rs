//! Restoring collected objects: a plan diffed against the live cluster, then waves in
//! dependency order with readiness waits. Records wait in a temporary file while the restore
//! is planned and run; memory holds only what the plan needs of each object (its key, its
//! dependencies until the waves are known, a few flags), about half a kilobyte each.

mod execute;
mod live;
mod spool;

use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ResourceStore, for_each_page};
use backup_core::model::{PlannedAction, Report};
use backup_core::resources::{
    Cleaning, ClusterScope, ManifestRecord, NamespaceMapping, ObjectKey, ResourceFilter,
    RestoreShape, clean_object, cluster_dependencies, controller_of, dependencies,
    is_admission_webhook, kind_name, node_ports, owner_key, restore_order, restore_skip_reason,
};
use serde::Serialize;
use serde_json::Value;
use spool::{Span, Spool, SpoolWriter};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
        }
    }
}

/// One object of the plan.
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
    /// It exists, differs, and the policy is `fail`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
    /// It exists and differs (worth a warning when it is left alone).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub differs: bool,
    #[serde(skip)]
    key: ObjectKey,
    #[serde(skip)]
    span: Span,
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

/// A planned restore.
pub struct ClusterRestore<'a, C: ResourceStore + ?Sized> {
    cluster: &'a C,
    options: RestoreOptions,
    objects: Vec<PlannedObject>,
    waves: usize,
    live_uids: HashMap<ObjectKey, String>,
    /// The CRDs this restore brings, as (group, plural).
    crds: HashSet<(String, String)>,
    /// Objects named as owners (their uids are kept for their dependents).
    owners: HashSet<ObjectKey>,
    spool: Spool,
}

fn type_of(record: &ManifestRecord) -> ApiResourceType {
    ApiResourceType {
        group: record.group.clone(),
        version: record.version.clone(),
        kind: record.kind.clone(),
        plural: record.resource.clone(),
        namespaced: record.namespace.is_some(),
        verbs: vec!["list".into()],
    }
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

/// What the plan keeps of one record (the record itself is in the spool).
struct Entry {
    /// The type (an index into the planner's types), for listing the live objects.
    resource: usize,
    /// A cluster-scoped object kept only if the namespaced objects need it: its key as
    /// backed up.
    needed_as: Option<ObjectKey>,
    controller: Option<ObjectKey>,
    skip: Option<&'static str>,
    node_ports: Vec<u16>,
    span: Span,
}

/// Takes the records of a snapshot one by one (into a temporary file), then plans.
pub struct RestorePlanner {
    options: RestoreOptions,
    shape: RestoreShape,
    spool: SpoolWriter,
    entries: Vec<Entry>,
    /// Each entry's key (after mapping) and what it depends on, for the order.
    items: Vec<(ObjectKey, Vec<ObjectKey>)>,
    /// The cluster-scoped objects the selected namespaced ones need.
    needs: BTreeSet<ObjectKey>,
    /// Every type in the snapshot (resource filters must name one), each once.
    types: Vec<ApiResourceType>,
    type_index: HashMap<ApiResourceType, usize>,
    crds: HashSet<(String, String)>,
    /// Objects other objects name as owners: their uids are needed when those are created.
    owners: HashSet<ObjectKey>,
}

impl RestorePlanner {
    /// A planner with an empty spool.
    pub fn new(options: RestoreOptions) -> Result<Self, ClusterError> {
        let shape = RestoreShape {
            drop_node_ports: !options.mapping.is_empty() && !options.preserve_node_ports,
        };
        Ok(Self {
            options,
            shape,
            spool: SpoolWriter::new()?,
            entries: Vec::new(),
            items: Vec::new(),
            needs: BTreeSet::new(),
            types: Vec::new(),
            type_index: HashMap::new(),
            crds: HashSet::new(),
            owners: HashSet::new(),
        })
    }

    /// Takes one record: restore-time filters, namespace mapping, restore shape; keeps what
    /// the plan needs of it and spools the rest.
    pub fn add(&mut self, mut record: ManifestRecord) -> Result<(), ClusterError> {
        let filter = &self.options.filter;
        let mut resource = type_of(&record);
        let type_index = match self.type_index.get(&resource) {
            Some(&i) => i,
            None => {
                self.types.push(resource.clone());
                self.type_index
                    .insert(resource.clone(), self.types.len() - 1);
                self.types.len() - 1
            }
        };
        resource.namespaced = true; // the cluster-scope rule is applied below
        if !filter.selects_type(&resource) {
            return Ok(());
        }
        let needed_as = match &record.namespace {
            Some(ns) if filter.selects_namespace(ns) => {
                self.needs.extend(cluster_dependencies(&record));
                None
            }
            Some(_) => return Ok(()),
            None => match filter.cluster_scope() {
                ClusterScope::All
                    if record.kind != "Namespace" || filter.selects_namespace(&record.name) =>
                {
                    None
                }
                ClusterScope::All | ClusterScope::None => return Ok(()),
                ClusterScope::Needed => Some(ObjectKey::of(&record)),
            },
        };
        self.options.mapping.apply(&mut record);
        self.shape
            .apply(&record.group, &record.kind, &mut record.object);
        if record.kind == "CustomResourceDefinition"
            && let (Some(group), Some(plural)) = (
                record.object["spec"]["group"].as_str(),
                record.object["spec"]["names"]["plural"].as_str(),
            )
        {
            self.crds.insert((group.to_owned(), plural.to_owned()));
        }
        let is_service = record.group.is_empty() && record.kind == "Service";
        if let Some(owners) = record.object["metadata"]["ownerReferences"].as_array() {
            let namespace = record.namespace.as_deref();
            self.owners
                .extend(owners.iter().filter_map(|o| owner_key(o, namespace)));
        }
        self.entries.push(Entry {
            resource: type_index,
            needed_as,
            controller: controller_of(&record),
            skip: restore_skip_reason(&record),
            node_ports: if is_service {
                node_ports(&record.object)
            } else {
                Vec::new()
            },
            span: self.spool.write(&record)?,
        });
        self.items
            .push((ObjectKey::of(&record), dependencies(&record)));
        Ok(())
    }

    /// Plans the restore of the records taken: objects left to controllers or the cluster,
    /// dependency waves, and each object compared with the live cluster (listed once per
    /// type and namespace). A resource filter naming no type of the snapshot is refused.
    pub async fn plan<C: ResourceStore + ?Sized>(
        self,
        cluster: &C,
    ) -> Result<ClusterRestore<'_, C>, ClusterError> {
        let Self {
            options,
            shape,
            spool,
            entries,
            items,
            needs,
            types,
            type_index: _,
            crds,
            owners,
        } = self;
        let unmatched = options.filter.unmatched_resources(&types);
        if !unmatched.is_empty() {
            return Err(ClusterError::Invalid(format!(
                "the resource filter names {}, which matches no resource type in the snapshot",
                unmatched.join(", ")
            )));
        }
        let spool = spool.finish()?;
        let (entries, items): (Vec<Entry>, Vec<_>) = entries
            .into_iter()
            .zip(items)
            .filter(|(e, _)| e.needed_as.as_ref().is_none_or(|k| needs.contains(k)))
            .unzip();
        let index: HashMap<&ObjectKey, usize> =
            items.iter().enumerate().map(|(i, (k, _))| (k, i)).collect();
        let skipped: Vec<Option<String>> = entries
            .iter()
            .map(|e| {
                e.skip.map(str::to_owned).or_else(|| {
                    e.controller
                        .as_ref()
                        .filter(|c| index.contains_key(c))
                        .map(|c| format!("recreated by its controller {} {}", c.kind, c.name))
                })
            })
            .collect();
        let order = restore_order(&items);
        let mut wave_of = vec![0; items.len()];
        for (w, wave) in order.waves.iter().enumerate() {
            for &i in wave {
                wave_of[i] = w;
            }
        }
        drop(index);
        let keys: Vec<ObjectKey> = items.into_iter().map(|(key, _)| key).collect();
        let live = live::compare(
            &types,
            cluster,
            &entries,
            &keys,
            &spool,
            options.restore_status,
            shape,
        )
        .await?;
        let mut ports_in_use = if entries.iter().any(|e| !e.node_ports.is_empty()) {
            node_ports_in_use(cluster).await?
        } else {
            None
        };
        let mut live_uids = HashMap::new();
        let mut objects = Vec::with_capacity(entries.len());
        for (i, (entry, key)) in entries.into_iter().zip(keys).enumerate() {
            let mut planned = PlannedObject {
                object: key.to_string(),
                kind: kind_name(&key.group, &key.kind),
                action: PlannedAction::Create,
                reason: String::new(),
                wave: wave_of[i],
                conflict: false,
                differs: false,
                key,
                span: entry.span,
            };
            if let Some(existing) = live.found.get(&i) {
                if let Some(uid) = &existing.uid
                    && owners.contains(&planned.key)
                {
                    live_uids.insert(planned.key.clone(), uid.clone());
                }
                if existing.differences.is_empty() {
                    planned.action = PlannedAction::Unchanged;
                } else {
                    planned.differs = true;
                    let what = format!("exists and differs at {}", existing.differences.join(", "));
                    (planned.action, planned.reason, planned.conflict) = match options.existing {
                        ExistingPolicy::Update => (PlannedAction::Update, what, false),
                        ExistingPolicy::Skip => (
                            PlannedAction::Skip,
                            format!("{what} (--existing update replaces it)"),
                            false,
                        ),
                        ExistingPolicy::Fail => (
                            PlannedAction::Skip,
                            format!("{what} (--existing fail)"),
                            true,
                        ),
                    };
                }
            } else if let Some(reason) = live
                .unreadable
                .get(&(planned.kind.clone(), planned.key.namespace.clone()))
            {
                planned.reason = format!("live state unknown: {reason}");
            }
            if planned.action == PlannedAction::Create {
                if let Some(taken) =
                    node_port_conflict(&planned, &entry.node_ports, &mut ports_in_use)
                {
                    planned.conflict = true;
                    planned.reason = taken;
                } else if is_admission_webhook(&planned.key) {
                    planned.reason = "last wave: an admission webhook goes after every object it \
                        could intercept (its backend may not run yet)"
                        .into();
                }
            }
            if let Some(reason) = &skipped[i] {
                planned.action = PlannedAction::Skip;
                planned.reason = reason.clone();
                planned.conflict = false;
                planned.differs = false;
            }
            objects.push(planned);
        }
        objects.sort_by_key(|o| o.wave);
        Ok(ClusterRestore {
            cluster,
            options,
            waves: order.waves.len(),
            objects,
            live_uids,
            crds,
            owners,
            spool,
        })
    }
}

/// The node ports the cluster's Services hold (port to `namespace/name`); `None` when they
/// cannot be read.
async fn node_ports_in_use<C: ResourceStore + ?Sized>(
    cluster: &C,
) -> Result<Option<HashMap<u16, String>>, ClusterError> {
    let services = ApiResourceType {
        group: String::new(),
        version: "v1".into(),
        kind: "Service".into(),
        plural: "services".into(),
        namespaced: true,
        verbs: vec!["list".into()],
    };
    let mut in_use = HashMap::new();
    let listed = for_each_page(cluster, &services, None, None, 500, |page| {
        for object in page {
            let name = format!(
                "{}/{}",
                object["metadata"]["namespace"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            );
            for port in node_ports(&object) {
                in_use.insert(port, name.clone());
            }
        }
    })
    .await;
    match listed {
        Ok(()) => Ok(Some(in_use)),
        Err(ClusterError::Forbidden(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Why a Service to be created cannot have its node ports (held by another Service, or by
/// one created earlier in this restore); claims them otherwise.
fn node_port_conflict(
    planned: &PlannedObject,
    ports: &[u16],
    in_use: &mut Option<HashMap<u16, String>>,
) -> Option<String> {
    let in_use = in_use.as_mut()?;
    let taken: Vec<String> = ports
        .iter()
        .filter_map(|p| {
            in_use
                .get(p)
                .map(|by| format!("{p} (held by Service {by})"))
        })
        .collect();
    if !taken.is_empty() {
        return Some(format!(
            "node port {} already allocated: the Service cannot be created with it",
            taken.join(", ")
        ));
    }
    let name = format!(
        "{}/{}",
        planned.key.namespace.as_deref().unwrap_or_default(),
        planned.key.name
    );
    for port in ports {
        in_use.insert(*port, name.clone());
    }
    None
}

impl<C: ResourceStore + ?Sized> ClusterRestore<'_, C> {
    /// Every object with its action, in wave order.
    pub fn objects(&self) -> &[PlannedObject] {
        &self.objects
    }

    /// Number of waves.
    pub fn waves(&self) -> usize {
        self.waves
    }
}
