//! Any bytes as ethtool string and statistics buffers: the parser returns a
//! value or an error, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| toe_agent::fuzz::ethtool(data));
