//! `kbackup trigger backupconfiguration`: a BackupSession made on the test API server, with
//! the operator's definitions applied, by a ServiceAccount holding `kbackup rbac trigger`
//! (and refused with one verb less); refused while the configuration is paused.

mod common;

use backup_testing::TestNamespace;
use common::{
    clean_command, install_kbackup_definitions, role_yaml, service_account_kubeconfig, text,
};

const CONFIGURATION: &str = r#"apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {name: demo}
spec:
  target: {kind: Namespace, name: demo}
  backends: [{name: main, storageRef: {name: minio}, retentionPolicy: {name: keep-3}}]
  sessions:
  - name: nightly
    scheduler: {schedule: "0 3 * * *"}
    repositories: [{name: demo, backend: main, directory: demo, encryptionSecret: {name: password}}]
    tasks: [{name: manifest-backup}]
"#;

#[test]
fn a_session_is_made_now_unless_the_configuration_is_paused() {
    let ns = TestNamespace::create("kbackup-trigger");
    install_kbackup_definitions();
    ns.apply(CONFIGURATION);
    let home = tempfile::tempdir().unwrap();
    let account = service_account_kubeconfig(&ns.name, "trigger", home.path());
    let trigger = || {
        clean_command(home.path(), &account)
            .args(["-n", &ns.name, "-o", "json", "trigger", "bc", "demo"])
            .output()
            .unwrap()
    };
    ns.apply(&role_yaml(
        &ns.name,
        "trigger",
        "trigger",
        &ns.name,
        Some("create"),
    ));
    let forbidden = trigger();
    assert!(
        !forbidden.status.success() && text(&forbidden.stderr).contains("backupsessions"),
        "without create: {}",
        text(&forbidden.stderr)
    );
    ns.apply(&role_yaml(&ns.name, "trigger", "trigger", &ns.name, None));
    let out = trigger();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let made = rows[0]["backupSession"].as_str().unwrap().to_owned();
    assert!(made.starts_with("demo-nightly-"), "{rows}");
    let session = ns.kubectl(&[
        "get",
        "backupsession",
        &made,
        "-o",
        "jsonpath={.spec.invoker.name} {.spec.session}",
    ]);
    assert_eq!(session, "demo nightly");

    ns.kubectl(&[
        "patch",
        "backupconfiguration",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    let paused = trigger();
    assert_eq!(paused.status.code(), Some(1), "{}", text(&paused.stderr));
    assert!(
        text(&paused.stderr).contains("is paused"),
        "{}",
        text(&paused.stderr)
    );
}
