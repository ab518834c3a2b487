//! MinIO, fake-gcs-server, Azurite and Elasticsearch, and the buckets and containers the
//! tests use.

use super::node::NODE_IP;
use super::process::{http_ok, wait_until};
use super::{
    AZURITE_ACCOUNT, AZURITE_KEY, BUCKETS, CONTAINERS, Components, GCS_BUCKETS, MINIO_PASSWORD,
    MINIO_USER, TestEnv,
};
use anyhow::{Context, Result, bail};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

pub struct Stores {
    pub minio_port: u16,
    pub gcs_port: u16,
    pub azurite_port: u16,
    pub es_port: u16,
}

impl Stores {
    /// Starts the four servers without waiting for them.
    pub fn start(env: &TestEnv, bins: &Components) -> Result<Self> {
        let p = |path: std::path::PathBuf| path.display().to_string();

        let minio = env.server("minio");
        let minio_port = minio.port("api", 29000)?;
        let console_port = minio.port("console", 29001)?;
        let mut cmd = Command::new(bins.minio.join("bin/minio"));
        // On the node address, where pods reach it straight, as they reach an object store
        // in a cluster (a forwarder in between would cost the movers a copy of every byte);
        // MinIO listens on the loopback addresses as well, where the host's tools reach it.
        cmd.args(["server", &p(env.data("minio")), "--quiet"])
            .arg(format!("--address={NODE_IP}:{minio_port}"))
            .arg(format!("--console-address=127.0.0.1:{console_port}"))
            .env("MINIO_ROOT_USER", MINIO_USER)
            .env("MINIO_ROOT_PASSWORD", MINIO_PASSWORD)
            .env("MINIO_BROWSER", "off")
            .env("MINIO_UPDATE", "off");
        minio.start(cmd)?;

        // On the node address too, and known by it (the emulator answers the XML API only
        // for requests to its public host): pods and this machine use the same URL.
        let gcs = env.server("fake-gcs-server");
        let gcs_port = gcs.port("api", 24443)?;
        let mut cmd = Command::new(bins.gcs.join("bin/fake-gcs-server"));
        cmd.args(["-scheme", "http", "-host", NODE_IP, "-log-level", "warn"])
            .arg(format!("-port={gcs_port}"))
            .arg(format!("-public-host={NODE_IP}:{gcs_port}"))
            .args(["-backend", "filesystem", "-filesystem-root"])
            .arg(env.data("fake-gcs-server"));
        gcs.start(cmd)?;

        let azurite = env.server("azurite");
        let azurite_port = azurite.port("blob", 20000)?;
        std::fs::create_dir_all(env.data("azurite"))?;
        let mut cmd = Command::new("node");
        cmd.arg(
            bins.azurite
                .join("node_modules/azurite/dist/src/blob/main.js"),
        )
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &azurite_port.to_string(),
        ])
        .args([
            "--location",
            &p(env.data("azurite")),
            "--skipApiVersionCheck",
            "--loose",
        ]);
        azurite.start(cmd)?;

        let es = env.server("elasticsearch");
        let es_port = es.port("http", 29200)?;
        let transport_port = es.port("transport", 29300)?;
        let es_home = bins.elasticsearch.clone();
        let mut cmd = Command::new("java");
        cmd.args([
            "-Xms512m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-Dlog4j2.disable.jmx=true",
            "-cp",
        ])
        .arg(format!(
            "{}:{}/*",
            p(es_home.join("classes")),
            p(es_home.join("lib"))
        ))
        .arg("EmbeddedElasticsearch")
        .arg(env.data("elasticsearch"))
        .args([es_port.to_string(), transport_port.to_string()]);
        es.start(cmd)?;
        Ok(Self {
            minio_port,
            gcs_port,
            azurite_port,
            es_port,
        })
    }

    /// The GCS emulator, as pods and this machine reach it.
    pub fn gcs_endpoint(&self) -> String {
        format!("http://{NODE_IP}:{}", self.gcs_port)
    }

    /// A service account key that points object_store's GCS client at the emulator
    /// (`gcs_base_url`) without OAuth: what a user's key is to Google Cloud Storage.
    pub fn gcs_service_account_key(&self) -> String {
        serde_json::json!({
            "gcs_base_url": self.gcs_endpoint(),
            "disable_oauth": true,
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
        })
        .to_string()
    }

    pub fn azurite_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.azurite_port)
    }

    /// Waits for the four servers and creates the test buckets and containers.
    pub fn wait_and_prepare(&self, env: &TestEnv, bins: &Components) -> Result<()> {
        let minio = env.server("minio");
        wait_until(
            &minio,
            "GET /minio/health/ready",
            Duration::from_secs(60),
            || http_ok(self.minio_port, "/minio/health/ready"),
        )?;
        for bucket in BUCKETS {
            create_bucket(self.minio_port, bucket)?;
        }

        let gcs = env.server("fake-gcs-server");
        let health = format!("{}/_internal/healthcheck", self.gcs_endpoint());
        wait_until(
            &gcs,
            "GET /_internal/healthcheck",
            Duration::from_secs(60),
            || curl_code(&["-X", "GET", &health]).is_ok_and(|code| code == "200"),
        )?;
        for bucket in GCS_BUCKETS {
            let code = curl_code(&[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                &serde_json::json!({"name": bucket}).to_string(),
                &format!("{}/storage/v1/b", self.gcs_endpoint()),
            ])?;
            // 409: it exists already (the emulator keeps its data on disk).
            if code != "200" && code != "409" {
                bail!("creating GCS bucket {bucket} answered HTTP {code}");
            }
        }

        let azurite = env.server("azurite");
        wait_until(&azurite, "TCP connect", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", self.azurite_port)).is_ok()
        })?;
        let status = Command::new("node")
            .arg(env.recipes().join("azurite-containers.js"))
            .args([
                self.azurite_endpoint().as_str(),
                AZURITE_ACCOUNT,
                AZURITE_KEY,
            ])
            .args(CONTAINERS)
            .env("NODE_PATH", bins.azurite.join("node_modules"))
            .status()
            .context("running node to create the Azurite containers")?;
        if !status.success() {
            bail!("creating the Azurite containers failed (see above)");
        }

        let es = env.server("elasticsearch");
        wait_until(
            &es,
            "cluster health yellow",
            Duration::from_secs(120),
            || {
                http_ok(
                    self.es_port,
                    "/_cluster/health?wait_for_status=yellow&timeout=1s",
                )
            },
        )?;
        Ok(())
    }
}

/// The HTTP status code curl got for `args`.
fn curl_code(args: &[&str]) -> Result<String> {
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args(args)
        .output()
        .context("running curl")?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Creates a MinIO bucket with a SigV4-signed request (object_store cannot create buckets).
fn create_bucket(port: u16, bucket: &str) -> Result<()> {
    let user = format!("{MINIO_USER}:{MINIO_PASSWORD}");
    let url = format!("http://127.0.0.1:{port}/{bucket}");
    let code = curl_code(&[
        "-X",
        "PUT",
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        &user,
        &url,
    ])?;
    // 409: the bucket exists already (BucketAlreadyOwnedByYou).
    if code != "200" && code != "409" {
        bail!("creating MinIO bucket {bucket} answered HTTP {code}");
    }
    Ok(())
}
