//! Restoring collected objects: a plan diffed against the live cluster, then waves in
//! dependency order with readiness waits.

use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ObjectRef, ResourceStore, for_each_page};
use backup_core::model::{Plan, PlannedAction, Report};
use backup_core::progress::Progress;
use backup_core::resources::{
    Cleaning, ClusterScope, ManifestRecord, NamespaceMapping, ObjectKey, ResourceFilter,
    RestoreShape, clean_object, cluster_dependencies, dependencies, differences,
    is_admission_webhook, node_ports, recreated_by_controller, restore_order, restore_skip_reason,
};
use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    record: ManifestRecord,
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
}

fn kind_name(record: &ManifestRecord) -> String {
    if record.group.is_empty() {
        record.kind.clone()
    } else {
        format!("{}.{}", record.kind, record.group)
    }
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

fn owner_key(owner: &Value, namespace: Option<&str>) -> Option<ObjectKey> {
    let group = owner["apiVersion"]
        .as_str()?
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("");
    Some(ObjectKey::new(
        group,
        owner["kind"].as_str()?,
        namespace,
        owner["name"].as_str()?,
    ))
}

impl<'a, C: ResourceStore + ?Sized> ClusterRestore<'a, C> {
    /// Plans the restore of `records`: restore-time filters, namespace mapping, objects left
    /// to controllers or the cluster, dependency waves, and each object compared with the
    /// live cluster (listed once per type and namespace).
    pub async fn plan(
        cluster: &'a C,
        records: Vec<ManifestRecord>,
        options: RestoreOptions,
    ) -> Result<Self, ClusterError> {
        let filter = &options.filter;
        let snapshot_types: BTreeSet<ApiResourceType> = records.iter().map(type_of).collect();
        let unmatched = filter.unmatched_resources(&snapshot_types.into_iter().collect::<Vec<_>>());
        if !unmatched.is_empty() {
            return Err(ClusterError::Invalid(format!(
                "the resource filter names {}, which matches no resource type in the snapshot",
                unmatched.join(", ")
            )));
        }
        let shape = RestoreShape {
            drop_node_ports: !options.mapping.is_empty() && !options.preserve_node_ports,
        };
        let selected_type = |r: &ManifestRecord| {
            let mut t = type_of(r);
            t.namespaced = true; // the cluster-scope rule is applied below
            filter.selects_type(&t)
        };
        let mut namespaced: Vec<ManifestRecord> = Vec::new();
        let mut cluster_scoped: Vec<ManifestRecord> = Vec::new();
        for record in records.into_iter().filter(|r| selected_type(r)) {
            match &record.namespace {
                Some(ns) if filter.selects_namespace(ns) => namespaced.push(record),
                Some(_) => {}
                None => cluster_scoped.push(record),
            }
        }
        let needs: BTreeSet<ObjectKey> = namespaced.iter().flat_map(cluster_dependencies).collect();
        let mut kept: Vec<ManifestRecord> = cluster_scoped
            .into_iter()
            .filter(|r| match filter.cluster_scope() {
                ClusterScope::All => r.kind != "Namespace" || filter.selects_namespace(&r.name),
                ClusterScope::Needed => needs.contains(&ObjectKey::of(r)),
                ClusterScope::None => false,
            })
            .collect();
        kept.extend(namespaced);
        for record in &mut kept {
            options.mapping.apply(record);
            shape.apply(&record.group, &record.kind, &mut record.object);
        }
        let keys: HashSet<ObjectKey> = kept.iter().map(ObjectKey::of).collect();
        let skipped: Vec<Option<String>> = kept
            .iter()
            .map(|r| {
                restore_skip_reason(r)
                    .map(str::to_owned)
                    .or_else(|| recreated_by_controller(r, &keys))
            })
            .collect();
        let items: Vec<(ObjectKey, Vec<ObjectKey>)> = kept
            .iter()
            .map(|r| (ObjectKey::of(r), dependencies(r)))
            .collect();
        let order = restore_order(&items);
        let mut wave_of = vec![0; kept.len()];
        for (w, wave) in order.waves.iter().enumerate() {
            for &i in wave {
                wave_of[i] = w;
            }
        }
        let (live, unreadable) = Self::live_state(cluster, &kept).await?;
        let mut ports_in_use = Self::node_ports_in_use(cluster, &kept).await?;
        let mut live_uids = HashMap::new();
        let mut objects = Vec::with_capacity(kept.len());
        for (i, record) in kept.into_iter().enumerate() {
            let key = ObjectKey::of(&record);
            let mut planned = PlannedObject {
                object: record.to_string(),
                kind: kind_name(&record),
                action: PlannedAction::Create,
                reason: String::new(),
                wave: wave_of[i],
                conflict: false,
                differs: false,
                record,
            };
            if let Some(existing) = live.get(&key) {
                if let Some(uid) = existing["metadata"]["uid"].as_str() {
                    live_uids.insert(key.clone(), uid.to_owned());
                }
                let paths = differences(
                    &comparable(
                        &planned.record.object,
                        &planned.record,
                        options.restore_status,
                        shape,
                    ),
                    &comparable(existing, &planned.record, options.restore_status, shape),
                    5,
                );
                if paths.is_empty() {
                    planned.action = PlannedAction::Unchanged;
                } else {
                    planned.differs = true;
                    let what = format!("exists and differs at {}", paths.join(", "));
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
            } else if let Some(reason) =
                unreadable.get(&(kind_name(&planned.record), planned.record.namespace.clone()))
            {
                planned.reason = format!("live state unknown: {reason}");
            }
            if planned.action == PlannedAction::Create {
                if let Some(taken) = Self::node_port_conflict(&planned.record, &mut ports_in_use) {
                    planned.conflict = true;
                    planned.reason = taken;
                } else if is_admission_webhook(&key) {
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
        Ok(Self {
            cluster,
            options,
            waves: order.waves.len(),
            objects,
            live_uids,
        })
    }

    /// The node ports the cluster's Services hold (port to `namespace/name`), read only
    /// when a Service of `records` asks for one; `None` when they cannot be read.
    async fn node_ports_in_use(
        cluster: &C,
        records: &[ManifestRecord],
    ) -> Result<Option<HashMap<u16, String>>, ClusterError> {
        let services = |r: &&ManifestRecord| r.group.is_empty() && r.kind == "Service";
        let Some(service) = records
            .iter()
            .find(|r| services(r) && !node_ports(&r.object).is_empty())
        else {
            return Ok(None);
        };
        let mut in_use = HashMap::new();
        let listed = for_each_page(cluster, &type_of(service), None, None, 500, |page| {
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

    /// Why a Service to be created cannot have its node ports (held by another Service, or
    /// by one created earlier in this restore); claims them otherwise.
    fn node_port_conflict(
        record: &ManifestRecord,
        in_use: &mut Option<HashMap<u16, String>>,
    ) -> Option<String> {
        let in_use = in_use.as_mut()?;
        if !(record.group.is_empty() && record.kind == "Service") {
            return None;
        }
        let ports = node_ports(&record.object);
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
            record.namespace.as_deref().unwrap_or_default(),
            record.name
        );
        for port in ports {
            in_use.insert(port, name.clone());
        }
        None
    }

    /// The live objects of the types and namespaces of `records` (one paged LIST each), and
    /// the (type, namespace) pairs that could not be read, with the reason.
    async fn live_state(
        cluster: &C,
        records: &[ManifestRecord],
    ) -> Result<
        (
            HashMap<ObjectKey, Value>,
            HashMap<(String, Option<String>), String>,
        ),
        ClusterError,
    > {
        let mut scopes: BTreeMap<(String, Option<String>), ApiResourceType> = BTreeMap::new();
        for record in records {
            scopes
                .entry((kind_name(record), record.namespace.clone()))
                .or_insert_with(|| type_of(record));
        }
        // A namespaced type spread over many namespaces is listed once, cluster-wide (a
        // restore of a hundred namespaces is three LISTs, not three hundred); where that is
        // forbidden, namespace by namespace.
        let mut spread: BTreeMap<&str, (ApiResourceType, HashSet<&str>)> = BTreeMap::new();
        for ((kind, namespace), resource) in &scopes {
            if let Some(ns) = namespace {
                spread
                    .entry(kind.as_str())
                    .or_insert_with(|| (resource.clone(), HashSet::new()))
                    .1
                    .insert(ns.as_str());
            }
        }
        spread.retain(|_, (_, namespaces)| namespaces.len() > 4);
        let wide = stream::iter(spread)
            .map(|(kind, (resource, namespaces))| async move {
                let mut objects = Vec::new();
                let result = for_each_page(cluster, &resource, None, None, 500, |page| {
                    objects.extend(page.into_iter().filter(|o| {
                        o["metadata"]["namespace"]
                            .as_str()
                            .is_some_and(|ns| namespaces.contains(ns))
                    }))
                })
                .await;
                (kind.to_owned(), resource, objects, result)
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        let mut live = HashMap::new();
        let mut listed_wide = HashSet::new();
        let insert = |live: &mut HashMap<ObjectKey, Value>,
                      resource: &ApiResourceType,
                      objects: Vec<Value>| {
            for object in objects {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let namespace = object["metadata"]["namespace"].as_str();
                let key = ObjectKey::new(&resource.group, &resource.kind, namespace, name);
                live.insert(key, object);
            }
        };
        for (kind, resource, objects, result) in wide {
            match result {
                Ok(()) => {
                    insert(&mut live, &resource, objects);
                    listed_wide.insert(kind);
                }
                Err(ClusterError::NotFound(_)) => {
                    listed_wide.insert(kind);
                }
                Err(ClusterError::Forbidden(_)) => {}
                Err(other) => return Err(other),
            }
        }
        scopes.retain(|(kind, namespace), _| namespace.is_none() || !listed_wide.contains(kind));
        let lists = stream::iter(scopes)
            .map(|((kind, namespace), resource)| async move {
                let mut objects = Vec::new();
                let result = for_each_page(
                    cluster,
                    &resource,
                    namespace.as_deref(),
                    None,
                    500,
                    |page| objects.extend(page),
                )
                .await;
                (kind, namespace, resource, objects, result)
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        let mut unreadable = HashMap::new();
        for (kind, namespace, resource, objects, result) in lists {
            match result {
                Ok(()) => insert(&mut live, &resource, objects),
                // A type not served yet (its CRD comes with the restore): nothing exists.
                Err(ClusterError::NotFound(_)) => {}
                Err(ClusterError::Forbidden(reason)) => {
                    unreadable.insert((kind, namespace), reason);
                }
                Err(other) => return Err(other),
            }
        }
        Ok((live, unreadable))
    }

    /// Every object with its action, in wave order.
    pub fn objects(&self) -> &[PlannedObject] {
        &self.objects
    }

    /// Number of waves.
    pub fn waves(&self) -> usize {
        self.waves
    }

    /// The plan as the core type (for dry runs).
    pub fn plan_view(&self) -> Plan {
        let mut plan = Plan::default();
        for o in &self.objects {
            plan.push(o.object.clone(), o.action, o.reason.clone());
        }
        plan
    }

    /// Restores wave by wave, `concurrency` objects at a time; waits for the CRDs of a wave
    /// to be Established before the next; re-links owner references to the restored owners
    /// (or drops references to owners that do not exist, which the garbage collector would
    /// otherwise act on). Every problem is collected in the report.
    pub async fn execute(&self, progress: &dyn Progress) -> RestoreOutcome {
        let started = Instant::now();
        let state = Mutex::new((BTreeMap::<String, KindCounts>::new(), Report::default()));
        let uids = Mutex::new(self.live_uids.clone());
        progress.start("restoring objects", Some(self.objects.len() as u64));
        for wave in 0..self.waves {
            let members: Vec<&PlannedObject> =
                self.objects.iter().filter(|o| o.wave == wave).collect();
            stream::iter(members.iter())
                .for_each_concurrent(self.options.concurrency.max(1), |planned| {
                    let (state, uids) = (&state, &uids);
                    async move {
                        let outcome = self.restore_one(planned, uids).await;
                        let mut guard = state.lock().expect("restore state");
                        let (kinds, report) = &mut *guard;
                        let counts = kinds.entry(planned.kind.clone()).or_default();
                        match outcome {
                            Ok((action, warnings)) => {
                                match action {
                                    PlannedAction::Create => counts.created += 1,
                                    PlannedAction::Update => counts.updated += 1,
                                    PlannedAction::Unchanged => counts.unchanged += 1,
                                    _ => counts.skipped += 1,
                                }
                                if action == PlannedAction::Skip {
                                    // Objects left to their controllers or the cluster are
                                    // expected; an existing object that differs is news.
                                    report.skipped += 1;
                                    if planned.differs {
                                        report.warn(
                                            &planned.object,
                                            format!("skipped: {}", planned.reason),
                                        );
                                    }
                                } else {
                                    report.succeeded += 1;
                                }
                                for warning in warnings {
                                    report.warn(&planned.object, warning);
                                }
                            }
                            Err(message) => {
                                counts.failed += 1;
                                report.error(&planned.object, message);
                            }
                        }
                        progress.advance(1);
                    }
                })
                .await;
            for crd in members.iter().filter(|o| {
                o.record.kind == "CustomResourceDefinition"
                    && matches!(o.action, PlannedAction::Create | PlannedAction::Update)
            }) {
                if let Err(message) = self.wait_established(&crd.record).await {
                    state
                        .lock()
                        .expect("restore state")
                        .1
                        .error(&crd.object, message);
                }
            }
        }
        progress.finish();
        let (kinds, report) = state.into_inner().expect("restore state");
        RestoreOutcome {
            kinds,
            report,
            duration: started.elapsed(),
        }
    }

    async fn restore_one(
        &self,
        planned: &PlannedObject,
        uids: &Mutex<HashMap<ObjectKey, String>>,
    ) -> Result<(PlannedAction, Vec<String>), String> {
        if planned.conflict {
            return Err(planned.reason.clone());
        }
        if !matches!(
            planned.action,
            PlannedAction::Create | PlannedAction::Update
        ) {
            return Ok((planned.action, vec![]));
        }
        let record = &planned.record;
        let mut object = record.object.clone();
        let mut warnings = Vec::new();
        let status = object.as_object_mut().and_then(|o| o.remove("status"));
        if let Some(owners) = object
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            let known = uids.lock().expect("uids");
            owners.retain_mut(|owner| {
                match owner_key(owner, record.namespace.as_deref())
                    .and_then(|k| known.get(&k).cloned())
                {
                    Some(uid) => {
                        owner["uid"] = Value::String(uid);
                        true
                    }
                    None => {
                        warnings.push(format!(
                            "owner {} {} not in the cluster: reference dropped",
                            owner["kind"].as_str().unwrap_or("?"),
                            owner["name"].as_str().unwrap_or("?")
                        ));
                        false
                    }
                }
            });
            if owners.is_empty()
                && let Some(metadata) = object["metadata"].as_object_mut()
            {
                metadata.remove("ownerReferences");
            }
        }
        // A new object is created (a POST costs the API server far less than an apply); one
        // that appeared since the plan gets a server-side apply, one that differs is replaced.
        let uid = self
            .write(record, &object, planned.action)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(uid) = uid {
            uids.lock()
                .expect("uids")
                .insert(ObjectKey::of(record), uid);
        }
        if self.options.restore_status
            && let Some(status) = status
        {
            let mut with_status = object.clone();
            with_status["status"] = status;
            if let Err(error) = self.cluster.apply_status(&with_status).await {
                warnings.push(format!("status not restored: {error}"));
            }
        }
        Ok((planned.action, warnings))
    }

    /// Creates or applies; returns the written object's uid. A custom resource whose CRD this restore brings is tried again
    /// for a while when its type is not served yet: a CRD is Established a moment before
    /// discovery shows its resources.
    async fn write(
        &self,
        record: &ManifestRecord,
        object: &Value,
        action: PlannedAction,
    ) -> Result<Option<String>, ClusterError> {
        // Looked up only when a type is missing: a scan of the plan per write would make a
        // large restore quadratic.
        let crd_restored = || {
            self.objects.iter().any(|o| {
                o.record.kind == "CustomResourceDefinition"
                    && o.record.object["spec"]["group"] == record.group.as_str()
                    && o.record.object["spec"]["names"]["plural"] == record.resource.as_str()
            })
        };
        let deadline = Instant::now() + self.options.ready_timeout;
        let apply = || async {
            let applied = self.cluster.apply(object, true).await?;
            Ok(applied["metadata"]["uid"].as_str().map(str::to_owned))
        };
        // An object that differs is replaced (what was added since the backup goes too);
        // one deleted since the plan is created.
        let replace = || async {
            match self.cluster.replace(object).await {
                Ok(replaced) => Ok(replaced["metadata"]["uid"].as_str().map(str::to_owned)),
                Err(ClusterError::NotFound(what)) if !what.starts_with("resource type") => {
                    self.cluster.create(object).await.map(Some)
                }
                Err(other) => Err(other),
            }
        };
        loop {
            let written = match action {
                PlannedAction::Create => match self.cluster.create(object).await {
                    Err(ClusterError::Conflict(_)) => apply().await,
                    other => other.map(Some),
                },
                _ => replace().await,
            };
            match written {
                Err(ClusterError::NotFound(what))
                    if what.starts_with("resource type")
                        && Instant::now() < deadline
                        && crd_restored() =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    async fn wait_established(&self, crd: &ManifestRecord) -> Result<(), String> {
        let reference: ObjectRef = crd.reference();
        let deadline = Instant::now() + self.options.ready_timeout;
        loop {
            let current = self
                .cluster
                .get(&reference)
                .await
                .map_err(|e| e.to_string())?;
            let established = current.as_ref().is_some_and(|c| {
                c["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|cond| cond["type"] == "Established" && cond["status"] == "True")
            });
            if established {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not Established after {}s: its custom resources will fail",
                    self.options.ready_timeout.as_secs()
                ));
            }
            // The API server establishes a CRD within a few hundred milliseconds.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
