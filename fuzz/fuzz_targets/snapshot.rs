#![no_main]
//! The snapshot loader on arbitrary bytes.

#[path = "../checks/snapshot.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
