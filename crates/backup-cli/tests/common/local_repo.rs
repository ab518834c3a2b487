//! A local encrypted repository in a temporary home, and the binary run against it with a
//! clean environment.

use backup_core::resources::{ManifestReader, ManifestRecord};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository's password in every test that uses one.
pub const PASSWORD: &str = "correct horse";

/// A temporary home with an initialised repository at `home/repo`.
pub struct LocalRepo {
    pub home: tempfile::TempDir,
    pub repo: PathBuf,
}

impl LocalRepo {
    /// Creates the home and initialises the repository.
    pub fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let repo = home.path().join("repo");
        let local = Self { home, repo };
        let init = local.kbackup(&["repo", "init", "--repo", local.repo()]);
        assert!(init.status.success(), "{}", super::text(&init.stderr));
        local
    }

    pub fn repo(&self) -> &str {
        self.repo.to_str().unwrap()
    }

    pub fn kbackup(&self, args: &[&str]) -> Output {
        self.kbackup_as(&backup_testing::kubeconfig(), args)
    }

    pub fn kbackup_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        super::clean_command(self.home.path(), kubeconfig)
            .env("KBACKUP_PASSWORD", PASSWORD)
            .args(args)
            .output()
            .unwrap()
    }

    /// The restore plan of the latest snapshot as JSON (`extra` flags added).
    pub fn plan(&self, extra: &[&str]) -> Value {
        let mut args = vec![
            "-o",
            "json",
            "restore",
            "cluster",
            "latest",
            "--repo",
            self.repo(),
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        json_of(&self.kbackup(&args))
    }

    /// `restore cluster latest` with `extra` flags.
    pub fn restore(&self, extra: &[&str]) -> Output {
        let mut args = vec!["restore", "cluster", "latest", "--repo", self.repo()];
        args.extend_from_slice(extra);
        self.kbackup(&args)
    }

    /// `snapshot describe latest -o json`.
    pub fn describe_latest(&self) -> Output {
        self.kbackup(&[
            "-o",
            "json",
            "snapshot",
            "describe",
            "latest",
            "--repo",
            self.repo(),
        ])
    }

    /// The records of the latest snapshot, read back through `snapshot cat`.
    pub fn records(&self) -> Vec<ManifestRecord> {
        let out = self.kbackup(&["snapshot", "cat", "latest:manifests", "--repo", self.repo()]);
        assert!(out.status.success(), "{}", super::text(&out.stderr));
        let mut reader = ManifestReader::default();
        let records = super::text(&out.stdout)
            .lines()
            .filter_map(|l| reader.line(l).unwrap())
            .collect();
        reader.finish().unwrap();
        records
    }
}

/// The JSON a command printed, or a panic with what it said.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            super::text(&out.stdout),
            super::text(&out.stderr)
        )
    })
}
