//! Any bytes as a datagram of a netdev qstats dump: the parser returns a
//! value or an error, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| toe_agent::fuzz::qstats(data));
