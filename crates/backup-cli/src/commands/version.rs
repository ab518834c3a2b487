//! `kbackup version`.

use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{OutputFormat, Tabular, emit};
use serde::Serialize;

/// The version, with what it was built from.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    version: &'static str,
    kubernetes_api: &'static str,
    target: &'static str,
}

impl Tabular for VersionInfo {
    fn headers() -> Vec<&'static str> {
        vec!["VERSION", "KUBERNETES API", "TARGET"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.version.into(),
            self.kubernetes_api.into(),
            self.target.into(),
        ]
    }
}

/// Prints the version (plain text for tables, an object for JSON/YAML).
pub fn run(context: &Context) -> CliResult {
    let info = VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        kubernetes_api: "1.34",
        target: if cfg!(target_os = "linux") {
            "linux"
        } else {
            std::env::consts::OS
        },
    };
    match context.output {
        OutputFormat::Table => {
            crate::output::write_stdout(format!("kbackup {}\n", info.version).as_bytes())?
        }
        format => emit(format, &[info])?,
    }
    Ok(Exit::Success)
}
