//! Next steps in the CLI's words: the command line or the flag that takes each.

use backup_core::model::NextStep;
use backup_core::workflow::{RESTORE_IN_PROGRESS, RESTORE_STARTED_AT};

/// The command (or the flag) that takes `step`.
pub fn command(step: &NextStep) -> String {
    match step {
        NextStep::FinalizeRestore {
            namespace,
            data_store,
            operation,
        } => {
            if data_store == "elasticsearch" {
                let snapshot = operation.as_deref().unwrap_or("SNAPSHOT");
                format!(
                    "kbackup -n {namespace} elasticsearch check-and-finalize --operation-id {snapshot} --wait"
                )
            } else {
                let job = operation.as_deref().unwrap_or("JOB");
                format!("kbackup -n {namespace} {data_store} check-and-finalize --job {job}")
            }
        }
        NextStep::ClearRestoreLock { namespace } => format!(
            "kubectl annotate deployment,statefulset -n {namespace} --all {RESTORE_IN_PROGRESS}- {RESTORE_STARTED_AT}-"
        ),
        NextStep::DeleteObject {
            namespace,
            kind,
            name,
        } => format!(
            "kubectl delete {} -n {namespace} {name}",
            kind.to_lowercase()
        ),
        NextStep::Overwrite => "--overwrite".into(),
        NextStep::AllowPartialSnapshot => "--allow-partial".into(),
        NextStep::UpdateExisting => "--existing update".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_a_command_a_person_can_run() {
        let finalize = |store: &str, operation: Option<&str>| {
            command(&NextStep::FinalizeRestore {
                namespace: "sts".into(),
                data_store: store.into(),
                operation: operation.map(str::to_owned),
            })
        };
        assert_eq!(
            finalize("stackgraph", Some("restore-1")),
            "kbackup -n sts stackgraph check-and-finalize --job restore-1"
        );
        assert_eq!(
            finalize("elasticsearch", Some("snap")),
            "kbackup -n sts elasticsearch check-and-finalize --operation-id snap --wait"
        );
        assert!(finalize("settings", None).ends_with("--job JOB"));
        assert!(
            command(&NextStep::ClearRestoreLock {
                namespace: "sts".into()
            })
            .starts_with("kubectl annotate deployment,statefulset -n sts --all")
        );
        assert_eq!(
            command(&NextStep::DeleteObject {
                namespace: "sts".into(),
                kind: "PersistentVolumeClaim".into(),
                name: "restore-1".into()
            }),
            "kubectl delete persistentvolumeclaim -n sts restore-1"
        );
    }
}
