#![no_main]
//! Arbitrary operation sequences against a reference model of what the cache may answer.

#[path = "../checks/ops.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
