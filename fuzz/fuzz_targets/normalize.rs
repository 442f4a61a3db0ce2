#![no_main]
//! Normalization and scope encoding on arbitrary bytes.

#[path = "../checks/normalize.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
