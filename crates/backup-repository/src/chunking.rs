//! Content-defined chunking (FastCDC, 2020 variant): boundaries depend on the content, so an
//! insertion shifts only the chunks around it and the rest deduplicate.

use fastcdc::v2020::FastCDC;
use serde::{Deserialize, Serialize};

/// Chunk size bounds, recorded in the repository config (changing them breaks dedup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkerParams {
    /// Smallest chunk (except a stream's last).
    pub min_size: u32,
    /// Target average.
    pub avg_size: u32,
    /// Largest chunk.
    pub max_size: u32,
}

impl Default for ChunkerParams {
    /// 512 KiB / 1 MiB / 8 MiB, as restic uses.
    fn default() -> Self {
        Self {
            min_size: 512 * 1024,
            avg_size: 1024 * 1024,
            max_size: 8 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Whether FastCDC takes these bounds (min <= avg <= max, each within the algorithm's
    /// range); a configuration read from storage is checked before any chunking.
    pub fn check(&self) -> Result<(), String> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let within = (MINIMUM_MIN..=MINIMUM_MAX).contains(&self.min_size)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&self.avg_size)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&self.max_size)
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size;
        if within {
            Ok(())
        } else {
            Err(format!(
                "chunk sizes {}/{}/{} out of bounds ({MINIMUM_MIN}-{MINIMUM_MAX} / {AVERAGE_MIN}-{AVERAGE_MAX} / {MAXIMUM_MIN}-{MAXIMUM_MAX}, in order)",
                self.min_size, self.avg_size, self.max_size
            ))
        }
    }
}

/// The chunks of `data` as (offset, length), covering it exactly and in order.
pub fn chunk_boundaries(data: &[u8], params: ChunkerParams) -> Vec<(usize, usize)> {
    FastCDC::new(data, params.min_size, params.avg_size, params.max_size)
        .map(|c| (c.offset, c.length))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_testing::noise;
    use proptest::prelude::*;

    const SMALL: ChunkerParams = ChunkerParams {
        min_size: 256,
        avg_size: 1024,
        max_size: 4096,
    };

    proptest! {
        #[test]
        fn chunks_cover_the_input_exactly(data in proptest::collection::vec(any::<u8>(), 0..50_000)) {
            let chunks = chunk_boundaries(&data, SMALL);
            let mut next = 0;
            for (i, (offset, length)) in chunks.iter().enumerate() {
                prop_assert_eq!(*offset, next);
                prop_assert!(*length as u32 <= SMALL.max_size);
                if i + 1 < chunks.len() {
                    prop_assert!(*length as u32 >= SMALL.min_size);
                }
                next += length;
            }
            prop_assert_eq!(next, data.len());
            prop_assert_eq!(chunk_boundaries(&data, SMALL), chunks, "deterministic");
        }
    }

    #[test]
    fn an_insertion_changes_only_nearby_chunks() {
        let data = noise(200_000, 7);
        let mut edited = b"a few inserted bytes".to_vec();
        edited.extend_from_slice(&data);
        let chunk_set = |d: &[u8]| {
            chunk_boundaries(d, SMALL)
                .into_iter()
                .map(|(o, l)| d[o..o + l].to_vec())
                .collect::<Vec<_>>()
        };
        let (before, after) = (chunk_set(&data), chunk_set(&edited));
        let shared = after.iter().filter(|c| before.contains(c)).count();
        assert!(
            shared + 3 >= after.len(),
            "only the first chunks differ: {shared} of {} shared",
            after.len()
        );
    }

    #[test]
    fn defaults_are_restics() {
        let p = ChunkerParams::default();
        assert_eq!(
            (p.min_size, p.avg_size, p.max_size),
            (512 << 10, 1 << 20, 8 << 20)
        );
        let data = noise(20 << 20, 3);
        let chunks = chunk_boundaries(&data, p);
        let average = data.len() / chunks.len();
        assert!(
            (512 << 10..=4 << 20).contains(&average),
            "average chunk {average}"
        );
    }
}
