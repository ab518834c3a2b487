//! The index: where every stored blob is (its pack and place), read from the index objects.

use crate::crypto::ChunkId;
use crate::pack::BlobLocation;
use crate::repository::{Repository, RepositoryError};
use crate::sealed::{MAX_INDEX_OBJECT, Opened};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Where every known blob is: blob id -> pack and place. Each pack id is held once, and a
/// blob's entry is a pack number and its place (about 60 bytes a blob), so the index of a
/// repository of millions of chunks fits in a few hundred MiB.
#[derive(Debug, Default, Clone)]
pub struct Index {
    packs: Vec<String>,
    blobs: HashMap<ChunkId, Place>,
}

/// A blob's place: its pack's number in [`Index::packs`] and where it lies there.
#[derive(Debug, Clone, Copy)]
struct Place {
    pack: u32,
    length: u32,
    plain_length: u32,
    offset: u64,
}

impl Place {
    fn location(&self, id: ChunkId) -> BlobLocation {
        BlobLocation {
            id,
            offset: self.offset,
            length: self.length,
            plain_length: self.plain_length,
        }
    }
}

impl Index {
    /// Every blob with its pack and location.
    pub fn entries(&self) -> impl Iterator<Item = (&str, BlobLocation)> {
        self.blobs
            .iter()
            .map(|(id, place)| (self.pack_id(place), place.location(*id)))
    }

    /// The id of the pack holding `place`.
    fn pack_id(&self, place: &Place) -> &str {
        &self.packs[place.pack as usize]
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// Whether it holds no blob.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// The pack and place of a chunk a snapshot refers to: missing, the repository is damaged.
    pub(crate) fn require(&self, id: &ChunkId) -> Result<(&str, BlobLocation), RepositoryError> {
        self.locate(id).ok_or_else(|| {
            RepositoryError::Corrupt(format!(
                "chunk {} is in no index: the repository is damaged",
                id.to_hex()
            ))
        })
    }

    /// The pack and place of a chunk, if it is indexed.
    fn locate(&self, id: &ChunkId) -> Option<(&str, BlobLocation)> {
        self.blobs
            .get(id)
            .map(|place| (self.pack_id(place), place.location(*id)))
    }

    /// The pack holding a chunk, if it is indexed.
    pub fn pack_of(&self, id: &ChunkId) -> Option<&str> {
        self.blobs.get(id).map(|place| self.pack_id(place))
    }

    /// Whether a chunk is indexed.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.blobs.contains_key(id)
    }

    /// The blobs of every pack of `files`, in order (a blob's first place wins).
    pub(crate) fn of(files: &[(String, IndexFile)]) -> Self {
        let mut index = Index::default();
        for pack in files.iter().flat_map(|(_, file)| &file.packs) {
            index.add_pack(pack);
        }
        index
    }

    /// Adds a pack's blobs; a blob indexed already keeps its place (never replaced).
    pub(crate) fn add_pack(&mut self, pack: &IndexedPack) {
        let number = u32::try_from(self.packs.len()).expect("fewer than 4 billion packs");
        let mut used = false;
        for blob in &pack.blobs {
            self.blobs.entry(blob.id).or_insert_with(|| {
                used = true;
                Place {
                    pack: number,
                    length: blob.length,
                    plain_length: blob.plain_length,
                    offset: blob.offset,
                }
            });
        }
        if used {
            self.packs.push(pack.id.clone());
        }
    }

    /// Whether a chunk (hex id) is indexed.
    pub fn contains_hex(&self, hex_id: &str) -> bool {
        parse_id(hex_id).is_ok_and(|id| self.blobs.contains_key(&id))
    }
}

/// One index object: the packs it describes.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct IndexFile {
    pub(crate) packs: Vec<IndexedPack>,
}

/// A pack and the blobs in it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IndexedPack {
    pub(crate) id: String,
    pub(crate) blobs: Vec<BlobLocation>,
}

/// The key of pack `id` (64 hex digits; any other text gets a key no pack has).
pub(crate) fn pack_key(id: &str) -> String {
    format!("data/{}/{id}", id.get(..2).unwrap_or("--"))
}

/// The pack id a `data/` key names, if it is a pack's key (`data/ab/ab12...`, 64 lowercase
/// hex digits); a stray object's key names none.
pub(crate) fn pack_id_of(key: &str) -> Option<&str> {
    let id = key.rsplit('/').next()?;
    let valid = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (valid && pack_key(id) == key).then_some(id)
}

pub(crate) fn parse_id(hex_id: &str) -> Result<ChunkId, RepositoryError> {
    let bytes = hex::decode(hex_id)
        .map_err(|_| RepositoryError::Corrupt(format!("bad chunk id {hex_id}")))?;
    Ok(ChunkId(bytes.try_into().map_err(|_| {
        RepositoryError::Corrupt(format!("bad chunk id {hex_id}"))
    })?))
}

impl Repository {
    /// Loads every index object that can be read (one that cannot is skipped with a
    /// warning: its chunks are stored again by a backup, and `check` reports it).
    pub async fn load_index(&self) -> Result<Index, RepositoryError> {
        Ok(Index::of(&self.index_files().await?.readable()))
    }

    /// Every index object, opened: its key and the packs it lists.
    pub(crate) async fn index_files(&self) -> Result<Opened<IndexFile>, RepositoryError> {
        let mut opened = self
            .open_all::<IndexFile>("index/", MAX_INDEX_OBJECT)
            .await?;
        let mut unreadable = Vec::new();
        opened.objects.retain(|(key, file)| {
            let invalid = file.packs.iter().find_map(|pack| {
                let id_ok = pack_id_of(&pack_key(&pack.id)).is_some();
                let why = (!id_ok).then(|| format!("pack id {:?} is not a pack's", pack.id));
                why.or_else(|| pack.blobs.iter().find_map(|b| b.check().err()))
            });
            if let Some(why) = &invalid {
                unreadable.push(format!("{key}: {why}"));
            }
            invalid.is_none()
        });
        opened.unreadable.extend(unreadable);
        Ok(opened)
    }
}
