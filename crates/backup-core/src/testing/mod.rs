//! Test doubles for the engines' unit tests (feature `testing`): a cluster held in memory that
//! can fail a chosen call or stop dead before its n-th change, as a process killed there would.

mod fake_cluster;

pub use fake_cluster::FakeCluster;
