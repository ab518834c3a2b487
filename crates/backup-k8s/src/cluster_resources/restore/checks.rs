//! The checks after the live comparison: node ports taken by other Services, and the notes
//! of objects to create (live state unknown, admission webhooks last).

use super::slot::{Note, Slot};
use super::spool::Spool;
use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ResourceStore, for_each_page};
use backup_core::model::PlannedAction;
use backup_core::resources::{is_admission_webhook, kind_name, node_ports};
use std::collections::HashMap;

/// What the checks after the live comparison read.
pub(super) struct Checked<'a> {
    pub(super) types: &'a [ApiResourceType],
    pub(super) namespaces: &'a [String],
    pub(super) unreadable: &'a HashMap<super::Scope, String>,
    pub(super) spool: &'a Spool,
}

impl Checked<'_> {
    /// Services to create whose node ports another Service holds (or one created earlier in
    /// this restore) are conflicts; the others claim their ports.
    pub(super) async fn refuse_taken_node_ports<C: ResourceStore + ?Sized>(
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
    pub(super) fn note_creates(&self, slots: &mut [Slot]) {
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
