//! Planning a restore: records taken one by one into the spool, then objects left to the
//! cluster or to controllers, dependency waves, each object compared with the live cluster,
//! node ports checked.

use super::fingerprint::{Fingerprint, Fingerprinter};
use super::slot::{Note, Slot};
use super::spool::{Spool, SpoolWriter};
use super::{ClusterRestore, RestoreOptions, live};
use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ResourceStore, for_each_page};
use backup_core::model::PlannedAction;
use backup_core::resources::{
    ClusterScope, DependencyGraph, ManifestRecord, RestoreShape, cluster_dependencies,
    controller_of, dependencies, is_admission_webhook, kind_name, node_ports, owner_key,
    restore_order, restore_skip_reason,
};
use std::collections::{HashMap, HashSet};

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

/// Strings met again and again (types, namespaces), each kept once and named by an index.
struct Interned<T> {
    values: Vec<T>,
    index: HashMap<T, u32>,
}

impl<T: Clone + Eq + std::hash::Hash> Interned<T> {
    fn new() -> Self {
        Self {
            values: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn index_of(&mut self, value: &T) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = u32::try_from(self.values.len()).expect("fewer than 4 billion distinct values");
        self.values.push(value.clone());
        self.index.insert(value.clone(), i);
        i
    }
}

/// Takes the records of a snapshot one by one (into a temporary file), then plans.
pub struct RestorePlanner {
    options: RestoreOptions,
    shape: RestoreShape,
    spool: SpoolWriter,
    fingerprints: Fingerprinter,
    slots: Vec<Slot>,
    /// Each slot's key, after mapping.
    keys: Vec<Fingerprint>,
    /// The slots' dependencies one after another; slot `i`'s end at `dependency_ends[i]`.
    dependencies: Vec<Fingerprint>,
    dependency_ends: Vec<usize>,
    /// Cluster-scoped objects kept only if the namespaced objects need them: (slot, key as
    /// backed up).
    conditional: Vec<(usize, Fingerprint)>,
    /// Objects with a controller: (slot, the controller's key).
    controlled: Vec<(usize, Fingerprint)>,
    /// The cluster-scoped objects the selected namespaced ones need (keys as backed up).
    needs: HashSet<Fingerprint>,
    /// Every type in the snapshot (resource filters must name one).
    types: Interned<ApiResourceType>,
    namespaces: Interned<String>,
    crds: HashSet<(String, String)>,
    /// Objects other objects name as owners: their uids are needed when those are created.
    owners: HashSet<Fingerprint>,
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
            fingerprints: Fingerprinter::new(),
            slots: Vec::new(),
            keys: Vec::new(),
            dependencies: Vec::new(),
            dependency_ends: Vec::new(),
            conditional: Vec::new(),
            controlled: Vec::new(),
            needs: HashSet::new(),
            types: Interned::new(),
            namespaces: Interned::new(),
            crds: HashSet::new(),
            owners: HashSet::new(),
        })
    }

    /// Takes one record: restore-time filters, namespace mapping, restore shape; keeps what
    /// the plan needs of it and spools the rest.
    pub fn add(&mut self, mut record: ManifestRecord) -> Result<(), ClusterError> {
        let filter = &self.options.filter;
        let mut resource = type_of(&record);
        let type_index = self.types.index_of(&resource);
        resource.namespaced = true; // the cluster-scope rule is applied below
        if !filter.selects_type(&resource) {
            return Ok(());
        }
        let fingerprints = &self.fingerprints;
        let needed_as = match &record.namespace {
            Some(ns) if filter.selects_namespace(ns) => {
                self.needs.extend(
                    cluster_dependencies(&record)
                        .iter()
                        .map(|k| fingerprints.of_key(k)),
                );
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
                ClusterScope::Needed => Some(fingerprints.of_record(&record)),
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
        if let Some(owners) = record.object["metadata"]["ownerReferences"].as_array() {
            let namespace = record.namespace.as_deref();
            self.owners.extend(
                owners
                    .iter()
                    .filter_map(|o| owner_key(o, namespace))
                    .map(|k| fingerprints.of_key(&k)),
            );
        }
        let i = self.slots.len();
        if let Some(key) = needed_as {
            self.conditional.push((i, key));
        }
        if let Some(controller) = controller_of(&record) {
            self.controlled.push((i, fingerprints.of_key(&controller)));
        }
        let is_service = record.group.is_empty() && record.kind == "Service";
        let namespace = record
            .namespace
            .as_ref()
            .map(|ns| self.namespaces.index_of(ns));
        let mut slot = Slot::new(
            self.spool.write(&record)?,
            type_index,
            namespace,
            is_service && !node_ports(&record.object).is_empty(),
        );
        if restore_skip_reason(&record).is_some() {
            slot.leave_alone(Note::LeftToCluster);
        }
        self.slots.push(slot);
        self.keys.push(fingerprints.of_record(&record));
        self.dependencies
            .extend(dependencies(&record).iter().map(|k| fingerprints.of_key(k)));
        self.dependency_ends.push(self.dependencies.len());
        Ok(())
    }

    /// Plans the restore of the records taken: objects left to controllers or the cluster,
    /// dependency waves, and each object compared with the live cluster (listed once per
    /// type and namespace). A resource filter naming no type of the snapshot is refused.
    pub async fn plan<C: ResourceStore + ?Sized>(
        self,
        cluster: &C,
    ) -> Result<ClusterRestore<'_, C>, ClusterError> {
        let unmatched = self.options.filter.unmatched_resources(&self.types.values);
        if !unmatched.is_empty() {
            return Err(ClusterError::Invalid(format!(
                "the resource filter names {}, which matches no resource type in the snapshot",
                unmatched.join(", ")
            )));
        }
        let spool = self.spool.finish()?;
        let Kept {
            mut slots,
            index,
            graph,
        } = Kept::select(
            self.slots,
            &self.keys,
            &self.dependencies,
            &self.dependency_ends,
            &self.conditional,
            &self.needs,
        );
        for (i, controller) in &self.controlled {
            if let Some(i) = index.kept(*i)
                && index.of.contains_key(controller)
                && slots[i].note != Note::LeftToCluster
            {
                slots[i].leave_alone(Note::LeftToController);
            }
        }
        let types = self.types.values;
        let order = restore_order(&graph, |i| {
            let resource = &types[slots[i].resource as usize];
            (resource.group.as_str(), resource.kind.as_str())
        });
        drop(graph);
        for (w, wave) in order.waves.iter().enumerate() {
            for &i in wave {
                slots[i as usize].wave = w as u32;
            }
        }
        let options = self.options;
        let live = live::compare(
            cluster,
            live::Lookup {
                types: &types,
                namespaces: &self.namespaces.values,
                index: &index.of,
                fingerprints: &self.fingerprints,
                owners: &self.owners,
            },
            &mut slots,
            &spool,
            live::Comparison {
                keep_status: options.restore_status,
                shape: self.shape,
                existing: options.existing,
            },
        )
        .await?;
        drop(index);
        let checked = Checked {
            types: &types,
            namespaces: &self.namespaces.values,
            unreadable: &live.unreadable,
            spool: &spool,
        };
        checked.refuse_taken_node_ports(cluster, &mut slots).await?;
        checked.note_creates(&mut slots);
        let slots: Vec<Slot> = order
            .waves
            .iter()
            .flatten()
            .map(|&i| slots[i as usize])
            .collect();
        Ok(ClusterRestore {
            cluster,
            options,
            waves: order.waves.len(),
            slots,
            types,
            unreadable: live.unreadable,
            fingerprints: self.fingerprints,
            live_uids: live.uids,
            crds: self.crds,
            owners: self.owners,
            spool,
        })
    }
}

/// The slots a restore keeps (cluster-scoped objects only when needed), renumbered, with the
/// index of their keys and their dependency graph.
struct Kept {
    slots: Vec<Slot>,
    index: Renumbering,
    graph: DependencyGraph,
}

/// Old slot numbers to new ones, and keys to new numbers.
struct Renumbering {
    new: Vec<Option<u32>>,
    of: HashMap<Fingerprint, u32>,
}

impl Renumbering {
    /// The new number of old slot `i`, if it is kept.
    fn kept(&self, i: usize) -> Option<usize> {
        self.new[i].map(|n| n as usize)
    }
}

impl Kept {
    fn select(
        slots: Vec<Slot>,
        keys: &[Fingerprint],
        dependencies: &[Fingerprint],
        dependency_ends: &[usize],
        conditional: &[(usize, Fingerprint)],
        needs: &HashSet<Fingerprint>,
    ) -> Self {
        let mut kept = vec![true; slots.len()];
        for (i, key) in conditional {
            kept[*i] = needs.contains(key);
        }
        let mut count = 0u32;
        let new: Vec<Option<u32>> = kept
            .iter()
            .map(|&k| {
                k.then(|| {
                    count += 1;
                    count - 1
                })
            })
            .collect();
        let of: HashMap<Fingerprint, u32> = keys
            .iter()
            .zip(&new)
            .filter_map(|(key, n)| n.map(|n| (*key, n)))
            .collect();
        let mut graph = DependencyGraph::default();
        let mut start = 0;
        for (&end, n) in dependency_ends.iter().zip(&new) {
            if n.is_some() {
                graph.push(
                    dependencies[start..end]
                        .iter()
                        .filter_map(|d| of.get(d).copied()),
                );
            }
            start = end;
        }
        let slots = slots
            .into_iter()
            .zip(&kept)
            .filter_map(|(slot, &k)| k.then_some(slot))
            .collect();
        Self {
            slots,
            index: Renumbering { new, of },
            graph,
        }
    }
}

/// What the checks after the live comparison read.
struct Checked<'a> {
    types: &'a [ApiResourceType],
    namespaces: &'a [String],
    unreadable: &'a HashMap<super::Scope, String>,
    spool: &'a Spool,
}

impl Checked<'_> {
    /// Services to create whose node ports another Service holds (or one created earlier in
    /// this restore) are conflicts; the others claim their ports.
    async fn refuse_taken_node_ports<C: ResourceStore + ?Sized>(
        &self,
        cluster: &C,
        slots: &mut [Slot],
    ) -> Result<(), ClusterError> {
        let creates = |s: &&mut Slot| s.node_ports && s.action == PlannedAction::Create;
        if !slots.iter_mut().any(|s| creates(&s)) {
            return Ok(());
        }
        let Some(mut in_use) = node_ports_in_use(cluster).await? else {
            return Ok(());
        };
        for slot in slots.iter_mut().filter(creates) {
            let record = self.spool.read(slot.span)?;
            let name = format!(
                "{}/{}",
                record.namespace.as_deref().unwrap_or_default(),
                record.name
            );
            if let Some(taken) = node_port_conflict(&name, &node_ports(&record.object), &mut in_use)
            {
                slot.conflict = true;
                slot.note = Note::Refused(self.spool.append(&taken)?);
            }
        }
        Ok(())
    }

    /// Objects to create whose live state is unknown, and admission webhooks, say so.
    fn note_creates(&self, slots: &mut [Slot]) {
        for slot in slots
            .iter_mut()
            .filter(|s| s.action == PlannedAction::Create && s.note == Note::None)
        {
            let resource = &self.types[slot.resource as usize];
            if is_admission_webhook(&resource.group, &resource.kind) {
                slot.note = Note::LastWave;
                continue;
            }
            let scope = (
                kind_name(&resource.group, &resource.kind),
                slot.namespace.map(|n| self.namespaces[n as usize].clone()),
            );
            if self.unreadable.contains_key(&scope) {
                slot.note = Note::LiveUnknown;
            }
        }
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

/// Why Service `name` cannot have its node ports (held by another Service, or by one created
/// earlier in this restore); claims them otherwise.
fn node_port_conflict(
    name: &str,
    ports: &[u16],
    in_use: &mut HashMap<u16, String>,
) -> Option<String> {
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
    for port in ports {
        in_use.insert(*port, name.to_owned());
    }
    None
}
