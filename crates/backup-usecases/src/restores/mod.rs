//! Declarative restores, as the operator runs them: a RestoreSession planned from the
//! objects it names (`plan`), carried out by one Job (`run`), followed to its end
//! (`reconcile`) with the backups of what it restores paused meanwhile (`pauses`); asked for
//! and followed by a front-end (`request`). A StackState data store is restored by its own
//! Job (Elasticsearch: its snapshot restore), which the operator starts, follows and
//! finalizes itself (`data_store`, `elasticsearch`).

pub mod data_store;
pub mod elasticsearch;
pub mod objects;
pub mod pauses;
pub mod plan;
pub mod reconcile;
pub mod request;
pub mod run;
