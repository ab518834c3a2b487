//! A freshly made file system for one restore: every tool restores into the same state (an
//! empty ext4 on a sparse image, mounted through a loop device), whoever restored before it.
//! Creating files gets slower as a file system fills, which otherwise favours whoever goes
//! first.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted empty file system, unmounted and removed on drop.
pub(super) struct FreshFs {
    image: PathBuf,
    mount: PathBuf,
}

impl FreshFs {
    /// An empty ext4 of `bytes` (sparse) in `work`, mounted at `work/<name>` (needs root).
    pub(super) fn new(work: &Path, name: &str, bytes: u64) -> Result<Self> {
        let image = work.join(format!("{name}.img"));
        let mount = work.join(name);
        std::fs::File::create(&image)?.set_len(bytes)?;
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
        std::fs::create_dir_all(&mount)?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount))
        .context("mounting a restore file system (the benchmark runs as root)")?;
        Ok(Self { image, mount })
    }

    /// Where it is mounted.
    pub(super) fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for FreshFs {
    fn drop(&mut self) {
        if let Err(error) = run(Command::new("umount").arg(&self.mount)) {
            eprintln!("could not unmount {}: {error}", self.mount.display());
            return;
        }
        std::fs::remove_dir(&self.mount).ok();
        std::fs::remove_file(&self.image).ok();
    }
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{:?} failed ({status})", command.get_program());
    }
    Ok(())
}
