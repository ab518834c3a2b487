//! The live counterparts of a restore's objects: listed once per type and namespace (or
//! once cluster-wide for a type spread over many namespaces), each compared with its record
//! as its page arrives, so that only the outcome is kept.

use super::spool::Spool;
use super::{Entry, comparable};
use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ResourceStore, for_each_page};
use backup_core::resources::{ObjectKey, RestoreShape, differences, kind_name};
use futures::{StreamExt, stream};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

/// A planned object that exists.
pub(super) struct Found {
    /// Its uid (owner references of restored dependents point at it).
    pub uid: Option<String>,
    /// Where it differs from its record (empty: as backed up).
    pub differences: Vec<String>,
}

/// What the cluster holds of the planned objects.
pub(super) struct LiveState {
    /// By entry index.
    pub found: HashMap<usize, Found>,
    /// (`Kind[.group]`, namespace) pairs that could not be read, with the reason.
    pub unreadable: HashMap<(String, Option<String>), String>,
}

type Scope = (String, Option<String>);

/// Lists the types and namespaces of `entries` and compares each live object that is
/// planned with its record.
pub(super) async fn compare<C: ResourceStore + ?Sized>(
    types: &[ApiResourceType],
    cluster: &C,
    entries: &[Entry],
    keys: &[ObjectKey],
    spool: &Spool,
    keep_status: bool,
    shape: RestoreShape,
) -> Result<LiveState, ClusterError> {
    let index: HashMap<&ObjectKey, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut scopes: BTreeMap<Scope, &ApiResourceType> = BTreeMap::new();
    for (entry, key) in entries.iter().zip(keys) {
        scopes
            .entry((kind_name(&key.group, &key.kind), key.namespace.clone()))
            .or_insert(&types[entry.resource]);
    }
    let found = Mutex::new(HashMap::new());
    let failure = Mutex::new(None);
    let observe = |resource: &ApiResourceType, page: Vec<Value>| {
        let mut matched = Vec::new();
        for object in page {
            let key = ObjectKey::new(
                &resource.group,
                &resource.kind,
                object["metadata"]["namespace"].as_str(),
                object["metadata"]["name"].as_str().unwrap_or_default(),
            );
            let Some(&i) = index.get(&key) else {
                continue;
            };
            match spool.read(entries[i].span) {
                Ok(record) => matched.push((
                    i,
                    Found {
                        uid: object["metadata"]["uid"].as_str().map(str::to_owned),
                        differences: differences(
                            &comparable(&record.object, &record, keep_status, shape),
                            &comparable(&object, &record, keep_status, shape),
                            5,
                        ),
                    },
                )),
                Err(error) => {
                    failure.lock().expect("failure").get_or_insert(error);
                }
            }
        }
        found.lock().expect("found").extend(matched);
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
    let wide = stream::iter(spread)
        .map(|(kind, (resource, _))| {
            let observe = &observe;
            async move {
                let result = for_each_page(cluster, resource, None, None, 500, |page| {
                    observe(resource, page)
                })
                .await;
                (kind.to_owned(), result)
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
    let lists = stream::iter(scopes)
        .map(|(scope, resource)| {
            let observe = &observe;
            async move {
                let result =
                    for_each_page(cluster, resource, scope.1.as_deref(), None, 500, |page| {
                        observe(resource, page)
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
    if let Some(error) = failure.into_inner().expect("failure") {
        return Err(error);
    }
    Ok(LiveState {
        found: found.into_inner().expect("found"),
        unreadable,
    })
}
