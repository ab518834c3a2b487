//! Planning a restore: records taken one by one into the spool, then objects left to the
//! cluster or to controllers, dependency waves, each object compared with the live cluster,
//! node ports checked.

use super::checks::Checked;
use super::fingerprint::{Fingerprint, Fingerprinter};
use super::interned::Interned;
use super::kept::Kept;
use super::slot::{Note, Slot};
use super::spool::SpoolWriter;
use super::{ClusterRestore, RestoreOptions, live};
use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ResourceStore};
use backup_core::resources::{
    ClusterScope, ManifestRecord, RestoreShape, cluster_dependencies, controller_of, dependencies,
    node_ports, owner_key, restore_order, restore_skip_reason,
};
use std::collections::HashSet;

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
        let left_out = self.options.skip_groups.contains(&record.group);
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
        if self.options.fresh_claims
            && record.group.is_empty()
            && record.kind == "PersistentVolumeClaim"
        {
            unbind_claim(&mut record.object);
        }
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
        if left_out {
            // Kept in the plan (as skipped): what it controls is then left to it, and so
            // never restored either.
            slot.leave_alone(Note::LeftOut);
        } else if restore_skip_reason(&record).is_some() {
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
        let implied = &self.options.implied_resources;
        let unmatched: Vec<&str> = self
            .options
            .filter
            .unmatched_resources(&self.types.values)
            .into_iter()
            .filter(|name| !implied.iter().any(|i| i == name))
            .collect();
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
                && !matches!(slots[i].note, Note::LeftToCluster | Note::LeftOut)
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

/// The annotations that tie a claim to a volume or a node.
const BINDING_ANNOTATIONS: [&str; 5] = [
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
];

/// A claim as new: no volume named, no binding annotations.
fn unbind_claim(object: &mut serde_json::Value) {
    if let Some(spec) = object["spec"].as_object_mut() {
        spec.remove("volumeName");
    }
    if let Some(annotations) = object["metadata"]["annotations"].as_object_mut() {
        for key in BINDING_ANNOTATIONS {
            annotations.remove(key);
        }
    }
}

#[cfg(test)]
mod claim_tests {
    use super::unbind_claim;
    use serde_json::json;

    #[test]
    fn a_fresh_claim_names_no_volume_and_no_node() {
        let mut claim = json!({"metadata": {"name": "data", "annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "volume.kubernetes.io/selected-node": "n1",
            "team": "db"}},
            "spec": {"volumeName": "pvc-1", "storageClassName": "local-path"}});
        unbind_claim(&mut claim);
        assert_eq!(claim["metadata"]["annotations"], json!({"team": "db"}));
        assert_eq!(claim["spec"], json!({"storageClassName": "local-path"}));
    }
}
