//! Discovery and generic object access through dynamic types.

use crate::KubeCluster;
use crate::error::{by_status, convert};
use crate::wire;
use async_trait::async_trait;
use backup_core::ClusterError;
use backup_core::cluster::{
    ApiResourceType, ObjectPage, ObjectRef, ResourceStore, ServedApis, UnavailableApi,
    for_each_page,
};
use kube::Api;
use kube::Resource;
use kube::api::{
    DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, pinned_kind};

/// The field manager of our server-side applies.
pub const FIELD_MANAGER: &str = "kbackup";

/// Resolved resource types by `apiVersion/kind`.
pub(crate) type KindCache = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<String, (ApiResource, ApiCapabilities)>>,
>;

impl KubeCluster {
    /// Registered aggregated APIs whose APIService is not Available (empty when the
    /// credentials may not list APIServices: then nothing is known of them).
    async fn unavailable_apis(&self) -> Result<Vec<UnavailableApi>, ClusterError> {
        let api_services = ApiResourceType {
            group: "apiregistration.k8s.io".into(),
            version: "v1".into(),
            kind: "APIService".into(),
            plural: "apiservices".into(),
            namespaced: false,
            verbs: vec!["list".into()],
        };
        let mut unavailable = Vec::new();
        let listed = for_each_page(self, &api_services, None, None, 500, |page| {
            for service in page {
                let available = service["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Available");
                if available.is_some_and(|c| c["status"] == "True") {
                    continue;
                }
                let spec = &service["spec"];
                let reason = available
                    .and_then(|c| c["message"].as_str().or(c["reason"].as_str()))
                    .unwrap_or("no Available condition yet");
                unavailable.push(UnavailableApi {
                    group_version: format!(
                        "{}/{}",
                        spec["group"].as_str().unwrap_or_default(),
                        spec["version"].as_str().unwrap_or_default()
                    ),
                    reason: reason.to_owned(),
                });
            }
        })
        .await;
        match listed {
            Ok(()) => Ok(unavailable),
            Err(ClusterError::Forbidden(_) | ClusterError::NotFound(_)) => Ok(vec![]),
            Err(other) => Err(other),
        }
    }

    fn dynamic_api(
        &self,
        resource: &ApiResource,
        namespaced: bool,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, resource),
            _ => Api::all_with(self.client.clone(), resource),
        }
    }

    /// The object's reference and the API of its type and namespace.
    async fn api_for(
        &self,
        object: &serde_json::Value,
    ) -> Result<(ObjectRef, Api<DynamicObject>), ClusterError> {
        let target = reference(object)?;
        let (resource, caps) = self.resolve(&target.api_version, &target.kind).await?;
        let api = self.dynamic_api(
            &resource,
            caps.scope == Scope::Namespaced,
            target.namespace.as_deref(),
        );
        Ok((target, api))
    }

    async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), ClusterError> {
        let cache_key = format!("{api_version}/{kind}");
        if let Some(found) = self.kinds.lock().expect("kind cache").get(&cache_key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        // Only successes are kept: a type that does not exist yet (a CRD being created) is
        // looked up again next time.
        let found = pinned_kind(&self.client, &gvk).await.map_err(|e| match e {
            kube::Error::Api(status) if status.code == 404 => {
                ClusterError::NotFound(format!("resource type {api_version} {kind}"))
            }
            other => convert(&format!("resource type {api_version} {kind}"), other),
        })?;
        self.kinds
            .lock()
            .expect("kind cache")
            .insert(cache_key, found.clone());
        Ok(found)
    }
}

/// A LIST response as plain JSON.
#[derive(serde::Deserialize)]
struct RawList {
    #[serde(default)]
    metadata: RawListMeta,
    #[serde(default)]
    items: Vec<serde_json::Value>,
}

#[derive(serde::Deserialize, Default)]
struct RawListMeta {
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

fn reference(object: &serde_json::Value) -> Result<ObjectRef, ClusterError> {
    let field = |path: &[&str]| {
        let mut v = object;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_owned)
    };
    Ok(ObjectRef {
        api_version: field(&["apiVersion"])
            .ok_or_else(|| ClusterError::Invalid("object without apiVersion".into()))?,
        kind: field(&["kind"])
            .ok_or_else(|| ClusterError::Invalid("object without kind".into()))?,
        namespace: field(&["metadata", "namespace"]),
        name: field(&["metadata", "name"])
            .ok_or_else(|| ClusterError::Invalid("object without metadata.name".into()))?,
    })
}

#[async_trait]
impl ResourceStore for KubeCluster {
    async fn discover(&self) -> Result<ServedApis, ClusterError> {
        // Aggregated discovery: one consistent document from the API server (Kubernetes 1.26+),
        // so a CRD deleted meanwhile cannot fail it half-way as the group-by-group walk can;
        // that walk remains for older servers.
        let discovery = match Discovery::new(self.client.clone()).run_aggregated().await {
            Ok(discovery) => discovery,
            Err(_) => Discovery::new(self.client.clone())
                .run()
                .await
                .map_err(|e| convert("API discovery", e))?,
        };
        let mut types = Vec::new();
        for group in discovery.groups() {
            // The preferred version first, then the others from the most stable: a type
            // served only in a version that is not the group's preferred one (a CRD of a
            // group whose other CRDs moved on) is taken in the best version serving it.
            let preferred = group.preferred_version_or_latest();
            let versions =
                std::iter::once(preferred).chain(group.versions().filter(|v| *v != preferred));
            let mut seen = std::collections::HashSet::new();
            for version in versions {
                for (resource, caps) in group.versioned_resources(version) {
                    if !seen.insert(resource.plural.clone()) {
                        continue;
                    }
                    types.push(ApiResourceType {
                        group: resource.group.clone(),
                        version: resource.version.clone(),
                        kind: resource.kind.clone(),
                        plural: resource.plural.clone(),
                        namespaced: caps.scope == Scope::Namespaced,
                        verbs: caps.operations.clone(),
                    });
                }
            }
        }
        types.sort_by(|a, b| (&a.group, &a.kind).cmp(&(&b.group, &b.kind)));
        let unavailable = self.unavailable_apis().await?;
        Ok(ServedApis { types, unavailable })
    }

    async fn list_page(
        &self,
        resource: &ApiResourceType,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        limit: u32,
        continue_token: Option<String>,
    ) -> Result<ObjectPage, ClusterError> {
        let api_resource = ApiResource {
            group: resource.group.clone(),
            version: resource.version.clone(),
            api_version: resource.api_version(),
            kind: resource.kind.clone(),
            plural: resource.plural.clone(),
        };
        let mut params = ListParams::default().limit(limit);
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        if let Some(token) = continue_token {
            params = params.continue_token(&token);
        }
        // The list parsed straight into JSON values (no typed round trip: backups list
        // every object of the cluster).
        let scope = if resource.namespaced { namespace } else { None };
        let path = DynamicObject::url_path(&api_resource, scope);
        let request = kube::core::Request::new(path)
            .list(&params)
            .map_err(|e| ClusterError::Invalid(format!("list {}: {e}", resource.plural)))?;
        let list: RawList = self
            .client
            .request(request)
            .await
            .map_err(|e| convert(&format!("list {}", resource.plural), e))?;
        let items = list
            .items
            .into_iter()
            .map(|mut item| {
                // Lists omit apiVersion and kind on items; put them back.
                if let Some(map) = item.as_object_mut() {
                    map.insert("apiVersion".into(), resource.api_version().into());
                    map.insert("kind".into(), resource.kind.clone().into());
                }
                item
            })
            .collect();
        Ok(ObjectPage {
            items,
            continue_token: list.metadata.continue_token.filter(|t| !t.is_empty()),
        })
    }

    async fn get(&self, object: &ObjectRef) -> Result<Option<serde_json::Value>, ClusterError> {
        let (resource, caps) = self.resolve(&object.api_version, &object.kind).await?;
        let api = self.dynamic_api(
            &resource,
            caps.scope == Scope::Namespaced,
            object.namespace.as_deref(),
        );
        let found = api
            .get_opt(&object.name)
            .await
            .map_err(|e| convert(&object.to_string(), e))?;
        found
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ClusterError::Api(e.to_string()))
    }

    async fn apply(
        &self,
        object: &serde_json::Value,
        force: bool,
    ) -> Result<serde_json::Value, ClusterError> {
        let (target, api) = self.api_for(object).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        let applied = api
            .patch(&target.name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| convert(&target.to_string(), e))?;
        serde_json::to_value(applied).map_err(|e| ClusterError::Api(e.to_string()))
    }

    async fn create(&self, object: &serde_json::Value) -> Result<String, ClusterError> {
        let target = reference(object)?;
        let (resource, caps) = self.resolve(&target.api_version, &target.kind).await?;
        let namespace = target
            .namespace
            .as_deref()
            .filter(|_| caps.scope == Scope::Namespaced);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let body = serde_json::to_vec(object).map_err(|e| ClusterError::Invalid(e.to_string()))?;
        let mut request = kube::core::Request::new(DynamicObject::url_path(&resource, namespace))
            .create(&params, body)
            .map_err(|e| ClusterError::Invalid(format!("{target}: {e}")))?;
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(wire::ACCEPT_PROTOBUF),
        );
        let what = target.to_string();
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(|e| convert(&what, e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| convert(&what, e))?;
        if !status.is_success() {
            let message = wire::status_message(&body).unwrap_or_else(|| status.to_string());
            return Err(by_status(&what, status.as_u16(), &message));
        }
        wire::object_uid(&body)
            .ok_or_else(|| ClusterError::Api(format!("{what}: created, but the answer has no uid")))
    }

    async fn replace(&self, object: &serde_json::Value) -> Result<serde_json::Value, ClusterError> {
        let (target, api) = self.api_for(object).await?;
        let what = target.to_string();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let mut desired: DynamicObject = serde_json::from_value(object.clone())
            .map_err(|e| ClusterError::Invalid(format!("{what}: {e}")))?;
        // Another writer between the read and the write makes the PUT conflict: read again.
        let mut attempts = 0;
        loop {
            let current = api
                .get_opt(&target.name)
                .await
                .map_err(|e| convert(&what, e))?
                .ok_or_else(|| ClusterError::NotFound(what.clone()))?;
            desired.metadata.resource_version = current.metadata.resource_version;
            match api.replace(&target.name, &params, &desired).await {
                Err(kube::Error::Api(status)) if status.code == 409 && attempts < 5 => {
                    attempts += 1;
                }
                Ok(replaced) => {
                    return serde_json::to_value(replaced)
                        .map_err(|e| ClusterError::Api(e.to_string()));
                }
                Err(e) => return Err(convert(&what, e)),
            }
        }
    }

    async fn apply_status(
        &self,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, ClusterError> {
        let (target, api) = self.api_for(object).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = true;
        let applied = api
            .patch_status(&target.name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| convert(&format!("status of {target}"), e))?;
        serde_json::to_value(applied).map_err(|e| ClusterError::Api(e.to_string()))
    }

    async fn delete(&self, object: &ObjectRef) -> Result<(), ClusterError> {
        let (resource, caps) = self.resolve(&object.api_version, &object.kind).await?;
        let api = self.dynamic_api(
            &resource,
            caps.scope == Scope::Namespaced,
            object.namespace.as_deref(),
        );
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(&object.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(convert(&object.to_string(), e)),
        }
    }
}
