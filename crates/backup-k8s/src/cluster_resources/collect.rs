//! Collecting the selected objects of a cluster.

use backup_core::ClusterError;
use backup_core::cluster::{
    ApiResourceType, ObjectRef, ResourceStore, UnavailableApi, for_each_page, pages,
};
use backup_core::model::Report;
use backup_core::resources::{
    Cleaning, ClusterScope, ManifestRecord, ObjectKey, ResourceFilter, managed_by_cluster,
};
use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt, TryStreamExt, stream};
use std::collections::{BTreeMap, BTreeSet};

/// What to collect and how.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// The selection.
    pub filter: ResourceFilter,
    /// What cleaning keeps (status, kubectl's last-applied configuration).
    pub cleaning: Cleaning,
    /// Resource types listed at the same time.
    pub concurrency: usize,
    /// Objects per LIST page.
    pub page_size: u32,
}

impl Default for CollectOptions {
    fn default() -> Self {
        Self {
            filter: ResourceFilter::default(),
            cleaning: Cleaning::default(),
            concurrency: 8,
            page_size: 500,
        }
    }
}

/// The resource types to list and where, decided before any LIST.
#[derive(Debug, Clone)]
pub struct CollectPlan {
    /// Types to list, in output order.
    pub types: Vec<ApiResourceType>,
    /// Every served type, for looking up the version of a needed cluster object.
    pub served: Vec<ApiResourceType>,
    /// `Some`: list namespaced types in these namespaces only; `None`: cluster-wide.
    pub namespaces: Option<Vec<String>>,
    /// Aggregated APIs registered but not available: their objects cannot be read.
    pub unavailable: Vec<UnavailableApi>,
}

/// A page of one type's objects, or the end of the type (with the reason it could not all
/// be read).
#[derive(Debug)]
pub struct Collected {
    /// The type.
    pub resource: ApiResourceType,
    /// Selected objects of one page, cleaned and checksummed, in the server's order (by
    /// namespace and name).
    pub records: Vec<ManifestRecord>,
    /// The type is complete: this is its last item.
    pub complete: bool,
    /// Why the type (or part of it) could not be read (on the last item).
    pub refused: Option<String>,
}

/// What a type's lister hands on: a page being turned into records, or the end.
enum Chunk {
    Page(tokio::task::JoinHandle<Vec<ManifestRecord>>),
    End(Option<String>),
}

/// Collects objects from one cluster.
pub struct ResourceCollector<'a, C: ResourceStore + ?Sized> {
    cluster: &'a C,
    options: CollectOptions,
}

impl<'a, C: ResourceStore + ?Sized> ResourceCollector<'a, C> {
    /// A collector with these options.
    pub fn new(cluster: &'a C, options: CollectOptions) -> Self {
        Self { cluster, options }
    }

    /// Discovers the served types and decides what to list where. Namespaces named without
    /// globs are listed one by one (a service account allowed in those namespaces only can
    /// back them up); globs are matched against the cluster's namespaces when it may list
    /// them, else against each object. A resource filter naming a type the cluster does not
    /// serve is refused (it would select nothing without a word).
    pub async fn plan(&self) -> Result<CollectPlan, ClusterError> {
        let discovered = self.cluster.discover().await?;
        let served = discovered.types;
        let filter = &self.options.filter;
        let unmatched = filter.unmatched_resources(&served);
        if !unmatched.is_empty() {
            let mut message = format!(
                "the resource filter names {}, which matches no resource type this cluster serves",
                unmatched.join(", ")
            );
            if !discovered.unavailable.is_empty() {
                message.push_str(&format!(
                    " (unavailable APIs, whose types are unknown: {})",
                    discovered
                        .unavailable
                        .iter()
                        .map(|u| u.group_version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            return Err(ClusterError::Invalid(message));
        }
        let types = served
            .iter()
            .filter(|t| filter.selects_type(t))
            .cloned()
            .collect();
        let named = filter.named_namespaces();
        let all_named = !named.is_empty() && named.len() == filter.include_namespaces.len();
        let namespaces = all_named.then(|| {
            named
                .into_iter()
                .filter(|n| filter.selects_namespace(n))
                .map(str::to_owned)
                .collect()
        });
        Ok(CollectPlan {
            types,
            served,
            namespaces,
            unavailable: discovered.unavailable,
        })
    }

    /// Lists every planned type, `concurrency` types at a time, yielding their pages in plan
    /// order (so the same cluster gives the same stream, which keeps deduplication high).
    /// Memory stays flat whatever the object count: each type hands on one page at a time
    /// and waits until it is taken, so at most two pages per listed type are held.
    pub fn collect<'p>(&'p self, plan: &'p CollectPlan) -> impl Stream<Item = Collected> + 'p {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            plan.types.iter().map(|_| mpsc::channel::<Chunk>(0)).unzip();
        let listers = stream::iter(plan.types.iter().zip(senders)).for_each_concurrent(
            self.options.concurrency.max(1),
            move |(resource, sender)| self.list_type(resource, plan.namespaces.as_deref(), sender),
        );
        let pages =
            stream::iter(plan.types.iter().zip(receivers)).flat_map(|(resource, chunks)| {
                chunks.then(move |chunk| async move {
                    match chunk {
                        Chunk::Page(records) => Collected {
                            resource: resource.clone(),
                            records: records.await.expect("record task"),
                            complete: false,
                            refused: None,
                        },
                        Chunk::End(refused) => Collected {
                            resource: resource.clone(),
                            records: vec![],
                            complete: true,
                            refused,
                        },
                    }
                })
            });
        // The listers run while the pages are taken; they yield nothing themselves.
        stream::select(pages, stream::once(listers).filter_map(|()| async { None }))
    }

    async fn list_type(
        &self,
        resource: &ApiResourceType,
        namespaces: Option<&[String]>,
        mut sender: mpsc::Sender<Chunk>,
    ) {
        let scopes: Vec<Option<&str>> = match (resource.namespaced, namespaces) {
            (true, Some(names)) => names.iter().map(|n| Some(n.as_str())).collect(),
            _ => vec![None],
        };
        let mut refused = Vec::new();
        for scope in scopes {
            match self.list_pages(resource, scope, &mut sender).await {
                // The type went away since discovery (its CRD deleted): it has no objects.
                Ok(()) | Err(ClusterError::NotFound(_)) => {}
                Err(error) => refused.push(match scope {
                    Some(ns) => format!("in namespace {ns}: {error}"),
                    None => error.to_string(),
                }),
            }
        }
        let refused = (!refused.is_empty()).then(|| refused.join("; "));
        // A closed receiver means the stream was dropped: nothing is waiting.
        sender.send(Chunk::End(refused)).await.ok();
    }

    /// Lists every page, turning each into records on a blocking thread while the next page
    /// is fetched (cleaning and checksumming use the other cores).
    async fn list_pages(
        &self,
        resource: &ApiResourceType,
        namespace: Option<&str>,
        sender: &mut mpsc::Sender<Chunk>,
    ) -> Result<(), ClusterError> {
        let selector = self.options.filter.selector.as_deref();
        let mut pages = std::pin::pin!(pages(
            self.cluster,
            resource,
            namespace,
            selector,
            self.options.page_size
        ));
        while let Some(items) = pages.try_next().await? {
            let (resource, cleaning, filter) = (
                resource.clone(),
                self.options.cleaning,
                self.options.filter.clone(),
            );
            // The cluster's own objects are left out unless their type is named.
            let keep_managed = filter.names_type(&resource);
            let records = tokio::task::spawn_blocking(move || {
                items
                    .into_iter()
                    .map(|o| ManifestRecord::new(&resource, o, cleaning))
                    .filter(|r| {
                        r.namespace
                            .as_deref()
                            .is_none_or(|ns| filter.selects_namespace(ns))
                            && (keep_managed || managed_by_cluster(r).is_none())
                    })
                    .collect()
            });
            if sender.send(Chunk::Page(records)).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// With [`ClusterScope::Needed`], the cluster-scoped objects the collected namespaced
    /// objects need (their Namespaces, CRDs, ClusterRoles, volumes, classes), fetched one by
    /// one; those missing from the cluster are left out, refusals reported.
    pub async fn needed_cluster_objects(
        &self,
        plan: &CollectPlan,
        needs: &BTreeSet<ObjectKey>,
        report: &mut Report,
    ) -> Result<Vec<ManifestRecord>, ClusterError> {
        if self.options.filter.cluster_scope() != ClusterScope::Needed {
            return Ok(vec![]);
        }
        let by_kind: BTreeMap<(&str, &str), &ApiResourceType> = plan
            .served
            .iter()
            .filter(|t| !t.namespaced)
            .map(|t| ((t.group.as_str(), t.kind.as_str()), t))
            .collect();
        let mut wanted: BTreeMap<&ApiResourceType, BTreeSet<&str>> = BTreeMap::new();
        for key in needs.iter().filter(|k| k.namespace.is_none()) {
            if let Some(resource) = by_kind.get(&(key.group.as_str(), key.kind.as_str())) {
                wanted
                    .entry(resource)
                    .or_default()
                    .insert(key.name.as_str());
            }
        }
        let mut records = Vec::new();
        for (resource, names) in wanted {
            // Many of one type (the namespaces of a large backup): one LIST is cheaper than
            // a GET each; a LIST the credentials may not do falls back to GETs.
            // No label selector here: a needed Namespace need not carry the objects' labels.
            let mut objects = Vec::new();
            if names.len() > 3
                && for_each_page(
                    self.cluster,
                    resource,
                    None,
                    None,
                    self.options.page_size,
                    |page| objects.extend(page),
                )
                .await
                .is_ok()
            {
                records.extend(
                    objects
                        .into_iter()
                        .filter(|o| {
                            o["metadata"]["name"]
                                .as_str()
                                .is_some_and(|n| names.contains(n))
                        })
                        .map(|o| ManifestRecord::new(resource, o, self.options.cleaning)),
                );
                continue;
            }
            let fetched = stream::iter(names)
                .map(|name| async move {
                    let reference =
                        ObjectRef::cluster_scoped(&resource.api_version(), &resource.kind, name);
                    let found = self.cluster.get(&reference).await;
                    (reference, found)
                })
                .buffered(16)
                .collect::<Vec<_>>()
                .await;
            for (reference, found) in fetched {
                match found {
                    Ok(Some(object)) => {
                        records.push(ManifestRecord::new(resource, object, self.options.cleaning))
                    }
                    Ok(None) => {}
                    Err(ClusterError::Forbidden(reason)) => {
                        report.warn(reference.to_string(), format!("not backed up: {reason}"))
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(records)
    }
}
