//! The real `kbackup` binary, run as a user would. Storage commands run against the test
//! MinIO; `--storage-secret` against the test cluster (`cargo xtask env up`).

mod common;

use common::{assert_refused, text};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary with a clean environment: no inherited credentials, config or defaults.
fn kbackup(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_")
            || name.starts_with("AZURE_")
            || name.starts_with("KBACKUP_")
            || name == "KUBECONFIG"
        {
            command.env_remove(name);
        }
    }
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .arg("--no-progress");
    command
}

/// With the test MinIO's endpoint and credentials in the standard variables.
fn kbackup_minio(home: &Path) -> Command {
    let server = backup_testing::s3();
    let mut command = kbackup(home);
    command
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", &server.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
        .env("AWS_REGION", &server.region);
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("kbackup runs")
}

fn unique_prefix() -> String {
    format!(
        "s3://{}/{}",
        backup_testing::s3().bucket,
        backup_testing::unique_name("cli")
    )
}

#[test]
fn version_and_help_exit_zero() {
    let home = tempfile::tempdir().unwrap();
    let out = run(kbackup(home.path()).arg("version"));
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("kbackup {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(run(kbackup(home.path()).arg("--help")).status.success());
    let completions = run(kbackup(home.path()).args(["completions", "bash"]));
    assert!(completions.status.success() && text(&completions.stdout).contains("_kbackup"));
}

#[test]
fn switches_read_from_the_environment_take_the_usual_spellings() {
    let home = tempfile::tempdir().unwrap();
    for value in ["1", "true", "yes", "on", "0", "false"] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
        command
            .env("HOME", home.path())
            .env("KBACKUP_NO_PROGRESS", value);
        let out = run(command.arg("version"));
        assert!(out.status.success(), "KBACKUP_NO_PROGRESS={value}: {out:?}");
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    command
        .env("HOME", home.path())
        .env("KBACKUP_NO_PROGRESS", "maybe");
    assert!(!run(command.arg("version")).status.success());
}

#[test]
fn an_unknown_output_format_is_a_user_error() {
    let home = tempfile::tempdir().unwrap();
    let out = run(kbackup(home.path()).args(["-o", "xml", "version"]));
    assert_refused(&out, "possible values: table, json, yaml");
    assert!(out.stdout.is_empty());
}

#[test]
fn flags_beat_variables_beat_the_config_file() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("kbackup.yaml");
    std::fs::write(&config, "output: json\n").unwrap();
    let from_file = run(kbackup(home.path())
        .arg("--config")
        .arg(&config)
        .arg("version"));
    assert!(
        text(&from_file.stdout).trim_start().starts_with('['),
        "file: {}",
        text(&from_file.stdout)
    );
    let from_env = run(kbackup(home.path())
        .arg("--config")
        .arg(&config)
        .env("KBACKUP_OUTPUT", "yaml")
        .arg("version"));
    assert!(
        text(&from_env.stdout).starts_with("- version:"),
        "env: {}",
        text(&from_env.stdout)
    );
    let from_flag = run(kbackup(home.path())
        .arg("--config")
        .arg(&config)
        .env("KBACKUP_OUTPUT", "yaml")
        .args(["-o", "table", "version"]));
    assert!(
        text(&from_flag.stdout).starts_with("kbackup "),
        "flag: {}",
        text(&from_flag.stdout)
    );
    // The default location is read too.
    std::fs::create_dir_all(home.path().join(".config/kbackup")).unwrap();
    std::fs::write(
        home.path().join(".config/kbackup/config.yaml"),
        "output: json\n",
    )
    .unwrap();
    assert!(
        text(&run(kbackup(home.path()).arg("version")).stdout)
            .trim_start()
            .starts_with('[')
    );
}

#[test]
fn a_bad_config_file_names_the_file_line_and_field() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("bad.yaml");
    std::fs::write(&config, "output: json\nstorage:\n  endpont: http://x\n").unwrap();
    let out = run(kbackup(home.path())
        .arg("--config")
        .arg(&config)
        .arg("version"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("endpont") && stderr.contains("line 3"),
        "{stderr}"
    );
}

#[test]
fn cp_streams_a_file_up_and_back_and_stdin_to_stdout() {
    let home = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let source = home.path().join("sts-backup-20261121-0300.graph");
    std::fs::write(&source, &data).unwrap();
    let prefix = unique_prefix();

    let up = run(kbackup_minio(home.path())
        .args(["storage", "cp", "--part-size", "5MiB"])
        .arg(&source)
        .arg(format!("{prefix}/")));
    assert!(up.status.success(), "{}", text(&up.stderr));
    let back = home.path().join("back.graph");
    let down = run(kbackup_minio(home.path())
        .args(["storage", "cp"])
        .arg(format!("{prefix}/sts-backup-20261121-0300.graph"))
        .arg(&back));
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        std::fs::read(&back).unwrap() == data,
        "downloaded file differs"
    );

    let mut child = kbackup_minio(home.path())
        .args(["storage", "cp", "-", &format!("{prefix}/from-stdin.txt")])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped through kbackup\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let out = run(kbackup_minio(home.path()).args([
        "storage",
        "cp",
        &format!("{prefix}/from-stdin.txt"),
        "-",
    ]));
    assert_eq!(text(&out.stdout), "piped through kbackup\n");

    let listing = run(kbackup_minio(home.path()).args(["storage", "ls", "-o", "json", &prefix]));
    let entries: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let keys: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["from-stdin.txt", "sts-backup-20261121-0300.graph"]);
    assert_eq!(entries[1]["size"], data.len());
    let empty = run(kbackup_minio(home.path()).args([
        "storage",
        "ls",
        "-o",
        "json",
        &format!("{prefix}/nothing-here"),
    ]));
    assert_eq!(text(&empty.stdout).trim(), "[]");
}

#[test]
fn rm_deletes_the_keys_named_or_everything_below_and_asks_first() {
    let home = tempfile::tempdir().unwrap();
    let prefix = unique_prefix();
    for key in ["config", "snapshots/a", "snapshots/b", "data/ab/1"] {
        let mut child = kbackup_minio(home.path())
            .args(["storage", "cp", "-", &format!("{prefix}/{key}")])
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"x").unwrap();
        assert!(child.wait().unwrap().success());
    }
    let keys = || {
        let listing =
            run(kbackup_minio(home.path()).args(["storage", "ls", "-r", "-o", "json", &prefix]));
        let entries: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
        let mut keys: Vec<String> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        keys
    };

    // Not confirmed (no answer on stdin): refused, nothing deleted.
    let refused = run(kbackup_minio(home.path())
        .args(["storage", "rm", "-r", &prefix])
        .stdin(Stdio::null()));
    assert_refused(&refused, "not confirmed");
    assert_eq!(keys().len(), 4);
    let usage = run(kbackup_minio(home.path()).args(["storage", "rm", "-y", &prefix]));
    assert_refused(&usage, "<KEYS>");
    assert_eq!(keys().len(), 4, "neither keys nor -r: nothing deleted");

    let named = run(kbackup_minio(home.path()).args([
        "storage",
        "rm",
        "-y",
        "-o",
        "json",
        &prefix,
        "snapshots/a",
        "snapshots/gone",
    ]));
    assert!(named.status.success(), "{}", text(&named.stderr));
    let report: serde_json::Value = serde_json::from_slice(&named.stdout).unwrap();
    assert_eq!(report[0]["deleted"], 2, "{report}");
    assert_eq!(keys(), ["config", "data/ab/1", "snapshots/b"]);

    let all =
        run(kbackup_minio(home.path()).args(["storage", "rm", "-y", "-r", "-o", "json", &prefix]));
    assert!(all.status.success(), "{}", text(&all.stderr));
    let report: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(report[0]["deleted"], 3, "{report}");
    assert_eq!(keys(), Vec::<String>::new());
}

#[test]
fn a_failed_download_keeps_the_existing_file() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("precious.graph");
    std::fs::write(&target, b"do not lose me").unwrap();
    let out = run(kbackup_minio(home.path())
        .args([
            "storage",
            "cp",
            &format!("{}/missing.graph", unique_prefix()),
        ])
        .arg(&target));
    assert_refused(&out, "not found");
    assert_eq!(std::fs::read(&target).unwrap(), b"do not lose me");
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        1,
        "no partial file left behind"
    );
}

#[test]
fn check_gives_a_verdict_and_never_prints_the_secret() {
    let home = tempfile::tempdir().unwrap();
    let ok = run(kbackup_minio(home.path()).args(["storage", "check", &unique_prefix()]));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("conditional create"));
    assert!(text(&ok.stderr).contains("usable"));

    let bad = run(kbackup_minio(home.path())
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
        .args(["-v", "storage", "check", &unique_prefix()]));
    assert_eq!(bad.status.code(), Some(1));
    let all = format!("{}{}", text(&bad.stdout), text(&bad.stderr));
    assert!(all.contains("access denied"), "{all}");
    assert!(
        !all.contains("wrong-secret-value"),
        "the secret leaked: {all}"
    );

    let missing =
        run(kbackup_minio(home.path()).args(["storage", "ls", "s3://no-such-bucket-kbackup-cli"]));
    assert_refused(&missing, "'no-such-bucket-kbackup-cli' does not exist");
}

#[test]
fn credentials_come_from_a_kubernetes_secret() {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = backup_testing::kubeconfig();
    let server = backup_testing::s3();
    let name = backup_testing::unique_name("minio-creds");
    let create = Command::new(backup_testing::kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["create", "secret", "generic", &name, "-n", "default"])
        .arg(format!(
            "--from-literal=AWS_ACCESS_KEY_ID={}",
            server.access_key_id
        ))
        .arg(format!(
            "--from-literal=AWS_SECRET_ACCESS_KEY={}",
            server.secret_access_key
        ))
        .arg(format!(
            "--from-literal=AWS_ENDPOINT_URL={}",
            server.endpoint
        ))
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", text(&create.stderr));

    let out = run(kbackup(home.path())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "-n",
            "default",
            "storage",
            "check",
            "--storage-secret",
            &name,
            &unique_prefix(),
        ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let missing = run(kbackup(home.path())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "storage",
            "ls",
            "--storage-secret",
            "default/absent",
            &unique_prefix(),
        ]));
    assert_refused(&missing, "Secret default/absent");
}

#[test]
fn works_as_a_kubectl_plugin() {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kbackup"), bin.join("kubectl-kbackup")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(backup_testing::kubectl())
        .env("PATH", path)
        .args(["kbackup", "version"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("kbackup "));
}
