//! The command line, as clap derive structs. Parsing only; no behaviour.

use crate::output::OutputFormat;
use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use std::path::PathBuf;

/// Backup and restore for Kubernetes.
#[derive(Debug, Parser)]
#[command(
    name = "kbackup",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. Each also comes from `KBACKUP_*` variables and the
/// configuration file (flags win over variables, variables over the file).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ~/.config/kbackup/config.yaml].
    #[arg(long, global = true, env = "KBACKUP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Kubeconfig file [default: $KUBECONFIG or ~/.kube/config].
    #[arg(long, global = true, env = "KBACKUP_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, global = true, env = "KBACKUP_CONTEXT")]
    pub context: Option<String>,
    /// Namespace.
    #[arg(short = 'n', long, global = true, env = "KBACKUP_NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format of the data written to stdout.
    #[arg(short = 'o', long, global = true, env = "KBACKUP_OUTPUT", value_enum)]
    pub output: Option<OutputFormat>,
    /// Print only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Never draw progress bars (`KBACKUP_NO_PROGRESS`: 1/0, true/false, yes/no, on/off).
    #[arg(
        long,
        global = true,
        env = "KBACKUP_NO_PROGRESS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_progress: bool,
    /// Answer yes to every confirmation.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version.
    Version,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the least-privilege Role (or ClusterRole) a command needs, as YAML to apply
    /// (docs/rbac.md); with --service-account, a binding of it to that ServiceAccount too.
    Rbac {
        /// The command.
        command: RbacCommand,
        /// The ServiceAccount (in -n/--namespace) to bind the role to.
        #[arg(long, value_name = "NAME")]
        service_account: Option<String>,
    },
    /// Work with object storage directly.
    Storage {
        /// What to do.
        #[command(subcommand)]
        action: StorageCommand,
    },
    /// Manage a kbackup repository.
    Repo {
        /// What to do.
        #[command(subcommand)]
        action: RepoCommand,
    },
    /// Back up into a kbackup repository.
    Backup {
        /// What to back up.
        #[command(subcommand)]
        source: BackupCommand,
    },
    /// Restore from a kbackup repository.
    Restore {
        /// What to restore.
        #[command(subcommand)]
        target: RestoreCommand,
    },
    /// Snapshots of a kbackup repository.
    Snapshot {
        /// What to do.
        #[command(subcommand)]
        action: SnapshotCommand,
    },
    /// Ask the operator for a restore (a RestoreSession) and follow it.
    #[command(name = "restoresession", visible_alias = "rst")]
    RestoreSession {
        /// What to do.
        #[command(subcommand)]
        action: RestoreSessionCommand,
    },
    /// Start a backup of the operator's now, as its schedule would.
    Trigger {
        /// What to start.
        #[command(subcommand)]
        what: TriggerCommand,
    },
    /// Workloads whose volumes kbackup backs up.
    Volumes {
        /// What to do.
        #[command(subcommand)]
        action: VolumesCommand,
    },
    /// What a BackupSession's Job runs for one repository (started by the operator, not by
    /// hand): the plan's tasks, then its retention; the report goes to stdout and to
    /// `--report-file`.
    #[command(name = "session-run", hide = true)]
    SessionRun(Box<OperatorJobArgs>),
    /// What a RestoreSession's Job runs (started by the operator, not by hand): the plan's
    /// manifests and volumes restored; the report goes to stdout and to `--report-file`.
    #[command(name = "restore-run", hide = true)]
    RestoreRun(Box<OperatorJobArgs>),
    /// What kbackup's mover pods run beside a volume (started by `backup volumes` and
    /// `restore volumes`, not by hand).
    #[command(hide = true)]
    Mover {
        /// What to do.
        #[command(subcommand)]
        action: MoverCommand,
    },
    /// StackState / SUSE Observability StackGraph backups (compatible with sts-backup).
    Stackgraph {
        /// What to do.
        #[command(subcommand)]
        action: StackGraphCommand,
    },
    /// StackState / SUSE Observability StackGraph v2 (incremental) backups: restored live,
    /// then backfilled while the system runs (compatible with sts-backup).
    #[command(name = "stackgraph-v2")]
    StackgraphV2 {
        /// What to do.
        #[command(subcommand)]
        action: StackGraphV2Command,
    },
    /// StackState / SUSE Observability Elasticsearch snapshots (compatible with sts-backup).
    Elasticsearch {
        /// What to do.
        #[command(subcommand)]
        action: ElasticsearchCommand,
    },
    /// StackState / SUSE Observability settings backups (.sty, compatible with sts-backup).
    Settings {
        /// What to do.
        #[command(subcommand)]
        action: SettingsCommand,
    },
    /// StackState / SUSE Observability VictoriaMetrics backups (compatible with sts-backup).
    #[command(name = "victoriametrics", alias = "victoria-metrics")]
    VictoriaMetrics {
        /// What to do.
        #[command(subcommand)]
        action: VictoriaMetricsCommand,
    },
}

/// Where the StackState backup configuration is.
#[derive(Debug, Clone, Args)]
pub struct ConfigSource {
    /// ConfigMap with the backup configuration (key `config`).
    #[arg(long, default_value = backup_core::stackstate::DEFAULT_CONFIG_NAME)]
    pub configmap: String,
    /// Secret merged over it (credentials); a missing Secret is fine.
    #[arg(long, default_value = backup_core::stackstate::DEFAULT_CONFIG_NAME)]
    pub secret: String,
}

/// Where the StackState backup configuration and archives are.
#[derive(Debug, Clone, Args)]
pub struct StackStateArgs {
    /// The configuration.
    #[command(flatten)]
    pub config: ConfigSource,
    /// Where and how to reach the archives (default: a port-forward to the MinIO Service).
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Where the configuration and Elasticsearch are.
#[derive(Debug, Clone, Args)]
pub struct EsArgs {
    /// The configuration.
    #[command(flatten)]
    pub config: ConfigSource,
    /// Elasticsearch URL (default: a port-forward to elasticsearch.service of the configuration).
    #[arg(long, env = "KBACKUP_ES_URL")]
    pub es_url: Option<String>,
    /// User for basic authentication; the password comes from KBACKUP_ES_PASSWORD.
    #[arg(long, env = "KBACKUP_ES_USERNAME")]
    pub es_username: Option<String>,
}

/// `kbackup elasticsearch ...`.
#[derive(Debug, Subcommand)]
pub enum ElasticsearchCommand {
    /// Create or update the snapshot repository and the SLM policy from the configuration
    /// (only what differs is sent).
    Configure {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
        /// Show the requests (credentials redacted) and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Leave the SLM policy alone (an Elasticsearch without x-pack has no SLM).
        #[arg(long)]
        no_slm: bool,
    },
    /// List the snapshots of the repository, newest first.
    List {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
    },
    /// List the cluster's indices (`_cat/indices`): health, status, shards, documents, sizes.
    ListIndices {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
        /// Only the indices matching this pattern (`sts_*`, comma-separated).
        #[arg(long)]
        pattern: Option<String>,
    },
    /// Describe one snapshot: state, times, indices, shards, failures.
    Describe {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
        /// The snapshot.
        #[arg(long)]
        snapshot: String,
    },
    /// Take a snapshot now (recording each index's document count in its metadata).
    Snapshot {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
        /// Its name (default: sts-backup-YYYYMMDD-HHMMSS).
        #[arg(long)]
        name: Option<String>,
        /// Indices (default: elasticsearch.slm.indices, else elasticsearch.restore.indicesPattern).
        #[arg(long)]
        indices: Option<String>,
        /// Wait until it is done and describe it.
        #[arg(long)]
        wait: bool,
        /// Take it even when some primary shards are unavailable (the snapshot is PARTIAL).
        #[arg(long)]
        partial: bool,
    },
    /// Delete a snapshot.
    Delete {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
        /// The snapshot.
        #[arg(long)]
        snapshot: String,
    },
    /// Restore a snapshot: scale down, roll over the datastream, delete the live indices it
    /// replaces, restore, follow the recovery, scale back up, compare document counts.
    Restore {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
        /// The snapshot.
        #[arg(long, required_unless_present = "latest", conflicts_with = "latest")]
        snapshot: Option<String>,
        /// The snapshot that started last.
        #[arg(long)]
        latest: bool,
        /// Start the restore and return; finalize with check-and-finalize.
        #[arg(long)]
        background: bool,
        /// Restore a PARTIAL snapshot (its failed shards come back empty).
        #[arg(long)]
        allow_partial: bool,
        /// Indices to restore (default: elasticsearch.restore.indicesPattern).
        #[arg(long)]
        indices: Option<String>,
        /// Restore under other names next to the live indices (deletes and scales nothing).
        #[arg(long, requires = "rename_replacement")]
        rename_pattern: Option<String>,
        /// The new names (`restored_$1`).
        #[arg(long, requires = "rename_pattern")]
        rename_replacement: Option<String>,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// How long the recovery may take.
        #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// How long to wait for the scaled-down pods to be gone.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        pods_timeout: std::time::Duration,
    },
    /// Finish a restore: once the snapshot's shards are recovered, scale the workloads back up.
    CheckAndFinalize {
        /// Configuration and Elasticsearch.
        #[command(flatten)]
        source: EsArgs,
        /// The snapshot being restored (printed by `restore`).
        #[arg(long)]
        operation_id: String,
        /// Wait for the recovery to finish.
        #[arg(long)]
        wait: bool,
        /// How long to wait with --wait.
        #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// What makes an archive the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatestByArg {
    /// The timestamp in its name (`sts-backup-YYYYMMDD-HHMM`).
    Name,
    /// The LastModified time of its objects in the bucket.
    Modified,
}

/// How to restore an archive (the same for every Job-based data store).
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The archive to restore (as `list` shows it, e.g. sts-backup-20261121-0300.graph).
    #[arg(long, required_unless_present = "latest", conflicts_with = "latest")]
    pub archive: Option<String>,
    /// Restore the newest complete archive: by the timestamp in its name, as sts-backup
    /// chooses (copying a bucket with `aws s3 sync` gives every archive the same
    /// LastModified), or by LastModified with `--latest-by modified`.
    #[arg(long)]
    pub latest: bool,
    /// What makes an archive the newest for --latest.
    #[arg(long, value_enum, default_value_t = LatestByArg::Name, conflicts_with = "archive")]
    pub latest_by: LatestByArg,
    /// Start the Job and return; finalize later with check-and-finalize.
    #[arg(long)]
    pub background: bool,
    /// Print what would be done and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long the restore Job may run.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// How long to wait for the scaled-down pods to be gone.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub pods_timeout: std::time::Duration,
}

/// The commands every Job-based data store has besides `restore`.
#[derive(Debug, Subcommand)]
pub enum DataStoreCommand {
    /// List the archives, newest first (multipart archives once, with their total size).
    List {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
    },
    /// Finish a restore: once its Job is done, scale the workloads back up and clean up.
    CheckAndFinalize {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// The restore Job's name (printed by `restore`).
        #[arg(long)]
        job: String,
        /// Wait for a running Job to finish.
        #[arg(long)]
        wait: bool,
        /// How long to wait with --wait.
        #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// `kbackup stackgraph ...`.
#[derive(Debug, Subcommand)]
pub enum StackGraphCommand {
    /// Restore a .graph archive: scale the StackGraph users down, run the restore Job, scale
    /// back up.
    Restore {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// Which archive and how.
        #[command(flatten)]
        restore: RestoreArgs,
    },
    /// Take a backup now: a Job exports StackGraph and uploads it as
    /// sts-backup-YYYYMMDD-HHMM.graph (split into parts with multipartArchive).
    Backup {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// How long the backup Job may run.
        #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Delete archives older than a retention, by the timestamp in their names (the rule of
    /// the chart's backup CronJob); every part of a multipart archive goes.
    Expire {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// Retention, e.g. 30d (the chart's default), 12h.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Show what would be deleted and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List and finalize.
    #[command(flatten)]
    Common(DataStoreCommand),
}

/// `kbackup stackgraph-v2 ...`.
#[derive(Debug, Subcommand)]
pub enum StackGraphV2Command {
    /// Restore a v2 backup (`sts-backup-....graph.v2`): scale the StackGraph users down, load
    /// the live data and the StackPacks taken with it in a Job, scale back up; then backfill
    /// the historic data in a second Job while the system runs (not all of it is there until
    /// the backfill ends). With --background, only the live restore is started.
    Restore {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// Which backup and how (--timeout bounds each of the two Jobs).
        #[command(flatten)]
        restore: RestoreArgs,
        /// Restore the graph only, not the StackPacks backed up with it.
        #[arg(long)]
        skip_stackpacks: bool,
    },
    /// Load the historic data of the last live restore while the system runs: completes a
    /// restore whose backfill was interrupted or failed. Refused while a restore is in
    /// progress (finalize it first).
    Backfill {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// How long the backfill Job may run.
        #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// End an unfinished backfill and keep the data loaded so far: the system works, the
    /// historic data not yet loaded stays missing. For a backfill that keeps failing.
    Abort {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// How long the abort Job may run.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// List and finalize.
    #[command(flatten)]
    Common(DataStoreCommand),
}

/// `kbackup settings ...`.
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Restore a .sty archive and the StackPacks backed up with it: scale the settings users
    /// down, run the restore Job, scale back up.
    Restore {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// Which archive and how.
        #[command(flatten)]
        restore: RestoreArgs,
        /// Restore the settings only, not the StackPacks backup taken with them.
        #[arg(long)]
        skip_stackpacks: bool,
        /// Read the archive from the legacy backup volume (settings.restore.pvc) instead of
        /// the bucket; needs --archive.
        #[arg(long, requires = "archive")]
        from_old_pvc: bool,
    },
    /// Take a backup now, as the installation takes it: a Job from its settings backup
    /// CronJob (as the chart's backup-configuration-now.sh makes one); reports the archives
    /// it wrote.
    Backup {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// The CronJob (default: the one labelled app.kubernetes.io/component=backup-settings).
        #[arg(long)]
        cronjob: Option<String>,
        /// How long the backup Job may run.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// List and finalize.
    #[command(flatten)]
    Common(DataStoreCommand),
}

/// `kbackup victoriametrics ...`.
#[derive(Debug, Subcommand)]
pub enum VictoriaMetricsCommand {
    /// Restore a vmbackup directory into every instance (both in haMode mirror): scale
    /// VictoriaMetrics down, run vmrestore in a Job, scale back up.
    Restore {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// Which backup and how.
        #[command(flatten)]
        restore: RestoreArgs,
    },
    /// Take a backup now: a Job from the CronJob that backs VictoriaMetrics up; reports the
    /// backup directories it wrote.
    Backup {
        /// Configuration and archives.
        #[command(flatten)]
        source: StackStateArgs,
        /// The CronJob.
        #[arg(long)]
        cronjob: String,
        /// How long the backup Job may run.
        #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// List and finalize.
    #[command(flatten)]
    Common(DataStoreCommand),
}

/// `kbackup storage ...`.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// List objects under a URL (one level; -r for all).
    Ls {
        /// `s3://bucket/prefix`, `az://container/prefix`, `gs://...`, `file:///dir`.
        url: String,
        /// List every object below the prefix, not one level.
        #[arg(short, long)]
        recursive: bool,
        /// Where and how to connect.
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Probe a location: write, read back, list, conditional create, delete.
    Check {
        /// The location to probe.
        url: String,
        /// Make a missing `file://` directory first, as a backup into it would.
        #[arg(long)]
        create: bool,
        /// Where and how to connect.
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Delete objects: the KEYs named below a URL, or every object below it with -r (asks
    /// first unless -y).
    Rm {
        /// `s3://bucket/prefix`, `az://container/prefix`, `gs://...`, `file:///dir`.
        url: String,
        /// Objects below the URL to delete (`snapshots/ab12...`).
        #[arg(required_unless_present = "recursive")]
        keys: Vec<String>,
        /// Delete every object below the URL.
        #[arg(short, long, conflicts_with = "keys")]
        recursive: bool,
        /// Where and how to connect.
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Copy a local file or stdin (`-`) to an object URL, or an object to a file or stdout (`-`).
    Cp {
        /// Source: a path, `-`, or an object URL.
        src: String,
        /// Destination: a path, `-`, or an object URL (ending in `/` keeps the source's name).
        dst: String,
        /// Where and how to connect.
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// How to reach object storage. Credentials come from the environment (`AWS_*`,
/// `AZURE_STORAGE_*`, `GOOGLE_*`), the configuration file, or a Kubernetes Secret; never from a
/// flag, so they do not show in the process list.
#[derive(Debug, Clone, Default, Args)]
pub struct StorageArgs {
    /// S3-compatible endpoint, e.g. http://minio:9000 (plain HTTP only when the URL says so).
    #[arg(long, env = "KBACKUP_STORAGE_ENDPOINT", value_name = "URL")]
    pub storage_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, env = "KBACKUP_STORAGE_REGION")]
    pub storage_region: Option<String>,
    /// Virtual-hosted-style S3 requests (default: path style with --storage-endpoint).
    #[arg(long)]
    pub virtual_hosted_style: bool,
    /// Read credentials from this Kubernetes Secret ([NAMESPACE/]NAME; namespace from -n or the
    /// kubeconfig), keys named like the variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_ENDPOINT_URL, AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, ...
    #[arg(long, env = "KBACKUP_STORAGE_SECRET", value_name = "[NAMESPACE/]NAME")]
    pub storage_secret: Option<String>,
    /// Size of each uploaded part (e.g. 16MiB; at least 5MiB).
    #[arg(long, env = "KBACKUP_PART_SIZE", value_parser = crate::size::parse_size)]
    pub part_size: Option<u64>,
    /// Parts uploaded at once.
    #[arg(long, env = "KBACKUP_CONCURRENCY")]
    pub concurrency: Option<usize>,
}

/// Which repository, and its password: `KBACKUP_PASSWORD` or `--password-file` (never a flag).
#[derive(Debug, Clone, Args)]
pub struct RepoArgs {
    /// The repository (`file:///backups`, `s3://bucket/prefix`, `az://...`, `gs://...`).
    #[arg(long, env = "KBACKUP_REPO", value_name = "URL")]
    pub repo: String,
    /// A file holding the password (first line).
    #[arg(long, env = "KBACKUP_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<std::path::PathBuf>,
    /// A Kubernetes Secret holding the password (`namespace/name`, key `password` or
    /// KubeStash's `RESTIC_PASSWORD`).
    #[arg(long, env = "KBACKUP_ENCRYPTION_SECRET", value_name = "NAMESPACE/NAME")]
    pub encryption_secret: Option<String>,
    /// Where and how to connect.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// The cost of deriving a key from a password (Argon2id, one lane), recorded in its key slot.
/// Every command that opens the repository with that password needs this much memory for a
/// moment; more memory makes guessing on GPUs dearer.
#[derive(Debug, Clone, Args)]
pub struct KdfArgs {
    /// Memory of the key derivation (at least 8MiB, at most 4GiB).
    #[arg(long, value_name = "SIZE", default_value = "46MiB", value_parser = parse_kdf_memory)]
    pub kdf_memory: u32,
    /// Passes over that memory.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub kdf_passes: u32,
}

impl KdfArgs {
    /// The key slot's parameters; costs below OWASP's minimum are refused.
    pub fn params(&self) -> Result<backup_repository::KdfParams, String> {
        let params = backup_repository::KdfParams {
            memory_kib: self.kdf_memory,
            iterations: self.kdf_passes,
            parallelism: 1,
        };
        params
            .check_new()
            .map_err(|e| format!("--kdf-memory/--kdf-passes: {e}"))?;
        Ok(params)
    }
}

/// A key derivation's memory, in KiB.
fn parse_kdf_memory(text: &str) -> Result<u32, String> {
    let kib = crate::size::parse_size(text)? / 1024;
    if !(8 * 1024..=4 * 1024 * 1024).contains(&kib) {
        return Err(format!(
            "key derivation memory '{text}' is out of range (8MiB to 4GiB)"
        ));
    }
    u32::try_from(kib).map_err(|_| format!("key derivation memory '{text}' is too large"))
}

/// The commands `kbackup rbac` knows the permissions of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RbacCommand {
    /// `repo`, `backup`, `restore`, `snapshot` with --encryption-secret or --storage-secret.
    Repo,
    /// `backup cluster`.
    BackupCluster,
    /// `restore cluster` (and `diff cluster`).
    RestoreCluster,
    /// `stackgraph ...`.
    Stackgraph,
    /// `stackgraph-v2 ...`.
    StackgraphV2,
    /// `settings ...`.
    Settings,
    /// `victoriametrics ...`.
    Victoriametrics,
    /// `elasticsearch ...`.
    Elasticsearch,
    /// `backup volumes` and `restore volumes` (with `restore cluster --include-volumes`,
    /// add `restore-cluster`; with `backup cluster --include-volumes`, `backup-cluster`).
    Volumes,
    /// `trigger backupconfiguration`.
    Trigger,
}

impl RbacCommand {
    /// The family of permissions it shares.
    pub fn family(self) -> backup_k8s::rbac::Family {
        use backup_k8s::rbac::Family;
        match self {
            RbacCommand::Repo => Family::RepositorySecrets,
            RbacCommand::BackupCluster => Family::ClusterBackup,
            RbacCommand::RestoreCluster => Family::ClusterRestore,
            RbacCommand::Stackgraph
            | RbacCommand::StackgraphV2
            | RbacCommand::Settings
            | RbacCommand::Victoriametrics => Family::DataStores,
            RbacCommand::Elasticsearch => Family::Elasticsearch,
            RbacCommand::Volumes => Family::Volumes,
            RbacCommand::Trigger => Family::Trigger,
        }
    }
}

/// `kbackup repo ...`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository (encrypted; the password opens a key slot).
    Init {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// zstd level of the chunks (1 fastest .. 19 smallest); fixed for the repository.
        #[arg(long, default_value_t = backup_repository::InitOptions::default().compression_level,
              value_parser = clap::value_parser!(i32).range(1..=19))]
        compression_level: i32,
        /// The password's key derivation.
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Verify the repository: snapshots, index, packs; with --read-data every byte.
    Check {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// Read and verify every pack and blob (`--read-data`), or a random N% of the packs
        /// (`--read-data=10%`; another subset each run).
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "100%", value_parser = parse_percent)]
        read_data: Option<u8>,
    },
    /// Free the space no snapshot uses (after `snapshot forget|delete`), in two phases: unused
    /// packs older than --grace are marked (and partly used ones repacked, then marked), and
    /// deleted by a prune at least --grace later if still not needed. Safe with backups
    /// running at the same time (if they finish within --grace); no lock is taken.
    Prune {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// Packs written more recently than this are kept (a running backup's packs are
        /// unreferenced until its snapshot is written).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        /// Partly used packs with at least this share of unused bytes are repacked: their
        /// used blobs copied into new packs, the old packs marked like unused ones (100%:
        /// no repacking).
        #[arg(long, default_value_t = backup_repository::prune::DEFAULT_REPACK_UNUSED, value_parser = parse_percent)]
        repack_unused: u8,
        /// Report what would be freed and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// What the repository holds: id, format, chunker, compression, keys, snapshots, packs.
    Info {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Manage the passwords (key slots) that open the repository.
    Key {
        /// What to do.
        #[command(subcommand)]
        action: KeyCommand,
    },
}

/// Tags and labels given to a new snapshot.
#[derive(Debug, Clone, Default, Args)]
pub struct MarkArgs {
    /// Tag of the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Label of the snapshot (`key=value`, repeatable): `latest --label key=value` finds it.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

impl From<MarkArgs> for backup_usecases::snapshot::SnapshotMarks {
    fn from(args: MarkArgs) -> Self {
        Self {
            tags: args.tags,
            labels: args.labels,
        }
    }
}

/// Which snapshots an id or `latest` is looked up among.
#[derive(Debug, Clone, Default, Args)]
pub struct SnapshotFilter {
    /// Only snapshots having this tag (repeatable; `latest` is the newest of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only snapshots having this label (`key=value`, repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

impl From<&SnapshotFilter> for backup_usecases::selection::SnapshotSelector {
    fn from(filter: &SnapshotFilter) -> Self {
        Self {
            tags: filter.tags.clone(),
            labels: filter.labels.clone(),
        }
    }
}

/// `key=value`; keys under `kbackup.io/` are kbackup's own.
fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("'{text}' is not a parameter (expected key=value)"))
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("'{text}' is not a label (expected key=value)"))?;
    if key.starts_with("kbackup.io/") {
        return Err(format!(
            "label '{key}': keys under kbackup.io/ are kbackup's own"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// `N%` (or `N`) from 0 to 100.
fn parse_percent(text: &str) -> Result<u8, String> {
    text.trim_end_matches('%')
        .parse::<u8>()
        .ok()
        .filter(|n| *n <= 100)
        .ok_or_else(|| format!("'{text}' is not a percentage from 0% to 100%"))
}

/// `kbackup repo key ...`. A new password comes from `KBACKUP_NEW_PASSWORD` or
/// `--new-password-file`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the key slots (`current` is the one this password opens).
    List {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Add a password.
    Add {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// A file holding the new password (first line).
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<std::path::PathBuf>,
        /// The new password's key derivation.
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Remove a key slot (never the one in use, never the last).
    Remove {
        /// The key's id (from `repo key list`).
        id: String,
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Replace the password in use (the new slot is written before the old one goes).
    Passwd {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// A file holding the new password (first line).
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<std::path::PathBuf>,
        /// The new password's key derivation.
        #[command(flatten)]
        kdf: KdfArgs,
    },
}

/// `kbackup backup ...`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up directories (contents, modes, owners, times, symlinks, hard links) as one
    /// component each, named by the absolute path. Files unchanged since the latest snapshot
    /// of the same directory (size, times, inode) are not read again.
    Path(PathBackupArgs),
    /// Back up standard input as one component of a new snapshot.
    Stdin(StdinBackupArgs),
    /// Back up the manifests of the cluster's resources (CRDs and custom resources
    /// included) as the `manifests` component of a new snapshot.
    Cluster(ClusterBackupArgs),
    /// Back up the data of the PersistentVolumeClaims that workloads' running pods mount
    /// (in -n/--namespace), through mover pods of the kbackup image beside each volume: one
    /// component per volume (`/<namespace>/<kind>/<workload>/<pod or claim>/<volume>`), all
    /// in one snapshot. Files unchanged since the previous snapshot of a volume are not read.
    Volumes(VolumeBackupArgs),
}

/// `kbackup backup volumes`.
#[derive(Debug, Args)]
pub struct VolumeBackupArgs {
    /// The repository (an object store the cluster can reach).
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Only this workload (`KIND/NAME`: deployment, statefulset, daemonset, pod; repeatable).
    #[arg(long, value_name = "KIND/NAME")]
    pub workload: Vec<String>,
    /// Only pods with these labels (`app=db`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only these volumes (the pod's volume name or the claim's name).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub include_volumes: Vec<String>,
    /// Never these volumes.
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub exclude_volumes: Vec<String>,
    /// How the mover pods run.
    #[command(flatten)]
    pub mover: MoverArgs,
    /// Hooks run in each pod before and after its volumes (YAML: `preBackup:` and
    /// `postBackup:` lists of `{name, command, container, workload, timeout, maxRetry,
    /// executionPolicy}`; docs/volumes.md).
    #[arg(long, value_name = "FILE")]
    pub hooks: Option<std::path::PathBuf>,
    /// Make the data consistent by scaling the Deployments and StatefulSets down for the
    /// backup and back afterwards (their replicas kept in an annotation: `kbackup volumes
    /// resume` scales back after a crash).
    #[arg(long, value_enum, default_value = "none")]
    pub quiesce: QuiesceArg,
    /// Read every file, ignoring the previous snapshot.
    #[arg(long)]
    pub force: bool,
    /// Tags and labels of the snapshot.
    #[command(flatten)]
    pub marks: MarkArgs,
}

/// `--quiesce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuiesceArg {
    /// Read the volumes while their pods run (hooks may flush or freeze them).
    None,
    /// Scale the workloads to zero for the backup, and back.
    Scale,
}

impl From<QuiesceArg> for backup_usecases::volumes::quiesce::Quiesce {
    fn from(arg: QuiesceArg) -> Self {
        match arg {
            QuiesceArg::None => Self::None,
            QuiesceArg::Scale => Self::Scale,
        }
    }
}

/// `kbackup trigger ...`.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Create a BackupSession of a BackupConfiguration in -n/--namespace; the operator runs
    /// it. Refused while the configuration is paused.
    #[command(name = "backupconfiguration", visible_alias = "bc")]
    BackupConfiguration {
        /// The BackupConfiguration.
        name: String,
        /// Its session to run (default: its only one).
        #[arg(long)]
        session: Option<String>,
    },
}

/// `kbackup volumes ...`.
#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// Finish what volume operations cut short left in -n/--namespace: scale back the
    /// workloads a `backup volumes --quiesce scale` left at zero (from their
    /// `kbackup.io/quiesced-replicas` annotation), and take the init container and Secret of
    /// a `restore volumes --target` out of its workload. Idempotent.
    Resume,
}

/// How mover pods run.
#[derive(Debug, Clone, Args)]
pub struct MoverArgs {
    /// The kbackup image the movers run.
    #[arg(long, env = "KBACKUP_MOVER_IMAGE", value_name = "IMAGE",
          default_value = concat!("localhost/kbackup:", env!("CARGO_PKG_VERSION")))]
    pub mover_image: String,
    /// Each mover's memory request and limit (a Kubernetes quantity).
    #[arg(long, default_value = "256Mi", value_name = "QUANTITY")]
    pub mover_memory: String,
    /// Each mover's CPU request (no limit): its share of a busy node's CPU. Small by default:
    /// a ReadWriteOnce volume's mover must fit on the node beside the pod using it.
    #[arg(long, default_value = "100m", value_name = "QUANTITY")]
    pub mover_cpu: String,
    /// Movers running at the same time.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub mover_concurrency: u16,
    /// How long a mover pod may take to start before its volume is given up.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub mover_start_timeout: std::time::Duration,
    /// How long one mover may run.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub mover_timeout: std::time::Duration,
    /// The object store's endpoint as the mover pods reach it (default: the one this
    /// command uses).
    #[arg(long, value_name = "URL")]
    pub mover_endpoint: Option<String>,
    /// A taint key the movers tolerate besides those their volume's pod tolerates
    /// (repeatable).
    #[arg(long, value_name = "KEY")]
    pub mover_toleration: Vec<String>,
    /// A label the movers' nodes must have (`KEY=VALUE`, repeatable): where a restore into
    /// a new claim provisions its volume.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub mover_node_selector: Vec<(String, String)>,
}

/// `kbackup mover ...`: the commands a mover pod runs. Credentials come from its
/// environment (the run's Secret).
#[derive(Debug, Subcommand)]
pub enum MoverCommand {
    /// Back a directory up into the repository as one component: packs and index, no
    /// snapshot; the report is the last line of the output.
    Backup {
        /// The directory (the claim's mount).
        dir: std::path::PathBuf,
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// The component's name.
        #[arg(long)]
        component: String,
        /// The snapshot (full id) whose component of that name is the parent.
        #[arg(long)]
        parent: Option<String>,
    },
    /// Restore a component of a snapshot into a directory; the report is the last line of
    /// the output.
    Restore {
        /// The directory (the claim's mount).
        dir: std::path::PathBuf,
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// The snapshot (full id).
        #[arg(long)]
        snapshot: String,
        /// The component's name.
        #[arg(long)]
        component: String,
        /// Replace files the directory already has.
        #[arg(long)]
        overwrite: bool,
        /// Read the directory back after the restore and compare it with the snapshot.
        #[arg(long)]
        verify: bool,
    },
    /// In a workload's pod (an init container): restore the components meant for this pod
    /// (`$POD_NAME`) into /kbackup-restore/<volume>, unless this session did already; the
    /// report is the last line of the output.
    RestorePod {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// The snapshot (full id).
        #[arg(long)]
        snapshot: String,
        /// The restore session.
        #[arg(long)]
        session: String,
        /// `POD:VOLUME=COMPONENT` (POD `*`: any pod), repeatable.
        #[arg(long = "restore", value_name = "POD:VOLUME=COMPONENT")]
        restores: Vec<String>,
        /// This pod's name.
        #[arg(long, env = "POD_NAME")]
        pod: String,
    },
}

/// `kbackup backup path`.
#[derive(Debug, Args)]
pub struct PathBackupArgs {
    /// The directories.
    #[arg(required = true)]
    pub dirs: Vec<std::path::PathBuf>,
    /// The repository.
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Leave out entries matching (relative or absolute path glob; `*` crosses `/`:
    /// `*.log` anywhere). Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Tags and labels of the snapshot.
    #[command(flatten)]
    pub marks: MarkArgs,
    /// Read every file, ignoring the previous snapshot.
    #[arg(long)]
    pub force: bool,
}

/// `kbackup backup stdin`.
#[derive(Debug, Args)]
pub struct StdinBackupArgs {
    /// The repository.
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The component's name.
    #[arg(long)]
    pub name: String,
    /// Tags and labels of the snapshot.
    #[command(flatten)]
    pub marks: MarkArgs,
}

/// `kbackup backup cluster`.
#[derive(Debug, Args)]
pub struct ClusterBackupArgs {
    /// The repository.
    #[command(flatten)]
    pub repo: RepoArgs,
    /// What to take.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Keep each object's status (restored only with --restore-status).
    #[arg(long)]
    pub keep_status: bool,
    /// Drop the `kubectl.kubernetes.io/last-applied-configuration` annotation (kept by
    /// default: `kubectl apply` merges against it after a restore).
    #[arg(long)]
    pub drop_last_applied: bool,
    /// Also write the objects as a plain YAML tree (DIR/<namespace>/<kind>/<name>.yaml).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Resource types listed at the same time.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Also back up the data of the PersistentVolumeClaims the workloads' running pods mount
    /// in the namespaces taken (as `backup volumes` does), in the same snapshot.
    #[arg(long)]
    pub include_volumes: bool,
    /// With --include-volumes: how the mover pods run.
    #[command(flatten)]
    pub mover: MoverArgs,
    /// With --include-volumes: hooks run in each pod before and after its volumes.
    #[arg(long, value_name = "FILE", requires = "include_volumes")]
    pub hooks: Option<std::path::PathBuf>,
    /// With --include-volumes: scale the workloads down while their volumes are read.
    #[arg(long, value_enum, default_value = "none")]
    pub quiesce: QuiesceArg,
    /// Tags and labels of the snapshot.
    #[command(flatten)]
    pub marks: MarkArgs,
}

/// Resource selection (Velero's flag names); lists are comma-separated or repeated.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Namespaces to take (globs).
    #[arg(long, value_delimiter = ',')]
    pub include_namespaces: Vec<String>,
    /// Namespaces to leave out (globs).
    #[arg(long, value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,
    /// Resources to take (`kind`, `plural`, `plural.group`).
    #[arg(long, value_delimiter = ',')]
    pub include_resources: Vec<String>,
    /// Resources to leave out.
    #[arg(long, value_delimiter = ',')]
    pub exclude_resources: Vec<String>,
    /// Only objects with these labels (`app=web,tier!=db`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Cluster-scoped objects: true (all), false (none); default: all without a namespace
    /// filter, only those the namespaced objects need with one.
    #[arg(long)]
    pub include_cluster_resources: Option<bool>,
}

/// `kbackup restore ...`.
#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Restore directories backed up with `backup path`. `ID:COMPONENT` writes that
    /// directory's contents into --target; `ID` alone writes each directory of the snapshot
    /// at TARGET/<its original path>.
    Path(PathRestoreArgs),
    /// Restore the manifests of a cluster snapshot: a plan diffed against the live cluster,
    /// then dependency-ordered waves with readiness waits.
    Cluster(ClusterRestoreArgs),
    /// Restore a volume component of a `backup volumes` snapshot into a claim, through a
    /// mover pod that mounts it.
    Volumes(VolumeRestoreArgs),
}

/// `kbackup restore volumes`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("into").required(true).args(["claim", "target"])))]
pub struct VolumeRestoreArgs {
    /// With --claim: `ID:COMPONENT` or `latest:COMPONENT` (COMPONENT: the full name, the
    /// pod of a StatefulSet, `db-1`, or `POD/VOLUME`). With --target: `ID` or `latest`.
    pub snapshot: String,
    /// The repository (an object store the cluster can reach).
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Fill this claim (`NAMESPACE/NAME`, or NAME in -n/--namespace) through a mover pod.
    #[arg(long, value_name = "[NAMESPACE/]NAME")]
    pub claim: Option<String>,
    /// Restore into this running workload (`statefulset/NAME` or `deployment/NAME` in
    /// -n/--namespace) through an init container added to its pod template, then removed:
    /// each pod restores its own components, replacing the files it has.
    #[arg(long, value_name = "KIND/NAME")]
    pub target: Option<String>,
    /// With --target: only these components (a StatefulSet's pods: `db-0,db-2`).
    #[arg(long, value_delimiter = ',', requires = "target")]
    pub components: Vec<String>,
    /// With --claim: replace files the claim already has (default: refuse before writing).
    #[arg(long, requires = "claim")]
    pub overwrite: bool,
    /// With --claim: read the claim back after the restore and compare it with the snapshot
    /// (every file's content chunk by chunk); a difference fails the restore.
    #[arg(long, requires = "claim")]
    pub verify: bool,
    /// Which snapshots `ID` or `latest` is looked up among.
    #[command(flatten)]
    pub among: SnapshotFilter,
    /// How the mover pod (or the init container) runs.
    #[command(flatten)]
    pub mover: MoverArgs,
}

/// `kbackup restore path`.
#[derive(Debug, Args)]
pub struct PathRestoreArgs {
    /// `ID`, `ID:COMPONENT` or `latest[:COMPONENT]` (ID: a unique prefix).
    pub snapshot: String,
    /// The repository.
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Where to write (created if missing).
    #[arg(long)]
    pub target: std::path::PathBuf,
    /// Only entries matching (and all below a matching directory). Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Replace files that exist in the target (default: refuse before writing anything).
    #[arg(long)]
    pub overwrite: bool,
    /// Read each restored directory back and compare it with the snapshot (every file's
    /// content chunk by chunk, sizes, directories, links); a difference fails the restore.
    #[arg(long)]
    pub verify: bool,
    /// Which snapshots `ID` or `latest` is looked up among.
    #[command(flatten)]
    pub among: SnapshotFilter,
    /// Pack reads in flight at the same time (each streamed, its chunks written as they
    /// arrive).
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
}

/// `kbackup restore cluster`.
#[derive(Debug, Args)]
pub struct ClusterRestoreArgs {
    /// The snapshot: an id (prefix) or `latest`.
    pub snapshot: String,
    /// The repository.
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Which snapshots `ID` or `latest` is looked up among.
    #[command(flatten)]
    pub among: SnapshotFilter,
    /// What to restore (namespaces as they were backed up).
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Restore namespace OLD into NEW (`old:new`, repeatable).
    #[arg(long, value_name = "OLD:NEW")]
    pub namespace_mapping: Vec<String>,
    /// Existing objects that differ: skip them, update them (replaced by the backed-up
    /// object: fields added since the backup go), or fail.
    #[arg(long, value_enum, default_value = "skip")]
    pub existing: ExistingArg,
    /// Restore `status` too (needs a backup taken with --keep-status).
    #[arg(long)]
    pub restore_status: bool,
    /// With --namespace-mapping, keep Services' node ports (dropped by default: the
    /// original Services hold them, and the API server allocates free ones).
    #[arg(long)]
    pub preserve_nodeports: bool,
    /// Components to restore (default: all; a cluster snapshot has `manifests`).
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<String>,
    /// Print the plan (create, unchanged, differs, skipped, with reasons) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Objects applied at the same time.
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// Restore the volumes of the snapshot too: namespaces and claims first (new, unbound
    /// claims), each claim this restore creates filled with its data by a mover pod, and
    /// only then the workloads and the rest (not at all when a claim could not be filled).
    #[arg(long)]
    pub include_volumes: bool,
    /// With --include-volumes: each claim read back after it is filled and compared with
    /// the snapshot (every file's content chunk by chunk); a difference fails it.
    #[arg(long, requires = "include_volumes")]
    pub verify: bool,
    /// With --include-volumes: how the mover pods run.
    #[command(flatten)]
    pub mover: MoverArgs,
}

/// What a Job the operator starts runs with (`session-run`, `restore-run`).
#[derive(Debug, clap::Args)]
pub struct OperatorJobArgs {
    /// The plan, as JSON (the operator writes it).
    #[arg(long, value_name = "JSON")]
    pub plan: String,
    /// Also write the report here (the container's termination message).
    #[arg(long, value_name = "FILE")]
    pub report_file: Option<std::path::PathBuf>,
    /// Where and how to connect (credentials from the environment).
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How the volume movers run.
    #[command(flatten)]
    pub mover: MoverArgs,
}

/// `kbackup restoresession ...`.
#[derive(Debug, Subcommand)]
pub enum RestoreSessionCommand {
    /// Create a RestoreSession in -n/--namespace; the operator runs it. With --wait, follow
    /// it to its end (exit 0 only when it succeeded).
    Create(Box<RestoreSessionArgs>),
    /// Follow a RestoreSession to its end and show it (exit 0 only when it succeeded).
    Wait {
        /// The RestoreSession.
        name: String,
        /// How long to follow it (it goes on afterwards).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// `kbackup restoresession create`.
#[derive(Debug, clap::Args)]
pub struct RestoreSessionArgs {
    /// Its name.
    pub name: String,
    /// Where the data goes: `namespace/NAME` (its manifests and volumes), `statefulset/NAME`
    /// or `deployment/NAME` (its volumes, and its manifests when it is gone).
    #[arg(long, value_name = "KIND/NAME")]
    pub target: String,
    /// The Repository object.
    #[arg(long)]
    pub repository: Option<String>,
    /// The Snapshot object, or `latest` (the repository's newest that succeeded).
    #[arg(long, default_value = "latest")]
    pub snapshot: String,
    /// The namespace of the Repository and Snapshot (default: -n/--namespace).
    #[arg(long, value_name = "NAMESPACE")]
    pub source_namespace: Option<String>,
    /// Components to restore (default: all): names as the Snapshot lists them, a pod's
    /// member (`db-0`), or `pod-N` of a StatefulSet target.
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<String>,
    /// What to restore (default: the manifests, and the volumes the snapshot holds).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub tasks: Vec<RestoreTaskArg>,
    /// Restore the target namespace's objects into this namespace (made when missing).
    #[arg(long, value_name = "NAMESPACE")]
    pub restore_namespace: Option<String>,
    /// Only these resources (`deployments,configmaps`).
    #[arg(long, value_delimiter = ',')]
    pub include_resources: Vec<String>,
    /// Not these resources.
    #[arg(long, value_delimiter = ',')]
    pub exclude_resources: Vec<String>,
    /// Only objects with these labels (`app=web`).
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
    /// Objects that exist and differ: leave them (skip), replace them (update), or fail.
    #[arg(long, value_enum, default_value = "skip")]
    pub existing: ExistingArg,
    /// Fail the restore and stop its work past this long (`30m`).
    #[arg(long, value_name = "DURATION")]
    pub restore_timeout: Option<String>,
    /// Read each restored volume back and compare it with the snapshot (`spec.verify`).
    #[arg(long)]
    pub verify: bool,
    /// A data-store task's parameter (`configMap=NAME`, `secret=NAME`,
    /// `storageEndpoint=URL`, `elasticsearchUrl=URL`; repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Follow it to its end.
    #[arg(long)]
    pub wait: bool,
    /// With --wait, how long to follow it (it goes on afterwards).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// `--tasks`: the values are the RestoreSession's task names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[allow(clippy::enum_variant_names)]
pub enum RestoreTaskArg {
    /// The snapshot's manifests (with their claims filled first when volumes are restored).
    ManifestRestore,
    /// The snapshot's volume components.
    VolumeRestore,
    /// StackState's StackGraph, by its own restore Job (target: the installation's namespace).
    StackgraphRestore,
    /// StackState's settings, by their own restore Job.
    SettingsRestore,
    /// StackState's VictoriaMetrics, by its own restore Job.
    VictoriaMetricsRestore,
    /// StackState's Elasticsearch, from a snapshot of its snapshot repository.
    ElasticsearchRestore,
}

/// `--existing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExistingArg {
    /// Leave existing objects alone.
    Skip,
    /// Update them with a server-side apply.
    Update,
    /// Report them as errors.
    Fail,
}

/// `kbackup snapshot ...`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// List the snapshots, oldest first.
    List {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// Which snapshots to list.
        #[command(flatten)]
        among: SnapshotFilter,
    },
    /// What changed between two snapshots: components by content, and for cluster snapshots
    /// every object by its checksum (added, removed, changed).
    Diff {
        /// The older snapshot (id prefix or `latest`).
        first: String,
        /// The newer snapshot.
        second: String,
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Delete one snapshot (its data is freed by a later prune); asks unless -y.
    Delete {
        /// The snapshot: an id (prefix) or `latest`.
        snapshot: String,
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// Which snapshots `ID` or `latest` is looked up among.
        #[command(flatten)]
        among: SnapshotFilter,
    },
    /// Describe a snapshot: its components, and for a cluster snapshot the objects per kind
    /// and namespace.
    Describe {
        /// The snapshot: an id (prefix) or `latest`.
        snapshot: String,
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// Which snapshots `ID` or `latest` is looked up among.
        #[command(flatten)]
        among: SnapshotFilter,
    },
    /// Remove snapshots by a retention policy (the newest successful one always stays).
    Forget {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// Keep the newest N successful snapshots.
        #[arg(long, default_value_t = 0)]
        keep_last: u32,
        /// Keep the newest of each of the last N hours.
        #[arg(long, default_value_t = 0)]
        keep_hourly: u32,
        /// Keep the newest of each of the last N days.
        #[arg(long, default_value_t = 0)]
        keep_daily: u32,
        /// Keep the newest of each of the last N weeks.
        #[arg(long, default_value_t = 0)]
        keep_weekly: u32,
        /// Keep the newest of each of the last N months.
        #[arg(long, default_value_t = 0)]
        keep_monthly: u32,
        /// Keep the newest of each of the last N years.
        #[arg(long, default_value_t = 0)]
        keep_yearly: u32,
        /// Keep successful snapshots younger than this (relative to the newest), e.g. 30d.
        #[arg(long, value_parser = humantime::parse_duration)]
        keep_within: Option<std::time::Duration>,
        /// Keep snapshots with this tag (repeatable).
        #[arg(long)]
        keep_tag: Vec<String>,
        /// Show what would go and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a component of a snapshot to stdout (`ID:COMPONENT`, ID may be `latest` or a prefix).
    Cat {
        /// The repository.
        #[command(flatten)]
        repo: RepoArgs,
        /// `ID:COMPONENT`.
        target: String,
        /// Which snapshots `ID` or `latest` is looked up among.
        #[command(flatten)]
        among: SnapshotFilter,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn kdf_of(args: &[&str]) -> Result<backup_repository::KdfParams, clap::Error> {
        let cli = Cli::try_parse_from(
            ["kbackup", "repo", "init", "--repo", "memory://x"]
                .iter()
                .chain(args),
        )?;
        match cli.command {
            Command::Repo {
                action: RepoCommand::Init { kdf, .. },
            } => kdf
                .params()
                .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e)),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn key_derivation_defaults_are_the_library_defaults() {
        assert_eq!(
            kdf_of(&[]).unwrap(),
            backup_repository::KdfParams::default()
        );
    }

    #[test]
    fn key_derivation_costs_are_checked() {
        let strong = kdf_of(&["--kdf-memory", "256MiB", "--kdf-passes", "4"]).unwrap();
        assert_eq!((strong.memory_kib, strong.iterations), (256 * 1024, 4));
        for bad in [
            &["--kdf-memory", "4MiB"][..],
            &["--kdf-memory", "8GiB"],
            &["--kdf-passes", "0"],
            &["--kdf-memory", "8MiB", "--kdf-passes", "1"],
            &["--kdf-memory", "19MiB", "--kdf-passes", "1"],
        ] {
            let error = kdf_of(bad).unwrap_err().to_string();
            assert!(error.contains("kdf"), "{bad:?}: {error}");
        }
    }
}
