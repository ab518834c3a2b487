//! The file-tree backup tools `bench repo` compares, each run as its documentation has users
//! run it: kbackup, restic 0.18.1 and rustic 0.11.4 (both cached test-environment components),
//! against a directory on the local disk or a prefix of the test MinIO.

use crate::testenv::TestEnv;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tool compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tool {
    Kbackup,
    Restic,
    Rustic,
}

/// The tools, in the order of the results.
pub(super) const TOOLS: [Tool; 3] = [Tool::Kbackup, Tool::Restic, Tool::Rustic];

impl Tool {
    pub(super) fn name(self) -> &'static str {
        match self {
            Tool::Kbackup => "kbackup",
            Tool::Restic => "restic",
            Tool::Rustic => "rustic",
        }
    }
}

/// Where the repositories go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    LocalDisk,
    Minio,
}

/// The test MinIO.
pub(super) struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The three programs and what they share.
pub(super) struct Peers {
    pub kbackup: PathBuf,
    pub restic: PathBuf,
    pub rustic: PathBuf,
    /// The test MinIO (needed for [`Backend::Minio`] only).
    pub s3: Option<S3>,
    /// Caches (restic's and rustic's; kbackup keeps none) and rustic's profiles.
    pub state: PathBuf,
}

/// One tool's repository for one measurement.
pub(super) struct Repo {
    tool: Tool,
    location: String,
}

impl Peers {
    /// The release kbackup (built), the peers from the test environment's cache (built once
    /// per version), their caches and profiles in `state`, MinIO when given.
    pub(super) fn new(root: &Path, env: &TestEnv, state: PathBuf, s3: Option<S3>) -> Result<Self> {
        Ok(Self {
            kbackup: super::release_kbackup(root, env)?,
            restic: env.component("restic")?.join("bin/restic"),
            rustic: env.component("rustic")?.join("bin/rustic"),
            s3,
            state,
        })
    }

    /// `tool`'s repository on `backend`: a directory below `work`, or `prefix-<tool>` in the
    /// bucket. Writes rustic's profile for it.
    pub(super) fn repo(
        &self,
        tool: Tool,
        backend: Backend,
        work: &Path,
        prefix: &str,
    ) -> Result<Repo> {
        let dir = work.join(format!("repo-{}", tool.name()));
        let key = format!("{prefix}-{}", tool.name());
        let s3 = || self.s3.as_ref().context("no MinIO to benchmark against");
        let location = match (tool, backend) {
            (Tool::Kbackup, Backend::LocalDisk) => format!("file://{}", dir.display()),
            (Tool::Kbackup, Backend::Minio) => format!("s3://{}/{key}", s3()?.bucket),
            (Tool::Restic, Backend::LocalDisk) => dir.display().to_string(),
            (Tool::Restic, Backend::Minio) => {
                let s3 = s3()?;
                format!("s3:{}/{}/{key}", s3.endpoint, s3.bucket)
            }
            (Tool::Rustic, backend) => {
                let repository = match backend {
                    Backend::LocalDisk => format!("repository = \"{}\"\n", dir.display()),
                    Backend::Minio => {
                        let s3 = s3()?;
                        format!(
                            "repository = \"opendal:s3\"\n[repository.options]\nendpoint = \"{}\"\n\
                         bucket = \"{}\"\nroot = \"/{key}\"\nregion = \"us-east-1\"\n\
                         access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
                            s3.endpoint, s3.bucket, s3.access_key, s3.secret_key
                        )
                    }
                };
                let profiles = self.state.join("rustic");
                std::fs::create_dir_all(&profiles)?;
                let profile = format!(
                    "[repository]\npassword = \"bench\"\ncache-dir = \"{}\"\n{repository}",
                    self.state.join("rustic-cache").display()
                );
                std::fs::write(profiles.join("bench.toml"), profile)?;
                "bench".into()
            }
        };
        Ok(Repo { tool, location })
    }

    /// `tool` run on `repo` with `args`, its output discarded.
    fn command(&self, repo: &Repo, args: &[&str]) -> Command {
        let mut c = match repo.tool {
            Tool::Kbackup => {
                let mut c = Command::new(&self.kbackup);
                c.args(["-q", "--no-progress"])
                    .env("KBACKUP_PASSWORD", "bench")
                    .env("KBACKUP_REPO", &repo.location);
                c
            }
            Tool::Restic => {
                let mut c = Command::new(&self.restic);
                c.args(["-r", &repo.location, "--quiet"])
                    .env("RESTIC_PASSWORD", "bench")
                    .env("RESTIC_CACHE_DIR", self.state.join("restic-cache"));
                c
            }
            Tool::Rustic => {
                let mut c = Command::new(&self.rustic);
                // The profile in $XDG_CONFIG_HOME/rustic/bench.toml.
                c.args(["-P", &repo.location, "--no-progress", "--log-level", "warn"])
                    .env("XDG_CONFIG_HOME", &self.state);
                c
            }
        };
        c.args(args).stdout(Stdio::null());
        if let Some(s3) = &self.s3 {
            c.env("AWS_ENDPOINT_URL", &s3.endpoint)
                .env("AWS_ACCESS_KEY_ID", &s3.access_key)
                .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key);
        }
        c
    }

    pub(super) fn init(&self, repo: &Repo) -> Command {
        match repo.tool {
            Tool::Kbackup => self.command(repo, &["repo", "init"]),
            _ => self.command(repo, &["init"]),
        }
    }

    pub(super) fn backup(&self, repo: &Repo, source: &Path) -> Command {
        let source = source.display().to_string();
        match repo.tool {
            Tool::Kbackup => self.command(repo, &["backup", "path", &source]),
            _ => self.command(repo, &["backup", &source]),
        }
    }

    /// Restores the latest snapshot of `source` into `target`.
    pub(super) fn restore(&self, repo: &Repo, source: &Path, target: &Path) -> Command {
        let target = target.display().to_string();
        match repo.tool {
            Tool::Kbackup => self.command(
                repo,
                &[
                    "restore",
                    "path",
                    &format!("latest:{}", source.display()),
                    "--target",
                    &target,
                ],
            ),
            Tool::Restic => self.command(repo, &["restore", "latest", "--target", &target]),
            Tool::Rustic => self.command(repo, &["restore", "latest", &target]),
        }
    }

    /// Where a restore of `source` into `target` puts the files.
    pub(super) fn restored(tool: Tool, source: &Path, target: &Path) -> PathBuf {
        match tool {
            // Both put a snapshot's paths below the target whole.
            Tool::Restic | Tool::Rustic => target.join(source.strip_prefix("/").unwrap_or(source)),
            Tool::Kbackup => target.to_path_buf(),
        }
    }
}
