use crate::testenv::TestEnv;
use anyhow::{Result, bail};
use std::path::Path;
pub fn run(_root: &Path, _env: &TestEnv) -> Result<()> {
    bail!("TEMP")
}
