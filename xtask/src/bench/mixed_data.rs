//! The benchmarks' generated data set: 2 GiB of mixed files, made the same on every machine.

use anyhow::Result;
use std::io::Write as _;
use std::path::Path;

/// Bumped when the generated data changes (the cached copy is then rebuilt).
const DATA_VERSION: &str = "mixed-v1";

/// xorshift64*: deterministic, fast data.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Random bytes (incompressible) or text over 16 letters (compresses to about half).
    fn fill(&mut self, out: &mut Vec<u8>, len: usize, text: bool) {
        const LETTERS: &[u8; 16] = b"etaoin shrdlu\ncm";
        out.clear();
        out.reserve(len);
        while out.len() < len {
            let word = self.next().to_le_bytes();
            if text {
                for b in word {
                    out.push(LETTERS[(b & 15) as usize]);
                    out.push(LETTERS[(b >> 4) as usize]);
                }
            } else {
                out.extend_from_slice(&word);
            }
        }
        out.truncate(len);
    }
}

/// 2 GiB of mixed files: 16,000 small text files (0.5-24 KiB) in 100 directories, 60 medium
/// files (4-12 MiB, half text), 3 large files of 450 MiB (alternating random and text MiBs).
pub(super) fn generate(dir: &Path) -> Result<()> {
    let marker = dir.join(".generated");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(DATA_VERSION) {
        return Ok(());
    }
    eprintln!("generating the benchmark data in {}", dir.display());
    std::fs::remove_dir_all(dir).ok();
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut buffer = Vec::new();
    for d in 0..100 {
        let sub = dir.join(format!("small/{d:03}"));
        std::fs::create_dir_all(&sub)?;
        for f in 0..160 {
            let len = 512 + (noise.next() % (24 * 1024 - 512)) as usize;
            noise.fill(&mut buffer, len, true);
            std::fs::write(sub.join(format!("file-{f:03}.txt")), &buffer)?;
        }
    }
    std::fs::create_dir_all(dir.join("medium"))?;
    for m in 0..60 {
        let len = (4 << 20) + (noise.next() % (8 << 20)) as usize;
        noise.fill(&mut buffer, len, m % 2 == 0);
        std::fs::write(dir.join(format!("medium/part-{m:02}.dat")), &buffer)?;
    }
    std::fs::create_dir_all(dir.join("large"))?;
    for l in 0..3 {
        let mut file = std::fs::File::create(dir.join(format!("large/blob-{l}.img")))?;
        for mib in 0..450 {
            noise.fill(&mut buffer, 1 << 20, mib % 2 == 1);
            file.write_all(&buffer)?;
        }
    }
    std::fs::write(&marker, DATA_VERSION)?;
    Ok(())
}

/// Files and bytes below `dir` (the generation marker left out).
pub(super) fn bytes_under(dir: &Path) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if entry.file_name() != ".generated" {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}
