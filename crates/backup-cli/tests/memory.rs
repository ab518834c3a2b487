//! Memory stays bounded whatever the data: a 10 GiB stream backed up from stdin and written
//! back to stdout by the real binary, its peak resident memory read from the kernel.
//!
//! Alone in its test binary, so the peak of this process's children is this command's.

use nix::sys::resource::{UsageWho, getrusage};
use std::io::Read;
use std::process::{Command, Stdio};

const SIZE: u64 = 10 << 30;
const LIMIT_MIB: i64 = 300;

/// Unique yet compressible data: every 4 KiB block is 512 random bytes then a fixed text,
/// so no two chunks are equal and the repository stays near 1.3 GiB.
struct Generated {
    state: u64,
    left: u64,
    block: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(size: u64) -> Self {
        Self {
            state: 0x9E37_79B9_7F4A_7C15,
            left: size,
            block: Vec::new(),
            at: 0,
        }
    }

    fn refill(&mut self) {
        const TEXT: &[u8] = b"kbackup streams data through bounded buffers. ";
        self.block.clear();
        while self.block.len() < 512 {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.block.extend_from_slice(&self.state.to_le_bytes());
        }
        while self.block.len() < 4096 {
            let n = TEXT.len().min(4096 - self.block.len());
            self.block.extend_from_slice(&TEXT[..n]);
        }
        self.at = 0;
    }
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.at == self.block.len() {
            self.refill();
        }
        let n = out
            .len()
            .min(self.block.len() - self.at)
            .min(self.left as usize);
        out[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        self.left -= n as u64;
        Ok(n)
    }
}

fn kbackup(home: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    command
        .env("HOME", home)
        .env("KBACKUP_REPO", home.join("repo"))
        .env("KBACKUP_PASSWORD", "pw")
        .env_remove("KBACKUP_PASSWORD_FILE")
        .args(["-q", "--no-progress"])
        .args(args);
    command
}

/// The largest resident set of the children waited for so far, in MiB.
fn children_peak_mib() -> i64 {
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss()
        / 1024
}

#[test]
fn a_10_gib_stream_goes_in_and_out_in_bounded_memory() {
    let home = tempfile::tempdir().unwrap();
    let init = kbackup(home.path(), &["repo", "init"]).output().unwrap();
    assert!(init.status.success(), "{init:?}");

    let mut backup = kbackup(home.path(), &["backup", "stdin", "--name", "big"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = backup.stdin.take().unwrap();
    let feeder =
        std::thread::spawn(move || std::io::copy(&mut Generated::new(SIZE), &mut input).map(drop));
    let backed_up = backup.wait_with_output().unwrap();
    feeder.join().unwrap().expect("the whole stream was read");
    assert!(backed_up.status.success(), "{backed_up:?}");
    let backup_peak = children_peak_mib();
    eprintln!("backup of 10 GiB: peak RSS {backup_peak} MiB");
    assert!(
        backup_peak < LIMIT_MIB,
        "backup peak RSS {backup_peak} MiB, limit {LIMIT_MIB}"
    );

    let mut cat = kbackup(home.path(), &["snapshot", "cat", "latest:big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut output = cat.stdout.take().unwrap();
    let (mut expected, mut got) = (Generated::new(SIZE), vec![0u8; 1 << 20]);
    let mut want = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = output.read(&mut got).unwrap();
        if n == 0 {
            break;
        }
        expected.read_exact(&mut want[..n]).unwrap();
        assert!(got[..n] == want[..n], "restored bytes differ at {total}");
        total += n as u64;
    }
    let status = cat.wait().unwrap();
    assert!(status.success());
    assert_eq!(total, SIZE);
    let peak = children_peak_mib();
    eprintln!("backup and restore of 10 GiB: peak RSS {peak} MiB");
    assert!(peak < LIMIT_MIB, "peak RSS {peak} MiB, limit {LIMIT_MIB}");
    // No chunk was deduplicated away: the session really packed and uploaded 10 GiB.
    let stored = walk_size(&home.path().join("repo"));
    assert!(stored > 1 << 30, "repository of {} MiB", stored >> 20);
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            match meta.is_dir() {
                true => walk_size(&entry.path()),
                false => meta.len(),
            }
        })
        .sum()
}
