//! Directories read ahead of a walk by a few threads: each one's entries, sorted by name,
//! with their metadata. A walk alone waits for every directory block and inode in turn when
//! they are not cached; several directories read at once keep the disk busy instead.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

/// A directory's entry as read.
pub(super) struct DirEntry {
    /// Its name.
    pub(super) name: Vec<u8>,
    /// Its path.
    pub(super) absolute: PathBuf,
    /// Its metadata (the link's own for a symlink), or why it could not be read.
    pub(super) meta: io::Result<Metadata>,
}

/// A directory's entries sorted by name, or why it could not be listed.
pub(super) type DirEntries = io::Result<Vec<DirEntry>>;

/// Lists `dir`: its entries sorted by name, each with its metadata.
pub(super) fn read_entries(dir: &Path) -> DirEntries {
    let mut entries: Vec<(Vec<u8>, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| (super::RawPath::from_os(&e.file_name()).0, e.path()))
        .collect();
    entries.sort_unstable();
    Ok(entries
        .into_iter()
        .map(|(name, absolute)| {
            let meta = std::fs::symlink_metadata(&absolute);
            DirEntry {
                name,
                absolute,
                meta,
            }
        })
        .collect())
}

/// A directory to read and where its entries go.
struct Job {
    dir: PathBuf,
    reply: mpsc::SyncSender<DirEntries>,
}

/// Threads that read directories asked for ahead of time; they stop when it is dropped.
pub(super) struct ReadAhead {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl ReadAhead {
    /// `threads` readers.
    pub(super) fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..threads.max(1))
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    loop {
                        // The lock is held only to take a job, not while reading it.
                        let job = queue.lock().map(|q| q.recv());
                        let Ok(Ok(job)) = job else { return };
                        // The walk may have stopped and dropped its receiver: nothing to do.
                        let _ = job.reply.send(read_entries(&job.dir));
                    }
                })
            })
            .collect();
        Self {
            jobs: Some(jobs),
            threads,
        }
    }

    /// Starts reading `dir`; its entries arrive on the receiver.
    pub(super) fn read(&self, dir: &Path) -> mpsc::Receiver<DirEntries> {
        let (reply, entries) = mpsc::sync_channel(1);
        let job = Job {
            dir: dir.to_path_buf(),
            reply,
        };
        if let Some(Err(mpsc::SendError(job))) = self.jobs.as_ref().map(|j| j.send(job)) {
            // No reader left (none can panic short of a bug): read it here.
            let _ = job.reply.send(read_entries(&job.dir));
        }
        entries
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_arrive_sorted_with_their_metadata() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "c-d"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("c")).unwrap();
        let readers = ReadAhead::new(2);
        let pending: Vec<_> = (0..4).map(|_| readers.read(dir.path())).collect();
        for entries in pending {
            let entries = entries.recv().unwrap().unwrap();
            let names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
            assert_eq!(names, [&b"a"[..], b"b", b"c", b"c-d"]);
            assert!(entries[2].meta.as_ref().unwrap().is_dir());
            assert_eq!(entries[0].meta.as_ref().unwrap().len(), 1);
        }
        assert!(
            readers
                .read(&dir.path().join("missing"))
                .recv()
                .unwrap()
                .is_err()
        );
    }
}
