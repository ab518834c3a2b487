//! A MinIO of a test's own (the test environment's build), on a free port with a data
//! directory of its own: a test may stop and restart it, which the shared one never is.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Creates `bucket` on the S3 server at `endpoint` (one that exists already is fine). A
/// MinIO that answers ready may still refuse writes for a moment while it initialises (HTTP
/// 503): asked again for up to 30 s.
pub fn create_bucket(endpoint: &str, user: &str, password: &str, bucket: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        let status = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{user}:{password}"))
            .arg(format!("{endpoint}/{bucket}"))
            .output()
            .expect("curl (installed by .ci/run) creates the bucket");
        let code = String::from_utf8_lossy(&status.stdout).into_owned();
        if code != "503" || Instant::now() > deadline {
            break code;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        code == "200" || code == "409",
        "creating bucket {bucket}: HTTP {code}"
    );
}

/// The keys in `bucket` below `prefix` on the S3 server at `endpoint` (the first 1000).
pub fn keys(endpoint: &str, user: &str, password: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let output = Command::new("curl")
        .args(["-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{user}:{password}"))
        // One query parameter: curl's signature of several does not match MinIO's.
        .arg(format!(
            "{endpoint}/{bucket}?prefix={}",
            prefix.replace('/', "%2F")
        ))
        .output()
        .expect("curl (installed by .ci/run) lists the bucket");
    assert!(output.status.success(), "listing bucket {bucket}");
    String::from_utf8_lossy(&output.stdout)
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
        .collect()
}

/// The bytes of `key` in `bucket` on the S3 server at `endpoint`.
pub fn object(endpoint: &str, user: &str, password: &str, bucket: &str, key: &str) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{user}:{password}"))
        .arg(format!("{endpoint}/{bucket}/{key}"))
        .output()
        .expect("curl (installed by .ci/run) reads the object");
    assert!(output.status.success(), "reading {bucket}/{key}");
    output.stdout
}

/// Writes `bytes` as `key` in `bucket` on the S3 server at `endpoint`.
pub fn put(endpoint: &str, user: &str, password: &str, bucket: &str, key: &str, bytes: &[u8]) {
    let mut child = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "--data-binary",
            "@-",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
        ])
        // curl 7.88 signs no payload hash of its own: MinIO needs the header.
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--user"])
        .arg(format!("{user}:{password}"))
        .arg(format!("{endpoint}/{bucket}/{key}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("curl (installed by .ci/run) writes the object");
    child
        .stdin
        .take()
        .expect("curl's stdin")
        .write_all(bytes)
        .expect("the object's bytes to curl");
    assert!(
        child.wait().expect("curl ends").success(),
        "writing {bucket}/{key}"
    );
}

/// A private MinIO; stopped when dropped.
#[derive(Debug)]
pub struct PrivateMinio {
    child: Option<Child>,
    binary: PathBuf,
    data: PathBuf,
    port: u16,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Root user (also the access key id).
    pub user: String,
    /// Root password (also the secret access key).
    pub password: String,
}

impl PrivateMinio {
    /// Starts one storing under `data`, waits until it is ready, creates `bucket`.
    pub fn start(data: &Path, bucket: &str) -> Self {
        let binary = PathBuf::from(crate::require(
            "the test MinIO build",
            "KBACKUP_TEST_MINIO_BIN",
        ));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut minio = Self {
            child: None,
            binary,
            data: data.to_path_buf(),
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            user: "kbackup-private".into(),
            password: "kbackup-private-secret".into(),
        };
        minio.restart();
        create_bucket(&minio.endpoint, &minio.user, &minio.password, bucket);
        minio
    }

    /// Kills the server at once (SIGKILL: requests in flight fail).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data; waits until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(&self.binary)
            .args(["server", "--quiet"])
            .arg(&self.data)
            .arg(format!("--address=127.0.0.1:{}", self.port))
            .env("MINIO_ROOT_USER", &self.user)
            .env("MINIO_ROOT_PASSWORD", &self.password)
            .env("MINIO_BROWSER", "off")
            .env("MINIO_UPDATE", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.ready() {
            assert!(
                Instant::now() < deadline,
                "the private MinIO did not get ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ready(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let request = format!(
            "GET /minio/health/ready HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }
}

impl Drop for PrivateMinio {
    fn drop(&mut self) {
        self.kill();
    }
}
