//! glibc's allocator, tuned before anything runs.
//!
//! A backup or restore moves megabyte buffers (chunks, spans, packs) between threads. With
//! glibc's defaults each thread that allocates gets an arena of its own that keeps the memory
//! freed in it, and the threshold above which a buffer gets its own mapping (returned to the
//! system when freed) rises to the largest buffer freed so far (a 24 MiB pack), so nearly every
//! buffer ends in an arena. Measured on the 2 GiB benchmark tree (release build, local disk),
//! with two arenas and buffers of 4 MiB and more mapped on their own: backup peak 97-110 MiB
//! instead of 166-195 MiB; restore 101-105 MiB instead of 139-157 MiB, at the same speed
//! (a 2 MiB threshold: 82-88 MiB, but 1-2 s more system time in page faults).
//!
//! The settings are glibc tunables, read only when a program starts, and setting them from
//! inside needs `mallopt` (foreign, unsafe code). So the program executes itself again, once,
//! with `GLIBC_TUNABLES` set (same process id, arguments and descriptors). It does not when the
//! user's `GLIBC_TUNABLES` already sets a `glibc.malloc` tunable, nor when it is the second run.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod tune {
    use std::os::unix::process::CommandExt;

    /// Two arenas; buffers of 4 MiB and more mapped on their own.
    const TUNABLES: &str = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304";
    /// Set in the second run's environment, so it never executes itself again.
    const TUNED: &str = "KBACKUP_MALLOC_TUNED";

    /// Executes this program again with the tunables when they are not in force; returns
    /// (and the program runs untuned) when that is not possible.
    pub fn apply() {
        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if std::env::var_os(TUNED).is_some() || current.contains("glibc.malloc.") {
            return;
        }
        let Ok(program) = std::env::current_exe() else {
            return;
        };
        let tunables = match current.is_empty() {
            true => TUNABLES.to_owned(),
            false => format!("{current}:{TUNABLES}"),
        };
        let mut arguments = std::env::args_os();
        let mut command = std::process::Command::new(program);
        if let Some(name) = arguments.next() {
            command.arg0(name);
        }
        // `exec` returns only when it failed.
        let _ = command
            .args(arguments)
            .env("GLIBC_TUNABLES", tunables)
            .env(TUNED, "1")
            .exec();
    }
}

/// Tunes the allocator (see the module documentation); a no-op off glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune::apply();
}
