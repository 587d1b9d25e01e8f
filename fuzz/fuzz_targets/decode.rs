//! Fuzz target `decode`: see `checks::decode` (`fuzz/checks.rs`) for what it checks.
#![no_main]

#[allow(dead_code)] // each target uses one of the checks
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decode(data));
