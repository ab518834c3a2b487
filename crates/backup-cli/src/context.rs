//! Settings resolved from the file, the variables and the flags, handed to every command.

use crate::cli::{GlobalArgs, StorageArgs};
use crate::config::{self, FileConfig};
use crate::exit::CliError;
use crate::output::OutputFormat;
use crate::progress::BarProgress;
use anyhow::anyhow;
use backup_k8s::{ConnectOptions, KubeCluster};
use backup_storage::StorageOptions;
use backup_usecases::credentials::{CredentialError, apply_storage_secret};
use tokio_util::sync::CancellationToken;

/// What every command may need.
pub struct Context {
    /// Format of stdout data.
    pub output: OutputFormat,
    /// Only errors on stderr.
    pub quiet: bool,
    /// Draw progress bars (when stderr is a terminal).
    pub progress: bool,
    /// Which cluster.
    pub kube: ConnectOptions,
    /// The namespace asked for.
    pub namespace: Option<String>,
    /// Answer yes to confirmations.
    pub yes: bool,
    file: FileConfig,
}

impl Context {
    /// Resolves the global settings: flags and variables (already merged by clap) over the file.
    pub fn resolve(global: &GlobalArgs) -> Result<Self, CliError> {
        let file = config::load(global.config.as_deref())?;
        Ok(Self {
            output: global.output.or(file.output).unwrap_or_default(),
            quiet: global.quiet,
            progress: !(global.no_progress || file.no_progress.unwrap_or(false) || global.quiet),
            kube: ConnectOptions {
                kubeconfig: global
                    .kubeconfig
                    .clone()
                    .or_else(|| file.kubeconfig.clone()),
                context: global.context.clone().or_else(|| file.context.clone()),
            },
            namespace: global.namespace.clone().or_else(|| file.namespace.clone()),
            yes: global.yes,
            file,
        })
    }

    /// The StackState configuration from the configuration file, if it has one.
    pub fn stackstate_file_config(&self) -> Option<&serde_json::Value> {
        self.file.stackstate.as_ref()
    }

    /// The namespace, required by commands that work in one.
    pub fn require_namespace(&self) -> Result<&str, CliError> {
        self.namespace.as_deref().ok_or_else(|| {
            CliError::user(anyhow!(
                "this command needs a namespace: pass -n/--namespace (or set KBACKUP_NAMESPACE)"
            ))
        })
    }

    /// Asks `question` on stderr and reads the answer; anything but `yes` (or `y`) declines.
    /// `-y` answers yes without asking.
    pub fn confirm(&self, question: &str) -> Result<(), CliError> {
        if self.yes {
            return Ok(());
        }
        eprint!("{question} (yes/no): ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        match answer.trim().to_lowercase().as_str() {
            "yes" | "y" => Ok(()),
            _ => Err(CliError::user(anyhow!(
                "aborted: not confirmed (pass -y to skip the question)"
            ))),
        }
    }

    /// Asks a question that `-y` does not answer (a risk beyond the usual one); no answer
    /// (no terminal) is no.
    pub fn ask(&self, question: &str) -> Result<bool, CliError> {
        eprint!("{question} (yes/no): ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        Ok(matches!(answer.trim().to_lowercase().as_str(), "yes" | "y"))
    }

    /// A progress reporter for long work.
    pub fn progress(&self) -> BarProgress {
        BarProgress::new(self.progress)
    }

    /// A token that fires on the first Ctrl-C from now on. The listener is registered at
    /// once, before any change: a Ctrl-C between two steps is never lost.
    pub fn interrupt(&self) -> Result<CancellationToken, CliError> {
        let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let token = CancellationToken::new();
        let fired = token.clone();
        tokio::spawn(async move {
            if signal.recv().await.is_some() {
                fired.cancel();
            }
        });
        Ok(token)
    }

    /// The namespace of -n/--namespace, else the kubeconfig's.
    pub fn namespace_in(&self, cluster: &KubeCluster) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace().to_owned())
    }

    /// Prints an informational line on stderr unless `-q`.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Storage options: file, then the standard variables, then flags, then a Kubernetes
    /// Secret when one is named (its credentials win: naming it is explicit).
    pub async fn storage_options(&self, args: &StorageArgs) -> Result<StorageOptions, CliError> {
        let f = &self.file.storage;
        let env = StorageOptions::from_env();
        let mut options = StorageOptions {
            endpoint: args
                .storage_endpoint
                .clone()
                .or(env.endpoint)
                .or_else(|| f.endpoint.clone()),
            region: args
                .storage_region
                .clone()
                .or(env.region)
                .or_else(|| f.region.clone()),
            access_key_id: env.access_key_id.or_else(|| f.access_key_id.clone()),
            secret_access_key: env
                .secret_access_key
                .or_else(|| f.secret_access_key.clone()),
            session_token: env.session_token,
            virtual_hosted_style: args
                .virtual_hosted_style
                .then_some(true)
                .or(env.virtual_hosted_style)
                .or(f.virtual_hosted_style),
            azure_account: env.azure_account.or_else(|| f.azure_account.clone()),
            azure_key: env.azure_key.or_else(|| f.azure_key.clone()),
            azure_endpoint: env.azure_endpoint.or_else(|| f.azure_endpoint.clone()),
            ..env
        };
        let file_part_size = f
            .part_size
            .as_deref()
            .map(crate::size::parse_size)
            .transpose()
            .map_err(|e| CliError::user(anyhow!("configuration storage.partSize: {e}")))?;
        if let Some(size) = args.part_size.or(file_part_size) {
            options.put.part_size = usize::try_from(size)
                .map_err(|_| CliError::user(anyhow!("part size {size} is too large")))?;
        }
        if let Some(concurrency) = args.concurrency.or(f.concurrency) {
            options.put.concurrency = concurrency;
        }
        if let Some(reference) = args
            .storage_secret
            .clone()
            .or_else(|| f.credentials_secret.clone())
        {
            self.apply_secret(&reference, &mut options).await?;
        }
        Ok(options)
    }

    async fn apply_secret(
        &self,
        reference: &str,
        options: &mut StorageOptions,
    ) -> Result<(), CliError> {
        let cluster = KubeCluster::connect(&self.kube).await?;
        let (namespace, name) = match reference.split_once('/') {
            Some((ns, name)) => (ns.to_owned(), name.to_owned()),
            None => (self.namespace_in(&cluster), reference.to_owned()),
        };
        if namespace.is_empty() || name.is_empty() {
            return Err(CliError::user(anyhow!(
                "--storage-secret takes [NAMESPACE/]NAME, got '{reference}'"
            )));
        }
        apply_storage_secret(&cluster, &namespace, &name, options)
            .await
            .map_err(|error| match error {
                CredentialError::Cluster(error) => error.into(),
                CredentialError::SecretNotFound { .. } => CliError::user(anyhow!(
                    "Secret {namespace}/{name} (named by --storage-secret) does not exist"
                )),
                other => CliError::user(other),
            })
    }
}
