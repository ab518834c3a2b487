use crate::KubeCluster;
use crate::error::convert;
use async_trait::async_trait;
use backup_core::ClusterError;
use backup_core::cluster::{ConfigObjects, SecretValue};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use std::collections::BTreeMap;

#[async_trait]
impl ConfigObjects for KubeCluster {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let map = api
            .get_opt(name)
            .await
            .map_err(|e| convert(&format!("ConfigMap {namespace}/{name}"), e))?;
        Ok(map.map(|m| m.data.unwrap_or_default()))
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, SecretValue>>, ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|e| convert(&format!("Secret {namespace}/{name}"), e))?;
        Ok(secret.map(|s| {
            let mut data: BTreeMap<String, SecretValue> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, SecretValue::new(v.0)))
                .collect();
            for (k, v) in s.string_data.unwrap_or_default() {
                data.insert(k, SecretValue::new(v.into_bytes()));
            }
            data
        }))
    }
}
