//! Running a planned restore: waves in order, objects of a wave side by side, CRDs waited
//! for until Established, owner references re-linked to the restored owners.

use super::fingerprint::Fingerprint;
use super::slot::Slot;
use super::{ClusterRestore, KindCounts, RestoreOutcome};
use backup_core::ClusterError;
use backup_core::cluster::{ObjectRef, ResourceStore};
use backup_core::model::{PlannedAction, Report};
use backup_core::progress::Progress;
use backup_core::resources::{ManifestRecord, owner_key};
use futures::{StreamExt, stream};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

impl<C: ResourceStore + ?Sized> ClusterRestore<'_, C> {
    /// Restores wave by wave, `concurrency` objects at a time; waits for the CRDs of a wave
    /// to be Established before the next; re-links owner references to the restored owners
    /// (or drops references to owners that do not exist, which the garbage collector would
    /// otherwise act on). Every problem is collected in the report.
    pub async fn execute(&self, progress: &dyn Progress) -> RestoreOutcome {
        let started = Instant::now();
        let state = Mutex::new((BTreeMap::<String, KindCounts>::new(), Report::default()));
        let uids = Mutex::new(self.live_uids.clone());
        progress.start("restoring objects", Some(self.slots.len() as u64));
        // The slots are in wave order: each run of one wave goes before the next.
        for members in self.slots.chunk_by(|a, b| a.wave == b.wave) {
            stream::iter(members.iter())
                .for_each_concurrent(self.options.concurrency.max(1), |slot| {
                    let (state, uids) = (&state, &uids);
                    async move {
                        let outcome = self.restore_one(slot, uids).await;
                        // Objects left to their controllers or the cluster are expected; an
                        // existing object that differs is news, like any warning or error.
                        let news = match &outcome {
                            Ok((action, warnings)) => {
                                !warnings.is_empty()
                                    || (*action == PlannedAction::Skip && slot.differs)
                            }
                            Err(_) => true,
                        };
                        let (object, reason) = if news {
                            self.describe(slot)
                        } else {
                            Default::default()
                        };
                        let mut guard = state.lock().expect("restore state");
                        let (kinds, report) = &mut *guard;
                        let counts = kinds.entry(self.kind_of(slot)).or_default();
                        match outcome {
                            Ok((action, warnings)) => {
                                match action {
                                    PlannedAction::Create => counts.created += 1,
                                    PlannedAction::Update => counts.updated += 1,
                                    PlannedAction::Unchanged => counts.unchanged += 1,
                                    _ => counts.skipped += 1,
                                }
                                if action == PlannedAction::Skip {
                                    report.skipped += 1;
                                    if slot.differs {
                                        report.warn(&object, format!("skipped: {reason}"));
                                    }
                                } else {
                                    report.succeeded += 1;
                                }
                                for warning in warnings {
                                    report.warn(&object, warning);
                                }
                            }
                            Err(message) => {
                                counts.failed += 1;
                                report.error(&object, message.unwrap_or(reason));
                            }
                        }
                        progress.advance(1);
                    }
                })
                .await;
            for crd in members.iter().filter(|s| {
                self.types[s.resource as usize].kind == "CustomResourceDefinition"
                    && matches!(s.action, PlannedAction::Create | PlannedAction::Update)
            }) {
                let waited = match self.spool.read(crd.span) {
                    Ok(record) => self.wait_established(&record).await,
                    Err(error) => Err(error.to_string()),
                };
                if let Err(message) = waited {
                    let (object, _) = self.describe(crd);
                    state
                        .lock()
                        .expect("restore state")
                        .1
                        .error(&object, message);
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

    /// The object and the reason of a slot as the plan shows them.
    fn describe(&self, slot: &Slot) -> (String, String) {
        match self.planned(slot) {
            Ok(planned) => (planned.object, planned.reason),
            Err(error) => (
                format!("{} (record unreadable)", self.kind_of(slot)),
                error.to_string(),
            ),
        }
    }

    /// Restores one object; an error is its message, or `None` when the plan's reason says
    /// it (a conflict).
    async fn restore_one(
        &self,
        slot: &Slot,
        uids: &Mutex<HashMap<Fingerprint, String>>,
    ) -> Result<(PlannedAction, Vec<String>), Option<String>> {
        if slot.conflict {
            return Err(None);
        }
        if !matches!(slot.action, PlannedAction::Create | PlannedAction::Update) {
            return Ok((slot.action, vec![]));
        }
        let record = &self
            .spool
            .read(slot.span)
            .map_err(|e| Some(e.to_string()))?;
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
                    .and_then(|k| known.get(&self.fingerprints.of_key(&k)).cloned())
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
            .write(record, &object, slot.action)
            .await
            .map_err(|e| Some(e.to_string()))?;
        let key = self.fingerprints.of_record(record);
        if let Some(uid) = uid
            && self.owners.contains(&key)
        {
            uids.lock().expect("uids").insert(key, uid);
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
        Ok((slot.action, warnings))
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
        let crd_restored = || {
            self.crds
                .contains(&(record.group.clone(), record.resource.clone()))
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
