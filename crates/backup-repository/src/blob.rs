//! A chunk as stored: compressed when that helps, sealed with its id as context, and checked
//! against its id when read back, so a wrong, swapped or damaged blob is always detected.

use crate::crypto::{ChunkId, CryptoError, MasterKey, SEAL_HEADER, SEAL_OVERHEAD};
use crate::pack::MAX_CHUNK;
use std::borrow::Cow;

const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// Why a blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Authentication failed (see [`CryptoError`]).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The content decrypted but is not a valid blob.
    #[error("blob {0} is corrupt: {1}")]
    Corrupt(String, String),
    /// The content does not hash to the id it is stored under.
    #[error("blob {0} does not match its id")]
    Mismatch(String),
}

fn context(id: &ChunkId) -> Vec<u8> {
    [b"blob:".as_slice(), &id.0].concat()
}

/// Encodes a chunk: its id, and the bytes to store. `level` is zstd's (1-22; 0 = default 3).
pub fn encode_blob(
    key: &MasterKey,
    data: &[u8],
    level: i32,
) -> Result<(ChunkId, Vec<u8>), CryptoError> {
    let id = key.chunk_id(data);
    Ok((id, seal_chunk(key, &id, data, level)?))
}

/// Encodes a chunk whose id is known: compressed when that helps, then sealed.
pub fn seal_chunk(
    key: &MasterKey,
    id: &ChunkId,
    data: &[u8],
    level: i32,
) -> Result<Vec<u8>, CryptoError> {
    // One buffer, sealed in place: room for the seal's header, the flag, then at most the
    // chunk's size compressed into it (larger output means it is stored raw), then the tag.
    let body = SEAL_HEADER + 1;
    let mut sealed = Vec::with_capacity(SEAL_OVERHEAD + 1 + data.len());
    sealed.resize(body + data.len(), 0);
    sealed[SEAL_HEADER] = ZSTD;
    let compressed = match looks_incompressible(data) {
        true => None,
        false => COMPRESSOR.with_borrow_mut(|compressor| {
            compressor.set_level(level).ok()?;
            compressor.compress_to(data, &mut sealed[body..]).ok()
        }),
    };
    match compressed {
        Some(length) if length < data.len() => sealed.truncate(body + length),
        _ => {
            sealed[SEAL_HEADER] = RAW;
            sealed[body..].copy_from_slice(data);
        }
    }
    key.seal_in_place(&mut sealed, &context(id))?;
    Ok(sealed)
}

/// A zstd compressor per worker thread (its context is costly to create per chunk).
struct Compressor {
    context: zstd::bulk::Compressor<'static>,
    level: i32,
}

impl Compressor {
    fn set_level(&mut self, level: i32) -> std::io::Result<()> {
        if level != self.level {
            self.context.set_compression_level(level)?;
            self.level = level;
        }
        Ok(())
    }

    fn compress_to(&mut self, data: &[u8], out: &mut [u8]) -> std::io::Result<usize> {
        self.context.compress_to_buffer(data, out)
    }
}

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Compressor> = std::cell::RefCell::new(Compressor {
        context: zstd::bulk::Compressor::new(0).expect("a zstd context"),
        level: 0,
    });
}

/// Decompresses a zstd frame: in one call into a buffer of the recorded size (one-shot
/// compression records it), with this thread's context; a frame without a size as a stream.
/// A frame of more than [`MAX_CHUNK`] bytes is refused, not allocated.
fn decompress(frame: &[u8]) -> std::io::Result<Vec<u8>> {
    let too_large =
        || std::io::Error::other(format!("decompresses to more than {MAX_CHUNK} bytes"));
    match zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
    {
        Some(size) if size > u64::from(MAX_CHUNK) => Err(too_large()),
        Some(size) => DECOMPRESSOR.with_borrow_mut(|d| d.decompress(frame, size as usize)),
        None => {
            use std::io::Read;
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(frame)?
                .take(u64::from(MAX_CHUNK) + 1)
                .read_to_end(&mut out)?;
            if out.len() > MAX_CHUNK as usize {
                return Err(too_large());
            }
            Ok(out)
        }
    }
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<zstd::bulk::Decompressor<'static>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().expect("a zstd context"));
}

/// Samples taken from a large chunk to judge whether compressing it is worth the time.
const SAMPLE: usize = 16 * 1024;

/// Whether a large chunk looks like random or already compressed data: three samples (start,
/// middle, end) compressed at the fastest level shrink by less than 3%. Compressing such
/// chunks fully would cost the most CPU of a backup and save nothing.
fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < 8 * SAMPLE {
        return false;
    }
    let middle = data.len() / 2 - SAMPLE / 2;
    let sample = [
        &data[..SAMPLE],
        &data[middle..middle + SAMPLE],
        &data[data.len() - SAMPLE..],
    ]
    .concat();
    zstd::bulk::compress(&sample, 1).is_ok_and(|c| c.len() * 100 > sample.len() * 97)
}

/// Decodes a stored blob and checks it against `id`.
pub fn decode_blob(key: &MasterKey, id: &ChunkId, stored: &[u8]) -> Result<Vec<u8>, BlobError> {
    decode_blob_in_place(key, id, &mut stored.to_vec()).map(Cow::into_owned)
}

/// Decodes a stored blob over its own bytes (decrypted in place) and checks it against `id`:
/// a chunk stored raw is returned as a part of `stored` (no copy), a compressed one
/// decompressed.
pub fn decode_blob_in_place<'a>(
    key: &MasterKey,
    id: &ChunkId,
    stored: &'a mut [u8],
) -> Result<Cow<'a, [u8]>, BlobError> {
    let name = id.to_hex();
    let plain: &[u8] = key.open_in_place(stored, &context(id), &format!("blob {name}"))?;
    let (flag, body) = plain
        .split_first()
        .ok_or_else(|| BlobError::Corrupt(name.clone(), "empty".into()))?;
    let data = match *flag {
        RAW => Cow::Borrowed(body),
        ZSTD => Cow::Owned(
            decompress(body).map_err(|e| BlobError::Corrupt(name.clone(), e.to_string()))?,
        ),
        other => {
            return Err(BlobError::Corrupt(
                name,
                format!("unknown encoding {other}"),
            ));
        }
    };
    if key.chunk_id(&data) != *id {
        return Err(BlobError::Mismatch(name));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn blobs_round_trip(data in proptest::collection::vec(any::<u8>(), 0..20_000), level in 1i32..6) {
            let key = MasterKey::generate().unwrap();
            let (id, stored) = encode_blob(&key, &data, level).unwrap();
            prop_assert_eq!(decode_blob(&key, &id, &stored).unwrap(), data);
        }
    }

    #[test]
    fn large_random_chunks_skip_compression_and_mixed_ones_do_not() {
        let random = backup_testing::noise(1 << 20, 5);
        assert!(looks_incompressible(&random));
        let mut mixed = random.clone();
        mixed[..SAMPLE].fill(b'a');
        assert!(!looks_incompressible(&mixed));
        let text = b"kind: ConfigMap\n".repeat(70_000);
        assert!(!looks_incompressible(&text));
        assert!(
            !looks_incompressible(&random[..4 * SAMPLE]),
            "small chunks are always tried"
        );
    }

    #[test]
    fn compressible_data_shrinks_and_random_data_stays_raw() {
        let key = MasterKey::generate().unwrap();
        let text = b"apiVersion: apps/v1\nkind: Deployment\n".repeat(1000);
        let (_, stored) = encode_blob(&key, &text, 3).unwrap();
        assert!(
            stored.len() < text.len() / 10,
            "{} bytes stored for {}",
            stored.len(),
            text.len()
        );
        let random: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let (_, stored) = encode_blob(&key, &random, 3).unwrap();
        assert!(stored.len() <= random.len() + 1 + 24 + 16);
    }

    #[test]
    fn raw_chunks_decode_over_their_stored_bytes_and_compressed_ones_into_their_own() {
        let key = MasterKey::generate().unwrap();
        let random = backup_testing::noise(1 << 20, 9);
        let (id, mut stored) = encode_blob(&key, &random, 3).unwrap();
        let stored_at = stored.as_ptr() as usize..stored.as_ptr() as usize + stored.len();
        match decode_blob_in_place(&key, &id, &mut stored).unwrap() {
            Cow::Borrowed(plain) => {
                assert_eq!(plain, random.as_slice());
                assert!(stored_at.contains(&(plain.as_ptr() as usize)));
            }
            Cow::Owned(_) => panic!("a raw chunk was copied"),
        }
        let text = b"kind: Secret\n".repeat(10_000);
        let (id, mut stored) = encode_blob(&key, &text, 3).unwrap();
        let decoded = decode_blob_in_place(&key, &id, &mut stored).unwrap();
        assert!(matches!(&decoded, Cow::Owned(plain) if *plain == text));
    }

    #[test]
    fn a_blob_under_another_id_or_damaged_is_refused() {
        let key = MasterKey::generate().unwrap();
        let (id_a, stored_a) = encode_blob(&key, b"chunk a", 3).unwrap();
        let (id_b, _) = encode_blob(&key, b"chunk b", 3).unwrap();
        assert!(matches!(
            decode_blob(&key, &id_b, &stored_a),
            Err(BlobError::Crypto(CryptoError::Tampered(_)))
        ));
        let mut damaged = stored_a.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x80;
        let error = decode_blob(&key, &id_a, &damaged).unwrap_err();
        assert!(error.to_string().contains(&id_a.to_hex()), "{error}");
    }
}
