//! Packs: many blobs in one object (fewer, larger objects: fast on S3), followed by a sealed
//! header listing them, then the header's length (4 bytes, little endian). A pack's id is the
//! BLAKE3 hash of its bytes, so `check --read-data` verifies it without the key.

use crate::crypto::{ChunkId, CryptoError, MasterKey};
use crate::sealed::{metadata_json, stored_metadata};
use serde::{Deserialize, Serialize};

/// Where a blob sits in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobLocation {
    /// The blob's id, hex in JSON.
    #[serde(with = "hex_id")]
    pub id: ChunkId,
    /// Offset in the pack.
    pub offset: u64,
    /// Stored length.
    pub length: u32,
    /// Plaintext length (for sizes and sparse restores).
    pub plain_length: u32,
}

/// The largest chunk any repository holds (FastCDC's largest maximum).
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;
/// The largest stored blob: a chunk stored raw plus flag, nonce and tag.
pub const MAX_STORED_BLOB: u32 = MAX_CHUNK + 1024;

impl BlobLocation {
    /// The pack offset just past the blob's stored bytes.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.length))
    }

    /// Why a location read from storage cannot be right, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.length > MAX_STORED_BLOB || self.plain_length > MAX_CHUNK {
            return Err(format!(
                "blob {} of {} stored / {} plain bytes is larger than any chunk",
                self.id.to_hex(),
                self.length,
                self.plain_length
            ));
        }
        if self.offset > u64::from(u32::MAX) * 64 {
            return Err(format!(
                "blob {} at offset {}",
                self.id.to_hex(),
                self.offset
            ));
        }
        Ok(())
    }

    /// Where the blob's stored bytes lie in the pack.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset as usize..self.end() as usize
    }
}

/// Why a pack cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// The header failed authentication.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The pack is shorter than its header says, or the header is not a blob list.
    #[error("pack {0} is malformed: {1}")]
    Malformed(String, String),
}

mod hex_id {
    use super::ChunkId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &ChunkId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChunkId, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        Ok(ChunkId(bytes.try_into().map_err(|_| {
            serde::de::Error::custom("chunk id of the wrong length")
        })?))
    }
}

/// Collects encoded blobs into a pack.
#[derive(Default)]
pub struct PackBuilder {
    bytes: Vec<u8>,
    blobs: Vec<BlobLocation>,
}

impl PackBuilder {
    /// An empty pack with room for a full one (no reallocation while it fills).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            blobs: Vec::new(),
        }
    }

    /// Appends an encoded blob.
    pub fn add(&mut self, id: ChunkId, stored: &[u8], plain_length: usize) {
        self.blobs.push(BlobLocation {
            id,
            offset: self.bytes.len() as u64,
            length: stored.len() as u32,
            plain_length: plain_length as u32,
        });
        self.bytes.extend_from_slice(stored);
    }

    /// Bytes collected so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Seals the header (compressed when `compress`: see [`crate::sealed::stored_metadata`])
    /// and returns the pack's id (hex), bytes, and blob locations.
    pub fn finish(
        mut self,
        key: &MasterKey,
        compress: bool,
    ) -> Result<(String, Vec<u8>, Vec<BlobLocation>), CryptoError> {
        let header = serde_json::to_vec(&self.blobs).expect("blob locations serialize");
        let header = stored_metadata(header, compress);
        let sealed = key.seal(&header, b"pack header")?;
        self.bytes.extend_from_slice(&sealed);
        self.bytes
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        let id = blake3::hash(&self.bytes).to_hex().to_string();
        Ok((id, self.bytes, self.blobs))
    }
}

/// Reads the blob list from a whole pack (for `check` and index rebuilds).
pub fn read_header(
    key: &MasterKey,
    name: &str,
    pack: &[u8],
) -> Result<Vec<BlobLocation>, PackError> {
    let malformed = |why: &str| PackError::Malformed(name.to_owned(), why.to_owned());
    let (body, length) = pack
        .split_at_checked(pack.len().saturating_sub(4))
        .ok_or_else(|| malformed("too short"))?;
    let length =
        u32::from_le_bytes(length.try_into().map_err(|_| malformed("too short"))?) as usize;
    let start = body
        .len()
        .checked_sub(length)
        .ok_or_else(|| malformed("header longer than the pack"))?;
    let header = key.open(
        &body[start..],
        b"pack header",
        &format!("pack {name} header"),
    )?;
    // A header lists at most one blob per 8 bytes of the pack, each in less than 160 bytes.
    let limit = (start as u64 / 8 + 1) * 160;
    let header = metadata_json(header, limit).map_err(|e| malformed(&e))?;
    let blobs: Vec<BlobLocation> =
        serde_json::from_slice(&header).map_err(|e| malformed(&e.to_string()))?;
    if blobs.iter().any(|b| b.end() > start as u64) {
        return Err(malformed("a blob lies outside the pack"));
    }
    if let Some(why) = blobs.iter().find_map(|b| b.check().err()) {
        return Err(malformed(&why));
    }
    Ok(blobs)
}

/// Checks that the blob at `location` lies inside `pack` and decodes to its id (`check
/// --read-data` and adoption); else why not.
pub fn verify_blob(key: &MasterKey, pack: &[u8], location: &BlobLocation) -> Result<(), String> {
    let stored = pack
        .get(location.range())
        .ok_or_else(|| format!("blob {} lies outside the pack", location.id.to_hex()))?;
    crate::blob::decode_blob(key, &location.id, stored)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether a pack's bytes match its id (no key needed).
pub fn verify_id(name: &str, pack: &[u8]) -> bool {
    blake3::hash(pack).to_hex().as_str() == name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{decode_blob, encode_blob};

    #[test]
    fn packs_hold_blobs_and_a_sealed_header() {
        let key = MasterKey::generate().unwrap();
        let mut builder = PackBuilder::default();
        let chunks: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("chunk number {i}").repeat(50).into_bytes())
            .collect();
        for chunk in &chunks {
            let (id, stored) = encode_blob(&key, chunk, 3).unwrap();
            builder.add(id, &stored, chunk.len());
        }
        let (id, bytes, blobs) = builder.finish(&key, true).unwrap();
        assert!(verify_id(&id, &bytes));
        assert_eq!(read_header(&key, &id, &bytes).unwrap(), blobs);
        for (blob, chunk) in blobs.iter().zip(&chunks) {
            let stored = &bytes[blob.range()];
            assert_eq!(&decode_blob(&key, &blob.id, stored).unwrap(), chunk);
            assert_eq!(blob.plain_length as usize, chunk.len());
        }
    }

    #[test]
    fn damage_is_detected_with_and_without_the_key() {
        let key = MasterKey::generate().unwrap();
        let mut builder = PackBuilder::default();
        let (blob_id, stored) = encode_blob(&key, b"some data", 3).unwrap();
        builder.add(blob_id, &stored, 9);
        let (id, bytes, _) = builder.finish(&key, true).unwrap();
        let mut header_flip = bytes.clone();
        let at = header_flip.len() - 10;
        header_flip[at] ^= 1;
        assert!(!verify_id(&id, &header_flip));
        assert!(matches!(
            read_header(&key, &id, &header_flip),
            Err(PackError::Crypto(_))
        ));
        assert!(matches!(
            read_header(&key, &id, &bytes[..3]),
            Err(PackError::Malformed(..))
        ));
        let mut length_lie = bytes.clone();
        let n = length_lie.len();
        length_lie[n - 4..].copy_from_slice(&(u32::MAX).to_le_bytes());
        assert!(matches!(
            read_header(&key, &id, &length_lie),
            Err(PackError::Malformed(..))
        ));
        let other = MasterKey::generate().unwrap();
        assert!(read_header(&other, &id, &bytes).is_err());
    }
}
