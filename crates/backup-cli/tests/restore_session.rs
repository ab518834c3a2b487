//! `kbackup restoresession create|wait` on the test API server with the operator's
//! definitions applied: the RestoreSession made as the flags say (bad flags refused before
//! anything is made), then followed until its status says it ended, shown as a table or as
//! the status itself, the exit by its phase. The operator's side is tested with the operator
//! (`backup-operator/tests/restore_session.rs`); here the status is written by the test.

mod common;

use backup_testing::TestNamespace;
use common::{clean_command, install_kbackup_definitions, text};
use serde_json::Value;
use std::process::Output;

fn kbackup(home: &std::path::Path, ns: &TestNamespace, args: &[&str]) -> Output {
    clean_command(home, &backup_testing::kubeconfig())
        .args(["-n", &ns.name])
        .args(args)
        .output()
        .unwrap()
}

/// Writes `status` on the RestoreSession `name`, as the operator would.
fn set_status(ns: &TestNamespace, name: &str, status: &str) {
    ns.kubectl(&[
        "patch",
        "restoresession",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(r#"{{"status":{status}}}"#),
    ]);
}

#[test]
fn a_restore_is_asked_of_the_operator_and_followed_to_its_end() {
    let ns = TestNamespace::create("kbackup-restoresession");
    install_kbackup_definitions();
    let home = tempfile::tempdir().unwrap();

    // Bad flags: refused, nothing made.
    for (args, says) in [
        (
            vec!["--target", "service/web", "--repository", "apps"],
            "a namespace, a statefulset or a deployment",
        ),
        (vec!["--target", "sts/db"], "needs --repository"),
        (vec!["--target", "db", "--repository", "apps"], "KIND/NAME"),
    ] {
        let out = kbackup(
            home.path(),
            &ns,
            &[&["restoresession", "create", "bad"], args.as_slice()].concat(),
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
    assert!(
        ns.kubectl(&["get", "restoresessions", "-o", "name"])
            .trim()
            .is_empty()
    );

    // Made as the flags say.
    let out = kbackup(
        home.path(),
        &ns,
        &[
            "restoresession",
            "create",
            "back",
            "--target",
            "sts/db",
            "--repository",
            "apps",
            "--components",
            "pod-0,pod-2",
            "--restore-namespace",
            "copy",
            "--existing",
            "update",
            "--restore-timeout",
            "30m",
            "--verify",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made: Value =
        serde_json::from_str(&ns.kubectl(&["get", "restoresession", "back", "-o", "json"]))
            .unwrap();
    let spec = &made["spec"];
    assert_eq!(spec["target"]["kind"], "StatefulSet");
    assert_eq!(spec["target"]["apiGroup"], "apps");
    assert_eq!(spec["dataSource"]["snapshot"], "latest");
    assert_eq!(spec["dataSource"]["components"][1], "pod-2");
    assert_eq!(spec["manifestOptions"]["restoreNamespace"], "copy");
    assert_eq!(spec["manifestOptions"]["existing"], "Update");
    assert_eq!(spec["timeout"], "30m");
    assert_eq!(spec["verify"], true);
    // A data store's: `latest` is its newest archive, no repository needed; it purges the
    // data store, so it asks first (no answer: nothing made), unless -y.
    let graph = format!("namespace/{}", ns.name);
    let unanswered = kbackup(
        home.path(),
        &ns,
        &[
            "restoresession",
            "create",
            "graph",
            "--target",
            &graph,
            "--tasks",
            "stackgraph-restore",
        ],
    );
    assert_eq!(unanswered.status.code(), Some(1));
    let stderr = text(&unanswered.stderr);
    assert!(
        stderr.contains("PURGES all existing StackGraph") && stderr.contains("not confirmed"),
        "{stderr}"
    );
    assert!(
        !ns.kubectl(&["get", "restoresessions", "-o", "name"])
            .contains("graph"),
        "nothing made"
    );
    let out = kbackup(
        home.path(),
        &ns,
        &[
            "-y",
            "restoresession",
            "create",
            "graph",
            "--target",
            &graph,
            "--tasks",
            "stackgraph-restore",
            "--param",
            "storageEndpoint=http://minio:9000",
            "--param",
            "configMap=backup-config",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made: Value =
        serde_json::from_str(&ns.kubectl(&["get", "restoresession", "graph", "-o", "json"]))
            .unwrap();
    assert_eq!(made["spec"]["tasks"][0], "stackgraph-restore");
    assert_eq!(
        made["spec"]["params"]["storageEndpoint"],
        "http://minio:9000"
    );
    assert_eq!(made["spec"]["params"]["configMap"], "backup-config");
    assert!(made["spec"]["dataSource"]["repository"].is_null());
    let again = kbackup(
        home.path(),
        &ns,
        &[
            "restoresession",
            "create",
            "back",
            "--target",
            "sts/db",
            "--repository",
            "apps",
        ],
    );
    assert!(
        !again.status.success(),
        "a second one of the same name is refused"
    );

    // Followed: not ended within the wait, then ended.
    let waited = kbackup(
        home.path(),
        &ns,
        &["restoresession", "wait", "back", "--timeout", "1s"],
    );
    assert_eq!(waited.status.code(), Some(1), "{}", text(&waited.stderr));
    assert!(
        text(&waited.stderr).contains("goes on"),
        "{}",
        text(&waited.stderr)
    );
    set_status(
        &ns,
        "back",
        r#"{"phase":"Succeeded","totalComponents":2,"components":{"manifests":{"phase":"Succeeded","duration":"1.20s"},"/apps/statefulset/db/db-0/data":{"phase":"Succeeded","duration":"4.00s"}}}"#,
    );
    let table = kbackup(home.path(), &ns, &["restoresession", "wait", "back"]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    let rows = text(&table.stdout);
    assert!(
        rows.contains("COMPONENT")
            && rows.contains("/apps/statefulset/db/db-0/data")
            && rows.contains("4.00s"),
        "{rows}"
    );
    let json = kbackup(
        home.path(),
        &ns,
        &["-o", "json", "restoresession", "wait", "back"],
    );
    let status: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["totalComponents"], 2, "{status}");

    // A failed restore with a component restored exits partial, naming why.
    set_status(
        &ns,
        "back",
        r#"{"phase":"Failed","components":{"manifests":{"phase":"Failed","error":"2 object(s) failed"},"/apps/statefulset/db/db-0/data":{"phase":"Succeeded"}},"conditions":[{"type":"RestoreFailed","status":"True","reason":"ComponentsFailed","message":"manifests: 2 object(s) failed"}]}"#,
    );
    let failed = kbackup(home.path(), &ns, &["restoresession", "wait", "back"]);
    assert_eq!(failed.status.code(), Some(3), "{}", text(&failed.stderr));
    assert!(
        text(&failed.stderr).contains("2 object(s) failed"),
        "{}",
        text(&failed.stderr)
    );
}
