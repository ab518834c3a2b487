//! Programs run to completion, failing with what they printed on stderr.

use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::process::Command;

/// Runs `program` with `args`; its standard output, or an error naming the command and
/// ending with its stderr.
pub fn output<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        bail!(
            "{program} {} failed: {}",
            shown.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command, failing with its stderr.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<()> {
    output(program, args).map(drop)
}
