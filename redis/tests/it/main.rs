//! The shared tier's integration tests, as one binary: replicas in separate processes on a real
//! `redis-server`, and the faults it must survive. Every test that needs the server is
//! `#[ignore]`d with the reason, so a plain `cargo test` lists them; CI runs them with
//! `--ignored` (skipping `replicas::replica_child`, the replica process the tests start).

mod faults;
mod get_or_insert;
mod redis_server;
mod replicas;
mod windows;
