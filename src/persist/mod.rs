//! Crash-safe snapshots: [`Cache::save`](crate::Cache::save),
//! [`CacheBuilder::build_from_snapshot`](crate::CacheBuilder::build_from_snapshot), and optional
//! periodic and on-drop snapshots.
//!
//! A snapshot holds every live entry (scope, normalized prompt, unit vector, value, creation and
//! last-access times), so TTL and TTI keep counting across a restart: an entry that expired while
//! the process was down is not loaded. The vector index is rebuilt on load. The file format is
//! described in `format.rs`; it is checksummed end to end, and loading refuses anything that does not
//! check out, with an error rather than a panic, allocating no more than the file's size.

pub(crate) mod auto;
pub(crate) mod format;
pub(crate) mod snapshot;

pub use snapshot::SnapshotReport;
