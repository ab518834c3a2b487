//! Hooks (HookTemplates) around the operator's backups and restores, against the test
//! environment's API server, real node and MinIO, with real containers: a web server on the
//! real node whose pod the hooks exec into (writing a log), whose HTTP endpoints they call
//! (a GET, and a POST whose body a CGI script keeps), and a Job of the toolbox image. Checked:
//! pre hooks before the work, post hooks by their execution policy, a failing pre hook that
//! stops the backup (retried, its stderr in the condition), a hook past its timeout, a failing
//! Job hook, and each session's `status.hooks`.

mod common;

use backup_testing::{RealNode, TestNamespace, indent, real_node, s3, unique_name};
use common::{
    Operator, PASSWORD, WAIT, ended, install_definitions, items, object, restore_ended, storage,
    trigger, wait_for,
};
use serde_json::{Value, json};

/// The Deployment `web`: BusyBox's httpd on port 8080 serving `/ok` and the CGI
/// `/cgi-bin/record`, which keeps a POST's body in `/www/posted`.
fn web(node: &RealNode) -> String {
    let script = r#"mkdir -p /www/cgi-bin && echo ok > /www/ok && printf '%s\n' '#!/bin/sh' 'head -c "$CONTENT_LENGTH" > /www/posted' 'echo Content-Type: text/plain' 'echo' 'echo kept' > /www/cgi-bin/record && chmod +x /www/cgi-bin/record && exec httpd -f -p 8080 -h /www"#;
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
{placement}      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {toolbox}
        command: [sh, -c, '{script}']
        readinessProbe: {{exec: {{command: [test, -x, /www/cgi-bin/record]}}, periodSeconds: 1}}
---
",
        placement = indent(&node.placement(), 4),
        toolbox = node.toolbox_image,
        script = script.replace('\'', "''"),
    )
}

/// The HookTemplates: `note` (appends TEXT to /tmp/hooks.log in every `app=web` pod), `fail`
/// (exits 3 saying so), `slow` (sleeps 30 s), `job` (a Job exiting CODE), `get` and `post`
/// (to the web server at HOST).
fn templates(node: &RealNode) -> String {
    format!(
        "apiVersion: kbackup.io/v1alpha1
kind: HookTemplate
metadata: {{name: note}}
spec:
  params: [{{name: TEXT, required: true}}]
  action: {{exec: {{command: [sh, -c, 'echo {{{{ .TEXT }}}} >> /tmp/hooks.log']}}}}
  executor: {{type: Pod, pod: {{selector: app=web, strategy: ExecuteOnAll}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: HookTemplate
metadata: {{name: fail}}
spec:
  action: {{exec: {{command: [sh, -c, 'echo the database is busy >&2; exit 3']}}}}
  executor: {{type: Pod, pod: {{selector: app=web}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: HookTemplate
metadata: {{name: slow}}
spec:
  action: {{exec: {{command: [sleep, '30']}}}}
  executor: {{type: Pod, pod: {{selector: app=web}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: HookTemplate
metadata: {{name: job}}
spec:
  params: [{{name: CODE, default: '0'}}]
  action: {{exec: {{command: [sh, -c, 'echo job says {{{{ .CODE }}}}; exit {{{{ .CODE }}}}']}}}}
  executor: {{type: Job, job: {{image: '{toolbox}'}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: HookTemplate
metadata: {{name: get}}
spec:
  params: [{{name: HOST, required: true}}]
  action: {{httpGet: {{url: 'http://{{{{ .HOST }}}}:8080/ok'}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: HookTemplate
metadata: {{name: post}}
spec:
  params: [{{name: HOST, required: true}}, {{name: WHAT, default: something}}]
  action: {{httpPost: {{url: 'http://{{{{ .HOST }}}}:8080/cgi-bin/record', headers: {{content-type: text/plain}}, body: 'restored {{{{ .WHAT }}}}'}}}}
---
",
        toolbox = node.toolbox_image,
    )
}

/// The configuration `web` of the namespace's manifests, with `hooks` on its session.
fn configuration(ns: &TestNamespace, hooks: &str) -> String {
    format!(
        "apiVersion: kbackup.io/v1alpha1
kind: RetentionPolicy
metadata: {{name: keep-5}}
spec: {{successfulSnapshots: {{last: 5}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {{name: web}}
spec:
  target: {{kind: Namespace, name: {ns}}}
  backends: [{{name: main, storageRef: {{name: minio}}, retentionPolicy: {{name: keep-5}}}}]
  sessions:
  - name: every-minute
    scheduler: {{schedule: '0 0 1 1 *'}}
    timeout: 5m
    repositories: [{{name: apps, backend: main, directory: apps, encryptionSecret: {{name: repository-password}}}}]
    tasks: [{{name: manifest-backup}}]
    hooks:
{hooks}",
        ns = ns.name,
        hooks = indent(hooks, 6),
    )
}

/// `(name, phase)` of each hook of a stage.
fn hooks(status: &Value, stage: &str) -> Vec<(String, String)> {
    status["hooks"][stage]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            assert_eq!(
                h.as_object().unwrap().len(),
                2,
                "name and phase only, as seed 004: {h}"
            );
            (
                h["name"].as_str().unwrap().into(),
                h["phase"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no condition {type_}: {status}"))
}

/// What the web pod holds in `path` (empty when missing).
fn file(ns: &TestNamespace, path: &str) -> String {
    ns.kubectl(&[
        "exec",
        "deploy/web",
        "--",
        "sh",
        "-c",
        &format!("cat {path} 2>/dev/null; true"),
    ])
}

#[test]
fn hooks_run_around_backups_and_restores_by_their_policies() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-hooks");
    let bucket = unique_name("hooks");
    s3().create_bucket(&bucket);
    ns.apply(&format!(
        "{storage}{PASSWORD}{templates}{web}apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{colour: blue}}
",
        storage = storage(&node.shared_s3_endpoint, &bucket),
        templates = templates(&node),
        web = web(&node),
    ));
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=120s",
    ]);
    let pod = &items(&ns, "pods")[0];
    let host = pod["status"]["podIP"]
        .as_str()
        .expect("the web pod's IP")
        .to_owned();
    let _operator = Operator::start(&ns.name, &node);

    // A backup with hooks that all succeed: the pre hooks (a command in the pod, a Job)
    // before, the post hooks by policy after.
    ns.apply(&configuration(
        &ns,
        &format!(
            "preBackup:
- {{name: flush, hookTemplate: {{name: note}}, params: {{TEXT: pre-backup}}}}
- {{name: job, hookTemplate: {{name: job}}, timeout: 2m}}
postBackup:
- {{name: cheer, hookTemplate: {{name: note}}, params: {{TEXT: after-success}}, executionPolicy: OnSuccess}}
- {{name: alarm, hookTemplate: {{name: note}}, params: {{TEXT: after-failure}}, executionPolicy: OnFailure}}
- {{name: ping, hookTemplate: {{name: get}}, params: {{HOST: '{host}'}}}}
"
        ),
    ));
    wait_for("the storage to be ready", WAIT, || {
        (object(&ns, "backupstorage", "minio")["status"]["phase"] == "Ready").then_some(())
    });
    trigger(&ns, "web", "good");
    let status = ended(&ns, "good");
    assert_eq!(status["phase"], "Succeeded", "{status}");
    assert_eq!(
        hooks(&status, "preHooks"),
        pairs(&[("flush", "Succeeded"), ("job", "Succeeded")])
    );
    assert_eq!(
        hooks(&status, "postHooks"),
        pairs(&[
            ("cheer", "Succeeded"),
            ("alarm", "Skipped"),
            ("ping", "Succeeded")
        ])
    );
    assert_eq!(
        condition(&status, "PreBackupHooksExecutionSucceeded")["reason"],
        "SuccessfullyExecutedPreBackupHooks"
    );
    assert_eq!(
        condition(&status, "PostBackupHooksExecutionSucceeded")["status"],
        "True"
    );
    assert_eq!(file(&ns, "/tmp/hooks.log"), "pre-backup\nafter-success\n");
    let hook_jobs = items(&ns, "jobs")
        .into_iter()
        .filter(|j| !j["metadata"]["labels"]["kbackup.io/hook"].is_null())
        .count();
    assert_eq!(hook_jobs, 0, "a hook's Job is deleted once it ended");

    // A pre hook that fails (retried once, its stderr in the condition): nothing backed up,
    // the post hook of a failure runs.
    ns.apply(&configuration(
        &ns,
        "preBackup:
- {name: busy, hookTemplate: {name: fail}, maxRetry: 1}
postBackup:
- {name: alarm, hookTemplate: {name: note}, params: {TEXT: after-failure}, executionPolicy: OnFailure}
- {name: cheer, hookTemplate: {name: note}, params: {TEXT: after-success}, executionPolicy: OnSuccess}
",
    ));
    trigger(&ns, "web", "bad");
    let status = ended(&ns, "bad");
    assert_eq!(status["phase"], "Failed", "{status}");
    assert_eq!(
        hooks(&status, "preHooks"),
        pairs(&[("busy", "Failed")]),
        "{status}"
    );
    assert_eq!(
        hooks(&status, "postHooks"),
        pairs(&[("alarm", "Succeeded"), ("cheer", "Skipped")])
    );
    let failed = condition(&status, "PreBackupHooksExecutionSucceeded");
    assert_eq!(
        (failed["status"].as_str(), failed["reason"].as_str()),
        (Some("False"), Some("FailedToExecutePreBackupHooks"))
    );
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("busy failed after 2 attempts")
            && message.contains("the database is busy"),
        "{message}"
    );
    assert!(
        items(&ns, "snapshots")
            .iter()
            .all(|s| s["spec"]["backupSession"] != "bad"),
        "no snapshot of it"
    );
    assert_eq!(
        file(&ns, "/tmp/hooks.log"),
        "pre-backup\nafter-success\nafter-failure\n"
    );

    // A restore whose pre hook outlasts its timeout: nothing restored; the post hooks of a
    // failure run (a POST, and a Job that fails).
    ns.kubectl(&["delete", "configmap", "settings"]);
    ns.apply(&format!(
        "apiVersion: kbackup.io/v1alpha1
kind: RestoreSession
metadata: {{name: stuck}}
spec:
  target: {{kind: Namespace, name: {ns}}}
  dataSource: {{repository: apps, snapshot: latest}}
  hooks:
    preRestore:
    - {{name: wait, hookTemplate: {{name: slow}}, timeout: 2s, maxRetry: 1}}
    postRestore:
    - {{name: report, hookTemplate: {{name: post}}, params: {{HOST: '{host}', WHAT: nothing}}, executionPolicy: OnFailure}}
    - {{name: job, hookTemplate: {{name: job}}, params: {{CODE: '3'}}, executionPolicy: OnFailure}}
",
        ns = ns.name
    ));
    let status = restore_ended(&ns, "stuck");
    assert_eq!(status["phase"], "Failed", "{status}");
    assert_eq!(hooks(&status, "preHooks"), pairs(&[("wait", "Failed")]));
    assert_eq!(
        hooks(&status, "postHooks"),
        pairs(&[("report", "Succeeded"), ("job", "Failed")]),
        "{status}"
    );
    assert_eq!(
        condition(&status, "RestoreFailed")["reason"],
        "PreRestoreHooksFailed"
    );
    let timed_out = condition(&status, "PreRestoreHooksExecutionSucceeded")["message"].to_string();
    assert!(
        timed_out.contains("wait failed after 2 attempts") && timed_out.contains("2s"),
        "{timed_out}"
    );
    let job_failed =
        condition(&status, "PostRestoreHooksExecutionSucceeded")["message"].to_string();
    assert!(
        job_failed.contains("job says 3"),
        "the Job's last log line: {job_failed}"
    );
    assert_eq!(file(&ns, "/www/posted"), "restored nothing");
    assert!(
        items(&ns, "configmaps")
            .iter()
            .all(|c| c["metadata"]["name"] != "settings"),
        "nothing restored"
    );
    assert_eq!(
        object(&ns, "backupconfiguration", "web")["spec"]["paused"],
        json!(false),
        "backups resumed"
    );

    // A restore with hooks that succeed: the ConfigMap back, the POST's body kept.
    ns.apply(&format!(
        "apiVersion: kbackup.io/v1alpha1
kind: RestoreSession
metadata: {{name: back}}
spec:
  target: {{kind: Namespace, name: {ns}}}
  dataSource: {{repository: apps, snapshot: latest}}
  hooks:
    preRestore:
    - {{name: ping, hookTemplate: {{name: get}}, params: {{HOST: '{host}'}}}}
    postRestore:
    - {{name: report, hookTemplate: {{name: post}}, params: {{HOST: '{host}', WHAT: settings}}}}
    - {{name: note, hookTemplate: {{name: note}}, params: {{TEXT: restored}}, executionPolicy: OnSuccess}}
",
        ns = ns.name
    ));
    let status = restore_ended(&ns, "back");
    assert_eq!(status["phase"], "Succeeded", "{status}");
    assert_eq!(hooks(&status, "preHooks"), pairs(&[("ping", "Succeeded")]));
    assert_eq!(
        hooks(&status, "postHooks"),
        pairs(&[("report", "Succeeded"), ("note", "Succeeded")])
    );
    assert_eq!(
        condition(&status, "PostRestoreHooksExecutionSucceeded")["reason"],
        "SuccessfullyExecutedPostRestoreHooks"
    );
    assert_eq!(
        object(&ns, "configmap", "settings")["data"]["colour"],
        "blue"
    );
    assert_eq!(file(&ns, "/www/posted"), "restored settings");
    assert!(file(&ns, "/tmp/hooks.log").ends_with("restored\n"));
}
