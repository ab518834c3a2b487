//! The records of a restore, kept in a temporary file while the restore is planned and run,
//! with the longer notes of its plan (what differs, which node ports are taken): memory holds
//! what the plan needs of each object, not the objects.

use backup_core::ClusterError;
use backup_core::resources::ManifestRecord;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where one record lies in the spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    offset: u64,
    len: u32,
}

fn failed(error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Api(format!("the restore's temporary file: {error}"))
}

/// Records being written. The file has no name (it is gone when closed, whatever happens)
/// and only its owner may read it: Secrets pass through it.
pub(super) struct SpoolWriter {
    file: BufWriter<File>,
    written: u64,
}

impl SpoolWriter {
    /// An empty spool in the temporary directory.
    pub(super) fn new() -> Result<Self, ClusterError> {
        Ok(Self {
            file: BufWriter::with_capacity(1 << 20, tempfile::tempfile().map_err(failed)?),
            written: 0,
        })
    }

    /// Appends a record; returns where it is.
    pub(super) fn write(&mut self, record: &ManifestRecord) -> Result<Span, ClusterError> {
        let bytes = serde_json::to_vec(record).map_err(failed)?;
        let len = u32::try_from(bytes.len()).map_err(failed)?;
        self.file.write_all(&bytes).map_err(failed)?;
        let span = Span {
            offset: self.written,
            len,
        };
        self.written += u64::from(len);
        Ok(span)
    }

    /// The spool, ready to be read.
    pub(super) fn finish(self) -> Result<Spool, ClusterError> {
        let file = self.file.into_inner().map_err(failed)?;
        Ok(Spool {
            file,
            end: AtomicU64::new(self.written),
        })
    }
}

/// Records written, read back one at a time from any task; notes added from any task.
pub(super) struct Spool {
    file: File,
    end: AtomicU64,
}

impl Spool {
    /// Appends a note; returns where it is.
    pub(super) fn append(&self, note: &str) -> Result<Span, ClusterError> {
        let len = u32::try_from(note.len()).map_err(failed)?;
        let offset = self.end.fetch_add(u64::from(len), Ordering::Relaxed);
        self.file
            .write_all_at(note.as_bytes(), offset)
            .map_err(failed)?;
        Ok(Span { offset, len })
    }

    /// The note at `span`.
    pub(super) fn note(&self, span: Span) -> Result<String, ClusterError> {
        String::from_utf8(self.bytes(span)?).map_err(failed)
    }

    fn bytes(&self, span: Span) -> Result<Vec<u8>, ClusterError> {
        let mut bytes = vec![0; span.len as usize];
        self.file
            .read_exact_at(&mut bytes, span.offset)
            .map_err(failed)?;
        Ok(bytes)
    }

    /// The record at `span`.
    pub(super) fn read(&self, span: Span) -> Result<ManifestRecord, ClusterError> {
        serde_json::from_slice(&self.bytes(span)?).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_come_back_as_written_in_any_order() {
        let record = |name: &str| ManifestRecord {
            group: "".into(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            resource: "configmaps".into(),
            namespace: Some("a".into()),
            name: name.into(),
            checksum: "c".into(),
            object: json!({"metadata": {"name": name}, "data": {"k": "v".repeat(100)}}),
        };
        let mut writer = SpoolWriter::new().unwrap();
        let spans: Vec<Span> = ["x", "y", "z"]
            .iter()
            .map(|n| writer.write(&record(n)).unwrap())
            .collect();
        let spool = writer.finish().unwrap();
        assert_eq!(spool.read(spans[2]).unwrap(), record("z"));
        assert_eq!(spool.read(spans[0]).unwrap(), record("x"));
        let note = spool.append("differs at data.k").unwrap();
        assert_eq!(spool.read(spans[2]).unwrap(), record("z"));
        assert_eq!(spool.note(note).unwrap(), "differs at data.k");
    }
}
