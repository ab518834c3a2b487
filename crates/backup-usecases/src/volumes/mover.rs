//! The data mover: what runs in a pod beside a volume. It backs a mounted claim up into the
//! repository (packs and index, no snapshot: the coordinator commits one snapshot for all the
//! volumes of a run) or restores a component into a mounted claim, and reports what it did
//! as one line of its log.

use crate::trees::{TreeError, TreeRestoreRequest, back_up_one, restore_trees};
use backup_core::Progress;
use backup_repository::tree::{PathPatterns, TreeBackupOptions, TreeContent};
use backup_repository::{BackupSession, Repository, SnapshotFile, default_workers};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What starts the report line in a mover's log.
pub const REPORT_MARKER: &str = "kbackup-mover-report ";

/// The longest report line read back (a tree's listing chunks are listed in it).
const MAX_REPORT_LINE: usize = 8 << 20;

/// How many warnings a report carries (their count is always given).
const MAX_WARNINGS: usize = 20;

/// What a mover's backup did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoverBackupReport {
    /// The tree stored, named as the component.
    pub tree: TreeContent,
    /// Files read.
    pub files_read: u64,
    /// Files unchanged since the parent snapshot, not read.
    pub files_unchanged: u64,
    /// Entries not backed up: how many.
    pub warning_count: usize,
    /// The first of them.
    pub warnings: Vec<String>,
    /// Chunks stored or found.
    pub chunks: u64,
    /// Of them, already in the repository.
    pub deduplicated: u64,
    /// Bytes the repository did not have yet.
    pub added_bytes: u64,
    /// Milliseconds it took.
    pub duration_ms: u64,
}

/// What a mover's restore did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoverRestoreReport {
    /// The component restored.
    pub component: String,
    /// Directories.
    pub dirs: u64,
    /// Regular files written.
    pub files: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// What could not be restored as it was: how many.
    pub warning_count: usize,
    /// The first of them.
    pub warnings: Vec<String>,
    /// Milliseconds it took.
    pub duration_ms: u64,
    /// Files read back identical to the snapshot (a verified restore).
    #[serde(default)]
    pub verified_files: u64,
}

/// The report as the line a mover prints.
pub fn report_line<T: Serialize>(report: &T) -> String {
    format!(
        "{REPORT_MARKER}{}",
        serde_json::to_string(report).expect("reports serialize")
    )
}

/// The report in a mover's log (its last report line): `None` when there is none, an error
/// when it cannot be read.
pub fn find_report<T: DeserializeOwned>(log: &str) -> Option<Result<T, String>> {
    let line = log
        .lines()
        .rev()
        .find_map(|line| line.trim_end().strip_prefix(REPORT_MARKER))?;
    if line.len() > MAX_REPORT_LINE {
        return Some(Err(format!(
            "the mover's report is {} bytes, more than {MAX_REPORT_LINE}",
            line.len()
        )));
    }
    Some(serde_json::from_str(line).map_err(|e| format!("the mover's report: {e}")))
}

/// The directory of a volume where kbackup keeps its own files (the markers and the lock of
/// restores): not the application's data, so never backed up.
const KBACKUP_DIR: &str = ".kbackup";

/// Backs up the directory `dir` as the component `component`, against that component in
/// the snapshot `parent` (files unchanged since are not read again), without kbackup's own
/// directory; stores its packs and index, and no snapshot.
pub async fn back_up_volume(
    repository: &Repository,
    dir: &Path,
    component: &str,
    parent: Option<&str>,
    progress: &dyn Progress,
) -> Result<MoverBackupReport, TreeError> {
    let exclude = PathPatterns::new(&[KBACKUP_DIR.to_owned()]).expect("a literal pattern");
    let started = Instant::now();
    let mut session = BackupSession::start(repository, default_workers()).await?;
    let parent = match parent {
        Some(id) => {
            let snapshots = repository.snapshots().await?;
            match parent_tree(&snapshots, id, component) {
                Some(tree) => repository.parent_listing(session.index(), tree).await?,
                None => Default::default(),
            }
        }
        None => Default::default(),
    };
    let options = TreeBackupOptions { exclude, parent };
    let (_, tree, content) =
        back_up_one(&mut session, dir, Some(component), options, progress).await?;
    let stats = session.finish().await?;
    Ok(MoverBackupReport {
        tree: content,
        files_read: tree.files_read,
        files_unchanged: tree.files_unchanged,
        warning_count: tree.warnings.len(),
        warnings: tree.warnings.into_iter().take(MAX_WARNINGS).collect(),
        chunks: stats.chunks,
        deduplicated: stats.deduplicated,
        added_bytes: stats.added_bytes,
        duration_ms: millis(started),
    })
}

/// The tree `component` of the snapshot whose id is `id`.
fn parent_tree<'s>(
    snapshots: &'s [SnapshotFile],
    id: &str,
    component: &str,
) -> Option<&'s TreeContent> {
    snapshots
        .iter()
        .find(|s| s.snapshot.id.to_string() == id)
        .and_then(|s| s.trees.iter().find(|t| t.name == component))
}

/// How a mover restores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreMode {
    /// Replace files the directory already has.
    pub overwrite: bool,
    /// Read the directory back afterwards and compare it with the snapshot; a difference
    /// fails the restore.
    pub verify: bool,
}

/// Restores the component `component` of the snapshot whose id is `snapshot` into `target`.
pub async fn restore_volume(
    repository: &Repository,
    snapshot: &str,
    component: &str,
    target: PathBuf,
    mode: RestoreMode,
    progress: &dyn Progress,
) -> Result<MoverRestoreReport, TreeError> {
    let started = Instant::now();
    let snapshots = repository.snapshots().await?;
    let file = crate::selection::find_snapshot(&snapshots, snapshot, &Default::default())?;
    let request = TreeRestoreRequest {
        target,
        component: Some(component.to_owned()),
        include: PathPatterns::default(),
        overwrite: mode.overwrite,
        workers: 8,
        verify: mode.verify,
    };
    let restored = restore_trees(repository, file, request, progress).await?;
    let mut report = MoverRestoreReport {
        component: component.to_owned(),
        ..MoverRestoreReport::default()
    };
    for tree in restored {
        let r = tree.report;
        report.dirs += r.dirs;
        report.files += r.files;
        report.symlinks += r.symlinks;
        report.hardlinks += r.hardlinks;
        report.bytes += r.bytes;
        report.warning_count += r.warnings.len();
        report.warnings.extend(r.warnings);
        report.verified_files += tree.verification.map_or(0, |v| v.files);
    }
    report.warnings.truncate(MAX_WARNINGS);
    report.duration_ms = millis(started);
    Ok(report)
}

/// Where a workload restore's init container mounts each volume (`<ROOT>/<volume>`).
pub const RESTORE_ROOT: &str = "/kbackup-restore";

/// One component an init container restores: into `volume`, in the pod `pod` (`*`: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRestore {
    /// The pod's name, or `*`.
    pub pod: String,
    /// The volume's name in the pod spec.
    pub volume: String,
    /// The component.
    pub component: String,
}

impl PodRestore {
    /// Parses `POD:VOLUME=COMPONENT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not POD:VOLUME=COMPONENT");
        let (target, component) = text.split_once('=').ok_or_else(bad)?;
        let (pod, volume) = target.split_once(':').ok_or_else(bad)?;
        if pod.is_empty() || volume.is_empty() || volume.contains('/') || component.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            pod: pod.to_owned(),
            volume: volume.to_owned(),
            component: component.to_owned(),
        })
    }
}

impl std::fmt::Display for PodRestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}={}", self.pod, self.volume, self.component)
    }
}

/// What a workload restore's init container did in its pod.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRestoreReport {
    /// The pod.
    pub pod: String,
    /// The components restored now.
    pub restored: Vec<MoverRestoreReport>,
    /// The components this session had restored already (a restart restores nothing).
    pub already: Vec<String>,
}

/// The marker a restore session leaves in a volume it restored: a restart of the pod
/// restores nothing again (as Velero's restore helper leaves `.velero/<restore>`).
fn marker(volume: &Path, session: &str) -> PathBuf {
    volume.join(KBACKUP_DIR).join(format!("restored-{session}"))
}

/// How often a pod waiting for another's restore of a shared volume looks again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// An exclusive lock on a volume, held while a pod restores into it: the pods of a
/// Deployment that share a volume (replicas started together, on one node or through a
/// ReadWriteMany claim) restore it once, one after the other finding the session's marker.
/// A lock (`flock`, which NFS and CephFS carry between nodes) rather than a file created
/// first: the kernel lets it go when its pod dies, so no restore waits on a dead one.
struct VolumeLock(std::fs::File);

impl VolumeLock {
    /// Waits for the lock of `volume` (its file is kept in kbackup's directory, which no
    /// backup holds, so no restore replaces it).
    async fn acquire(volume: &Path) -> std::io::Result<Self> {
        let dir = volume.join(KBACKUP_DIR);
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("restore.lock"))?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Self(file)),
                Err(rustix::io::Errno::WOULDBLOCK) => tokio::time::sleep(LOCK_POLL).await,
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

impl Drop for VolumeLock {
    fn drop(&mut self) {
        // Closing the file would let it go too; an unlock that fails leaves that to close.
        let _ = rustix::fs::flock(&self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// Restores, in the pod `pod`, the components `restores` names for it (or for any pod),
/// each into `<root>/<volume>` (replacing what is there), unless this session did already;
/// one pod at a time per volume.
pub async fn restore_pod_volumes(
    repository: &Repository,
    snapshot: &str,
    session: &str,
    pod: &str,
    restores: &[PodRestore],
    root: &Path,
    progress: &dyn Progress,
) -> Result<PodRestoreReport, TreeError> {
    let mut report = PodRestoreReport {
        pod: pod.to_owned(),
        ..PodRestoreReport::default()
    };
    for restore in restores.iter().filter(|r| r.pod == pod || r.pod == "*") {
        let dir = root.join(&restore.volume);
        let done = marker(&dir, session);
        let _lock = VolumeLock::acquire(&dir)
            .await
            .map_err(|cause| TreeError::Path {
                path: dir.join(KBACKUP_DIR),
                cause,
            })?;
        if done.exists() {
            report.already.push(restore.component.clone());
            continue;
        }
        let restored = restore_volume(
            repository,
            snapshot,
            &restore.component,
            dir.clone(),
            RestoreMode {
                overwrite: true,
                verify: false,
            },
            progress,
        )
        .await?;
        let error = |cause| TreeError::Path {
            path: done.clone(),
            cause,
        };
        std::fs::create_dir_all(done.parent().unwrap_or(&dir)).map_err(error)?;
        std::fs::write(&done, b"").map_err(error)?;
        report.restored.push(restored);
    }
    Ok(report)
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits a snapshot of the tree a mover reported, as the coordinator does; its id.
    async fn read_snapshot(repository: &Repository, report: &MoverBackupReport) -> String {
        if let Some(file) = repository.snapshots().await.unwrap().first() {
            return file.snapshot.id.to_string();
        }
        let component = backup_core::Component::new(&report.tree.name, "tree");
        let snapshot = crate::snapshot::new_snapshot(
            Default::default(),
            Default::default(),
            vec![component],
            Default::default(),
        );
        repository
            .write_snapshot(SnapshotFile {
                snapshot,
                streams: vec![],
                trees: vec![report.tree.clone()],
            })
            .await
            .unwrap()
            .to_string()
    }
    use crate::test_repository::in_memory;
    use backup_core::progress::NoProgress;

    #[tokio::test]
    async fn a_volume_goes_in_without_a_snapshot_and_its_report_reads_back() {
        let repository = in_memory().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"alpha").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), b"beta").unwrap();
        // kbackup's own directory (an earlier restore's marker) is not backed up.
        std::fs::create_dir(dir.path().join(KBACKUP_DIR)).unwrap();
        std::fs::write(dir.path().join(".kbackup/restored-old"), b"").unwrap();
        let name = "/demo/statefulset/db/db-0/data";
        let report = back_up_volume(&repository, dir.path(), name, None, &NoProgress)
            .await
            .unwrap();
        assert_eq!(report.tree.name, name);
        assert_eq!((report.tree.files, report.tree.bytes), (2, 9));
        assert!(repository.snapshots().await.unwrap().is_empty());
        assert!(PodRestore::parse("db-0:data").is_err());
        assert_eq!(
            PodRestore::parse("*:data=/x").unwrap().to_string(),
            "*:data=/x"
        );
        let index = repository.load_index().await.unwrap();
        assert!(
            report
                .tree
                .listing
                .chunks
                .iter()
                .all(|c| index.contains_hex(c))
        );
        let log = format!("starting\n{}\n", report_line(&report));
        let read: MoverBackupReport = find_report(&log).unwrap().unwrap();
        assert_eq!(read.tree, report.tree);
        assert!(find_report::<MoverBackupReport>("no report here").is_none());
        let target = tempfile::tempdir().unwrap();
        let restores = [PodRestore::parse(&format!("db-0:data={name}")).unwrap()];
        let snapshot = read_snapshot(&repository, &report).await;
        let restore_in = |pod: &'static str| {
            restore_pod_volumes(
                &repository,
                &snapshot,
                "s1",
                pod,
                &restores,
                target.path(),
                &NoProgress,
            )
        };
        let first = restore_in("db-0").await.unwrap();
        assert_eq!(first.restored.len(), 1);
        assert_eq!(
            std::fs::read(target.path().join("data/sub/b")).unwrap(),
            b"beta"
        );
        let again = restore_in("db-0").await.unwrap();
        assert_eq!(
            (again.restored.len(), again.already.len()),
            (0, 1),
            "a restart restores nothing"
        );
        let other = restore_in("db-1").await.unwrap();
        assert!(
            other.restored.is_empty() && other.already.is_empty(),
            "not db-1's"
        );
        // Two replicas sharing the volume, started together: one restores, the other
        // waits for it and finds the session's marker.
        let shared = [PodRestore::parse(&format!("*:data={name}")).unwrap()];
        let replica = |pod: &'static str| {
            restore_pod_volumes(
                &repository,
                &snapshot,
                "s2",
                pod,
                &shared,
                target.path(),
                &NoProgress,
            )
        };
        let (a, b) = tokio::join!(replica("web-a"), replica("web-b"));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            (
                a.restored.len() + b.restored.len(),
                a.already.len() + b.already.len()
            ),
            (1, 1),
            "restored once: {a:?} {b:?}"
        );
        let broken = format!("{REPORT_MARKER}{{\"tree\": 1}}");
        assert!(find_report::<MoverBackupReport>(&broken).unwrap().is_err());
    }
}
