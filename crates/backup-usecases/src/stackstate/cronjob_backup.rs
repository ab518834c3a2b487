//! A settings or VictoriaMetrics backup now, taken as the installation takes it: a Job made
//! from its own backup CronJob (the chart's "backup now" script does the same), followed to
//! its end; the archives it wrote are those its data store's catalog gained meanwhile.

use super::{DataStore, Installation, StackStateError};
use backup_core::cluster::{Cluster, ContainerLog, JobState};
use backup_k8s::datastore::{CronJobChoice, CronJobRun, SETTINGS_BACKUP_SELECTOR};
use backup_storage::StorageOptions;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// A backup ready to run: the CronJob found, where the archives it adds are listed.
pub struct CronJobBackup<'a, C: Cluster> {
    installation: &'a Installation<C>,
    data_store: DataStore,
    run: CronJobRun<'a, C>,
    storage: StorageOptions,
    storage_endpoint: Option<String>,
}

/// What the backup did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronJobBackupOutcome {
    /// The CronJob whose template it ran.
    pub cronjob: String,
    /// The Job.
    pub job: String,
    /// How the Job ended.
    pub job_state: JobState,
    /// The archives that appeared while it ran, by name.
    pub archives: Vec<String>,
    /// Logs of every container, when it failed.
    #[serde(skip)]
    pub logs: Vec<ContainerLog>,
}

impl DataStore {
    /// The CronJob that backs it up: the one `named`, else the chart's settings backup
    /// CronJob (by its labels); `None` for a data store whose backups the chart takes
    /// without one to find (VictoriaMetrics, StackGraph's own Job).
    pub fn backup_cronjob(self, named: Option<&str>) -> Option<CronJobChoice> {
        match (named, self) {
            (Some(name), _) => Some(CronJobChoice::Named(name.to_owned())),
            (None, DataStore::Settings) => {
                Some(CronJobChoice::Labelled(SETTINGS_BACKUP_SELECTOR.to_owned()))
            }
            (None, _) => None,
        }
    }
}

impl<C: Cluster> Installation<C> {
    /// The backup of `data_store` by the chosen CronJob of the installation's namespace;
    /// its archives are listed as [`DataStore::catalog`] lists them (with `storage`, at
    /// `storage_endpoint` when given, else through the configuration's object store
    /// Service).
    pub async fn cronjob_backup(
        &self,
        data_store: DataStore,
        choice: &CronJobChoice,
        storage: StorageOptions,
        storage_endpoint: Option<String>,
    ) -> Result<CronJobBackup<'_, C>, StackStateError> {
        Ok(CronJobBackup {
            installation: self,
            data_store,
            run: CronJobRun::find(&self.cluster, &self.namespace, choice).await?,
            storage,
            storage_endpoint,
        })
    }
}

impl<C: Cluster> CronJobBackup<'_, C> {
    /// The CronJob that takes it.
    pub fn cronjob(&self) -> &str {
        self.run.name()
    }

    /// Lists the archives, runs the Job to its end (at most `timeout`), removes it, and
    /// lists them again (a Job that succeeded without a new archive is no backup: see
    /// [`super::backup_failure`]).
    pub async fn run(&self, timeout: Duration) -> Result<CronJobBackupOutcome, StackStateError> {
        let before = self.archive_names().await?;
        let run_id = chrono::Utc::now().format("%Y%m%dt%H%M%S").to_string();
        let job = self.run.run(&run_id, timeout).await?;
        let archives = match job.job_state {
            JobState::Succeeded => {
                let after = self.archive_names().await?;
                after.difference(&before).cloned().collect()
            }
            _ => Vec::new(),
        };
        Ok(CronJobBackupOutcome {
            cronjob: self.cronjob().to_owned(),
            job: job.job,
            job_state: job.job_state,
            archives,
            logs: job.logs,
        })
    }

    async fn archive_names(&self) -> Result<BTreeSet<String>, StackStateError> {
        let catalog = self
            .data_store
            .catalog(
                self.installation,
                self.storage.clone(),
                self.storage_endpoint.clone(),
            )
            .await?;
        Ok(catalog
            .archives
            .archives
            .into_iter()
            .map(|a| a.name)
            .collect())
    }
}
