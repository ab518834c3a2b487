//! Starting servers detached from the terminal, remembering their pids, stopping them.

use anyhow::{Context, Result, bail};
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where one server's pid, port and log live.
pub struct ServerFiles {
    pub name: &'static str,
    run_dir: PathBuf,
    log_dir: PathBuf,
}

impl ServerFiles {
    pub fn new(root: &Path, name: &'static str) -> Self {
        Self {
            name,
            run_dir: root.join("run"),
            log_dir: root.join("logs"),
        }
    }

    pub fn log(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.name))
    }

    fn pid_file(&self) -> PathBuf {
        self.run_dir.join(format!("{}.pid", self.name))
    }

    fn port_file(&self, which: &str) -> PathBuf {
        self.run_dir.join(format!("{}.{which}.port", self.name))
    }

    /// The pid of the running server, if it runs.
    pub fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_alive(pid).then_some(pid)
    }

    /// The port the server uses: the recorded one while it runs, else `preferred` when free,
    /// else one the OS picks (said on stderr).
    pub fn port(&self, which: &str, preferred: u16) -> Result<u16> {
        let recorded = fs::read_to_string(self.port_file(which))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        if let (Some(_), Some(port)) = (self.running_pid(), recorded) {
            return Ok(port);
        }
        let port = if port_is_free(preferred) {
            preferred
        } else {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            eprintln!(
                "  port {preferred} ({} {which}) is taken by another program; using {port}",
                self.name
            );
            port
        };
        fs::create_dir_all(&self.run_dir)?;
        fs::write(self.port_file(which), port.to_string())?;
        Ok(port)
    }

    /// Starts `command` in its own session, output to the log, unless it already runs.
    pub fn start(&self, command: Command) -> Result<()> {
        if let Some(pid) = self.running_pid() {
            eprintln!("  {} already running (pid {pid})", self.name);
            return Ok(());
        }
        fs::create_dir_all(&self.run_dir)?;
        fs::create_dir_all(&self.log_dir)?;
        let log = fs::File::create(self.log())?;
        let program = command.get_program().to_owned();
        let mut detached = Command::new("setsid");
        detached.arg(&program).args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => detached.env(key, value),
                None => detached.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            detached.current_dir(dir);
        }
        let child = detached
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, program.to_string_lossy()))?;
        fs::write(self.pid_file(), child.id().to_string())?;
        eprintln!(
            "  started {} (pid {}, log {})",
            self.name,
            child.id(),
            self.log().display()
        );
        Ok(())
    }

    /// Stops the server: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&self, grace: Duration) -> Result<bool> {
        let Some(pid) = self.running_pid() else {
            let _ = fs::remove_file(self.pid_file());
            return Ok(false);
        };
        signal(pid, "TERM");
        let deadline = Instant::now() + grace;
        while is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if is_alive(pid) {
            signal(pid, "KILL");
        }
        let _ = fs::remove_file(self.pid_file());
        Ok(true)
    }

    /// Fails with the log's tail if the server died.
    pub fn ensure_alive(&self) -> Result<()> {
        if self.running_pid().is_none() {
            bail!(
                "{} exited; last lines of {}:\n{}",
                self.name,
                self.log().display(),
                tail(&self.log(), 25)
            );
        }
        Ok(())
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

fn is_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state letter is Z.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A plain-HTTP GET on 127.0.0.1 that answers 2xx.
pub fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head[9] == b'2'
}

/// Polls `ready` every 200 ms until it holds, the server dies, or `timeout` passes.
pub fn wait_until(
    server: &ServerFiles,
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if ready() {
            eprintln!(
                "  {} ready ({:.1}s)",
                server.name,
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        server.ensure_alive()?;
        if start.elapsed() > timeout {
            bail!(
                "{} did not become ready ({what}) within {timeout:?}; last lines of {}:\n{}",
                server.name,
                server.log().display(),
                tail(&server.log(), 25)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_replaced_by_a_free_one_and_recorded() {
        let dir = std::env::temp_dir().join(format!("kbackup-xtask-port-{}", std::process::id()));
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let server = ServerFiles::new(&dir, "demo");
        let chosen = server.port("api", taken_port).unwrap();
        assert_ne!(chosen, taken_port);
        assert!(port_is_free(chosen));
        assert_eq!(
            fs::read_to_string(server.port_file("api")).unwrap(),
            chosen.to_string()
        );
        drop(taken);
        assert_eq!(
            server.port("api", taken_port).unwrap(),
            taken_port,
            "a free preferred port is used"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn http_ok_needs_a_2xx_answer() {
        assert!(!http_ok(1, "/"), "nothing listens on port 1");
    }
}
