//! The roles of docs/rbac.md, as `kbackup rbac` prints them, are enough and needed: the binary
//! runs under a ServiceAccount bound to exactly that role on the real control plane and
//! succeeds; with one verb less it fails, naming the verb and the resource.

mod common;

use common::{kubectl, role_yaml, service_account_kubeconfig, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A namespace with a ServiceAccount, a kubeconfig acting as it, and a home directory.
struct Account {
    namespace: String,
    name: String,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Account {
    fn new(base: &str) -> Self {
        let namespace = backup_testing::unique_name(base);
        let name = "backup".to_owned();
        kubectl(&["create", "namespace", &namespace], None);
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = service_account_kubeconfig(&namespace, &name, home.path());
        Self {
            namespace,
            name,
            kubeconfig,
            home,
        }
    }

    /// Binds what `kbackup rbac COMMAND` prints (see [`role_yaml`]), as the administrator.
    fn bind(&self, command: &str, drop: Option<&str>) {
        let yaml = role_yaml(&self.namespace, &self.name, command, &self.namespace, drop);
        kubectl(&["apply", "-f", "-"], Some(&yaml));
    }

    fn command(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        common::clean_command(self.home.path(), kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    fn kbackup(&self, args: &[&str]) -> Output {
        self.command(&self.kubeconfig, args)
    }

    fn kbackup_admin(&self, args: &[&str]) -> Output {
        self.command(&backup_testing::kubeconfig(), args)
    }

    fn repo(&self) -> String {
        format!("file://{}/repo", self.home.path().display())
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new(backup_testing::kubectl())
            .arg("--kubeconfig")
            .arg(backup_testing::kubeconfig())
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .output();
        for family in ["cluster-backup", "cluster-restore"] {
            let role = format!("{}-{family}", self.namespace);
            let binding = format!("{role}-{}", self.name);
            let _ = Command::new(backup_testing::kubectl())
                .arg("--kubeconfig")
                .arg(backup_testing::kubeconfig())
                .args(["delete", "--ignore-not-found", "clusterrole", &role])
                .output();
            let _ = Command::new(backup_testing::kubectl())
                .arg("--kubeconfig")
                .arg(backup_testing::kubeconfig())
                .args([
                    "delete",
                    "--ignore-not-found",
                    "clusterrolebinding",
                    &binding,
                ])
                .output();
        }
    }
}

fn assert_forbidden(out: &Output, verb: &str, resource: &str) {
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot {verb} resource \"{resource}\"")),
        "{stderr}"
    );
}

#[test]
fn the_repository_secret_role_reads_the_password_and_nothing_less_does() {
    let account = Account::new("rbac-repo");
    kubectl(
        &[
            "-n",
            &account.namespace,
            "create",
            "secret",
            "generic",
            "repo-password",
            "--from-literal=password=from-a-secret",
        ],
        None,
    );
    let secret = format!("{}/repo-password", account.namespace);
    let args = [
        "repo",
        "init",
        "--repo",
        &account.repo(),
        "--encryption-secret",
        &secret,
    ];
    account.bind("repo", Some("get"));
    assert_forbidden(&account.kbackup(&args), "get", "secrets");
    account.bind("repo", None);
    let out = account.kbackup(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn the_cluster_backup_and_restore_roles_are_enough_and_needed() {
    let account = Account::new("rbac-cluster");
    let shop = backup_testing::unique_name("rbac-shop");
    kubectl(&["create", "namespace", &shop], None);
    kubectl(
        &[
            "-n",
            &shop,
            "create",
            "configmap",
            "conf",
            "--from-literal=a=1",
        ],
        None,
    );
    let repo = account.repo();
    let password = account.home.path().join("password");
    std::fs::write(&password, "pw\n").unwrap();
    let password = password.to_str().unwrap();
    let init =
        account.kbackup_admin(&["repo", "init", "--repo", &repo, "--password-file", password]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let backup = [
        "backup",
        "cluster",
        "--repo",
        &repo,
        "--password-file",
        password,
        "--include-namespaces",
        &shop,
    ];

    account.bind("backup-cluster", Some("list"));
    assert_forbidden(&account.kbackup(&backup), "list", "configmaps");
    account.bind("backup-cluster", None);
    let out = account.kbackup(&backup);
    assert!(out.status.success(), "{}", text(&out.stderr));

    kubectl(&["delete", "namespace", &shop, "--wait=true"], None);
    let restore = [
        "-y",
        "restore",
        "cluster",
        "latest",
        "--repo",
        &repo,
        "--password-file",
        password,
    ];
    account.bind("restore-cluster", Some("create"));
    assert_forbidden(&account.kbackup(&restore), "create", "namespaces");
    account.bind("restore-cluster", None);
    let out = account.kbackup(&restore);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let restored = kubectl(
        &[
            "-n",
            &shop,
            "get",
            "configmap",
            "conf",
            "-o",
            "jsonpath={.data.a}",
        ],
        None,
    );
    assert_eq!(restored, "1");
    kubectl(&["delete", "namespace", &shop, "--wait=false"], None);
}

#[test]
fn docs_rbac_shows_what_kbackup_rbac_prints() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rbac.md"))
        .unwrap();
    for command in [
        "repo",
        "backup-cluster",
        "restore-cluster",
        "stackgraph",
        "settings",
        "victoriametrics",
        "elasticsearch",
        "volumes",
        "trigger",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kbackup"))
            .args(["-n", "NAMESPACE", "rbac", command])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            docs.contains(&text(&out.stdout)),
            "docs/rbac.md lacks the role of {command}"
        );
    }
}
