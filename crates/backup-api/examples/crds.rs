//! Writes the CustomResourceDefinitions generated from the types to
//! `charts/kbackup/crds/kbackup.io.yaml`: `cargo run -p backup-api --example crds`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../charts/kbackup/crds/kbackup.io.yaml"
    );
    std::fs::write(path, backup_api::crds_yaml()?)?;
    eprintln!("wrote {path}");
    Ok(())
}
