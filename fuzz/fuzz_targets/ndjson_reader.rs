//! Any bytes: the NDJSON reader returns a run or an error with a line
//! number, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = toe_agent::read_run(data, "fuzz");
});
