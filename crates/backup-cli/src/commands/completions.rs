//! `kbackup completions SHELL`.

use crate::cli::Cli;
use crate::exit::{CliResult, Exit};
use clap::CommandFactory;
use clap_complete::Shell;

/// Writes the completion script for `shell` to stdout.
pub fn run(shell: Shell) -> CliResult {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kbackup", &mut script);
    crate::output::write_stdout(&script)?;
    Ok(Exit::Success)
}
