//! `cargo xtask bench cluster --objects N,..`: N objects (per namespace 50 ConfigMaps, 40
//! Secrets, 10 Deployments) on the local control plane. Backup beside the raw paginated LIST
//! calls of the same kinds (the floor, curl with the admin certificate) and, up to 10,000
//! objects, `kubectl get -A -o yaml`; restore into an empty cluster beside the create floor
//! (the same objects POSTed by `curl --parallel --parallel-max 16` over HTTP/2, the
//! restore's concurrency) and, up to 10,000 objects, `kubectl apply --server-side -f`.

use super::{Sample, median, timed, write_section};
use crate::testenv::TestEnv;
use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const PREFIX: &str = "kbackup-bench";
const PER_NAMESPACE: [(&str, usize); 3] = [("ConfigMap", 50), ("Secret", 40), ("Deployment", 10)];
const OBJECTS_PER_NAMESPACE: usize = 100;
const KINDS: [(&str, &str); 3] = [
    ("/api/v1/configmaps", "configmaps"),
    ("/api/v1/secrets", "secrets"),
    ("/apis/apps/v1/deployments", "deployments"),
];
/// Above this many objects the kubectl comparisons are left out (they take minutes) and
/// each step runs once.
const KUBECTL_UP_TO: usize = 10_000;
const API: &str = "https://127.0.0.1:26443";

/// One object to create: its collection's path and its JSON.
struct Create {
    path: String,
    body: String,
}

/// The namespaces, then every object in them.
fn objects(namespaces: usize) -> (Vec<Create>, Vec<Create>) {
    let (mut spaces, mut rest) = (Vec::new(), Vec::new());
    for n in 0..namespaces {
        let ns = format!("{PREFIX}-{n:04}");
        spaces.push(Create {
            path: "/api/v1/namespaces".into(),
            body: format!(
                r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{ns}","labels":{{"{PREFIX}":"true"}}}}}}"#
            ),
        });
        for (kind, count) in PER_NAMESPACE {
            for i in 0..count {
                rest.push(match kind {
                    "ConfigMap" => Create {
                        path: format!("/api/v1/namespaces/{ns}/configmaps"),
                        body: format!(
                            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"config-{i}","namespace":"{ns}","labels":{{"app":"bench"}}}},"data":{{"setting":"value-{n}-{i}","feature":"on"}}}}"#
                        ),
                    },
                    "Secret" => Create {
                        path: format!("/api/v1/namespaces/{ns}/secrets"),
                        body: format!(
                            r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"secret-{i}","namespace":"{ns}"}},"stringData":{{"token":"token-{n}-{i}"}}}}"#
                        ),
                    },
                    _ => Create {
                        path: format!("/apis/apps/v1/namespaces/{ns}/deployments"),
                        body: format!(
                            r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"app-{i}","namespace":"{ns}"}},"spec":{{"replicas":0,"selector":{{"matchLabels":{{"app":"app-{i}"}}}},"template":{{"metadata":{{"labels":{{"app":"app-{i}"}}}},"spec":{{"containers":[{{"name":"c","image":"nginx"}}]}}}}}}}}"#
                        ),
                    },
                });
            }
        }
    }
    (spaces, rest)
}

/// A curl config that POSTs `creates` 16 at a time over one HTTP/2 connection.
fn curl_config(env: &TestEnv, creates: &[Create]) -> String {
    let pki = env.root.join("pki");
    let quoted = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let mut config =
        String::from("parallel\nparallel-max = 16\nsilent\nno-progress-meter\nshow-error\nfail\n");
    for (i, create) in creates.iter().enumerate() {
        if i > 0 {
            config.push_str("next\n");
        }
        for (option, value) in [
            ("url", format!("{API}{}", create.path)),
            ("cacert", pki.join("ca.crt").display().to_string()),
            ("cert", pki.join("admin.crt").display().to_string()),
            ("key", pki.join("admin.key").display().to_string()),
            ("header", "Content-Type: application/json".into()),
            ("user-agent", "kbackup-bench".into()),
            ("output", "/dev/null".into()),
            ("data", create.body.clone()),
        ] {
            config.push_str(&format!("{option} = {}\n", quoted(&value)));
        }
        config.push_str("http2\n");
    }
    config
}

/// The create floor: the namespaces, then the objects, each batch POSTed by curl.
fn create_floor(env: &TestEnv, dir: &Path, spaces: &[Create], rest: &[Create]) -> Result<Sample> {
    let mut total = Sample {
        seconds: 0.0,
        max_rss_mib: 0.0,
    };
    for (name, batch) in [("namespaces", spaces), ("objects", rest)] {
        let config = dir.join(format!("curl-{name}.conf"));
        std::fs::write(&config, curl_config(env, batch))?;
        let mut curl = Command::new("curl");
        curl.arg("-K").arg(&config);
        let sample = timed(curl, "curl --parallel (the create floor)")?;
        total.seconds += sample.seconds;
        total.max_rss_mib = total.max_rss_mib.max(sample.max_rss_mib);
    }
    Ok(total)
}

fn delete_namespaces(kubectl: &crate::testenv::Kubectl) -> Result<()> {
    kubectl.run(&[
        "delete",
        "namespaces",
        "-l",
        &format!("{PREFIX}=true"),
        "--ignore-not-found",
        "--wait=true",
        "--timeout=3600s",
    ])?;
    Ok(())
}

/// Every page of the three kinds, one after the other, as a client with no work to do on
/// the objects would fetch them.
fn raw_lists(env: &TestEnv) -> Result<Sample> {
    let pki = env.root.join("pki");
    let started = Instant::now();
    for (path, _) in KINDS {
        let mut token = String::new();
        loop {
            let url = format!("https://127.0.0.1:26443{path}?limit=500{token}");
            // A user agent other than curl's: the API server pretty-prints for curl.
            let output = Command::new("curl")
                .args(["-sS", "--fail", "-A", "kbackup-bench", "--cacert"])
                .arg(pki.join("ca.crt"))
                .arg("--cert")
                .arg(pki.join("admin.crt"))
                .arg("--key")
                .arg(pki.join("admin.key"))
                .arg(&url)
                .output()?;
            if !output.status.success() {
                bail!("curl {url}: {}", String::from_utf8_lossy(&output.stderr));
            }
            let text = String::from_utf8_lossy(&output.stdout);
            match continue_token(&text) {
                Some(next) => token = format!("&continue={next}"),
                None => break,
            }
        }
    }
    Ok(Sample {
        seconds: started.elapsed().as_secs_f64(),
        max_rss_mib: 0.0,
    })
}

/// The list's `metadata.continue`, when there is a next page.
fn continue_token(list: &str) -> Option<&str> {
    let after = list.split("\"continue\"").nth(1)?;
    let value = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let token = value.split('"').next()?;
    (!token.is_empty()).then_some(token)
}

/// What one size measured.
struct Measured {
    objects: usize,
    lists: Sample,
    get: Option<Sample>,
    backup: Sample,
    create_floor: Sample,
    apply: Option<Sample>,
    restore: Sample,
}

pub fn run(root: &Path, env: &TestEnv, sizes: &[usize], rounds: usize) -> Result<()> {
    super::require_tools(&[("curl", "curl")])?;
    let kbackup = super::release_kbackup(root, env)?;
    let kubectl = env.kubectl()?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let dir = env.root.join("bench/cluster");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir)?;
    eprintln!("deleting earlier bench namespaces");
    delete_namespaces(&kubectl)?;
    let mut measured = Vec::new();
    for &size in sizes {
        let repo = dir.join(format!("repository-{size}"));
        let kb = |args: &[&str]| {
            let mut command = Command::new(&kbackup);
            command
                .args(["-q", "--no-progress", "-y", "--kubeconfig", &kubeconfig])
                .args(args)
                .env("KBACKUP_PASSWORD", "bench")
                .env("KBACKUP_REPO", &repo)
                .stdout(Stdio::null());
            command
        };
        if !kb(&["repo", "init"]).status()?.success() {
            bail!("repo init failed");
        }
        measured.push(measure(
            env,
            &dir,
            &kubectl,
            &kubeconfig,
            &kb,
            size,
            rounds,
        )?);
    }
    let section = report(&measured, rounds);
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "cluster", &section)?;
    Ok(())
}

fn measure(
    env: &TestEnv,
    dir: &Path,
    kubectl: &crate::testenv::Kubectl,
    kubeconfig: &str,
    kb: &dyn Fn(&[&str]) -> Command,
    size: usize,
    rounds: usize,
) -> Result<Measured> {
    let namespaces = size.div_ceil(OBJECTS_PER_NAMESPACE);
    let objects = namespaces * OBJECTS_PER_NAMESPACE;
    let with_kubectl = objects <= KUBECTL_UP_TO;
    let rounds = if with_kubectl { rounds } else { 1 };
    eprintln!("{objects} objects in {namespaces} namespaces: the create floor (curl --parallel)");
    let (spaces, rest) = self::objects(namespaces);
    let create_floor = create_floor(env, dir, &spaces, &rest)?;
    eprintln!("  {:.1}s", create_floor.seconds);
    let apply = if with_kubectl {
        delete_namespaces(kubectl)?;
        let manifest = dir.join("objects.yaml");
        let documents: Vec<&str> = spaces
            .iter()
            .chain(&rest)
            .map(|c| c.body.as_str())
            .collect();
        std::fs::write(&manifest, documents.join("\n---\n"))?;
        eprintln!("kubectl apply --server-side of {objects} objects into an empty cluster");
        let mut apply = Command::new(&kubectl.bin);
        apply
            .args(["--kubeconfig", kubeconfig, "apply", "--server-side", "-f"])
            .arg(&manifest);
        let sample = timed(apply, "kubectl apply --server-side")?;
        eprintln!("  {:.1}s", sample.seconds);
        Some(sample)
    } else {
        None
    };

    let include = format!("{PREFIX}-*");
    let backup_args = [
        "backup",
        "cluster",
        "--include-namespaces",
        &include,
        "--include-resources",
        "configmaps,secrets,deployments.apps",
    ];
    let (mut floor, mut get, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        floor.push(raw_lists(env)?);
        if with_kubectl {
            let mut get_all = Command::new(&kubectl.bin);
            get_all.args([
                "--kubeconfig",
                kubeconfig,
                "get",
                "-A",
                "-o",
                "yaml",
                "configmaps,secrets,deployments",
            ]);
            get.push(timed(get_all, "kubectl get -A -o yaml")?);
        }
        ours.push(timed(kb(&backup_args), "kbackup backup cluster")?);
        eprintln!(
            "round {}/{rounds}: raw LISTs {:.2}s, kbackup backup {:.2}s ({:.0} MiB)",
            round + 1,
            floor[round].seconds,
            ours[round].seconds,
            ours[round].max_rss_mib
        );
    }

    let mut restores = Vec::new();
    for round in 0..rounds {
        eprintln!(
            "round {}/{rounds}: deleting the namespaces, then restoring the latest snapshot into the empty cluster",
            round + 1
        );
        delete_namespaces(kubectl)?;
        let restore = timed(
            kb(&["restore", "cluster", "latest"]),
            "kbackup restore cluster",
        )?;
        eprintln!("  {:.1}s ({:.0} MiB)", restore.seconds, restore.max_rss_mib);
        // The ConfigMaps carry a label: all of them must be back.
        let back = kubectl.run(&["get", "configmaps", "-A", "--no-headers", "-l", "app=bench"])?;
        let expected = namespaces * PER_NAMESPACE[0].1;
        if back.lines().count() != expected {
            bail!(
                "the restore brought back {} of {expected} labelled ConfigMaps",
                back.lines().count()
            );
        }
        restores.push(restore);
    }
    delete_namespaces(kubectl)?;
    Ok(Measured {
        objects,
        lists: median(&floor),
        get: (!get.is_empty()).then(|| median(&get)),
        backup: median(&ours),
        create_floor,
        apply,
        restore: median(&restores),
    })
}

fn report(measured: &[Measured], rounds: usize) -> String {
    let mut table = String::new();
    let seconds = |s: &Option<Sample>| s.map_or("-".to_owned(), |s| format!("{:.2}", s.seconds));
    writeln!(
        table,
        "| objects | raw LISTs (floor) | kubectl get -A -o yaml | **kbackup backup** | backup / floor | backup peak RSS | create floor (curl, 16 parallel) | kubectl apply --server-side | **kbackup restore** | restore / create floor | restore peak RSS |"
    )
    .ok();
    writeln!(table, "|---|---|---|---|---|---|---|---|---|---|---|").ok();
    for m in measured {
        writeln!(
            table,
            "| {} | {:.2} | {} | **{:.2}** | **{:.2}** | {:.0} MiB | {:.2} | {} | **{:.2}** | **{:.2}** | {:.0} MiB |",
            m.objects,
            m.lists.seconds,
            seconds(&m.get),
            m.backup.seconds,
            m.backup.seconds / m.lists.seconds,
            m.backup.max_rss_mib,
            m.create_floor.seconds,
            seconds(&m.apply),
            m.restore.seconds,
            m.restore.seconds / m.create_floor.seconds,
            m.restore.max_rss_mib,
        )
        .ok();
    }
    format!(
        "## Cluster resources\n\n`cargo xtask bench cluster --objects {} --rounds {rounds}` on the local control plane (etcd, \
         kube-apiserver, 2 cores shared with the benchmark): per namespace 50 ConfigMaps, 40 Secrets, 10 Deployments. \
         Seconds are medians of {rounds} rounds up to {KUBECTL_UP_TO} objects, one run above (where the kubectl \
         comparisons, minutes long, are left out). The backup floor is every page of the three kinds LISTed by curl; \
         the create floor is the same objects POSTed by `curl --parallel --parallel-max 16` over HTTP/2 (the restore's \
         concurrency), which is what the API server can accept on this machine. Each restore goes into an empty cluster \
         (the namespaces deleted before). Goals: backup at most 1.2x the raw LISTs, restore at most 1.3x the create \
         floor, both with a peak RSS of at most 150 MiB that does not grow with the object count.\n\n{table}",
        measured
            .iter()
            .map(|m| m.objects.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}
