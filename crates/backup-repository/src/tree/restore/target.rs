//! The directory a restore writes into, opened once. Every entry is created, replaced and
//! stamped through a handle below it, and no symbolic link is ever followed on the way: a
//! directory is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (one call, the
//! kernel checks every component), or component by component with `O_NOFOLLOW` where the
//! kernel lacks `openat2`; the last component is acted on with the `*at` calls and
//! `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW`. A link planted by the snapshot itself, by another
//! tree of it, or found in the target makes the restore fail, never write through it.
//!
//! Every file, symlink and hard link is made under a temporary name beside its place (files
//! `0600` until their metadata is applied) and renamed into place once complete: a failed
//! restore never leaves an intact file truncated, and without overwriting the rename refuses
//! to replace anything (`RENAME_NOREPLACE`).

use super::super::RawPath;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Mode of a file while it is written, before its own is applied.
const PRIVATE_FILE: u32 = 0o600;
/// Mode of a directory made by a restore, before its own is applied.
const PRIVATE_DIR: u32 = 0o700;

/// Whether the kernel answered `openat2` (cleared on the first `ENOSYS`).
static OPENAT2: AtomicBool = AtomicBool::new(true);

/// An opened directory that a restore writes below.
#[derive(Clone)]
pub struct RestoreTarget {
    dir: Arc<OwnedFd>,
    path: PathBuf,
    existed: bool,
    temps: Arc<Temps>,
    dirs: Arc<DirCache>,
}

/// Directories below a target kept open for the entries that follow (a restore goes pack by
/// pack, and a pack holds neighbouring files): one lookup instead of opening the directory
/// again for each file. Forgotten all at once when [`DIR_CACHE`] are open.
#[derive(Default)]
struct DirCache(Mutex<HashMap<Vec<u8>, Arc<OwnedFd>>>);

/// Directories kept open at most (well below the usual limit of 1024 open files).
const DIR_CACHE: usize = 128;

impl DirCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Arc<OwnedFd>>> {
        lock(&self.0)
    }
}

/// `mutex` locked; a panic while it was held (none of its users can leave it half-changed)
/// does not stop the restore.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for RestoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreTarget")
            .field("path", &self.path)
            .field("existed", &self.existed)
            .finish()
    }
}

impl RestoreTarget {
    /// Opens the directory `path`, made (with its parents) when missing. The path itself is
    /// the caller's and is resolved as given; nothing below it follows a link.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let existed = path.symlink_metadata().is_ok();
        if !existed {
            std::fs::create_dir_all(path)?;
        }
        // The caller's own path may itself be a link (`/data -> /mnt/data`): followed.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Self {
            dir: Arc::new(dir),
            path: path.to_path_buf(),
            existed,
            temps: Arc::new(Temps::new()),
            dirs: Arc::default(),
        })
    }

    /// The directory `relative` below this one, each missing component made (mode `0700`
    /// for the last, the umask's default above it), none of them followed if a link.
    pub fn below(&self, relative: &RawPath) -> std::io::Result<Self> {
        if relative.0.is_empty() {
            return Ok(self.clone());
        }
        let mut dir = rustix::fs::openat(&*self.dir, ".", dir_flags(), Mode::empty())?;
        let names = names(relative)?;
        let mut existed = true;
        for (n, name) in names.iter().enumerate() {
            let mode = if n + 1 == names.len() {
                PRIVATE_DIR
            } else {
                0o777
            };
            existed = match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(mode)) {
                Ok(()) => false,
                Err(Errno::EXIST) => true,
                Err(error) => return Err(error.into()),
            };
            dir = rustix::fs::openat(&dir, *name, dir_flags(), Mode::empty())
                .map_err(|e| link_in_the_way(e, &self.path.join(relative.to_path())))?;
        }
        Ok(Self {
            dir: Arc::new(dir),
            path: self.path.join(relative.to_path()),
            existed,
            temps: self.temps.clone(),
            dirs: Arc::default(),
        })
    }

    /// The target directory's handle.
    pub(super) fn dir_fd(&self) -> Arc<OwnedFd> {
        self.dir.clone()
    }

    /// Its path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory was there before this restore (its metadata is then kept).
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The path of an entry, for messages.
    pub(super) fn display(&self, relative: &RawPath) -> PathBuf {
        if relative.0.is_empty() {
            self.path.clone()
        } else {
            self.path.join(relative.to_path())
        }
    }

    /// Opens the directory at `relative` (the target itself when empty).
    pub(crate) fn open_dir(&self, relative: &RawPath) -> std::io::Result<OwnedFd> {
        if relative.0.is_empty() {
            return Ok(rustix::fs::openat(
                &*self.dir,
                ".",
                dir_flags(),
                Mode::empty(),
            )?);
        }
        self.open_beneath(relative, dir_flags())
            .map_err(|e| link_in_the_way(e, &self.display(relative)))
    }

    /// Opens the file `relative` for reading, no component followed if a link.
    pub(crate) fn open_read(&self, relative: &RawPath) -> std::io::Result<File> {
        let fd = self.open_beneath(relative, OFlags::RDONLY | OFlags::CLOEXEC)?;
        Ok(File::from(fd))
    }

    /// What the symbolic link `relative` points to (its directory opened without following
    /// links).
    pub(crate) fn read_link(&self, relative: &RawPath) -> std::io::Result<Vec<u8>> {
        let (parent, name) = relative.split_last();
        let dir = self.open_dir(&RawPath(parent.to_vec()))?;
        let target = rustix::fs::readlinkat(&dir, OsStr::from_bytes(name), Vec::new())?;
        Ok(target.into_bytes())
    }

    /// Opens `relative` with `flags`, no component followed if a link.
    fn open_beneath(&self, relative: &RawPath, flags: OFlags) -> Result<OwnedFd, Errno> {
        self.open_beneath_by(relative, flags, OPENAT2.load(Ordering::Relaxed))
    }

    /// [`open_beneath`](Self::open_beneath), by `openat2` or by walking the names.
    fn open_beneath_by(
        &self,
        relative: &RawPath,
        flags: OFlags,
        openat2: bool,
    ) -> Result<OwnedFd, Errno> {
        let names = names(relative).map_err(|_| Errno::INVAL)?;
        if openat2 {
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            let path = relative.0.as_slice();
            match rustix::fs::openat2(&*self.dir, path, flags, Mode::empty(), resolve) {
                Err(Errno::NOSYS) => OPENAT2.store(false, Ordering::Relaxed),
                opened => return opened,
            }
        }
        let (last, parents) = names.split_last().ok_or(Errno::INVAL)?;
        let mut dir: Option<OwnedFd> = None;
        for name in parents {
            let from = dir.as_ref().map_or(self.dir.as_fd(), AsFd::as_fd);
            dir = Some(rustix::fs::openat(from, *name, dir_flags(), Mode::empty())?);
        }
        let from = dir.as_ref().map_or(self.dir.as_fd(), AsFd::as_fd);
        rustix::fs::openat(from, *last, flags | OFlags::NOFOLLOW, Mode::empty())
    }

    /// The directory at `relative` (not empty), from the cache or opened into it.
    fn cached_dir(&self, relative: &[u8]) -> std::io::Result<Arc<OwnedFd>> {
        if let Some(dir) = self.dirs.lock().get(relative) {
            return Ok(dir.clone());
        }
        let dir = Arc::new(self.open_dir(&RawPath(relative.to_vec()))?);
        let mut dirs = self.dirs.lock();
        if dirs.len() >= DIR_CACHE {
            dirs.clear();
        }
        dirs.insert(relative.to_vec(), dir.clone());
        Ok(dir)
    }

    /// Whether the directory holds no entry (then nothing a restore makes can exist yet).
    pub(super) fn is_empty(&self) -> std::io::Result<bool> {
        let dir = rustix::fs::openat(&*self.dir, ".", dir_flags(), Mode::empty())?;
        for entry in rustix::fs::Dir::read_from(&dir)? {
            let entry = entry?;
            if !matches!(entry.file_name().to_bytes(), b"." | b"..") {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The directory holding `relative` and its last name.
    fn parent<'p>(&self, relative: &'p RawPath) -> std::io::Result<(Parent<'_>, &'p OsStr)> {
        let (parent, name) = relative.split_last();
        let parent = match parent {
            [] => Parent::Root(self.dir.as_fd()),
            parent => Parent::Opened(self.cached_dir(parent)?),
        };
        Ok((parent, OsStr::from_bytes(name)))
    }

    /// Makes the directory `relative` (`0700` until its metadata is applied); an existing
    /// directory is kept, anything else there refused, or removed when `replace`.
    pub(super) fn make_dir(&self, relative: &RawPath, replace: bool) -> std::io::Result<()> {
        let (parent, name) = self.parent(relative)?;
        let make = || rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(PRIVATE_DIR));
        match make() {
            Err(Errno::EXIST) => {}
            done => return Ok(done?),
        }
        let stat = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory {
            return Ok(());
        }
        if !replace {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
            ));
        }
        rustix::fs::unlinkat(&parent, name, AtFlags::empty())?;
        Ok(make()?)
    }

    /// Whether something (not a directory, when `dir_ok`) is at `relative`; a missing
    /// parent means nothing is.
    pub(super) fn occupied(&self, relative: &RawPath, dir_ok: bool) -> std::io::Result<Occupied> {
        let (parent, name) = match self.parent(relative) {
            Ok(found) => found,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Occupied::Free);
            }
            Err(error) => return Err(error),
        };
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(Occupied::Free),
            Err(error) => Err(error.into()),
            Ok(stat) => {
                let dir = rustix::fs::FileType::from_raw_mode(stat.st_mode)
                    == rustix::fs::FileType::Directory;
                Ok(match (dir, dir_ok) {
                    (true, true) => Occupied::Free,
                    (true, false) => Occupied::Directory,
                    (false, _) => Occupied::Entry,
                })
            }
        }
    }

    /// Creates a new private file beside `relative`, to be renamed into place by
    /// [`commit`](Self::commit).
    pub(super) fn create_temp(&self, relative: &RawPath) -> std::io::Result<(File, Temp)> {
        let (parent, _) = self.parent(relative)?;
        let temp = self.temps.name(relative);
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file = rustix::fs::openat(
            &parent,
            temp.name(),
            flags,
            Mode::from_raw_mode(PRIVATE_FILE),
        )?;
        self.temps.made(&temp);
        Ok((File::from(file), temp))
    }

    /// Opens a temporary file made by [`create_temp`](Self::create_temp) for writing.
    pub(super) fn reopen_temp(&self, temp: &Temp) -> std::io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CLOEXEC;
        let file = self
            .open_beneath(&temp.path, flags)
            .map_err(|e| link_in_the_way(e, &self.display(&temp.path)))?;
        Ok(File::from(file))
    }

    /// Makes a symlink (to `to`, never followed) under a temporary name beside `relative`,
    /// with its owner and time.
    pub(super) fn symlink_temp(
        &self,
        relative: &RawPath,
        to: &RawPath,
        owner: (u32, u32),
        mtime: (i64, u32),
    ) -> std::io::Result<(Temp, std::io::Result<()>)> {
        let (parent, _) = self.parent(relative)?;
        let temp = self.temps.name(relative);
        rustix::fs::symlinkat(to.0.as_slice(), &parent, temp.name())?;
        self.temps.made(&temp);
        let owned = rustix::fs::chownat(
            &parent,
            temp.name(),
            Some(rustix::fs::Uid::from_raw(owner.0)),
            Some(rustix::fs::Gid::from_raw(owner.1)),
            AtFlags::SYMLINK_NOFOLLOW,
        );
        let time = timespec(mtime);
        let times = rustix::fs::Timestamps {
            last_access: time,
            last_modification: time,
        };
        rustix::fs::utimensat(&parent, temp.name(), &times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok((temp, owned.map_err(Into::into)))
    }

    /// Makes a hard link to the entry at `source` under a temporary name beside `relative`.
    pub(super) fn hard_link_temp(
        &self,
        relative: &RawPath,
        source: &RawPath,
    ) -> std::io::Result<Temp> {
        let (from, from_name) = self.parent(source)?;
        let (parent, _) = self.parent(relative)?;
        let temp = self.temps.name(relative);
        rustix::fs::linkat(&from, from_name, &parent, temp.name(), AtFlags::empty())?;
        self.temps.made(&temp);
        Ok(temp)
    }

    /// Renames a temporary entry to its place; without `overwrite` nothing there is
    /// replaced.
    pub(super) fn commit(&self, temp: &Temp, overwrite: bool) -> std::io::Result<()> {
        let (parent, name) = self.parent(&temp.place)?;
        let flags = if overwrite {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        match rustix::fs::renameat_with(&parent, temp.name(), &parent, name, flags) {
            // A file system without RENAME_NOREPLACE: a hard link refuses to replace too.
            Err(Errno::INVAL) if !overwrite => {
                rustix::fs::linkat(&parent, temp.name(), &parent, name, AtFlags::empty())?;
                rustix::fs::unlinkat(&parent, temp.name(), AtFlags::empty())?;
            }
            renamed => renamed?,
        }
        self.temps.done(temp);
        Ok(())
    }

    /// Removes every temporary entry not renamed into place (after a failure).
    pub(super) fn discard_temps(&self) {
        for temp in self.temps.take() {
            if let Ok((parent, _)) = self.parent(&temp.place) {
                let _ = rustix::fs::unlinkat(&parent, temp.name(), AtFlags::empty());
            }
        }
    }
}

/// What is at a place a restore writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Occupied {
    /// Nothing (or a directory where one is restored).
    Free,
    /// A directory, where something else is restored.
    Directory,
    /// Something else.
    Entry,
}

/// A temporary name beside an entry's place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Temp {
    /// The entry's place.
    place: RawPath,
    /// The temporary entry's path.
    path: RawPath,
}

impl Temp {
    fn name(&self) -> &OsStr {
        OsStr::from_bytes(self.path.split_last().1)
    }
}

/// Temporary names of one restore: unique, and remembered until renamed into place.
struct Temps {
    prefix: String,
    next: AtomicU64,
    made: Mutex<HashSet<Temp>>,
}

impl Temps {
    fn new() -> Self {
        let mut token = [0u8; 6];
        // Uniqueness, not secrecy: creation is O_EXCL whatever the name.
        let _ = getrandom::fill(&mut token);
        Self {
            prefix: format!(".kbackup-restore-{}", hex::encode(token)),
            next: AtomicU64::new(0),
            made: Mutex::new(HashSet::new()),
        }
    }

    fn name(&self, place: &RawPath) -> Temp {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut path = place.split_last().0.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(format!("{}-{n}", self.prefix).as_bytes());
        Temp {
            place: place.clone(),
            path: RawPath(path),
        }
    }

    fn made(&self, temp: &Temp) {
        self.lock().insert(temp.clone());
    }

    fn done(&self, temp: &Temp) {
        self.lock().remove(temp);
    }

    fn take(&self) -> Vec<Temp> {
        self.lock().drain().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Temp>> {
        lock(&self.made)
    }
}

/// A directory to act in: the target's own handle or one opened below it.
enum Parent<'a> {
    Root(BorrowedFd<'a>),
    Opened(Arc<OwnedFd>),
}

impl AsFd for Parent<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Root(fd) => *fd,
            Self::Opened(fd) => fd.as_fd(),
        }
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// The names of a relative path, each a plain name (no `.`, `..`, empty name or NUL).
fn names(relative: &RawPath) -> std::io::Result<Vec<&OsStr>> {
    relative
        .0
        .split(|b| *b == b'/')
        .map(|name| match name {
            b"" | b"." | b".." => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{:?} is not a plain relative path", relative.display()),
            )),
            name if name.contains(&0) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a name holds a NUL byte",
            )),
            name => Ok(OsStr::from_bytes(name)),
        })
        .collect()
}

/// A clear error where a link (or another file system's root) stopped a lookup.
fn link_in_the_way(error: Errno, path: &Path) -> std::io::Error {
    match error {
        Errno::LOOP | Errno::NOTDIR | Errno::XDEV => std::io::Error::other(format!(
            "a symbolic link or a non-directory is in the way of {} (a restore never follows links)",
            path.display()
        )),
        other => other.into(),
    }
}

/// A modification time as the kernel takes it.
pub(super) fn timespec((seconds, nanos): (i64, u32)) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: seconds,
        tv_nsec: nanos.min(999_999_999).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn raw(text: &str) -> RawPath {
        RawPath(text.as_bytes().to_vec())
    }

    /// A target holding `real/inner/` and `link -> ../outside`, beside `outside/`.
    fn setup() -> (tempfile::TempDir, RestoreTarget) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("target/real/inner")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::os::unix::fs::symlink("../outside", dir.path().join("target/link")).unwrap();
        let target = RestoreTarget::open(&dir.path().join("target")).unwrap();
        (dir, target)
    }

    #[test]
    fn no_link_is_followed_by_openat2_or_by_walking() {
        let (_dir, target) = setup();
        for openat2 in [true, false] {
            let open = |path: &str| target.open_beneath_by(&raw(path), dir_flags(), openat2);
            assert!(open("real/inner").is_ok());
            for path in ["link", "link/x", "real/../real", "../target"] {
                assert!(open(path).is_err(), "{path} opened (openat2: {openat2})");
            }
        }
        let error = target.open_dir(&raw("link")).unwrap_err();
        assert!(error.to_string().contains("never follows links"), "{error}");
        assert!(target.create_temp(&raw("link/x")).is_err());
        assert!(target.below(&raw("link/x")).is_err());
    }

    #[test]
    fn a_target_that_is_itself_a_link_is_followed_and_nothing_below_it() {
        let (dir, _) = setup();
        let linked = dir.path().join("linked-target");
        std::os::unix::fs::symlink(dir.path().join("target"), &linked).unwrap();
        let target = RestoreTarget::open(&linked).unwrap();
        assert!(target.existed());
        assert!(target.open_dir(&raw("real/inner")).is_ok());
        assert!(target.open_dir(&raw("link")).is_err());
    }

    #[test]
    fn files_and_directories_are_private_until_stamped() {
        let (dir, target) = setup();
        let (_file, temp) = target.create_temp(&raw("real/secret")).unwrap();
        let made = dir.path().join("target").join(temp.path.to_path());
        assert_eq!(made.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        target.make_dir(&raw("real/private"), false).unwrap();
        let private = dir.path().join("target/real/private");
        assert_eq!(
            private.metadata().unwrap().permissions().mode() & 0o777,
            0o700
        );
        target.discard_temps();
        assert!(!made.exists(), "an unfinished file is removed");
    }

    #[test]
    fn commits_replace_only_when_asked_and_the_link_itself() {
        let (dir, target) = setup();
        let (_file, temp) = target.create_temp(&raw("link")).unwrap();
        let error = target.commit(&temp, false).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        target.commit(&temp, true).unwrap();
        let link = dir.path().join("target/link");
        assert!(
            link.symlink_metadata().unwrap().is_file(),
            "the link replaced"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("outside"))
                .unwrap()
                .count(),
            0
        );
        let error = target.make_dir(&raw("link"), false).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        target.make_dir(&raw("link"), true).unwrap();
        assert!(link.symlink_metadata().unwrap().is_dir());
    }
}
