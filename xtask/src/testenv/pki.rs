//! Certificates for the local control plane, made with the openssl command.

use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of the test PKI.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// Serving certificate of the API server and kwok, also the admin client certificate
    /// (O=system:masters).
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }
    /// Service-account token signing key pair.
    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }

    /// Creates the PKI unless it exists.
    pub fn ensure(root: &Path) -> Result<Self> {
        let pki = Self {
            dir: root.join("pki"),
        };
        if pki.admin_cert().exists() && pki.sa_pub().exists() {
            return Ok(pki);
        }
        fs::create_dir_all(&pki.dir)?;
        let ext = pki.dir.join("admin.ext");
        fs::write(
            &ext,
            "subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,\
             DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1\n\
             extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
        )?;
        let p = |path: PathBuf| path.to_string_lossy().into_owned();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=kbackup-test-ca",
            "-keyout",
            &p(pki.ca_key()),
            "-out",
            &p(pki.ca_cert()),
        ])?;
        let csr = p(pki.dir.join("admin.csr"));
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/O=system:masters/CN=kbackup-admin",
            "-keyout",
            &p(pki.admin_key()),
            "-out",
            &csr,
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &p(pki.ca_cert()),
            "-CAkey",
            &p(pki.ca_key()),
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            &p(ext),
            "-out",
            &p(pki.admin_cert()),
        ])?;
        openssl(&["genrsa", "-out", &p(pki.sa_key()), "2048"])?;
        openssl(&[
            "rsa",
            "-in",
            &p(pki.sa_key()),
            "-pubout",
            "-out",
            &p(pki.sa_pub()),
        ])?;
        Ok(pki)
    }

    /// An admin kubeconfig for the API server at `port`.
    pub fn write_kubeconfig(&self, path: &Path, port: u16) -> Result<()> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kbackup-test\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {ca}\n\
             users:\n- name: admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\n\
             contexts:\n- name: kbackup-test\n  context:\n    cluster: kbackup-test\n    user: admin\n    namespace: default\ncurrent-context: kbackup-test\n",
            ca = self.ca_cert().display(),
            cert = self.admin_cert().display(),
            key = self.admin_key().display(),
        );
        fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

fn openssl(args: &[&str]) -> Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl")?;
    if !output.status.success() {
        bail!(
            "openssl {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
