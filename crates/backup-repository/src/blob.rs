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
    let compressed = Compressor::with_one(|compressor| {
        compressor.set_level(level_for(data, level)).ok()?;
        compressor.compress_to(data, &mut sealed[body..]).ok()
    });
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

/// A zstd compressor (its context is costly to create per chunk, and holds a megabyte or
/// more once it compressed a large chunk at level 3).
struct Compressor {
    context: zstd::bulk::Compressor<'static>,
    level: i32,
}

/// Compressors not in use. Chunks are encoded on tokio's blocking threads, of which a backup
/// uses many over time: a compressor per thread kept six or more alive where two to four
/// work at once (2-3 MiB of a backup's peak).
static IDLE_COMPRESSORS: std::sync::Mutex<Vec<Compressor>> = std::sync::Mutex::new(Vec::new());

impl Compressor {
    /// Runs `work` with an idle compressor (a new one when none is), then keeps it for the
    /// next chunk: as many exist as chunks were ever compressed at the same time.
    fn with_one<T>(work: impl FnOnce(&mut Self) -> T) -> T {
        let idle = || {
            IDLE_COMPRESSORS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let taken = idle().pop();
        let mut compressor = taken.unwrap_or_else(|| Self {
            context: zstd::bulk::Compressor::new(0).expect("a zstd context"),
            level: 0,
        });
        let result = work(&mut compressor);
        idle().push(compressor);
        result
    }

    fn set_level(&mut self, level: i32) -> std::io::Result<()> {
        if level != self.level {
            self.context.set_compression_level(level)?;
            self.level = level;
        }
        Ok(())
    }

    /// Compresses `data` into `out`; fails when it does not fit (the chunk is then stored
    /// raw). A failed frame leaves the context mid-frame, where it takes no new level: the
    /// session is reset then.
    fn compress_to(&mut self, data: &[u8], out: &mut [u8]) -> std::io::Result<usize> {
        let result = self.context.compress_to_buffer(data, out);
        if result.is_err() {
            self.context
                .context_mut()
                .reset(zstd::zstd_safe::ResetDirective::SessionOnly)
                .map_err(|code| std::io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
        }
        result
    }
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

/// Samples taken from a large chunk to judge which compression level is worth the time.
const SAMPLE: usize = 16 * 1024;

/// zstd's fastest regular level.
const FASTEST: i32 = 1;

/// The zstd level for a chunk: `configured`, unless three samples of a large chunk (start,
/// middle, end) show data without repeats, which a deeper search (what higher levels buy)
/// cannot shrink: random or already compressed data, or text whose only redundancy is its
/// alphabet. Their fastest compression comes within 3% of the samples' order-0 entropy;
/// such chunks get the fastest level (higher ones are slower there, and sometimes larger).
/// zstd itself stores the blocks of a chunk that do not shrink, quickly, so a chunk is
/// always compressed: random data costs little, and the compressible parts of a mixed
/// chunk are not missed.
fn level_for(data: &[u8], configured: i32) -> i32 {
    if data.len() < 8 * SAMPLE || (configured != 0 && configured <= FASTEST) {
        return configured;
    }
    let middle = data.len() / 2 - SAMPLE / 2;
    let sample = [
        &data[..SAMPLE],
        &data[middle..middle + SAMPLE],
        &data[data.len() - SAMPLE..],
    ]
    .concat();
    let fastest = zstd::bulk::compress(&sample, FASTEST).map_or(sample.len(), |c| c.len());
    match fastest as f64 * 100.0 >= order0_bytes(&sample) * 97.0 {
        true => FASTEST,
        false => configured,
    }
}

/// The size `data` would take coded byte by byte at its own entropy (no repeats used).
fn order0_bytes(data: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &byte in data {
        counts[usize::from(byte)] += 1;
    }
    let total = data.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| f64::from(count) * (total / f64::from(count)).log2())
        .sum();
    bits / 8.0
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

    /// Text over 16 letters drawn at random: 4 bits a byte, no repeats to find.
    fn letters(len: usize, seed: u64) -> Vec<u8> {
        backup_testing::noise(len, seed)
            .into_iter()
            .map(|b| b"etaoin shrdlu\ncm"[usize::from(b & 15)])
            .collect()
    }

    #[test]
    fn data_without_repeats_gets_the_fastest_level_and_text_the_configured_one() {
        let random = backup_testing::noise(1 << 20, 5);
        assert_eq!(level_for(&random, 3), FASTEST);
        assert_eq!(level_for(&letters(1 << 20, 6), 3), FASTEST);
        assert_eq!(
            level_for(&letters(1 << 20, 6), 0),
            FASTEST,
            "0 is zstd's default"
        );
        let manifests: Vec<u8> = (0..40_000)
            .flat_map(|i| {
                format!("- name: pod-{i}\n  image: registry.example/app:{}\n", i % 7).into_bytes()
            })
            .collect();
        assert_eq!(level_for(&manifests, 3), 3);
        assert_eq!(level_for(&manifests, 9), 9);
        assert_eq!(
            level_for(&random[..4 * SAMPLE], 3),
            3,
            "small chunks keep the level"
        );
        assert_eq!(
            level_for(&random, -5),
            -5,
            "a faster level than ours is kept"
        );
        assert!(order0_bytes(&letters(1 << 16, 7)) > 32_700.0);
        assert!(order0_bytes(&letters(1 << 16, 7)) < 32_800.0);
    }

    #[test]
    fn text_between_random_samples_is_still_compressed() {
        let mut chunk = backup_testing::noise(3 << 20, 8);
        chunk[1 << 20..(1 << 20) + (400 << 10)].copy_from_slice(&letters(400 << 10, 9));
        let key = MasterKey::generate().unwrap();
        let (id, stored) = encode_blob(&key, &chunk, 3).unwrap();
        assert!(
            stored.len() < chunk.len() - (150 << 10),
            "{} bytes stored for {}",
            stored.len(),
            chunk.len()
        );
        assert_eq!(decode_blob(&key, &id, &stored).unwrap(), chunk);
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
        assert!(
            matches!(&decoded, Cow::Owned(plain) if *plain == text),
            "compressed, after a chunk that did not fit"
        );
    }

    #[test]
    fn a_compressor_whose_frame_did_not_fit_takes_a_new_level_and_compresses() {
        let random = backup_testing::noise(1 << 20, 10);
        let text = letters(1 << 20, 11);
        Compressor::with_one(|compressor| {
            compressor.set_level(3).unwrap();
            let mut out = vec![0u8; random.len()];
            assert!(compressor.compress_to(&random, &mut out).is_err());
            compressor.set_level(FASTEST).unwrap();
            let length = compressor.compress_to(&text, &mut out).unwrap();
            assert!(length < text.len() * 52 / 100, "{length}");
        });
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
