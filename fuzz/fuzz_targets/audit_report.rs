//! Any bytes as a JSON audit report or snapshot (audit --from, audit --diff): the parser returns a
//! value or an error, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| toe_agent::fuzz::audit_report(data));
