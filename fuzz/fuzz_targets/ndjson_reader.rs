//! Any bytes as an NDJSON recording (report, report --compare): the parser returns a
//! value or an error, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| toe_agent::fuzz::ndjson(data));
