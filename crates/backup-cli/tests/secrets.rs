//! Secrets stay secret through the binary: endpoints with credentials refused without
//! repeating them, configuration errors that name the place and not the value, and a local
//! repository readable by its owner only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn kbackup(home: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    for (name, _) in std::env::vars().filter(|(n, _)| {
        n.starts_with("KBACKUP_") || n.starts_with("AWS_") || n.starts_with("AZURE_")
    }) {
        command.env_remove(name);
    }
    command
        .env("HOME", home)
        .env("KBACKUP_PASSWORD", "pw")
        .arg("--no-progress")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn refused_without(out: &Output, secret: &str, needle: &str) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(
        !stderr.contains(secret) && !stdout.contains(secret),
        "{stderr}"
    );
}

#[test]
fn endpoints_with_credentials_are_refused_and_not_repeated() {
    let home = tempfile::tempdir().unwrap();
    let out = kbackup(
        home.path(),
        &[
            "repo",
            "init",
            "--repo",
            "s3://bucket",
            "--storage-endpoint",
            "http://minio:hunter2secret@127.0.0.1:1",
        ],
    );
    refused_without(&out, "hunter2secret", "credentials");
    let out = kbackup(
        home.path(),
        &[
            "elasticsearch",
            "snapshot",
            "--es-url",
            "http://elastic:hunter2secret@127.0.0.1:1",
        ],
    );
    refused_without(&out, "hunter2secret", "credentials");
}

#[test]
fn configuration_errors_name_the_line_and_field_not_the_value() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.yaml");
    let repo = format!("file://{}/repo", home.path().display());
    for (text, secret, place) in [
        (
            "storage:\n  secretAccessKey: AKIAhunter2secret\n  endpont: http://x\n",
            "hunter2secret",
            "line 3",
        ),
        (
            "storage:\n  concurrency: 8675309\n  azureKey: 424242424242\n",
            "424242424242",
            "field storage.azureKey",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = kbackup(
            home.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "repo",
                "init",
                "--repo",
                &repo,
            ],
        );
        refused_without(&out, secret, place);
        assert!(String::from_utf8_lossy(&out.stderr).contains("config.yaml"));
    }
}

#[test]
fn a_local_repository_is_private_to_its_owner() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("repo");
    let repo = format!("file://{}", root.display());
    let init = kbackup(home.path(), &["repo", "init", "--repo", &repo]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let source = home.path().join("data");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("f"), b"private data").unwrap();
    let backup = kbackup(
        home.path(),
        &["backup", "path", "--repo", &repo, source.to_str().unwrap()],
    );
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let mut stack = vec![root.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files += 1;
            }
        }
    }
    assert!(
        files >= 5,
        "config, key slot, pack, index, snapshot: {files}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
