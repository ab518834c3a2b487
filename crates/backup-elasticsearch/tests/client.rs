//! EsClient against the real Elasticsearch of the test environment.

use backup_elasticsearch::EsClient;

#[tokio::test]
async fn names_the_server_it_reached() {
    let server = backup_testing::elasticsearch();
    let info = EsClient::connect(&server.url)
        .unwrap()
        .server_info()
        .await
        .unwrap();
    assert_eq!(info.cluster_name, "kbackup-test");
    assert!(info.version.starts_with("7.17."), "{}", info.version);
}

#[tokio::test]
async fn a_dead_endpoint_is_named_in_the_error() {
    let error = EsClient::connect("http://127.0.0.1:1")
        .unwrap()
        .server_info()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot reach Elasticsearch at http://127.0.0.1:1"),
        "{error}"
    );
    assert!(EsClient::connect("not a url").is_err());
}
