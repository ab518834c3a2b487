//! A backup the installation takes itself: a Job made now from one of its own CronJobs, as
//! `kubectl create job --from=cronjob/NAME` makes it (the chart's "backup now" scripts).
//! The CronJob's template is used as it is: its image, scripts and credentials stay the
//! installation's.

use super::JobOutcome;
use super::backup::follow_to_end;
use backup_core::cluster::{ApiResourceType, Cluster, ObjectRef};
use backup_core::workflow::WorkflowError;
use serde_json::{Value, json};
use std::time::Duration;

/// The settings backup CronJob of the SUSE Observability chart, by its labels.
pub const SETTINGS_BACKUP_SELECTOR: &str =
    "app.kubernetes.io/name=suse-observability,app.kubernetes.io/component=backup-settings";

/// The longest CronJob name kept in a Job's name (a Job's name is also a label value: at
/// most 63 characters, with `-manual-` and a 15-character run id).
const NAME_ROOM: usize = 63 - "-manual-".len() - 15;

/// Which CronJob of the namespace takes the backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronJobChoice {
    /// The CronJob of that name.
    Named(String),
    /// The one CronJob matching this label selector.
    Labelled(String),
}

/// One CronJob of one namespace, found, ready to run now.
pub struct CronJobRun<'a, C: Cluster + ?Sized> {
    cluster: &'a C,
    namespace: String,
    cronjob: Value,
}

impl<'a, C: Cluster + ?Sized> CronJobRun<'a, C> {
    /// Finds the chosen CronJob in `namespace`: absent, or several matching a selector, is
    /// an error naming what was looked for.
    pub async fn find(
        cluster: &'a C,
        namespace: &str,
        choice: &CronJobChoice,
    ) -> Result<Self, WorkflowError> {
        let cronjob = match choice {
            CronJobChoice::Named(name) => cluster
                .get(&ObjectRef::namespaced(
                    "batch/v1", "CronJob", namespace, name,
                ))
                .await?
                .ok_or_else(|| {
                    WorkflowError::Unsupported(format!(
                        "no CronJob {name} in namespace {namespace}"
                    ))
                })?,
            CronJobChoice::Labelled(selector) => {
                let cronjobs = ApiResourceType::namespaced("batch", "v1", "CronJob", "cronjobs");
                let page = cluster
                    .list_page(&cronjobs, Some(namespace), Some(selector), 2, None)
                    .await?;
                let mut found = page.items.into_iter();
                match (found.next(), found.next()) {
                    (Some(one), None) => one,
                    (None, _) => {
                        return Err(WorkflowError::Unsupported(format!(
                            "no CronJob labelled {selector} in namespace {namespace}"
                        )));
                    }
                    (Some(_), Some(_)) => {
                        return Err(WorkflowError::Unsupported(format!(
                            "several CronJobs labelled {selector} in namespace {namespace}: name one"
                        )));
                    }
                }
            }
        };
        Ok(Self {
            cluster,
            namespace: namespace.to_owned(),
            cronjob,
        })
    }

    /// The CronJob's name.
    pub fn name(&self) -> &str {
        self.cronjob["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
    }

    /// Creates the Job of `run_id` from the CronJob's template, waits (by watching) for it
    /// at most `timeout`, collects the logs of a failure, and removes it.
    pub async fn run(&self, run_id: &str, timeout: Duration) -> Result<JobOutcome, WorkflowError> {
        let name = job_name(self.name(), run_id);
        let manifest = job_from_cronjob(&self.cronjob, &name)?;
        self.cluster.create_job(&self.namespace, &manifest).await?;
        follow_to_end(self.cluster, &self.namespace, name, timeout).await
    }
}

/// `<cronjob>-manual-<run id>`, as the chart's scripts name them, within a label's length.
fn job_name(cronjob: &str, run_id: &str) -> String {
    let kept: String = cronjob.chars().take(NAME_ROOM).collect();
    format!("{}-manual-{run_id}", kept.trim_end_matches('-'))
}

/// The Job `kubectl create job --from=cronjob/...` makes: the template's labels,
/// annotations and spec, the `manual` instantiation annotation, owned by the CronJob.
pub fn job_from_cronjob(cronjob: &Value, name: &str) -> Result<Value, WorkflowError> {
    let cronjob_name = cronjob["metadata"]["name"].as_str().unwrap_or_default();
    let template = &cronjob["spec"]["jobTemplate"];
    let (Some(uid), Some(spec)) = (
        cronjob["metadata"]["uid"].as_str(),
        template["spec"].as_object(),
    ) else {
        return Err(WorkflowError::Unsupported(format!(
            "CronJob {cronjob_name} has no job template to run"
        )));
    };
    let mut annotations = template["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob_name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    });
    if let Some(labels) = template["metadata"]["labels"].as_object() {
        job["metadata"]["labels"] = Value::Object(labels.clone());
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cronjob() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "suse-observability-backup-conf", "uid": "u-1",
                "labels": {"app.kubernetes.io/component": "backup-settings"}},
            "spec": {"schedule": "0 4 * * *", "jobTemplate": {
                "metadata": {"labels": {"app.kubernetes.io/component": "backup"},
                    "annotations": {"a": "b"}},
                "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "backup-settings", "image": "server"}]}}}}}})
    }

    #[test]
    fn the_job_is_the_template_owned_by_its_cronjob_as_kubectl_makes_it() {
        let job = job_from_cronjob(&cronjob(), "conf-manual-1").unwrap();
        assert_eq!(job["metadata"]["name"], "conf-manual-1");
        assert_eq!(
            job["metadata"]["labels"]["app.kubernetes.io/component"],
            "backup"
        );
        assert_eq!(job["metadata"]["annotations"]["a"], "b");
        assert_eq!(
            job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
            "manual"
        );
        let owner = &job["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "CronJob");
        assert_eq!(owner["uid"], "u-1");
        assert_eq!(job["spec"]["backoffLimit"], 1);
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["image"],
            "server"
        );
    }

    #[test]
    fn a_cronjob_without_a_template_is_refused() {
        let mut hostile = cronjob();
        hostile["spec"]["jobTemplate"] = json!("not an object");
        let error = job_from_cronjob(&hostile, "x").unwrap_err().to_string();
        assert!(error.contains("no job template"), "{error}");
        let mut no_uid = cronjob();
        no_uid["metadata"]["uid"] = Value::Null;
        assert!(job_from_cronjob(&no_uid, "x").is_err());
    }

    #[test]
    fn job_names_stay_within_a_label_value() {
        let long = "a".repeat(52);
        let name = job_name(&long, "20261201t120000");
        assert!(name.len() <= 63, "{name}");
        assert!(name.ends_with("-manual-20261201t120000"));
        assert_eq!(
            job_name("suse-observability-backup-conf", "20261201t120000"),
            "suse-observability-backup-conf-manual-20261201t120000"
        );
    }
}
