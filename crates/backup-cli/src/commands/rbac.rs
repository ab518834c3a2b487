//! `kbackup rbac COMMAND`: the least-privilege role a command needs, as YAML to apply.

use crate::cli::RbacCommand;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use anyhow::anyhow;

/// Prints the role (and the binding to `service_account`) as YAML documents.
pub fn run(context: &Context, command: RbacCommand, service_account: Option<&str>) -> CliResult {
    let family = command.family();
    let namespace = match (family.cluster_wide(), service_account) {
        (true, None) => context.namespace.as_deref().unwrap_or("default"),
        _ => context.require_namespace()?,
    };
    let mut documents = vec![family.role(namespace)];
    documents.extend(service_account.map(|account| family.binding(namespace, account)));
    let yaml: Vec<String> = documents
        .iter()
        .map(|d| serde_saphyr::to_string(d).map_err(|e| CliError::user(anyhow!(e))))
        .collect::<Result<_, _>>()?;
    print!("{}", yaml.join("---\n"));
    Ok(Exit::Success)
}
