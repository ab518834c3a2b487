//! `cargo xtask fuzz`: the fuzz targets of `fuzz/` (every decoder of bytes read from
//! storage), each run for a while from the corpus kept in the repository, on the nightly
//! toolchain with cargo-fuzz (libFuzzer, AddressSanitizer). New inputs go to a scratch
//! corpus, crashes to `fuzz/artifacts/<target>/`.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 5] = [
    "pack_header",
    "blob",
    "tree_listing",
    "manifest_stream",
    "sealed_objects",
];

/// The cargo-fuzz release this project pins.
const CARGO_FUZZ: &str = "0.13.2";

/// Runs `targets` (all when empty) for `seconds` each; fails on the first crash, leak or
/// timeout, naming the input that caused it.
pub fn run(root: &Path, targets: &[String], seconds: u32) -> Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        bail!("fuzzing needs the nightly toolchain (`rustup toolchain list` shows none here)");
    }
    install_cargo_fuzz()?;
    let fuzz = root.join("fuzz");
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(|dir| Path::new(&dir).join("fuzz"))
        .unwrap_or_else(|_| fuzz.join("target"));
    let chosen: Vec<&str> = match targets {
        [] => TARGETS.to_vec(),
        named => named.iter().map(String::as_str).collect(),
    };
    for target in chosen {
        let scratch = tempfile::tempdir()?;
        let started = Instant::now();
        eprintln!("\n==> fuzz {target} for {seconds}s");
        let output = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", "-O", "--target-dir"])
            .arg(&target_dir)
            .arg(target)
            .arg(scratch.path())
            .arg(fuzz.join("corpus").join(target))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
                "-timeout=20",
            ])
            .current_dir(&fuzz)
            .output()
            .with_context(|| format!("running cargo fuzz run {target}"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        let done = log
            .lines()
            .rev()
            .find(|l| l.starts_with("Done ") || l.contains("DONE"))
            .unwrap_or("no summary");
        eprintln!(
            "<== fuzz {target}: {done} ({:.0}s)",
            started.elapsed().as_secs_f64()
        );
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
            bail!("fuzz target {target} failed (the input is under fuzz/artifacts/{target}/)");
        }
    }
    Ok(())
}

fn install_cargo_fuzz() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ)
        });
    if installed {
        return Ok(());
    }
    eprintln!("==> installing cargo-fuzz {CARGO_FUZZ}");
    let status = Command::new("cargo")
        .args(["install", "--locked", "cargo-fuzz", "--version", CARGO_FUZZ])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("installing cargo-fuzz {CARGO_FUZZ} failed");
    }
    Ok(())
}
