//! A freshly made file system for one restore: every tool restores into the same state (an
//! empty ext4 on a sparse image, mounted through a loop device), whoever restored before it.
//! Creating files gets slower as a file system fills, which otherwise favours whoever goes
//! first. The loop device does direct I/O, so that its writes reach the disk as a real
//! disk's do: without, they are cached twice (the image's file system caches them again) and
//! the disk is written only by the `sync` after the restore, whatever the tool did to write
//! its data out as it went.

use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted empty file system, unmounted and removed on drop.
pub(super) struct FreshFs {
    image: PathBuf,
    device: String,
    mount: PathBuf,
    mounted: bool,
}

impl FreshFs {
    /// An empty ext4 of `bytes` (sparse) in `work`, mounted at `work/<name>` (needs root).
    pub(super) fn new(work: &Path, name: &str, bytes: u64) -> Result<Self> {
        let image = work.join(format!("{name}.img"));
        let mount = work.join(name);
        std::fs::File::create(&image)?.set_len(bytes)?;
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
        let device = crate::command::output(
            "losetup",
            &[
                OsStr::new("--direct-io=on"),
                OsStr::new("--find"),
                OsStr::new("--show"),
                image.as_os_str(),
            ],
        )
        .context("attaching a loop device (the benchmark runs as root)")?
        .trim()
        .to_owned();
        std::fs::create_dir_all(&mount)?;
        // Dropped (the device detached) if mounting fails.
        let mut fs = Self {
            image,
            device,
            mount,
            mounted: false,
        };
        run(Command::new("mount").arg(&fs.device).arg(&fs.mount))
            .context("mounting a restore file system")?;
        fs.mounted = true;
        Ok(fs)
    }

    /// Where it is mounted.
    pub(super) fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for FreshFs {
    fn drop(&mut self) {
        if self.mounted
            && let Err(error) = run(Command::new("umount").arg(&self.mount))
        {
            eprintln!("could not unmount {}: {error}", self.mount.display());
            return;
        }
        if let Err(error) = run(Command::new("losetup").arg("-d").arg(&self.device)) {
            eprintln!("could not detach {}: {error}", self.device);
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
