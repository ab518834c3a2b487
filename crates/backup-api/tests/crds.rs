//! The checked-in CustomResourceDefinitions are the generated ones.

#[test]
fn the_checked_in_definitions_are_the_generated_ones() {
    let generated = backup_api::crds_yaml().expect("the definitions serialize");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../charts/kbackup/crds/kbackup.io.yaml"
    );
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == checked_in,
        "{path} is not what crates/backup-api generates: run `cargo run -p backup-api --example crds`"
    );
}
