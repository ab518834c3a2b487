//! The dependency rule of ARCHITECTURE.md, checked on `cargo metadata`: backup-core depends
//! on no SDK or network crate (directly or transitively), no adapter depends on another, the
//! use cases depend on no front-end, the custom resources on no other kbackup crate, and no
//! front-end starts a data store's Job itself.

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, Package, PackageId};
use std::collections::{BTreeSet, HashMap};

const CORE: &str = "backup-core";
const ADAPTERS: [&str; 4] = [
    "backup-storage",
    "backup-k8s",
    "backup-elasticsearch",
    "backup-http",
];
const USE_CASES: &str = "backup-usecases";
/// The custom resources of the operator.
const API: &str = "backup-api";
/// Crates of a command-line front-end: argument parsing, progress bars, tables.
const FRONT_END_CRATES: [&str; 8] = [
    "clap",
    "clap_complete",
    "indicatif",
    "comfy-table",
    "backup-cli",
    "backup-operator",
    "prometheus-client",
    "kube-lease-manager",
];
/// The operator front-end.
const OPERATOR: &str = "backup-operator";
/// Crates that mean network I/O or an SDK: never in core's tree.
const FORBIDDEN_IN_CORE: [&str; 8] = [
    "kube",
    "kube-client",
    "object_store",
    "elasticsearch",
    "reqwest",
    "hyper",
    "k8s-openapi",
    "tokio",
];

fn metadata() -> Metadata {
    MetadataCommand::new()
        // Cargo runs tests in their package directory; the workspace manifest is one up. (Not
        // a compile-time path: a target dir shared between clones would name another clone.)
        .manifest_path(
            std::env::current_dir()
                .expect("working directory")
                .join("../Cargo.toml"),
        )
        .exec()
        .expect("cargo metadata")
}

/// Every package reachable from `root` through normal (non-dev, non-build) dependencies.
fn normal_closure(metadata: &Metadata, root: &str) -> BTreeSet<String> {
    let resolve = metadata.resolve.as_ref().expect("resolved graph");
    let nodes: HashMap<&PackageId, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let by_id: HashMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let start = metadata
        .workspace_packages()
        .into_iter()
        .find(|p| p.name.as_str() == root)
        .expect("workspace package");
    let mut seen = BTreeSet::new();
    let mut stack = vec![&start.id];
    while let Some(id) = stack.pop() {
        for dep in &nodes[id].deps {
            let normal = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == DependencyKind::Normal);
            if normal && seen.insert(by_id[&dep.pkg].name.to_string()) {
                stack.push(&dep.pkg);
            }
        }
    }
    seen
}

#[test]
fn core_depends_on_no_sdk_or_network_crate() {
    let closure = normal_closure(&metadata(), CORE);
    let found: Vec<_> = FORBIDDEN_IN_CORE
        .iter()
        .filter(|c| closure.contains(**c))
        .collect();
    assert!(
        found.is_empty(),
        "backup-core must stay pure, but its dependency tree has {found:?}"
    );
}

#[test]
fn adapters_do_not_depend_on_each_other() {
    let metadata = metadata();
    for adapter in ADAPTERS {
        let closure = normal_closure(&metadata, adapter);
        let others: Vec<_> = ADAPTERS
            .iter()
            .filter(|a| **a != adapter && closure.contains(**a))
            .collect();
        assert!(
            others.is_empty(),
            "{adapter} depends on {others:?}: adapters only depend on backup-core"
        );
        assert!(
            closure.contains(CORE),
            "{adapter} should implement backup-core's traits"
        );
    }
}

#[test]
fn only_the_cli_and_dev_crates_sit_above_the_adapters() {
    let metadata = metadata();
    let cli = normal_closure(&metadata, "backup-cli");
    assert!(cli.contains("backup-storage") && cli.contains(CORE));
    for package in metadata.workspace_packages() {
        let name = package.name.as_str();
        if ADAPTERS.contains(&name) || name == CORE || name == "backup-repository" {
            let closure = normal_closure(&metadata, name);
            for above in [USE_CASES, "backup-cli", OPERATOR] {
                assert!(!closure.contains(above), "{name} depends on {above}");
            }
        }
    }
}

/// The use cases are shared by every front-end: they parse no command line, draw no
/// progress bar and lay out no table, and no front-end is below them.
#[test]
fn the_use_cases_need_no_front_end() {
    let metadata = metadata();
    let closure = normal_closure(&metadata, USE_CASES);
    let found: Vec<_> = FRONT_END_CRATES
        .iter()
        .filter(|c| closure.contains(**c))
        .collect();
    assert!(
        found.is_empty(),
        "{USE_CASES} is shared by every front-end, but has {found:?}"
    );
    assert!(normal_closure(&metadata, "backup-cli").contains(USE_CASES));
}

/// The repository format runs over core's storage trait, with no SDK and no adapter. Unlike
/// core it may use the tokio runtime: its backup sessions encode chunks on worker threads and
/// its file trees read and write local files.
#[test]
fn the_repository_format_needs_no_sdk_or_adapter() {
    let metadata = metadata();
    let closure = normal_closure(&metadata, "backup-repository");
    let found: Vec<_> = FORBIDDEN_IN_CORE
        .iter()
        .chain(ADAPTERS.iter())
        .filter(|c| **c != "tokio" && closure.contains(**c))
        .collect();
    assert!(
        found.is_empty(),
        "backup-repository works over core's storage trait alone, but has {found:?}"
    );
}

/// The fuzz targets are their own workspace (nightly, sanitizers): never a member of this
/// one, and nothing here depends on them or on libFuzzer.
#[test]
fn the_fuzz_targets_stay_outside_the_workspace() {
    let metadata = metadata();
    let members: BTreeSet<String> = metadata
        .workspace_packages()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    assert!(!members.contains("kbackup-fuzz"), "{members:?}");
    for member in &members {
        let closure = normal_closure(&metadata, member);
        assert!(
            !closure.contains("libfuzzer-sys"),
            "{member} depends on libfuzzer-sys"
        );
    }
}

/// The in-memory cluster of backup-core's `testing` feature is for unit tests: no crate
/// turns it on through a normal dependency, so no binary or library ships it.
#[test]
fn test_doubles_never_ship() {
    let metadata = metadata();
    for package in metadata.workspace_packages() {
        for dependency in &package.dependencies {
            let ships = dependency.kind == DependencyKind::Normal
                && dependency.name == CORE
                && dependency.features.iter().any(|f| f == "testing");
            assert!(
                !ships,
                "{} turns on {CORE}'s `testing` feature outside its dev-dependencies",
                package.name
            );
        }
    }
}

/// The custom resources are a contract with the cluster: plain types and their schemas, on
/// no other kbackup crate, so that every front-end (the CLI, the operator) and the use cases
/// may use them; nothing below the use cases does.
#[test]
fn the_custom_resources_stand_alone() {
    let metadata = metadata();
    let api = normal_closure(&metadata, API);
    let ours: Vec<_> = api.iter().filter(|c| c.starts_with("backup-")).collect();
    assert!(ours.is_empty(), "{API} depends on {ours:?}");
    for below in [CORE, "backup-repository"].iter().chain(ADAPTERS.iter()) {
        assert!(
            !normal_closure(&metadata, below).contains(API),
            "{below} depends on {API}"
        );
    }
}

/// The operator is a front-end like the CLI: it watches, elects and serves metrics, and does
/// every procedure through the use cases; no crate depends on it, and it depends on no other
/// front-end and on no storage or repository code of its own (the Jobs it starts do that).
#[test]
fn the_operator_is_a_thin_front_end() {
    let metadata = metadata();
    let operator = normal_closure(&metadata, OPERATOR);
    assert!(operator.contains(USE_CASES) && operator.contains(API));
    assert!(
        !operator.contains("backup-cli"),
        "{OPERATOR} depends on the CLI"
    );
    let direct: Vec<String> = metadata
        .workspace_packages()
        .into_iter()
        .find(|p| p.name.as_str() == OPERATOR)
        .map(|p| {
            p.dependencies
                .iter()
                .filter(|d| d.kind == DependencyKind::Normal)
                .map(|d| d.name.clone())
                .collect()
        })
        .unwrap_or_default();
    for procedure_crate in ["backup-repository", "backup-storage", "object_store"] {
        assert!(
            !direct.iter().any(|d| d == procedure_crate),
            "{OPERATOR} uses {procedure_crate} directly: its procedures belong in {USE_CASES}"
        );
    }
    for package in metadata.workspace_packages() {
        let name = package.name.as_str();
        if name != OPERATOR && name != "tests" && name != "xtask" {
            assert!(
                !normal_closure(&metadata, name).contains(OPERATOR),
                "{name} depends on {OPERATOR}"
            );
        }
    }
}

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    found
}

#[test]
fn front_ends_run_no_data_store_job_themselves() {
    // A data store's Job (StackGraph's backup, a restore, one made from an installation's
    // backup CronJob) is started only by the use cases, which the command line and the
    // operator's session Jobs share.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    for front_end in ["crates/backup-cli/src", "crates/backup-operator/src"] {
        for (path, text) in sources(&root.join(front_end)) {
            for procedure in [
                "JobRun",
                "JobManifests",
                "launch_job",
                "CronJobRun",
                "job_from_cronjob",
            ] {
                assert!(
                    !text.contains(procedure),
                    "{} uses {procedure}: the procedure belongs in {USE_CASES}",
                    path.display()
                );
            }
        }
    }
}
