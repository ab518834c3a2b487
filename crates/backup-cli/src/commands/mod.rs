//! One module per command.

pub mod completions;
pub mod storage;
pub mod version;
