//! The live counterparts of a restore's objects: listed once per type and namespace (or
//! once cluster-wide for a type spread over many namespaces), each compared with its record
//! as its page arrives, so that only the outcome is kept.

use super::fingerprint::{Fingerprint, Fingerprinter};
use super::slot::Slot;
use super::spool::Spool;
use super::{ExistingPolicy, Scope, comparable};
use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ResourceStore, for_each_page};
use backup_core::resources::{RestoreShape, differences, kind_name};
use futures::{StreamExt, stream};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

/// How the planned objects are found among the live ones.
pub(super) struct Lookup<'a> {
    pub types: &'a [ApiResourceType],
    pub namespaces: &'a [String],
    /// Slots by key.
    pub index: &'a HashMap<Fingerprint, u32>,
    pub fingerprints: &'a Fingerprinter,
    /// Objects named as owners: their live uids are kept.
    pub owners: &'a HashSet<Fingerprint>,
}

/// How a live object is compared with its record, and what is done when it differs.
#[derive(Clone, Copy)]
pub(super) struct Comparison {
    pub keep_status: bool,
    pub shape: RestoreShape,
    pub existing: ExistingPolicy,
}

/// What the live cluster told beyond the slots' actions.
pub(super) struct LiveState {
    /// The uids of live objects named as owners.
    pub uids: HashMap<Fingerprint, String>,
    /// Scopes that could not be read, with the reason.
    pub unreadable: HashMap<Scope, String>,
}

/// Lists the types and namespaces of the slots and compares each live object that is
/// planned with its record; marks the slots found as unchanged or differing (the differences
/// go to the spool).
pub(super) async fn compare<C: ResourceStore + ?Sized>(
    cluster: &C,
    lookup: Lookup<'_>,
    slots: &mut [Slot],
    spool: &Spool,
    comparison: Comparison,
) -> Result<LiveState, ClusterError> {
    let mut scopes: BTreeMap<Scope, &ApiResourceType> = BTreeMap::new();
    let mut seen = HashSet::new();
    for slot in slots.iter() {
        if seen.insert((slot.resource, slot.namespace)) {
            let resource = &lookup.types[slot.resource as usize];
            scopes
                .entry((
                    kind_name(&resource.group, &resource.kind),
                    slot.namespace
                        .map(|n| lookup.namespaces[n as usize].clone()),
                ))
                .or_insert(resource);
        }
    }
    drop(seen);
    let state = Mutex::new((slots, HashMap::new(), None::<ClusterError>));
    let observe = |resource: &ApiResourceType, page: Vec<Value>| {
        let mut guard = state.lock().expect("live state");
        let (slots, uids, failure) = &mut *guard;
        for object in page {
            let key = lookup.fingerprints.of(
                &resource.group,
                &resource.kind,
                object["metadata"]["namespace"].as_str(),
                object["metadata"]["name"].as_str().unwrap_or_default(),
            );
            let Some(&i) = lookup.index.get(&key) else {
                continue;
            };
            if lookup.owners.contains(&key)
                && let Some(uid) = object["metadata"]["uid"].as_str()
            {
                uids.insert(key, uid.to_owned());
            }
            let slot = &mut slots[i as usize];
            if slot.is_left_alone() {
                continue;
            }
            let compared = spool.read(slot.span).and_then(|record| {
                let found = differences(
                    &comparable(
                        &record.object,
                        &record,
                        comparison.keep_status,
                        comparison.shape,
                    ),
                    &comparable(&object, &record, comparison.keep_status, comparison.shape),
                    5,
                );
                if found.is_empty() {
                    Ok(None)
                } else {
                    spool.append(&found.join(", ")).map(Some)
                }
            });
            match compared {
                Ok(differences) => slot.exists(differences, comparison.existing),
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
    };
    // A namespaced type spread over many namespaces is listed once, cluster-wide (a restore
    // of a hundred namespaces is three LISTs, not three hundred); where that is forbidden,
    // namespace by namespace.
    let mut spread: BTreeMap<&str, (&ApiResourceType, usize)> = BTreeMap::new();
    for ((kind, namespace), resource) in &scopes {
        if namespace.is_some() {
            spread.entry(kind.as_str()).or_insert((resource, 0)).1 += 1;
        }
    }
    spread.retain(|_, (_, namespaces)| *namespaces > 4);
    // Owned items: a stream over borrowed ones cannot be proven Send behind a boxed future
    // (the restore engine's), the closure's lifetimes being inferred too narrowly.
    let spread: Vec<(String, ApiResourceType)> = spread
        .into_iter()
        .map(|(kind, (resource, _))| (kind.to_owned(), resource.clone()))
        .collect();
    let wide = stream::iter(spread)
        .map(|(kind, resource)| {
            let observe = &observe;
            async move {
                let result = for_each_page(cluster, &resource, None, None, 500, |page| {
                    observe(&resource, page)
                })
                .await;
                (kind, result)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut listed_wide = HashSet::new();
    for (kind, result) in wide {
        match result {
            Ok(()) | Err(ClusterError::NotFound(_)) => {
                listed_wide.insert(kind);
            }
            Err(ClusterError::Forbidden(_)) => {}
            Err(other) => return Err(other),
        }
    }
    scopes.retain(|(kind, namespace), _| namespace.is_none() || !listed_wide.contains(kind));
    let scopes: Vec<(Scope, ApiResourceType)> = scopes
        .into_iter()
        .map(|(scope, resource)| (scope, resource.clone()))
        .collect();
    let lists = stream::iter(scopes)
        .map(|(scope, resource)| {
            let observe = &observe;
            async move {
                let result =
                    for_each_page(cluster, &resource, scope.1.as_deref(), None, 500, |page| {
                        observe(&resource, page)
                    })
                    .await;
                (scope, result)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut unreadable = HashMap::new();
    for (scope, result) in lists {
        match result {
            // A type not served yet (its CRD comes with the restore): nothing exists.
            Ok(()) | Err(ClusterError::NotFound(_)) => {}
            Err(ClusterError::Forbidden(reason)) => {
                unreadable.insert(scope, reason);
            }
            Err(other) => return Err(other),
        }
    }
    let (_, uids, failure) = state.into_inner().expect("live state");
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(LiveState { uids, unreadable })
}
