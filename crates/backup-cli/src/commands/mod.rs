//! One module per command.

pub mod completions;
pub mod repo;
pub mod stackgraph;
pub mod storage;
pub mod version;
