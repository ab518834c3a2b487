use crate::testenv::TestEnv;
use anyhow::{Result, bail};
use std::path::Path;
#[derive(clap::Subcommand)]
pub enum Which {
    Storage,
}
pub fn run(_root: &Path, _env: &TestEnv, _w: Which) -> Result<()> {
    bail!("TEMP")
}
