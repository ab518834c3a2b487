//! A session's hooks resolved against their HookTemplates before anything runs: each template
//! found and allowed to the session's namespace, its parameters given or defaulted and put
//! into its action, its timeout and retries checked. A hook that cannot run as written stops
//! the session before any work.

use crate::configuration_status::may_use;
use crate::sessions::plan::PlanError;
use backup_api::{
    API_VERSION, HookAction, HookExecutionPolicy, HookExecutorType, HookInfo, HookTemplate,
    PodHookStrategy,
};
use backup_core::ClusterError;
use backup_core::cluster::{ObjectRef, ResourceStore};
use backup_core::http::{HttpMethod, HttpRequest};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long one attempt of a hook may take when it says nothing.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest attempt a hook may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Before or after the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStage {
    /// Before: a failure stops the work.
    Pre,
    /// After: run by their execution policy.
    Post,
}

/// A hook ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedHook {
    /// Its name.
    pub name: String,
    /// What it does, its parameters put in.
    pub action: PlannedAction,
    /// Attempts after a failed one.
    pub max_retry: u32,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// When it runs.
    pub policy: HookExecutionPolicy,
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedAction {
    /// A command in running pods of the session's namespace.
    InPods {
        /// Their labels.
        selector: String,
        /// The container (each pod's first when `None`).
        container: Option<String>,
        /// In each of them, not only the first.
        every: bool,
        /// The command.
        command: Vec<String>,
    },
    /// A command in a Job of its own.
    InJob {
        /// Its image.
        image: String,
        /// Its ServiceAccount.
        service_account: Option<String>,
        /// The command.
        command: Vec<String>,
    },
    /// An HTTP call; a 2xx answer is success.
    Http(HttpRequest),
}

/// The hooks of one stage of a session of `namespace`, resolved in order.
pub async fn plan_hooks<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    stage: HookStage,
    hooks: &[HookInfo],
) -> Result<Result<Vec<PlannedHook>, PlanError>, ClusterError> {
    let mut planned = Vec::with_capacity(hooks.len());
    let mut names = std::collections::BTreeSet::new();
    for hook in hooks {
        if !names.insert(hook.name.as_str()) {
            return Ok(Err(invalid(format!(
                "two hooks are named {}; each needs a name of its own",
                hook.name
            ))));
        }
        match plan_hook(cluster, namespace, stage, hook).await? {
            Ok(hook) => planned.push(hook),
            Err(error) => return Ok(Err(error)),
        }
    }
    Ok(Ok(planned))
}

/// A session's hooks, both stages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionHooks {
    /// Before the work.
    pub pre: Vec<PlannedHook>,
    /// After it.
    pub post: Vec<PlannedHook>,
}

/// Both stages' hooks of a session of `namespace`, resolved: the first that cannot run as
/// written refuses the session.
pub async fn plan_session_hooks<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    pre: &[HookInfo],
    post: &[HookInfo],
) -> Result<Result<SessionHooks, PlanError>, ClusterError> {
    let pre = match plan_hooks(cluster, namespace, HookStage::Pre, pre).await? {
        Ok(pre) => pre,
        Err(error) => return Ok(Err(error)),
    };
    Ok(plan_hooks(cluster, namespace, HookStage::Post, post)
        .await?
        .map(|post| SessionHooks { pre, post }))
}

async fn plan_hook<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    stage: HookStage,
    hook: &HookInfo,
) -> Result<Result<PlannedHook, PlanError>, ClusterError> {
    let at = format!("hook {}", hook.name);
    if stage == HookStage::Pre && hook.execution_policy != HookExecutionPolicy::Always {
        return Ok(Err(invalid(format!(
            "{at}: executionPolicy is for post hooks (a pre hook always runs)"
        ))));
    }
    let template_namespace = hook
        .hook_template
        .namespace
        .clone()
        .unwrap_or_else(|| namespace.to_owned());
    let reference = ObjectRef::namespaced(
        API_VERSION,
        "HookTemplate",
        &template_namespace,
        &hook.hook_template.name,
    );
    let Some(object) = cluster.get(&reference).await? else {
        return Ok(Err(PlanError {
            reason: "HookTemplateNotFound",
            message: format!(
                "{at}: HookTemplate {template_namespace}/{} does not exist",
                hook.hook_template.name
            ),
        }));
    };
    let template: HookTemplate = match serde_json::from_value(object) {
        Ok(template) => template,
        Err(error) => {
            return Ok(Err(invalid(format!(
                "{at}: HookTemplate {template_namespace}/{} cannot be read: {error}",
                hook.hook_template.name
            ))));
        }
    };
    let policy = template.spec.usage_policy.as_ref();
    if !may_use(cluster, policy, &template_namespace, namespace).await? {
        return Ok(Err(PlanError {
            reason: "HookTemplateNotAllowed",
            message: format!(
                "{at}: HookTemplate {template_namespace}/{} does not allow namespace {namespace} (its usagePolicy)",
                hook.hook_template.name
            ),
        }));
    }
    let timeout = match hook.timeout.as_deref().map(humantime::parse_duration) {
        None => DEFAULT_TIMEOUT,
        Some(Ok(timeout)) if !timeout.is_zero() && timeout <= MAX_TIMEOUT => timeout,
        Some(_) => {
            return Ok(Err(invalid(format!(
                "{at}: timeout must be between 1s and 1h"
            ))));
        }
    };
    let values = match parameters(&template, &hook.params) {
        Ok(values) => values,
        Err(error) => return Ok(Err(invalid(format!("{at}: {error}")))),
    };
    let action = match action(&template, &values) {
        Ok(action) => action,
        Err(error) => return Ok(Err(invalid(format!("{at}: {error}")))),
    };
    Ok(Ok(PlannedHook {
        name: hook.name.clone(),
        action,
        max_retry: hook.max_retry.min(10),
        timeout,
        policy: hook.execution_policy,
    }))
}

fn invalid(message: String) -> PlanError {
    PlanError {
        reason: "InvalidHook",
        message,
    }
}

/// The value of each parameter of the template: given, else its default; a parameter the
/// template lacks, or a required one not given, is an error.
fn parameters(
    template: &HookTemplate,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    if let Some(unknown) = given
        .keys()
        .find(|name| !template.spec.params.iter().any(|p| &p.name == *name))
    {
        return Err(format!("the template has no parameter {unknown}"));
    }
    let mut values = BTreeMap::new();
    for parameter in &template.spec.params {
        match (given.get(&parameter.name), &parameter.default) {
            (Some(value), _) | (None, Some(value)) => {
                values.insert(parameter.name.clone(), value.clone());
            }
            (None, None) if parameter.required => {
                return Err(format!("parameter {} is required", parameter.name));
            }
            (None, None) => {
                values.insert(parameter.name.clone(), String::new());
            }
        }
    }
    Ok(values)
}

/// The template's action with `{{ .NAME }}` replaced by the parameters' values.
fn action(
    template: &HookTemplate,
    values: &BTreeMap<String, String>,
) -> Result<PlannedAction, String> {
    let fill = |text: &str| substitute(text, values);
    let fill_all = |texts: &[String]| texts.iter().map(|t| fill(t)).collect::<Result<Vec<_>, _>>();
    let HookAction {
        exec,
        http_get,
        http_post,
    } = &template.spec.action;
    match (exec, http_get, http_post) {
        (Some(exec), None, None) => {
            let command = fill_all(&exec.command)?;
            if command.is_empty() {
                return Err("the template's command is empty".into());
            }
            let executor = template
                .spec
                .executor
                .as_ref()
                .ok_or("a command needs an executor (Pod or Job)")?;
            match (executor.type_, &executor.pod, &executor.job) {
                (HookExecutorType::Pod, Some(pod), _) => Ok(PlannedAction::InPods {
                    selector: fill(&pod.selector)?,
                    container: pod.container.clone(),
                    every: pod.strategy == PodHookStrategy::ExecuteOnAll,
                    command,
                }),
                (HookExecutorType::Job, _, Some(job)) => Ok(PlannedAction::InJob {
                    image: fill(&job.image)?,
                    service_account: job.service_account_name.clone(),
                    command,
                }),
                _ => Err("its executor names no pods (Pod) or image (Job)".into()),
            }
        }
        (None, Some(call), None) | (None, None, Some(call)) => {
            let headers = call
                .headers
                .iter()
                .map(|(name, value)| Ok((name.clone(), fill(value)?)))
                .collect::<Result<BTreeMap<_, _>, String>>()?;
            let url = fill(&call.url)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("URL {url} is not http:// or https://"));
            }
            Ok(PlannedAction::Http(HttpRequest {
                method: match http_get.is_some() {
                    true => HttpMethod::Get,
                    false => HttpMethod::Post,
                },
                url,
                headers,
                body: fill(call.body.as_deref().unwrap_or_default())?,
            }))
        }
        _ => {
            Err("the template's action has to be exactly one of exec, httpGet and httpPost".into())
        }
    }
}

/// `text` with each `{{ .NAME }}` (spaces optional) replaced by the value of NAME; a name
/// that is no parameter is an error.
fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {text:?}"))?;
        let name = after[..end].trim();
        let name = name.strip_prefix('.').ok_or_else(|| {
            format!("{{{{ {name} }}}} is not a parameter (write {{{{ .NAME }}}})")
        })?;
        let value = values.get(name).ok_or_else(|| {
            format!("the template uses {{{{ .{name} }}}}, which is no parameter of it")
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;
    use serde_json::{Value, json};

    /// A HookTemplate object.
    pub(crate) fn template(namespace: &str, name: &str, spec: Value) -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": "HookTemplate",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
            "spec": spec,
        })
    }

    /// A HookInfo.
    pub(crate) fn info(name: &str, template: &str, extra: Value) -> HookInfo {
        let mut hook = json!({"name": name, "hookTemplate": {"name": template}});
        for (key, value) in extra.as_object().cloned().unwrap_or_default() {
            hook[key] = value;
        }
        serde_json::from_value(hook).unwrap()
    }

    fn cluster() -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.insert(&template(
            "shop",
            "flush",
            json!({
                "params": [
                    {"name": "TABLE", "required": true},
                    {"name": "MODE", "default": "fast"},
                ],
                "action": {"exec": {"command": ["sh", "-c", "flush {{ .TABLE }} --{{.MODE}}"]}},
                "executor": {"type": "Pod", "pod": {"selector": "app=db", "strategy": "ExecuteOnAll"}},
            }),
        ));
        cluster.insert(&template(
            "hooks",
            "notify",
            json!({
                "usagePolicy": {"allowedNamespaces": {"from": "All"}},
                "params": [{"name": "HOST", "required": true}],
                "action": {"httpPost": {"url": "http://{{ .HOST }}/done", "headers": {"x-host": "{{.HOST}}"}, "body": "from {{ .HOST }}"}},
            }),
        ));
        cluster.insert(&template(
            "hooks",
            "private",
            json!({"action": {"httpGet": {"url": "http://x"}}}),
        ));
        cluster
    }

    #[tokio::test]
    async fn parameters_fill_the_action_and_defaults_apply() {
        let cluster = cluster();
        let hooks = [
            info(
                "flush",
                "flush",
                json!({"params": {"TABLE": "orders"}, "timeout": "2m", "maxRetry": 2}),
            ),
            info(
                "notify",
                "notify",
                json!({
                    "hookTemplate": {"name": "notify", "namespace": "hooks"},
                    "params": {"HOST": "web:80"},
                    "executionPolicy": "OnFailure",
                }),
            ),
        ];
        let planned = plan_hooks(&cluster, "shop", HookStage::Post, &hooks)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            planned[0].action,
            PlannedAction::InPods {
                selector: "app=db".into(),
                container: None,
                every: true,
                command: vec!["sh".into(), "-c".into(), "flush orders --fast".into()],
            }
        );
        assert_eq!(
            (planned[0].timeout, planned[0].max_retry),
            (Duration::from_secs(120), 2)
        );
        let PlannedAction::Http(request) = &planned[1].action else {
            panic!("{:?}", planned[1].action);
        };
        assert_eq!(
            (request.method, request.url.as_str(), request.body.as_str()),
            (HttpMethod::Post, "http://web:80/done", "from web:80")
        );
        assert_eq!(request.headers["x-host"], "web:80");
        assert_eq!(planned[1].policy, HookExecutionPolicy::OnFailure);
        assert_eq!(planned[1].timeout, DEFAULT_TIMEOUT);
    }

    #[tokio::test]
    async fn hooks_that_cannot_run_as_written_are_refused_saying_why() {
        let cluster = cluster();
        let cases = [
            (
                HookStage::Pre,
                info("a", "flush", json!({})),
                "InvalidHook",
                "TABLE is required",
            ),
            (
                HookStage::Pre,
                info(
                    "a",
                    "flush",
                    json!({"params": {"TABLE": "t", "OTHER": "x"}}),
                ),
                "InvalidHook",
                "no parameter OTHER",
            ),
            (
                HookStage::Pre,
                info(
                    "a",
                    "flush",
                    json!({"params": {"TABLE": "t"}, "executionPolicy": "OnSuccess"}),
                ),
                "InvalidHook",
                "for post hooks",
            ),
            (
                HookStage::Post,
                info("a", "missing", json!({})),
                "HookTemplateNotFound",
                "shop/missing does not exist",
            ),
            (
                HookStage::Post,
                info(
                    "a",
                    "private",
                    json!({"hookTemplate": {"name": "private", "namespace": "hooks"}}),
                ),
                "HookTemplateNotAllowed",
                "does not allow namespace shop",
            ),
            (
                HookStage::Post,
                info(
                    "a",
                    "flush",
                    json!({"params": {"TABLE": "t"}, "timeout": "2h"}),
                ),
                "InvalidHook",
                "between 1s and 1h",
            ),
        ];
        for (stage, hook, reason, message) in cases {
            let error = plan_hooks(&cluster, "shop", stage, std::slice::from_ref(&hook))
                .await
                .unwrap()
                .unwrap_err();
            assert_eq!(error.reason, reason, "{hook:?}");
            assert!(error.message.contains(message), "{}", error.message);
        }
        let twice = vec![info("a", "flush", json!({"params": {"TABLE": "t"}})); 2];
        let error = plan_hooks(&cluster, "shop", HookStage::Post, &twice)
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            error.message.contains("two hooks are named a"),
            "{}",
            error.message
        );
    }

    #[test]
    fn substitution_refuses_what_is_no_parameter() {
        let values = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_eq!(substitute("x{{.A}}y{{ .A }}", &values).unwrap(), "x1y1");
        for bad in ["{{ .B }}", "{{ A }}", "{{ .A"] {
            assert!(substitute(bad, &values).is_err(), "{bad}");
        }
    }
}
